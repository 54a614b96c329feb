"""No regression: the candidate is not worse than the version holding an alias (the champion).

Both sides are the metrics recorded at registration (`version.metrics`), so the comparison
needs neither model. The tolerance is absolute, or a fraction of the champion's value with
`relative: true`; `direction` says whether higher (auc) or lower (rmse) is better.

With no version holding the alias yet there is nothing to regress from: the gate passes and
says so. The candidate being the champion itself passes too. A champion that did not record
the metric cannot be compared with: `inconclusive`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from seaway.gates.base import GateResult, GateStatus, fmt, outcome
from seaway.gates.metric import missing_metric

if TYPE_CHECKING:
    from seaway.gates.context import GateContext
    from seaway.spec.gates import NoRegressionGate

KIND = "no_regression"


def label(gate: NoRegressionGate) -> str:
    spec = gate.no_regression
    return f"no_regression({spec.metric} vs {spec.against})"


def evaluate(gate: NoRegressionGate, ctx: GateContext) -> GateResult:
    spec = gate.no_regression
    name = label(gate)
    figures: dict[str, Any] = {
        "metric": spec.metric,
        "against": spec.against,
        "direction": spec.direction,
        "tolerance": spec.tolerance,
        "relative": spec.relative,
    }
    value = (ctx.version.metrics or {}).get(spec.metric)
    if value is None:
        message, hint = missing_metric(ctx, spec.metric)
        return outcome(KIND, name, gate, GateStatus.ERROR, message, figures, hint=hint)
    candidate = float(value)
    figures["candidate"] = candidate
    reference = ctx.reference_version(spec.against)
    if reference is None:
        message = f"no {spec.against} yet: nothing to compare {spec.metric} with"
        return outcome(KIND, name, gate, GateStatus.PASSED, message, figures)
    figures["reference_version"] = reference.number
    if reference.number == ctx.version.number:
        message = f"{ctx.version.ref} is the {spec.against} itself"
        return outcome(KIND, name, gate, GateStatus.PASSED, message, figures)
    ref_value = (reference.metrics or {}).get(spec.metric)
    if ref_value is None or not math.isfinite(float(ref_value)):
        message = f"the {spec.against} {reference.ref} recorded no metric '{spec.metric}'"
        return outcome(KIND, name, gate, GateStatus.INCONCLUSIVE, message, figures)
    ref_float = float(ref_value)
    allowed = spec.tolerance * abs(ref_float) if spec.relative else spec.tolerance
    maximize = spec.direction == "maximize"
    limit = ref_float - allowed if maximize else ref_float + allowed
    ok = candidate >= limit if maximize else candidate <= limit
    figures.update(reference=ref_float, change=candidate - ref_float, allowed=allowed, limit=limit)
    compared = (
        f"{spec.metric} {fmt(candidate)} vs {fmt(ref_float)} for the {spec.against} "
        f"({reference.ref})"
    )
    if ok:
        return outcome(KIND, name, gate, GateStatus.PASSED, compared, figures)
    bound = "below" if maximize else "above"
    message = f"{compared}: {bound} the limit {fmt(limit)} (tolerance {fmt(allowed)})"
    return outcome(KIND, name, gate, GateStatus.FAILED, message, figures)
