"""`seaway sync`, `seaway status`, `seaway controller`: thin commands over
`seaway.gitops.reconcile` and `seaway.gitops.controller`.

Exit codes: 0 done (or, for `sync --dry-run`, nothing to do); 1 when a sync left problems
or failed actions, or `status` finds something Degraded or OutOfSync with `--check`; 2 bad
usage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from seaway.cli.output import line, print_json, table
from seaway.cli.state import STATE

if TYPE_CHECKING:
    from seaway.gitops.reconcile import EnvironmentStatus, SyncResult

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON only.")]
EnvOpt = Annotated[
    str | None, typer.Option("--env", "-e", help="Only this environment (default: all).")
]
RevisionOpt = Annotated[
    str | None,
    typer.Option("--revision", help="Git revision to read (default: HEAD of the current branch)."),
]
SourceOpt = Annotated[
    str | None,
    typer.Option("--source", help="A git URL to read environments from instead of this repo."),
]


def register(app: typer.Typer) -> None:
    app.command("sync")(sync)
    app.command("status")(status)
    app.command("controller")(controller)


def sync(
    env: EnvOpt = None,
    revision: RevisionOpt = None,
    source: SourceOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; change nothing.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Make live state match the environment files in git; advance rollouts in flight."""
    from seaway.gitops.reconcile import sync as do_sync

    result = do_sync(
        STATE.project(), environment=env, revision=revision, source=source, dry_run=dry_run
    )
    if as_json:
        print_json({**result.to_dict(), "dry_run": dry_run})
    else:
        _print_sync(result, dry_run)
    if result.plan.problems or result.failed:
        raise typer.Exit(1)


def _print_sync(result: SyncResult, dry_run: bool) -> None:
    line(result.plan.render())
    if dry_run:
        return
    for action, error in result.failed:
        line(f"[red]failed[/red] {action.environment}/{action.model} {action.kind}: {error}")
    for r in result.rollouts:
        line(
            f"rollout {r.environment}/{r.ref}: {r.phase}, step {r.step}"
            + (f" ({r.message})" if r.message else "")
        )
    for sha in result.rollback_commits:
        line(f"rollback committed: {sha[:12]}")


def status(
    env: EnvOpt = None,
    revision: RevisionOpt = None,
    source: SourceOpt = None,
    check: Annotated[
        bool,
        typer.Option("--check", help="Exit 1 unless every deployment is Synced or Progressing."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Per environment and model: desired and live version, split, rollout, sync status."""
    from seaway.gitops.reconcile import status as do_status

    rows = do_status(STATE.project(), environment=env, revision=revision, source=source)
    if as_json:
        print_json([r.to_dict() for r in rows])
    else:
        _print_status(rows)
    if check and any(r.sync in ("OutOfSync", "Degraded") for r in rows):
        raise typer.Exit(1)


def _split(row: EnvironmentStatus) -> str:
    parts = [f"@{n} {w:g}%" for n, w in sorted(row.live.items())]
    parts += [f"@{n} shadow {s:g}%" for n, s in sorted(row.shadows.items())]
    return ", ".join(parts) or "-"


def _print_status(rows: list[EnvironmentStatus]) -> None:
    if not rows:
        line("nothing deployed: environments/*.yaml name no deployments")
        return
    colour = {"Synced": "green", "Progressing": "yellow", "OutOfSync": "yellow", "Degraded": "red"}
    table(
        ["environment", "model", "desired", "live", "sync", "health", "rollout"],
        [
            [
                r.environment,
                r.model,
                f"@{r.desired}" if r.desired is not None else "-",
                _split(r),
                f"[{colour.get(r.sync, 'white')}]{r.sync}[/]",
                r.health,
                r.message,
            ]
            for r in rows
        ],
    )


def controller(
    env: EnvOpt = None,
    source: SourceOpt = None,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between polls of git.")
    ] = 30.0,
    rollout_interval: Annotated[
        float,
        typer.Option("--rollout-interval", help="Seconds between loops while rollouts run."),
    ] = 2.0,
    webhook_port: Annotated[
        int | None,
        typer.Option("--webhook-port", help="Listen for push webhooks on 127.0.0.1:PORT."),
    ] = None,
    webhook_host: Annotated[
        str, typer.Option("--webhook-host", help="Interface of the webhook server.")
    ] = "127.0.0.1",
    webhook_secret: Annotated[
        str | None,
        typer.Option(
            "--webhook-secret",
            envvar="SEAWAY_WEBHOOK_SECRET",
            help="Shared secret of the webhook (GitHub signature or GitLab token).",
        ),
    ] = None,
) -> None:
    """Reconcile in a loop: poll git, accept push webhooks, advance rollouts."""
    import contextlib
    import logging
    import signal

    from seaway.gitops.controller import Controller, serve_webhook

    def report(result: SyncResult) -> None:
        if result.plan.actions or result.failed or result.rollouts:
            _print_sync(result, dry_run=False)

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    ctl = Controller(
        STATE.project(),
        environment=env,
        source=source,
        interval_s=interval,
        rollout_interval_s=rollout_interval,
        on_sync=report,
    )
    signal.signal(signal.SIGTERM, lambda *_: ctl.stop())
    hook = (
        serve_webhook(ctl, webhook_port, host=webhook_host, secret=webhook_secret)
        if webhook_port is not None
        else contextlib.nullcontext()
    )
    with hook:
        line(
            "controller running"
            + (f"; webhook on http://{webhook_host}:{webhook_port}/webhook" if webhook_port else "")
        )
        try:
            ctl.run()
        except KeyboardInterrupt:
            ctl.stop()
