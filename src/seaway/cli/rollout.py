"""`seaway rollout list|show|pause|resume|abort|promote`: rollouts for people; a thin layer
over `seaway.rollout`.

`pause`, `resume`, `abort` and `promote` act on the model's rollout in progress in the
environment and are recorded as events with the acting identity. `abort` and `promote`
move traffic through the environment's targets as the working tree's
`environments/ENV.yaml` describes them. Exit codes: 0 done, 1 not permitted, 2 bad usage
(no such rollout, or one in a phase the action does not apply to).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from seaway.cli.output import line, print_json, table
from seaway.cli.state import STATE

if TYPE_CHECKING:
    from seaway.project import Project
    from seaway.rollout.engine import Apply
    from seaway.rollout.records import Rollout
    from seaway.spec.environment import EnvironmentSpec

app = typer.Typer(no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON only.")]
EnvOpt = Annotated[str, typer.Option("--env", "-e", help="The environment.", metavar="ENV")]
NameArg = Annotated[str, typer.Argument(help="The model.", metavar="NAME")]

_PHASE_STYLE = {
    "Progressing": "cyan",
    "Paused": "yellow",
    "Successful": "green",
    "Degraded": "red",
    "Aborted": "magenta",
}
_OUTCOME_STYLE = {
    "Successful": "green",
    "Failed": "red",
    "Inconclusive": "yellow",
    "Error": "magenta",
}


def _routes_text(rollout: Rollout) -> str:
    from seaway.rollout.engine import current_routes

    parts = []
    for r in current_routes(rollout):
        if r.shadow > 0:
            parts.append(f"@{r.number} mirror {r.shadow:g}%")
        else:
            parts.append(f"@{r.number} {r.weight:g}%")
    return ", ".join(parts) or "nothing served"


def _step_text(rollout: Rollout) -> str:
    from seaway.rollout.engine import total_steps

    return f"{rollout.step + 1}/{total_steps(rollout)}"


def _details(rollout: Rollout) -> dict[str, Any]:
    from seaway.rollout.engine import candidate_weight, current_routes, total_steps

    return {
        **rollout.to_dict(),
        "steps": total_steps(rollout),
        "weight": candidate_weight(rollout),
        "routes": [
            {"version": r.number, "weight": r.weight, "shadow": r.shadow}
            for r in current_routes(rollout)
        ],
    }


@app.command("list")
def list_(
    env: Annotated[
        str | None, typer.Option("--env", "-e", help="Only this environment.", metavar="ENV")
    ] = None,
    show_all: Annotated[
        bool, typer.Option("--all", "-a", help="Finished rollouts too (the newest 50).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Rollouts in progress (with --all, finished ones too), newest first."""
    from seaway.rollout.records import list_rollouts

    rollouts = list_rollouts(STATE.project(), environment=env, active_only=not show_all)
    if as_json:
        print_json([_details(r) for r in rollouts])
        return
    if not rollouts:
        where = f" in {env}" if env else ""
        more = "" if show_all else "; --all lists finished ones too"
        line(f"no rollout in progress{where}{more}")
        return
    from rich.markup import escape

    table(
        ["id", "env", "model", "versions", "kind", "phase", "step", "traffic"],
        [
            (
                r.id,
                escape(r.environment),
                escape(r.model),
                f"{r.stable} → {r.candidate}" if r.stable is not None else str(r.candidate),
                r.kind,
                f"[{_PHASE_STYLE[r.phase]}]{r.phase}[/]",
                _step_text(r),
                _routes_text(r),
            )
            for r in rollouts
        ],
    )


def _latest(project: Project, name: str, env: str) -> Rollout:
    from seaway.errors import NotFound
    from seaway.rollout.records import latest_rollout

    rollout = latest_rollout(project, env, name)
    if rollout is None:
        raise NotFound(
            f"no rollout of {name} in {env}",
            hint="`seaway rollout list --all` lists the rollouts; `seaway sync` starts one "
            "when git names a new version",
        )
    return rollout


def _active(project: Project, name: str, env: str) -> Rollout:
    from seaway.errors import UsageError
    from seaway.rollout.records import active_rollout

    rollout = active_rollout(project, env, name)
    if rollout is not None:
        return rollout
    last = _latest(project, name, env)
    raise UsageError(
        f"no rollout of {name} in {env} is in progress: the last one, of {last.ref}, is "
        f"{last.phase}",
        hint=f"seaway rollout show {name} --env {env}",
    )


@app.command("show")
def show(name: NameArg, env: EnvOpt, as_json: JsonOpt = False) -> None:
    """A model's latest rollout in an environment: phase, step, traffic, analyses."""
    rollout = _latest(STATE.project(), name, env)
    if as_json:
        print_json(_details(rollout))
        return
    _print(rollout)


