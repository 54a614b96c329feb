"""Delivery metrics: DORA's four keys and the ML loop's own figures, read from the event log.

    metrics = delivery_metrics(project, environment="prod", since=timedelta(days=30))
    metrics.dora.lead_time.median_s          # seconds, or None without a sample
    print(prometheus_text(metrics))          # gauges for a textfile collector or a push

Everything comes from events (plus a version's lineage, which never changes once it is
registered, and the times of the git commits it names), so the figures are reproducible:
`until` defaults to the newest event's time, not the clock, and the same log with the same
`since` and `until` gives the same figures.
`since` defaults to the oldest event; a `timedelta` is counted back from `until`.

The figures, exactly:

- **Deployments**: rollouts that reached 100% of traffic (`rollout.succeeded`) in the
  period. A first deployment or a `direct` strategy applied by `seaway sync` is a rollout
  too, completed at once. Traffic set by hand with `seaway deploy` belongs to no
  environment and is not counted. **Deployment frequency** is their number per day of the
  period (a period shorter than a day counts as one day).
- **Lead time for changes**: from the first commit of a change to the first time the
  version carrying it reaches 100% traffic in an environment. The change is what the
  version brings over the one serving there before: the git commits after that version's
  training commit up to its own (its lineage's `git.commit`), and the dataset versions it
  read that the other did not (a data snapshot is a commit of data). It starts at the
  earliest of them (a commit's committer time, a dataset version's creation), and never
  after the version's registration, which is the start when nothing of either is known
  (no lineage, a commit git no longer has). A model's first deployment in an environment
  starts at its own training commit. One sample per version and environment, for first
  deployments in the period; redeploying an old version (a rollback) is not a new change.
  Median and p90.
- **Change failure rate**: rollouts that ended in the period (succeeded, failed or aborted
  by a person) are the attempts; the failures are those that failed their analysis
  (`rollout.failed`), were aborted (`rollout.aborted`), or succeeded and were later rolled
  back (`rollback.committed` naming their version as the one replaced). A rollout
  superseded by a newer one is neither. Rollouts still in progress wait for their outcome.
- **Time to restore**: an incident of a model in an environment opens at a failure (a
  failed or aborted rollout, or a rollback commit) and closes at that model's next
  successful deployment there; failures while one is open belong to it. Median over the
  incidents opened in the period and closed by `until`; those still open are counted.
- **Model freshness**: for each version serving at `until` (the newest successful
  deployment of each model in each environment, unless a sync removed the model since), the
  age at `until` of the newest dataset version in its lineage (`dataset.version.created`).
  A version registered without a run that read datasets has no freshness.
- **Prediction drift rate**: the share of scored drift windows (`monitor.window` events of
  kind "drift") in the period that breached their threshold, per model. Windows belong to
  no environment, so `environment` does not narrow it.
- **Retraining cycle time**: from a trigger's start (`trigger.started`) to the first
  `rollout.succeeded` of the version that trigger registered (in the trigger's environment
  when it names one); median and p90 over the triggers started in the period. Triggers are
  also counted by outcome: the last of their events (`promoted`, `gated`, `failed`, …;
  `in_progress` while the newest is `started`, `run` or `registered`).

Every figure carries its sample size, and a figure without a sample is None, never 0:
no deployment in a period gives a frequency of None with a sample of 0.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from seaway._util import as_utc, isoformat
from seaway.errors import UsageError

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy.engine import Connection

    from seaway.project import Project

__all__ = [
    "ChangeFailures",
    "DeliveryMetrics",
    "DoraFigures",
    "DriftRate",
    "Durations",
    "Freshness",
    "Restores",
    "Retraining",
    "delivery_metrics",
    "parse_period",
    "prometheus_text",
]

_DAY_S = 86400.0
# Kinds whose subject is `model:NAME` or `model:NAME@N`.
_MODEL_KINDS = (
    "model.registered",
    "rollout.started",
    "rollout.succeeded",
    "rollout.failed",
    "rollout.aborted",
    "rollback.committed",
    "monitor.window",
)
_TRIGGER_PREFIX = "trigger."
_IN_PROGRESS = frozenset({"started", "run", "registered"})


# -- the figures --------------------------------------------------------------------------


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


@dataclass(frozen=True)
class Durations:
    """A distribution of durations in seconds: median and p90 over `n` samples."""

    median_s: float | None
    p90_s: float | None
    n: int

    @classmethod
    def of(cls, samples: list[float]) -> Durations:
        if not samples:
            return cls(None, None, 0)
        ordered = sorted(samples)
        return cls(_quantile(ordered, 0.5), _quantile(ordered, 0.9), len(ordered))

    def to_dict(self) -> dict[str, Any]:
        return {"median_s": _round(self.median_s), "p90_s": _round(self.p90_s), "n": self.n}


def _quantile(ordered: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default)."""
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class ChangeFailures:
    """Failed changes over attempted ones; `failed`, `aborted` and `rolled_back` add up
    to `failures`."""

    rate: float | None
    failures: int
    attempts: int
    failed: int
    aborted: int
    rolled_back: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "rate": _round(self.rate),
            "failures": self.failures,
            "attempts": self.attempts,
            "failed": self.failed,
            "aborted": self.aborted,
            "rolled_back": self.rolled_back,
        }


