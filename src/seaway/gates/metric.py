"""Metric threshold: a metric the registering run recorded is within `min`/`max`.

It reads `version.metrics` only, so it never loads the model or any data. A metric the
version did not record is an `error` (the gate could not look), naming the metrics it has.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from seaway.gates.base import GateResult, GateStatus, fmt, outcome

if TYPE_CHECKING:
    from seaway.gates.context import GateContext
    from seaway.spec.gates import MetricGate

KIND = "metric"


def label(gate: MetricGate) -> str:
    if gate.min is not None and gate.max is not None:
        return f"{gate.min:g}<={gate.metric}<={gate.max:g}"
    if gate.min is not None:
        return f"{gate.metric}>={gate.min:g}"
    return f"{gate.metric}<={gate.max:g}"


def missing_metric(ctx: GateContext, metric: str) -> tuple[str, str]:
    """(message, hint) for a metric the version did not record."""
    known = sorted(ctx.version.metrics or {})
    return (
        f"{ctx.version.ref} recorded no metric '{metric}' "
        f"(it has: {', '.join(known) if known else 'none'})",
        "log the metric in the pipeline step that evaluates the model, or correct the "
        "metric name in the gate",
    )


def evaluate(gate: MetricGate, ctx: GateContext) -> GateResult:
    name = label(gate)
    value = (ctx.version.metrics or {}).get(gate.metric)
    figures = {"metric": gate.metric, "value": value, "min": gate.min, "max": gate.max}
    if value is None or not math.isfinite(float(value)):
        if value is None:
            message, hint = missing_metric(ctx, gate.metric)
        else:
            message, hint = f"{gate.metric} is {value}, not a number", None
        return outcome(KIND, name, gate, GateStatus.ERROR, message, figures, hint=hint)
    value = float(value)
    if gate.min is not None and value < gate.min:
        message = f"{gate.metric} {fmt(value)} is below the minimum {gate.min:g}"
        return outcome(KIND, name, gate, GateStatus.FAILED, message, figures)
    if gate.max is not None and value > gate.max:
        message = f"{gate.metric} {fmt(value)} is above the maximum {gate.max:g}"
        return outcome(KIND, name, gate, GateStatus.FAILED, message, figures)
    return outcome(KIND, name, gate, GateStatus.PASSED, f"{gate.metric} {fmt(value)}", figures)
