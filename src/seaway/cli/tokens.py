"""`seaway tokens …`: create, list and revoke API tokens; thin over `seaway.policy.tokens`.

`create` prints the secret once, on stdout (with `--json`, as the `secret` field), and a
warning on stderr that it cannot be shown again. Creating and revoking need the `admin`
action (see `seaway.policy.identity` for how the first token is made).
"""

from __future__ import annotations

from typing import Annotated

import typer

from seaway.cli.state import STATE

app = typer.Typer(no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON only.")]


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="tokens", help="API tokens and the roles they carry.")


@app.command("create")
def create_cmd(
    name: Annotated[str, typer.Argument(help="Who the token stands for (bob, ci).")],
    role: Annotated[
        list[str] | None,
        typer.Option(
            "--role", "-r", help="A role from seaway.yaml (repeat for more).", metavar="ROLE"
        ),
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option(
            "--expires", help="Lifetime such as 30d or 12h (default: none).", metavar="DURATION"
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a token and print its secret, once."""
    import sys

    from seaway._util import isoformat
    from seaway.cli.output import line, print_json
    from seaway.policy.tokens import create_token, parse_lifetime

    project = STATE.project()
    lifetime = parse_lifetime(expires) if expires is not None else None
    info, secret = create_token(project, name, list(role or []), expires=lifetime)
    if as_json:
        print_json({**info.to_dict(), "secret": secret})
    else:
        until = f", expires {isoformat(info.expires_at)}" if info.expires_at else ""
        line(f"created token {info.name} (roles: {', '.join(info.roles)}{until})")
        line(secret)
    sys.stderr.write(
        "warning: this is the only time the secret is shown; store it now "
        "(use it as SEAWAY_TOKEN)\n"
    )


@app.command("list")
def list_cmd(as_json: JsonOpt = False) -> None:
    """List tokens (never their secrets)."""
    from datetime import datetime

    from rich.markup import escape

    from seaway._util import isoformat
    from seaway.cli.output import line, print_json, table
    from seaway.policy.tokens import list_tokens

    tokens = list_tokens(STATE.project())
    if as_json:
        print_json([t.to_dict() for t in tokens])
        return
    if not tokens:
        line("no tokens (create one with `seaway tokens create NAME --role ROLE`)")
        return

    def when(ts: datetime | None) -> str:
        return (isoformat(ts) or "")[:16].replace("T", " ")

    rows = [
        (
            escape(t.name),
            escape(", ".join(t.roles)),
            t.status(),
            when(t.created_at),
            escape(t.created_by),
            when(t.expires_at) or "never",
            when(t.last_used_at) or "never",
        )
        for t in tokens
    ]
    table(["name", "roles", "status", "created", "by", "expires", "last used"], rows)


@app.command("revoke")
def revoke_cmd(name: Annotated[str, typer.Argument(help="The token's name.")]) -> None:
    """Revoke a token; it stops working at once."""
    from seaway.cli.output import line
    from seaway.policy.tokens import revoke_token

    info = revoke_token(STATE.project(), name)
    line(f"revoked token {info.name} (roles: {', '.join(info.roles)})")
