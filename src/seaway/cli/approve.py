"""`seaway approve NAME@V --env ENV` and `seaway approvals NAME@V`: thin over
`seaway.policy.approvals`.

`approve` records an approval as the current identity (SEAWAY_TOKEN, else the local user);
a missing permission is exit 1, a bad reference or environment exit 2. Whether the
approval is enough for a promotion is for the policies to say (`seaway policy eval`).
"""

from __future__ import annotations

from typing import Annotated

import typer

from seaway.cli.state import STATE

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON only.")]


def register(app: typer.Typer) -> None:
    app.command("approve")(approve_cmd)
    app.command("approvals")(approvals_cmd)


def approve_cmd(
    ref: Annotated[str, typer.Argument(help="The version: NAME@N or NAME@ALIAS.")],
    env: Annotated[
        str, typer.Option("--env", "-e", help="The environment approved for (prod).", metavar="ENV")
    ],
    comment: Annotated[
        str, typer.Option("--comment", "-m", help="What you checked, for the record.")
    ] = "",
    role: Annotated[
        str | None,
        typer.Option("--role", help="The role you approve in, when you hold several."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Approve a model version for an environment."""
    from seaway.cli.output import line, print_json
    from seaway.policy.approvals import approve

    record = approve(STATE.project(), ref, env, comment=comment, role=role)
    if as_json:
        print_json(record.to_dict())
        return
    line(f"{record.actor} approved {record.ref} for {record.environment} as {record.role}")


def approvals_cmd(
    ref: Annotated[str, typer.Argument(help="The version: NAME@N or NAME@ALIAS.")],
    env: Annotated[
        str | None, typer.Option("--env", "-e", help="Only this environment.", metavar="ENV")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the approvals of a model version."""
    from rich.markup import escape

    from seaway._util import isoformat
    from seaway.cli.output import line, print_json, table
    from seaway.policy.approvals import list_approvals

    records = list_approvals(STATE.project(), ref, env)
    if as_json:
        print_json([r.to_dict() for r in records])
        return
    if not records:
        where = f" for {env}" if env else ""
        line(f"{ref} has no approvals{where} (seaway approve {ref} --env ENV)")
        return
    rows = [
        (
            escape(r.environment),
            escape(r.actor),
            escape(r.role),
            (isoformat(r.created_at) or "")[:16].replace("T", " "),
            escape(r.comment),
        )
        for r in records
    ]
    table(["env", "actor", "role", "at", "comment"], rows, title=escape(records[0].ref))
