"""Rollouts as state machines, driven by ticks.

`tick(project, rollout, apply=...)` looks at the clock and the live figures, moves the
rollout as far as they allow, makes the resulting traffic split live through `apply`, and
stores the new state (with its events) through `save_rollout`. All the state is in the
row, so a controller killed at any point continues from it: every tick first applies the
split the stored step wants (idempotent, so it costs nothing when it is already live).

Strategies (the split each one holds, as `current_routes` returns it):

- **direct**, and every strategy without a stable version (a first deployment): the
  candidate takes all traffic at the first tick, and the rollout is Successful.
- **canary**: at step i the candidate has `steps[i].weight` percent and stable the rest. A
  step with `pause` holds until the pause is over, while the strategy's `analysis` (if
  any) is measured every `interval` over the step's window; the step is left only after a
  measurement at or after the end of the pause was Successful. A step with its own
  `analysis` holds until that analysis is Successful (it replaces the strategy's analysis
  for the step). The last step (weight 100) completes the rollout.
- **blue_green**: stable keeps all traffic and the candidate gets every request mirrored
  (its preview: its answers reach no client, but analysis compares it with stable) for
  `preview`, or until the analysis passes when there is no preview. Then, with
  `auto_promote`, the switch; without, the rollout is Paused "waiting for promotion"
  until `promote` (a person's `seaway rollout promote`).
- **shadow**: stable keeps all traffic and `percent` of it is mirrored to the candidate for
  `duration`, with the analysis; passed, the candidate takes all traffic.

Analysis outcomes (see `seaway.rollout.analysis`): Failed counts against `failure_limit`
(in a row) and aborts; Inconclusive waits, from the time the step could otherwise move
on, up to `inconclusive_limit`, then counts as `on_inconclusive` says; Error (could not
measure, or could not apply the split) is retried after `ERROR_RETRY_S` (or the interval,
when shorter); after `error_limit` in a row, or a streak as long as `inconclusive_limit`
(the step's deadline), the rollout is Degraded.

Abort (failed analysis, inconclusive deadline, error limit): stable gets all traffic and
the candidate is removed in one split (stable kept serving throughout, so it is loaded),
the phase is Degraded, `rollout.failed` records the last analysis, and the state's
`needs_rollback_commit` is set: git still names the candidate, and the reconciler writes
the rollback commit when the environment asks for it. If the split cannot be applied the
rollout is Degraded all the same; `current_routes` then says stable only, which the
reconciler re-applies.

Success: the candidate takes all traffic, stable is removed, and the alias
`promote_alias` (the environment's, `champion` by default) moves to the candidate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from seaway._util import as_utc, isoformat, utcnow
from seaway.errors import SeawayError, UsageError
from seaway.rollout.analysis import AnalysisResult, Figures, measure
from seaway.rollout.records import EventSpec, Rollout, save_rollout
from seaway.serving.routes import Route

if TYPE_CHECKING:
    from seaway.project import Project
    from seaway.spec.environment import AnalysisSpec, EnvironmentSpec

Apply = Callable[[list[Route]], None]
"""Make a model's split live (through the environment's targets). May raise: the tick
then counts an error and leaves the stored step as it was."""

ERROR_RETRY_S = 10.0
"""Wait before measuring or applying again after an error (Argo Rollouts waits 10 s)."""

HISTORY = 20
"""Analyses kept in a rollout's state."""

# Per-step bookkeeping in `state`, cleared when a step starts.
_STEP_KEYS = ("last_measured_at", "passed_at", "inconclusive_since", "failures")
# The current streak of errors (measuring or applying), cleared when it ends.
_ERROR_KEYS = ("errors", "error_since", "retry_at", "last_error", "apply_failing")


# -- the split ----------------------------------------------------------------------------


def total_steps(rollout: Rollout) -> int:
    """How many steps the rollout's strategy has (canary: its steps; others: one)."""
    if rollout.kind == "canary" and rollout.strategy.canary is not None:
        return len(rollout.strategy.canary.steps)
    return 1


