"""`seaway monitor status|check|reference|report|run|triggers|alerts`: live drift for people;
a thin layer over `seaway.monitor`.

`status` shows the newest drift window of each served version (or why there is none yet),
`check` scores the windows completed since the last check, `reference` rebuilds a version's
training-data profile, `report` writes an HTML report, `run` keeps scoring and firing
triggers, `triggers` lists what fired and `alerts` the webhook deliveries. Exit codes: 0
done, 1 `check` found a breached window, 2 bad usage or input.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from seaway.cli.output import line, print_json, table
from seaway.cli.state import STATE

if TYPE_CHECKING:
    from seaway.monitor.drift import DriftStatus, VersionDrift
    from seaway.monitor.windows import MonitorWindow

app = typer.Typer(no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON only.")]
NameArg = Annotated[str, typer.Argument(help="The model.", metavar="NAME")]


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if abs(value) >= 10**-digits or value == 0 else f"{value:.1e}"


def _p(value: Any) -> str:
    return "-" if value is None else f"{value:.2g}"


def _window_title(model: str, window: MonitorWindow) -> str:
    from rich.markup import escape

    verdict = "[red]breached[/]" if window.breached else "[green]ok[/]"
    score = _num(window.score)
    return (
        f"{escape(model)}@{window.number} window #{window.id}: {window.rows} rows, "
        f"{window.window_start:%Y-%m-%d %H:%M:%S} → {window.window_end:%H:%M:%S} UTC, "
        f"largest PSI {score} ({verdict})"
    )


def _columns_table(model: str, version: VersionDrift, threshold: float) -> None:
    from rich.markup import escape

    assert version.window is not None
    rows = []
    for col in version.columns():
        name = escape(col["name"])
        if col["role"] == "prediction":
            name = f"[dim]output[/] {name}"
        psi = _num(col["psi"])
        if col["psi"] is not None and col["psi"] > threshold:
            psi = f"[red]{psi}[/]"
        rows.append(
            (
                name,
                col["kind"],
                psi,
                _num(col["ks"]),
                _num(col["js"]),
                _p(col["chi2_p"]),
                "[red]yes[/]" if col["drifted"] else "[green]no[/]",
            )
        )
    table(
        ["feature", "kind", "PSI", "KS", "JS", "chi² p", "drifted"],
        rows,
        title=_window_title(model, version.window),
    )


def _print_status(status: DriftStatus) -> None:
    from rich.markup import escape

    from seaway.cli.output import console

    where = f" in {status.environment}" if status.environment else ""
    line(f"drift of {status.model}{where}: a column drifts when its PSI > {status.threshold:g}")
    if not status.versions:
        line(f"no version of {status.model} is served")
        return
    for version in status.versions:
        line("")
        if version.window is None:
            why = escape(version.reason or "")
            console().print(f"{escape(status.model)}@{version.number}: no window yet: {why}")
            continue
        _columns_table(status.model, version, status.threshold)
        if version.pending_requests:
            line(f"  {version.pending_requests} logged requests since, not scored yet")


@app.command("status")
def status(
    name: NameArg,
    env: Annotated[
        str | None,
        typer.Option("--env", "-e", help="The version(s) this environment deploys.", metavar="ENV"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The newest drift window of each served version: PSI, KS, JS and chi² per feature."""
    from seaway.monitor.drift import drift_status

    result = drift_status(STATE.project(), name, environment=env)
    if as_json:
        print_json(result.to_dict())
        return
    _print_status(result)


@app.command("check")
def check(name: NameArg, as_json: JsonOpt = False) -> None:
    """Score the windows completed since the last check; exit 1 when one breached."""
    from seaway.monitor.drift import score_drift
    from seaway.registry import get_version

    project = STATE.project()
    get_version(project, name)  # an unknown model is a mistake here, not "nothing to do"
    windows = score_drift(project, name)
    breached = [w for w in windows if w.breached]
    if as_json:
        print_json({"model": name, "windows": [w.to_dict() for w in windows]})
    elif not windows:
        line(f"no new complete window of {name} to score")
    else:
        from seaway.cli.output import console

        for w in windows:
            drifted = ", ".join(w.drifted) or "nothing"
            console().print(f"{_window_title(name, w)}; drifted: {drifted}")
    if breached:
        raise typer.Exit(1)


