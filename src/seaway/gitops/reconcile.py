"""The reconciler: make live state what git says, one environment at a time.

`plan(project)` reads the environment files at the tracked revision (`gitops.desired`),
reads what each environment's targets serve, and lists the actions that would close the gap;
`sync(project)` plans and applies, then advances the rollouts in flight. Both are what
`seaway sync [--dry-run]` and every loop of `seaway controller` call.

How one model in one environment is judged (desired version V, live split L):

- not served: **create**, V takes all traffic at once (there is nothing to roll out from);
- a rollout to V in flight: nothing to plan; the rollout engine moves it on (and a live
  split that differs from the one the rollout wants is re-applied: the engine owns it);
- the newest rollout to V failed or was aborted: nothing (status Degraded) until the file
  names another version: a failed version is not retried on every loop;
- L is V alone with the file's settings: in sync;
- L is V alone with other settings (scale, batching, signature): **update** in place;
- V served before by a finished rollout, or V among L's versions, but L differs: **drift**
  (a change made outside git, a `seaway deploy` by hand); reported, and reverted to V alone
  when the environment says `self_heal: true`;
- otherwise L's main primary is the stable version and V the candidate: **rollout** with
  the deployment's strategy;
- a model the environment managed at its last sync and no longer names: **remove**.

The local target has one namespace of model names (the store's routing table): a model
named by two environments that both use it is a problem, and neither side is applied.
Problems (an unknown model or version, that conflict) are reported with the plan; the rest
of the plan still applies.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from seaway.gitops.targets.base import ModelState
from seaway.serving.routes import Route

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from seaway.gitops.desired import DesiredState
    from seaway.gitops.targets.base import Target
    from seaway.project import Project
    from seaway.registry.versions import VersionIndex
    from seaway.rollout.records import Rollout
    from seaway.spec.environment import DeploymentSpec, EnvironmentSpec

log = logging.getLogger("seaway.gitops")

ActionKind = Literal["create", "rollout", "update", "drift", "heal", "remove"]

_SYMBOL = {"create": "+", "rollout": "~", "update": "~", "drift": "!", "heal": "~", "remove": "-"}


@dataclass(frozen=True)
class Action:
    """One change the plan makes (or, for `drift` without self-heal, only reports)."""

    environment: str
    model: str
    kind: ActionKind
    targets: tuple[str, ...]
    before: ModelState | None
    after: ModelState | None
    detail: str
    strategy: str = "direct"
    version: int | None = None

    @property
    def changes(self) -> bool:
        return self.kind != "drift"

    def to_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "model": self.model,
            "action": self.kind,
            "targets": list(self.targets),
            "version": self.version,
            "strategy": self.strategy,
            "before": _split_dict(self.before),
            "after": _split_dict(self.after),
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Problem:
    environment: str
    model: str | None
    message: str
    hint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "model": self.model,
            "message": self.message,
            "hint": self.hint,
        }


@dataclass
class EnvironmentStatus:
    """One (environment, model): what git wants, what serves, where the rollout is."""

    environment: str
    model: str
    desired: int | None
    live: dict[int, float]
    shadows: dict[int, float]
    sync: Literal["Synced", "OutOfSync", "Progressing", "Degraded", "Unknown"]
    health: Literal["Healthy", "Progressing", "Degraded", "Missing", "Unknown"]
    rollout: dict[str, Any] | None = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "model": self.model,
            "desired": self.desired,
            "live": {str(k): v for k, v in sorted(self.live.items())},
            "shadows": {str(k): v for k, v in sorted(self.shadows.items())},
            "sync": self.sync,
            "health": self.health,
            "rollout": self.rollout,
            "message": self.message,
        }


@dataclass
class Plan:
    revision: str
    source: str
    actions: list[Action] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    statuses: list[EnvironmentStatus] = field(default_factory=list)
    in_sync: int = 0
    seconds: float = 0.0

    @property
    def changes(self) -> list[Action]:
        return [a for a in self.actions if a.changes]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for a in self.actions:
            out[a.kind] = out.get(a.kind, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "source": self.source,
            "actions": [a.to_dict() for a in self.actions],
            "problems": [p.to_dict() for p in self.problems],
            "in_sync": self.in_sync,
            "counts": self.counts(),
            "seconds": round(self.seconds, 6),
        }

    def render(self) -> str:
        """The plan in the style of `terraform plan`: one line per action, then a summary."""
        lines = [f"revision {self.revision[:12]} ({self.source})"]
        if self.actions:
            lines.append("")
            width = max(len(a.model) for a in self.actions)
            for a in self.actions:
                lines.append(
                    f"  {_SYMBOL[a.kind]} {a.environment}/{a.model:<{width}}  {a.kind:<8}"
                    f"{a.detail}  [{', '.join(a.targets)}]"
                )
        for p in self.problems:
            where = f"{p.environment}/{p.model}" if p.model else p.environment
            lines.append(f"  x {where}: {p.message}" + (f" ({p.hint})" if p.hint else ""))
        c = self.counts()
        lines.append("")
        lines.append(
            f"Plan: {c.get('create', 0)} to create, "
            f"{c.get('rollout', 0) + c.get('update', 0) + c.get('heal', 0)} to change, "
            f"{c.get('remove', 0)} to remove, {c.get('drift', 0)} drifted, "
            f"{self.in_sync} in sync, {len(self.problems)} problem(s)."
        )
        return "\n".join(lines)


def _split_dict(state: ModelState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {
        "weights": {str(k): v for k, v in sorted(state.weights().items())},
        "shadows": {str(k): v for k, v in sorted(state.shadows().items())},
    }


def describe_split(state: ModelState | None) -> str:
    if state is None or not state.routes:
        return "nothing"
    parts = [f"@{n} {w:g}%" for n, w in sorted(state.weights().items())]
    parts += [f"@{n} shadow {s:g}%" for n, s in sorted(state.shadows().items())]
    return ", ".join(parts)


def desired_state(env: EnvironmentSpec, model: str, dep: DeploymentSpec, number: int) -> ModelState:
    """The model served by version `number` alone, with the file's settings."""
    return ModelState(
        model=model,
        routes=(Route(number, 100.0, 0.0),),
        scale=dep.scale,
        batching=dep.batching,
        require_signature=env.requires.signature,
    )