def candidate_weight(rollout: Rollout) -> float:
    """The candidate's share of primary traffic in the split `current_routes` returns."""
    return sum(r.weight for r in current_routes(rollout) if r.number == rollout.candidate)


def _progress_routes(rollout: Rollout) -> list[Route]:
    stable, candidate = rollout.stable, rollout.candidate
    strategy = rollout.strategy
    if stable is None or stable == candidate or rollout.kind == "direct":
        return [Route(candidate, 100.0)]
    if rollout.kind == "canary" and strategy.canary is not None:
        steps = strategy.canary.steps
        weight = float(steps[min(rollout.step, len(steps) - 1)].weight)
        if weight >= 100.0:
            # Stable stays deployed (weight 0) so that an abort finds it loaded.
            return [Route(stable, 0.0), Route(candidate, 100.0)]
        return [Route(stable, 100.0 - weight), Route(candidate, weight)]
    if rollout.kind == "blue_green":
        return [Route(stable, 100.0), Route(candidate, 0.0, 100.0)]
    if rollout.kind == "shadow" and strategy.shadow is not None:
        return [Route(stable, 100.0), Route(candidate, 0.0, float(strategy.shadow.percent))]
    return [Route(candidate, 100.0)]


def current_routes(rollout: Rollout) -> list[Route]:
    """The split the rollout's phase and step want: what the reconciler re-applies, and
    compares with live state to find drift. Empty: the model should not be served (a
    first deployment that failed)."""
    if rollout.phase == "Successful":
        return [Route(rollout.candidate, 100.0)]
    if rollout.phase in ("Degraded", "Aborted"):
        return [Route(rollout.stable, 100.0)] if rollout.stable is not None else []
    return _progress_routes(rollout)


def initial_routes(rollout: Rollout) -> list[Route]:
    """The split at step 0 (see the module docstring)."""
    return _progress_routes(replace(rollout, step=0, phase="Progressing"))


def apply_through(
    project: Project,
    environment: str,
    env_spec: EnvironmentSpec,
    model: str,
    *,
    reason: dict[str, Any] | None = None,
) -> Apply:
    """An `Apply` that serves `model` through every target of the environment, with the
    deployment's scale and batching; an empty split removes the model. Targets are made
    on the first call (a Ray target connects to its cluster)."""
    from seaway.gitops.targets import ModelState, Target, make_target

    deployment = env_spec.deployments.get(model)
    made: list[Target] = []

    def apply(routes: list[Route]) -> None:
        if not made:
            made.extend(make_target(k, project, environment, env_spec) for k in env_spec.targets)
        if not routes:
            for target in made:
                target.remove(model)
            return
        state = ModelState(
            model,
            tuple(routes),
            scale=deployment.scale if deployment is not None else None,
            batching=deployment.batching if deployment is not None else None,
            require_signature=env_spec.requires.signature,
        )
        for target in made:
            target.apply(state, reason)

    return apply


# -- ticks --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tick:
    project: Project
    apply: Apply
    now: datetime
    figures: Figures | None
    promote_alias: str | None
    actor: str | None = None


Verdict = Literal["wait", "pass", "fail", "error"]


@dataclass(frozen=True)
class _Judgement:
    rollout: Rollout
    verdict: Verdict
    result: AnalysisResult | None = None
    reason: str = ""


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    return as_utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))


