"""Slice fairness: the metric does not differ too much between the values of a column.

The model predicts once on the whole evaluation set; the metric is then computed on the rows
of each value of the slice column (missing values form a slice of their own). The slice
column is read from the evaluation data whether or not the model takes it as an input, so a
model can be checked across a column it was deliberately not given (gender, region).

The gap is the best slice's metric minus the worst's. A slice with fewer than
`MIN_SLICE_ROWS` rows, or with a single class for a classification metric, cannot be measured
fairly: AUC is undefined there, and an accuracy on 12 rows is mostly noise. Such slices are
reported but left out of the gap; when the measured slices alone already break the limit the
gate fails, and when they keep to it the gate is `inconclusive` rather than passed, because
the slices it could not measure might not.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from seaway.gates.base import DataUnavailable, GateResult, GateStatus, fmt, outcome
from seaway.gates.measures import Prediction, get_metric

if TYPE_CHECKING:
    from seaway.gates.context import GateContext
    from seaway.spec.gates import FairnessGate

KIND = "fairness"
MIN_SLICE_ROWS = 30
# Slices listed in the figures; a column with thousands of values is not a slice column.
MAX_SLICES_SHOWN = 50
MISSING = "(missing)"


def label(gate: FairnessGate) -> str:
    spec = gate.fairness
    return f"fairness({spec.metric} by {spec.slice})"


def _subset(prediction: Prediction, rows: np.ndarray) -> Prediction:
    proba = prediction.proba[rows] if prediction.proba is not None else None
    return Prediction(prediction.labels[rows], proba, prediction.classes)


def evaluate(gate: FairnessGate, ctx: GateContext) -> GateResult:
    spec = gate.fairness
    name = label(gate)
    metric = get_metric(spec.metric)
    features, y_true = ctx.evaluation()
    if spec.slice not in features.column_names:
        raise DataUnavailable(
            f"the evaluation data has no column '{spec.slice}' to slice by (its columns: "
            f"{', '.join(features.column_names)})",
            hint="evaluate on data that holds the slice column, even if the model does not "
            "take it as an input",
        )
    prediction = ctx.predict(features, proba=metric.needs == "scores", y_true=y_true)
    keys = features[spec.slice].to_pylist()
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(MISSING if key is None else str(key), []).append(i)

    slices: dict[str, dict[str, Any]] = {}
    measured: dict[str, float] = {}
    for key in sorted(groups):
        rows = np.asarray(groups[key])
        entry: dict[str, Any] = {"rows": len(rows)}
        truth = y_true[rows]
        if len(rows) < MIN_SLICE_ROWS:
            entry["note"] = f"too few rows (fewer than {MIN_SLICE_ROWS})"
        elif metric.needs != "values" and len(np.unique(truth)) < 2:
            entry["note"] = "one class only"
        else:
            value = metric(truth, _subset(prediction, rows))
            if math.isnan(value):
                entry["note"] = f"{metric.name} is not defined on this slice"
            else:
                entry["value"] = value
                measured[key] = value
        slices[key] = entry

    unmeasured = [k for k, e in slices.items() if "value" not in e]
    shown = dict(list(slices.items())[:MAX_SLICES_SHOWN])
    figures: dict[str, Any] = {
        "metric": metric.name,
        "slice": spec.slice,
        "max_gap": spec.max_gap,
        "slices": shown,
        "n_slices": len(slices),
        "unmeasured": unmeasured[:MAX_SLICES_SHOWN],
    }
    if len(measured) < 2:
        message = (
            f"fewer than two values of {spec.slice} have enough rows of both classes to "
            f"compare {metric.name} ({len(measured)} of {len(slices)} measured)"
        )
        return outcome(KIND, name, gate, GateStatus.INCONCLUSIVE, message, figures)
    best_key = (max if metric.higher_is_better else min)(measured, key=lambda k: measured[k])
    worst_key = (min if metric.higher_is_better else max)(measured, key=lambda k: measured[k])
    gap = abs(measured[best_key] - measured[worst_key])
    figures.update(gap=gap, best=best_key, worst=worst_key)
    spread = (
        f"{metric.name} {fmt(measured[worst_key])} for {spec.slice}={worst_key} vs "
        f"{fmt(measured[best_key])} for {spec.slice}={best_key}: gap {fmt(gap)}"
    )
    if gap > spec.max_gap:
        message = f"{spread}, above {spec.max_gap:g}"
        return outcome(KIND, name, gate, GateStatus.FAILED, message, figures)
    if unmeasured:
        listed = ", ".join(unmeasured[:5]) + (" …" if len(unmeasured) > 5 else "")
        message = f"{spread}, but {len(unmeasured)} slice(s) could not be measured: {listed}"
        return outcome(KIND, name, gate, GateStatus.INCONCLUSIVE, message, figures)
    return outcome(KIND, name, gate, GateStatus.PASSED, spread, figures)
