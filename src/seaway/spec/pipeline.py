"""Pipelines declared under `pipelines.NAME`: params, a DAG of steps, and what gets registered.

    train:
      params: {C: 1.0, seed: 0, depth: {type: int, default: 6, min: 1, max: 32}}
      steps:
        featurize:
          run: churn.steps:featurize
          inputs: {raw: "dataset:customers"}
          outputs: [features]
        fit: {run: churn.steps:fit, inputs: {x: featurize.features}, params: [C], outputs: [model]}
      register: {model: churn-classifier, from: fit.model, flavor: sklearn}

References between steps (`STEP.OUTPUT`), to datasets and to params are checked in
`seaway.spec.crossref`, because they span several fields.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from seaway.spec.types import (
    CallableRef,
    Identifier,
    InputRef,
    MetricName,
    Name,
    StepRefText,
    StrictModel,
    describe,
    invalid,
)

Flavor = Literal["sklearn", "onnx", "python"]
ParamType = Literal["int", "float", "str", "bool", "list", "dict"]

_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
}


def _type_of(value: Any) -> str | None:
    for name, kinds in _PYTHON_TYPES.items():
        # bool is an int in Python; a YAML `true` is never meant as 1.
        if isinstance(value, kinds) and (name == "bool") == isinstance(value, bool):
            return name
    return None


class ParamSpec(StrictModel):
    """A typed param: `{type: int, default: 6, min: 1, max: 32}`.

    Without `default` the param has to be given at run time (`seaway run train -p depth=8`).
    """

    type: ParamType | None = Field(
        default=None, description="The value's type; taken from `default` when omitted."
    )
    default: Any = Field(default=None, description="The value used when none is given.")
    min: float | None = Field(default=None, description="Smallest allowed value (numbers).")
    max: float | None = Field(default=None, description="Largest allowed value (numbers).")
    choices: list[Any] | None = Field(default=None, description="The allowed values.")
    description: str | None = Field(default=None, description="What the param controls.")

    @property
    def required(self) -> bool:
        return "default" not in self.model_fields_set

    @property
    def kind(self) -> str | None:
        """The declared type, or the type of the default."""
        if self.type is not None:
            return self.type
        return None if self.required else _type_of(self.default)

    @model_validator(mode="after")
    def _consistent(self) -> ParamSpec:
        kind = self.kind
        if (self.min is not None or self.max is not None) and kind not in ("int", "float"):
            raise invalid("min and max apply to int and float params only")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise invalid(f"min ({self.min}) is greater than max ({self.max})")
        if self.required:
            return self
        problem = self.check(self.default)
        if problem:
            raise invalid(f"default {problem}")
        return self

    def check(self, value: Any) -> str | None:
        """Why `value` is not acceptable for this param, or None when it is."""
        kind = self.kind
        if (
            kind is not None
            and _type_of(value) != kind
            and not (kind == "float" and _type_of(value) == "int")
        ):
            return f"{describe(value)} is not of type {kind}"
        if isinstance(value, int | float) and not isinstance(value, bool):
            if self.min is not None and value < self.min:
                return f"{describe(value)} is below min {self.min}"
            if self.max is not None and value > self.max:
                return f"{describe(value)} is above max {self.max}"
        if self.choices is not None and value not in self.choices:
            return f"{describe(value)} is not one of the choices {self.choices}"
        return None


def _param_kind(value: Any) -> str:
    # A mapping with `type` or `default` is a typed param; any other value (a mapping
    # included) is the default itself.
    if isinstance(value, ParamSpec):
        return "typed"
    if isinstance(value, dict) and ("type" in value or "default" in value):
        return "typed"
    return "plain"


ParamValue = Annotated[
    Annotated[ParamSpec, Tag("typed")] | Annotated[Any, Tag("plain")],
    Discriminator(_param_kind),
]


class StepSpec(StrictModel):
    """One node of the DAG: a Python callable or a shell command."""

    run: CallableRef | None = Field(
        default=None, description="A Python callable `package.module:function`."
    )
    cmd: str | None = Field(default=None, description="A shell command, run in the project root.")
    description: str | None = Field(default=None, description="What the step does.")
    inputs: dict[Identifier, InputRef] = Field(
        default_factory=dict,
        description="Argument name -> `dataset:NAME`, `dataset:NAME@VERSION` or `STEP.OUTPUT`.",
    )
    params: list[Identifier] = Field(
        default_factory=list,
        description="Pipeline params the step receives (part of its cache key).",
    )
    outputs: list[Identifier] = Field(
        default_factory=list, description="Artifacts the step produces, referenced as STEP.OUTPUT."
    )
    metrics: list[MetricName] = Field(default_factory=list, description="Metrics the step logs.")
    env: list[str] = Field(
        default_factory=list,
        description="Packages or lock files whose versions enter the step's cache key.",
    )
    needs: list[Name] = Field(
        default_factory=list,
        description="Steps that must finish first, besides those whose outputs are inputs.",
    )

    @model_validator(mode="after")
    def _one_action(self) -> StepSpec:
        if (self.run is None) == (self.cmd is None):
            raise invalid(
                "a step needs exactly one of `run` (package.module:function) or `cmd` "
                "(a shell command)"
            )
        if self.cmd is not None and not self.cmd.strip():
            raise invalid("`cmd` is empty")
        for field in ("outputs", "params", "metrics", "needs"):
            values: list[str] = getattr(self, field)
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                raise invalid(f"{field} lists {', '.join(map(repr, dupes))} more than once")
        return self


class RegisterSpec(StrictModel):
    """The model version a run registers."""

    model: Name = Field(description="The registered model name.")
    from_: StepRefText = Field(
        alias="from", description="The step output holding the model files: STEP.OUTPUT."
    )
    flavor: Flavor | None = Field(
        default=None, description="How to load and serve it; detected from the files when omitted."
    )


class PipelineSpec(StrictModel):
    description: str | None = Field(default=None, description="What the pipeline produces.")
    params: dict[Identifier, ParamValue] = Field(
        default_factory=dict,
        description="Param defaults: a plain value, or {type, default, min, max, choices}.",
    )
    steps: dict[Name, StepSpec] = Field(
        min_length=1, description="The steps, by name; the order comes from their inputs."
    )
    # `register` would shadow pydantic's (ABC) classmethod of that name.
    register_: RegisterSpec | None = Field(
        default=None, alias="register", description="Register a model version from a step output."
    )

    def param_spec(self, name: str) -> ParamSpec | None:
        value = self.params.get(name)
        return value if isinstance(value, ParamSpec) else None

    def defaults(self) -> dict[str, Any]:
        """The param values a run uses when none are given (required typed params left out)."""
        out: dict[str, Any] = {}
        for name, value in self.params.items():
            if isinstance(value, ParamSpec):
                if not value.required:
                    out[name] = value.default
            else:
                out[name] = value
        return out


__all__ = [
    "Flavor",
    "ParamSpec",
    "ParamValue",
    "PipelineSpec",
    "RegisterSpec",
    "StepSpec",
]
