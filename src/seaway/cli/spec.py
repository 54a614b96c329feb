"""`seaway validate` and `seaway schema`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from seaway.cli.state import STATE

if TYPE_CHECKING:
    from seaway.spec.loader import ValidationReport


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
    app.command("schema")(schema)


def validate(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print {valid, problems, warnings} as JSON.")
    ] = False,
) -> None:
    """Check seaway.yaml and environments/*.yaml; exit 1 when something is wrong."""
    from seaway.errors import CheckFailed
    from seaway.spec.loader import inspect_project

    report = inspect_project(STATE.project().root)
    if as_json:
        from seaway.cli.output import print_json

        print_json(report.to_dict())
    else:
        _print_report(report)
    if not report.valid:
        raise CheckFailed(
            f"the spec is not valid: {_count_by_file(report)}",
            hint="fix the problems listed above, then run `seaway validate` again",
        )


def _print_report(report: ValidationReport) -> None:
    # Plain writes, not Rich: paths like `checks[0]` would be read as markup.
    lines = [str(p) for p in report.problems]
    lines += [f"warning: {p}" for p in report.warnings]
    if report.valid:
        envs = len(report.files) - 1
        summary = {0: "no environment files", 1: "1 environment file valid"}.get(
            envs, f"{envs} environment files valid"
        )
        lines.append(f"{report.files[0]}: valid; {summary}")
    if lines:
        sys.stdout.write("\n".join(lines) + "\n")


def _count_by_file(report: ValidationReport) -> str:
    from seaway.spec.problems import plural

    counts: dict[str, int] = {}
    for problem in report.problems:
        counts[problem.file] = counts.get(problem.file, 0) + 1
    detail = ", ".join(f"{file}: {n}" for file, n in counts.items())
    return f"{plural(len(report.problems), 'problem')} ({detail})"


def schema(
    environment: Annotated[
        bool,
        typer.Option("--environment", help="The schema of environments/NAME.yaml instead."),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write to FILE instead of printing.", metavar="FILE"),
    ] = None,
) -> None:
    """Print the JSON Schema of seaway.yaml (or of an environment file) for editors."""
    from seaway.spec import environment_json_schema, project_json_schema

    document = environment_json_schema() if environment else project_json_schema()
    text = json.dumps(document, indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
        return
    target = out if out.is_absolute() else STATE.cwd() / out
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        from seaway.errors import InputError

        raise InputError(
            f"cannot write {out}: {exc.strerror or exc}",
            hint="check that the directory exists and is writable",
        ) from exc
    sys.stderr.write(f"wrote {out}\n")
