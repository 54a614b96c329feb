"""Turning pydantic's errors into located, plain-English problems."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from seaway.spec.models import ProjectSpec
from seaway.spec.problems import Problem, allowed_keys, format_path, from_validation_error
from seaway.spec.schema import cached_schema
from seaway.spec.yamlio import parse


def problems(text: str) -> list[str]:
    doc = parse(text)
    with pytest.raises(ValidationError) as info:
        ProjectSpec.model_validate(doc.data)
    return [
        str(p) for p in from_validation_error(info.value, doc, "f.yaml", cached_schema("project"))
    ]


@pytest.mark.parametrize(
    ("path", "data", "text"),
    [
        (
            ("datasets", "customers", "checks", 0, "column"),
            None,
            "datasets.customers.checks[0].column",
        ),
        (("policies", 2), None, "policies[2]"),
        (("datasets", "Bad Name"), None, 'datasets."Bad Name"'),
        (("datasets", 1), {"datasets": {1: {}}}, "datasets.1"),
        (("a", 0), {"a": [1]}, "a[0]"),
        ((True,), None, "true"),
        ((), None, ""),
    ],
)
def test_format_path(path: tuple[Any, ...], data: Any, text: str) -> None:
    assert format_path(path, data) == text


def test_problem_text_and_dict() -> None:
    located = Problem("seaway.yaml", 3, 5, "datasets.x", "bad")
    assert str(located) == "seaway.yaml:3:5: datasets.x: bad"
    assert str(Problem("seaway.yaml", None, None, "", "the file is empty")) == (
        "seaway.yaml: the file is empty"
    )
    assert located.to_dict() == {
        "file": "seaway.yaml",
        "line": 3,
        "column": 5,
        "path": "datasets.x",
        "message": "bad",
    }


def test_tag_that_is_also_a_key_is_not_mistaken_for_the_field() -> None:
    # The column check's tag is `column`, also a key of the check: the error belongs to `min`.
    assert problems("name: d\ndatasets:\n  a:\n    checks:\n      - {column: x, min: big}\n") == [
        "f.yaml:5:26: datasets.a.checks[0].min: expected a number, got 'big'"
    ]


def test_model_level_error_in_a_tagged_union_stays_on_the_item() -> None:
    assert problems("name: d\nmodels:\n  m:\n    gates:\n      - {metric: auc}\n") == [
        "f.yaml:5:9: models.m.gates[0]: a metric gate needs min, max or both"
    ]


def test_union_alternatives_merge_into_one_problem() -> None:
    assert problems("name: d\ndatasets:\n  a: {path: {x: 1}}\n") == [
        "f.yaml:3:7: datasets.a.path: expected a string or a list, got a mapping"
    ]


def test_union_member_that_got_further_wins() -> None:
    assert problems("name: d\ndatasets:\n  a:\n    checks:\n      - {not_null: [a, 2]}\n") == [
        "f.yaml:5:24: datasets.a.checks[0].not_null[1]: expected a string, got 2"
    ]


def test_item_that_is_no_check_at_all() -> None:
    assert problems("name: d\ndatasets:\n  a:\n    checks: [42]\n") == [
        "f.yaml:4:14: datasets.a.checks[0]: a check needs one of the keys: column, not_null, "
        "unique, rows, sql; got 42"
    ]


def test_empty_list_where_one_item_is_needed() -> None:
    assert problems("name: d\npipelines:\n  train:\n    steps: {}\n") == [
        "f.yaml:4:5: pipelines.train.steps: must not be empty"
    ]


def test_allowed_keys_follow_the_data_into_unions() -> None:
    schema = cached_schema("project")
    data = {"datasets": {"a": {"checks": [{"rows": {"min": 1}}]}}}
    assert allowed_keys(schema, data, ("datasets", "a", "checks", 0)) == [
        "name",
        "severity",
        "rows",
    ]
    assert allowed_keys(schema, data, ("datasets", "a", "checks", 0, "rows")) == ["min", "max"]
    assert "path" in allowed_keys(schema, data, ("datasets", "a"))
    assert allowed_keys(schema, data, ("datasets", "a", "path")) == []
