"""Delivery metrics from a week of history, on SQLite and PostgreSQL.

The history is made by the library itself: datasets added, versions registered from runs
that read them, rollouts started, completed, failed by their analysis, aborted by a person
and superseded, rollbacks committed to git. Only the monitor's and the retraining
triggers' events are recorded directly, in the shapes their writers use. The event log's
clock is set for each step, since a week of history cannot be waited for; every other
part of each step runs as it does for a user.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from seaway.audit.metrics import DeliveryMetrics, delivery_metrics, parse_period, prometheus_text
from seaway.errors import UsageError
from seaway.project import Project
from seaway.rollout import engine
from seaway.rollout.records import Rollout, start_rollout
from seaway.spec.environment import EnvironmentSpec, StrategySpec
from tests.conftest import git
from tests.rollout import FakeFigures, healthy, make_figures

T0 = datetime(2026, 11, 2, tzinfo=UTC)
HOUR = 3600.0

CANARY = {
    "canary": {
        "steps": [{"weight": 10, "pause": "1m"}, {"weight": 100}],
        "analysis": {"max_error_rate": 0.05, "min_requests": 100, "interval": "30s"},
    }
}

PREDICTOR = """\
# {model} version {n}
class Model:
    def load(self):
        pass

    def predict(self, data):
        return [0 for _ in data]
"""


def day(d: float, h: float = 0.0) -> datetime:
    return T0 + timedelta(days=d, hours=h)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class History:
    """The project after the scenario below, and its clock."""

    project: Project
    clock: Clock

    def at(self, when: datetime) -> History:
        self.clock.now = when
        return self

    def dataset(self, name: str, content: str) -> int:
        from seaway.data.datasets import add

        path = self.project.root / "data" / f"{name}.csv"
        path.parent.mkdir(exist_ok=True)
        path.write_text(content)
        return add(self.project, name, [path]).version.number

    def register(self, model: str, n: int, datasets: Sequence[tuple[str, int]] = ()) -> None:
        from seaway.registry import register_model
        from seaway.tracking.store import RunStore

        folder = self.project.root / "models" / f"{model}-{n}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "predictor.py").write_text(PREDICTOR.format(model=model, n=n))
        (folder / "seaway-model.yaml").write_text("class: predictor:Model\ninput: array\n")
        run_id = None
        if datasets:
            # The lineage a pipeline run records for the dataset versions it read.
            lineage = {
                "datasets": [
                    {"name": d, "version": v, "ref": f"{d}@{v}", "tree_hash": "0" * 64}
                    for d, v in datasets
                ]
            }
            store = RunStore(self.project)
            try:
                run_id = store.create_run(pipeline="train", lineage=lineage).id
                store.finish(run_id, "succeeded")
            finally:
                store.close()
        result = register_model(self.project, model, Path(folder), run_id=run_id)
        assert result.version.number == n

    def _apply(self, model: str, env: str, candidate: int) -> Any:
        """Traffic applied through the environment's local target, as the reconciler does."""
        spec = EnvironmentSpec.model_validate(
            {"deployments": {model: {"version": candidate, "strategy": CANARY}}}
        )
        return engine.apply_through(self.project, env, spec, model)

    def start(self, model: str, env: str, stable: int | None, candidate: int) -> Rollout:
        r = start_rollout(
            self.project,
            env,
            model,
            stable=stable,
            candidate=candidate,
            strategy=StrategySpec.model_validate(CANARY),
            git_revision="abc",
            now=self.clock.now,
        )
        if stable is None:  # a first deployment completes at its first tick
            apply = self._apply(model, env, candidate)
            return engine.tick(self.project, r, apply=apply, now=self.clock.now)
        return r

    def complete(self, r: Rollout) -> Rollout:
        apply = self._apply(r.model, r.environment, r.candidate)
        return engine.promote(self.project, r, apply=apply, full=True, now=self.clock.now)

    def fail(self, r: Rollout) -> Rollout:
        apply = self._apply(r.model, r.environment, r.candidate)
        bad = FakeFigures(
            {
                r.stable or 0: healthy(r.stable or 0),
                r.candidate: make_figures(r.candidate, requests=300, errors=60, model=r.model),
            }
        )
        r = engine.tick(self.project, r, apply=apply, now=self.clock.now, figures=bad)
        later = self.clock.now + timedelta(seconds=30)
        r = engine.tick(self.project, r, apply=apply, now=later, figures=bad)
        assert r.phase == "Degraded"
        return r

    def abort(self, r: Rollout) -> Rollout:
        apply = self._apply(r.model, r.environment, r.candidate)
        return engine.abort(self.project, r, apply=apply, now=self.clock.now)

    def rollback(self, model: str, env: str, named: int, to: int) -> None:
        """Git names `named` in the environment file; roll it back to `to`."""
        from seaway.gitops.promote import rollback

        root = self.project.root
        path = root / "environments" / f"{env}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"target: local\ndeployments:\n  {model}:\n    version: {named}\n")
        git(root, "add", "-A", "environments")
        git(root, "commit", "-q", "-m", f"{model}@{named} in {env}")
        rollback(self.project, model, env, to=to, reason="bad predictions")

    def drift_window(self, subject: str, window: int, breached: bool) -> None:
        """A scored drift window, as the drift monitor records it."""
        data = {
            "kind": "drift",
            "window": window,
            "score": 0.3 if breached else 0.05,
            "breached": breached,
            "rows": 500,
            "drifted": ["tenure"] if breached else [],
        }
        self.record("monitor.window", subject, data)
        if breached:
            self.record("monitor.drift", subject, data)

    def record(self, kind: str, subject: str, data: dict[str, Any]) -> None:
        from seaway.store.events import record_event

        self.project.metadata.run_write(lambda conn: record_event(conn, kind, subject, data))


