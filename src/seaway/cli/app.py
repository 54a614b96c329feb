"""The Typer application: global options and the command groups.

Each group lives in its own module and imports the library only inside its commands, so
`seaway --help` and fast commands do not pay for SQLAlchemy or pyarrow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from seaway import __version__
from seaway.cli import audit as audit_cli
from seaway.cli import data as data_cli
from seaway.cli import init as init_cli
from seaway.cli import policy as policy_cli
from seaway.cli import run as run_cli
from seaway.cli import runs as runs_cli
from seaway.cli import scan as scan_cli
from seaway.cli import spec as spec_cli
from seaway.cli.state import STATE

app = typer.Typer(
    name="seaway",
    help="GitOps-native continuous delivery for machine-learning models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"seaway {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    directory: Annotated[
        Path | None,
        typer.Option("-C", "--directory", help="Run as if started in DIR.", metavar="DIR"),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("-v", "--verbose", help="Show tracebacks and debug output.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    if directory is not None:
        import os

        from seaway.errors import UsageError

        if not directory.is_dir():
            raise UsageError(f"-C {directory}: no such directory")
        # Like git -C: paths on the command line are then relative to DIR.
        os.chdir(directory)
    STATE.verbose = verbose


init_cli.register(app)
spec_cli.register(app)
run_cli.register(app)
app.add_typer(data_cli.app, name="data", help="Versioned datasets: add, status, diff, check, …")
app.add_typer(audit_cli.app, name="audit", help="The tamper-evident event log: list, verify.")
app.add_typer(runs_cli.app, name="runs", help="Runs: list, show, compare, logs, export.")
scan_cli.register(app)
app.add_typer(policy_cli.app, name="policy", help="Promotion policies (CEL): test, eval.")
