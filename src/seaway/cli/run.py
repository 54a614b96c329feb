"""`seaway run`: run a pipeline, showing its steps as they finish."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from seaway.cli.state import STATE

if TYPE_CHECKING:
    from seaway.pipeline.runner import RunEvent
    from seaway.tracking.records import RunRecord

EXIT_CODES = {"succeeded": 0, "failed": 1, "cancelled": 130}


def register(app: typer.Typer) -> None:
    app.command("run")(run_cmd)


def run_cmd(
    pipeline: Annotated[
        str | None, typer.Argument(help="The pipeline (from seaway.yaml; optional with --resume).")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("-p", "--param", help="Set a param: KEY=VALUE (a YAML scalar). Repeatable."),
    ] = None,
    params_file: Annotated[
        Path | None,
        typer.Option("--params", help="A YAML or JSON file of param values.", metavar="FILE"),
    ] = None,
    force: Annotated[
        list[str] | None,
        typer.Option(
            "-f", "--force", help="Rerun STEP and its descendants. Repeatable.", metavar="STEP"
        ),
    ] = None,
    jobs: Annotated[
        int | None, typer.Option("-j", "--jobs", help="Steps run at once (default: CPU count).")
    ] = None,
    executor: Annotated[
        str, typer.Option("--executor", help="Where steps run: local (default) or ray.")
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="With --executor ray: the cluster to use (default: start a local Ray).",
            metavar="ADDR",
        ),
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume", help="Rerun what did not succeed in RUN, with its params.", metavar="RUN"
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the final run record as JSON only.")
    ] = False,
) -> None:
    """Run a pipeline: cached steps are skipped, the others run in parallel where they can."""
    from seaway.errors import UsageError
    from seaway.pipeline.params import parse_assignments, read_params_file
    from seaway.pipeline.runner import run_pipeline

    if jobs is not None and jobs < 1:
        raise UsageError(f"--jobs {jobs}: give at least 1")
    if ray_address is not None and executor != "ray":
        raise UsageError("--ray-address is for --executor ray")
    given: dict[str, Any] = {}
    if params_file is not None:
        given.update(read_params_file(params_file))
    given.update(parse_assignments(param or []))
    view = _JsonView() if as_json else (_LiveView() if _stdout_is_terminal() else _PlainView())
    try:
        record = run_pipeline(
            STATE.project(),
            pipeline,
            params=given,
            force=force or [],
            jobs=jobs,
            executor=executor,
            executor_options={"address": ray_address} if ray_address else None,
            resume=resume,
            on_event=view.event,
        )
    finally:
        view.close()
    view.finish(record)
    code = EXIT_CODES.get(record.status, 1)
    if code:
        raise typer.Exit(code)


def _stdout_is_terminal() -> bool:
    import os

    return sys.stdout.isatty() and os.environ.get("TERM") != "dumb"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:04.1f}s"


def _summary(record: RunRecord) -> str:
    counts: dict[str, int] = {}
    for s in record.steps:
        counts[s.status] = counts.get(s.status, 0) + 1
    order = ("ran", "cached", "failed", "skipped", "cancelled")
    parts = [f"{counts[k]} {k}" for k in order if counts.get(k)]
    took = _duration(record.duration_s)
    return f"run #{record.seq} {record.status}: {', '.join(parts) or 'no steps'} in {took}"


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class _JsonView:
    def event(self, event: RunEvent) -> None:
        pass

    def close(self) -> None:
        pass

    def finish(self, record: RunRecord) -> None:
        from seaway.cli.output import print_json

        print_json(record.to_dict())


class _PlainView:
    """One line per finished step: for logs and pipes, where redrawing is noise."""

    FINAL = ("ran", "cached", "failed", "skipped", "cancelled")

    def event(self, event: RunEvent) -> None:
        if event.kind == "started":
            _out(f"run #{event.seq} {event.run_id}")
        elif event.kind == "step" and event.status in self.FINAL:
            key = f"  {event.cache_key[:10]}" if event.cache_key else ""
            took = f"  {_duration(event.duration_s)}" if event.status in ("ran", "failed") else ""
            _out(f"{event.step}: {event.status}{took}{key}")

    def close(self) -> None:
        pass

    def finish(self, record: RunRecord) -> None:
        _out(_summary(record))
        if record.status != "succeeded" and record.error:
            sys.stderr.write(f"error: {record.error}\n")


_STYLES = {
    "ran": "green",
    "cached": "cyan",
    "failed": "bold red",
    "skipped": "yellow",
    "cancelled": "magenta",
    "running": "bold",
    "pending": "dim",
}


class _LiveView:
    """A table of the steps, redrawn in place while the run goes on."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.live: Any = None

    def event(self, event: RunEvent) -> None:
        if event.kind == "started":
            from rich.live import Live

            from seaway.cli.output import console

            console().print(f"run #{event.seq} {event.run_id}")
            self.rows = {s: {"status": "pending"} for s in event.steps}
            self.live = Live(
                get_renderable=self._table, console=console(), refresh_per_second=8, transient=False
            )
            self.live.start()
        elif event.kind == "step" and event.step is not None:
            row = self.rows.setdefault(event.step, {})
            row.update(status=event.status, key=event.cache_key, duration=event.duration_s)
            if event.status == "running":
                row["since"] = time.monotonic()
            if self.live is not None:
                self.live.refresh()

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(show_edge=False, header_style="bold", pad_edge=False)
        for col in ("step", "status", "duration", "cache key"):
            table.add_column(col)
        for step, row in self.rows.items():
            status = row.get("status") or "pending"
            took = row.get("duration")
            if status == "running" and "since" in row:
                took = time.monotonic() - row["since"]
            table.add_row(
                step,
                f"[{_STYLES.get(status, '')}]{status}[/]",
                _duration(took),
                (row.get("key") or "")[:10],
            )
        return table

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def finish(self, record: RunRecord) -> None:
        from seaway.cli.output import console

        console().print(_summary(record))
        if record.status != "succeeded" and record.error:
            from rich.markup import escape

            console().print(f"[red]error:[/] {escape(record.error)}")