def _print(rollout: Rollout) -> None:
    from rich.markup import escape

    from seaway._util import isoformat
    from seaway.cli.output import console

    out = console()
    stable = f"@{rollout.stable}" if rollout.stable is not None else "nothing"
    out.print(
        f"[bold]{escape(rollout.ref)}[/] in {escape(rollout.environment)} "
        f"(rollout {rollout.id}, {rollout.kind}, from {stable})"
    )
    out.print(f"  phase    [{_PHASE_STYLE[rollout.phase]}]{rollout.phase}[/]")
    if rollout.finished_at is not None:
        out.print(f"  step     {_step_text(rollout)}, ended {isoformat(rollout.finished_at)}")
    else:
        out.print(f"  step     {_step_text(rollout)} since {isoformat(rollout.step_started_at)}")
    out.print(f"  traffic  {_routes_text(rollout)}")
    if rollout.git_revision:
        out.print(f"  git      {rollout.git_revision[:12]}")
    if rollout.message:
        out.print(f"  message  {escape(rollout.message)}")
    if rollout.state.get("last_error"):
        out.print(
            f"  error    {escape(str(rollout.state['last_error']))} "
            f"({rollout.state.get('errors', 0)} in a row)"
        )
    if rollout.state.get("needs_rollback_commit"):
        out.print(
            f"  git      still names @{rollout.candidate}: seaway rollback {rollout.model} "
            f"--env {rollout.environment} --to {rollout.stable} writes the rollback"
        )
    analyses = list(rollout.state.get("analyses") or [])[-5:]
    if not analyses:
        out.print("  no analysis yet")
        return
    rows = []
    for a in analyses:
        checks = "; ".join(_check_text(c) for c in a.get("checks", []))
        if a["outcome"] in ("Inconclusive", "Error"):
            checks = str(a.get("message", ""))
        rows.append(
            (
                str(a.get("at", ""))[11:19],
                int(a.get("step", 0)) + 1,
                f"[{_OUTCOME_STYLE.get(a['outcome'], 'white')}]{a['outcome']}[/]",
                a.get("requests", 0),
                escape(checks or a.get("message", "")),
            )
        )
    table(["at", "step", "outcome", "requests", "checks"], rows, title="latest analyses")


def _check_text(check: dict[str, Any]) -> str:
    value = check.get("value")
    if value is None:
        return f"{check['name']} n/a"
    sign = "≤" if check.get("passed") else ">"
    return f"{check['name']} {value:.4g} {sign} {check['limit']:.4g}"


def _environment(project: Project, env: str) -> EnvironmentSpec:
    from seaway.errors import NotFound
    from seaway.spec.loader import ENV_DIR, environment_files, load_environment

    path = project.root / ENV_DIR / f"{env}.yaml"
    if not path.is_file():
        known = ", ".join(p.stem for p in environment_files(project.root)) or "none"
        raise NotFound(
            f"no environment file {ENV_DIR}/{env}.yaml",
            hint=f"environments: {known}",
        )
    return load_environment(path, root=project.root)


def _apply(project: Project, rollout: Rollout, spec: EnvironmentSpec) -> Apply:
    from seaway.rollout.engine import apply_through

    return apply_through(
        project, rollout.environment, spec, rollout.model, reason={"rollout": rollout.id}
    )


def _done(rollout: Rollout, as_json: bool) -> None:
    if as_json:
        print_json(_details(rollout))
        return
    line(
        f"{rollout.ref} in {rollout.environment}: {rollout.phase}, step {_step_text(rollout)}, "
        f"traffic {_routes_text(rollout)}" + (f" ({rollout.message})" if rollout.message else "")
    )


@app.command("pause")
def pause(name: NameArg, env: EnvOpt, as_json: JsonOpt = False) -> None:
    """Hold a rollout at its current step (traffic stays as it is)."""
    from seaway.rollout.engine import pause as do_pause

    project = STATE.project()
    _done(do_pause(project, _active(project, name, env)), as_json)


@app.command("resume")
def resume(name: NameArg, env: EnvOpt, as_json: JsonOpt = False) -> None:
    """Let a paused rollout progress again."""
    from seaway.rollout.engine import resume as do_resume

    project = STATE.project()
    _done(do_resume(project, _active(project, name, env)), as_json)


@app.command("abort")
def abort(name: NameArg, env: EnvOpt, as_json: JsonOpt = False) -> None:
    """Stop a rollout: all traffic back to the stable version, the candidate removed."""
    from seaway.rollout.engine import abort as do_abort

    project = STATE.project()
    rollout = _active(project, name, env)
    spec = _environment(project, env)
    _done(do_abort(project, rollout, apply=_apply(project, rollout, spec)), as_json)


@app.command("promote")
def promote(
    name: NameArg,
    env: EnvOpt,
    full: Annotated[
        bool, typer.Option("--full", help="Complete the rollout now, skipping the other steps.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Move a rollout on without waiting: the next canary step, or the switch."""
    from seaway.rollout.engine import promote as do_promote

    project = STATE.project()
    rollout = _active(project, name, env)
    spec = _environment(project, env)
    result = do_promote(
        project,
        rollout,
        apply=_apply(project, rollout, spec),
        full=full,
        promote_alias=spec.promote_alias,
    )
    _done(result, as_json)
