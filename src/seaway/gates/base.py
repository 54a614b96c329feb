"""What a gate returns: a status from a closed vocabulary, its figures, and one report per run.

A gate either measured something or it did not. `failed` means it measured and the version
is worse than allowed; `error` means it could not measure (the evaluation data is missing,
the model did not load): the version may be fine, and the fix is in the project, not in the
model. `inconclusive` means it measured but the evidence cannot support a verdict (slices too
small, no champion metric to compare with). Only `passed` lets a required gate through, so a
gate that could not look never waves a version on.

The same words are used in the CLI table, the stored report, the audit event and policies
(`gates.passed`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from seaway.errors import InputError


class GateStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"
    ERROR = "error"


class DataUnavailable(InputError):
    """A gate's data (evaluation set, dataset, model) cannot be had: the gate reports `error`."""


@dataclass
class GateResult:
    """The outcome of one gate on one version."""

    name: str
    kind: str
    status: GateStatus
    required: bool = True
    figures: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    duration_s: float = 0.0
    hint: str | None = None

    @property
    def passed(self) -> bool:
        return self.status is GateStatus.PASSED

    @property
    def blocking(self) -> bool:
        """Whether this result stops the version: a required gate that did not pass."""
        return self.required and not self.passed

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "status": self.status.value,
            "required": self.required,
            "figures": self.figures,
            "message": self.message,
            "hint": self.hint,
            "duration_s": round(self.duration_s, 6),
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> GateResult:
        return cls(
            name=str(doc["name"]),
            kind=str(doc["kind"]),
            status=GateStatus(doc["status"]),
            required=bool(doc.get("required", True)),
            figures=dict(doc.get("figures") or {}),
            message=str(doc.get("message") or ""),
            duration_s=float(doc.get("duration_s") or 0.0),
            hint=doc.get("hint"),
        )


@dataclass
class GateReport:
    """Every gate of one run of `seaway gate NAME@V`.

    `passed` is true when every required gate passed. `only` names the kinds a partial run
    was limited to (`--only`); such a report says nothing about the other gates, so
    `latest_report` skips it unless asked.
    """

    model: str
    number: int
    results: list[GateResult]
    passed: bool
    created_at: datetime
    duration_s: float = 0.0
    actor: str | None = None
    only: list[str] | None = None

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.number}"

    @property
    def partial(self) -> bool:
        return self.only is not None

    @property
    def blocking(self) -> list[GateResult]:
        return [r for r in self.results if r.blocking]

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in GateStatus}
        for r in self.results:
            out[r.status.value] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        from seaway._util import isoformat

        return {
            "model": self.model,
            "version": self.number,
            "ref": self.ref,
            "passed": self.passed,
            "created_at": isoformat(self.created_at),
            "duration_s": round(self.duration_s, 6),
            "actor": self.actor,
            "only": self.only,
            "counts": self.counts(),
            "results": [r.to_dict() for r in self.results],
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> GateReport:
        created = doc["created_at"]
        if isinstance(created, str):
            created = datetime.fromisoformat(created.replace("Z", "+00:00"))
        only = doc.get("only")
        return cls(
            model=str(doc["model"]),
            number=int(doc["version"]),
            results=[GateResult.from_dict(r) for r in doc.get("results", [])],
            passed=bool(doc["passed"]),
            created_at=created,
            duration_s=float(doc.get("duration_s") or 0.0),
            actor=doc.get("actor"),
            only=list(only) if only is not None else None,
        )


def outcome(
    kind: str,
    name: str,
    gate: Any,
    status: GateStatus,
    message: str,
    figures: dict[str, Any] | None = None,
    *,
    hint: str | None = None,
) -> GateResult:
    """A result for `gate` (a validated spec gate: its `required` flag is carried over)."""
    return GateResult(
        name=name,
        kind=kind,
        status=status,
        required=bool(getattr(gate, "required", True)),
        figures=figures or {},
        message=message,
        hint=hint,
    )


def every_required_passed(results: list[GateResult]) -> bool:
    return all(not r.blocking for r in results)


def fmt(value: float | None, digits: int = 4) -> str:
    """A figure for a message: short, and `n/a` for what could not be computed."""
    if value is None or value != value:
        return "n/a"
    return f"{value:.{digits}g}"
