"""The routing table: which model versions a gateway serves, with which share of traffic.

The table lives in the metadata store (`deployments`, one row per served version, and
`routing_state`, one row whose `revision` goes up in the same transaction as every change).
Gateways poll `read_revision` (one cheap query) and reload the table only when it moved, so
a change made here, by the CLI or later by the GitOps reconciler, is picked up live.

Every change is an audit event in the same transaction: `deployment.set` for a version whose
settings changed (including the primaries rescaled by a weight change) and
`deployment.removed`, with subject `model:NAME@N`.

Semantics of `deploy(project, "NAME@V", ...)`:

- no `weight` and no `shadow`: V takes 100% of the model's primary traffic and the model's
  other primary deployments are removed (its shadows stay);
- `weight=W`: V gets W and the model's other primaries are rescaled proportionally so the
  weights sum to 100 (when they all had weight 0, they share the rest equally);
- `shadow=PCT`: V becomes a shadow: weight 0, and PCT percent of the model's requests are
  mirrored to it; the primaries are left alone (when V was a primary, the rest are rescaled).

A deployment with weight 0 and shadow 0 receives only requests naming its version
(`/v2/models/NAME/versions/V/infer`). `undeploy(project, NAME)` removes every deployment of
the model; `undeploy(project, NAME, V)` removes one and rescales the remaining primaries.
`batching`, `scale` and `require_signature` keep their stored values when not given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from seaway.errors import NotFound, UsageError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from seaway.project import Project

DEFAULT_IDLE_TIMEOUT_S = 900.0
"""Versions idle this long are unloaded unless their deployment says otherwise."""


def _known_keys(what: str, value: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    unknown = set(value) - set(keys)
    if unknown:
        raise UsageError(
            f"{what}: unknown keys {', '.join(sorted(unknown))}",
            hint=f"{what} takes {' and '.join(keys)}",
        )


@dataclass(frozen=True)
class BatchingSpec:
    """Adaptive micro-batching: at most `max_batch` rows, waiting at most `max_wait_us`."""

    max_batch: int = 32
    max_wait_us: int = 500

    def __post_init__(self) -> None:
        if not isinstance(self.max_batch, int) or self.max_batch < 1:
            raise UsageError(
                f"batching.max_batch must be a whole number of at least 1, not {self.max_batch!r}",
                hint="for example --max-batch 32",
            )
        if not isinstance(self.max_wait_us, int) or self.max_wait_us < 0:
            raise UsageError(
                f"batching.max_wait_us must be a whole number of microseconds >= 0, "
                f"not {self.max_wait_us!r}",
                hint="for example --max-wait-us 500",
            )

    def to_dict(self) -> dict[str, int]:
        return {"max_batch": self.max_batch, "max_wait_us": self.max_wait_us}

    @classmethod
    def from_value(cls, value: BatchingSpec | Mapping[str, Any] | None) -> BatchingSpec | None:
        if value is None or isinstance(value, BatchingSpec):
            return value
        _known_keys("batching", value, ("max_batch", "max_wait_us"))
        return cls(**{k: int(v) for k, v in value.items()})


@dataclass(frozen=True)
class ScaleSpec:
    """Scale to zero: unload after `idle_timeout_s` idle (None: the gateway's default);
    `min: 1` keeps the version loaded."""

    idle_timeout_s: float | None = None
    min: int = 0

    def __post_init__(self) -> None:
        if self.idle_timeout_s is not None and self.idle_timeout_s <= 0:
            raise UsageError(
                f"scale.idle_timeout_s must be positive, not {self.idle_timeout_s!r}",
                hint="give seconds, for example --idle-timeout 900",
            )
        if self.min not in (0, 1):
            raise UsageError(
                f"scale.min must be 0 (scale to zero) or 1 (keep loaded), not {self.min!r}",
                hint="a gateway holds at most one copy of a version",
            )

    def to_dict(self) -> dict[str, Any]:
        return {"idle_timeout_s": self.idle_timeout_s, "min": self.min}

    @classmethod
    def from_value(cls, value: ScaleSpec | Mapping[str, Any] | None) -> ScaleSpec | None:
        if value is None or isinstance(value, ScaleSpec):
            return value
        _known_keys("scale", value, ("idle_timeout_s", "min"))
        idle = value.get("idle_timeout_s")
        return cls(
            idle_timeout_s=float(idle) if idle is not None else None, min=int(value.get("min", 0))
        )


@dataclass(frozen=True)
class Deployment:
    """One served version: its share of primary traffic and of mirrored traffic."""

    model: str
    number: int
    weight: float
    shadow: float
    batching: BatchingSpec | None = None
    scale: ScaleSpec | None = None
    require_signature: bool = False
    updated_at: str | None = field(default=None, compare=False)
    actor: str | None = field(default=None, compare=False)

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.number}"

    @property
    def is_shadow(self) -> bool:
        return self.shadow > 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.number,
            "ref": self.ref,
            "weight": self.weight,
            "shadow": self.shadow,
            "batching": self.batching.to_dict() if self.batching else None,
            "scale": self.scale.to_dict() if self.scale else None,
            "require_signature": self.require_signature,
            "updated_at": self.updated_at,
            "actor": self.actor,
        }


@dataclass(frozen=True)
class RoutingTable:
    """A snapshot of the deployments at one revision; immutable, so gateways swap it whole."""

    revision: int
    deployments: tuple[Deployment, ...] = ()

    def for_model(self, model: str) -> list[Deployment]:
        return [d for d in self.deployments if d.model == model]

    def models(self) -> list[str]:
        return sorted({d.model for d in self.deployments})

    def get(self, model: str, number: int) -> Deployment | None:
        for d in self.deployments:
            if d.model == model and d.number == number:
                return d
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "deployments": [d.to_dict() for d in self.deployments],
        }


def _check_percent(what: str, value: float | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{what} must be a number from 0 to 100, not {value!r}") from None
    if not 0.0 <= number <= 100.0 or number != number:
        raise UsageError(
            f"{what} must be from 0 to 100, not {value!r}",
            hint=f"{what} is a percentage of the model's requests",
        )
    return number


def read_revision(project: Project) -> int:
    """The routing table's revision (0 before the first deployment): one cheap query."""
    from sqlalchemy import select

    from seaway.store.schema import routing_state

    with project.metadata.read() as conn:
        value = conn.execute(
            select(routing_state.c.revision).where(routing_state.c.id == 1)
        ).scalar()
    return int(value or 0)


def _row_to_deployment(row: Any) -> Deployment:
    from seaway._util import isoformat

    return Deployment(
        model=row.model,
        number=int(row.number),
        weight=float(row.weight),
        shadow=float(row.shadow),
        batching=BatchingSpec.from_value(row.batching),
        scale=ScaleSpec.from_value(row.scale),
        require_signature=bool(row.require_signature),
        updated_at=isoformat(row.updated_at),
        actor=row.actor,
    )


def _read_table(conn: Connection, models: list[str] | None = None) -> RoutingTable:
    from sqlalchemy import select

    from seaway.store.schema import deployments, routing_state

    revision = conn.execute(
        select(routing_state.c.revision).where(routing_state.c.id == 1)
    ).scalar()
    query = select(deployments).order_by(deployments.c.model, deployments.c.number)
    rows = conn.execute(query).all()
    if models is not None:
        # Filtered here, not in SQL: binding thousands of names costs SQLAlchemy more than
        # reading every row, and it is turning rows into Deployments that is worth saving.
        wanted = set(models)
        rows = [r for r in rows if r.model in wanted]
    return RoutingTable(int(revision or 0), tuple(_row_to_deployment(r) for r in rows))


def load_table(project: Project, models: Iterable[str] | None = None) -> RoutingTable:
    """The routing table and its revision, read in one transaction: every deployment, or
    those of `models` only."""
    wanted = sorted(set(models)) if models is not None else None
    with project.metadata.read() as conn:
        return _read_table(conn, wanted)


def _bump_revision(conn: Connection) -> int:
    from sqlalchemy import select

    from seaway._util import utcnow
    from seaway.store.schema import routing_state

    current = conn.execute(select(routing_state.c.revision).where(routing_state.c.id == 1)).scalar()
    now = utcnow()
    if current is None:
        # Two first writers race on this insert; the loser's unique violation makes
        # run_write retry, and the retry sees the row.
        conn.execute(routing_state.insert().values(id=1, revision=1, updated_at=now))
        return 1
    conn.execute(
        routing_state.update()
        .where(routing_state.c.id == 1)
        .values(revision=int(current) + 1, updated_at=now)
    )
    return int(current) + 1


def _rescaled(others: dict[int, float], total: float) -> dict[int, float]:
    """`others` (number -> weight) scaled proportionally to sum to `total`."""
    if not others:
        return {}
    current = sum(others.values())
    if current <= 0:
        share = total / len(others)
        return dict.fromkeys(others, share)
    return {n: w * total / current for n, w in others.items()}


def _changes_event(conn: Connection, dep: dict[str, Any], revision: int, actor: str) -> None:
    from seaway.store.events import record_event

    data = {k: v for k, v in dep.items() if k not in ("model", "number", "updated_at", "actor")}
    data["revision"] = revision
    record_event(conn, "deployment.set", f"model:{dep['model']}@{dep['number']}", data, actor=actor)


def deploy(
    project: Project,
    ref: str,
    *,
    weight: float | None = None,
    shadow: float | None = None,
    batching: BatchingSpec | Mapping[str, Any] | None = None,
    scale: ScaleSpec | Mapping[str, Any] | None = None,
    require_signature: bool | None = None,
) -> RoutingTable:
    """Serve the version `ref` (NAME@N or NAME@ALIAS); see the module docstring for how
    `weight` and `shadow` change the model's other deployments. Returns the new table."""
    from seaway.policy.identity import authorize
    from seaway.registry.versions import get_version

    weight = _check_percent("weight", weight)
    shadow = _check_percent("shadow", shadow)
    if weight is not None and shadow is not None:
        raise UsageError(
            "a deployment is either weighted primary traffic or a shadow, not both",
            hint="give --weight or --shadow",
        )
    if shadow == 0:
        raise UsageError(
            "shadow must be above 0 (0 means not a shadow)",
            hint="to serve the version as a primary, give --weight instead",
        )
    batching_spec = BatchingSpec.from_value(batching)
    scale_spec = ScaleSpec.from_value(scale)
    identity = authorize(project, "deploy")
    version = get_version(project, ref)
    model, number = version.model, version.number

    def write(conn: Connection) -> RoutingTable:
        from sqlalchemy import delete, select

        from seaway._util import utcnow
        from seaway.store.events import record_event
        from seaway.store.schema import deployments

        rows = {
            int(r.number): r
            for r in conn.execute(select(deployments).where(deployments.c.model == model)).all()
        }
        mine = rows.get(number)
        # Primaries other than this version: the ones a weight change rescales.
        others = {n: float(r.weight) for n, r in rows.items() if n != number and r.shadow <= 0}
        new_weights: dict[int, float] = {}
        removed: list[int] = []
        if shadow is not None:
            my_weight, my_shadow = 0.0, shadow
            if mine is not None and mine.shadow <= 0 and others:
                new_weights = _rescaled(others, 100.0)
        elif weight is None:
            my_weight, my_shadow = 100.0, 0.0
            removed = sorted(others)
        else:
            my_weight, my_shadow = weight, 0.0
            if weight < 100.0 and not others:
                raise UsageError(
                    f"{model} has no other primary deployment to take the remaining "
                    f"{100.0 - weight:g}% of its traffic",
                    hint=f"deploy the stable version first (seaway deploy {model}@N), "
                    f"or give {version.ref} all traffic without --weight",
                )
            new_weights = _rescaled(others, 100.0 - weight)

        now = utcnow()
        values: dict[str, Any] = {
            "weight": my_weight,
            "shadow": my_shadow,
            "batching": (
                batching_spec.to_dict()
                if batching_spec is not None
                else (mine.batching if mine is not None else None)
            ),
            "scale": (
                scale_spec.to_dict()
                if scale_spec is not None
                else (mine.scale if mine is not None else None)
            ),
            "require_signature": (
                require_signature
                if require_signature is not None
                else (bool(mine.require_signature) if mine is not None else False)
            ),
            "updated_at": now,
            "actor": identity.name,
        }
        revision = _bump_revision(conn)
        if mine is None:
            conn.execute(deployments.insert().values(model=model, number=number, **values))
        else:
            conn.execute(
                deployments.update()
                .where(deployments.c.model == model, deployments.c.number == number)
                .values(**values)
            )
        _changes_event(conn, {"model": model, "number": number, **values}, revision, identity.name)
        for n, w in new_weights.items():
            if abs(w - float(rows[n].weight)) < 1e-9:
                continue
            conn.execute(
                deployments.update()
                .where(deployments.c.model == model, deployments.c.number == n)
                .values(weight=w, updated_at=now, actor=identity.name)
            )
            record_event(
                conn,
                "deployment.set",
                f"model:{model}@{n}",
                {"weight": w, "shadow": 0.0, "revision": revision, "rescaled_by": version.ref},
                actor=identity.name,
            )
        for n in removed:
            conn.execute(
                delete(deployments).where(deployments.c.model == model, deployments.c.number == n)
            )
            record_event(
                conn,
                "deployment.removed",
                f"model:{model}@{n}",
                {"revision": revision, "replaced_by": version.ref},
                actor=identity.name,
            )
        return _read_table(conn)

    return project.metadata.run_write(write)


def undeploy(project: Project, model: str, number: int | None = None) -> RoutingTable:
    """Stop serving `model` (every version) or one version of it; the remaining primaries
    are rescaled to sum to 100. NotFound when nothing matched."""
    from seaway.policy.identity import authorize

    identity = authorize(project, "deploy")

    def write(conn: Connection) -> RoutingTable:
        from sqlalchemy import delete, select

        from seaway._util import utcnow
        from seaway.store.events import record_event
        from seaway.store.schema import deployments

        rows = {
            int(r.number): r
            for r in conn.execute(select(deployments).where(deployments.c.model == model)).all()
        }
        targets = sorted(rows) if number is None else [n for n in rows if n == number]
        if not targets:
            what = model if number is None else f"{model}@{number}"
            served = ", ".join(f"{model}@{n}" for n in sorted(rows))
            raise NotFound(
                f"{what} is not deployed",
                hint=f"deployed versions of {model}: {served}"
                if served
                else "`seaway deployments` lists what is deployed",
            )
        revision = _bump_revision(conn)
        for n in targets:
            conn.execute(
                delete(deployments).where(deployments.c.model == model, deployments.c.number == n)
            )
            record_event(
                conn,
                "deployment.removed",
                f"model:{model}@{n}",
                {"revision": revision},
                actor=identity.name,
            )
        removed_primary = any(rows[n].shadow <= 0 and rows[n].weight > 0 for n in targets)
        others = {n: float(r.weight) for n, r in rows.items() if n not in targets and r.shadow <= 0}
        if removed_primary and others:
            now = utcnow()
            for n, w in _rescaled(others, 100.0).items():
                if abs(w - others[n]) < 1e-9:
                    continue
                conn.execute(
                    deployments.update()
                    .where(deployments.c.model == model, deployments.c.number == n)
                    .values(weight=w, updated_at=now, actor=identity.name)
                )
                record_event(
                    conn,
                    "deployment.set",
                    f"model:{model}@{n}",
                    {"weight": w, "shadow": 0.0, "revision": revision},
                    actor=identity.name,
                )
        return _read_table(conn)

    return project.metadata.run_write(write)


@dataclass(frozen=True)
class Route:
    """One version's share in a model's desired split (see `set_routes`)."""

    number: int
    weight: float = 0.0
    shadow: float = 0.0


def set_routes(
    project: Project,
    model: str,
    routes: list[Route],
    *,
    batching: BatchingSpec | Mapping[str, Any] | None = None,
    scale: ScaleSpec | Mapping[str, Any] | None = None,
    require_signature: bool = False,
    reason: Mapping[str, Any] | None = None,
) -> RoutingTable:
    """Make `model`'s deployments exactly `routes`, in one transaction and one revision: the
    reconciler's way in, where `deploy` is a person's. Versions not listed are removed; an
    empty list removes the model. Primary weights must sum to 100 (or all be 0 when only
    shadows remain, which is refused: a model needs a primary). Rows already as asked are
    left alone and record no event, so applying the same split twice changes nothing, not
    even the revision. `reason` is merged into each event's data (for example the
    environment and rollout). Versions are not looked up: the caller resolved them."""
    from seaway.policy.identity import authorize

    seen: set[int] = set()
    for r in routes:
        if r.number in seen:
            raise UsageError(f"{model}@{r.number} is listed twice in one split")
        seen.add(r.number)
        _check_percent("weight", r.weight)
        _check_percent("shadow", r.shadow)
        if r.weight > 0 and r.shadow > 0:
            raise UsageError(f"{model}@{r.number} cannot be both a primary and a shadow")
    total = sum(r.weight for r in routes)
    if routes and abs(total - 100.0) > 1e-6:
        raise UsageError(
            f"the primary weights of {model} sum to {total:g}, not 100",
            hint="give the versions' weights so that they add up to 100",
        )
    batching_spec = BatchingSpec.from_value(batching)
    scale_spec = ScaleSpec.from_value(scale)
    identity = authorize(project, "deploy")
    extra = dict(reason or {})

    def write(conn: Connection) -> RoutingTable:
        from sqlalchemy import delete, select

        from seaway._util import utcnow
        from seaway.store.events import record_event
        from seaway.store.schema import deployments

        rows = {
            int(r.number): r
            for r in conn.execute(select(deployments).where(deployments.c.model == model)).all()
        }
        wanted = {r.number: r for r in routes}
        common = {
            "batching": batching_spec.to_dict() if batching_spec else None,
            "scale": scale_spec.to_dict() if scale_spec else None,
            "require_signature": bool(require_signature),
        }
        changed = [
            n
            for n, r in wanted.items()
            if n not in rows
            or abs(float(rows[n].weight) - r.weight) > 1e-9
            or abs(float(rows[n].shadow) - r.shadow) > 1e-9
            or rows[n].batching != common["batching"]
            or rows[n].scale != common["scale"]
            or bool(rows[n].require_signature) != common["require_signature"]
        ]
        gone = sorted(set(rows) - set(wanted))
        if not changed and not gone:
            return _read_table(conn)
        revision = _bump_revision(conn)
        now = utcnow()
        for n in changed:
            values = {
                "weight": wanted[n].weight,
                "shadow": wanted[n].shadow,
                **common,
                "updated_at": now,
                "actor": identity.name,
            }
            if n in rows:
                conn.execute(
                    deployments.update()
                    .where(deployments.c.model == model, deployments.c.number == n)
                    .values(**values)
                )
            else:
                conn.execute(deployments.insert().values(model=model, number=n, **values))
            data = {k: v for k, v in values.items() if k not in ("updated_at", "actor")}
            record_event(
                conn,
                "deployment.set",
                f"model:{model}@{n}",
                {**data, "revision": revision, **extra},
                actor=identity.name,
            )
        for n in gone:
            conn.execute(
                delete(deployments).where(deployments.c.model == model, deployments.c.number == n)
            )
            record_event(
                conn,
                "deployment.removed",
                f"model:{model}@{n}",
                {"revision": revision, **extra},
                actor=identity.name,
            )
        return _read_table(conn)

    return project.metadata.run_write(write)


__all__ = [
    "DEFAULT_IDLE_TIMEOUT_S",
    "BatchingSpec",
    "Deployment",
    "Route",
    "RoutingTable",
    "ScaleSpec",
    "deploy",
    "load_table",
    "read_revision",
    "set_routes",
    "undeploy",
]
