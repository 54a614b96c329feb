"""Live quality: the figures against scikit-learn's, a version's quality from stored labels,
and quality windows with their breaches and events (SQLite and PostgreSQL)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from seaway._util import utcnow
from seaway.monitor.feedback import FeedbackItem, record_feedback
from seaway.monitor.quality import live_quality, quality_metrics, score_quality
from seaway.monitor.windows import list_windows
from seaway.project import Project
from tests.monitor.test_feedback import log_answers
from tests.rollout import events, register_versions

LONG_AGO = utcnow() - timedelta(days=365)

# -- the figures --------------------------------------------------------------------------


def test_accuracy_and_auc_match_scikit_learn_with_tied_scores() -> None:
    from sklearn.metrics import accuracy_score, roc_auc_score

    rng = np.random.default_rng(3)
    truth = rng.integers(0, 2, 500)
    scores = np.clip(truth * 0.3 + rng.normal(0.35, 0.25, 500), 0, 1).round(1)  # many ties
    predicted = (scores > 0.5).astype(int)
    got = quality_metrics(truth.tolist(), predicted.tolist(), scores.tolist())
    assert got["labels"] == 500
    assert got["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert got["auc"] == pytest.approx(roc_auc_score(truth, scores))
    assert "mae" not in got  # a classifier with probabilities has no MAE


def test_labels_of_other_types_compare_as_the_same_class() -> None:
    got = quality_metrics([1, "1", True, 0, "0", False, 1.0], ["1", 1, 1, False, 0, "0", True])
    assert got["accuracy"] == 1.0
    named = quality_metrics(["yes", "no", "yes", "no"], ["yes", "yes", "yes", "no"])
    assert named["accuracy"] == 0.75


def test_auc_finds_the_positive_class_of_named_labels() -> None:
    from sklearn.metrics import roc_auc_score

    truth = ["stay", "churn", "churn", "stay", "churn", "stay"]
    scores = [0.2, 0.9, 0.4, 0.3, 0.7, 0.6]  # P(churn): predict says churn above 0.5
    predicted = ["churn" if s > 0.5 else "stay" for s in scores]
    got = quality_metrics(truth, predicted, scores)
    assert got["auc"] == pytest.approx(roc_auc_score([t == "churn" for t in truth], scores))
    one_class = quality_metrics(["stay"] * 3, ["stay"] * 3, [0.1, 0.2, 0.3])
    assert "auc" not in one_class and one_class["accuracy"] == 1.0


def test_regression_gets_mae_and_rmse_and_no_accuracy() -> None:
    from sklearn.metrics import mean_absolute_error, mean_squared_error

    truth = [3.0, 1.5, 4.0, 10.0, 0.0]
    predicted = [2.5, 1.5, 5.25, 7.0, 0.5]
    got = quality_metrics(truth, predicted)
    assert got["mae"] == pytest.approx(mean_absolute_error(truth, predicted))
    assert got["rmse"] == pytest.approx(math.sqrt(mean_squared_error(truth, predicted)))
    assert "accuracy" not in got


def test_rows_without_an_answer_are_left_out() -> None:
    got = quality_metrics(["a", "b", "a"], ["a", None, "b"])
    assert got == {"labels": 2.0, "accuracy": 0.5}
    # Whole numbers without probabilities may be classes or counts: both kinds of figure.
    assert set(quality_metrics([1, 0, 1], [1, None, 0])) == {"labels", "accuracy", "mae", "rmse"}
    assert quality_metrics([], []) == {"labels": 0.0}
    with pytest.raises(ValueError, match="one value per row"):
        quality_metrics([1, 0], [1])


# -- a version's quality from stored labels -------------------------------------------------


def _labelled(project: Project, rows: list[tuple[str, int, float, int]], **extra: Any) -> None:
    """(request id, predicted, score, true label) answered by churn@1 and labelled."""
    log_answers(
        project, [{"id": rid, "predict": [p], "proba": [s], **extra} for rid, p, s, _ in rows]
    )
    items = [FeedbackItem(rid, None, [label]) for rid, _, _, label in rows]
    assert record_feedback(project, items).accepted == len(rows)


def test_live_quality_reads_the_labels_of_answers_after_a_time(project: Project) -> None:
    register_versions(project, 2)
    _labelled(project, [("a", 1, 0.9, 1), ("b", 0, 0.2, 1)])
    middle = utcnow()
    _labelled(project, [("c", 1, 0.8, 1), ("d", 0, 0.3, 0), ("e", 1, 0.6, 0)])
    _labelled(project, [("f", 1, 0.9, 1)], number=2, route="shadow")

    everything = live_quality(project, "churn", 1, since=LONG_AGO)
    assert (everything.labels, everything.requests) == (5, 5)
    assert everything.accuracy == pytest.approx(3 / 5)
    later = live_quality(project, "churn", 1, since=middle)
    assert later.labels == 3 and later.accuracy == pytest.approx(2 / 3)
    assert later.auc == 1.0  # the one positive (c, 0.8) scored above both negatives
    shadow = live_quality(project, "churn", 2, since=LONG_AGO, route="shadow")
    assert shadow.labels == 1 and shadow.accuracy == 1.0
    assert live_quality(project, "churn", 2, since=LONG_AGO, route="primary").labels == 0
    assert live_quality(project, "churn", 1, since=utcnow()).to_dict()["labels"] == 0


# -- quality windows ----------------------------------------------------------------------


def settled() -> datetime:
    """A minute from now: labels just posted are past PostgreSQL's settle time."""
    return utcnow() + timedelta(minutes=1)


