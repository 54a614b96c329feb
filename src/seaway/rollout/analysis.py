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

Quality checks judge the candidate on requests whose true labels were posted
(`seaway.monitor.feedback`), answered since the step began: `min_accuracy`, `min_auc`,
`max_mae`, and `max_quality_drop`, the fall of its accuracy (AUC when both versions give
probabilities) below stable's on labels of the same period. They wait for `min_labels`
labelled rows (and stable's too, for the drop): with fewer, and nothing else failed, the
outcome is Inconclusive, as with too few requests. A figure the answers cannot give (AUC
of a model without probabilities, MAE of a classifier) is skipped like any other.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from seaway.monitor.quality import QualityFigures
    from seaway.project import Project
    from seaway.rollout.records import Rollout
    from seaway.serving.live import LiveFigures
    from seaway.spec.environment import AnalysisSpec

Outcome = Literal["Successful", "Failed", "Inconclusive", "Error"]

Figures = Callable[..., "LiveFigures"]
"""`figures(project, model, number, since=...)`, as `seaway.serving.live.live_figures`."""

Quality = Callable[..., "QualityFigures"]
"""`quality(project, model, number, since=...)`, as `seaway.monitor.quality.live_quality`."""


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
    floor: bool = False
    """The limit is a least value (min_accuracy), not a largest one."""

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
    labels: int | None = None
    """The candidate's labelled rows, when a quality limit was set."""

    @property
    def failed_checks(self) -> list[Check]:
        return [c for c in self.checks if c.passed is False]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "outcome": self.outcome,
            "requests": self.requests,
            "message": self.message,
            "checks": [c.to_dict() for c in self.checks],
        }
        if self.labels is not None:
            out["labels"] = self.labels
        return out


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


def _quality_checks(
    spec: AnalysisSpec, candidate: QualityFigures | None, stable: QualityFigures | None
) -> tuple[list[Check], str | None]:
    """The quality checks, and why they cannot be judged yet (too few labels), if so."""
    checks: list[Check] = []
    have = candidate.labels if candidate is not None else 0
    short = (
        f"{have} of the {spec.min_labels} labelled rows needed to judge quality"
        if have < spec.min_labels
        else None
    )

    def judged(
        name: str, value: float | None, limit: float, other: float | None, floor: bool, why: str
    ) -> Check:
        if short is not None:
            return Check(name, value, limit, None, other, short, floor)
        if value is None:
            return Check(name, None, limit, None, other, why, floor)
        passed = value >= limit if floor else value <= limit
        return Check(name, value, limit, passed, other, None, floor)

    def fig(q: QualityFigures | None, name: str) -> float | None:
        return q.metric(name) if q is not None else None

    if spec.min_accuracy is not None:
        checks.append(
            judged(
                "accuracy",
                fig(candidate, "accuracy"),
                spec.min_accuracy,
                fig(stable, "accuracy"),
                True,
                "no accuracy: the answers hold no labels",
            )
        )
    if spec.min_auc is not None:
        checks.append(
            judged(
                "auc",
                fig(candidate, "auc"),
                spec.min_auc,
                fig(stable, "auc"),
                True,
                "no AUC: needs a binary classifier's probabilities and both classes labelled",
            )
        )
    if spec.max_mae is not None:
        checks.append(
            judged(
                "mae",
                fig(candidate, "mae"),
                spec.max_mae,
                fig(stable, "mae"),
                False,
                "no MAE: the answers or labels are not numbers",
            )
        )
    if spec.max_quality_drop is not None:
        limit = spec.max_quality_drop
        both_auc = fig(candidate, "auc") is not None and fig(stable, "auc") is not None
        metric = "auc" if both_auc else "accuracy"
        name = f"{metric}_drop"
        mine, theirs = fig(candidate, metric), fig(stable, metric)
        stable_labels = stable.labels if stable is not None else 0
        if stable is None:
            checks.append(Check(name, None, limit, None, None, "no stable version to compare"))
        elif short is None and stable_labels < spec.min_labels:
            short = f"stable has {stable_labels} of the {spec.min_labels} labelled rows needed"
            checks.append(Check(name, None, limit, None, theirs, short))
        else:
            drop = theirs - mine if mine is not None and theirs is not None else None
            checks.append(judged(name, drop, limit, theirs, False, f"no {metric} to compare"))
    return checks, short


