"""Latency budget: the median and 99th-percentile time of one predict() call on `batch` rows.

The rows come from the evaluation set (repeated when it has fewer than `batch`), already
narrowed to the model's inputs, so the time is the model's own: loading, reading data and the
first calls are outside it. After `WARMUP` untimed calls (caches, lazy initialisation), calls
are timed one by one until `MAX_RUNS` calls or `TIME_BUDGET_S` seconds, whichever comes
first, but at least `MIN_RUNS` unless a call alone takes longer than `HARD_LIMIT_S` in total:
a p99 needs about a hundred samples to mean anything, and a gate must not hang on a slow
model. The number of calls is in the figures.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from seaway.gates.base import GateResult, GateStatus, outcome

if TYPE_CHECKING:
    from seaway.gates.context import GateContext
    from seaway.spec.gates import LatencyGate

KIND = "latency"
WARMUP = 3
MIN_RUNS = 20
MAX_RUNS = 200
TIME_BUDGET_S = 1.0
HARD_LIMIT_S = 5.0


def label(gate: LatencyGate) -> str:
    return f"latency(batch {gate.latency.batch})"


def time_calls(call: Any) -> np.ndarray:
    """Seconds taken by each timed call of `call()`."""
    for _ in range(WARMUP):
        call()
    timings: list[float] = []
    started = time.perf_counter()
    while len(timings) < MAX_RUNS:
        t0 = time.perf_counter()
        call()
        timings.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
        if elapsed >= HARD_LIMIT_S or (elapsed >= TIME_BUDGET_S and len(timings) >= MIN_RUNS):
            break
    return np.asarray(timings)


def evaluate(gate: LatencyGate, ctx: GateContext) -> GateResult:
    spec = gate.latency
    name = label(gate)
    features, _ = ctx.evaluation()
    data = ctx.model_inputs(features)
    if data.num_rows == 0:
        message = "the evaluation data has no rows to time predictions on"
        return outcome(KIND, name, gate, GateStatus.ERROR, message)
    batch = data.take(np.arange(spec.batch) % data.num_rows)
    model = ctx.model()
    timings = time_calls(lambda: model.predict(batch)) * 1000.0
    p50 = float(np.percentile(timings, 50))
    p99 = float(np.percentile(timings, 99))
    figures: dict[str, Any] = {
        "batch": spec.batch,
        "runs": len(timings),
        "p50_ms": round(p50, 4),
        "p99_ms": round(p99, 4),
        "mean_ms": round(float(timings.mean()), 4),
        "max_ms": round(float(timings.max()), 4),
        "budget_p50_ms": spec.p50_ms,
        "budget_p99_ms": spec.p99_ms,
    }
    measured = f"p50 {p50:.2f} ms, p99 {p99:.2f} ms over {len(timings)} calls"
    over = []
    if spec.p50_ms is not None and p50 > spec.p50_ms:
        over.append(f"p50 above {spec.p50_ms:g} ms")
    if spec.p99_ms is not None and p99 > spec.p99_ms:
        over.append(f"p99 above {spec.p99_ms:g} ms")
    if over:
        message = f"{measured}: {', '.join(over)}"
        return outcome(KIND, name, gate, GateStatus.FAILED, message, figures)
    return outcome(KIND, name, gate, GateStatus.PASSED, measured, figures)