def _monitored(root: Path, window: str, trigger: str = "") -> Project:
    (root / "seaway.yaml").write_text(
        f"name: demo\nmonitoring:\n  churn:\n    window: {window}\n{trigger}"
    )
    return Project(root)


def test_quality_windows_breach_when_labels_disagree(project_dir: Path, store_env: str) -> None:
    project = _monitored(
        project_dir,
        "{rows: 20}",
        "    on_quality_drop: {metric: accuracy, below: 0.8}\n",
    )
    try:
        register_versions(project, 2)
        right = [(f"r{i}", 1, 0.9, 1) for i in range(20)]
        wrong = [(f"w{i}", 1, 0.9, 0) for i in range(20)]
        _labelled(project, right + wrong + [(f"x{i}", 0, 0.1, 0) for i in range(7)])
        _labelled(project, [(f"s{i}", 0, 0.1, 0) for i in range(20)], number=2, route="shadow")

        windows = score_quality(project, "churn", now=settled())
        assert [(w.number, w.rows, w.score, w.breached) for w in windows] == [
            (1, 20, 1.0, False),
            (1, 20, 0.0, True),
            (2, 20, 1.0, False),
        ]
        first, second, _ = windows
        assert first.kind == "quality" and first.figures["metric"] == "accuracy"
        assert first.figures["threshold"] == 0.8 and first.figures["requests"] == 20
        assert "auc" not in first.figures  # every label in it was 1: no AUC from one class
        assert second.first_id == first.last_id + 1
        assert [w.id for w in list_windows(project, "churn", kind="quality")] == [
            w.id for w in windows
        ]
        scored = [e.data for e in events(project, "monitor.window")]
        assert [(d["kind"], d["score"], d["breached"], d["rows"]) for d in scored] == [
            ("quality", 1.0, False, 20),
            ("quality", 0.0, True, 20),
            ("quality", 1.0, False, 20),
        ]
        (drop,) = events(project, "monitor.quality_drop")
        assert drop.subject == "model:churn@1"
        assert drop.data["window"] == second.id and drop.data["threshold"] == 0.8

        # The 7 labels left over wait for 13 more; nothing is scored twice.
        assert score_quality(project, "churn", now=settled()) == []
        _labelled(project, [(f"y{i}", 0, 0.2, 0) for i in range(13)])
        (third,) = score_quality(project, "churn", now=settled())
        assert (third.rows, third.score, third.first_id) == (20, 1.0, second.last_id + 1)
    finally:
        project.close()


def test_duration_windows_close_once_their_time_has_passed(
    project_dir: Path, store_env: str
) -> None:
    project = _monitored(project_dir, "{duration: 1h}")
    try:
        register_versions(project, 1)
        _labelled(project, [("a", 1, 0.9, 1), ("b", 1, 0.9, 0), ("c", 0, 0.4, 0)])
        assert score_quality(project, "churn") == []  # the hour is not over
        (window,) = score_quality(project, "churn", now=utcnow() + timedelta(hours=2))
        assert window.rows == 3 and window.score == pytest.approx(2 / 3)
        assert not window.breached  # no on_quality_drop: nothing to breach
        assert window.window_end - window.window_start == timedelta(hours=1)
    finally:
        project.close()


def test_an_error_metric_breaches_when_it_rises_above(project_dir: Path, store_env: str) -> None:
    project = _monitored(
        project_dir, "{rows: 4}", "    on_quality_drop: {metric: mae, below: 1.0}\n"
    )
    try:
        register_versions(project, 1)
        log_answers(
            project,
            [{"id": f"q{i}", "predict": [v]} for i, v in enumerate([1.5, 2.5, 3.5, 4.5])],
        )
        labels = [1.0, 2.0, 6.0, 9.5]  # errors 0.5, 0.5, 2.5, 5: MAE 2.125
        items = [FeedbackItem(f"q{i}", None, [v]) for i, v in enumerate(labels)]
        assert record_feedback(project, items).accepted == 4
        (window,) = score_quality(project, "churn", now=settled())
        assert window.score == pytest.approx(2.125) and window.breached
        assert window.figures["rmse"] == pytest.approx(math.sqrt((0.25 * 2 + 6.25 + 25) / 4))
    finally:
        project.close()


def test_without_a_monitoring_spec_windows_hold_a_thousand_labels(project: Project) -> None:
    register_versions(project, 1)
    _labelled(project, [(f"r{i}", 1, 0.9, 1) for i in range(30)])
    assert score_quality(project, "churn", now=settled()) == []
