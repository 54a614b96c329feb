"""References between fields: datasets, step outputs, params, the DAG, triggers, policies."""

from __future__ import annotations

from typing import Any

import pytest

from seaway.spec.crossref import Finding, check_project, find_cycle
from seaway.spec.models import ProjectSpec


def spec(**sections: Any) -> ProjectSpec:
    return ProjectSpec.model_validate({"name": "demo", **sections})


def pipeline(steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"train": {"steps": steps, **extra}}


def findings(**sections: Any) -> list[tuple[tuple[Any, ...], str]]:
    return [(f.path, f.message) for f in check_project(spec(**sections))]


def test_a_consistent_project_has_no_findings() -> None:
    assert (
        findings(
            datasets={"customers": {}},
            pipelines=pipeline(
                {
                    "featurize": {
                        "run": "m:f",
                        "inputs": {"raw": "dataset:customers@4"},
                        "outputs": ["features"],
                    },
                    "fit": {
                        "run": "m:g",
                        "inputs": {"x": "featurize.features"},
                        "params": ["C"],
                        "outputs": ["model"],
                    },
                    "report": {"cmd": "make report", "needs": ["fit"]},
                },
                params={"C": 1.0},
                register={"model": "m", "from": "fit.model"},
            ),
            monitoring={"m": {"on_drift": {"psi_above": 0.2, "retrain": "train"}}},
        )
        == []
    )


def test_undeclared_dataset() -> None:
    assert findings(
        datasets={"customers": {}},
        pipelines=pipeline({"a": {"run": "m:f", "inputs": {"raw": "dataset:customer"}}}),
    ) == [
        (
            ("pipelines", "train", "steps", "a", "inputs", "raw"),
            "dataset 'customer' is not declared under datasets; did you mean 'customers'?",
        )
    ]


def test_unknown_step_and_unknown_output() -> None:
    result = findings(
        pipelines=pipeline(
            {
                "a": {"run": "m:f", "outputs": ["x", "y"]},
                "b": {"run": "m:g", "inputs": {"p": "c.x", "q": "a.z"}},
                "c": {"run": "m:h", "inputs": {"p": "b.nothing"}},
            }
        )
    )
    assert result == [
        (
            ("pipelines", "train", "steps", "b", "inputs", "p"),
            "step 'c' declares no outputs; add 'x' to its outputs",
        ),
        (
            ("pipelines", "train", "steps", "b", "inputs", "q"),
            "step 'a' has no output 'z'; its outputs: x, y",
        ),
        (
            ("pipelines", "train", "steps", "c", "inputs", "p"),
            "step 'b' declares no outputs; add 'nothing' to its outputs",
        ),
        (("pipelines", "train", "steps", "b"), "steps depend on each other in a cycle: b → c → b"),
    ]


def test_missing_step_gets_a_suggestion() -> None:
    assert findings(
        pipelines=pipeline(
            {
                "featurize": {"run": "m:f", "outputs": ["x"]},
                "fit": {"run": "m:g", "inputs": {"x": "featurise.x"}},
            }
        )
    ) == [
        (
            ("pipelines", "train", "steps", "fit", "inputs", "x"),
            "no step 'featurise' in pipeline 'train'; did you mean 'featurize'?",
        )
    ]


def test_cycle_through_needs_and_self_need() -> None:
    result = findings(
        pipelines=pipeline(
            {
                "a": {"run": "m:f", "needs": ["c"]},
                "b": {"run": "m:f", "needs": ["a", "b", "zz"]},
                "c": {"run": "m:f", "needs": ["b"]},
            }
        )
    )
    assert (("pipelines", "train", "steps", "b", "needs", 1), "a step cannot need itself") in result
    assert (
        ("pipelines", "train", "steps", "b", "needs", 2),
        "no step 'zz' in pipeline 'train'",
    ) in result
    assert (
        ("pipelines", "train", "steps", "a"),
        "steps depend on each other in a cycle: a → c → b → a",
    ) in result


def test_a_step_reading_its_own_output_is_a_cycle() -> None:
    assert findings(
        pipelines=pipeline({"a": {"run": "m:f", "inputs": {"x": "a.out"}, "outputs": ["out"]}})
    ) == [(("pipelines", "train", "steps", "a"), "steps depend on each other in a cycle: a → a")]


