"""`seaway runs …`: list, show, compare, logs and export runs; thin over `seaway.tracking`.

`seaway runs` alone lists (like `seaway runs list`). JSON shapes are documented in
docs/json-output.md ("Runs").
"""

from __future__ import annotations

import sys
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from seaway.cli.output import console, line, print_json, table
from seaway.cli.state import STATE

if TYPE_CHECKING:
    from seaway.tracking.records import MetricPoint, RunRecord, RunSummary

app = typer.Typer(invoke_without_command=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON only.")]
PipelineOpt = Annotated[str | None, typer.Option("--pipeline", "-p", help="Only this pipeline.")]
StatusOpt = Annotated[
    str | None,
    typer.Option("--status", "-s", help="running, succeeded, failed or cancelled."),
]
WhereOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--where",
        "-w",
        help="Filter such as auc>0.8, loss<=0.2, params.C=1.0 (repeat to AND).",
        metavar="EXPR",
    ),
]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option("--param", help="Only runs with this param value: KEY=VALUE.", metavar="K=V"),
]
SortOpt = Annotated[
    str | None,
    typer.Option(
        "--sort", help="started, -started (default), duration, METRIC or -METRIC (descending)."
    ),
]
LimitOpt = Annotated[int, typer.Option("--limit", "-n", help="Show at most N runs.")]

HEADLINE_METRICS = 4


def _when(ts: datetime | None, *, seconds: bool = True) -> str:
    from seaway._util import isoformat

    return (isoformat(ts) or "")[: 19 if seconds else 16].replace("T", " ")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _run_duration(run: RunSummary | RunRecord) -> str:
    if run.duration_s is not None:
        return _duration(run.duration_s)
    if run.status == "running":
        return _duration((datetime.now(UTC) - run.started_at).total_seconds()) + "…"
    return ""


def _label(run: RunSummary | RunRecord) -> str:
    if run.pipeline and run.name:
        return f"{run.pipeline}/{run.name}"
    return run.pipeline or run.name or ""


def _status(run: RunSummary | RunRecord) -> str:
    return "running?" if run.maybe_crashed else run.status


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    import json

    return json.dumps(value)


def headline_metrics(runs: list[RunSummary], first: list[str]) -> list[str]:
    """The metric keys most of `runs` have (at most HEADLINE_METRICS), those named in the
    filters or the sort first."""
    counts = Counter(k for r in runs for k in r.metrics)
    chosen = [k for k in first if k in counts]
    for key, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if len(chosen) >= HEADLINE_METRICS:
            break
        if key not in chosen:
            chosen.append(key)
    return chosen[:HEADLINE_METRICS]


def _named_metrics(where: list[str], sort: str | None) -> list[str]:
    from seaway.tracking.search import parse_sort, parse_where

    keys = []
    if sort:
        kind, key, _ = parse_sort(sort)
        if kind == "metric" and key:
            keys.append(key)
    for expr in where:
        cond = parse_where(expr)
        if cond.namespace == "metrics" and cond.key not in keys:
            keys.append(cond.key)
    return keys


def _parse_params(items: list[str]) -> dict[str, str]:
    from seaway.errors import UsageError

    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"bad --param {item!r}", hint="write --param KEY=VALUE, e.g. C=1.0")
        out[key.strip()] = value.strip()
    return out


def _list(
    pipeline: str | None,
    status: str | None,
    where: list[str] | None,
    param: list[str] | None,
    sort: str | None,
    limit: int,
    as_json: bool,
) -> None:
    from seaway.tracking.search import search_runs

    where = where or []
    runs = search_runs(
        STATE.project(),
        pipeline=pipeline,
        status=status,
        where=where,
        params=_parse_params(param or []),
        sort=sort,
        limit=limit,
    )
    keys = headline_metrics(runs, _named_metrics(where, sort))
    if as_json:
        print_json({"runs": [r.to_dict() for r in runs], "headline_metrics": keys})
        return
    if not runs:
        filtered = pipeline or status or where or param
        line(
            "no runs match these filters"
            if filtered
            else "no runs yet; start one with `seaway run PIPELINE` or seaway.start_run() in Python"
        )
        return
    rows = [
        (
            r.short_id,
            r.ref,
            _label(r),
            _status(r),
            _when(r.started_at, seconds=False),
            _run_duration(r),
            *(_number(r.metrics.get(k)) for k in keys),
        )
        for r in runs
    ]
    _runs_table(["id", "#", "pipeline/name", "status", "started", "duration", *keys], rows)
    if any(r.maybe_crashed for r in runs):
        line("running?: the process that ran it is gone; it may have crashed")


