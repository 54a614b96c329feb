"""`seaway init` and `seaway demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from seaway.cli.output import console, print_json
from seaway.cli.state import STATE


def register(app: typer.Typer) -> None:
    app.command("init")(init_cmd)
    app.command("demo")(demo_cmd)


def init_cmd(
    directory: Annotated[
        Path | None, typer.Argument(help="Folder (default: the current one).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Project name (default: the folder's).")] = None,
    example: Annotated[
        bool,
        typer.Option("--example", help="Also write the example data (data/customers.parquet)."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Create a seaway project: seaway.yaml, environments/, .seaway/ (git-ignored)."""
    from seaway.init import init_project

    result = init_project(directory or STATE.cwd(), name=name, example_data=example)
    if as_json:
        print_json(result.to_dict())
        return
    out = console()
    out.print(f"initialised a seaway project in {result.root}")
    for item in result.created:
        out.print(f"  created {item}")
    if result.git_initialised:
        out.print("  made it a git repository")
    out.print("next: `seaway validate`, then `seaway data add customers`")


def demo_cmd(
    directory: Annotated[
        Path | None,
        typer.Argument(help="Folder for the demo project (default: a new temporary one)."),
    ] = None,
) -> None:
    """Run the whole loop on the bundled example, with embedded defaults."""
    import tempfile

    from seaway.demo import run_demo

    if directory is None:
        directory = Path(tempfile.mkdtemp(prefix="seaway-demo-")) / "churn"
    out = console()
    result = run_demo(directory, say=lambda line: out.print(line, markup=False))
    out.print(f"demo project left in {result.root}")
    if not result.ok:
        raise typer.Exit(1)
