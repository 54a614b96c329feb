"""Robustness: predictions stay put when the inputs are slightly perturbed.

Every numeric input column gets Gaussian noise with a standard deviation of `noise` times the
column's own standard deviation on the evaluation set (seeded, so two runs agree); integer
columns are rounded back to integers, so they keep their type and their meaning (a count
stays a count). Text, categorical and boolean columns are left as they are, and so are
missing values.

Two figures come out: the flip rate, the share of rows whose predicted class changes, and,
with `max_metric_drop`, how much the metric gets worse on the noisy copy than on the clean
one. A flip rate needs classes: for a model that predicts continuous values the gate reports
the mean change instead and, with only `max_flip_rate` set, is `inconclusive` (use
`max_metric_drop` with rmse or mae for a regressor).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from seaway.gates.base import GateResult, GateStatus, fmt, outcome
from seaway.gates.measures import get_metric

if TYPE_CHECKING:
    import pyarrow as pa

    from seaway.gates.context import GateContext
    from seaway.spec.gates import RobustnessGate

KIND = "robustness"


def label(gate: RobustnessGate) -> str:
    return f"robustness(noise {gate.robustness.noise:g})"


def _is_number(t: pa.DataType) -> bool:
    import pyarrow as pa

    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def perturb(
    features: pa.Table, columns: list[str], noise: float, seed: int
) -> tuple[pa.Table, list[str]]:
    """A copy of `features` with noise on the numeric `columns`; and the columns changed."""
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    changed: list[str] = []
    table = features
    for name in columns:
        column = table[name]
        if not _is_number(column.type):
            continue
        values = np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)
        missing = np.isnan(values)
        std = float(np.std(values[~missing])) if (~missing).any() else 0.0
        if std == 0.0 or not math.isfinite(std):
            continue
        noisy = values + rng.normal(0.0, noise * std, size=len(values))
        if pa.types.is_integer(column.type):
            noisy = np.rint(noisy)
        filled = np.where(missing, 0, noisy)
        array = pa.array(filled, mask=missing).cast(column.type, safe=False)
        table = table.set_column(table.column_names.index(name), name, array)
        changed.append(name)
    return table, changed


def _discrete(labels: np.ndarray) -> bool:
    if labels.dtype.kind in "biuUSOM":
        return True
    if labels.dtype.kind == "f":
        finite = labels[np.isfinite(labels)]
        return bool(np.all(finite == np.rint(finite))) and len(np.unique(finite)) <= 100
    return False


def evaluate(gate: RobustnessGate, ctx: GateContext) -> GateResult:
    spec = gate.robustness
    name = label(gate)
    features, y_true = ctx.evaluation()
    inputs = ctx.model_inputs(features).column_names
    noisy, changed = perturb(features, inputs, spec.noise, ctx.seed)
    figures: dict[str, Any] = {
        "noise": spec.noise,
        "rows": features.num_rows,
        "perturbed_columns": changed,
        "max_flip_rate": spec.max_flip_rate,
        "max_metric_drop": spec.max_metric_drop,
    }
    if not changed:
        message = "no numeric input column with any spread to perturb"
        return outcome(KIND, name, gate, GateStatus.INCONCLUSIVE, message, figures)

    metric = get_metric(spec.metric) if spec.metric and spec.max_metric_drop is not None else None
    want_proba = metric is not None and metric.needs == "scores"
    clean = ctx.predict(features, proba=want_proba, y_true=y_true)
    shaken = ctx.predict(noisy, proba=want_proba, y_true=y_true)

    failures: list[str] = []
    unknown: list[str] = []
    passed: list[str] = []
    hint: str | None = None
    if _discrete(clean.labels):
        flip_rate = float(np.mean(clean.labels != shaken.labels))
        figures["flip_rate"] = flip_rate
        text = f"{100 * flip_rate:.2f}% of predictions flipped"
        if spec.max_flip_rate is not None and flip_rate > spec.max_flip_rate:
            failures.append(f"{text}, above {100 * spec.max_flip_rate:.2f}%")
        else:
            passed.append(text)
    else:
        before = np.asarray(clean.labels, dtype=np.float64)
        after = np.asarray(shaken.labels, dtype=np.float64)
        figures["mean_abs_change"] = float(np.mean(np.abs(after - before)))
        if spec.max_flip_rate is not None:
            hint = "use max_metric_drop with rmse or mae for a regressor"
            unknown.append(
                "the model predicts continuous values, so no prediction 'flips' "
                f"(mean change {fmt(figures['mean_abs_change'])})"
            )

    if metric is not None and spec.max_metric_drop is not None:
        before_value = metric(y_true, clean)
        after_value = metric(y_true, shaken)
        drop = metric.worse_by(before_value, after_value)
        figures.update(
            metric=metric.name, metric_clean=before_value, metric_noisy=after_value, drop=drop
        )
        text = f"{metric.name} {fmt(before_value)} -> {fmt(after_value)}"
        if math.isnan(drop):
            unknown.append(f"{metric.name} is not defined on the evaluation data")
        elif drop > spec.max_metric_drop:
            failures.append(f"{text}, a drop of {fmt(drop)} above {spec.max_metric_drop:g}")
        else:
            passed.append(text)

    if failures:
        return outcome(KIND, name, gate, GateStatus.FAILED, "; ".join(failures + unknown), figures)
    if unknown:
        return outcome(
            KIND, name, gate, GateStatus.INCONCLUSIVE, "; ".join(unknown), figures, hint=hint
        )
    return outcome(KIND, name, gate, GateStatus.PASSED, "; ".join(passed), figures)