def same_settings(a: ModelState, b: ModelState, target_kind: str) -> bool:
    """Whether two states have the same scale, batching and signature rule, as the target
    stores them (the local gateway keeps only `min > 0` and the idle timeout)."""
    if a.require_signature != b.require_signature:
        return False
    if target_kind == "local":
        from seaway.gitops.targets.local import serving_batching, serving_scale

        return serving_scale(a.scale) == serving_scale(b.scale) and serving_batching(
            a.batching
        ) == serving_batching(b.batching)
    return a.scale == b.scale and a.batching == b.batching


def same_split(a: ModelState | None, routes: Iterable[Route]) -> bool:
    if a is None:
        return False
    want = {r.number: (round(r.weight, 6), round(r.shadow, 6)) for r in routes}
    have = {r.number: (round(r.weight, 6), round(r.shadow, 6)) for r in a.routes}
    return want == have


def main_primary(state: ModelState) -> int | None:
    """The version taking the largest share of primary traffic (the newest on a tie)."""
    weights = state.weights()
    if not weights:
        return None
    return max(weights, key=lambda n: (weights[n], n))


# -- reading what is live ------------------------------------------------------


@dataclass
class _Live:
    """Everything the plan compares against, read once per plan."""

    by_target: dict[tuple[str, str], dict[str, ModelState]]
    """(environment, target kind) -> model -> state."""
    rollouts: dict[tuple[str, str], Rollout]
    """(environment, model) -> newest rollout."""
    managed: dict[str, set[str]]
    """environment -> models it managed at its last sync."""


