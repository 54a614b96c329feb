"""The reconciler against a real git repository and the real store: plan, apply, drift,
self-heal, removal, problems, and rollouts advanced by later syncs."""

from __future__ import annotations

from datetime import datetime, timedelta

from seaway._util import utcnow
from seaway.gitops import reconcile
from seaway.gitops.desired import read_desired
from seaway.registry.versions import get_version
from seaway.rollout.records import latest_rollout
from seaway.serving import routes
from tests.gitops.conftest import GitProject
from tests.rollout import FakeFigures, make_figures

PROD = """\
target: local
self_heal: {heal}
rollback_commit: true
deployments:
  churn:
    version: {version}
    strategy:
      canary:
        steps: [{{weight: 10, pause: 1m}}, {{weight: 100}}]
"""


def only_prod(gp: GitProject, version: int = 1, *, heal: bool = True) -> str:
    gp.git("rm", "-q", "environments/staging.yaml")
    return (
        gp.write_env(
            "prod", PROD.format(version=version, heal=str(heal).lower()), commit="prod only"
        )
        or ""
    )


def split(gp: GitProject) -> dict[int, tuple[float, float]]:
    table = routes.load_table(gp.project)
    return {d.number: (round(d.weight, 6), d.shadow) for d in table.for_model("churn")}


def kinds(plan: reconcile.Plan) -> list[tuple[str, str, str]]:
    return [(a.environment, a.model, a.kind) for a in plan.actions]


def test_sync_creates_what_git_names_then_has_nothing_to_do(git_project: GitProject) -> None:
    gp = git_project
    only_prod(gp)
    plan = reconcile.plan(gp.project)
    assert kinds(plan) == [("prod", "churn", "create")]
    assert "+ prod/churn" in plan.render() and "1 to create" in plan.render()
    assert split(gp) == {}, "a plan changes nothing"

    result = reconcile.sync(gp.project)
    assert [a.kind for a in result.applied] == ["create"]
    assert split(gp) == {1: (100.0, 0.0)}

    again = reconcile.plan(gp.project)
    assert again.actions == [] and again.in_sync == 1
    [row] = again.statuses
    assert (row.sync, row.health, row.desired) == ("Synced", "Healthy", 1)


def test_a_new_version_in_git_rolls_out_as_a_canary_over_later_syncs(
    git_project: GitProject,
) -> None:
    gp = git_project
    only_prod(gp)
    reconcile.sync(gp.project)
    gp.write_env("prod", PROD.format(version=2, heal="true"), commit="promote churn@2")

    plan = reconcile.plan(gp.project)
    [action] = plan.actions
    assert (action.kind, action.strategy, action.version) == ("rollout", "canary", 2)
    assert "@1 -> @2 canary 10%,100%" in action.detail

    result = reconcile.sync(gp.project)
    assert split(gp) == {1: (90.0, 0.0), 2: (10.0, 0.0)}
    [rollout] = result.rollouts
    assert (rollout.phase, rollout.stable, rollout.candidate) == ("Progressing", 1, 2)
    [row] = reconcile.status(gp.project)
    assert row.sync == "Progressing" and row.live == {1: 90.0, 2: 10.0}

    # A loop before the pause ends leaves the split alone; one after it finishes the canary.
    desired = read_desired(gp.project)
    reconcile.advance_rollouts(gp.project, desired, now=utcnow() + timedelta(seconds=20))
    assert split(gp) == {1: (90.0, 0.0), 2: (10.0, 0.0)}
    moved, _ = reconcile.advance_rollouts(gp.project, desired, now=utcnow() + timedelta(minutes=2))
    assert [r.phase for r in moved] == ["Successful"]
    assert split(gp) == {2: (100.0, 0.0)}
    assert "champion" in get_version(gp.project, "churn@2").aliases
    assert reconcile.plan(gp.project).in_sync == 1