@dataclass(frozen=True)
class Restores:
    """Time to restore: median over `n` closed incidents; `open` are not closed yet."""

    median_s: float | None
    n: int
    open: int

    def to_dict(self) -> dict[str, Any]:
        return {"median_s": _round(self.median_s), "n": self.n, "open": self.open}


@dataclass(frozen=True)
class DoraFigures:
    """The four keys, for one model in one environment or (None) for all of them."""

    model: str | None
    environment: str | None
    deployments: int
    frequency_per_day: float | None
    lead_time: Durations
    change_failures: ChangeFailures
    time_to_restore: Restores

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "environment": self.environment,
            "deployments": self.deployments,
            "frequency_per_day": _round(self.frequency_per_day),
            "lead_time": self.lead_time.to_dict(),
            "change_failure_rate": self.change_failures.to_dict(),
            "time_to_restore": self.time_to_restore.to_dict(),
        }


@dataclass(frozen=True)
class Freshness:
    """How old the newest data behind a serving version is at `until`; `n` datasets."""

    model: str
    environment: str
    version: int
    data_created_at: datetime | None
    age_s: float | None
    datasets: tuple[str, ...]

    @property
    def n(self) -> int:
        return len(self.datasets)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "environment": self.environment,
            "version": self.version,
            "data_created_at": isoformat(self.data_created_at),
            "age_s": _round(self.age_s),
            "datasets": list(self.datasets),
            "n": self.n,
        }


@dataclass(frozen=True)
class DriftRate:
    """Breached drift windows over scored ones, for a model (None: every model)."""

    model: str | None
    rate: float | None
    breached: int
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "rate": _round(self.rate),
            "breached": self.breached,
            "n": self.n,
        }


@dataclass(frozen=True)
class Retraining:
    """Triggers started in the period: how long the deployed ones took, and outcomes."""

    cycle: Durations
    triggers: int
    outcomes: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"cycle": self.cycle.to_dict(), "triggers": self.triggers, "outcomes": self.outcomes}


@dataclass(frozen=True)
class DeliveryMetrics:
    """Every figure for the period [since, until] (both None for an empty log)."""

    since: datetime | None
    until: datetime | None
    model: str | None
    environment: str | None
    dora: DoraFigures
    targets: list[DoraFigures]
    """The same figures per (model, environment) that had a rollout or a rollback."""
    freshness: list[Freshness]
    drift: DriftRate
    drift_by_model: list[DriftRate]
    retraining: Retraining

    @property
    def days(self) -> float | None:
        if self.since is None or self.until is None:
            return None
        return (self.until - self.since).total_seconds() / _DAY_S

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": isoformat(self.since),
            "until": isoformat(self.until),
            "days": _round(self.days),
            "model": self.model,
            "environment": self.environment,
            "dora": self.dora.to_dict(),
            "targets": [t.to_dict() for t in self.targets],
            "freshness": [f.to_dict() for f in self.freshness],
            "drift": self.drift.to_dict(),
            "drift_by_model": [d.to_dict() for d in self.drift_by_model],
            "retraining": self.retraining.to_dict(),
        }


# -- reading the log ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Event:
    seq: int
    ts: datetime
    kind: str
    subject: str
    data: dict[str, Any]


