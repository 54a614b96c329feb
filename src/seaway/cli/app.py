"""The Typer application: global options and the command groups.

Each group lives in its own module and imports the library only inside its commands, so
`seaway --help` and fast commands do not pay for SQLAlchemy or pyarrow. `app_for(args)`
goes one step further: when the command is known from the arguments (`seaway run train`),
it builds an application holding only that command's module. Building every command's
click objects costs more than a fully cached `seaway run` does itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from seaway import __version__
from seaway.cli.state import STATE

_SETTINGS: dict[str, Any] = {
    "name": "seaway",
    "help": "GitOps-native continuous delivery for machine-learning models.",
    "no_args_is_help": True,
    "pretty_exceptions_enable": False,
    "add_completion": False,
    "context_settings": {"help_option_names": ["-h", "--help"]},
}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"seaway {__version__}")
        raise typer.Exit()


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


def _group(module: str, name: str, help: str) -> Callable[[typer.Typer], None]:
    def attach(root: typer.Typer) -> None:
        root.add_typer(importlib.import_module(f"seaway.cli.{module}").app, name=name, help=help)

    return attach


def _commands(module: str) -> Callable[[typer.Typer], None]:
    def attach(root: typer.Typer) -> None:
        importlib.import_module(f"seaway.cli.{module}").register(root)

    return attach


# Top-level command -> what attaches it, in the order `seaway --help` lists them. A module
# that defines several commands attaches them all.
_ATTACH: dict[str, Callable[[typer.Typer], None]] = {}
for _module, _names in (
    ("init", ("init", "demo")),
    ("spec", ("validate", "schema")),
    ("run", ("run",)),
    ("scan", ("scan",)),
    ("models", ("register", "models")),
    ("keys", ("keys", "sign", "verify")),
    ("gate", ("gate",)),
    ("approve", ("approve", "approvals")),
    ("tokens", ("tokens",)),
    ("serve", ("serve", "deploy", "undeploy", "deployments")),
    ("promote", ("promote", "rollback")),
    ("gitops", ("sync", "status", "controller")),
    ("metrics", ("metrics",)),
    ("feedback", ("feedback",)),
):
    _attach = _commands(_module)
    for _name in _names:
        _ATTACH[_name] = _attach
_ATTACH["data"] = _group("data", "data", "Versioned datasets: add, status, diff, check, …")
_ATTACH["audit"] = _group("audit", "audit", "The tamper-evident event log: list, verify.")
_ATTACH["runs"] = _group("runs", "runs", "Runs: list, show, compare, logs, export.")
_ATTACH["policy"] = _group("policy", "policy", "Promotion policies (CEL): test, eval.")
_ATTACH["rollout"] = _group(
    "rollout", "rollout", "Rollouts in progress: list, show, pause, resume, abort, promote."
)

_ATTACH["monitor"] = _group(
    "monitor", "monitor", "Live drift and quality: status, report, check, run."
)

# Global options that take a value, to find the command name after them.
_VALUED_OPTIONS = frozenset({"-C", "--directory"})


def build(command: str | None = None) -> typer.Typer:
    """The application with every command, or only with `command`'s module."""
    root = typer.Typer(**_SETTINGS)
    root.callback()(_root)
    attached: list[Callable[[typer.Typer], None]] = []
    for name, attach in _ATTACH.items():
        if (command is None or name == command) and attach not in attached:
            attach(root)
            attached.append(attach)
    return root


def command_of(args: list[str]) -> str | None:
    """The command `args` name, when it is one of seaway's; None for help or anything odd."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in _VALUED_OPTIONS:
            i += 2
            continue
        if arg.startswith("-"):
            if arg in ("-h", "--help", "-V", "--version"):
                return None
            i += 1
            continue
        return arg if arg in _ATTACH else None
    return None


def app_for(args: list[str]) -> typer.Typer:
    return build(command_of(args))


def __getattr__(name: str) -> typer.Typer:
    # `seaway.cli.app.app`: the whole application, built on first use.
    if name == "app":
        full = build()
        globals()["app"] = full
        return full
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
