"""`seaway promote NAME@V --to ENV` and `seaway rollback NAME --env ENV`: thin over
`seaway.gitops.promote`.

Both write a git commit to `environments/ENV.yaml` (or a review branch with `--branch`);
neither touches what is serving: the reconciler does that from git. Exit codes: 0 written
(or already so), 1 a check refused the version (each failing rule is named, with what to
run), 2 bad input (an unknown version or environment, a dirty file, a detached HEAD).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from seaway.cli.state import STATE

if TYPE_CHECKING:
    from seaway.gitops.promote import PromotionRefused, PromotionResult

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON only.")]
BranchOpt = Annotated[
    bool,
    typer.Option(
        "--branch",
        help="Commit on a new branch for review instead of the current one; the working "
        "tree and the current branch stay as they are.",
    ),
]


def register(app: typer.Typer) -> None:
    app.command("promote")(promote_cmd)
    app.command("rollback")(rollback_cmd)


def promote_cmd(
    ref: Annotated[
        str,
        typer.Argument(help="The version: NAME@N or NAME@ALIAS.", metavar="NAME@V"),
    ],
    to: Annotated[str, typer.Option("--to", "-t", help="The environment (prod).", metavar="ENV")],
    branch: BranchOpt = False,
    message: Annotated[
        str | None,
        typer.Option("--message", "-m", help="A note for the commit message.", metavar="M"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Promote a model version to an environment: checks, then a git commit."""
    from seaway.gitops.promote import PromotionRefused, promote

    project = STATE.project()
    try:
        result = promote(project, ref, to, branch=branch, message=message)
    except PromotionRefused as refused:
        _refused(refused, as_json)
        raise typer.Exit(1) from None
    finally:
        project.close()
    _show(result, "promoted", as_json)


def rollback_cmd(
    model: Annotated[str, typer.Argument(help="The model.", metavar="NAME")],
    env: Annotated[str, typer.Option("--env", "-e", help="The environment (prod).", metavar="ENV")],
    to: Annotated[
        int | None,
        typer.Option(
            "--to", help="The version to go back to (default: the one before).", metavar="N"
        ),
    ] = None,
    branch: BranchOpt = False,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why, for the commit message and the log.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Roll a model back to its previous version in an environment, as a git commit."""
    from seaway.gitops.promote import rollback

    project = STATE.project()
    try:
        result = rollback(project, model, env, to=to, branch=branch, reason=reason)
    finally:
        project.close()
    _show(result, "rolled back", as_json)


def _show(result: PromotionResult, verb: str, as_json: bool) -> None:
    from rich.markup import escape

    from seaway.cli.output import console, print_json
    from seaway.gitops.git import short

    if as_json:
        print_json(result.to_dict())
        return
    out = console()
    if result.unchanged:
        out.print(
            f"{escape(result.ref)} is already the version in {escape(result.path)}: "
            "nothing to commit"
        )
        return
    was = f"@{result.previous}" if result.previous is not None else "(not deployed)"
    out.print(
        f"{verb} [bold]{escape(result.model)}[/] in [bold]{escape(result.environment)}[/]: "
        f"{was} -> [green]@{result.number}[/]"
    )
    where = f"new branch {escape(result.branch)}" if result.new_branch else escape(result.branch)
    out.print(f"  commit [bold]{short(result.commit)}[/] on {where} ({escape(result.path)})")
    if result.new_branch:
        out.print(
            "  your working tree and current branch are untouched; merge the branch "
            "(or open a pull request) to deploy it"
        )
    else:
        out.print(
            f"  the controller applies it on its next poll, or run "
            f"`seaway sync --env {escape(result.environment)}`"
        )


def _refused(refused: PromotionRefused, as_json: bool) -> None:
    from rich.markup import escape

    from seaway.cli.output import err_console, print_json

    if as_json:
        print_json(refused.to_dict())
        return
    out = err_console()
    out.print(
        f"[red]refused[/]: {escape(refused.ref)} cannot go to {escape(refused.environment)}; "
        "nothing was written"
    )
    for failure in refused.failures:
        out.print(f"  [bold]{escape(failure.rule)}[/]: {escape(failure.message)}")
        out.print(f"    hint: {escape(failure.hint)}")