def _subject_model(subject: str) -> tuple[str, int | None]:
    """`model:NAME@N` -> (NAME, N); `model:NAME` -> (NAME, None)."""
    name = subject.removeprefix("model:")
    base, sep, number = name.rpartition("@")
    if sep and number.isdigit():
        return base, int(number)
    return name, None


def _bounds(conn: Connection) -> tuple[datetime | None, datetime | None]:
    from sqlalchemy import func, select

    from seaway.store.schema import events

    row = conn.execute(select(func.min(events.c.ts), func.max(events.c.ts))).one()
    return as_utc(row[0]), as_utc(row[1])


def _read_events(conn: Connection, until: datetime, model: str | None) -> list[_Event]:
    """Every event the figures use, up to `until`, in log order. The whole history is read
    (not only the period): a deployment in the period needs its version's registration."""
    from sqlalchemy import or_, select

    from seaway.store.schema import events as ev

    about_models = or_(ev.c.kind.in_(_MODEL_KINDS), ev.c.kind.startswith(_TRIGGER_PREFIX))
    if model is not None:
        about_models = about_models & (
            (ev.c.subject == f"model:{model}")
            | ev.c.subject.startswith(f"model:{model}@", autoescape=True)
        )
    wanted = or_(about_models, ev.c.kind.in_(("dataset.version.created", "sync.applied")))
    query = (
        select(ev.c.seq, ev.c.ts, ev.c.kind, ev.c.subject, ev.c.data)
        .where(wanted, ev.c.ts <= until)
        .order_by(ev.c.seq)
    )
    return [
        _Event(int(r.seq), as_utc(r.ts), r.kind, r.subject, dict(r.data or {}))
        for r in conn.execute(query)
    ]


@dataclass(frozen=True)
class _Lineage:
    datasets: tuple[str, ...]
    """The dataset versions read (`NAME@N`)."""
    commit: str | None
    """The git commit it was trained (or registered) at."""


def _lineages(conn: Connection, versions: set[tuple[str, int]]) -> dict[tuple[str, int], _Lineage]:
    """The dataset versions and the git commit in each version's lineage."""
    from sqlalchemy import select

    from seaway.store.schema import model_versions, models

    if not versions:
        return {}
    names = sorted({m for m, _ in versions})
    query = (
        select(models.c.name, model_versions.c.number, model_versions.c.lineage)
        .join(models, models.c.id == model_versions.c.model_id)
        .where(models.c.name.in_(names))
    )
    found: dict[tuple[str, int], _Lineage] = {}
    for row in conn.execute(query):
        key = (row.name, int(row.number))
        if key not in versions:
            continue
        lineage = row.lineage or {}
        refs: list[str] = []
        for d in lineage.get("datasets") or []:
            if isinstance(d, dict) and d.get("name") is not None and d.get("version") is not None:
                refs.append(f"{d['name']}@{d['version']}")
        commit = (lineage.get("git") or {}).get("commit")
        found[key] = _Lineage(tuple(sorted(set(refs))), str(commit) if commit else None)
    return found


class _CommitTimes:
    """Committer times from the project's git repository, asked once per range."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache: dict[tuple[str, str | None], datetime | None] = {}

    def first(self, commit: str, after: str | None) -> datetime | None:
        """The earliest committer time of the commits in `after..commit` (of `commit` alone
        without `after`); None when git cannot tell (not a repository, an unknown commit)."""
        key = (commit, after)
        if key not in self.cache:
            self.cache[key] = self._read(commit, after)
        return self.cache[key]

    def _read(self, commit: str, after: str | None) -> datetime | None:
        from seaway.gitops.git import Git, GitError, is_sha

        if not is_sha(commit) or (after is not None and not is_sha(after)):
            return None
        args = ["log", "--format=%ct", commit]
        args += ["--not", after] if after is not None else ["-1"]
        try:
            proc = Git(self.root).run(*args, check=False)
        except GitError:
            return None
        if proc.returncode != 0:
            return None
        stamps = [int(t) for t in proc.stdout.decode().split() if t.isdigit()]
        return datetime.fromtimestamp(min(stamps), UTC) if stamps else None


# -- the computation ----------------------------------------------------------------------


@dataclass
class _Rollout:
    model: str
    environment: str
    candidate: int
    outcome: str | None = None  # succeeded, failed, aborted, superseded, rolled_back
    ended: datetime | None = None


Key = tuple[str, str]


@dataclass
class _Trigger:
    model: str
    started: datetime
    environment: str | None = None
    version: int | None = None
    last: str = "started"


@dataclass
class _Change:
    """A version's first 100% in an environment, and what served there before it."""

    key: Key
    number: int
    deployed: datetime
    registered: datetime | None
    previous: int | None