def test_a_change_made_outside_git_is_healed_when_the_environment_says_so(
    git_project: GitProject,
) -> None:
    gp = git_project
    only_prod(gp)
    reconcile.sync(gp.project)
    routes.deploy(gp.project, "churn@3", weight=50)

    plan = reconcile.plan(gp.project)
    assert kinds(plan) == [("prod", "churn", "heal")]
    assert "live @1 50%, @3 50%" in plan.actions[0].detail
    reconcile.sync(gp.project)
    assert split(gp) == {1: (100.0, 0.0)}


def test_drift_is_only_reported_without_self_heal(git_project: GitProject) -> None:
    gp = git_project
    only_prod(gp, heal=False)
    reconcile.sync(gp.project)
    routes.deploy(gp.project, "churn@3", shadow=20)

    result = reconcile.sync(gp.project)
    assert kinds(result.plan) == [("prod", "churn", "drift")]
    assert result.applied == []
    assert split(gp) == {1: (100.0, 0.0), 3: (0.0, 20.0)}
    [row] = reconcile.status(gp.project)
    assert row.sync == "OutOfSync" and "live differs from git" in row.message


def test_a_model_dropped_from_the_file_stops_serving(git_project: GitProject) -> None:
    gp = git_project
    only_prod(gp)
    reconcile.sync(gp.project)
    gp.write_env("prod", "target: local\ndeployments: {}\n", commit="retire churn")
    plan = reconcile.plan(gp.project)
    assert kinds(plan) == [("prod", "churn", "remove")]
    reconcile.sync(gp.project)
    assert split(gp) == {}


def test_an_unknown_version_is_a_problem_and_the_rest_still_applies(
    git_project: GitProject,
) -> None:
    gp = git_project
    gp.write_env(
        "staging",
        "target: kubernetes\ndeployments:\n  churn:\n    version: 9\n",
        commit="a version that does not exist",
    )
    only_prod(gp)
    gp.write_env(
        "qa",
        "target: kubernetes\ndeployments:\n  nope:\n    version: 1\n  churn:\n    version: 9\n",
        commit="qa",
    )
    result = reconcile.sync(gp.project)
    messages = sorted(p.message for p in result.plan.problems)
    assert messages == ["churn@9 does not exist (newest is @3)", "model nope is not registered"]
    assert all("environments/qa.yaml" in (p.hint or "") for p in result.plan.problems)
    assert kinds(result.plan) == [("prod", "churn", "create")]
    assert split(gp) == {1: (100.0, 0.0)}


def test_two_local_environments_cannot_serve_one_model(git_project: GitProject) -> None:
    # The fixture's prod and staging both serve churn on the local gateway.
    plan = reconcile.plan(git_project.project)
    assert plan.actions == []
    [problem] = plan.problems
    assert "served by the local gateway in prod and staging" in problem.message
    assert problem.hint and "another target" in problem.hint


def test_dry_run_changes_nothing(git_project: GitProject) -> None:
    gp = git_project
    only_prod(gp)
    result = reconcile.sync(gp.project, dry_run=True)
    assert kinds(result.plan) == [("prod", "churn", "create")]
    assert result.applied == [] and split(gp) == {}


def test_sync_reads_the_committed_file_not_the_working_tree(git_project: GitProject) -> None:
    gp = git_project
    only_prod(gp)
    gp.write_env("prod", PROD.format(version=3, heal="true"))  # not committed
    reconcile.sync(gp.project)
    assert split(gp) == {1: (100.0, 0.0)}


def test_sync_cli_prints_the_plan_and_fails_on_problems(git_project: GitProject, cli) -> None:  # type: ignore[no-untyped-def]
    gp = git_project
    result = cli("-C", gp.root, "sync", "--dry-run")
    assert result.exit_code == 1
    assert "served by the local gateway in prod and staging" in result.stdout
    only_prod(gp)
    result = cli("-C", gp.root, "sync")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "+ prod/churn" in result.stdout
    result = cli("-C", gp.root, "status", "--json")
    assert '"sync": "Synced"' in result.stdout