def _managed(project: Project) -> dict[str, set[str]]:
    from sqlalchemy import select

    from seaway.store.schema import sync_state

    with project.metadata.read() as conn:
        rows = conn.execute(select(sync_state.c.environment, sync_state.c.models)).all()
    return {r.environment: set(r.models or []) for r in rows}


def _read_live(
    project: Project,
    desired: DesiredState,
    targets: dict[tuple[str, str], Target],
    managed: dict[str, set[str]],
) -> _Live:
    from seaway.gitops.targets.local import LocalTarget
    from seaway.rollout.records import latest_rollouts

    local_models = {
        m
        for name, env in desired.environments.items()
        if "local" in env.targets
        for m in (*env.deployments, *managed.get(name, ()))
    }
    by_target: dict[tuple[str, str], dict[str, ModelState]] = {}
    local_cache: dict[str, ModelState] | None = None
    for key, target in targets.items():
        if key[0] not in desired.environments:
            continue
        if isinstance(target, LocalTarget):
            # One routing table behind every local environment: read it once, and only
            # the rows of the models the environments being judged name or managed.
            if local_cache is None:
                local_cache = target.live(local_models)
            by_target[key] = local_cache
        else:
            by_target[key] = target.live()
    return _Live(
        by_target=by_target,
        rollouts=latest_rollouts(project, desired.environments),
        managed=managed,
    )


def _targets(project: Project, desired: DesiredState) -> dict[tuple[str, str], Target]:
    from seaway.gitops.targets import make_target

    return {
        (name, kind): make_target(kind, project, name, env)
        for name, env in desired.environments.items()
        for kind in env.targets
    }


# -- planning ------------------------------------------------------------------


def _resolve_versions(
    project: Project, desired: DesiredState
) -> tuple[dict[str, VersionIndex], list[Problem]]:
    """Numbers and aliases of every model the files name (two queries in all); problems
    for unknown models, versions and aliases."""
    from seaway.registry.versions import version_index

    index = version_index(
        project, {m for env in desired.environments.values() for m in env.deployments}
    )
    problems: list[Problem] = []
    for env_name, env in sorted(desired.environments.items()):
        for model, dep in sorted(env.deployments.items()):
            found = index.get(model)
            where = f"deployments.{model}.version in environments/{env_name}.yaml"
            if found is None:
                problems.append(
                    Problem(
                        env_name,
                        model,
                        f"model {model} is not registered",
                        f"register it (seaway register) or fix the name in {where}",
                    )
                )
            elif _number(dep.version, found) is None:
                what = (
                    f"{model}@{dep.version} does not exist (newest is @{max(found.numbers)})"
                    if isinstance(dep.version, int)
                    else f"{model} has no alias {dep.version!r}"
                )
                problems.append(Problem(env_name, model, what, f"fix {where}"))
    return index, problems


def _number(ref: int | str, found: VersionIndex | None) -> int | None:
    if found is None:
        return None
    if isinstance(ref, int):
        return ref if ref in found.numbers else None
    return found.aliases.get(ref)


def _local_conflicts(desired: DesiredState) -> list[Problem]:
    owners: dict[str, list[str]] = {}
    for name, env in sorted(desired.environments.items()):
        if "local" in env.targets:
            for model in env.deployments:
                owners.setdefault(model, []).append(name)
    return [
        Problem(
            ",".join(envs),
            model,
            f"{model} is served by the local gateway in {' and '.join(envs)}: the local "
            "target has one routing table",
            "give all but one of these environments another target (kubernetes or ray), "
            "or use one store per environment",
        )
        for model, envs in owners.items()
        if len(envs) > 1
    ]


