"""Retraining triggers: a sustained breach starts the pipeline, and the loop closes.

    monitoring:
      churn-classifier:
        window: {rows: 1000}
        on_drift: {psi_above: 0.2, windows: 3, cooldown: 1h, retrain: train, promote_to: prod}
        on_quality_drop: {metric: accuracy, below: 0.8, windows: 2, retrain: train}

`check_triggers(project, model)` looks at the newest scored windows (see
`seaway.monitor.windows`): when the last `windows` windows of one version, all newer than
what the previous trigger used, breached, it fires. A trigger then takes each hop in order and
records an event for each, all linked by the trigger's id (`data.trigger`):

1. `trigger.started`: the windows that breached and why;
2. `trigger.snapshot`: the newest data of every dataset the pipeline reads becomes a dataset
   version (an unchanged workspace keeps its current version);
3. `trigger.run`: the pipeline runs (cached steps are reused) and registers a version;
4. `trigger.gated`: that version's gates run;
5. `trigger.promoted`: it is promoted to `promote_to` as a git commit, and the reconciler
   rolls it out with the environment's strategy (canary, blue-green, ...);
6. `trigger.completed` once that rollout reached 100% (or `trigger.failed` if it aborted).

A hop that cannot go on ends the trigger with a status that says why: `failed` (the snapshot
or the run failed; serving is untouched), `rejected` (gates or a policy refused the version),
`awaiting_approval` (a policy asks a person to approve: the trigger stops and says so;
`seaway approve` then `seaway promote` finish the job), `unchanged` (the run produced a
version that already existed), `alerted` (the trigger names no pipeline: it only alerts),
`superseded` (another version was rolled out to the environment before this one).

Only one trigger per model is in flight at a time, and none starts within `cooldown` of the
previous one: breaches inside the cool-down are recorded as windows but start no run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from seaway._util import as_utc, isoformat, utcnow
from seaway.monitor.windows import MonitorWindow, list_windows

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from seaway.project import Project
    from seaway.spec.models import DriftTrigger, QualityTrigger

log = logging.getLogger("seaway.monitor.triggers")

__all__ = [
    "ACTIVE",
    "Trigger",
    "check_triggers",
    "fire",
    "get_trigger",
    "list_triggers",
    "update_triggers",
]

ACTIVE = frozenset({"started", "promoted"})
"""Statuses of a trigger still in flight: no other trigger of the model starts meanwhile."""

FINAL = frozenset(
    {"completed", "failed", "rejected", "awaiting_approval", "unchanged", "alerted", "superseded"}
)


@dataclass(frozen=True)
class Trigger:
    id: int
    model: str
    kind: str
    status: str
    pipeline: str | None
    environment: str | None
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    windows: list[int]
    run_id: str | None
    version: int | None
    commit: str | None
    message: str | None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "kind": self.kind,
            "status": self.status,
            "pipeline": self.pipeline,
            "environment": self.environment,
            "started_at": isoformat(self.started_at),
            "updated_at": isoformat(self.updated_at),
            "finished_at": isoformat(self.finished_at),
            "windows": self.windows,
            "run": self.run_id,
            "version": self.version,
            "commit": self.commit,
            "message": self.message,
            "details": self.details,
        }


def _from_row(row: Any) -> Trigger:
    return Trigger(
        id=int(row.id),
        model=row.model,
        kind=row.kind,
        status=row.status,
        pipeline=row.pipeline,
        environment=row.environment,
        started_at=as_utc(row.started_at),
        updated_at=as_utc(row.updated_at),
        finished_at=as_utc(row.finished_at) if row.finished_at is not None else None,
        windows=[int(w) for w in row.windows or []],
        run_id=row.run_id,
        version=row.version,
        commit=row.commit,
        message=row.message,
        details=dict(row.details or {}),
    )


def list_triggers(
    project: Project, model: str | None = None, *, limit: int | None = None
) -> list[Trigger]:
    """Triggers, newest first."""
    from sqlalchemy import select

    from seaway.store.schema import triggers as t

    query = select(t).order_by(t.c.id.desc())
    if model is not None:
        query = query.where(t.c.model == model)
    if limit is not None:
        query = query.limit(limit)
    with project.metadata.read() as conn:
        return [_from_row(r) for r in conn.execute(query).all()]


def get_trigger(project: Project, trigger_id: int) -> Trigger:
    from sqlalchemy import select

    from seaway.errors import NotFound
    from seaway.store.schema import triggers as t

    with project.metadata.read() as conn:
        row = conn.execute(select(t).where(t.c.id == trigger_id)).first()
    if row is None:
        raise NotFound(f"no trigger #{trigger_id}", hint="seaway monitor triggers NAME lists them")
    return _from_row(row)


# --- deciding ---------------------------------------------------------------------------


def _breach(
    project: Project, model: str, kind: str, needed: int, after: int
) -> list[MonitorWindow] | None:
    """The newest `needed` windows of one version, all breached and newer than window id
    `after`; None when no version has such a run of windows."""
    recent = list_windows(project, model, kind=kind, after_id=after, limit=max(needed * 20, 50))
    by_version: dict[int, list[MonitorWindow]] = {}
    for w in recent:
        by_version.setdefault(w.number, []).append(w)
    for windows in sorted(by_version.values(), key=lambda ws: -ws[-1].id):
        tail = windows[-needed:]
        if len(tail) == needed and all(w.breached for w in tail):
            return tail
    return None


def _used_window(previous: list[Trigger], kind: str) -> int:
    return max((max(t.windows) for t in previous if t.kind == kind and t.windows), default=0)


def check_triggers(
    project: Project,
    model: str,
    *,
    now: datetime | None = None,
    execute: bool = True,
    on_hop: Callable[[str, dict[str, Any]], None] | None = None,
) -> Trigger | None:
    """Fire the model's first trigger whose windows breached (see the module docstring);
    the new trigger, or None when nothing fired. With `execute=False` the trigger is
    recorded as started and left for the caller to `fire`."""
    spec = project.spec.monitoring.get(model)
    if spec is None:
        return None
    now = as_utc(now) if now is not None else utcnow()
    previous = list_triggers(project, model, limit=50)
    if any(t.active for t in previous):
        return None
    candidates: list[tuple[str, DriftTrigger | QualityTrigger]] = []
    if spec.on_drift is not None:
        candidates.append(("drift", spec.on_drift))
    if spec.on_quality_drop is not None:
        candidates.append(("quality", spec.on_quality_drop))
    for kind, rule in candidates:
        breached = _breach(project, model, kind, rule.windows, _used_window(previous, kind))
        if breached is None:
            continue
        last = previous[0] if previous else None
        cooldown = rule.cooldown.seconds if rule.cooldown is not None else 0.0
        if last is not None and now < last.started_at + timedelta(seconds=cooldown):
            log.info(
                "%s: %s breached in %d windows, inside the cool-down of trigger #%d",
                model,
                kind,
                len(breached),
                last.id,
            )
            continue
        started = _start(project, model, kind, rule, breached, now)
        if started is None or not execute:
            return started
        return fire(project, started, on_hop=on_hop)
    return None


def _start(
    project: Project,
    model: str,
    kind: str,
    rule: DriftTrigger | QualityTrigger,
    windows: list[MonitorWindow],
    now: datetime,
) -> Trigger | None:
    from sqlalchemy import select, text

    from seaway.store.events import record_event
    from seaway.store.schema import triggers as t

    reason = _reason(kind, rule, windows)

    def write(conn: Connection) -> Trigger | None:
        if conn.dialect.name == "postgresql":
            # Two monitors that saw the same breach: the second finds the first's trigger.
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:m))"), {"m": model})
        busy = conn.execute(
            select(t.c.id).where(t.c.model == model, t.c.status.in_(sorted(ACTIVE)))
        ).first()
        taken = conn.execute(
            select(t.c.windows).where(t.c.model == model, t.c.kind == kind).order_by(t.c.id.desc())
        ).first()
        if busy is not None or (taken is not None and windows[-1].id in (taken.windows or [])):
            return None
        values = {
            "model": model,
            "kind": kind,
            "status": "started",
            "pipeline": rule.retrain,
            "environment": rule.promote_to,
            "started_at": now,
            "updated_at": now,
            "finished_at": None,
            "windows": [w.id for w in windows],
            "run_id": None,
            "version": None,
            "commit": None,
            "message": reason,
            "details": {"number": windows[-1].number, "scores": [w.score for w in windows]},
        }
        pk = conn.execute(t.insert().values(**values)).inserted_primary_key
        assert pk is not None
        trigger_id = int(pk[0])
        record_event(
            conn,
            "trigger.started",
            f"model:{model}",
            {
                "trigger": trigger_id,
                "kind": kind,
                "pipeline": rule.retrain,
                "environment": rule.promote_to,
                "version": windows[-1].number,
                "windows": values["windows"],
                "reason": reason,
            },
        )
        return _from_row(SimpleNamespace(id=trigger_id, **values))

    return project.metadata.run_write(write)


def _reason(kind: str, rule: Any, windows: list[MonitorWindow]) -> str:
    number = windows[-1].number
    if kind == "drift":
        names = sorted({n for w in windows for n in w.drifted})
        worst = max((w.score or 0.0) for w in windows)
        return (
            f"drift in {len(windows)} consecutive window{'s' if len(windows) > 1 else ''} of "
            f"@{number} (largest PSI {worst:.3f} > {rule.psi_above:g})"
            + (f": {', '.join(names)}" if names else "")
        )
    worst = min((w.score if w.score is not None else float("nan")) for w in windows)
    return (
        f"{rule.metric} of @{number} below {rule.below:g} in {len(windows)} consecutive "
        f"window{'s' if len(windows) > 1 else ''} (lowest {worst:.3f})"
    )


# --- acting -----------------------------------------------------------------------------


def _update(
    project: Project,
    trigger: Trigger,
    event: str | None,
    data: dict[str, Any] | None = None,
    **changes: Any,
) -> Trigger:
    from sqlalchemy import update

    from seaway.store.events import record_event
    from seaway.store.schema import triggers as t

    now = utcnow()
    values = {"updated_at": now, **changes}
    if changes.get("status") in FINAL:
        values["finished_at"] = now
    if "details" in values:
        values["details"] = {**trigger.details, **values["details"]}

    def write(conn: Connection) -> None:
        conn.execute(update(t).where(t.c.id == trigger.id).values(**values))
        if event is not None:
            record_event(
                conn, event, f"model:{trigger.model}", {"trigger": trigger.id, **(data or {})}
            )

    project.metadata.run_write(write)
    return replace(trigger, **values)


def _fail(project: Project, trigger: Trigger, hop: str, exc: BaseException | str) -> Trigger:
    reason = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    log.warning("trigger #%d of %s failed at %s: %s", trigger.id, trigger.model, hop, reason)
    return _update(
        project,
        trigger,
        "trigger.failed",
        {"hop": hop, "reason": reason},
        status="failed",
        message=f"{hop} failed: {reason}",
    )


def _pipeline_datasets(project: Project, pipeline: str) -> list[str]:
    spec = project.spec.pipelines[pipeline]
    names: list[str] = []
    for step in spec.steps.values():
        for source in step.inputs.values():
            if isinstance(source, str) and source.startswith("dataset:"):
                name = source.removeprefix("dataset:").split("@", 1)[0]
                pinned = "@" in source
                if not pinned and name not in names:
                    names.append(name)
    return names


def fire(
    project: Project,
    trigger: Trigger,
    *,
    on_hop: Callable[[str, dict[str, Any]], None] | None = None,
) -> Trigger:
    """Take a started trigger through snapshot, run, gates and promotion (see the module
    docstring). Never raises for a failed hop: the trigger records it and alerts go out from
    its events; serving is untouched."""
    from seaway.errors import SeawayError

    def hop(name: str, **data: Any) -> None:
        if on_hop is not None:
            on_hop(name, data)

    if trigger.pipeline is None:
        return _update(project, trigger, "trigger.alerted", {}, status="alerted")
    pipeline = trigger.pipeline
    # 1. Snapshot the newest data.
    try:
        from seaway.data.datasets import add

        refs = []
        for name in _pipeline_datasets(project, pipeline):
            added = add(project, name, message=f"snapshot for trigger #{trigger.id}")
            refs.append({"ref": added.version.ref, "created": added.created})
    except (SeawayError, OSError) as exc:
        return _fail(project, trigger, "snapshot", exc)
    trigger = _update(
        project, trigger, "trigger.snapshot", {"datasets": refs}, details={"datasets": refs}
    )
    hop("snapshot", datasets=refs)
    # 2. Run the pipeline; it registers the version.
    try:
        from seaway.pipeline import run_pipeline

        run = run_pipeline(project, pipeline)
    except Exception as exc:  # any failure of user code ends the trigger, never the monitor
        return _fail(project, trigger, "run", exc)
    ref = run.tags.get("seaway.registered")
    trigger = _update(
        project,
        trigger,
        "trigger.run",
        {"run": run.id, "status": run.status, "registered": ref},
        run_id=run.id,
    )
    hop("run", run=run.id, status=run.status, registered=ref)
    if run.status != "succeeded":
        return _fail(project, trigger, "run", f"run #{run.seq} {run.status}")
    if not ref:
        return _fail(project, trigger, "run", "the pipeline registered no model version")
    from seaway.registry import get_version

    version = get_version(project, ref)
    if version.model != trigger.model:
        return _fail(
            project, trigger, "run", f"the pipeline registered {ref}, not a {trigger.model} version"
        )
    breached = trigger.details.get("number")
    if breached is not None and version.number <= breached:
        return _update(
            project,
            trigger,
            "trigger.unchanged",
            {"version": version.number},
            status="unchanged",
            version=version.number,
            message=f"the run produced {ref}, not a new version",
        )
    trigger = _update(
        project,
        trigger,
        "trigger.registered",
        {"version": version.number, "run": run.id},
        version=version.number,
    )
    hop("registered", version=version.number)
    # 3. Gates.
    spec = project.spec.models.get(trigger.model)
    if spec is not None and spec.gates:
        try:
            from seaway.gates import run_gates

            report = run_gates(project, ref)
        except Exception as exc:  # a broken gate is a failed hop, not a crashed monitor
            return _fail(project, trigger, "gates", exc)
        failed = [r.name for r in report.results if r.status.value != "passed"]
        trigger = _update(
            project,
            trigger,
            "trigger.gated",
            {"version": version.number, "passed": report.passed, "failed": failed},
        )
        hop("gated", passed=report.passed, failed=failed)
        if not report.passed:
            return _update(
                project,
                trigger,
                "trigger.rejected",
                {"version": version.number, "failed": failed},
                status="rejected",
                message=f"{ref} failed its gates: {', '.join(failed)}",
            )
    # 4. Promote, as a git commit.
    if trigger.environment is None:
        return _update(
            project,
            trigger,
            "trigger.completed",
            {"version": version.number},
            status="completed",
            message=f"{ref} registered and gated; no environment to promote to",
        )
    return _promote(project, trigger, ref, hop)


def _promote(project: Project, trigger: Trigger, ref: str, hop: Callable[..., None]) -> Trigger:
    from seaway.errors import SeawayError
    from seaway.gitops.promote import PromotionRefused, promote

    assert trigger.environment is not None
    env = trigger.environment
    try:
        result = promote(
            project,
            ref,
            env,
            message=f"retrain: {trigger.message}\n\nTrigger #{trigger.id} ({trigger.kind}).",
        )
    except PromotionRefused as exc:
        needs_person = any("approv" in (f.rule + f.message).lower() for f in exc.failures)
        status = "awaiting_approval" if needs_person else "rejected"
        failures = [f.to_dict() for f in exc.failures]
        hop(status, failures=failures)
        message = (
            f"{ref} waits for an approval before {env}: seaway approve {ref} --env {env}, "
            f"then seaway promote {ref} --to {env}"
            if needs_person
            else f"{ref} may not go to {env}: {'; '.join(f.message for f in exc.failures)}"
        )
        return _update(
            project,
            trigger,
            f"trigger.{status}",
            {"version": trigger.version, "environment": env, "failures": failures},
            status=status,
            message=message,
        )
    except SeawayError as exc:
        return _fail(project, trigger, "promote", exc)
    hop("promoted", commit=result.commit, environment=env)
    return _update(
        project,
        trigger,
        "trigger.promoted",
        {"version": trigger.version, "environment": env, "commit": result.commit},
        status="promoted",
        commit=result.commit,
    )


def update_triggers(project: Project, model: str | None = None) -> list[Trigger]:
    """Finish promoted triggers whose rollout ended: `completed` once the version serves all
    traffic, `failed` when its rollout was aborted. Returns the triggers that changed."""
    from seaway.rollout.records import latest_rollout

    changed = []
    for trigger in list_triggers(project, model, limit=200):
        if trigger.status != "promoted" or trigger.environment is None:
            continue
        rollout = latest_rollout(project, trigger.environment, trigger.model)
        if rollout is not None and rollout.candidate == trigger.version:
            if rollout.phase == "Successful":
                cycle = (
                    as_utc(rollout.finished_at or utcnow()) - trigger.started_at
                ).total_seconds()
                changed.append(
                    _update(
                        project,
                        trigger,
                        "trigger.completed",
                        {"version": trigger.version, "rollout": rollout.id, "cycle_s": cycle},
                        status="completed",
                        message=f"{trigger.model}@{trigger.version} serves all of "
                        f"{trigger.environment} after {cycle:.0f}s",
                        details={"rollout": rollout.id, "cycle_s": cycle},
                    )
                )
            elif rollout.phase in ("Aborted", "Degraded"):
                changed.append(
                    _fail(
                        project,
                        trigger,
                        "rollout",
                        f"rollout #{rollout.id} of @{trigger.version} ended {rollout.phase}: "
                        f"{rollout.message or ''}".rstrip(": "),
                    )
                )
            continue
        if rollout is not None and as_utc(rollout.started_at) > trigger.updated_at:
            # Another version went out after this one was promoted: it will never serve.
            changed.append(
                _update(
                    project,
                    trigger,
                    "trigger.superseded",
                    {"version": trigger.version, "rollout": rollout.id, "by": rollout.candidate},
                    status="superseded",
                    message=f"@{rollout.candidate} was rolled out to {trigger.environment} "
                    f"before @{trigger.version} (rollout #{rollout.id})",
                )
            )
            continue
        if rollout is None and _serves_all(project, trigger):
            changed.append(
                _update(
                    project,
                    trigger,
                    "trigger.completed",
                    {"version": trigger.version},
                    status="completed",
                    message=f"{trigger.model}@{trigger.version} serves {trigger.environment}",
                )
            )
    return changed


def _serves_all(project: Project, trigger: Trigger) -> bool:
    """A direct deployment (no rollout): the local routing table gives the version all
    traffic."""
    from seaway.serving.routes import load_table

    table = load_table(project, [trigger.model])
    return any(
        d.number == trigger.version and d.weight >= 100 for d in table.for_model(trigger.model)
    )
