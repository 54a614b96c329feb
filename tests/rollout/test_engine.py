"""The state machines driven tick by tick with explicit times and constructed live figures,
applying through the real local target to the real routing table (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from seaway.errors import StoreError, UsageError
from seaway.project import Project
from seaway.registry.versions import get_version
from seaway.rollout import engine
from seaway.rollout.engine import (
    ERROR_RETRY_S,
    Apply,
    apply_through,
    current_routes,
    initial_routes,
    tick,
)
from seaway.rollout.records import Rollout, active_rollout, latest_rollout, start_rollout
from seaway.serving.routes import Route, set_routes
from tests.rollout import (
    ENV,
    MODEL,
    SHIFTED_SCORES,
    T0,
    FakeFigures,
    at,
    environment,
    events,
    healthy,
    make_figures,
    register_versions,
    split,
)

ANALYSIS = {
    "max_error_rate": 0.05,
    "max_prediction_psi": 0.2,
    "min_requests": 100,
    "interval": "30s",
}
CANARY = {
    "canary": {
        "steps": [
            {"weight": 10, "pause": "1m"},
            {
                "weight": 50,
                "analysis": {"max_error_rate": 0.05, "min_requests": 100, "interval": "30s"},
            },
            {"weight": 100},
        ],
        "analysis": ANALYSIS,
    }
}


@pytest.fixture
def served(project: Project) -> Project:
    """Versions 1..3 of churn registered, version 1 serving all traffic and champion."""
    from seaway.registry.aliases import set_alias

    register_versions(project, 3)
    set_routes(project, MODEL, [Route(1, 100.0)])
    set_alias(project, f"{MODEL}@1", "champion")
    return project


def begin(
    project: Project, data: dict[str, Any], *, stable: int | None = 1, candidate: int = 2
) -> tuple[Rollout, Apply]:
    spec = environment(data)
    r = start_rollout(
        project,
        ENV,
        MODEL,
        stable=stable,
        candidate=candidate,
        strategy=spec.deployments[MODEL].strategy,
        git_revision="abc",
        now=T0,
    )
    return r, apply_through(project, ENV, spec, MODEL, reason={"rollout": r.id})


def champion(project: Project) -> int:
    return get_version(project, f"{MODEL}@champion").number


def good() -> FakeFigures:
    return FakeFigures({1: healthy(1), 2: healthy(2)})


# -- canary -------------------------------------------------------------------------------


def test_canary_advances_through_pause_and_analysis_to_full_traffic(served: Project) -> None:
    r, apply = begin(served, CANARY)
    source = good()
    assert initial_routes(r) == [Route(1, 90.0), Route(2, 10.0)]

    r = tick(served, r, apply=apply, now=at(0), figures=source)
    assert split(served) == {1: (90.0, 0.0), 2: (10.0, 0.0)}
    assert (r.phase, r.step) == ("Progressing", 0)
    assert source.reads == []  # nothing to judge before the first interval

    r = tick(served, r, apply=apply, now=at(30), figures=source)
    assert r.step == 0  # the analysis passed, but the pause is not over
    assert [a["outcome"] for a in r.state["analyses"]] == ["Successful"]

    r = tick(served, r, apply=apply, now=at(61), figures=source)
    assert (r.step, r.step_started_at) == (1, at(61))
    assert split(served) == {1: (50.0, 0.0), 2: (50.0, 0.0)}
    # Both measurements covered the whole step: the window starts with the step.
    assert {since for _, since in source.reads} == {T0}

    r = tick(served, r, apply=apply, now=at(75), figures=source)
    assert r.step == 1  # the step's own analysis waits for its interval

    r = tick(served, r, apply=apply, now=at(91), figures=source)
    assert r.phase == "Successful"
    assert r.finished_at == at(91)
    assert split(served) == {2: (100.0, 0.0)}
    assert champion(served) == 2
    assert "serves all traffic and is champion" in (r.message or "")
    assert source.reads[-2:] == [(2, at(61)), (1, at(61))]

    steps = events(served, "rollout.step")
    assert [(e.data["step"], e.data["weight"]) for e in steps] == [(1, 50.0)]
    assert steps[0].data["analysis"]["outcome"] == "Successful"
    (done,) = events(served, "rollout.succeeded")
    assert done.subject == "model:churn@2"
    assert done.data["alias"] == "champion" and done.data["environment"] == ENV
    # Ticks once it is over change nothing.
    assert tick(served, r, apply=apply, now=at(500), figures=source) is r


def test_a_last_step_with_a_pause_keeps_stable_deployed_until_it_ends(served: Project) -> None:
    data = {"canary": {"steps": [{"weight": 50, "pause": "1m"}, {"weight": 100, "pause": "1m"}]}}
    r, apply = begin(served, data)
    r = tick(served, r, apply=apply, now=at(0))
    r = tick(served, r, apply=apply, now=at(60))
    assert (r.phase, r.step) == ("Progressing", 1)
    # Stable takes no traffic but stays deployed, so that an abort finds it loaded.
    assert split(served) == {1: (0.0, 0.0), 2: (100.0, 0.0)}
    r = tick(served, r, apply=apply, now=at(120))
    assert r.phase == "Successful"
    assert split(served) == {2: (100.0, 0.0)}


def test_error_rate_failure_returns_all_traffic_to_stable(served: Project) -> None:
    r, apply = begin(served, CANARY)
    source = FakeFigures({1: healthy(1), 2: make_figures(2, requests=300, errors=60)})
    r = tick(served, r, apply=apply, now=at(0), figures=source)
    r = tick(served, r, apply=apply, now=at(30), figures=source)
    assert r.phase == "Degraded"
    assert split(served) == {1: (100.0, 0.0)}
    assert r.state["needs_rollback_commit"] is True
    assert "error_rate 0.2 > 0.05" in (r.message or "")
    assert champion(served) == 1
    assert current_routes(r) == [Route(1, 100.0)]
    (failed,) = events(served, "rollout.failed")
    assert failed.data["analysis"]["outcome"] == "Failed"
    assert failed.data["traffic_on_stable"] is True
    assert failed.data["weight"] == 10.0


def test_http_200_with_shifted_predictions_fails_on_psi(served: Project) -> None:
    r, apply = begin(served, CANARY)
    source = FakeFigures({1: healthy(1), 2: make_figures(2, requests=400, scores=SHIFTED_SCORES)})
    r = tick(served, r, apply=apply, now=at(0), figures=source)
    r = tick(served, r, apply=apply, now=at(30), figures=source)
    assert r.phase == "Degraded"
    assert "prediction_psi" in (r.message or "")
    assert split(served) == {1: (100.0, 0.0)}


def test_failure_limit_counts_failures_in_a_row(served: Project) -> None:
    data = {
        "canary": {
            "steps": [{"weight": 20, "pause": "5m"}, {"weight": 100}],
            "analysis": {**ANALYSIS, "failure_limit": 2},
        }
    }
    r, apply = begin(served, data)
    bad = FakeFigures({1: healthy(1), 2: make_figures(2, requests=300, errors=60)})
    r = tick(served, r, apply=apply, now=at(0), figures=bad)
    r = tick(served, r, apply=apply, now=at(30), figures=bad)
    assert (r.phase, r.state["failures"]) == ("Progressing", 1)
    r = tick(served, r, apply=apply, now=at(60), figures=good())
    assert "failures" not in r.state  # a success ends the streak
    r = tick(served, r, apply=apply, now=at(90), figures=bad)
    r = tick(served, r, apply=apply, now=at(120), figures=bad)
    assert r.phase == "Degraded"
    assert "2 times in a row" in (r.message or "")


@pytest.mark.parametrize("on_inconclusive", ["fail", "pass"])
def test_too_little_traffic_waits_up_to_the_limit_then_follows_the_spec(
    served: Project, on_inconclusive: str
) -> None:
    step_analysis = {
        "max_error_rate": 0.05,
        "min_requests": 100,
        "interval": "30s",
        "inconclusive_limit": "2m",
        "on_inconclusive": on_inconclusive,
    }
    data = {"canary": {"steps": [{"weight": 20, "analysis": step_analysis}, {"weight": 100}]}}
    r, apply = begin(served, data)
    quiet = FakeFigures({1: healthy(1), 2: make_figures(2, requests=12)})
    r = tick(served, r, apply=apply, now=at(0), figures=quiet)
    for t in (30, 60, 90, 120):
        r = tick(served, r, apply=apply, now=at(t), figures=quiet)
        assert (r.phase, r.step) == ("Progressing", 0)
        assert r.state["analyses"][-1]["outcome"] == "Inconclusive"
    assert split(served) == {1: (80.0, 0.0), 2: (20.0, 0.0)}
    r = tick(served, r, apply=apply, now=at(150), figures=quiet)
    assert "inconclusive for 2m" in (r.message or "")
    if on_inconclusive == "fail":
        assert r.phase == "Degraded"
        assert split(served) == {1: (100.0, 0.0)}
    else:
        assert r.phase == "Successful"
        assert split(served) == {2: (100.0, 0.0)}


def test_errors_measuring_are_retried_then_degrade(served: Project) -> None:
    r, apply = begin(served, CANARY)
    down = FakeFigures({2: StoreError("cannot reach the metadata database")})
    r = tick(served, r, apply=apply, now=at(0), figures=down)
    r = tick(served, r, apply=apply, now=at(30), figures=down)
    assert (r.phase, r.state["errors"]) == ("Progressing", 1)
    assert "cannot reach the metadata database" in r.state["last_error"]
    # Within the retry interval nothing is measured.
    assert tick(served, r, apply=apply, now=at(30 + ERROR_RETRY_S - 1), figures=down) is r
    r = tick(served, r, apply=apply, now=at(30 + ERROR_RETRY_S), figures=down)
    assert r.state["errors"] == 2
    assert split(served) == {1: (90.0, 0.0), 2: (10.0, 0.0)}  # traffic held meanwhile
    r = tick(served, r, apply=apply, now=at(30 + 2 * ERROR_RETRY_S), figures=down)
    assert r.phase == "Degraded"
    assert "3 errors in a row" in (r.message or "")
    assert split(served) == {1: (100.0, 0.0)}


def test_an_error_streak_ends_with_a_measurement(served: Project) -> None:
    r, apply = begin(served, CANARY)
    down = FakeFigures({2: StoreError("unreachable")})
    r = tick(served, r, apply=apply, now=at(0), figures=down)
    r = tick(served, r, apply=apply, now=at(30), figures=down)
    r = tick(served, r, apply=apply, now=at(40), figures=good())
    assert "errors" not in r.state
    assert r.state["analyses"][-1]["outcome"] == "Successful"


def flaky(apply: Apply) -> tuple[Apply, Callable[[bool], None]]:
    broken = [False]

    def wrapped(routes: list[Route]) -> None:
        if broken[0]:
            raise StoreError("the gateway's store is unreachable")
        apply(routes)

    def set_broken(value: bool) -> None:
        broken[0] = value

    return wrapped, set_broken


def test_apply_failing_keeps_traffic_and_step_then_continues(served: Project) -> None:
    r, real = begin(served, CANARY)
    apply, broken = flaky(real)
    source = good()
    r = tick(served, r, apply=apply, now=at(0), figures=source)
    r = tick(served, r, apply=apply, now=at(30), figures=source)
    broken(True)
    r = tick(served, r, apply=apply, now=at(61), figures=source)
    assert (r.phase, r.step, r.state["errors"]) == ("Progressing", 0, 1)
    assert "could not apply the split" in r.state["last_error"]
    assert split(served) == {1: (90.0, 0.0), 2: (10.0, 0.0)}
    broken(False)
    r = tick(served, r, apply=apply, now=at(71), figures=source)
    assert (r.step, r.phase) == (1, "Progressing")
    assert "errors" not in r.state
    assert split(served) == {1: (50.0, 0.0), 2: (50.0, 0.0)}


def test_one_failed_apply_does_not_count_towards_a_later_streak(served: Project) -> None:
    r, real = begin(served, CANARY)
    apply, broken = flaky(real)
    r = tick(served, r, apply=apply, now=at(0), figures=good())
    broken(True)
    r = tick(served, r, apply=apply, now=at(5), figures=good())
    broken(False)
    r = tick(served, r, apply=apply, now=at(20), figures=good())  # nothing to measure yet
    assert "errors" not in r.state
    broken(True)
    r = tick(served, r, apply=apply, now=at(25), figures=good())
    assert r.state["errors"] == 1


def test_an_error_streak_past_the_deadline_degrades(served: Project) -> None:
    data = {
        "canary": {
            "steps": [{"weight": 10, "pause": "1h"}, {"weight": 100}],
            "analysis": {**ANALYSIS, "error_limit": 10, "inconclusive_limit": "1m"},
        }
    }
    r, apply = begin(served, data)
    down = FakeFigures({2: StoreError("unreachable")})
    r = tick(served, r, apply=apply, now=at(0), figures=down)
    r = tick(served, r, apply=apply, now=at(30), figures=down)
    r = tick(served, r, apply=apply, now=at(60), figures=down)
    assert r.phase == "Progressing"
    r = tick(served, r, apply=apply, now=at(90), figures=down)
    assert r.phase == "Degraded"
    assert "errors for 1m (3 in a row)" in (r.message or "")


def test_apply_failing_repeatedly_degrades_and_sync_can_restore_stable(served: Project) -> None:
    r, real = begin(served, CANARY)
    apply, broken = flaky(real)
    r = tick(served, r, apply=apply, now=at(0), figures=good())
    broken(True)
    for i in range(3):
        r = tick(served, r, apply=apply, now=at(10 + i * ERROR_RETRY_S), figures=good())
    assert r.phase == "Degraded"
    assert "traffic is not back on stable yet" in (r.message or "")
    assert split(served) == {1: (90.0, 0.0), 2: (10.0, 0.0)}  # unchanged: nothing could move
    (failed,) = events(served, "rollout.failed")
    assert failed.data["traffic_on_stable"] is False
    # What the reconciler re-applies once the target answers again.
    real(current_routes(r))
    assert split(served) == {1: (100.0, 0.0)}


def test_a_first_deployment_is_direct_and_moves_the_alias(served: Project) -> None:
    set_routes(served, MODEL, [])
    r, apply = begin(served, CANARY, stable=None, candidate=3)
    r = tick(served, r, apply=apply, now=at(0), figures=good())
    assert r.phase == "Successful"
    assert split(served) == {3: (100.0, 0.0)}
    assert champion(served) == 3


def test_direct_switches_at_once_without_moving_an_alias_when_none(served: Project) -> None:
    r, apply = begin(served, {"direct": {}})
    r = tick(served, r, apply=apply, now=at(0), figures=good(), promote_alias=None)
    assert r.phase == "Successful"
    assert split(served) == {2: (100.0, 0.0)}
    assert champion(served) == 1


def test_an_alias_that_cannot_move_is_reported_not_fatal(served: Project) -> None:
    r, apply = begin(served, {"direct": {}}, candidate=7)  # traffic moves, but no @7 exists
    r = tick(served, r, apply=apply, now=at(0), figures=good())
    assert r.phase == "Successful"
    assert "alias champion not moved" in (r.message or "")


# -- blue-green and shadow ----------------------------------------------------------------

BLUE_GREEN = {"blue_green": {"preview": "1m", "analysis": {**ANALYSIS, "max_class_flip_rate": 0.1}}}


def test_blue_green_previews_on_mirrored_traffic_then_switches(served: Project) -> None:
    r, apply = begin(served, BLUE_GREEN)
    source = FakeFigures({1: healthy(1), 2: make_figures(2, requests=400, agreed=398, disagreed=2)})
    r = tick(served, r, apply=apply, now=at(0), figures=source)
    # The preview: stable answers everything, the candidate sees every request mirrored.
    assert split(served) == {1: (100.0, 0.0), 2: (0.0, 100.0)}
    r = tick(served, r, apply=apply, now=at(30), figures=source)
    assert r.phase == "Progressing"
    r = tick(served, r, apply=apply, now=at(60), figures=source)
    assert r.phase == "Successful"
    assert split(served) == {2: (100.0, 0.0)}
    assert champion(served) == 2


def test_blue_green_without_auto_promote_waits_for_a_person(served: Project) -> None:
    data = {"blue_green": {**BLUE_GREEN["blue_green"], "auto_promote": False}}
    r, apply = begin(served, data)
    r = tick(served, r, apply=apply, now=at(0), figures=good())
    r = tick(served, r, apply=apply, now=at(60), figures=good())
    assert (r.phase, r.message) == ("Paused", "waiting for promotion")
    assert tick(served, r, apply=apply, now=at(600), figures=good()) is r
    assert split(served) == {1: (100.0, 0.0), 2: (0.0, 100.0)}
    with pytest.raises(UsageError, match="waits for promotion"):
        engine.resume(served, r)
    r = engine.promote(served, r, apply=apply, now=at(700))
    assert r.phase == "Successful"
    assert split(served) == {2: (100.0, 0.0)}
    assert champion(served) == 2
    assert [e.data["reason"] for e in events(served, "rollout.paused")] == [
        "preview passed; waiting for promotion"
    ]


def test_blue_green_preview_failure_never_reached_clients(served: Project) -> None:
    r, apply = begin(served, BLUE_GREEN)
    flipping = FakeFigures(
        {1: healthy(1), 2: make_figures(2, requests=400, agreed=300, disagreed=100)}
    )
    r = tick(served, r, apply=apply, now=at(0), figures=flipping)
    r = tick(served, r, apply=apply, now=at(30), figures=flipping)
    assert r.phase == "Degraded"
    assert "class_flip_rate 0.25 > 0.1" in (r.message or "")
    assert split(served) == {1: (100.0, 0.0)}


SHADOW = {
    "shadow": {
        "percent": 50,
        "duration": "2m",
        "analysis": {
            "max_class_flip_rate": 0.05,
            "max_error_rate": 0.01,
            "min_requests": 50,
            "interval": "30s",
        },
    }
}


def test_shadow_mirrors_for_its_duration_then_switches(served: Project) -> None:
    r, apply = begin(served, SHADOW)
    source = FakeFigures({1: healthy(1), 2: make_figures(2, requests=200, agreed=199, disagreed=1)})
    r = tick(served, r, apply=apply, now=at(0), figures=source)
    assert split(served) == {1: (100.0, 0.0), 2: (0.0, 50.0)}
    for t in (30, 60, 90):
        r = tick(served, r, apply=apply, now=at(t), figures=source)
        assert r.phase == "Progressing"
    r = tick(served, r, apply=apply, now=at(120), figures=source)
    assert r.phase == "Successful"
    assert split(served) == {2: (100.0, 0.0)}


def test_shadow_failure_removes_the_candidate(served: Project) -> None:
    r, apply = begin(served, SHADOW)
    source = FakeFigures(
        {1: healthy(1), 2: make_figures(2, requests=200, agreed=150, disagreed=50)}
    )
    r = tick(served, r, apply=apply, now=at(0), figures=source)
    r = tick(served, r, apply=apply, now=at(30), figures=source)
    assert r.phase == "Degraded"
    assert split(served) == {1: (100.0, 0.0)}


# -- supersede, restart, people -----------------------------------------------------------


def test_a_newer_version_supersedes_the_rollout_in_flight(served: Project) -> None:
    r, apply = begin(served, CANARY)
    r = tick(served, r, apply=apply, now=at(0), figures=good())
    newer, apply3 = begin(served, CANARY, candidate=3)
    old = engine_row(served, r.id)
    assert (old.phase, old.message) == ("Aborted", "superseded by @3")
    assert tick(served, old, apply=apply, now=at(30), figures=good()) is old
    tick(served, newer, apply=apply3, now=at(1), figures=good())
    assert split(served) == {1: (90.0, 0.0), 3: (10.0, 0.0)}


def engine_row(project: Project, rollout_id: int) -> Rollout:
    from seaway.rollout.records import get_rollout

    return get_rollout(project, rollout_id)


def test_a_restarted_controller_continues_from_the_stored_row(
    served: Project, store_env: str
) -> None:
    r, apply = begin(served, CANARY)
    source = good()
    r = tick(served, r, apply=apply, now=at(0), figures=source)
    r = tick(served, r, apply=apply, now=at(61), figures=source)
    assert r.step == 1
    # The process dies; meanwhile the split was lost. A new process reads the row back.
    set_routes(served, MODEL, [Route(1, 100.0)])
    fresh = Project(served.root)
    try:
        stored = active_rollout(fresh, ENV, MODEL)
        assert stored is not None and stored == r
        spec = environment(CANARY)
        again = apply_through(fresh, ENV, spec, MODEL)
        stored = tick(fresh, stored, apply=again, now=at(70), figures=source)
        assert stored.step == 1
        assert split(fresh) == {1: (50.0, 0.0), 2: (50.0, 0.0)}
        stored = tick(fresh, stored, apply=again, now=at(91), figures=source)
        assert stored.phase == "Successful"
        assert split(fresh) == {2: (100.0, 0.0)}
    finally:
        fresh.close()


def test_a_stale_tick_is_refused(served: Project) -> None:
    r, apply = begin(served, CANARY)
    r = tick(served, r, apply=apply, now=at(0), figures=good())
    engine.pause(served, r)
    with pytest.raises(StoreError, match="changed since it was read"):
        tick(served, r, apply=apply, now=at(30), figures=good())
    current = latest_rollout(served, ENV, MODEL)
    assert current is not None and current.phase == "Paused"


def test_pause_resume_promote_and_abort_are_recorded_with_their_actor(
    served: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEAWAY_ACTOR", "ann")
    r, apply = begin(served, CANARY)
    r = tick(served, r, apply=apply, now=at(0), figures=good())

    r = engine.pause(served, r)
    assert (r.phase, r.message, r.state["paused_by"]) == ("Paused", "paused by ann", "ann")
    assert tick(served, r, apply=apply, now=at(3600), figures=good()) is r
    with pytest.raises(UsageError, match="it is Paused"):
        engine.pause(served, r)

    r = engine.resume(served, r)
    assert (r.phase, r.message) == ("Progressing", None)
    with pytest.raises(UsageError, match="it is Progressing"):
        engine.resume(served, r)

    r = engine.promote(served, r, apply=apply, now=at(100))
    assert (r.step, r.step_started_at) == (1, at(100))
    assert split(served) == {1: (50.0, 0.0), 2: (50.0, 0.0)}

    r = engine.abort(served, r, apply=apply, now=at(120))
    assert (r.phase, r.message) == ("Aborted", "aborted by ann")
    assert split(served) == {1: (100.0, 0.0)}
    assert r.state["needs_rollback_commit"] is True
    with pytest.raises(UsageError, match="it is Aborted"):
        engine.abort(served, r, apply=apply)

    kinds = [(e.kind, e.actor) for e in events(served, "rollout.") if e.kind != "rollout.started"]
    assert kinds == [
        ("rollout.paused", "ann"),
        ("rollout.resumed", "ann"),
        ("rollout.step", "ann"),
        ("rollout.aborted", "ann"),
    ]


def test_promote_full_completes_from_any_step(served: Project) -> None:
    r, apply = begin(served, CANARY)
    r = tick(served, r, apply=apply, now=at(0), figures=good())
    r = engine.pause(served, r)
    r = engine.promote(served, r, apply=apply, full=True, now=at(5))
    assert r.phase == "Successful"
    assert split(served) == {2: (100.0, 0.0)}
    assert champion(served) == 2
    (done,) = events(served, "rollout.succeeded")
    assert done.data["reason"].startswith("promoted by ")


def test_promote_that_cannot_apply_changes_nothing(served: Project) -> None:
    r, real = begin(served, CANARY)
    r = tick(served, r, apply=real, now=at(0), figures=good())
    apply, broken = flaky(real)
    broken(True)
    with pytest.raises(StoreError, match="unreachable"):
        engine.promote(served, r, apply=apply, full=True)
    assert latest_rollout(served, ENV, MODEL) == r
    assert split(served) == {1: (90.0, 0.0), 2: (10.0, 0.0)}
