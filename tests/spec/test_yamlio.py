"""Parsing YAML while keeping positions and catching duplicate keys."""

from __future__ import annotations

import pytest
import yaml

from seaway.spec.yamlio import parse

TEXT = """\
name: churn
datasets:
  customers:
    path: data/c.parquet
    checks:
      - {column: tenure, min: 0}
      - not_null: [id]
"""


def test_data_is_the_plain_yaml_data() -> None:
    doc = parse(TEXT)
    assert doc.data == yaml.safe_load(TEXT)
    assert doc.duplicates == []


def test_positions_of_keys_and_values_are_one_based() -> None:
    positions = parse(TEXT).positions
    assert positions.keys[("name",)] == (1, 1)
    assert positions.values[("name",)] == (1, 7)
    assert positions.keys[("datasets", "customers", "path")] == (4, 5)
    assert positions.values[("datasets", "customers", "path")] == (4, 11)
    assert positions.values[("datasets", "customers", "checks", 0)] == (6, 9)
    assert positions.keys[("datasets", "customers", "checks", 0, "min")] == (6, 26)
    assert positions.values[("datasets", "customers", "checks", 1, "not_null", 0)] == (7, 20)


def test_position_falls_back_to_the_nearest_ancestor() -> None:
    positions = parse(TEXT).positions
    # A key that is missing from the data is reported where its mapping starts.
    assert positions.of(("datasets", "customers", "format")) == (4, 5)
    assert positions.of(("datasets", "customers"), key=True) == (3, 3)
    assert positions.of(("nothing", "here")) == (1, 1)


def test_duplicate_keys_are_found_with_both_positions() -> None:
    doc = parse("a: 1\nb:\n  c: 1\n  d: 2\n  c: 3\na: 2\n")
    found = {(d.path, d.pos, d.first) for d in doc.duplicates}
    assert found == {(("b", "c"), (5, 3), (3, 3)), (("a",), (6, 1), (1, 1))}
    assert doc.data == {"a": 2, "b": {"c": 3, "d": 2}}


def test_duplicates_inside_lists_and_flow_mappings() -> None:
    doc = parse("items:\n  - {x: 1, x: 2}\n")
    assert [(d.path, d.pos) for d in doc.duplicates] == [(("items", 0, "x"), (2, 12))]


def test_a_key_overriding_a_merge_is_not_a_duplicate() -> None:
    doc = parse("base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  x: 5\n")
    assert doc.duplicates == []
    assert doc.data["use"] == {"x": 5, "y": 2}
    assert doc.positions.values[("use", "x")] == (4, 6)
    assert doc.positions.values[("use", "y")] == (1, 20)


def test_non_string_keys_keep_their_type() -> None:
    doc = parse("1: a\nx: b\n")
    assert doc.data == {1: "a", "x": "b"}
    assert doc.positions.keys[(1,)] == (1, 1)


def test_recursive_aliases_do_not_loop() -> None:
    doc = parse("a: &x [1, *x]\n")
    assert doc.positions.values[("a",)] == (1, 4)


def test_empty_and_comment_only_documents() -> None:
    assert parse("").node is None
    assert parse("# nothing\n").node is None


def test_syntax_errors_raise_with_a_mark() -> None:
    with pytest.raises(yaml.MarkedYAMLError) as info:
        parse("a: b: c\n")
    mark = info.value.problem_mark
    assert mark is not None and (mark.line, mark.column) == (0, 4)
