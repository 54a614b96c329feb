"""`seaway metrics`: DORA and ML delivery figures from the event log; a thin layer over
`seaway.audit.metrics.delivery_metrics`.

The period ends at the newest event unless `--until` says otherwise, so running it twice
on the same log prints the same figures; `--since 7d` counts back from that end. `--json`
prints the figures with their sample sizes, `--prometheus` the gauges in the text format
(for a node exporter's textfile collector or a push gateway). Exit codes: 0 printed, 2 bad
usage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from seaway.cli.output import line, print_json, table
from seaway.cli.state import STATE

if TYPE_CHECKING:
    from seaway.audit.metrics import DeliveryMetrics, DriftRate, Durations

NONE = "—"


def register(app: typer.Typer) -> None:
    app.command("metrics")(metrics)


def metrics(
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Only this model.", metavar="NAME")
    ] = None,
    env: Annotated[
        str | None,
        typer.Option("--env", "-e", help="Only this environment (default: all).", metavar="ENV"),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Start: ISO time, or a span back from the end: 12h, 7d, 4w."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="End: ISO time, or a duration back from now (default: newest event)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
    prometheus: Annotated[
        bool, typer.Option("--prometheus", help="Print Prometheus gauges (text format).")
    ] = False,
) -> None:
    """Deployment frequency, lead time, change failure rate, time to restore, model
    freshness, prediction drift and retraining cycle time, from the event log."""
    from seaway.audit.log import parse_since
    from seaway.audit.metrics import delivery_metrics, parse_period, prometheus_text
    from seaway.errors import UsageError

    if as_json and prometheus:
        raise UsageError("--json and --prometheus cannot be combined", hint="choose one")
    found = delivery_metrics(
        STATE.project(),
        model=model,
        environment=env,
        since=parse_period(since) if since else None,
        until=parse_since(until) if until else None,
    )
    if as_json:
        print_json(found.to_dict())
    elif prometheus:
        import sys

        sys.stdout.write(prometheus_text(found))
    else:
        _print(found)


def duration(seconds: float | None) -> str:
    """`45s`, `12m`, `3h05m`, `2d04h`; `—` for no figure."""
    if seconds is None:
        return NONE
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    minutes, _ = divmod(s, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def _percent(value: float | None) -> str:
    return NONE if value is None else f"{value * 100:.1f}%"


def _per_day(value: float | None) -> str:
    return NONE if value is None else f"{value:.2f}/day"


def _spread(d: Durations) -> str:
    if d.median_s is None:
        return NONE
    return f"{duration(d.median_s)}, p90 {duration(d.p90_s)}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _rows(m: DeliveryMetrics) -> list[tuple[str, str, str, str]]:
    d, r = m.dora, m.retraining
    cf, tr = d.change_failures, d.time_to_restore
    outcomes = ", ".join(f"{k} {v}" for k, v in r.outcomes.items())
    return [
        (
            "deployment frequency",
            _per_day(d.frequency_per_day),
            _plural(d.deployments, "deployment"),
            "rollouts reaching 100% traffic",
        ),
        (
            "lead time",
            _spread(d.lead_time),
            _plural(d.lead_time.n, "version"),
            "first commit of the change to 100%",
        ),
        (
            "change failure rate",
            _percent(cf.rate),
            f"{cf.failures} of {_plural(cf.attempts, 'rollout')}",
            f"failed {cf.failed}, aborted {cf.aborted}, rolled back {cf.rolled_back}",
        ),
        (
            "time to restore",
            duration(tr.median_s),
            _plural(tr.n, "incident") + (f", {tr.open} open" if tr.open else ""),
            "median, failure to next deployment",
        ),
        (
            "prediction drift",
            _percent(m.drift.rate),
            f"{m.drift.breached} of {_plural(m.drift.n, 'window')}",
            "drift windows that breached",
        ),
        (
            "retraining cycle",
            _spread(r.cycle),
            f"{r.cycle.n} of {_plural(r.triggers, 'trigger')}",
            "trigger to 100% traffic" + (f"; {outcomes}" if outcomes else ""),
        ),
    ]


def _print(m: DeliveryMetrics) -> None:
    from rich.table import Table

    from seaway._util import isoformat
    from seaway.cli.output import console

    if m.until is None:
        line("no events yet: nothing to measure")
        return
    filters = [
        f"model {m.model}" if m.model else "",
        f"env {m.environment}" if m.environment else "",
    ]
    where = ", ".join(part for part in filters if part)
    start = (isoformat(m.since) or "")[:16].replace("T", " ")
    end = (isoformat(m.until) or "")[:16].replace("T", " ")
    line(f"{start} to {end} UTC ({m.days or 0:.1f} days)" + (f", {where}" if where else ""))
    # Figure, value and sample stay on one line; the meaning wraps.
    t = Table(show_edge=False, header_style="bold", pad_edge=False)
    for column in ("figure", "value", "sample"):
        t.add_column(column, no_wrap=True)
    t.add_column("meaning", min_width=16)
    for row in _rows(m):
        t.add_row(*row)
    console().print(t)

    drift = {d.model: d for d in m.drift_by_model}
    served = [
        (
            f.model,
            f.environment,
            f"@{f.version}",
            duration(f.age_s),
            _plural(f.n, "dataset"),
            _drift_text(drift.pop(f.model, None)),
        )
        for f in m.freshness
    ]
    served += [(name, NONE, NONE, NONE, NONE, _drift_text(d)) for name, d in drift.items() if name]
    if served:
        line("")
        table(["model", "env", "serving", "data age", "lineage", "drift"], served)
    if len(m.targets) > 1:
        line("")
        table(
            ["model", "env", "deploys", "per day", "lead time", "failure rate", "restore"],
            [
                (
                    t.model,
                    t.environment,
                    t.deployments,
                    _per_day(t.frequency_per_day),
                    _spread(t.lead_time),
                    _percent(t.change_failures.rate),
                    duration(t.time_to_restore.median_s),
                )
                for t in m.targets
            ],
        )


def _drift_text(d: DriftRate | None) -> str:
    if d is None:
        return NONE
    return f"{_percent(d.rate)} of {_plural(d.n, 'window')}"
