"""The promotion request a policy is evaluated against, and its CEL form.

The registry builds a `PolicyRequest` from a model version, its gate report and its
approvals; tests and `seaway policy eval --request FILE` build one from YAML or JSON with
`PolicyRequest.from_dict` / `load_request`. The CEL variables are exactly the fields below
(see `seaway.policy` for the table). Facts left out take the value that counts *against*
the request (unsigned, gates not passed, no approvals), so a forgotten fact never lets a
promotion through.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from seaway.errors import InputError, SpecError
from seaway.spec.types import StrictModel

ScanVerdict = Literal["safe", "suspicious", "dangerous", "error", "unscanned"]
"""`seaway.registry.scan` verdicts, plus `unscanned` for a version that was never scanned."""


class GateResultFacts(StrictModel):
    name: str = Field(description="The gate, as its report names it (auc>=0.8).")
    kind: str = Field(default="", description="metric, no_regression, drift, …")
    status: str = Field(description="What the gate concluded: passed, failed, error, …")
    required: bool = Field(default=True, description="Whether a failure blocks promotion.")


class GateFacts(StrictModel):
    passed: bool = Field(default=False, description="Every required gate passed.")
    results: list[GateResultFacts] = Field(default_factory=list, description="One per gate.")


class VersionFacts(StrictModel):
    number: int = Field(default=0, ge=0, description="The version number (7 in churn@7).")
    author: str = Field(default="", description="Who registered the version.")
    metrics: dict[str, float] = Field(default_factory=dict, description="Metric name -> value.")
    signed: bool = Field(default=False, description="A valid signature is attached.")
    scan: ScanVerdict = Field(default="unscanned", description="The model-file scan verdict.")
    lineage: dict[str, Any] = Field(
        default_factory=dict, description="Run, datasets, code revision (free-form)."
    )
    age_hours: float = Field(default=0.0, ge=0, description="Hours since registration.")
    aliases: list[str] = Field(default_factory=list, description="Aliases on the version.")


class Approval(StrictModel):
    actor: str = Field(description="Who approved.")
    role: str = Field(description="The role they approved in (release-manager).")
    comment: str = Field(default="", description="What they said.")
    at: str = Field(default="", description="When, as ISO 8601 text.")

    @field_validator("at", mode="before")
    @classmethod
    def _iso(cls, value: Any) -> Any:
        # YAML reads an unquoted timestamp as a datetime; the context keeps text.
        if isinstance(value, (datetime, date)):
            return value.isoformat()
        return value


class PolicyRequest(StrictModel):
    """A request to promote a model version into an environment."""

    environment: str = Field(description="Target environment (prod).")
    model: str = Field(description="The model's name.")
    version: VersionFacts = Field(default_factory=VersionFacts, description="The candidate.")
    gates: GateFacts = Field(default_factory=GateFacts, description="Its gate report.")
    approvals: list[Approval] = Field(default_factory=list, description="Approvals given.")
    actor: str = Field(default="", description="Who asks for the promotion.")
    roles: list[str] = Field(default_factory=list, description="The actor's roles.")

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "the request") -> PolicyRequest:
        """Validate plain data (parsed YAML/JSON); a SpecError lists every problem."""
        if isinstance(data, PolicyRequest):
            return data
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise SpecError(
                f"{source} is not a valid policy request",
                problems=[_problem(err) for err in exc.errors(include_url=False)],
                hint="see `seaway.policy` for the fields a request has",
            ) from exc

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_cel(self) -> dict[str, Any]:
        """The CEL activation: one variable per field, as CEL values."""
        from seaway.policy.cel import to_cel_value

        return {name: to_cel_value(value) for name, value in self.to_dict().items()}


def _problem(err: Any) -> str:
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        return f"{where}: unknown field"
    return f"{where}: {err['msg']}"


def load_request(path: Path) -> PolicyRequest:
    """Read a request from a YAML or JSON file. A policy test file (with `request:` and
    `expect:`) is accepted too, so a failing test can be evaluated on its own."""
    from seaway.spec.problems import from_validation_error
    from seaway.spec.yamlio import parse

    label = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"cannot read {label}: {exc.strerror or exc}", hint="check the path of --request"
        ) from exc
    try:
        doc = parse(text)
    except Exception as exc:
        raise SpecError(f"{label} is not valid YAML or JSON", problems=[str(exc)]) from exc
    wrapped = isinstance(doc.data, dict) and "request" in doc.data
    model: type[StrictModel] = _RequestFile if wrapped else PolicyRequest
    try:
        parsed = model.model_validate(doc.data)
    except ValidationError as exc:
        details = from_validation_error(exc, doc, label, model.model_json_schema())
        raise SpecError(
            f"{label} is not a valid policy request",
            problems=[str(d) for d in details],
            hint="see `seaway.policy` for the fields a request has",
        ) from exc
    if isinstance(parsed, _RequestFile):
        return parsed.request
    assert isinstance(parsed, PolicyRequest)
    return parsed


class _RequestFile(StrictModel):
    """A policy test file read only for its request."""

    name: str | None = None
    description: str | None = None
    request: PolicyRequest
    expect: Any = None