@dataclass
class _Log:
    """What one pass over the events yields, as samples tagged with (model, environment)."""

    deployments: list[tuple[Key, datetime]] = field(default_factory=list)
    changes: list[_Change] = field(default_factory=list)
    lead: list[tuple[Key, datetime, float]] = field(default_factory=list)
    rollouts: list[_Rollout] = field(default_factory=list)
    incidents: list[tuple[Key, datetime, datetime | None]] = field(default_factory=list)
    serving: dict[Key, int] = field(default_factory=dict)
    succeeded: dict[tuple[str, int], list[tuple[str, datetime]]] = field(default_factory=dict)
    drift: list[tuple[str, datetime, bool]] = field(default_factory=list)
    triggers: list[_Trigger] = field(default_factory=list)
    datasets: dict[str, datetime] = field(default_factory=dict)


def _walk(found: list[_Event]) -> _Log:
    log = _Log()
    registered: dict[tuple[str, int], datetime] = {}
    rollouts: dict[int, _Rollout] = {}
    latest_of: dict[Key, list[_Rollout]] = defaultdict(list)
    first_success: set[tuple[str, int, str]] = set()
    opened: dict[Key, datetime] = {}
    triggers: dict[tuple[str, Any], _Trigger] = {}

    def rollout_of(e: _Event, model: str, number: int) -> _Rollout:
        rid = e.data.get("rollout")
        r = rollouts.get(rid) if isinstance(rid, int) else None
        if r is None:
            r = _Rollout(model, str(e.data.get("environment")), number)
            if isinstance(rid, int):
                rollouts[rid] = r
            latest_of[(r.model, r.environment)].append(r)
            log.rollouts.append(r)
        return r

    for e in found:
        if e.kind == "dataset.version.created":
            log.datasets[e.subject.removeprefix("dataset:")] = e.ts
            continue
        if e.kind == "sync.applied":
            env = e.subject.removeprefix("environment:")
            for action in e.data.get("actions") or []:
                verb, _, name = str(action).partition(" ")
                if verb == "remove":
                    log.serving.pop((name, env), None)
            continue
        model, number = _subject_model(e.subject)
        if e.kind.startswith(_TRIGGER_PREFIX):
            # An event naming no trigger (a skip before any was started) stands alone.
            tid = e.data.get("trigger", f"#{e.seq}")
            t = triggers.get((model, tid))
            if t is None:
                t = triggers[(model, tid)] = _Trigger(model, e.ts)
                log.triggers.append(t)
            t.last = e.kind.removeprefix(_TRIGGER_PREFIX)
            if e.data.get("environment") is not None:
                t.environment = str(e.data["environment"])
            version = e.data.get("version")
            if isinstance(version, int) or (isinstance(version, str) and version.isdigit()):
                t.version = int(version)
            continue
        if e.kind == "monitor.window":
            if e.data.get("kind") == "drift":
                log.drift.append((model, e.ts, bool(e.data.get("breached"))))
            continue
        if number is None:
            continue
        if e.kind == "model.registered":
            registered[(model, number)] = e.ts
            continue
        env = str(e.data.get("environment"))
        key = (model, env)
        if e.kind == "rollout.started":
            rollout_of(e, model, number)
        elif e.kind == "rollout.succeeded":
            r = rollout_of(e, model, number)
            r.outcome, r.ended = "succeeded", e.ts
            log.deployments.append((key, e.ts))
            before = log.serving.get(key)
            log.serving[key] = number
            log.succeeded.setdefault((model, number), []).append((env, e.ts))
            if (model, number, env) not in first_success:
                first_success.add((model, number, env))
                born = registered.get((model, number))
                log.changes.append(_Change(key, number, e.ts, born, before))
            if key in opened:
                log.incidents.append((key, opened.pop(key), e.ts))
        elif e.kind in ("rollout.failed", "rollout.aborted"):
            r = rollout_of(e, model, number)
            superseded = e.kind == "rollout.aborted" and e.data.get("superseded_by") is not None
            r.ended = e.ts
            if superseded:
                r.outcome = "superseded"
            else:
                r.outcome = "failed" if e.kind == "rollout.failed" else "aborted"
                opened.setdefault(key, e.ts)
        elif e.kind == "rollback.committed":
            previous = e.data.get("previous")
            ended = [r for r in latest_of[key] if r.candidate == previous and r.ended is not None]
            # The rollout that put the replaced version there; one that failed counts already.
            if ended and ended[-1].outcome == "succeeded":
                ended[-1].outcome = "rolled_back"
            opened.setdefault(key, e.ts)
    log.incidents.extend((key, at, None) for key, at in opened.items())
    return log


