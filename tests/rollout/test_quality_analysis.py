"""Quality limits in rollout analysis: the candidate judged on its labelled traffic, first
with constructed figures, then from labels stored against logged answers, through `measure`
and a canary driven tick by tick (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from seaway._util import utcnow
from seaway.monitor.feedback import FeedbackItem, record_feedback
from seaway.monitor.quality import QualityFigures
from seaway.project import Project
from seaway.rollout.analysis import analyse, measure
from seaway.rollout.engine import apply_through, tick
from seaway.rollout.records import Rollout, start_rollout
from seaway.serving.routes import Route, set_routes
from seaway.spec.environment import AnalysisSpec
from tests.monitor.test_feedback import log_answers
from tests.rollout import (
    ENV,
    MODEL,
    T0,
    FakeFigures,
    canary_rollout,
    environment,
    healthy,
    register_versions,
)
from tests.rollout import split as routing


def spec(**limits: object) -> AnalysisSpec:
    return AnalysisSpec.model_validate({"min_requests": 100, **limits})


def quality(number: int, labels: int, **metrics: float) -> QualityFigures:
    return QualityFigures(MODEL, number, None, T0, labels, {"labels": float(labels), **metrics})


# -- constructed figures ------------------------------------------------------------------


def test_a_candidate_whose_labels_say_it_is_wrong_fails() -> None:
    result = analyse(
        spec(min_accuracy=0.8),
        healthy(2),
        healthy(1),
        quality=quality(2, 200, accuracy=0.55),
        stable_quality=quality(1, 900, accuracy=0.92),
    )
    assert result.outcome == "Failed"
    (check,) = result.failed_checks
    assert (check.name, check.value, check.limit, check.stable) == ("accuracy", 0.55, 0.8, 0.92)
    assert "accuracy 0.55 < 0.8 (stable 0.92)" in result.message
    assert result.labels == 200 and result.to_dict()["labels"] == 200


def test_a_good_candidate_passes_every_quality_limit() -> None:
    result = analyse(
        spec(min_accuracy=0.8, min_auc=0.85, max_quality_drop=0.02, max_error_rate=0.01),
        healthy(2),
        healthy(1),
        quality=quality(2, 120, accuracy=0.91, auc=0.95),
        stable_quality=quality(1, 900, accuracy=0.9, auc=0.96),
    )
    assert result.outcome == "Successful", result.message
    assert [c.name for c in result.checks] == ["error_rate", "accuracy", "auc", "auc_drop"]
    drop = result.checks[-1]
    assert drop.value == pytest.approx(0.01) and drop.stable == 0.96
    assert "4 of 4 checks passed over 500 requests and 120 labelled rows" in result.message


def test_the_drop_is_of_auc_when_both_have_it_and_of_accuracy_otherwise() -> None:
    worse = analyse(
        spec(max_quality_drop=0.05),
        healthy(2),
        healthy(1),
        quality=quality(2, 100, accuracy=0.8),
        stable_quality=quality(1, 100, accuracy=0.9, auc=0.95),
    )
    assert worse.outcome == "Failed"
    assert "accuracy_drop 0.1 > 0.05 (stable 0.9)" in worse.message
    no_stable = analyse(
        spec(max_quality_drop=0.05), healthy(2), None, quality=quality(2, 100, accuracy=0.8)
    )
    assert no_stable.outcome == "Successful"
    assert "accuracy_drop skipped: no stable version to compare" in no_stable.message


def test_too_few_labels_is_inconclusive_unless_something_else_failed() -> None:
    few = analyse(
        spec(min_accuracy=0.8), healthy(2), healthy(1), quality=quality(2, 12, accuracy=0.2)
    )
    assert few.outcome == "Inconclusive"
    assert few.message == "12 of the 30 labelled rows needed to judge quality"
    assert few.checks[0].value == 0.2 and few.checks[0].passed is None
    none_yet = analyse(spec(min_accuracy=0.8, min_labels=5), healthy(2), None, quality=None)
    assert none_yet.outcome == "Inconclusive" and none_yet.labels == 0

    from tests.rollout import make_figures

    erring = make_figures(2, requests=300, errors=60)
    failed = analyse(
        spec(min_accuracy=0.8, max_error_rate=0.05),
        erring,
        None,
        quality=quality(2, 3, accuracy=1.0),
    )
    assert failed.outcome == "Failed" and [c.name for c in failed.failed_checks] == ["error_rate"]

    stable_short = analyse(
        spec(max_quality_drop=0.05),
        healthy(2),
        healthy(1),
        quality=quality(2, 100, accuracy=0.9),
        stable_quality=quality(1, 10, accuracy=0.9),
    )
    assert stable_short.outcome == "Inconclusive"
    assert "stable has 10 of the 30 labelled rows needed" in stable_short.message


def test_a_figure_the_answers_cannot_give_is_skipped_and_said() -> None:
    result = analyse(
        spec(min_auc=0.8, max_mae=1.0),
        healthy(2),
        None,
        quality=quality(2, 50, accuracy=0.9),
    )
    assert result.outcome == "Successful"
    assert [c.passed for c in result.checks] == [None, None]
    assert "auc skipped: no AUC" in result.message and "mae skipped: no MAE" in result.message


def test_without_quality_limits_nothing_changes() -> None:
    result = analyse(spec(max_error_rate=0.01), healthy(2), healthy(1))
    assert result.labels is None and "labels" not in result.to_dict()
    assert not spec(max_error_rate=0.01).judges_quality
    assert spec(max_mae=2.0).judges_quality and spec().min_labels == 30


def test_quality_limits_are_validated() -> None:
    from pydantic import ValidationError

    for bad in ({"min_accuracy": 1.5}, {"max_quality_drop": -0.1}, {"min_labels": 0}):
        with pytest.raises(ValidationError):
            spec(**bad)


# -- from stored labels -------------------------------------------------------------------


def answer_and_label(
    project: Project, number: int, n: int, *, right: bool, prefix: str = "", route: str = ""
) -> None:
    """`n` one-row answers of version `number`, labelled right or wrong."""
    ids = [f"{prefix}v{number}-{i}" for i in range(n)]
    log_answers(
        project,
        [
            {
                "id": rid,
                "number": number,
                "route": route or "primary",
                "predict": [i % 2],
                "proba": [0.8 if i % 2 else 0.2],
            }
            for i, rid in enumerate(ids)
        ],
    )
    items = [FeedbackItem(rid, None, [i % 2 if right else 1 - i % 2]) for i, rid in enumerate(ids)]
    assert record_feedback(project, items).accepted == n


def test_measure_reads_the_labels_of_the_step(project: Project) -> None:
    register_versions(project, 2)
    answer_and_label(project, 2, 40, right=True, prefix="before-")  # before the step began
    started = utcnow()
    answer_and_label(project, 1, 60, right=True)
    answer_and_label(project, 2, 40, right=False)
    source = FakeFigures({1: healthy(1), 2: healthy(2)})
    limits = spec(min_accuracy=0.8, max_quality_drop=0.1)

    result = measure(project, canary_rollout(started), limits, since=started, figures=source)
    assert result.outcome == "Failed"
    assert {c.name for c in result.failed_checks} == {"accuracy", "auc_drop"}
    assert result.labels == 40  # only the labels of answers after the step began
    accuracy = next(c for c in result.checks if c.name == "accuracy")
    assert (accuracy.value, accuracy.stable) == (0.0, 1.0)

    long_ago = T0.replace(year=2000)
    before = measure(project, canary_rollout(T0), limits, since=long_ago, figures=source)
    assert before.labels == 80 and before.checks[0].value == pytest.approx(0.5)


def test_a_canary_whose_labels_say_it_is_worse_is_rolled_back(project: Project) -> None:
    register_versions(project, 3)
    set_routes(project, MODEL, [Route(1, 100.0)])
    analysis = {"min_accuracy": 0.8, "min_requests": 100, "min_labels": 30, "interval": "30s"}
    env = environment(
        {"canary": {"steps": [{"weight": 50, "analysis": analysis}, {"weight": 100}]}}
    )
    source = FakeFigures({1: healthy(1), 2: healthy(2), 3: healthy(3)})

    def run(candidate: int, stable: int, right: bool) -> Rollout:
        start = utcnow() - timedelta(seconds=5)
        r = start_rollout(
            project,
            ENV,
            MODEL,
            stable=stable,
            candidate=candidate,
            strategy=env.deployments[MODEL].strategy,
            git_revision="abc",
            now=start,
        )
        apply = apply_through(project, ENV, env, MODEL, reason={"rollout": r.id})
        r = tick(project, r, apply=apply, now=start, figures=source)
        answer_and_label(project, candidate, 40, right=right, prefix=f"r{r.id}-")
        return tick(project, r, apply=apply, now=start + timedelta(seconds=31), figures=source)

    bad = run(2, 1, right=False)
    assert bad.phase == "Degraded"
    assert "accuracy 0 < 0.8" in (bad.message or "")
    assert routing(project) == {1: (100.0, 0.0)}

    good = run(3, 1, right=True)
    assert good.phase == "Successful", good.message
    assert routing(project) == {3: (100.0, 0.0)}
