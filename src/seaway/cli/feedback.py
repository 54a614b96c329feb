"""`seaway feedback FILE`: post true labels for logged predictions; a thin command over
`seaway.monitor.feedback`.

FILE holds one item per line (`{"id": "req-1", "label": 1}`, or `"key"` for the request's
routing key and `"labels"` for a request of several rows), one JSON document (a list of
items, or `{"model": NAME, "feedback": [...]}`), or a CSV table with a column `id` or `key`
and a column `label`; `-` reads standard input. Labels are stored against the logged
requests they name, straight in the project's store, the same way `POST /v1/feedback`
stores them on a gateway.

Exit codes: 0 every item was stored (or had been already), 1 some named no logged request
or were rejected (the counts and reasons are printed), 2 bad input (an unreadable file, a
malformed item, an unknown model).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from seaway.cli.state import STATE

if TYPE_CHECKING:
    from seaway.monitor.feedback import FeedbackResult

_SHOWN = 10


def register(app: typer.Typer) -> None:
    app.command("feedback")(feedback)


def _read(file: str) -> str:
    from seaway.errors import InputError

    if file == "-":
        return sys.stdin.read()
    path = Path(file)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"no file {file}", hint="name a .jsonl, .json or .csv file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {file}: {exc}") from None


def feedback(
    file: Annotated[
        str,
        typer.Argument(
            help="Items as JSON lines, a JSON document, or CSV (id|key,label); - for stdin.",
            metavar="FILE",
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Match only this model's requests.", metavar="NAME"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Store true labels for logged predictions; exit 1 if some were unknown or rejected."""
    from seaway.cli.output import print_json
    from seaway.errors import UsageError
    from seaway.monitor.feedback import MAX_ITEMS, FeedbackResult, read_feedback, record_feedback
    from seaway.policy.identity import current_identity

    named, items = read_feedback(_read(file), file)
    if model is not None and named is not None and model != named:
        raise UsageError(
            f"--model {model} differs from the file's model {named}",
            hint="leave out --model, or fix the file's `model`",
        )
    model = model or named
    project = STATE.project()
    actor = current_identity(project).name
    result = FeedbackResult()
    # One transaction per part keeps a large file from holding the store's write lock long.
    for start in range(0, len(items), MAX_ITEMS):
        part = record_feedback(project, items[start : start + MAX_ITEMS], model=model, actor=actor)
        result.merge(part, start)
    if as_json:
        print_json(result.to_dict())
    else:
        _print(result, len(items))
    if not result.ok:
        raise typer.Exit(1)


def _print(result: FeedbackResult, total: int) -> None:
    from seaway.cli.output import line

    line(
        f"{total} items: {result.accepted} accepted ({result.rows} labelled answers), "
        f"{result.duplicates} already known, {result.unknown_count} unknown, "
        f"{result.rejected_count} rejected"
    )
    if result.unknown:
        shown = ", ".join(result.unknown[:_SHOWN])
        more = result.unknown_count - min(_SHOWN, len(result.unknown))
        line(f"  unknown: {shown}" + (f" and {more} more" if more > 0 else ""))
        line(
            "  hint: only logged requests can be labelled; the gateway logs a sample "
            "(seaway serve --sample-rate)"
        )
    for r in result.rejected[:_SHOWN]:
        line(f"  feedback[{r['index']}]: {r['reason']}")
    if result.rejected_count > _SHOWN:
        line(f"  and {result.rejected_count - _SHOWN} more rejected")