def _dora(
    log: _Log,
    since: datetime,
    until: datetime,
    model: str | None,
    environment: str | None,
) -> DoraFigures:
    def keep(key: Key) -> bool:
        return (model is None or key[0] == model) and (environment is None or key[1] == environment)

    def inside(at: datetime) -> bool:
        return since <= at <= until

    deployments = sum(1 for key, at in log.deployments if keep(key) and inside(at))
    days = max((until - since).total_seconds() / _DAY_S, 1.0)
    lead = [s for key, at, s in log.lead if keep(key) and inside(at)]
    ended = [
        r
        for r in log.rollouts
        if keep((r.model, r.environment))
        and r.ended is not None
        and inside(r.ended)
        and r.outcome not in (None, "superseded")
    ]
    counts = {o: sum(1 for r in ended if r.outcome == o) for o in ("failed", "aborted")}
    rolled_back = sum(1 for r in ended if r.outcome == "rolled_back")
    failures = counts["failed"] + counts["aborted"] + rolled_back
    restores = [
        (closed - opened).total_seconds()
        for key, opened, closed in log.incidents
        if keep(key) and inside(opened) and closed is not None
    ]
    still_open = sum(
        1 for key, opened, closed in log.incidents if keep(key) and inside(opened) and not closed
    )
    return DoraFigures(
        model=model,
        environment=environment,
        deployments=deployments,
        frequency_per_day=deployments / days if deployments else None,
        lead_time=Durations.of(lead),
        change_failures=ChangeFailures(
            rate=failures / len(ended) if ended else None,
            failures=failures,
            attempts=len(ended),
            failed=counts["failed"],
            aborted=counts["aborted"],
            rolled_back=rolled_back,
        ),
        time_to_restore=Restores(
            median_s=Durations.of(restores).median_s, n=len(restores), open=still_open
        ),
    )


def _lead_times(project: Project, conn: Connection, log: _Log) -> None:
    """Each first deployment's lead time, from the first commit of its change (see the
    module docstring), into `log.lead`."""
    wanted = {(c.key[0], c.number) for c in log.changes}
    wanted |= {(c.key[0], c.previous) for c in log.changes if c.previous is not None}
    lineages = _lineages(conn, wanted)
    commits = _CommitTimes(project.root)
    for c in log.changes:
        model = c.key[0]
        own = lineages.get((model, c.number))
        before = lineages.get((model, c.previous)) if c.previous is not None else None
        starts: list[datetime | None] = [c.registered]
        if own is not None and own.commit is not None:
            if c.previous is None:
                starts.append(commits.first(own.commit, None))
            elif before is not None and before.commit not in (None, own.commit):
                starts.append(commits.first(own.commit, before.commit))
        if own is not None and before is not None:
            new_data = set(own.datasets) - set(before.datasets)
            starts.extend(log.datasets.get(ref) for ref in new_data)
        known = [t for t in starts if t is not None]
        if not known:
            continue
        # A change cannot start after its version was registered (a clock set wrong).
        start = min(known)
        log.lead.append((c.key, c.deployed, (c.deployed - start).total_seconds()))