def analyse(
    spec: AnalysisSpec,
    candidate: LiveFigures,
    stable: LiveFigures | None,
    *,
    quality: QualityFigures | None = None,
    stable_quality: QualityFigures | None = None,
) -> AnalysisResult:
    """Judge the candidate's figures against `spec` (see the module docstring). No I/O.
    `quality` and `stable_quality` are the two versions' live quality (see
    `seaway.monitor.quality.live_quality`), needed only for the quality limits."""
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

    short: str | None = None
    labels: int | None = None
    if spec.judges_quality:
        quality_checks, short = _quality_checks(spec, quality, stable_quality)
        checks.extend(quality_checks)
        labels = quality.labels if quality is not None else 0

    requests = int(candidate.requests)
    skipped = [c for c in checks if c.passed is None]
    failed = [c for c in checks if c.passed is False]
    skipped_text = "; ".join(
        f"{c.name} skipped: {c.note}" for c in skipped if short is None or c.note != short
    )
    if requests < spec.min_requests:
        message = f"{requests} of the {spec.min_requests} requests needed to judge"
        return AnalysisResult("Inconclusive", checks, requests, message, labels)
    if failed:
        message = "; ".join(
            f"{c.name} {_fmt(c.value or 0.0)} {'<' if c.floor else '>'} {_fmt(c.limit)}"
            + (f" (stable {_fmt(c.stable)})" if c.stable is not None else "")
            for c in failed
        )
        if skipped_text:
            message += f"; {skipped_text}"
        return AnalysisResult("Failed", checks, requests, message, labels)
    if short is not None:
        message = short
        if skipped_text:
            message += f"; {skipped_text}"
        return AnalysisResult("Inconclusive", checks, requests, message, labels)
    passed = len(checks) - len(skipped)
    message = f"{passed} of {len(checks)} checks passed over {requests} requests"
    if labels is not None:
        message += f" and {labels} labelled rows"
    if skipped_text:
        message += f"; {skipped_text}"
    return AnalysisResult("Successful", checks, requests, message, labels)


def measure(
    project: Project,
    rollout: Rollout,
    spec: AnalysisSpec,
    *,
    since: datetime,
    figures: Figures | None = None,
    quality: Quality | None = None,
) -> AnalysisResult:
    """Read the candidate's and stable's live figures since `since` (and their live quality,
    when the spec sets a quality limit) and judge them. Any failure to read is an `Error`
    outcome carrying the reason, never an exception: the engine retries it and counts it
    against `error_limit`."""
    if figures is None:
        from seaway.serving.live import live_figures

        figures = live_figures
    if quality is None and spec.judges_quality:
        from seaway.monitor.quality import live_quality

        quality = live_quality
    model, stable_number = rollout.model, rollout.stable
    candidate_quality = stable_quality = None
    try:
        candidate = figures(project, model, rollout.candidate, since=since)
        stable = (
            figures(project, model, stable_number, since=since)
            if stable_number is not None
            else None
        )
        if quality is not None and spec.judges_quality:
            candidate_quality = quality(project, model, rollout.candidate, since=since)
            if stable_number is not None:
                stable_quality = quality(project, model, stable_number, since=since)
    except Exception as exc:
        reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        return AnalysisResult("Error", [], 0, f"could not read the live figures: {reason}")
    return analyse(
        spec, candidate, stable, quality=candidate_quality, stable_quality=stable_quality
    )


__all__ = ["AnalysisResult", "Check", "Figures", "Outcome", "Quality", "analyse", "measure"]
