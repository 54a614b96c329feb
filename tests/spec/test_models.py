"""The models on their own: defaults, helper properties and the rules inside one model."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from seaway.spec.environment import DeploymentSpec, EnvironmentSpec, StrategySpec
from seaway.spec.gates import GATE_KINDS, gate_kind
from seaway.spec.models import ModelSpec, ProjectSpec, StoreSpec
from seaway.spec.pipeline import ParamSpec, PipelineSpec, StepSpec
from seaway.spec.types import Duration


def messages(exc: ValidationError) -> list[str]:
    return [e["msg"] for e in exc.errors()]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30),
        ("2m", 120),
        ("15m", 900),
        ("1h", 3600),
        ("1d", 86400),
        ("1h30m", 5400),
        ("1.5s", 1.5),
    ],
)
def test_duration_seconds(text: str, seconds: float) -> None:
    assert Duration.parse(text).seconds == pytest.approx(seconds)
    assert str(Duration.parse(text)) == text


@pytest.mark.parametrize("value", ["15", 15, "2 m", "m", "1w", "-1s", "", True, None])
def test_duration_rejects(value: Any) -> None:
    with pytest.raises(Exception, match="expected a duration"):
        Duration.parse(value)


def test_duration_serialises_back_to_text() -> None:
    env = EnvironmentSpec.model_validate(
        {"deployments": {"m": {"version": 1, "scale": {"idle_timeout": "15m"}}}}
    )
    dumped = env.model_dump(mode="json", by_alias=True)
    assert dumped["deployments"]["m"]["scale"]["idle_timeout"] == "15m"
    assert env.deployments["m"].scale.idle_timeout == Duration("900s")


def test_project_defaults() -> None:
    spec = ProjectSpec.model_validate({"name": "demo"})
    assert spec.store == StoreSpec()
    assert spec.store.metadata == "sqlite:///.seaway/seaway.db"
    assert spec.store.artifacts == ".seaway/objects"
    assert spec.store.link == "auto"
    assert spec.datasets == {} and spec.pipelines == {} and spec.policies == []


def test_yaml_true_is_not_an_integer() -> None:
    # Lax pydantic would read `rows: true` as 1.
    with pytest.raises(ValidationError):
        ProjectSpec.model_validate({"name": "d", "monitoring": {"m": {"window": {"rows": True}}}})


def test_param_defaults_and_required_params() -> None:
    pipeline = PipelineSpec.model_validate(
        {
            "params": {
                "C": 1.0,
                "depth": {"type": "int", "default": 6},
                "epochs": {"type": "int"},
                "layout": {"rows": 2},
            },
            "steps": {"fit": {"run": "m:f"}},
        }
    )
    assert pipeline.defaults() == {"C": 1.0, "depth": 6, "layout": {"rows": 2}}
    epochs = pipeline.param_spec("epochs")
    assert epochs is not None and epochs.required
    assert pipeline.param_spec("C") is None


def test_param_spec_checks_values() -> None:
    spec = ParamSpec.model_validate({"type": "float", "default": 0.1, "min": 0, "max": 1})
    assert spec.check(0.5) is None
    assert spec.check(1) is None  # an int is a fine float
    assert spec.check(2.0) == "2.0 is above max 1.0"
    assert spec.check("x") == "'x' is not of type float"
    choice = ParamSpec.model_validate({"default": "a", "choices": ["a", "b"]})
    assert choice.kind == "str"
    assert choice.check("c") == "'c' is not one of the choices ['a', 'b']"


@pytest.mark.parametrize(
    ("param", "message"),
    [
        ({"type": "int", "default": True}, "default true is not of type int"),
        ({"type": "str", "min": 1}, "min and max apply to int and float params only"),
        ({"type": "int", "min": 5, "max": 1}, "min (5.0) is greater than max (1.0)"),
        ({"default": 9, "max": 3}, "default 9 is above max 3.0"),
    ],
)
def test_param_spec_rules(param: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        ParamSpec.model_validate(param)
    assert messages(info.value) == [message]


def test_step_needs_run_or_cmd() -> None:
    with pytest.raises(ValidationError) as info:
        StepSpec.model_validate({"outputs": ["x"]})
    assert "exactly one of `run`" in messages(info.value)[0]
    assert StepSpec.model_validate({"cmd": "make data"}).run is None


def test_step_rejects_repeated_outputs() -> None:
    with pytest.raises(ValidationError) as info:
        StepSpec.model_validate({"run": "m:f", "outputs": ["a", "b", "a"]})
    assert messages(info.value) == ["outputs lists 'a' more than once"]


def test_register_reads_the_from_key() -> None:
    pipeline = PipelineSpec.model_validate(
        {
            "steps": {"fit": {"run": "m:f", "outputs": ["model"]}},
            "register": {"model": "m", "from": "fit.model"},
        }
    )
    assert pipeline.register_ is not None
    assert pipeline.register_.from_ == "fit.model"
    dumped = pipeline.model_dump(by_alias=True, exclude_defaults=True)
    assert dumped["register"] == {"model": "m", "from": "fit.model"}


def test_gate_kinds_are_recognised_by_key() -> None:
    model = ModelSpec.model_validate(
        {
            "gates": [
                {"metric": "auc", "min": 0.8},
                {"no_regression": {"metric": "auc"}},
                {"drift": {"train": "dataset:a", "reference": "dataset:b@2"}},
                {"robustness": {"noise": 0.1, "max_flip_rate": 0.1}},
                {"fairness": {"slice": "region", "metric": "auc", "max_gap": 0.1}},
                {"latency": {"p99_ms": 20}},
                {"scan": True},
                {"signature": True, "required": False},
            ]
        }
    )
    assert [gate_kind(g) for g in model.gates] == [
        "metric",
        "no_regression",
        "drift",
        "robustness",
        "fairness",
        "latency",
        "scan",
        "signature",
    ]
    assert sorted(GATE_KINDS) == sorted(gate_kind(g) for g in model.gates)
    assert model.gates[0].required is True
    assert model.gates[-1].required is False


def test_no_regression_defaults_to_the_champion() -> None:
    model = ModelSpec.model_validate({"gates": [{"no_regression": {"metric": "auc"}}]})
    gate = model.gates[0]
    assert gate_kind(gate) == "no_regression"
    assert gate.no_regression.against == "champion"
    assert gate.no_regression.tolerance == 0.0


def test_strategy_kind_and_default() -> None:
    deployment = DeploymentSpec.model_validate({"version": 3})
    assert deployment.strategy.kind == "direct"
    assert StrategySpec.model_validate({"direct": None}).kind == "direct"
    shadow = StrategySpec.model_validate({"shadow": {"duration": "1h"}})
    assert shadow.kind == "shadow"
    assert shadow.shadow is not None and shadow.shadow.percent == 100


@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        ({}, "a strategy needs one of: direct, canary, blue_green, shadow"),
        ({"canary": None}, "`canary` needs its settings"),
        (
            {"direct": {}, "blue_green": {}},
            "a strategy has exactly one kind, got direct and blue_green",
        ),
    ],
)
def test_strategy_rules(strategy: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        StrategySpec.model_validate(strategy)
    assert messages(info.value) == [message]


@pytest.mark.parametrize(("given", "version"), [(7, 7), ("7", 7), ("champion", "champion")])
def test_deployment_version_is_a_number_or_an_alias(given: Any, version: Any) -> None:
    assert DeploymentSpec.model_validate({"version": given}).version == version


@pytest.mark.parametrize("given", [True, 0, -2, "Champion", "v 2", 1.5])
def test_deployment_version_rejects(given: Any) -> None:
    with pytest.raises(ValidationError):
        DeploymentSpec.model_validate({"version": given})


def test_environment_targets() -> None:
    assert EnvironmentSpec().targets == ["local"]
    assert EnvironmentSpec.model_validate({"target": ["kubernetes", "ray"]}).targets == [
        "kubernetes",
        "ray",
    ]


def test_registered_models_include_pipeline_registrations() -> None:
    spec = ProjectSpec.model_validate(
        {
            "name": "d",
            "pipelines": {
                "train": {
                    "steps": {"fit": {"run": "m:f", "outputs": ["model"]}},
                    "register": {"model": "from-pipeline", "from": "fit.model"},
                }
            },
            "models": {"declared": {}},
        }
    )
    assert spec.registered_models() == {"from-pipeline", "declared"}


def test_specs_are_immutable() -> None:
    spec = ProjectSpec.model_validate({"name": "demo"})
    with pytest.raises(ValidationError):
        spec.name = "other"
