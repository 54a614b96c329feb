"""Building blocks shared by the spec models: the strict base model, names, durations, refs.

Validators raise `PydanticCustomError` with a finished sentence, so the loader can show the
message as it is instead of pydantic's "Value error, …" wording.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, WithJsonSchema
from pydantic_core import PydanticCustomError, core_schema


class StrictModel(BaseModel):
    """Base of every spec model.

    `extra="forbid"` turns typos into errors; `strict=True` stops pydantic from quietly
    turning `true` into 1 or "5" into 5, which YAML never needs since it types scalars itself.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, validate_by_name=True)


def invalid(message: str) -> PydanticCustomError:
    """A validation error whose message is shown to the user verbatim."""
    # Without a context pydantic does not format the template, so braces need no escaping.
    return PydanticCustomError("seaway", message)


def describe(value: Any) -> str:
    """A value as a user wrote it in YAML, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)


# Names end up in URLs, file names, Kubernetes objects and `STEP.OUTPUT` references, so they
# exclude dots, colons, @ and upper case.
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
_NAME_RE = re.compile(NAME_PATTERN)
IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
_IDENTIFIER_RE = re.compile(IDENTIFIER_PATTERN)
METRIC_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_./:-]*$"
_METRIC_RE = re.compile(METRIC_PATTERN)


def _name(value: str) -> str:
    if not _NAME_RE.match(value) or len(value) > 63:
        raise invalid(
            f"{describe(value)} is not a valid name: use lowercase letters, digits, '-' and "
            "'_', start with a letter or digit, at most 63 characters"
        )
    return value


def _identifier(value: str) -> str:
    if not _IDENTIFIER_RE.match(value):
        raise invalid(
            f"{describe(value)} is not a valid identifier: use letters, digits and '_', "
            "not starting with a digit"
        )
    return value


def _metric(value: str) -> str:
    if not _METRIC_RE.match(value):
        raise invalid(
            f"{describe(value)} is not a valid metric name: use letters, digits and _ . / : -"
        )
    return value


Name = Annotated[
    str,
    AfterValidator(_name),
    WithJsonSchema({"type": "string", "pattern": NAME_PATTERN, "maxLength": 63}),
]
"""A name of a project, dataset, pipeline, step, model, environment, alias or policy."""

Identifier = Annotated[
    str,
    AfterValidator(_identifier),
    WithJsonSchema({"type": "string", "pattern": IDENTIFIER_PATTERN}),
]
"""A param, input or output name: a Python identifier, because steps receive them as arguments."""

MetricName = Annotated[
    str,
    AfterValidator(_metric),
    WithJsonSchema({"type": "string", "pattern": METRIC_PATTERN}),
]


# --- durations ---------------------------------------------------------------------------

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+$"
_DURATION_RE = re.compile(DURATION_PATTERN)
_PART_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")


class Duration:
    """A span of time written like `500ms`, `30s`, `2m`, `1h`, `1d` or `1h30m`.

    A bare number is refused: `idle_timeout: 15` could mean seconds or minutes, and guessing
    wrong scales a model to zero at the wrong time.
    """

    __slots__ = ("seconds", "text")

    def __init__(self, text: str) -> None:
        if not isinstance(text, str) or not _DURATION_RE.match(text):
            raise ValueError(f"not a duration: {text!r}")
        self.text = text
        self.seconds = sum(float(n) * _UNITS[unit] for n, unit in _PART_RE.findall(text))

    @classmethod
    def parse(cls, value: Any) -> Duration:
        if isinstance(value, Duration):
            return value
        if isinstance(value, str) and _DURATION_RE.match(value.strip()):
            return cls(value.strip())
        number = isinstance(value, int | float) and not isinstance(value, bool)
        hint = " (a number needs a unit)" if number else ""
        raise invalid(
            f"expected a duration like 500ms, 30s, 5m, 1h or 1d, got {describe(value)}{hint}"
        )

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Duration({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Duration) and self.seconds == other.seconds

    def __hash__(self) -> int:
        return hash(self.seconds)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls.parse, serialization=core_schema.to_string_ser_schema()
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: Any, handler: Any) -> dict[str, Any]:
        return {"type": "string", "pattern": DURATION_PATTERN, "examples": ["30s", "5m", "1h"]}


# --- references ----------------------------------------------------------------------------

_DATASET_REF_RE = re.compile(r"^dataset:([a-z0-9][a-z0-9_-]*)(?:@([A-Za-z0-9][A-Za-z0-9._-]*))?$")
_STEP_REF_RE = re.compile(r"^([a-z0-9][a-z0-9_-]*)\.([A-Za-z_][A-Za-z0-9_]*)$")
_CALLABLE_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
DATASET_REF_PATTERN = _DATASET_REF_RE.pattern
STEP_REF_PATTERN = _STEP_REF_RE.pattern
CALLABLE_PATTERN = _CALLABLE_RE.pattern


@dataclass(frozen=True)
class DatasetRef:
    """`dataset:NAME` (the latest version) or `dataset:NAME@VERSION`."""

    name: str
    version: str | None = None


@dataclass(frozen=True)
class StepOutputRef:
    """`STEP.OUTPUT`: an output declared by another step of the same pipeline."""

    step: str
    output: str


def parse_dataset_ref(text: str) -> DatasetRef | None:
    m = _DATASET_REF_RE.match(text)
    return DatasetRef(m.group(1), m.group(2)) if m else None


def parse_step_ref(text: str) -> StepOutputRef | None:
    m = _STEP_REF_RE.match(text)
    return StepOutputRef(m.group(1), m.group(2)) if m else None


def parse_input_ref(text: str) -> DatasetRef | StepOutputRef | None:
    return parse_dataset_ref(text) or parse_step_ref(text)


def _input_ref(value: str) -> str:
    if parse_input_ref(value) is None:
        raise invalid(
            f"{describe(value)} is not an input reference: write dataset:NAME, "
            "dataset:NAME@VERSION or STEP.OUTPUT"
        )
    return value


def _dataset_ref(value: str) -> str:
    if parse_dataset_ref(value) is None:
        raise invalid(
            f"{describe(value)} is not a dataset reference: write dataset:NAME or "
            "dataset:NAME@VERSION"
        )
    return value


def _step_ref(value: str) -> str:
    if parse_step_ref(value) is None:
        raise invalid(f"{describe(value)} is not a step output reference: write STEP.OUTPUT")
    return value


def _callable(value: str) -> str:
    if not _CALLABLE_RE.match(value):
        raise invalid(
            f"{describe(value)} is not a callable reference: write package.module:function"
        )
    return value


InputRef = Annotated[
    str,
    AfterValidator(_input_ref),
    WithJsonSchema({"type": "string", "pattern": f"({DATASET_REF_PATTERN})|({STEP_REF_PATTERN})"}),
]
DatasetRefText = Annotated[
    str,
    AfterValidator(_dataset_ref),
    WithJsonSchema({"type": "string", "pattern": DATASET_REF_PATTERN}),
]
StepRefText = Annotated[
    str,
    AfterValidator(_step_ref),
    WithJsonSchema({"type": "string", "pattern": STEP_REF_PATTERN}),
]
CallableRef = Annotated[
    str,
    AfterValidator(_callable),
    WithJsonSchema({"type": "string", "pattern": CALLABLE_PATTERN}),
]
