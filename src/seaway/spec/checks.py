"""Data-quality checks as declared under `datasets.NAME.checks` in seaway.yaml.

A check is recognised by the key that names its kind:

    - {column: tenure, min: 0, max: 120}          # per-column: type, min, max, allowed, regex,
    - {column: email, regex: '^[^@]+@[^@]+$'}     #   not_null, unique
    - {not_null: [customer_id, tenure]}
    - {unique: customer_id}                        # or a list: a composite key
    - {rows: {min: 1000, max: 10000000}}
    - {sql: "select count(*) = 0 from data where monthly_charges < 0"}

Every check takes an optional `name` and `severity` (`error` fails the dataset version,
`warn` is reported only). SQL checks run in DuckDB over a table called `data` and must
return one value; a true (or non-zero) value passes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

Severity = Literal["error", "warn"]
ColumnType = Literal[
    "int", "float", "number", "string", "bool", "date", "timestamp", "binary", "category"
]


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, description="A label for reports.")
    severity: Severity = Field(default="error", description="`warn` reports without failing.")


class ColumnCheck(_Check):
    """Constraints on one column."""

    column: str
    type: ColumnType | None = None
    min: float | None = None
    max: float | None = None
    allowed: list[Any] | None = Field(default=None, min_length=1)
    regex: str | None = None
    not_null: bool = False
    unique: bool = False

    @model_validator(mode="after")
    def _needs_a_constraint(self) -> ColumnCheck:
        if (
            self.type is None
            and self.min is None
            and self.max is None
            and self.allowed is None
            and self.regex is None
            and not self.not_null
            and not self.unique
        ):
            raise ValueError(
                "a column check needs at least one of type, min, max, allowed, regex, "
                "not_null, unique"
            )
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class NotNullCheck(_Check):
    """The listed columns hold no nulls."""

    not_null: str | Annotated[list[str], Field(min_length=1)]


class UniqueCheck(_Check):
    """The column (or the combination of columns) has no duplicate values."""

    unique: str | Annotated[list[str], Field(min_length=1)]


class RowRange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> RowRange:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class RowCountCheck(_Check):
    """The number of rows lies in a range."""

    rows: RowRange


class SqlCheck(_Check):
    """A DuckDB query over the table `data` that returns one truthy value when the data is good."""

    sql: str


_KINDS = ("column", "not_null", "unique", "rows", "sql")


def _check_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        for kind in _KINDS:
            if kind in value:
                return kind
        return None
    if isinstance(value, BaseModel):
        return {
            ColumnCheck: "column",
            NotNullCheck: "not_null",
            UniqueCheck: "unique",
            RowCountCheck: "rows",
            SqlCheck: "sql",
        }.get(type(value))
    return None


Check = Annotated[
    Annotated[ColumnCheck, Tag("column")]
    | Annotated[NotNullCheck, Tag("not_null")]
    | Annotated[UniqueCheck, Tag("unique")]
    | Annotated[RowCountCheck, Tag("rows")]
    | Annotated[SqlCheck, Tag("sql")],
    Discriminator(
        _check_kind,
        custom_error_type="check_kind",
        custom_error_message="a check needs one of the keys: " + ", ".join(_KINDS),
    ),
]

CHECK_KINDS = _KINDS
