"""The NumPy metrics agree with scikit-learn's, and are NaN where a metric is undefined."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from seaway.errors import UsageError
from seaway.gates.measures import METRICS, Prediction, auc, get_metric, log_loss

RNG = np.random.default_rng(7)
Y = RNG.integers(0, 2, 500)
# Scores correlated with the label, with ties (rounded) to exercise average ranks.
P1 = np.clip(np.round(0.35 * Y + RNG.random(500) * 0.65, 2), 0, 1)
PROBA = np.column_stack([1 - P1, P1])
LABELS = (P1 >= 0.5).astype(int)


def test_binary_metrics_match_scikit_learn() -> None:
    prediction = Prediction(LABELS, PROBA, [0, 1])
    expected = {
        "auc": skm.roc_auc_score(Y, P1),
        "log_loss": skm.log_loss(Y, PROBA),
        "accuracy": skm.accuracy_score(Y, LABELS),
        "precision": skm.precision_score(Y, LABELS),
        "recall": skm.recall_score(Y, LABELS),
        "f1": skm.f1_score(Y, LABELS),
    }
    for name, value in expected.items():
        assert METRICS[name](Y, prediction) == pytest.approx(value, abs=1e-9), name


def test_multiclass_metrics_are_macro_averages_like_scikit_learn() -> None:
    y = RNG.integers(0, 3, 600)
    raw = RNG.random((600, 3)) + np.eye(3)[y] * 0.8
    proba = raw / raw.sum(axis=1, keepdims=True)
    labels = proba.argmax(axis=1)
    prediction = Prediction(labels, proba, [0, 1, 2])
    assert METRICS["auc"](y, prediction) == pytest.approx(
        skm.roc_auc_score(y, proba, multi_class="ovr", average="macro")
    )
    assert METRICS["f1"](y, prediction) == pytest.approx(skm.f1_score(y, labels, average="macro"))
    assert METRICS["precision"](y, prediction) == pytest.approx(
        skm.precision_score(y, labels, average="macro")
    )
    assert METRICS["log_loss"](y, prediction) == pytest.approx(skm.log_loss(y, proba))


def test_string_labels_use_the_columns_order_given() -> None:
    y = np.where(Y == 1, "yes", "no")
    assert auc(y, PROBA, ["no", "yes"]) == pytest.approx(skm.roc_auc_score(Y, P1))


def test_regression_metrics_match_scikit_learn() -> None:
    y = RNG.normal(size=300)
    pred = y + RNG.normal(scale=0.3, size=300)
    p = Prediction(pred)
    assert METRICS["rmse"](y, p) == pytest.approx(math.sqrt(skm.mean_squared_error(y, pred)))
    assert METRICS["mae"](y, p) == pytest.approx(skm.mean_absolute_error(y, pred))
    assert METRICS["r2"](y, p) == pytest.approx(skm.r2_score(y, pred))


def test_undefined_metrics_are_nan_not_a_made_up_number() -> None:
    ones = np.ones(20, dtype=int)
    assert math.isnan(auc(ones, np.linspace(0, 1, 20)))
    # No predicted positive: precision is undefined.
    assert math.isnan(METRICS["precision"](Y, Prediction(np.zeros(500, dtype=int))))


def test_directions_and_unknown_metrics() -> None:
    assert get_metric("auc").worse_by(0.8, 0.7) == pytest.approx(0.1)
    assert get_metric("rmse").worse_by(1.0, 1.5) == pytest.approx(0.5)
    with pytest.raises(UsageError, match="cannot compute the metric 'gini'"):
        get_metric("gini")
    with pytest.raises(UsageError, match="does not predict"):
        log_loss(np.array([0, 2]), PROBA[:2], [0, 1])