def _judge(
    env_name: str,
    env: EnvironmentSpec,
    model: str,
    dep: DeploymentSpec,
    number: int,
    live: _Live,
    plan: Plan,
) -> None:
    want = desired_state(env, model, dep, number)
    latest = live.rollouts.get((env_name, model))
    states = {kind: live.by_target[(env_name, kind)].get(model) for kind in env.targets}
    first = states[env.targets[0]]
    status = EnvironmentStatus(
        environment=env_name,
        model=model,
        desired=number,
        live=first.weights() if first else {},
        shadows=first.shadows() if first else {},
        sync="Synced",
        health="Healthy",
        rollout=latest.to_dict() if latest is not None and latest.candidate == number else None,
    )
    plan.statuses.append(status)
    if latest is not None and latest.candidate == number and latest.active:
        status.sync, status.health = "Progressing", "Progressing"
        status.message = f"{latest.kind} rollout {latest.phase.lower()}, step {latest.step}"
        return
    if (
        latest is not None
        and latest.candidate == number
        and latest.phase in ("Degraded", "Aborted")
    ):
        status.sync, status.health = "Degraded", "Degraded"
        status.message = latest.message or f"the rollout to @{number} failed"
        return
    targets = tuple(env.targets)
    if all(s is None or not s.routes for s in states.values()):
        status.sync, status.health = "OutOfSync", "Missing"
        plan.actions.append(
            Action(
                env_name, model, "create", targets, None, want, f"@{number} 100%", version=number
            )
        )
        return
    drifted = [k for k, s in states.items() if not same_split(s, want.routes)]
    if not drifted:
        unequal = [k for k, s in states.items() if s is not None and not same_settings(s, want, k)]
        if unequal:
            status.sync = "OutOfSync"
            plan.actions.append(
                Action(
                    env_name,
                    model,
                    "update",
                    tuple(unequal),
                    first,
                    want,
                    "scale, batching or signature settings",
                    version=number,
                )
            )
        else:
            plan.in_sync += 1
        return
    # Not every state is empty (that was `create` above): one target serves something.
    current = first or next(s for s in states.values() if s is not None)
    served_before = (
        latest is not None and latest.candidate == number and latest.phase == "Successful"
    )
    if served_before or number in {r.number for r in current.routes}:
        status.sync = "OutOfSync"
        status.message = f"live differs from git: {describe_split(current)}"
        kind: ActionKind = "heal" if env.self_heal else "drift"
        detail = f"live {describe_split(current)}, git @{number} 100%"
        detail += "; self_heal reverts it" if env.self_heal else "; self_heal is off"
        plan.actions.append(
            Action(env_name, model, kind, tuple(drifted), current, want, detail, version=number)
        )
        return
    stable = main_primary(current)
    status.sync = "OutOfSync"
    plan.actions.append(
        Action(
            env_name,
            model,
            "rollout",
            targets,
            current,
            want,
            f"@{stable} -> @{number} {dep.strategy.kind}{_steps(dep)}",
            strategy=dep.strategy.kind,
            version=number,
        )
    )


def _steps(dep: DeploymentSpec) -> str:
    canary = dep.strategy.canary
    if canary is None:
        return ""
    return " " + ",".join(f"{s.weight}%" for s in canary.steps)


@dataclass
class _EnvPlan:
    """One environment's share of a plan."""

    actions: list[Action]
    problems: list[Problem]
    statuses: list[EnvironmentStatus]
    in_sync: int


