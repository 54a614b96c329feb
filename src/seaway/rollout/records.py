"""The durable record of a rollout: one row of the `rollouts` table per attempt.

A rollout moves one model in one environment from its `stable` version to a `candidate`.
Everything the state machine needs to continue lives in the row (phase, step, when the
step started, and `state`, a JSON bookkeeping dict), so a controller killed at any point
and started again carries on from the stored row.

Phases, the words Argo Rollouts users know:

- `Progressing`: traffic is moving (or about to); `tick` advances it.
- `Paused`: held by a person, or a blue-green preview waiting for `rollout promote`.
- `Successful`: the candidate serves all traffic and is the new stable version.
- `Degraded`: the analysis failed, or a deadline or the error limit passed; traffic went
  back to stable.
- `Aborted`: a person aborted it, or a newer rollout of the same model superseded it.

At most one rollout of a model per environment is active (Progressing or Paused):
`start_rollout` supersedes the previous one in the same transaction.

Two writers must not both advance one rollout: `save_rollout` compares the `version`
counter kept in `state` with the stored one and refuses a stale write. The controller's
leader election is the main guard; this one catches a person's `rollout pause` racing the
controller's tick.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from seaway._util import as_utc, isoformat, utcnow
from seaway.errors import NotFound, StoreError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from sqlalchemy.engine import Connection

    from seaway.project import Project
    from seaway.spec.environment import StrategyKind, StrategySpec

Phase = Literal["Progressing", "Paused", "Successful", "Degraded", "Aborted"]
PHASES: tuple[Phase, ...] = ("Progressing", "Paused", "Successful", "Degraded", "Aborted")
ACTIVE_PHASES: tuple[Phase, ...] = ("Progressing", "Paused")

EventSpec = tuple[str, dict[str, Any]]
"""An event to record with a save: (kind, data)."""


@dataclass(frozen=True)
class Rollout:
    """One row of `rollouts`, with the strategy rebuilt as the environment file's model."""

    id: int
    environment: str
    model: str
    stable: int | None
    candidate: int
    kind: StrategyKind
    strategy: StrategySpec
    phase: Phase
    step: int
    step_started_at: datetime
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    git_revision: str | None
    message: str | None
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.phase in ACTIVE_PHASES

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.candidate}"

    @property
    def subject(self) -> str:
        """The audit log's subject for this rollout's events."""
        return f"model:{self.ref}"

    @property
    def version(self) -> int:
        """The write counter `save_rollout` checks (see the module docstring)."""
        return int(self.state.get("version", 0))

    def with_state(self, **changes: Any) -> Rollout:
        """A copy whose `state` has `changes` merged in (a key set to None is dropped)."""
        state = dict(self.state)
        for key, value in changes.items():
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
        return replace(self, state=state)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "environment": self.environment,
            "model": self.model,
            "ref": self.ref,
            "stable": self.stable,
            "candidate": self.candidate,
            "kind": self.kind,
            "strategy": strategy_json(self.strategy),
            "phase": self.phase,
            "active": self.active,
            "step": self.step,
            "step_started_at": isoformat(self.step_started_at),
            "started_at": isoformat(self.started_at),
            "updated_at": isoformat(self.updated_at),
            "finished_at": isoformat(self.finished_at),
            "git_revision": self.git_revision,
            "message": self.message,
            "state": self.state,
        }


def strategy_json(strategy: StrategySpec) -> dict[str, Any]:
    """The strategy as stored: only the chosen kind, without unset optional fields, so that
    `StrategySpec.model_validate` accepts it back (it refuses a dict naming every kind)."""
    data: dict[str, Any] = strategy.model_dump(mode="json", exclude_none=True)
    return data


def _from_row(row: Any) -> Rollout:
    from seaway.spec.environment import StrategySpec

    return Rollout(
        id=int(row.id),
        environment=row.environment,
        model=row.model,
        stable=int(row.stable) if row.stable is not None else None,
        candidate=int(row.candidate),
        kind=row.kind,
        strategy=StrategySpec.model_validate(row.strategy),
        phase=row.phase,
        step=int(row.step),
        step_started_at=as_utc(row.step_started_at),
        started_at=as_utc(row.started_at),
        updated_at=as_utc(row.updated_at),
        finished_at=as_utc(row.finished_at),
        git_revision=row.git_revision,
        message=row.message,
        state=dict(row.state or {}),
    )


