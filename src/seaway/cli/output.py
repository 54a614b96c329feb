"""Rendering for the CLI: JSON for machines, Rich for people.

Commands with `--json` print exactly one JSON document on stdout and nothing else;
progress and diagnostics go to stderr. Rich is imported only when a human view is drawn.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from seaway.errors import SeawayError

_console: Console | None = None
_err_console: Console | None = None


def console() -> Console:
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(highlight=False, soft_wrap=True)
    return _console


def err_console() -> Console:
    global _err_console
    if _err_console is None:
        from rich.console import Console

        _err_console = Console(stderr=True, highlight=False, soft_wrap=True)
    return _err_console


def line(text: str) -> None:
    """Plain text on stdout, for messages that need no markup (Rich costs ~50 ms to import)."""
    sys.stdout.write(text + "\n")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def print_error(exc: SeawayError) -> None:
    from seaway.errors import SpecError

    lines = [f"error: {exc.message}"]
    if isinstance(exc, SpecError):
        lines.extend(f"  {p}" for p in exc.problems)
    if exc.hint:
        lines.append(f"  hint: {exc.hint}")
    sys.stderr.write("\n".join(lines) + "\n")


def table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str | None = None
) -> None:
    from rich.table import Table

    t = Table(title=title, show_edge=False, header_style="bold", pad_edge=False)
    for col in columns:
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    console().print(t)


def _ignore(_n: int = 1) -> None:
    pass


class Progress:
    """What a long command reports: the amount of work once known, then steps done.

    Both are cheap to call from worker threads; off a terminal they do nothing."""

    def __init__(self) -> None:
        self.set_total: Callable[[int], None] = _ignore
        self.advance: Callable[[int], None] = _ignore


@contextmanager
def progress(description: str) -> Iterator[Progress]:
    """A progress bar on stderr when it is a terminal; silent otherwise."""
    from seaway._util import stderr_is_terminal

    report = Progress()
    if not stderr_is_terminal():
        yield report
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.progress import (
        Progress as RichProgress,
    )

    with RichProgress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console(),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)

        def set_total(total: int) -> None:
            bar.update(task, total=total)

        def advance(n: int = 1) -> None:
            bar.advance(task, n)

        report.set_total, report.advance = set_total, advance
        yield report