def _freshness(
    conn: Connection, log: _Log, until: datetime, environment: str | None
) -> list[Freshness]:
    served = {
        key: number
        for key, number in log.serving.items()
        if environment is None or key[1] == environment
    }
    lineage = _lineages(conn, {(m, n) for (m, _), n in served.items()})
    out: list[Freshness] = []
    for (model, env), number in sorted(served.items()):
        found = lineage.get((model, number))
        known = [r for r in (found.datasets if found else ()) if r in log.datasets]
        newest = max((log.datasets[r] for r in known), default=None)
        out.append(
            Freshness(
                model=model,
                environment=env,
                version=number,
                data_created_at=newest,
                age_s=(until - newest).total_seconds() if newest is not None else None,
                datasets=tuple(known),
            )
        )
    return out


def _drift(log: _Log, since: datetime, until: datetime) -> tuple[DriftRate, list[DriftRate]]:
    windows: dict[str, list[bool]] = defaultdict(list)
    for model, at, breached in log.drift:
        if since <= at <= until:
            windows[model].append(breached)

    def rate(model: str | None, flags: list[bool]) -> DriftRate:
        hits = sum(flags)
        return DriftRate(model, hits / len(flags) if flags else None, hits, len(flags))

    every = [f for flags in windows.values() for f in flags]
    return rate(None, every), [rate(m, windows[m]) for m in sorted(windows)]


def _retraining(log: _Log, since: datetime, until: datetime, environment: str | None) -> Retraining:
    cycles: list[float] = []
    outcomes: dict[str, int] = defaultdict(int)
    count = 0
    for t in log.triggers:
        if not since <= t.started <= until:
            continue
        if environment is not None and t.environment != environment:
            continue
        count += 1
        outcomes["in_progress" if t.last in _IN_PROGRESS else t.last] += 1
        if t.version is None:
            continue
        done = [
            at
            for env, at in log.succeeded.get((t.model, t.version), [])
            if at >= t.started and (t.environment is None or env == t.environment)
        ]
        if done:
            cycles.append((min(done) - t.started).total_seconds())
    return Retraining(Durations.of(cycles), count, dict(sorted(outcomes.items())))


def delivery_metrics(
    project: Project,
    *,
    model: str | None = None,
    environment: str | None = None,
    since: datetime | timedelta | None = None,
    until: datetime | None = None,
) -> DeliveryMetrics:
    """DORA and ML delivery figures from the event log; see the module docstring for what
    each one measures. `since` may be a time or a span back from `until`."""
    with project.metadata.read() as conn:
        first, last = _bounds(conn)
        end = as_utc(until) if until is not None else last
        if end is None:
            return _empty(model, environment)
        start = _start(since, end, first)
        found = _read_events(conn, end, model)
        log = _walk(found)
        _lead_times(project, conn, log)
        freshness = _freshness(conn, log, end, environment)
    keys = sorted(
        {(r.model, r.environment) for r in log.rollouts} | {key for key, _, _ in log.incidents}
    )
    targets = [
        _dora(log, start, end, m, e)
        for m, e in keys
        if (model is None or m == model) and (environment is None or e == environment)
    ]
    drift, by_model = _drift(log, start, end)
    return DeliveryMetrics(
        since=start,
        until=end,
        model=model,
        environment=environment,
        dora=_dora(log, start, end, model, environment),
        targets=targets,
        freshness=freshness,
        drift=drift,
        drift_by_model=by_model,
        retraining=_retraining(log, start, end, environment),
    )


def _start(since: datetime | timedelta | None, end: datetime, first: datetime | None) -> datetime:
    if isinstance(since, timedelta):
        start = end - since
    elif since is not None:
        start = as_utc(since)
    else:
        start = first if first is not None and first <= end else end
    if start > end:
        raise UsageError(
            f"the period starts ({isoformat(start)}) after it ends ({isoformat(end)})",
            hint="give --since before --until (without --until the period ends at the "
            "newest event)",
        )
    return start


def _empty(model: str | None, environment: str | None) -> DeliveryMetrics:
    nothing = Durations(None, None, 0)
    return DeliveryMetrics(
        since=None,
        until=None,
        model=model,
        environment=environment,
        dora=DoraFigures(
            model,
            environment,
            0,
            None,
            nothing,
            ChangeFailures(None, 0, 0, 0, 0, 0),
            Restores(None, 0, 0),
        ),
        targets=[],
        freshness=[],
        drift=DriftRate(None, None, 0, 0),
        drift_by_model=[],
        retraining=Retraining(nothing, 0, {}),
    )