def test_cycle_is_reported_on_the_step_key() -> None:
    result = check_project(
        spec(
            pipelines=pipeline(
                {"a": {"run": "m:f", "needs": ["b"]}, "b": {"run": "m:f", "needs": ["a"]}}
            )
        )
    )
    assert result == [
        Finding(
            ("pipelines", "train", "steps", "a"),
            "steps depend on each other in a cycle: a → b → a",
            key=True,
        )
    ]


@pytest.mark.parametrize(
    ("depends", "cycle"),
    [
        ({"a": [], "b": ["a"], "c": ["a", "b"]}, None),
        ({"a": ["b"], "b": ["c"], "c": ["a"]}, ["a", "b", "c", "a"]),
        ({"x": ["y"], "y": [], "a": ["b"], "b": ["a"]}, ["a", "b", "a"]),
        ({}, None),
    ],
)
def test_find_cycle(depends: dict[str, list[str]], cycle: list[str] | None) -> None:
    assert find_cycle(depends) == cycle


def test_register_from_must_be_a_declared_output() -> None:
    assert findings(
        pipelines=pipeline(
            {"fit": {"run": "m:f", "outputs": ["model"]}},
            register={"model": "m", "from": "fit.modle"},
        )
    ) == [
        (
            ("pipelines", "train", "register", "from"),
            "step 'fit' has no output 'modle'; did you mean 'model'?",
        )
    ]


def test_register_flavor_must_match_the_model() -> None:
    assert findings(
        pipelines=pipeline(
            {"fit": {"run": "m:f", "outputs": ["model"]}},
            register={"model": "m", "from": "fit.model", "flavor": "onnx"},
        ),
        models={"m": {"flavor": "sklearn"}},
    ) == [
        (
            ("pipelines", "train", "register", "flavor"),
            "flavor 'onnx' differs from models.m.flavor 'sklearn'",
        )
    ]


def test_step_params_must_be_declared() -> None:
    assert findings(
        pipelines=pipeline(
            {"fit": {"run": "m:f", "params": ["C", "sed"]}}, params={"C": 1, "seed": 0}
        )
    ) == [
        (
            ("pipelines", "train", "steps", "fit", "params", 1),
            "param 'sed' is not declared in pipelines.train.params; did you mean 'seed'?",
        )
    ]


def test_retrain_must_name_a_pipeline() -> None:
    result = findings(
        pipelines=pipeline({"fit": {"run": "m:f"}}),
        models={"m": {}},
        monitoring={"m": {"on_quality_drop": {"metric": "auc", "below": 0.7, "retrain": "trian"}}},
    )
    assert result == [
        (
            ("monitoring", "m", "on_quality_drop", "retrain"),
            "no pipeline 'trian'; did you mean 'train'?",
        )
    ]


def test_monitoring_an_unknown_model_is_a_warning() -> None:
    result = check_project(spec(monitoring={"ghost": {}}))
    assert [(f.path, f.severity) for f in result] == [(("monitoring", "ghost"), "warning")]


def test_policies_need_expressions_and_unique_names() -> None:
    result = findings(
        policies=[
            {"name": "a", "when": "  ", "require": "true"},
            {"name": "a", "when": "true", "require": ""},
        ]
    )
    assert result == [
        (("policies", 0, "when"), "`when` is empty; write a CEL expression (`true` always holds)"),
        (
            ("policies", 1, "require"),
            "`require` is empty; write a CEL expression (`true` always holds)",
        ),
        (("policies", 1, "name"), "policy name 'a' is already used by policies[0]"),
    ]


def test_retrain_pipeline_must_register_the_monitored_model() -> None:
    result = findings(
        pipelines=pipeline(
            {"fit": {"run": "m:f", "outputs": ["model"]}},
            register={"model": "other", "from": "fit.model"},
        ),
        models={"m": {}, "other": {}},
        monitoring={"m": {"on_drift": {"psi_above": 0.2, "retrain": "train"}}},
    )
    assert result == [
        (
            ("monitoring", "m", "on_drift", "retrain"),
            "pipeline 'train' registers 'other', so retraining could not produce a new "
            "version of 'm'; name a pipeline whose `register.model` is 'm'",
        )
    ]
