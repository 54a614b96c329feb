"""Model quality metrics in NumPy (and SciPy's ranks): what the gates compute on data.

scikit-learn is an optional extra, so the gates cannot lean on `sklearn.metrics`; these are
the usual definitions, checked against scikit-learn in the tests.

Each metric says what it needs from the model (`scores`: class probabilities, `labels`:
predicted classes, `values`: regression outputs) and whether higher is better, which the
robustness and fairness gates need to tell a drop from a gain.

A metric that is not defined on the data (AUC on one class only, precision with no
predicted positive) is NaN rather than a made-up 0 or 1: the gates turn NaN into
`inconclusive` instead of a verdict.

Binary classification takes the positive class to be `1` (or `True`) when it occurs and the
larger label otherwise; with more than two classes, precision, recall, F1 and AUC are macro
averages (one class against the rest).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from seaway.errors import UsageError

Needs = Literal["scores", "labels", "values"]

_EPS = 1e-15


@dataclass(frozen=True)
class Prediction:
    """What a model said about some rows.

    `labels` are predict()'s output; `proba` is predict_proba()'s (rows x classes) when the
    model has it, with `classes` naming its columns.
    """

    labels: NDArray[Any]
    proba: NDArray[np.float64] | None = None
    classes: Sequence[Any] | None = None


def _nan() -> float:
    return float("nan")


def _positive(labels: NDArray[Any]) -> Any:
    values = list(np.unique(labels))
    for candidate in (1, True):
        if any(_same(v, candidate) for v in values):
            return next(v for v in values if _same(v, candidate))
    return values[-1] if values else 1


def _same(a: Any, b: Any) -> bool:
    # `1 == True` in Python, but a string label "1" is not the number 1.
    if isinstance(a, str | bytes) != isinstance(b, str | bytes):
        return False
    try:
        return bool(a == b)
    except Exception:
        return False


def accuracy(y_true: NDArray[Any], y_pred: NDArray[Any]) -> float:
    if len(y_true) == 0:
        return _nan()
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def _confusion(y_true: NDArray[Any], y_pred: NDArray[Any], positive: Any) -> tuple[int, int, int]:
    t = np.asarray(y_true) == positive
    p = np.asarray(y_pred) == positive
    return int(np.sum(t & p)), int(np.sum(~t & p)), int(np.sum(t & ~p))


def _ratio(num: float, den: float) -> float:
    return num / den if den else _nan()


def _classes(y_true: NDArray[Any], y_pred: NDArray[Any]) -> list[Any]:
    return list(np.unique(np.concatenate([np.asarray(y_true), np.asarray(y_pred)])))


def _per_class(
    y_true: NDArray[Any], y_pred: NDArray[Any], score: Callable[[int, int, int], float]
) -> float:
    classes = _classes(y_true, y_pred)
    if len(classes) <= 2:
        return score(*_confusion(y_true, y_pred, _positive(np.asarray(y_true))))
    values = [score(*_confusion(y_true, y_pred, c)) for c in classes]
    defined = [v for v in values if not math.isnan(v)]
    return float(np.mean(defined)) if defined else _nan()


def precision(y_true: NDArray[Any], y_pred: NDArray[Any]) -> float:
    return _per_class(y_true, y_pred, lambda tp, fp, _fn: _ratio(tp, tp + fp))


def recall(y_true: NDArray[Any], y_pred: NDArray[Any]) -> float:
    return _per_class(y_true, y_pred, lambda tp, _fp, fn: _ratio(tp, tp + fn))


def f1(y_true: NDArray[Any], y_pred: NDArray[Any]) -> float:
    return _per_class(y_true, y_pred, lambda tp, fp, fn: _ratio(2 * tp, 2 * tp + fp + fn))


def _binary_auc(is_positive: NDArray[np.bool_], scores: NDArray[np.float64]) -> float:
    from scipy.stats import rankdata

    n_pos = int(is_positive.sum())
    n_neg = len(is_positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return _nan()
    # Mann-Whitney U with average ranks for ties: the probability that a random positive
    # scores above a random negative, ties counting half.
    ranks = rankdata(scores)
    u = float(ranks[is_positive].sum()) - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


def auc(y_true: NDArray[Any], scores: NDArray[Any], classes: Sequence[Any] | None = None) -> float:
    """ROC AUC. `scores` is one score per row (binary) or a rows x classes matrix."""
    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 1 or (s.ndim == 2 and s.shape[1] == 1):
        return _binary_auc(y == _positive(y), s.reshape(-1))
    cols = list(classes) if classes is not None else list(np.unique(y))
    if len(cols) != s.shape[1]:
        raise UsageError(
            f"the model gives {s.shape[1]} class probabilities but {len(cols)} classes are known",
            hint="the evaluation target must use the labels the model was trained on",
        )
    if s.shape[1] == 2:
        return _binary_auc(y == cols[1], s[:, 1])
    values = [_binary_auc(y == c, s[:, i]) for i, c in enumerate(cols)]
    defined = [v for v in values if not math.isnan(v)]
    return float(np.mean(defined)) if len(defined) >= 2 else _nan()


def log_loss(y_true: NDArray[Any], proba: NDArray[Any], classes: Sequence[Any] | None) -> float:
    y = np.asarray(y_true)
    p = np.asarray(proba, dtype=np.float64)
    if len(y) == 0:
        return _nan()
    if p.ndim == 1:
        p = np.column_stack([1 - p, p])
    cols = list(classes) if classes is not None else list(np.unique(y))
    if len(cols) != p.shape[1]:
        raise UsageError(
            f"the model gives {p.shape[1]} class probabilities but {len(cols)} classes are known",
            hint="the evaluation target must use the labels the model was trained on",
        )
    index = {c: i for i, c in enumerate(cols)}
    try:
        rows = np.array([index[v] for v in y.tolist()])
    except KeyError as exc:
        raise UsageError(
            f"the evaluation target holds the label {exc.args[0]!r}, which the model "
            f"does not predict (its classes: {cols})"
        ) from None
    picked = np.clip(p[np.arange(len(y)), rows], _EPS, 1.0)
    return float(-np.mean(np.log(picked)))


def _floats(values: NDArray[Any]) -> NDArray[np.float64]:
    return np.asarray(values, dtype=np.float64).reshape(-1)


def rmse(y_true: NDArray[Any], y_pred: NDArray[Any]) -> float:
    if len(y_true) == 0:
        return _nan()
    return float(np.sqrt(np.mean((_floats(y_true) - _floats(y_pred)) ** 2)))


def mae(y_true: NDArray[Any], y_pred: NDArray[Any]) -> float:
    if len(y_true) == 0:
        return _nan()
    return float(np.mean(np.abs(_floats(y_true) - _floats(y_pred))))


def r2(y_true: NDArray[Any], y_pred: NDArray[Any]) -> float:
    y = _floats(y_true)
    if len(y) < 2:
        return _nan()
    total = float(np.sum((y - y.mean()) ** 2))
    if total == 0:
        return _nan()
    return 1.0 - float(np.sum((y - _floats(y_pred)) ** 2)) / total


@dataclass(frozen=True)
class Metric:
    name: str
    needs: Needs
    higher_is_better: bool
    fn: Callable[[NDArray[Any], Prediction], float]

    def __call__(self, y_true: NDArray[Any], prediction: Prediction) -> float:
        return self.fn(np.asarray(y_true), prediction)

    def worse_by(self, before: float, after: float) -> float:
        """How much worse `after` is than `before` (negative when it is better)."""
        return before - after if self.higher_is_better else after - before


def _proba(p: Prediction) -> NDArray[np.float64]:
    if p.proba is None:
        raise UsageError("this metric needs class probabilities")
    return p.proba


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("auc", "scores", True, lambda y, p: auc(y, _proba(p), p.classes)),
        Metric("roc_auc", "scores", True, lambda y, p: auc(y, _proba(p), p.classes)),
        Metric("log_loss", "scores", False, lambda y, p: log_loss(y, _proba(p), p.classes)),
        Metric("accuracy", "labels", True, lambda y, p: accuracy(y, p.labels)),
        Metric("precision", "labels", True, lambda y, p: precision(y, p.labels)),
        Metric("recall", "labels", True, lambda y, p: recall(y, p.labels)),
        Metric("f1", "labels", True, lambda y, p: f1(y, p.labels)),
        Metric("rmse", "values", False, lambda y, p: rmse(y, p.labels)),
        Metric("mae", "values", False, lambda y, p: mae(y, p.labels)),
        Metric("r2", "values", True, lambda y, p: r2(y, p.labels)),
    )
}


def get_metric(name: str) -> Metric:
    metric = METRICS.get(name)
    if metric is None:
        raise UsageError(
            f"seaway cannot compute the metric {name!r} on data",
            hint=f"use one of: {', '.join(METRICS)}",
        )
    return metric
