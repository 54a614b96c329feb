"""Rollout rows in the real store (SQLite and PostgreSQL): start, supersede, read, save."""

from __future__ import annotations

from dataclasses import replace

import pytest

from seaway.errors import StoreError
from seaway.project import Project
from seaway.rollout.records import (
    active_rollout,
    latest_rollout,
    list_rollouts,
    save_rollout,
    start_rollout,
)
from tests.rollout import ENV, MODEL, T0, at, events, strategy

CANARY = strategy(
    {
        "canary": {
            "steps": [{"weight": 10, "pause": "2m"}, {"weight": 100}],
            "analysis": {"max_error_rate": 0.01, "min_requests": 200, "interval": "15s"},
        }
    }
)


def test_start_records_step_zero_and_reads_back_the_same_strategy(project: Project) -> None:
    r = start_rollout(
        project, ENV, MODEL, stable=1, candidate=2, strategy=CANARY, git_revision="abc123", now=T0
    )
    assert (r.phase, r.step, r.kind, r.ref, r.active) == (
        "Progressing",
        0,
        "canary",
        "churn@2",
        True,
    )
    assert r.step_started_at == T0 and r.started_at == T0 and r.finished_at is None
    again = active_rollout(project, ENV, MODEL)
    assert again is not None and again.id == r.id
    assert again.strategy == CANARY
    assert again.strategy.canary is not None
    assert again.strategy.canary.analysis is not None
    assert again.strategy.canary.analysis.interval.seconds == 15
    (started,) = events(project, "rollout.started")
    assert started.subject == "model:churn@2"
    assert started.data == {
        "environment": ENV,
        "rollout": r.id,
        "stable": 1,
        "kind": "canary",
        "git_revision": "abc123",
    }


def test_a_first_deployment_is_direct_whatever_the_strategy(project: Project) -> None:
    r = start_rollout(
        project, ENV, MODEL, stable=None, candidate=1, strategy=CANARY, git_revision=None
    )
    assert r.kind == "direct"
    assert r.strategy == CANARY


def test_a_new_rollout_supersedes_the_active_one(project: Project) -> None:
    first = start_rollout(
        project, ENV, MODEL, stable=1, candidate=2, strategy=CANARY, git_revision="a", now=T0
    )
    other_env = start_rollout(
        project, "staging", MODEL, stable=1, candidate=2, strategy=CANARY, git_revision="a"
    )
    second = start_rollout(
        project, ENV, MODEL, stable=1, candidate=3, strategy=CANARY, git_revision="b", now=at(60)
    )
    old = latest_rollout(project, ENV, MODEL)
    assert old is not None and old.id == second.id
    rows = {r.id: r for r in list_rollouts(project)}
    assert rows[first.id].phase == "Aborted"
    assert rows[first.id].message == "superseded by @3"
    assert rows[first.id].finished_at == at(60)
    assert rows[other_env.id].phase == "Progressing"  # another environment is left alone
    (aborted,) = events(project, "rollout.aborted")
    assert aborted.subject == "model:churn@2"
    assert aborted.data["superseded_by"] == 3
    assert aborted.data["environment"] == ENV
    active = active_rollout(project, ENV, MODEL)
    assert active is not None and active.candidate == 3


def test_list_filters_and_orders_newest_first(project: Project) -> None:
    a = start_rollout(
        project, ENV, MODEL, stable=1, candidate=2, strategy=CANARY, git_revision=None
    )
    b = start_rollout(
        project, "staging", MODEL, stable=1, candidate=2, strategy=CANARY, git_revision=None
    )
    c = start_rollout(
        project, ENV, MODEL, stable=1, candidate=3, strategy=CANARY, git_revision=None
    )
    assert [r.id for r in list_rollouts(project)] == [c.id, b.id, a.id]
    assert [r.id for r in list_rollouts(project, environment=ENV)] == [c.id, a.id]
    assert [r.id for r in list_rollouts(project, active_only=True)] == [c.id, b.id]
    assert [r.id for r in list_rollouts(project, limit=1)] == [c.id]
    assert list_rollouts(project, model="other") == []
    assert active_rollout(project, ENV, "other") is None
    assert latest_rollout(project, ENV, "other") is None


def test_save_writes_the_row_and_its_event_together(project: Project) -> None:
    r = start_rollout(
        project, ENV, MODEL, stable=1, candidate=2, strategy=CANARY, git_revision=None, now=T0
    )
    moved = replace(r, step=1, step_started_at=at(120)).with_state(note="x")
    saved = save_rollout(project, moved, event=("rollout.step", {"step": 1, "weight": 100.0}))
    assert (saved.step, saved.step_started_at, saved.state["note"]) == (1, at(120), "x")
    assert saved.version == r.version + 1
    again = active_rollout(project, ENV, MODEL)
    assert again == saved
    (step,) = events(project, "rollout.step")
    assert step.data == {"environment": ENV, "rollout": r.id, "step": 1, "weight": 100.0}


def test_a_stale_save_is_refused_and_changes_nothing(project: Project) -> None:
    r = start_rollout(
        project, ENV, MODEL, stable=1, candidate=2, strategy=CANARY, git_revision=None
    )
    first = save_rollout(project, replace(r, phase="Paused", message="paused by ann"))
    with pytest.raises(StoreError, match="changed since it was read") as caught:
        save_rollout(project, replace(r, step=1), event=("rollout.step", {"step": 1}))
    assert "Paused at step 0" in caught.value.message
    assert caught.value.hint is not None
    assert active_rollout(project, ENV, MODEL) == first
    assert events(project, "rollout.step") == []


def test_to_dict_is_json_ready(project: Project) -> None:
    import json

    r = start_rollout(
        project, ENV, MODEL, stable=1, candidate=2, strategy=CANARY, git_revision="a", now=T0
    )
    data = json.loads(json.dumps(r.to_dict()))
    assert data["ref"] == "churn@2"
    assert data["started_at"] == "2026-11-02T09:00:00Z"
    assert data["strategy"]["canary"]["steps"][0] == {"weight": 10, "pause": "2m"}


def test_two_writers_racing_on_one_row_never_both_win(project: Project) -> None:
    from concurrent.futures import ThreadPoolExecutor

    r = start_rollout(
        project, ENV, MODEL, stable=1, candidate=2, strategy=CANARY, git_revision=None
    )

    def write(step: int) -> str:
        try:
            save_rollout(project, replace(r, step=step), event=("rollout.step", {"step": step}))
        except StoreError:
            return "refused"
        return "saved"

    for _ in range(3):
        r = save_rollout(project, r)  # a fresh version for each round
        with ThreadPoolExecutor(2) as pool:
            outcomes = sorted(pool.map(write, [1, 1]))
        assert outcomes == ["refused", "saved"]
        current = active_rollout(project, ENV, MODEL)
        assert current is not None
        r = current
    assert len(events(project, "rollout.step")) == 3