class PlanCache:
    """Environment plans kept between the loops of one process (the controller), so a plan
    costs what changed rather than what exists: an environment whose file (git blob),
    local routing table revision, rollouts, registry and managed models are all as they
    were is not read or judged again. Environments with a kubernetes or ray target are
    always judged again: their live state is outside the store."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[tuple[Any, ...], _EnvPlan]] = {}
        self.hits = 0
        self.misses = 0


def _fingerprints(project: Project) -> tuple[int, int, dict[str, tuple[Any, ...]]]:
    """(routing revision, registry mark, per-environment rollouts mark) in one read."""
    from sqlalchemy import func, select

    from seaway.store.schema import alias_history, model_versions, rollouts, routing_state

    with project.metadata.read() as conn:
        revision = conn.execute(
            select(routing_state.c.revision).where(routing_state.c.id == 1)
        ).scalar()
        versions = conn.execute(select(func.max(model_versions.c.id))).scalar()
        aliases = conn.execute(select(func.max(alias_history.c.id))).scalar()
        marks = conn.execute(
            select(rollouts.c.environment, func.count(), func.max(rollouts.c.updated_at)).group_by(
                rollouts.c.environment
            )
        ).all()
    registry = hash((versions or 0, aliases or 0))
    return int(revision or 0), registry, {m[0]: (m[1], str(m[2])) for m in marks}


def _judge_environments(
    project: Project,
    desired: DesiredState,
    targets: dict[tuple[str, str], Target],
    conflicted: set[str],
    managed: dict[str, set[str]],
) -> dict[str, _EnvPlan]:
    versions, problems = _resolve_versions(project, desired)
    blocked = {(p.environment, p.model) for p in problems}
    live = _read_live(project, desired, targets, managed)
    out: dict[str, _EnvPlan] = {}
    for env_name, env in sorted(desired.environments.items()):
        part = Plan(revision=desired.revision, source=desired.source)
        part.problems = [p for p in problems if p.environment == env_name]
        for model, dep in sorted(env.deployments.items()):
            if (env_name, model) in blocked or model in conflicted:
                continue
            number = _number(dep.version, versions.get(model))
            if number is None:
                continue
            _judge(env_name, env, model, dep, number, live, part)
        for model in sorted(live.managed.get(env_name, set()) - set(env.deployments)):
            served = {k: live.by_target[(env_name, k)].get(model) for k in env.targets}
            if any(s is not None and s.routes for s in served.values()):
                before = next(s for s in served.values() if s is not None)
                part.actions.append(
                    Action(
                        env_name,
                        model,
                        "remove",
                        tuple(env.targets),
                        before,
                        None,
                        f"{describe_split(before)}: no longer in environments/{env_name}.yaml",
                    )
                )
        out[env_name] = _EnvPlan(part.actions, part.problems, part.statuses, part.in_sync)
    return out


def build_plan(
    project: Project,
    desired: DesiredState,
    targets: dict[tuple[str, str], Target],
    cache: PlanCache | None = None,
) -> Plan:
    """Compare `desired` with what `targets` serve; see the module docstring. With a
    `cache`, environments where nothing moved since the last plan are taken from it."""
    from dataclasses import replace

    started = time.perf_counter()
    plan = Plan(revision=desired.revision, source=desired.source)
    conflicts = _local_conflicts(desired)
    conflicted = {p.model for p in conflicts if p.model is not None}
    keys: dict[str, tuple[Any, ...] | None] = dict.fromkeys(desired.environments)
    parts: dict[str, _EnvPlan] = {}
    managed = _managed(project)
    if cache is not None:
        revision, registry, marks = _fingerprints(project)
        for name, env in desired.environments.items():
            blob = desired.blobs.get(name)
            if blob is None or any(k != "local" for k in env.targets):
                continue
            keys[name] = (
                blob,
                revision,
                registry,
                marks.get(name),
                tuple(sorted(managed.get(name, ()))),
                tuple(sorted(conflicted & set(env.deployments))),
            )
            held = cache.entries.get(name)
            if held is not None and held[0] == keys[name]:
                parts[name] = held[1]
                cache.hits += 1
    stale = {n: e for n, e in desired.environments.items() if n not in parts}
    if stale:
        fresh = _judge_environments(
            project, replace(desired, environments=stale), targets, conflicted, managed
        )
        for name, part in fresh.items():
            parts[name] = part
            key = keys.get(name)
            if cache is not None:
                cache.misses += 1
                if key is not None:
                    cache.entries[name] = (key, part)
    for name in sorted(parts):
        part = parts[name]
        plan.actions += part.actions
        plan.problems += part.problems
        plan.statuses += part.statuses
        plan.in_sync += part.in_sync
    plan.problems += conflicts
    plan.seconds = time.perf_counter() - started
    return plan


def plan(
    project: Project,
    *,
    environment: str | None = None,
    revision: str | None = None,
    source: str | None = None,
    cache: PlanCache | None = None,
) -> Plan:
    """What `sync` would do, without doing it."""
    from seaway.gitops.desired import read_desired

    desired = read_desired(project, revision=revision, environment=environment, source=source)
    return build_plan(project, desired, _targets(project, desired), cache)


# -- applying ------------------------------------------------------------------


@dataclass
class SyncResult:
    plan: Plan
    applied: list[Action] = field(default_factory=list)
    failed: list[tuple[Action, str]] = field(default_factory=list)
    rollouts: list[Rollout] = field(default_factory=list)
    rollback_commits: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan.to_dict(),
            "applied": [a.to_dict() for a in self.applied],
            "failed": [{**a.to_dict(), "error": e} for a, e in self.failed],
            "rollouts": [r.to_dict() for r in self.rollouts],
            "rollback_commits": self.rollback_commits,
        }


def _apply_action(
    project: Project,
    action: Action,
    env: EnvironmentSpec,
    targets: dict[tuple[str, str], Target],
    revision: str,
) -> Rollout | None:
    from seaway.rollout.engine import apply_through, tick
    from seaway.rollout.records import start_rollout

    reason = {"git_revision": revision, "action": action.kind}
    if action.kind == "remove":
        for kind in action.targets:
            targets[(action.environment, kind)].remove(action.model)
        return None
    if action.kind in ("update", "heal"):
        assert action.after is not None
        for kind in action.targets:
            targets[(action.environment, kind)].apply(action.after, reason)
        return None
    dep = env.deployments[action.model]
    assert action.version is not None
    stable = main_primary(action.before) if action.before is not None else None
    rollout = start_rollout(
        project,
        action.environment,
        action.model,
        stable=stable,
        candidate=action.version,
        strategy=dep.strategy,
        git_revision=revision,
    )
    return tick(
        project,
        rollout,
        apply=apply_through(project, action.environment, env, action.model),
        promote_alias=env.promote_alias,
    )


def _record_sync(project: Project, desired: DesiredState, result: SyncResult) -> None:
    from seaway._util import utcnow
    from seaway.store.events import record_event
    from seaway.store.schema import sync_state

    now = utcnow()
    failed_envs = {a.environment for a, _ in result.failed}

    def write(conn: Connection) -> None:
        from sqlalchemy import delete

        for name, env in desired.environments.items():
            status = "Failed" if name in failed_envs else "Synced"
            conn.execute(delete(sync_state).where(sync_state.c.environment == name))
            conn.execute(
                sync_state.insert().values(
                    environment=name,
                    git_revision=desired.revision,
                    models=sorted(env.deployments),
                    synced_at=now,
                    status=status,
                )
            )
            mine = [a for a in result.applied if a.environment == name]
            errors = [(a, e) for a, e in result.failed if a.environment == name]
            if mine or errors:
                record_event(
                    conn,
                    "sync.applied",
                    f"environment:{name}",
                    {
                        "git_revision": desired.revision,
                        "source": desired.source,
                        "actions": [f"{a.kind} {a.model}" for a in mine],
                        "failed": [f"{a.kind} {a.model}: {e}" for a, e in errors],
                    },
                )

    project.metadata.run_write(write)


def advance_rollouts(
    project: Project, desired: DesiredState, *, now: Any = None, figures: Any = None
) -> tuple[list[Rollout], list[str]]:
    """Tick every rollout in flight in the desired environments; write the rollback commit
    a failed one asks for where its environment says `rollback_commit: true`. `now` and
    `figures` (the live figures source) default to the clock and the gateway's figures."""
    from seaway.errors import StoreError
    from seaway.rollout.engine import apply_through, tick
    from seaway.rollout.records import list_rollouts, save_rollout

    moved: list[Rollout] = []
    commits: list[str] = []
    for env_name, env in sorted(desired.environments.items()):
        for rollout in list_rollouts(project, environment=env_name, active_only=True):
            if rollout.model not in env.deployments:
                continue
            try:
                after = tick(
                    project,
                    rollout,
                    apply=apply_through(project, env_name, env, rollout.model),
                    now=now,
                    figures=figures,
                    promote_alias=env.promote_alias,
                )
            except StoreError as exc:
                # Someone saved the row first (a person's pause, another writer): the
                # next loop reads it again; the other rollouts go on.
                log.info("rollout %s/%s not advanced: %s", env_name, rollout.ref, exc)
                continue
            moved.append(after)
            if (
                after.phase == "Degraded"
                and after.state.get("needs_rollback_commit")
                and env.rollback_commit
                and desired.source == "local"
                and after.stable is not None
            ):
                commit = _rollback_commit(project, after, save_rollout)
                if commit is not None:
                    commits.append(commit)
    return moved, commits


