"""A rollout's analysis: is the candidate behaving on live traffic?

`analyse` is a pure function of the analysis spec and two versions' live figures (see
`seaway.serving.live`); `measure` reads those figures from the store. The outcome is one of
four words, kept apart on purpose:

- `Successful`: enough requests, and every check that could be computed passed;
- `Failed`: enough requests, and at least one check is over its limit;
- `Inconclusive`: too few requests to judge (`min_requests`), so the engine waits;
- `Error`: the figures could not be read at all (store or gateway out of reach), which
  says nothing about the candidate, so it is retried rather than counted as a failure.

Checks, each only when the spec sets its limit: the candidate's error rate; its latency
p50 and p99 (milliseconds); the PSI of its predictions against stable's (a model that
answers HTTP 200 with shifted scores fails here); and the class-flip rate on mirrored
requests (1 - agreement with the primary, only where shadow pairs were compared). A check
that cannot be computed (no stable version to compare with, no shared prediction sketch,
no shadow pairs) is skipped with `passed=None` and said in the message, never passed
silently as a number.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from seaway.project import Project
    from seaway.rollout.records import Rollout
    from seaway.serving.live import LiveFigures
    from seaway.spec.environment import AnalysisSpec

Outcome = Literal["Successful", "Failed", "Inconclusive", "Error"]

Figures = Callable[..., "LiveFigures"]
"""`figures(project, model, number, since=...)`, as `seaway.serving.live.live_figures`."""


@dataclass(frozen=True)
class Check:
    """One limit compared with the candidate's figure; `passed` None: not computable."""

    name: str
    value: float | None
    limit: float
    passed: bool | None
    stable: float | None = None
    """Stable's figure on the same measure, for people comparing the two."""
    note: str | None = None
    """Why the check was skipped, when it was."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "limit": self.limit,
            "passed": self.passed,
            "stable": self.stable,
            "note": self.note,
        }


@dataclass(frozen=True)
class AnalysisResult:
    outcome: Outcome
    checks: list[Check] = field(default_factory=list)
    requests: int = 0
    message: str = ""

    @property
    def failed_checks(self) -> list[Check]:
        return [c for c in self.checks if c.passed is False]

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "requests": self.requests,
            "message": self.message,
            "checks": [c.to_dict() for c in self.checks],
        }


def _finite(value: float | None) -> float | None:
    if value is None or math.isnan(value):
        return None
    return float(value)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _compare(
    name: str, value: float | None, limit: float, stable: float | None, note: str
) -> Check:
    if value is None:
        return Check(name, None, limit, None, stable, note)
    return Check(name, value, limit, value <= limit, stable)


def analyse(
    spec: AnalysisSpec, candidate: LiveFigures, stable: LiveFigures | None
) -> AnalysisResult:
    """Judge the candidate's figures against `spec` (see the module docstring). No I/O."""
    from seaway.serving.live import prediction_psi

    checks: list[Check] = []
    if spec.max_error_rate is not None:
        checks.append(
            _compare(
                "error_rate",
                _finite(candidate.error_rate),
                spec.max_error_rate,
                _finite(stable.error_rate) if stable is not None else None,
                "no requests answered",
            )
        )
    for name, limit, q in (("p50_ms", spec.max_p50_ms, 0.5), ("p99_ms", spec.max_p99_ms, 0.99)):
        if limit is not None:
            checks.append(
                _compare(
                    name,
                    _ms(candidate.quantile(q)),
                    limit,
                    _ms(stable.quantile(q)) if stable is not None else None,
                    "no latencies recorded",
                )
            )
    if spec.max_prediction_psi is not None:
        if stable is None:
            checks.append(
                Check(
                    "prediction_psi",
                    None,
                    spec.max_prediction_psi,
                    None,
                    note="no stable version to compare predictions with",
                )
            )
        else:
            checks.append(
                _compare(
                    "prediction_psi",
                    _finite(prediction_psi(stable, candidate)),
                    spec.max_prediction_psi,
                    None,
                    "no prediction sketch shared with stable yet",
                )
            )
    if spec.max_class_flip_rate is not None:
        agreement = candidate.shadow_agreement
        flips = 1.0 - agreement.rate if agreement.compared else None
        checks.append(
            _compare(
                "class_flip_rate",
                flips,
                spec.max_class_flip_rate,
                None,
                "no mirrored requests compared",
            )
        )

    requests = int(candidate.requests)
    skipped = [c for c in checks if c.passed is None]
    failed = [c for c in checks if c.passed is False]
    skipped_text = "; ".join(f"{c.name} skipped: {c.note}" for c in skipped)
    if requests < spec.min_requests:
        message = f"{requests} of the {spec.min_requests} requests needed to judge"
        return AnalysisResult("Inconclusive", checks, requests, message)
    if failed:
        message = "; ".join(
            f"{c.name} {_fmt(c.value or 0.0)} > {_fmt(c.limit)}"
            + (f" (stable {_fmt(c.stable)})" if c.stable is not None else "")
            for c in failed
        )
        if skipped_text:
            message += f"; {skipped_text}"
        return AnalysisResult("Failed", checks, requests, message)
    passed = len(checks) - len(skipped)
    message = f"{passed} of {len(checks)} checks passed over {requests} requests"
    if skipped_text:
        message += f"; {skipped_text}"
    return AnalysisResult("Successful", checks, requests, message)


def measure(
    project: Project,
    rollout: Rollout,
    spec: AnalysisSpec,
    *,
    since: datetime,
    figures: Figures | None = None,
) -> AnalysisResult:
    """Read the candidate's and stable's live figures since `since` and judge them. Any
    failure to read is an `Error` outcome carrying the reason, never an exception: the
    engine retries it and counts it against `error_limit`."""
    if figures is None:
        from seaway.serving.live import live_figures

        figures = live_figures
    try:
        candidate = figures(project, rollout.model, rollout.candidate, since=since)
        stable = (
            figures(project, rollout.model, rollout.stable, since=since)
            if rollout.stable is not None
            else None
        )
    except Exception as exc:
        reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        return AnalysisResult("Error", [], 0, f"could not read the live figures: {reason}")
    return analyse(spec, candidate, stable)


__all__ = ["AnalysisResult", "Check", "Figures", "Outcome", "analyse", "measure"]