def _record(
    conn: Connection, rollout: Rollout, kind: str, data: dict[str, Any], actor: str | None
) -> None:
    from seaway.store.events import record_event

    payload = {"environment": rollout.environment, "rollout": rollout.id, **data}
    record_event(conn, kind, rollout.subject, payload, actor=actor)


def start_rollout(
    project: Project,
    environment: str,
    model: str,
    *,
    stable: int | None,
    candidate: int,
    strategy: StrategySpec,
    git_revision: str | None,
    now: datetime | None = None,
    actor: str | None = None,
) -> Rollout:
    """Record a new rollout of `model` in `environment` from `stable` to `candidate`, at
    step 0 and Progressing; an active rollout of the same model there is superseded
    (Aborted) in the same transaction. Without a stable version (a first deployment), or
    when the candidate already is the stable one, every strategy is `direct`."""
    from sqlalchemy import select

    from seaway.store.schema import rollouts

    at = as_utc(now) if now is not None else utcnow()
    kind: StrategyKind = strategy.kind if stable not in (None, candidate) else "direct"
    stored = strategy_json(strategy)

    def write(conn: Connection) -> Rollout:
        query = (
            select(rollouts)
            .where(
                rollouts.c.environment == environment,
                rollouts.c.model == model,
                rollouts.c.phase.in_(ACTIVE_PHASES),
            )
            .with_for_update()
        )
        written = utcnow()
        for row in conn.execute(query).all():
            old = _from_row(row)
            message = f"superseded by @{candidate}"
            conn.execute(
                rollouts.update()
                .where(rollouts.c.id == old.id)
                .values(
                    phase="Aborted",
                    message=message,
                    finished_at=at,
                    updated_at=written,
                    state={**old.state, "version": old.version + 1},
                )
            )
            _record(
                conn,
                old,
                "rollout.aborted",
                {"reason": message, "superseded_by": candidate, "step": old.step},
                actor,
            )
        result = conn.execute(
            rollouts.insert().values(
                environment=environment,
                model=model,
                stable=stable,
                candidate=candidate,
                kind=kind,
                strategy=stored,
                phase="Progressing",
                step=0,
                step_started_at=at,
                started_at=at,
                updated_at=written,
                finished_at=None,
                git_revision=git_revision,
                message=None,
                state={"version": 1},
            )
        )
        new_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        row = conn.execute(select(rollouts).where(rollouts.c.id == new_id)).one()
        rollout = _from_row(row)
        _record(
            conn,
            rollout,
            "rollout.started",
            {"stable": stable, "kind": kind, "git_revision": git_revision},
            actor,
        )
        return rollout

    return project.metadata.run_write(write)


def get_rollout(project: Project, rollout_id: int) -> Rollout:
    from sqlalchemy import select

    from seaway.store.schema import rollouts

    with project.metadata.read() as conn:
        row = conn.execute(select(rollouts).where(rollouts.c.id == rollout_id)).first()
    if row is None:
        raise NotFound(f"no rollout #{rollout_id}", hint="`seaway rollout list --all` lists them")
    return _from_row(row)


def _newest(project: Project, environment: str, model: str, *, active: bool) -> Rollout | None:
    from sqlalchemy import select

    from seaway.store.schema import rollouts

    query = select(rollouts).where(rollouts.c.environment == environment, rollouts.c.model == model)
    if active:
        query = query.where(rollouts.c.phase.in_(ACTIVE_PHASES))
    with project.metadata.read() as conn:
        row = conn.execute(query.order_by(rollouts.c.id.desc()).limit(1)).first()
    return _from_row(row) if row is not None else None


def active_rollout(project: Project, environment: str, model: str) -> Rollout | None:
    """The rollout of `model` in `environment` that is Progressing or Paused, if any."""
    return _newest(project, environment, model, active=True)