def _rollback_commit(project: Project, rollout: Rollout, save: Any) -> str | None:
    """Write the commit that puts the stable version back in git, unless git has moved on
    since (a newer promotion landed while the rollout was failing: that one wins)."""
    from dataclasses import replace

    from seaway.gitops.desired import read_desired
    from seaway.gitops.promote import rollback

    now = read_desired(project, environment=rollout.environment)
    dep = now.environments[rollout.environment].deployments.get(rollout.model)
    state = dict(rollout.state)
    state["needs_rollback_commit"] = False
    commit = None
    if dep is not None and dep.version == rollout.candidate:
        reason = f"the {rollout.kind} rollout of {rollout.ref} failed: {rollout.message or ''}"
        result = rollback(
            project, rollout.model, rollout.environment, to=rollout.stable, reason=reason
        )
        commit = state["rollback_commit"] = result.commit
    else:
        state["rollback_commit"] = None
        state["rollback_skipped"] = "git names another version since"
    save(project, replace(rollout, state=state))
    return commit


def sync(
    project: Project,
    *,
    environment: str | None = None,
    revision: str | None = None,
    source: str | None = None,
    dry_run: bool = False,
    cache: PlanCache | None = None,
) -> SyncResult:
    """Plan, apply the plan (unless `dry_run`), then advance the rollouts in flight.

    An action that fails (a target unreachable) is reported and the others still apply;
    the environment's sync status is then Failed and the next sync tries again."""
    from seaway.gitops.desired import read_desired
    from seaway.policy.identity import authorize

    desired = read_desired(project, revision=revision, environment=environment, source=source)
    targets = _targets(project, desired)
    result = SyncResult(plan=build_plan(project, desired, targets, cache))
    if dry_run:
        return result
    authorize(project, "deploy")
    for action in result.plan.changes:
        env = desired.environments[action.environment]
        try:
            rollout = _apply_action(project, action, env, targets, desired.revision)
        except Exception as exc:
            from seaway.errors import SeawayError

            if not isinstance(exc, SeawayError | OSError):
                raise
            result.failed.append((action, str(exc)))
            continue
        result.applied.append(action)
        if rollout is not None:
            result.rollouts.append(rollout)
    _record_sync(project, desired, result)
    ticked, commits = advance_rollouts(project, desired)
    started = {r.id for r in result.rollouts}
    result.rollouts += [r for r in ticked if r.id not in started]
    result.rollback_commits = commits
    return result


def status(
    project: Project,
    *,
    environment: str | None = None,
    revision: str | None = None,
    source: str | None = None,
) -> list[EnvironmentStatus]:
    """Per (environment, model): desired and live versions, split, rollout, sync status."""
    return plan(project, environment=environment, revision=revision, source=source).statuses


__all__ = [
    "Action",
    "EnvironmentStatus",
    "Plan",
    "PlanCache",
    "Problem",
    "SyncResult",
    "advance_rollouts",
    "build_plan",
    "plan",
    "status",
    "sync",
]