def clocked(project: Project, monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The event log's clock, set by the test; the project's git ready to commit."""
    clock = Clock()
    monkeypatch.setattr("seaway.store.events.utcnow", clock)
    # Dataset versions recorded through the store's common path, which the clock drives.
    monkeypatch.setenv("SEAWAY_SQLALCHEMY_ONLY", "1")
    root = project.root
    (root / ".gitignore").write_text(".seaway/\ndata/\nmodels/\n")
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@example.com")
    return clock


@pytest.fixture
def history(project: Project, monkeypatch: pytest.MonkeyPatch) -> History:
    """A week of two models: churn in prod, fraud in staging (see the comments)."""
    clock = clocked(project, monkeypatch)
    root = project.root
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "project")
    h = History(project, clock)

    # churn: trained on customers@1, first deployed 2h after registration.
    assert h.at(day(0)).dataset("customers", "id,x\n1,2\n") == 1
    h.at(day(0, 1)).register("churn", 1, [("customers", 1)])
    assert h.at(day(0, 3)).start("churn", "prod", None, 1).phase == "Successful"
    # fraud: no datasets in its lineage; deployed in staging 1h after registration.
    h.at(day(1)).dataset("customers", "id,x\n1,2\n2,3\n")
    h.at(day(1, 1)).register("churn", 2, [("customers", 2)])
    h.at(day(1, 5)).register("fraud", 1)
    h.at(day(1, 6)).start("fraud", "staging", None, 1)
    # churn@2 fails its canary (incident opens), and git is rolled back to @1.
    r = h.at(day(2)).start("churn", "prod", 1, 2)
    h.at(day(2, 1)).drift_window("model:fraud@1", 1, breached=False)
    h.at(day(2, 0 + 10 / 60)).fail(r)
    h.at(day(2, 20 / 60)).rollback("churn", "prod", named=2, to=1)
    # churn@3 reaches 100% a day later: its change is the data it brings over churn@1
    # (customers@2, created on day 1), so lead time 50h; the incident closes after 25h50m.
    h.at(day(2, 6)).register("churn", 3, [("customers", 2)])
    r = h.at(day(3)).start("churn", "prod", 1, 3)
    h.at(day(3, 2)).complete(r)
    for hour, breached in ((5, False), (6, True), (7, True), (8, False)):
        h.at(day(3, hour)).drift_window("model:churn@3", hour, breached)
    h.at(day(3, 9)).record(
        "monitor.window",
        "model:churn@3",
        {"kind": "quality", "window": 1, "score": 0.6, "breached": True, "rows": 200},
    )
    # A person rolls churn@3 back: @1 serves again 1h30m later (a deployment, no new change).
    h.at(day(4)).rollback("churn", "prod", named=3, to=1)
    r = h.at(day(4, 1)).start("churn", "prod", 3, 1)
    h.at(day(4, 1.5)).complete(r)
    # churn@4's canary is superseded by churn@5's, which a person aborts (left open).
    h.at(day(5)).register("churn", 4)
    h.at(day(5, 0.5)).register("churn", 5)
    h.at(day(5, 1)).start("churn", "prod", 1, 4)
    r = h.at(day(5, 1.5)).start("churn", "prod", 1, 5)
    h.at(day(5, 2)).abort(r)
    # A drift trigger retrains fraud: fraud@2 at 100% in staging 2h after it started.
    trig = {"trigger": 1, "kind": "drift", "pipeline": "train", "environment": "staging"}
    h.at(day(6)).record("trigger.started", "model:fraud", trig)
    h.at(day(6, 0.1)).record("trigger.run", "model:fraud", {"trigger": 1, "run": "r1"})
    h.at(day(6, 0.5)).register("fraud", 2)
    h.at(day(6, 0.6)).record("trigger.registered", "model:fraud", {"trigger": 1, "version": 2})
    promoted = {"trigger": 1, "version": 2, "environment": "staging", "commit": "c0ffee"}
    h.at(day(6, 0.7)).record("trigger.promoted", "model:fraud", promoted)
    r = h.at(day(6, 1)).start("fraud", "staging", 1, 2)
    h.at(day(6, 2)).complete(r)
    # A churn trigger that failed, and a fraud trigger still running at the end.
    trig2 = {"trigger": 2, "kind": "drift", "pipeline": "train", "environment": "prod"}
    h.at(day(6, 3)).record("trigger.started", "model:churn", trig2)
    h.at(day(6, 3.2)).record("trigger.failed", "model:churn", {"trigger": 2, "error": "boom"})
    trig3 = {"trigger": 3, "kind": "quality", "pipeline": "train", "environment": "staging"}
    h.at(day(6, 4)).record("trigger.started", "model:fraud", trig3)
    return h


def hours(metrics_value: float | None) -> float | None:
    return None if metrics_value is None else round(metrics_value / HOUR, 6)


def test_the_four_keys_over_the_whole_log(history: History) -> None:
    m = delivery_metrics(history.project)
    assert (m.since, m.until) == (day(0), day(6, 4))  # the oldest and the newest event
    d = m.dora
    # churn @1, @3, @1 again; fraud @1, @2.
    assert d.deployments == 5
    assert d.frequency_per_day == pytest.approx(5 / (6 + 4 / 24))
    # churn@1 2h, churn@3 50h, fraud@1 1h, fraud@2 1h30m (churn@1's redeployment is no change).
    assert d.lead_time.n == 4
    assert hours(d.lead_time.median_s) == 1.75
    assert hours(d.lead_time.p90_s) == pytest.approx(2 + 0.7 * 48)
    cf = d.change_failures
    # Seven rollouts ended (the superseded one is none of them): churn@2 failed, churn@5
    # aborted, churn@3 rolled back.
    assert (cf.attempts, cf.failures, cf.failed, cf.aborted, cf.rolled_back) == (7, 3, 1, 1, 1)
    assert cf.rate == pytest.approx(3 / 7)
    # 25h50m and 1h30m; the abort at the end is still open.
    tr = d.time_to_restore
    assert (tr.n, tr.open) == (2, 1)
    assert hours(tr.median_s) == pytest.approx((25 + 50 / 60 + 1.5) / 2)


def test_ml_figures_freshness_drift_and_retraining(history: History) -> None:
    m = delivery_metrics(history.project)
    fresh = {(f.model, f.environment): f for f in m.freshness}
    assert set(fresh) == {("churn", "prod"), ("fraud", "staging")}
    churn = fresh[("churn", "prod")]
    # @1 serves again after the rollback; its data is customers@1, from the first day.
    assert (churn.version, churn.datasets, churn.data_created_at) == (1, ("customers@1",), day(0))
    assert hours(churn.age_s) == 6 * 24 + 4
    fraud = fresh[("fraud", "staging")]
    assert (fraud.version, fraud.age_s, fraud.n) == (2, None, 0)

    # Quality windows are not drift windows.
    assert (m.drift.breached, m.drift.n, m.drift.rate) == (2, 5, pytest.approx(0.4))
    by_model = {d.model: (d.breached, d.n, d.rate) for d in m.drift_by_model}
    assert by_model == {"churn": (2, 4, 0.5), "fraud": (0, 1, 0.0)}

    r = m.retraining
    assert r.triggers == 3
    assert r.outcomes == {"failed": 1, "in_progress": 1, "promoted": 1}
    assert (r.cycle.n, hours(r.cycle.median_s)) == (1, 2.0)

    # A sync that removes fraud from staging: it serves nowhere, so it has no freshness.
    history.at(day(7)).record(
        "sync.applied",
        "environment:staging",
        {"git_revision": "abc", "source": None, "actions": ["remove fraud"], "failed": []},
    )
    assert [f.model for f in delivery_metrics(history.project).freshness] == ["churn"]


def test_filters_by_model_and_environment(history: History) -> None:
    churn = delivery_metrics(history.project, model="churn")
    assert churn.dora.deployments == 3
    assert (churn.dora.lead_time.n, hours(churn.dora.lead_time.median_s)) == (2, 26.0)
    assert (churn.dora.change_failures.failures, churn.dora.change_failures.attempts) == (3, 5)
    assert [f.model for f in churn.freshness] == ["churn"]
    assert [d.model for d in churn.drift_by_model] == ["churn"]
    assert churn.retraining.outcomes == {"failed": 1}
    assert churn.retraining.cycle.n == 0 and churn.retraining.cycle.median_s is None

    staging = delivery_metrics(history.project, environment="staging")
    d = staging.dora
    assert (d.deployments, d.lead_time.n, hours(d.lead_time.median_s)) == (2, 2, 1.25)
    # Two rollouts, none failed: a real zero. No incident: no figure at all.
    assert (d.change_failures.rate, d.change_failures.attempts) == (0.0, 2)
    assert (d.time_to_restore.median_s, d.time_to_restore.n) == (None, 0)
    assert [(f.model, f.environment) for f in staging.freshness] == [("fraud", "staging")]
    assert staging.retraining.outcomes == {"in_progress": 1, "promoted": 1}

    # Per-target figures add up to the whole.
    every = delivery_metrics(history.project)
    assert [(t.model, t.environment) for t in every.targets] == [
        ("churn", "prod"),
        ("fraud", "staging"),
    ]
    assert sum(t.deployments for t in every.targets) == every.dora.deployments

    nothing = delivery_metrics(history.project, model="nobody")
    assert nothing.dora.deployments == 0 and nothing.dora.frequency_per_day is None
    assert nothing.dora.lead_time.median_s is None and nothing.dora.change_failures.rate is None
    assert nothing.drift.rate is None and nothing.freshness == []


def test_until_and_since_bound_the_period(history: History) -> None:
    # On the morning after churn@3 reached 100%: before its rollback and its drift windows.
    m = delivery_metrics(history.project, until=day(3, 3))
    assert m.until == day(3, 3)
    assert m.dora.deployments == 3  # churn@1, fraud@1, churn@3
    cf = m.dora.change_failures
    assert (cf.failures, cf.attempts, cf.rolled_back) == (1, 4, 0)
    assert (m.dora.time_to_restore.n, m.dora.time_to_restore.open) == (1, 0)
    fresh = {f.model: f for f in m.freshness}
    assert fresh["churn"].version == 3
    assert hours(fresh["churn"].age_s) == 2 * 24 + 3  # customers@2, added on day 1
    assert m.drift.n == 1 and m.retraining.triggers == 0

    # The last day of the log, counted back from its newest event.
    last = delivery_metrics(history.project, since=timedelta(days=1))
    assert last.since == day(5, 4)
    assert (last.dora.deployments, last.dora.frequency_per_day) == (1, 1.0)
    assert last.dora.lead_time.n == 1 and hours(last.dora.lead_time.median_s) == 1.5
    # The abort happened before the period: its rollout is not counted.
    assert last.dora.change_failures.attempts == 1

    # A half-day period counts as one day.
    short = delivery_metrics(history.project, since=day(6, 1), until=day(6, 3))
    assert (short.dora.deployments, short.dora.frequency_per_day) == (1, 1.0)

    with pytest.raises(UsageError):
        delivery_metrics(history.project, since=day(7))


def test_the_same_log_gives_the_same_figures(history: History) -> None:
    from seaway.audit.verify import verify_chain

    assert verify_chain(history.project).ok  # the history is an ordinary, intact log
    first = delivery_metrics(history.project).to_dict()
    assert delivery_metrics(history.project).to_dict() == first
    # Newer events move the default end; an explicit one keeps the figures as they were.
    history.at(day(9)).drift_window("model:churn@1", 9, breached=True)
    assert delivery_metrics(history.project, until=day(6, 4)).to_dict() == first
    later = delivery_metrics(history.project)
    assert later.until == day(9) and later.drift.n == 6


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_prometheus_text_parses_and_omits_figures_without_samples(history: History) -> None:
    m = delivery_metrics(history.project)
    samples = _samples(prometheus_text(m))
    total = (("environment", ""), ("model", ""))
    prod = (("environment", "prod"), ("model", "churn"))
    staging = (("environment", "staging"), ("model", "fraud"))
    assert samples[("seaway_deployment_frequency_per_day", total)] == pytest.approx(
        m.dora.frequency_per_day
    )
    assert samples[("seaway_deployments", prod)] == 3
    assert samples[("seaway_lead_time_seconds", (*total, ("quantile", "0.5")))] == 1.75 * HOUR
    assert samples[("seaway_lead_time_seconds", (*total, ("quantile", "0.9")))] == pytest.approx(
        35.6 * HOUR
    )
    assert samples[("seaway_change_failure_rate", total)] == pytest.approx(3 / 7)
    assert samples[("seaway_change_failure_rate", staging)] == 0.0
    cf_samples = tuple(sorted((*total, ("metric", "change_failure_rate"))))
    assert samples[("seaway_metric_samples", cf_samples)] == 7
    assert ("seaway_time_to_restore_seconds", staging) not in samples  # no incident there
    assert samples[("seaway_model_freshness_seconds", prod)] == (6 * 24 + 4) * HOUR
    assert ("seaway_model_freshness_seconds", staging) not in samples
    drift = (("environment", ""), ("model", "churn"))
    assert samples[("seaway_prediction_drift_rate", drift)] == 0.5
    assert samples[("seaway_retraining_cycle_seconds", total)] == 2 * HOUR

    filtered = _samples(prometheus_text(delivery_metrics(history.project, model="churn")))
    churn_all = (("environment", ""), ("model", "churn"))
    assert filtered[("seaway_deployments", churn_all)] == 3
    assert filtered[("seaway_deployments", prod)] == 3
    assert not any(labels == staging for _, labels in filtered)


def test_cli_json_prometheus_and_table(history: History, cli: Any) -> None:
    result = cli("metrics", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["until"] == "2026-11-08T04:00:00Z"
    assert data["dora"]["deployments"] == 5
    assert data["dora"]["lead_time"] == {"median_s": 1.75 * HOUR, "p90_s": 35.6 * HOUR, "n": 4}
    assert data["dora"]["time_to_restore"]["open"] == 1
    assert cli("metrics", "--json").stdout == result.stdout  # reproducible

    until = cli("metrics", "--json", "--until", "2026-11-05T03:00", "--env", "prod")
    assert until.exit_code == 0, until.stderr
    data = json.loads(until.stdout)
    assert (data["until"], data["environment"], data["dora"]["deployments"]) == (
        "2026-11-05T03:00:00Z",
        "prod",
        2,
    )
    week = json.loads(cli("metrics", "--json", "--since", "1d", "--model", "fraud").stdout)
    assert week["since"] == "2026-11-07T04:00:00Z" and week["dora"]["deployments"] == 1

    prom = cli("metrics", "--prometheus", "--model", "churn")
    assert prom.exit_code == 0, prom.stderr
    assert (
        _samples(prom.stdout)[("seaway_deployments", (("environment", ""), ("model", "churn")))]
        == 3
    )

    table = cli("metrics")
    assert table.exit_code == 0, table.stderr
    lines = table.stdout.splitlines()

    def row(first: str) -> str:
        return next(ln for ln in lines if ln.startswith(first))

    assert "0.81/day" in row("deployment frequency") and "5 deployments" in row("deployment")
    assert "1h45m, p90 1d11h" in row("lead time") and "4 versions" in row("lead time")
    assert "42.9%" in row("change failure rate") and "3 of 7 rollouts" in row("change")
    assert "13h40m" in row("time to restore") and "2 incidents, 1 open" in row("time to")
    assert "40.0%" in row("prediction drift") and "2 of 5 windows" in row("prediction")
    assert "2h00m" in row("retraining cycle") and "1 of 3 triggers" in row("retraining")
    assert "6d04h" in row("churn") and "50.0% of 4 windows" in row("churn")
    # fraud@2 has no freshness: shown as a dash, not a zero.
    assert "—" in row("fraud") and "0 datasets" in row("fraud")

    assert cli("metrics", "--json", "--prometheus").exit_code == 2
    assert cli("metrics", "--since", "last tuesday").exit_code == 2


def test_an_empty_log_has_no_figures(project: Project, cli: Any) -> None:
    m = delivery_metrics(project)
    assert isinstance(m, DeliveryMetrics)
    assert m.until is None and m.dora.frequency_per_day is None and m.dora.deployments == 0
    assert json.loads(cli("metrics", "--json").stdout)["dora"]["lead_time"]["n"] == 0
    assert "no events" in cli("metrics").stdout
    names = {name for name, _ in _samples(prometheus_text(m))}
    assert names == {"seaway_deployments", "seaway_metric_samples"}  # counts of zero only


def test_parse_period_reads_spans_and_times() -> None:
    assert parse_period("7d") == timedelta(days=7)
    assert parse_period("2w") == timedelta(weeks=2)
    assert parse_period("2026-11-02") == T0
    with pytest.raises(UsageError):
        parse_period("soon")


def test_lead_time_starts_at_the_first_commit_of_the_change(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commits dated like a real history: the change of a version is the commits after
    the serving version's own, or the data it brings when the code is the same."""
    clock = clocked(project, monkeypatch)
    root = project.root

    def commit(message: str, when: datetime) -> None:
        (root / "train.py").write_text(f"# {message}\n")
        git(root, "add", "-A")
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S+0000")
        monkeypatch.setenv("GIT_COMMITTER_DATE", stamp)
        monkeypatch.setenv("GIT_AUTHOR_DATE", stamp)
        git(root, "commit", "-q", "-m", message)

    def reset_run_git_cache() -> None:
        import seaway.tracking.environment as te

        te._git.clear()  # runs read HEAD again, not a cached one

    h = History(project, clock)
    commit("first model", day(0))
    h.at(day(0, 1)).dataset("customers", "id,x\n1,2\n")
    h.at(day(0, 2)).register("churn", 1, [("customers", 1)])
    h.at(day(0, 5)).start("churn", "prod", None, 1)  # first: from its commit, 5h

    commit("better features", day(1))
    commit("tune", day(1, 6))
    reset_run_git_cache()
    h.at(day(2)).register("churn", 2, [("customers", 1)])
    r = h.at(day(2, 1)).start("churn", "prod", 1, 2)
    h.at(day(2, 4)).complete(r)  # from "better features": 28h

    h.at(day(3)).dataset("customers", "id,x\n1,2\n2,3\n")
    reset_run_git_cache()
    h.at(day(3, 2)).register("churn", 3, [("customers", 2)])
    r = h.at(day(3, 3)).start("churn", "prod", 2, 3)
    h.at(day(3, 6)).complete(r)  # same code, new data: from customers@2, 6h

    lead = delivery_metrics(project, environment="prod").dora.lead_time
    assert (lead.n, hours(lead.median_s), hours(lead.p90_s)) == (3, 6.0, pytest.approx(23.6))
    first = delivery_metrics(project, until=day(1)).dora.lead_time
    assert (first.n, hours(first.median_s)) == (1, 5.0)