def _runs_table(columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    # Unlike the shared table(), cells never wrap: a run per line reads better when narrow
    # (names are cut with an ellipsis instead).
    from rich.table import Table

    t = Table(show_edge=False, header_style="bold", pad_edge=False)
    for col in columns:
        name_col = col == "pipeline/name"
        t.add_column(
            col,
            no_wrap=True,
            overflow="ellipsis" if name_col else "fold",
            max_width=30 if name_col else None,
            justify="right" if col == "#" or col not in _TEXT_COLUMNS else "left",
        )
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    _print_wide(t)


def _print_wide(renderable: Any) -> None:
    """Print at the terminal's width, or at the table's full width into a pipe or file
    (Rich would assume 80 columns and cut the cells)."""
    out = console()
    if out.is_terminal:
        out.print(renderable)
        return
    unbounded = out.options.update(max_width=100_000)
    width = max(out.width, out.measure(renderable, options=unbounded).maximum)
    # print(width=…) cannot exceed the console's width; widen the console itself.
    saved = out.width
    out.width = width
    try:
        out.print(renderable)
    finally:
        out.width = saved


_TEXT_COLUMNS = ("id", "pipeline/name", "status", "started", "duration")


@app.callback()
def runs_root(
    ctx: typer.Context,
    pipeline: PipelineOpt = None,
    status: StatusOpt = None,
    where: WhereOpt = None,
    param: ParamOpt = None,
    sort: SortOpt = None,
    limit: LimitOpt = 20,
    as_json: JsonOpt = False,
) -> None:
    """Runs of pipelines and of seaway.start_run(): list (the default), show, compare, logs,
    export."""
    if ctx.invoked_subcommand is None:
        _list(pipeline, status, where, param, sort, limit, as_json)


@app.command("list")
def list_cmd(
    pipeline: PipelineOpt = None,
    status: StatusOpt = None,
    where: WhereOpt = None,
    param: ParamOpt = None,
    sort: SortOpt = None,
    limit: LimitOpt = 20,
    as_json: JsonOpt = False,
) -> None:
    """List runs, newest first (the same as plain `seaway runs`)."""
    _list(pipeline, status, where, param, sort, limit, as_json)


# -- show -------------------------------------------------------------------------------------


def metric_summaries(points: list[MetricPoint], *, series: bool) -> dict[str, dict[str, Any]]:
    """Per key: count, first, last (by step, then time), min, max; with `series`, every
    point as {step, value, ts}."""
    out: dict[str, dict[str, Any]] = {}
    for p in points:  # ordered by key, step, ts
        entry = out.get(p.key)
        if entry is None:
            entry = out[p.key] = {
                "count": 0,
                "first": p.value,
                "last": p.value,
                "min": p.value,
                "max": p.value,
            }
            if series:
                entry["points"] = []
        entry["count"] += 1
        entry["last"] = p.value
        entry["min"] = min(entry["min"], p.value)
        entry["max"] = max(entry["max"], p.value)
        if series:
            entry["points"].append({"step": p.step, "value": p.value, "ts": p.ts})
    return out


def _crash_note(run: RunRecord) -> str | None:
    from seaway.tracking.records import TAG_HOST, TAG_PID

    if run.status != "running":
        return None
    where = f"pid {run.tags.get(TAG_PID, '?')} on {run.tags.get(TAG_HOST, '?')}"
    if run.maybe_crashed:
        return f"its process ({where}) is gone: it probably crashed and will stay `running`"
    return f"still running ({where}); if that process is gone, it may have crashed"


@app.command("show")
def show_cmd(
    run: Annotated[str, typer.Argument(help="Run id, id prefix, #N, or run name.")],
    as_json: JsonOpt = False,
) -> None:
    """Everything about one run: params, metrics and their history, steps, artifacts,
    lineage, environment, tags."""
    from seaway.tracking.store import RunStore

    store = RunStore(STATE.project())
    record = store.get(run)
    history = metric_summaries(store.metric_history(record.id), series=as_json)
    if as_json:
        doc = record.to_dict()
        doc["metric_history"] = history
        print_json(doc)
        return
    _print_run(record, history)


def _print_run(run: RunRecord, history: dict[str, dict[str, Any]]) -> None:
    from seaway._util import human_size

    title = f"run {run.ref}  {run.id}"
    if run.name:
        title += f"  {run.name}"
    line(title)
    facts = [
        ("pipeline", run.pipeline),
        ("status", _status(run)),
        ("started", _when(run.started_at)),
        ("ended", _when(run.ended_at)),
        ("duration", _run_duration(run)),
        ("author", run.author),
        ("executor", run.executor),
        ("resumed from", run.resumed_from),
        ("git", _git_text(run)),
        ("error", run.error),
    ]
    for label, value in facts:
        if value:
            line(f"  {label + ':':<14}{value}")
    note = _crash_note(run)
    if note:
        line(f"  {'note:':<14}{note}")
    if run.params:
        table(["param", "value"], [(k, _value(v)) for k, v in run.params.items()], title="params")
    if history:
        rows = [
            (
                k,
                _number(h["last"]),
                h["count"],
                _number(h["first"]),
                _number(h["min"]),
                _number(h["max"]),
            )
            for k, h in history.items()
        ]
        table(["metric", "last", "points", "first", "min", "max"], rows, title="metrics")
    if run.steps:
        rows2 = [
            (
                s.step,
                s.status,
                _duration(s.duration_s),
                (s.cache_key or "")[:10],
                (s.error or "").splitlines()[0][:80] if s.error else "",
            )
            for s in run.steps
        ]
        table(["step", "status", "duration", "cache key", "error"], rows2, title="steps")
    if run.artifacts:
        rows3 = [(a.name, a.kind, human_size(a.size), a.digest[:10]) for a in run.artifacts]
        table(["artifact", "kind", "size", "digest"], rows3, title="artifacts")
    lineage = _lineage_rows(run)
    if lineage:
        table(["lineage", "value"], lineage, title="lineage")
    if run.tags:
        table(["tag", "value"], sorted(run.tags.items()), title="tags")


def _git_text(run: RunRecord) -> str:
    if not run.git_commit:
        return ""
    return run.git_commit[:12] + (" (dirty: uncommitted changes)" if run.git_dirty else "")


def _lineage_rows(run: RunRecord) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for key, value in run.lineage.items():
        if isinstance(value, dict):
            for sub, item in value.items():
                rows.append((f"{key}.{sub}", _value(item)))
        else:
            rows.append((key, _value(value)))
    env = run.environment
    if env.get("python"):
        rows.append(("python", f"{env['python']} ({env.get('platform', '')})".strip()))
    for name, version in (env.get("packages") or {}).items():
        rows.append((f"package {name}", str(version)))
    return rows


# -- compare ----------------------------------------------------------------------------------


def comparison(records: list[RunRecord]) -> dict[str, Any]:
    """Params and latest metrics side by side; `differs` marks rows whose values are not
    all equal (a value missing from some run counts as different)."""

    def rows(attr: str) -> list[dict[str, Any]]:
        keys: list[str] = []
        for r in records:
            keys.extend(k for k in getattr(r, attr) if k not in keys)
        out = []
        for key in sorted(keys):
            values = [getattr(r, attr).get(key) for r in records]
            present = [key in getattr(r, attr) for r in records]
            differs = not all(present) or any(v != values[0] for v in values)
            out.append({"key": key, "values": values, "differs": differs})
        return out

    return {
        "runs": [
            {"id": r.id, "seq": r.seq, "name": r.name, "pipeline": r.pipeline, "status": r.status}
            for r in records
        ],
        "params": rows("params"),
        "metrics": rows("metrics"),
    }


@app.command("compare")
def compare_cmd(
    runs: Annotated[list[str], typer.Argument(help="Two or more runs (id, prefix, #N, name).")],
    as_json: JsonOpt = False,
) -> None:
    """Params and latest metrics of runs side by side; differing rows are highlighted."""
    from seaway.errors import UsageError
    from seaway.tracking.store import RunStore

    if len(runs) < 2:
        raise UsageError("compare needs at least two runs", hint="seaway runs compare #3 #4")
    store = RunStore(STATE.project())
    records = [store.get(ref) for ref in runs]
    doc = comparison(records)
    if as_json:
        print_json(doc)
        return
    from rich.table import Table

    t = Table(show_edge=False, header_style="bold", pad_edge=False)
    t.add_column("")
    for r in records:
        t.add_column(
            f"{r.ref} {r.short_id}"
            + (f"\n{r.pipeline or r.name}" if (r.pipeline or r.name) else "")
        )
    for section, fmt in (("params", _value), ("metrics", _number)):
        for row in doc[section]:
            style = "bold yellow" if row["differs"] else None
            label = f"{'param' if section == 'params' else 'metric'} {row['key']}"
            t.add_row(label, *(fmt(v) for v in row["values"]), style=style)
    _print_wide(t)
    differing = sum(row["differs"] for s in ("params", "metrics") for row in doc[s])
    line(f"{differing} of {len(doc['params']) + len(doc['metrics'])} rows differ (highlighted)")


# -- logs -----------------------------------------------------------------------------------------


@app.command("logs")
def logs_cmd(
    run: Annotated[str, typer.Argument(help="Run id, id prefix, #N, or run name.")],
    step: Annotated[str | None, typer.Argument(help="Only this step.")] = None,
) -> None:
    """Print the captured stdout and stderr of a run's steps."""
    from seaway.errors import NotFound
    from seaway.tracking.store import RunStore

    project = STATE.project()
    record = RunStore(project).get(run)
    steps = record.steps
    if step is not None:
        steps = [s for s in steps if s.step == step]
        if not steps:
            import difflib

            names = [s.step for s in record.steps]
            close = difflib.get_close_matches(step, names, n=1)
            hint = (
                f"did you mean '{close[0]}'?"
                if close
                else (f"its steps are: {', '.join(names)}" if names else "this run has no steps")
            )
            raise NotFound(f"run {record.ref} has no step {step!r}", hint=hint)
    logged = [s for s in steps if s.log_digest]
    if not logged:
        sys.stderr.write(
            f"no captured logs for run {record.ref}" + (f" step {step}" if step else "") + "\n"
        )
        return
    out = sys.stdout
    for s in logged:
        assert s.log_digest is not None
        text = project.blobs.get_bytes(s.log_digest).decode("utf-8", errors="replace")
        if step is None:
            out.write(f"==> {s.step} ({s.status}) <==\n")
        out.write(text)
        if text and not text.endswith("\n"):
            out.write("\n")
    out.flush()


# -- export ---------------------------------------------------------------------------------------


@app.command("export")
def export_cmd(
    runs: Annotated[
        list[str] | None, typer.Argument(help="Runs to export (default: every run).")
    ] = None,
    to: Annotated[str, typer.Option("--to", help="Where to: mlflow.")] = "mlflow",
    tracking_uri: Annotated[
        str | None,
        typer.Option("--tracking-uri", help="The MLflow server, e.g. http://127.0.0.1:5000."),
    ] = None,
    experiment: Annotated[
        str | None,
        typer.Option("--experiment", help="MLflow experiment (default: the project's name)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Copy runs to an MLflow tracking server; exporting again updates the same MLflow runs."""
    from seaway.errors import UsageError
    from seaway.tracking.mlflow_export import export_runs

    if to != "mlflow":
        raise UsageError(f"unknown export target {to!r}", hint="use --to mlflow")
    if not tracking_uri:
        raise UsageError(
            "--tracking-uri is required",
            hint="the URL of an MLflow server, e.g. --tracking-uri http://127.0.0.1:5000",
        )
    results = export_runs(STATE.project(), tracking_uri, runs or None, experiment=experiment)
    if as_json:
        print_json({"tracking_uri": tracking_uri, "runs": [r.to_dict() for r in results]})
        return
    for r in results:
        line(
            f"#{r.seq} {r.run_id[:8]} → MLflow run {r.mlflow_run_id} ({r.action}): "
            f"{r.params} params, {r.metric_points} metric points, {r.tags} tags, "
            f"{r.artifact_files} artifact files"
        )
    if not results:
        line("no runs to export")