ANALYSED = """\
target: local
rollback_commit: true
deployments:
  churn:
    version: {version}
    strategy:
      canary:
        steps:
          - {{weight: 20, analysis: {{max_error_rate: 0.01, min_requests: 50}}}}
          - {{weight: 100}}
"""


def later() -> datetime:
    # Past the analysis interval (30 s by default) of the step just started.
    return utcnow() + timedelta(minutes=1)


def failing_figures() -> FakeFigures:
    return FakeFigures(
        {1: make_figures(1, requests=400), 2: make_figures(2, requests=100, errors=30)}
    )


def test_a_failed_canary_writes_the_rollback_commit(git_project: GitProject) -> None:
    gp = git_project
    gp.git("rm", "-q", "environments/staging.yaml")
    gp.write_env("prod", ANALYSED.format(version=1), commit="prod")
    reconcile.sync(gp.project)
    gp.write_env("prod", ANALYSED.format(version=2), commit="promote churn@2")
    reconcile.sync(gp.project)
    assert split(gp) == {1: (80.0, 0.0), 2: (20.0, 0.0)}

    moved, commits = reconcile.advance_rollouts(
        gp.project, read_desired(gp.project), figures=failing_figures(), now=later()
    )
    assert [r.phase for r in moved] == ["Degraded"]
    assert split(gp) == {1: (100.0, 0.0)}
    [sha] = commits
    assert gp.head() == sha and "rollback churn to @1" in gp.git("log", "-1", "--format=%B")
    assert "version: 1" in gp.git("show", "HEAD:environments/prod.yaml")
    # git and live agree again: nothing left to do.
    assert reconcile.plan(gp.project).actions == []


def test_a_newer_promotion_is_not_reverted_by_a_late_rollback(git_project: GitProject) -> None:
    gp = git_project
    gp.git("rm", "-q", "environments/staging.yaml")
    gp.write_env("prod", ANALYSED.format(version=1), commit="prod")
    reconcile.sync(gp.project)
    gp.write_env("prod", ANALYSED.format(version=2), commit="promote churn@2")
    reconcile.sync(gp.project)
    # churn@3 is promoted while churn@2's canary is failing: the rollback must not undo it.
    head = gp.write_env("prod", ANALYSED.format(version=3), commit="promote churn@3")
    desired = read_desired(gp.project, revision=gp.git("rev-parse", "HEAD~1").strip())
    moved, commits = reconcile.advance_rollouts(
        gp.project, desired, figures=failing_figures(), now=later()
    )
    assert [r.phase for r in moved] == ["Degraded"] and commits == []
    assert gp.head() == head
    stored = latest_rollout(gp.project, "prod", "churn")
    assert stored is not None and stored.state.get("rollback_skipped")
    assert not stored.state.get("needs_rollback_commit")


def test_a_plan_cache_judges_again_only_what_moved(git_project: GitProject) -> None:
    gp = git_project
    gp.write_env("staging", "target: local\ndeployments: {}\n", commit="staging serves nothing yet")
    cache = reconcile.PlanCache()
    reconcile.sync(gp.project, cache=cache)
    first = reconcile.plan(gp.project, cache=cache)
    assert first.in_sync == 1 and first.actions == []
    hits = cache.hits
    assert reconcile.plan(gp.project, cache=cache).in_sync == 1
    assert cache.hits == hits + 2, "nothing moved: both environments come from the cache"

    # A change outside git moves the routing table: the cached judgement must not hide it.
    routes.deploy(gp.project, "churn@3", weight=50)
    assert kinds(reconcile.plan(gp.project, cache=cache)) == [("prod", "churn", "heal")]

    # A commit to one file: that environment is judged again, with the same answer as
    # a plan without any cache.
    reconcile.sync(gp.project, cache=cache)
    gp.write_env("prod", PROD.format(version=2, heal="true"), commit="churn@2")
    cached = reconcile.plan(gp.project, cache=cache)
    fresh = reconcile.plan(gp.project)
    assert kinds(cached) == kinds(fresh) == [("prod", "churn", "rollout")]
    assert cached.in_sync == fresh.in_sync
