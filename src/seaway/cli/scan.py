"""`seaway scan PATH`: a thin command over `seaway.registry.scan`.

Exit codes follow the project's rule: 0 when every file is safe, 1 when one is suspicious,
dangerous or cannot be read as its format (the check failed), 2 when PATH does not exist.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from seaway.registry.scan import FileFinding


def register(app: typer.Typer) -> None:
    app.command("scan")(scan)


def scan(
    path: Annotated[Path, typer.Argument(help="A model file or a folder of them.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Look for code that would run when a model file is loaded; exit 1 unless all is safe."""
    from seaway.cli.output import print_json, table
    from seaway.registry.scan import scan_path

    report = scan_path(path)
    if as_json:
        print_json(report.to_dict())
    else:
        from rich.markup import escape

        # Cells are Rich markup: a file called `model[1].pkl` must not read as a style.
        rows = [
            (f.verdict.value.upper(), escape(f.file), escape(_format(f)), escape(_detail(f)))
            for f in report.findings
        ]
        counts = ", ".join(f"{n} {v}" for v, n in report.counts().items() if n)
        title = escape(f"{report.path}: {report.verdict.value} ({counts or 'no files'})")
        table(["verdict", "file", "format", "why"], rows, title=title)
    if not report.safe:
        raise typer.Exit(1)


def _format(finding: FileFinding) -> str:
    if finding.compression:
        return f"{finding.format} ({finding.compression})"
    return finding.format


def _detail(finding: FileFinding) -> str:
    text = finding.reason
    located = [g for g in finding.globals if g.verdict.value == "dangerous" and g.offsets]
    if located:
        where = ", ".join(
            f"{g.qualname} at {(g.member + ' ') if g.member else ''}offset {g.offsets[0]}"
            for g in located[:3]
        )
        text += f" ({where})"
    return text