@app.command("reference")
def reference(
    ref: Annotated[str, typer.Argument(help="The version (NAME@N).", metavar="NAME@N")],
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Training data as a Parquet or CSV file (default: the version's lineage).",
            metavar="FILE",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Build (again) the reference profile live traffic is compared with."""
    from seaway.monitor.reference import build_reference

    project = STATE.project()
    table_data = None
    source = None
    if data is not None:
        from seaway.errors import InputError
        from seaway.gates.data import read_file

        if not data.is_file():
            raise InputError(f"{data}: no such file", hint="give a Parquet or CSV file")
        table_data = read_file(data)
        source = str(data)
    profile = build_reference(project, ref, table_data, source=source)
    if as_json:
        print_json(profile.to_dict())
        return
    preds = ", ".join(profile.predictions.columns) if profile.predictions else "none"
    line(
        f"{profile.ref}: profiled {profile.rows} rows of {profile.source or 'the given data'}; "
        f"features {', '.join(profile.features.columns)}; predictions {preds}"
    )


@app.command("report")
def report(
    name: NameArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write.")],
    version: Annotated[
        int | None, typer.Option("--version", help="Only this version (default: all).")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only windows from this long ago (1d, 12h).")
    ] = None,
    top: Annotated[int, typer.Option("--top", help="Features shown in detail.", min=1)] = 5,
) -> None:
    """Write an HTML report of the drift windows: scores over time, the most drifted features."""
    from datetime import timedelta

    from seaway._util import utcnow
    from seaway.errors import UsageError
    from seaway.monitor.report import render_report

    start = None
    if since is not None:
        from seaway.spec.types import Duration

        try:
            span = Duration.parse(since)
        except ValueError as exc:
            raise UsageError(
                f"--since {since!r} is not a duration", hint="write it like 30m, 12h or 1d"
            ) from exc
        start = utcnow() - timedelta(seconds=span.seconds)
    path = render_report(STATE.project(), name, out, number=version, since=start, top=top)
    line(f"wrote {path}")


@app.command("run")
def run(
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between passes.", min=0.1)
    ] = 10.0,
    no_alerts: Annotated[
        bool, typer.Option("--no-alerts", help="Do not send webhook alerts.")
    ] = False,
    no_triggers: Annotated[
        bool, typer.Option("--no-triggers", help="Score windows only; start no retraining.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Score drift and quality windows, finish and fire retraining triggers, send alerts;
    every --interval seconds until interrupted (or --once)."""
    import signal
    import threading

    from seaway.cli.output import console
    from seaway.monitor.loop import TickResult, run_monitor

    project = STATE.project()
    stop = threading.Event()
    failed = False

    def report(result: TickResult) -> None:
        nonlocal failed
        failed = failed or bool(result.errors)
        if as_json:
            print_json(result.to_dict())
            return
        for w in result.drift + result.quality:
            extra = f"; drifted: {', '.join(w.drifted)}" if w.kind == "drift" and w.breached else ""
            console().print(f"{_window_title(w.model, w)}{extra}")
        for t in result.fired + result.finished:
            line(f"trigger #{t.id} of {t.model}: {t.status} — {t.message}")
        for error in result.errors:
            line(f"error: {error}")

    if not once:
        line(
            f"monitoring {', '.join(sorted(project.spec.monitoring)) or 'nothing'} every "
            f"{interval:g}s; Ctrl-C stops"
        )
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        run_monitor(
            project,
            interval_s=interval,
            once=once,
            alerts=not no_alerts,
            fire=not no_triggers,
            stop=stop,
            on_tick=report,
        )
    except KeyboardInterrupt:
        stop.set()
    if once and failed:
        raise typer.Exit(1)


@app.command("triggers")
def triggers(
    name: Annotated[str | None, typer.Argument(help="The model (default: all).")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Newest N.", min=1)] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Retraining triggers, newest first: why each fired and how far it got."""
    from seaway.monitor.triggers import list_triggers

    found = list_triggers(STATE.project(), name, limit=limit)
    if as_json:
        print_json({"triggers": [t.to_dict() for t in found]})
        return
    if not found:
        line("no trigger has fired" + (f" for {name}" if name else ""))
        return
    for t in found:
        version = f" @{t.version}" if t.version is not None else ""
        commit = f" commit {t.commit[:10]}" if t.commit else ""
        line(
            f"#{t.id} {t.model} {t.kind} {t.status}{version}{commit} "
            f"(started {t.started_at.strftime('%Y-%m-%d %H:%M:%S')} UTC)"
        )
        if t.message:
            line(f"    {t.message}")


@app.command("alerts")
def alerts(
    status: Annotated[
        str | None,
        typer.Option("--status", help="Only these: pending, delivered or failed."),
    ] = None,
    retry: Annotated[
        bool, typer.Option("--retry", help="Queue failed deliveries again (all, or --id).")
    ] = False,
    ids: Annotated[
        list[int] | None, typer.Option("--id", help="With --retry: only this delivery.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Newest N.", min=1)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Webhook deliveries, newest first: what was sent, what waits for a retry, what was
    given up (and, with --retry, send the given-up ones again)."""
    from seaway.errors import UsageError
    from seaway.monitor.alerts import list_deliveries, retry_failed

    project = STATE.project()
    if status is not None and status not in ("pending", "delivered", "failed"):
        raise UsageError(
            f"--status {status}: not a delivery status", hint="use pending, delivered or failed"
        )
    if ids and not retry:
        raise UsageError("--id goes with --retry", hint="seaway monitor alerts --retry --id N")
    if retry:
        requeued = retry_failed(project, ids or None)
        if as_json:
            print_json({"retried": requeued})
        elif requeued:
            line(f"queued again: {', '.join(f'#{i}' for i in requeued)}")
        else:
            line("no failed delivery to retry")
        return
    found = list_deliveries(project, status=status, limit=limit)
    if as_json:
        print_json({"deliveries": [d.to_dict() for d in found]})
        return
    if not found:
        line("no alert delivery" + (f" is {status}" if status else " yet"))
        return
    for d in found:
        tries = f"{d.attempts} attempt" + ("" if d.attempts == 1 else "s")
        if d.status == "delivered" and d.delivered_at is not None:
            when = f"delivered {d.delivered_at.strftime('%Y-%m-%d %H:%M:%S')} UTC"
        elif d.status == "pending":
            when = f"next try {d.next_attempt_at.strftime('%Y-%m-%d %H:%M:%S')} UTC"
        else:
            when = "given up"
        line(f"#{d.id} {d.kind} {d.status} to {d.url} ({tries}, {when})")
        if d.last_error and d.status != "delivered":
            line(f"    {d.last_error}")
