"""`seaway audit`: list events, verify the chain, print its head."""

from __future__ import annotations

from typing import Annotated

import typer

from seaway.cli.output import line, print_json, table
from seaway.cli.state import STATE

app = typer.Typer(no_args_is_help=False, invoke_without_command=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON only.")]


@app.callback()
def list_cmd(
    ctx: typer.Context,
    kind: Annotated[str | None, typer.Option(help="Event kind or prefix (dataset.).")] = None,
    actor: Annotated[str | None, typer.Option(help="Who acted.")] = None,
    model: Annotated[str | None, typer.Option(help="Events about this model.")] = None,
    subject: Annotated[str | None, typer.Option(help="Subject or prefix (dataset:x).")] = None,
    since: Annotated[str | None, typer.Option(help="ISO time, or a duration: 12h, 7d.")] = None,
    limit: Annotated[int, typer.Option("-n", "--limit", help="At most N (0: all).")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """List events, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    from seaway._util import isoformat
    from seaway.audit.log import list_events, parse_since

    found = list_events(
        STATE.project(),
        kind=kind,
        actor=actor,
        subject=subject,
        model=model,
        since=parse_since(since) if since else None,
        limit=limit or None,
    )
    if as_json:
        print_json({"events": [e.to_dict() for e in found]})
        return
    if not found:
        line("no events")
        return
    rows = [
        (e.seq, (isoformat(e.ts) or "")[:19].replace("T", " "), e.kind, e.subject, e.actor)
        for e in found
    ]
    table(["#", "time", "kind", "subject", "actor"], rows)


@app.command("verify")
def verify_cmd(
    head: Annotated[
        str | None, typer.Option(help="A head hash recorded earlier (`seaway audit head`).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-walk the hash chain; exit 1 at the first edited, deleted or inserted event."""
    from seaway.audit.verify import verify_chain

    report = verify_chain(STATE.project(), expected_head=head)
    if as_json:
        print_json(report.to_dict())
    elif report.ok:
        line(f"audit log intact: {report.events} events, head {report.head}")
    else:
        assert report.problem is not None
        line(f"audit log broken: {report.problem.detail}")
    if not report.ok:
        raise typer.Exit(1)


@app.command("head")
def head_cmd(as_json: JsonOpt = False) -> None:
    """Print the hash of the newest event, to keep elsewhere and check with verify --head."""
    from seaway.audit.verify import verify_chain

    report = verify_chain(STATE.project())
    if as_json:
        print_json({"events": report.events, "head": report.head})
    else:
        line(report.head)