_SPAN_RE = re.compile(r"(\d+)\s*([smhdw])")
_SPAN_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_period(text: str) -> datetime | timedelta:
    """`--since` as the metrics read it: a span (`30m`, `12h`, `7d`, `2w`) counted back from
    the period's end, or an ISO time as `seaway.audit.log.parse_since` reads it. A span back
    from the newest event, not from the clock, keeps the figures reproducible."""
    from seaway.audit.log import parse_since

    match = _SPAN_RE.fullmatch(text.strip())
    if match:
        return timedelta(**{_SPAN_UNITS[match.group(2)]: int(match.group(1))})
    return parse_since(text)


# -- Prometheus ---------------------------------------------------------------------------


def prometheus_text(metrics: DeliveryMetrics) -> str:
    """The figures as Prometheus gauges (text exposition format). A figure without a sample
    has no series. Series per model and environment carry both labels; the series whose
    `model` and `environment` are empty is the total (or, with a filter, that filter's
    value is its label)."""
    try:
        from prometheus_client import CollectorRegistry, Gauge, generate_latest
    except ImportError:
        from seaway.errors import UsageError

        raise UsageError(
            "Prometheus output needs prometheus-client", hint="pip install 'seaway[monitor]'"
        ) from None

    registry = CollectorRegistry(auto_describe=False)
    labels = ["model", "environment"]

    def gauge(name: str, doc: str, extra: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, doc, [*labels, *extra], registry=registry)

    frequency = gauge(
        "seaway_deployment_frequency_per_day", "Deployments reaching 100% traffic per day."
    )
    deployments = gauge("seaway_deployments", "Deployments reaching 100% traffic in the period.")
    lead = gauge(
        "seaway_lead_time_seconds",
        "From the first commit (code or data) of a change to 100% traffic in an environment.",
        ("quantile",),
    )
    failure = gauge(
        "seaway_change_failure_rate",
        "Share of ended rollouts that failed, were aborted or were rolled back.",
    )
    restore = gauge(
        "seaway_time_to_restore_seconds",
        "Median time from a failure to the next successful deployment.",
    )
    samples = gauge(
        "seaway_metric_samples", "Sample size behind each delivery figure.", ("metric",)
    )
    freshness = gauge(
        "seaway_model_freshness_seconds",
        "Age of the newest dataset version behind the serving version.",
    )
    drift = gauge("seaway_prediction_drift_rate", "Share of scored drift windows that breached.")
    cycle = gauge(
        "seaway_retraining_cycle_seconds",
        "Median time from a retraining trigger to its version at 100% traffic.",
    )

    def put(g: Gauge, value: float | None, *values: str) -> None:
        if value is not None:
            g.labels(*values).set(value)

    total = (metrics.model or "", metrics.environment or "")
    rows = [(total, metrics.dora)]
    rows += [((t.model or "", t.environment or ""), t) for t in metrics.targets]
    seen: set[tuple[str, str]] = set()
    for names, d in rows:
        if names in seen:
            continue
        seen.add(names)
        put(frequency, d.frequency_per_day, *names)
        put(deployments, float(d.deployments), *names)
        put(lead, d.lead_time.median_s, *names, "0.5")
        put(lead, d.lead_time.p90_s, *names, "0.9")
        put(failure, d.change_failures.rate, *names)
        put(restore, d.time_to_restore.median_s, *names)
        put(samples, float(d.lead_time.n), *names, "lead_time")
        put(samples, float(d.change_failures.attempts), *names, "change_failure_rate")
        put(samples, float(d.time_to_restore.n), *names, "time_to_restore")
    for f in metrics.freshness:
        put(freshness, f.age_s, f.model, f.environment)
    drift_rows = [(metrics.model or "", metrics.drift)]
    drift_rows += [(d.model or "", d) for d in metrics.drift_by_model]
    for name, rate in dict(drift_rows).items():
        put(drift, rate.rate, name, "")
        put(samples, float(rate.n), name, "", "prediction_drift_rate")
    put(cycle, metrics.retraining.cycle.median_s, *total)
    put(samples, float(metrics.retraining.cycle.n), *total, "retraining_cycle")
    return generate_latest(registry).decode()