def latest_rollout(project: Project, environment: str, model: str) -> Rollout | None:
    """The newest rollout of `model` in `environment`, whatever its phase."""
    return _newest(project, environment, model, active=False)


def latest_rollouts(
    project: Project, environments: Iterable[str] | None = None
) -> dict[tuple[str, str], Rollout]:
    """The newest rollout of every (environment, model), in one query: the reconciler's
    plan reads them all at once, however long the history."""
    from sqlalchemy import func, select

    from seaway.store.schema import rollouts

    newest = select(func.max(rollouts.c.id)).group_by(rollouts.c.environment, rollouts.c.model)
    if environments is not None:
        newest = newest.where(rollouts.c.environment.in_(sorted(set(environments))))
    query = select(rollouts).where(rollouts.c.id.in_(newest.scalar_subquery()))
    with project.metadata.read() as conn:
        found = [_from_row(r) for r in conn.execute(query).all()]
    return {(r.environment, r.model): r for r in found}


def list_rollouts(
    project: Project,
    *,
    environment: str | None = None,
    model: str | None = None,
    active_only: bool = False,
    limit: int = 50,
) -> list[Rollout]:
    """Rollouts, newest first."""
    from sqlalchemy import select

    from seaway.store.schema import rollouts

    query = select(rollouts)
    if environment is not None:
        query = query.where(rollouts.c.environment == environment)
    if model is not None:
        query = query.where(rollouts.c.model == model)
    if active_only:
        query = query.where(rollouts.c.phase.in_(ACTIVE_PHASES))
    query = query.order_by(rollouts.c.id.desc()).limit(limit)
    with project.metadata.read() as conn:
        return [_from_row(r) for r in conn.execute(query).all()]


def save_rollout(
    project: Project,
    rollout: Rollout,
    *,
    event: EventSpec | None = None,
    events: Sequence[EventSpec] = (),
    actor: str | None = None,
) -> Rollout:
    """Write `rollout`'s phase, step, times, message and state, with its events, in one
    transaction. Refused (StoreError) when the row changed since `rollout` was read: the
    caller reads it again and decides anew. Returns the row as written."""
    from sqlalchemy import select

    from seaway.store.schema import rollouts

    todo = [*([event] if event is not None else []), *events]

    def write(conn: Connection) -> Rollout:
        row = conn.execute(
            select(rollouts).where(rollouts.c.id == rollout.id).with_for_update()
        ).first()
        if row is None:
            raise NotFound(
                f"rollout #{rollout.id} of {rollout.ref} in {rollout.environment} is gone",
                hint="`seaway rollout list --all` lists the rollouts",
            )
        stored = _from_row(row)
        if stored.version != rollout.version:
            raise StoreError(
                f"rollout #{rollout.id} of {rollout.ref} in {rollout.environment} changed "
                f"since it was read (write {rollout.version}, now {stored.version}: "
                f"{stored.phase} at step {stored.step}); this change was not saved",
                hint="another controller or person acted on it at the same time; read it "
                "again (seaway rollout show) and retry",
            )
        state = {**rollout.state, "version": stored.version + 1}
        conn.execute(
            rollouts.update()
            .where(rollouts.c.id == rollout.id)
            .values(
                phase=rollout.phase,
                step=rollout.step,
                step_started_at=rollout.step_started_at,
                updated_at=utcnow(),
                finished_at=rollout.finished_at,
                message=rollout.message,
                state=state,
            )
        )
        saved = _from_row(conn.execute(select(rollouts).where(rollouts.c.id == rollout.id)).one())
        for kind, data in todo:
            _record(conn, saved, kind, data, actor)
        return saved

    return project.metadata.run_write(write)


__all__ = [
    "ACTIVE_PHASES",
    "PHASES",
    "EventSpec",
    "Phase",
    "Rollout",
    "active_rollout",
    "get_rollout",
    "latest_rollout",
    "latest_rollouts",
    "list_rollouts",
    "save_rollout",
    "start_rollout",
    "strategy_json",
]