def _summary(result: AnalysisResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {"outcome": result.outcome, "requests": result.requests, "message": result.message}


def _last_analysis(rollout: Rollout) -> dict[str, Any] | None:
    history = rollout.state.get("analyses") or []
    return dict(history[-1]) if history else None


def _remember(rollout: Rollout, now: datetime, result: AnalysisResult) -> Rollout:
    entry = {"at": isoformat(now), "step": rollout.step, **result.to_dict()}
    history = [*list(rollout.state.get("analyses") or []), entry][-HISTORY:]
    return rollout.with_state(analyses=history)


def _step_spec(rollout: Rollout) -> tuple[AnalysisSpec | None, datetime]:
    """The analysis that gates the current step, and when the step may move on at the
    earliest (the end of its pause or preview)."""
    strategy, start = rollout.strategy, rollout.step_started_at
    if rollout.kind == "canary" and strategy.canary is not None:
        step = strategy.canary.steps[min(rollout.step, len(strategy.canary.steps) - 1)]
        if step.analysis is not None:
            return step.analysis, start
        pause = step.pause.seconds if step.pause is not None else 0.0
        return strategy.canary.analysis, start + timedelta(seconds=pause)
    if rollout.kind == "blue_green" and strategy.blue_green is not None:
        preview = strategy.blue_green.preview
        due = start + timedelta(seconds=preview.seconds) if preview is not None else start
        return strategy.blue_green.analysis, due
    if rollout.kind == "shadow" and strategy.shadow is not None:
        return strategy.shadow.analysis, start + timedelta(seconds=strategy.shadow.duration.seconds)
    return None, start


def _limits(rollout: Rollout) -> AnalysisSpec:
    """The step's analysis spec, or the defaults (for the error limit) when it has none."""
    from seaway.spec.environment import AnalysisSpec

    spec, _ = _step_spec(rollout)
    return spec if spec is not None else AnalysisSpec()


def _retry_delay(rollout: Rollout) -> float:
    return min(ERROR_RETRY_S, _limits(rollout).interval.seconds)


def _judge(ctx: _Tick, rollout: Rollout) -> _Judgement:
    """Measure when it is time, update the bookkeeping, and say whether the step may move
    on (pass), must wait, or ends the rollout (fail, error)."""
    spec, due = _step_spec(rollout)
    now = ctx.now
    if spec is None:
        return _Judgement(rollout, "pass" if now >= due else "wait")
    state = rollout.state
    last = _time(state.get("last_measured_at")) or rollout.step_started_at
    passed_at = _time(state.get("passed_at"))
    retrying = int(state.get("errors", 0)) > 0
    due_now = now - last >= timedelta(seconds=spec.interval.seconds) or (last < due <= now)
    if not (retrying or due_now):
        if passed_at is not None and passed_at >= due and now >= due:
            return _Judgement(rollout, "pass")
        return _Judgement(rollout, "wait")

    result = measure(ctx.project, rollout, spec, since=rollout.step_started_at, figures=ctx.figures)
    r = _remember(rollout, now, result).with_state(last_measured_at=isoformat(now))
    if result.outcome == "Error":
        return _count_error(ctx, r, result.message, result)
    r = r.with_state(**dict.fromkeys(_ERROR_KEYS))
    if result.outcome == "Failed":
        failures = int(state.get("failures", 0)) + 1
        r = r.with_state(failures=failures, passed_at=None, inconclusive_since=None)
        if failures >= spec.failure_limit:
            times = f" ({failures} times in a row)" if failures > 1 else ""
            return _Judgement(r, "fail", result, f"analysis failed{times}: {result.message}")
        return _Judgement(r, "wait", result)
    if result.outcome == "Inconclusive":
        if now < due:
            return _Judgement(r, "wait", result)
        since = _time(state.get("inconclusive_since")) or now
        r = r.with_state(inconclusive_since=isoformat(since))
        waited = (now - since).total_seconds()
        if waited < spec.inconclusive_limit.seconds:
            return _Judgement(r, "wait", result)
        reason = (
            f"analysis inconclusive for {spec.inconclusive_limit} ({result.message}), "
            f"counted as {'passed' if spec.on_inconclusive == 'pass' else 'failed'}"
        )
        if spec.on_inconclusive == "pass":
            return _Judgement(r, "pass", result, reason)
        return _Judgement(r, "fail", result, reason)
    r = r.with_state(failures=None, inconclusive_since=None, passed_at=isoformat(now))
    return _Judgement(r, "pass" if now >= due else "wait", result)


def _count_error(
    ctx: _Tick, rollout: Rollout, message: str, result: AnalysisResult | None = None
) -> _Judgement:
    errors = int(rollout.state.get("errors", 0)) + 1
    since = _time(rollout.state.get("error_since")) or ctx.now
    retry_at = ctx.now + timedelta(seconds=_retry_delay(rollout))
    r = rollout.with_state(
        errors=errors,
        error_since=isoformat(since),
        retry_at=isoformat(retry_at),
        last_error=message,
    )
    limits = _limits(rollout)
    if errors >= limits.error_limit:
        return _Judgement(r, "error", result, f"{errors} errors in a row, the last: {message}")
    if (ctx.now - since).total_seconds() >= limits.inconclusive_limit.seconds:
        # Ticks far apart (a controller that kept restarting) must not stretch the streak.
        reason = f"errors for {limits.inconclusive_limit} ({errors} in a row), the last: {message}"
        return _Judgement(r, "error", result, reason)
    return _Judgement(r, "wait", result)


def _save(ctx: _Tick, rollout: Rollout, *events: EventSpec) -> Rollout:
    return save_rollout(ctx.project, rollout, events=events, actor=ctx.actor)


def _abort(
    ctx: _Tick,
    rollout: Rollout,
    *,
    phase: Literal["Degraded", "Aborted"],
    reason: str,
    result: AnalysisResult | None = None,
    event: str = "rollout.failed",
) -> Rollout:
    """Return all traffic to stable and remove the candidate; end the rollout."""
    ended = replace(rollout, phase=phase, finished_at=ctx.now)
    routes = current_routes(ended)
    message = reason
    applied = True
    try:
        ctx.apply(routes)
    except Exception as exc:
        applied = False
        message += f"; traffic is not back on stable yet ({_reason(exc)}), retried by sync"
    ended = replace(ended, message=message).with_state(
        needs_rollback_commit=True if rollout.stable is not None else None,
        **dict.fromkeys(_ERROR_KEYS),
    )
    analysis = _summary(result) if result is not None else _last_analysis(rollout)
    data = {
        "reason": message,
        "phase": phase,
        "step": rollout.step,
        "weight": candidate_weight(rollout),
        "stable": rollout.stable,
        "traffic_on_stable": applied,
        "analysis": analysis,
    }
    return _save(ctx, ended, (event, data))


def _complete(ctx: _Tick, rollout: Rollout, *, reason: str = "") -> Rollout:
    """The candidate takes all traffic, stable is removed, the alias moves."""
    from seaway.registry.aliases import set_alias

    done = replace(rollout, phase="Successful", step=total_steps(rollout) - 1, finished_at=ctx.now)
    try:
        ctx.apply(current_routes(done))
    except Exception as exc:
        return _failed_apply(ctx, rollout, exc)
    alias_note: str | None = None
    if ctx.promote_alias:
        try:
            set_alias(ctx.project, rollout.ref, ctx.promote_alias)
        except SeawayError as exc:
            alias_note = f"alias {ctx.promote_alias} not moved: {exc.message}"
    message = f"@{rollout.candidate} serves all traffic"
    if ctx.promote_alias and alias_note is None:
        message += f" and is {ctx.promote_alias}"
    if alias_note:
        message += f"; {alias_note}"
    if reason:
        message += f" ({reason})"
    done = replace(done, message=message).with_state(**dict.fromkeys(_ERROR_KEYS))
    data = {
        "stable": rollout.stable,
        "kind": rollout.kind,
        "step": done.step,
        "alias": ctx.promote_alias if alias_note is None else None,
        "alias_error": alias_note,
        "reason": reason or None,
        "analysis": _last_analysis(rollout),
    }
    return _save(ctx, done, ("rollout.succeeded", data))


def _failed_apply(ctx: _Tick, rollout: Rollout, exc: Exception) -> Rollout:
    judgement = _count_error(
        ctx, rollout.with_state(apply_failing=True), f"could not apply the split: {_reason(exc)}"
    )
    if judgement.verdict == "error":
        return _abort(ctx, judgement.rollout, phase="Degraded", reason=judgement.reason)
    return _save(ctx, judgement.rollout)


def _reason(exc: Exception) -> str:
    return getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"


def _advance(ctx: _Tick, rollout: Rollout, judgement: _Judgement) -> Rollout:
    """Canary: on to the next step, or complete after the last one."""
    from seaway.spec.environment import CanaryStep

    assert rollout.strategy.canary is not None
    steps: list[CanaryStep] = rollout.strategy.canary.steps
    nxt = rollout.step + 1
    if nxt >= len(steps):
        return _complete(ctx, rollout, reason=judgement.reason)
    step = steps[nxt]
    if nxt == len(steps) - 1 and step.pause is None and step.analysis is None:
        return _complete(ctx, rollout, reason=judgement.reason)
    moved = replace(rollout, step=nxt, step_started_at=ctx.now).with_state(
        **dict.fromkeys(_STEP_KEYS)
    )
    try:
        ctx.apply(current_routes(moved))
    except Exception as exc:
        return _failed_apply(ctx, rollout, exc)
    data = {
        "step": nxt,
        "weight": float(step.weight),
        "of": len(steps),
        "analysis": _summary(judgement.result) or _last_analysis(rollout),
        "reason": judgement.reason or None,
    }
    return _save(ctx, moved, ("rollout.step", data))


def _await_promotion(ctx: _Tick, rollout: Rollout, judgement: _Judgement) -> Rollout:
    message = "waiting for promotion"
    held = replace(rollout, phase="Paused", message=message).with_state(
        paused_by="analysis", awaiting_promotion=True
    )
    data = {
        "reason": "preview passed; " + message,
        "step": rollout.step,
        "analysis": _summary(judgement.result) or _last_analysis(rollout),
    }
    return _save(ctx, held, ("rollout.paused", data))


def tick(
    project: Project,
    rollout: Rollout,
    *,
    apply: Apply,
    now: datetime | None = None,
    figures: Figures | None = None,
    promote_alias: str | None = "champion",
) -> Rollout:
    """Advance `rollout` as far as the clock and the live figures allow, apply the split,
    store it; return the rollout as stored. Rollouts that are not Progressing are returned
    unchanged. `figures` defaults to the gateway's live figures."""
    if rollout.phase != "Progressing":
        return rollout
    at = as_utc(now) if now is not None else utcnow()
    ctx = _Tick(project, apply, at, figures, promote_alias)
    retry_at = _time(rollout.state.get("retry_at"))
    if retry_at is not None and ctx.now < retry_at:
        return rollout
    if rollout.kind == "direct" or rollout.stable is None or rollout.stable == rollout.candidate:
        return _complete(ctx, rollout)
    try:
        ctx.apply(current_routes(rollout))
    except Exception as exc:
        return _failed_apply(ctx, rollout, exc)
    read = rollout
    if rollout.state.get("apply_failing"):
        # The split is live again: that streak of errors is over.
        rollout = rollout.with_state(**dict.fromkeys(_ERROR_KEYS))

    judgement = _judge(ctx, rollout)
    r = judgement.rollout
    if judgement.verdict in ("fail", "error"):
        return _abort(ctx, r, phase="Degraded", reason=judgement.reason, result=judgement.result)
    if judgement.verdict == "pass":
        if r.kind == "canary":
            return _advance(ctx, r, judgement)
        blue_green = r.strategy.blue_green
        if r.kind == "blue_green" and blue_green is not None and not blue_green.auto_promote:
            return _await_promotion(ctx, r, judgement)
        return _complete(ctx, r, reason=judgement.reason)
    if r.state != read.state:
        return _save(ctx, r)
    return read


# -- people's actions ---------------------------------------------------------------------


def _authorize(project: Project, rollout: Rollout) -> str:
    from seaway.policy.identity import authorize

    env = rollout.environment
    return authorize(project, f"rollout:{env}", f"promote:{env}").name


def _require(rollout: Rollout, *phases: str, action: str) -> None:
    if rollout.phase in phases:
        return
    hint = (
        "it has ended; `seaway rollout list --all` shows what happened"
        if not rollout.active
        else f"`seaway rollout show {rollout.model} --env {rollout.environment}` shows it"
    )
    raise UsageError(
        f"cannot {action} the rollout of {rollout.ref} in {rollout.environment}: "
        f"it is {rollout.phase}",
        hint=hint,
    )


def pause(project: Project, rollout: Rollout, *, now: datetime | None = None) -> Rollout:
    """Hold a Progressing rollout where it is: ticks leave it alone until `resume`."""
    _require(rollout, "Progressing", action="pause")
    actor = _authorize(project, rollout)
    held = replace(rollout, phase="Paused", message=f"paused by {actor}").with_state(
        paused_by=actor, paused_at=isoformat(as_utc(now) if now else utcnow())
    )
    data = {"reason": f"paused by {actor}", "step": rollout.step}
    return save_rollout(project, held, event=("rollout.paused", data), actor=actor)


def resume(project: Project, rollout: Rollout) -> Rollout:
    """Let a paused rollout progress again from the step it was held at."""
    _require(rollout, "Paused", action="resume")
    if rollout.state.get("awaiting_promotion"):
        raise UsageError(
            f"the preview of {rollout.ref} in {rollout.environment} passed and waits for "
            "promotion, not for resume",
            hint=f"seaway rollout promote {rollout.model} --env {rollout.environment} "
            "switches traffic; seaway rollout abort keeps stable",
        )
    actor = _authorize(project, rollout)
    going = replace(rollout, phase="Progressing", message=None).with_state(
        paused_by=None, paused_at=None
    )
    data = {"step": rollout.step, "paused_by": rollout.state.get("paused_by")}
    return save_rollout(project, going, event=("rollout.resumed", data), actor=actor)


def abort(
    project: Project, rollout: Rollout, *, apply: Apply, now: datetime | None = None
) -> Rollout:
    """A person ends the rollout: stable gets all traffic back, the candidate is removed,
    phase Aborted."""
    _require(rollout, "Progressing", "Paused", action="abort")
    actor = _authorize(project, rollout)
    ctx = _Tick(project, apply, as_utc(now) if now else utcnow(), None, None, actor)
    return _abort(
        ctx, rollout, phase="Aborted", reason=f"aborted by {actor}", event="rollout.aborted"
    )


def promote(
    project: Project,
    rollout: Rollout,
    *,
    apply: Apply,
    full: bool = False,
    promote_alias: str | None = "champion",
    now: datetime | None = None,
) -> Rollout:
    """A person moves the rollout on without waiting for its pause or analysis: a canary
    to its next step (or to the end with `full`), a blue-green preview or a shadow to the
    switch. A paused rollout is resumed by it. A split that cannot be applied raises and
    changes nothing."""
    _require(rollout, "Progressing", "Paused", action="promote")
    actor = _authorize(project, rollout)
    ctx = _Tick(project, apply, as_utc(now) if now else utcnow(), None, promote_alias, actor)
    going = replace(rollout, phase="Progressing", message=None).with_state(
        paused_by=None, paused_at=None, awaiting_promotion=None
    )
    reason = f"promoted by {actor}"
    if going.kind == "canary" and going.strategy.canary is not None and not full:
        steps = going.strategy.canary.steps
        nxt = going.step + 1
        final = nxt >= len(steps) - 1 and (
            nxt >= len(steps) or (steps[nxt].pause is None and steps[nxt].analysis is None)
        )
        if not final:
            moved = replace(going, step=nxt, step_started_at=ctx.now).with_state(
                **dict.fromkeys(_STEP_KEYS)
            )
            apply(current_routes(moved))
            data = {
                "step": nxt,
                "weight": float(steps[nxt].weight),
                "of": len(steps),
                "reason": reason,
            }
            return save_rollout(project, moved, event=("rollout.step", data), actor=actor)
    done = replace(going, phase="Successful", step=total_steps(going) - 1, finished_at=ctx.now)
    # Applied here so that a failure reaches the person; `_complete` applying it again is
    # a no-op, and keeps one place that moves the alias.
    apply(current_routes(done))
    return _complete(ctx, going, reason=reason)


__all__ = [
    "ERROR_RETRY_S",
    "Apply",
    "abort",
    "apply_through",
    "candidate_weight",
    "current_routes",
    "initial_routes",
    "pause",
    "promote",
    "resume",
    "tick",
    "total_steps",
]
