"""`seaway rollout …` as a person runs it against a rollout in progress: list, show, pause,
resume, promote, abort, with their exit codes and the routing table they leave."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from seaway.project import Project
from seaway.rollout.engine import apply_through, tick
from seaway.rollout.records import start_rollout
from seaway.serving.routes import Route, set_routes
from seaway.spec.loader import load_environment
from tests.conftest import CliResult
from tests.rollout import T0, register_versions, split

SPEC = """\
name: demo
roles:
  viewer: [run]
  release: ["rollout:prod", deploy, alias]
"""

PROD = """\
deployments:
  churn:
    version: 2
    strategy:
      canary:
        steps: [{weight: 10, pause: 5m}, {weight: 50, pause: 5m}, {weight: 100}]
        analysis: {max_error_rate: 0.01, min_requests: 100}
"""


@pytest.fixture
def rolling(project_dir: Path) -> Iterator[Project]:
    """churn@1 serving, a canary to churn@2 in prod started and at its first step."""
    (project_dir / "seaway.yaml").write_text(SPEC)
    (project_dir / "environments").mkdir()
    (project_dir / "environments" / "prod.yaml").write_text(PROD)
    project = Project(project_dir)
    register_versions(project, 2)
    set_routes(project, "churn", [Route(1, 100.0)])
    env = load_environment(project_dir / "environments" / "prod.yaml")
    r = start_rollout(
        project,
        "prod",
        "churn",
        stable=1,
        candidate=2,
        strategy=env.deployments["churn"].strategy,
        git_revision="0123456789abcdef",
        now=T0,
    )
    tick(project, r, apply=apply_through(project, "prod", env, "churn"), now=T0)
    yield project
    project.close()


def _json(result: CliResult) -> Any:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_list_and_show_describe_the_rollout(rolling: Project, cli) -> None:  # type: ignore[no-untyped-def]
    (row,) = _json(cli("rollout", "list", "--json"))
    assert (row["ref"], row["phase"], row["step"], row["steps"], row["weight"]) == (
        "churn@2",
        "Progressing",
        0,
        3,
        10.0,
    )
    listed = cli("rollout", "list")
    assert listed.exit_code == 0
    assert "churn" in listed.stdout and "1 → 2" in listed.stdout and "1/3" in listed.stdout

    shown = cli("rollout", "show", "churn", "--env", "prod")
    assert shown.exit_code == 0, shown.stderr
    assert "Progressing" in shown.stdout
    assert "@1 90%, @2 10%" in shown.stdout
    assert "no analysis yet" in shown.stdout
    doc = _json(cli("rollout", "show", "churn", "--env", "prod", "--json"))
    assert doc["routes"] == [
        {"version": 1, "weight": 90.0, "shadow": 0.0},
        {"version": 2, "weight": 10.0, "shadow": 0.0},
    ]
    assert doc["git_revision"] == "0123456789abcdef"


def test_show_lists_the_latest_analyses_with_their_checks(rolling: Project, cli) -> None:  # type: ignore[no-untyped-def]
    from seaway.rollout.records import active_rollout
    from tests.rollout import FakeFigures, at, healthy, make_figures

    r = active_rollout(rolling, "prod", "churn")
    assert r is not None
    env = load_environment(rolling.root / "environments" / "prod.yaml")
    source = FakeFigures({1: healthy(1), 2: make_figures(2, requests=400, errors=2)})
    tick(rolling, r, apply=apply_through(rolling, "prod", env, "churn"), now=at(30), figures=source)
    shown = cli("rollout", "show", "churn", "--env", "prod")
    assert shown.exit_code == 0, shown.stderr
    assert "Successful" in shown.stdout
    assert "error_rate 0.005 ≤ 0.01" in shown.stdout


def test_unknown_rollouts_are_usage_errors(rolling: Project, cli) -> None:  # type: ignore[no-untyped-def]
    missing = cli("rollout", "show", "other", "--env", "prod")
    assert missing.exit_code == 2
    assert "no rollout of other in prod" in missing.stderr
    nothing = cli("rollout", "pause", "churn", "--env", "staging")
    assert nothing.exit_code == 2
    assert "no rollout of churn in staging" in nothing.stderr
    quiet = cli("rollout", "list", "--env", "staging")
    assert quiet.exit_code == 0 and "no rollout in progress in staging" in quiet.stdout


def test_pause_resume_promote_through_the_cli(rolling: Project, cli) -> None:  # type: ignore[no-untyped-def]
    paused = cli("rollout", "pause", "churn", "--env", "prod")
    assert paused.exit_code == 0, paused.stderr
    assert "Paused" in paused.stdout
    again = cli("rollout", "pause", "churn", "--env", "prod")
    assert again.exit_code == 2 and "it is Paused" in again.stderr

    assert cli("rollout", "resume", "churn", "--env", "prod").exit_code == 0
    stepped = _json(cli("rollout", "promote", "churn", "--env", "prod", "--json"))
    assert (stepped["phase"], stepped["step"]) == ("Progressing", 1)
    assert split(rolling) == {1: (50.0, 0.0), 2: (50.0, 0.0)}

    done = cli("rollout", "promote", "churn", "--env", "prod", "--full")
    assert done.exit_code == 0, done.stderr
    assert "Successful" in done.stdout
    assert split(rolling) == {2: (100.0, 0.0)}
    from seaway.registry.versions import get_version

    assert get_version(rolling, "churn@champion").number == 2

    over = cli("rollout", "abort", "churn", "--env", "prod")
    assert over.exit_code == 2
    assert "the last one, of churn@2, is Successful" in over.stderr
    assert cli("rollout", "list").stdout.startswith("no rollout in progress")
    (finished,) = _json(cli("rollout", "list", "--all", "--json"))
    assert finished["phase"] == "Successful"


def test_abort_returns_traffic_to_stable(rolling: Project, cli) -> None:  # type: ignore[no-untyped-def]
    aborted = _json(cli("rollout", "abort", "churn", "--env", "prod", "--json"))
    assert aborted["phase"] == "Aborted"
    assert aborted["message"].startswith("aborted by ")
    assert split(rolling) == {1: (100.0, 0.0)}


def test_people_without_the_permission_are_refused(  # type: ignore[no-untyped-def]
    rolling: Project, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEAWAY_ROLES", "viewer")
    refused = cli("rollout", "abort", "churn", "--env", "prod")
    assert refused.exit_code == 1
    assert "may not rollout:prod or promote:prod" in refused.stderr
    assert split(rolling) == {1: (90.0, 0.0), 2: (10.0, 0.0)}
    monkeypatch.setenv("SEAWAY_ROLES", "release")
    assert cli("rollout", "abort", "churn", "--env", "prod").exit_code == 0
