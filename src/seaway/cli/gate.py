"""`seaway gate NAME@V`: run a version's gates; a thin command over `seaway.gates`.

Exit codes: 0 when every required gate passed, 1 when one did not (failed, inconclusive or
could not measure), 2 for bad input (an unknown model or version, a model without gates).
The report is stored with the version either way; `--json` prints it as stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from seaway.cli.state import STATE

if TYPE_CHECKING:
    from seaway.gates import GateReport, GateResult

_STYLE = {"passed": "green", "failed": "red", "inconclusive": "yellow", "error": "magenta"}


def register(app: typer.Typer) -> None:
    app.command("gate")(gate)


def gate(
    ref: Annotated[
        str,
        typer.Argument(help="The version: NAME@N, NAME@ALIAS or NAME (newest).", metavar="NAME@V"),
    ],
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            help="Run only the gates of this kind (metric, drift, latency, …); repeat for more. "
            "A partial report is stored but does not count as the version's gate report.",
            metavar="KIND",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Run a model version's gates, store the report; exit 1 if a required gate did not pass."""
    from seaway.cli.output import print_json
    from seaway.gates import run_gates

    project = STATE.project()
    report = run_gates(project, ref, only=only or None)
    if as_json:
        print_json(report.to_dict())
    else:
        _print(report)
    if not report.passed:
        raise typer.Exit(1)


def _print(report: GateReport) -> None:
    from rich.markup import escape

    from seaway.cli.output import console, table

    rows = [
        (
            escape(r.name),
            f"[{_STYLE[r.status.value]}]{r.status.value.upper()}[/]",
            "yes" if r.required else "no",
            escape(key_figures(r)),
            escape(r.message),
        )
        for r in report.results
    ]
    counts = ", ".join(f"{n} {s}" for s, n in report.counts().items() if n)
    verdict = "passed" if report.passed else "blocked"
    title = escape(f"{report.ref}: {verdict} ({counts}) in {report.duration_s:.2f} s")
    table(["gate", "status", "required", "figures", "message"], rows, title=title)
    out = console()
    for r in report.results:
        if r.hint and not r.passed:
            out.print(f"  hint ({escape(r.name)}): {escape(r.hint)}")
    if report.partial:
        out.print(
            "  partial run (--only): promotion still reads the latest report of all the gates"
        )


def _num(value: Any, digits: int = 4) -> str:
    if isinstance(value, int | float) and value == value:
        return f"{value:.{digits}g}"
    return "n/a"


def key_figures(result: GateResult) -> str:
    """The few figures a person reads first, by kind of gate."""
    f = result.figures
    kind = result.kind
    if kind == "metric" and "value" in f:
        return f"{f['metric']}={_num(f['value'])}"
    if kind == "no_regression" and "candidate" in f:
        if "reference" in f:
            return (
                f"{_num(f['candidate'])} vs {_num(f['reference'])} "
                f"(v{f.get('reference_version')}, {f['change']:+.3g})"
            )
        return f"{f['metric']}={_num(f['candidate'])}"
    if kind == "drift" and "columns" in f:
        return f"{len(f.get('drifted', []))}/{f['columns']} columns drifted"
    if kind == "robustness":
        parts = []
        if "flip_rate" in f:
            parts.append(f"flips {100 * f['flip_rate']:.2f}%")
        if "drop" in f:
            parts.append(f"{f.get('metric')} drop {_num(f['drop'], 3)}")
        return ", ".join(parts)
    if kind == "fairness" and "gap" in f:
        return f"gap {_num(f['gap'], 3)} over {len(f.get('slices', {}))} slices"
    if kind == "latency" and "p99_ms" in f:
        return f"p50 {f['p50_ms']:.2f} ms, p99 {f['p99_ms']:.2f} ms"
    if kind == "scan" and "verdict" in f:
        return str(f["verdict"])
    if kind == "signature" and f.get("signed"):
        return "trusted key" if f.get("trusted") else "stored key only"
    return ""
