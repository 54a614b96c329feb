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
    text = f"run #{record.seq} {record.status}: {', '.join(parts) or 'no steps'} in {took}"
    registered = record.tags.get("seaway.registered")
    return f"{text}; model {registered}" if registered else text


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


# _STYLES as terminal escape codes, for the table drawn without Rich.
_SGR = {
    "red": "31",
    "green": "32",
    "cyan": "36",
    "bold red": "1;31",
    "yellow": "33",
    "magenta": "35",
    "bold": "1",
    "dim": "2",
}


def _paint(text: str, style: str) -> str:
    """`text` in a _STYLES style (as Rich would draw it, NO_COLOR respected)."""
    import os

    code = _SGR.get(style)
    return f"\x1b[{code}m{text}\x1b[0m" if code and not os.environ.get("NO_COLOR") else text


class _LiveView:
    """A table of the steps, redrawn in place while the run goes on.

    The live table starts with the first step that runs. A run that runs nothing (every
    step cached) ends within milliseconds: its table is printed once, in the same layout,
    without importing Rich (about 50 ms, a fifth of such a run)."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.live: Any = None
        self.went_live = False

    def event(self, event: RunEvent) -> None:
        if event.kind == "started":
            _out(f"run #{event.seq} {event.run_id}")
            self.rows = {s: {"status": "pending"} for s in event.steps}
        elif event.kind == "step" and event.step is not None:
            row = self.rows.setdefault(event.step, {})
            row.update(status=event.status, key=event.cache_key, duration=event.duration_s)
            if event.status == "running":
                row["since"] = time.monotonic()
                if self.live is None and not self.went_live:
                    self._go_live()
            if self.live is not None:
                self.live.refresh()

    def _go_live(self) -> None:
        from rich.live import Live

        from seaway.cli.output import console

        self.went_live = True
        self.live = Live(
            get_renderable=self._table, console=console(), refresh_per_second=8, transient=False
        )
        self.live.start()

    def _cells(self) -> list[tuple[str, str, str, str]]:
        """(step, status, duration, cache key) of every row, as the table shows them."""
        cells = []
        for step, row in self.rows.items():
            status = row.get("status") or "pending"
            took = row.get("duration")
            if status == "running" and "since" in row:
                took = time.monotonic() - row["since"]
            cells.append((step, status, _duration(took), (row.get("key") or "")[:10]))
        return cells

    def _plain_table(self) -> str:
        """The live table's last frame, drawn with escape codes instead of Rich."""
        # Rich's lines where the terminal takes Unicode, its ASCII fallback elsewhere.
        unicode = (sys.stdout.encoding or "").lower().replace("-", "").startswith("utf")
        head_bar, rule, cross, bar = ("\u2503", "\u2501", "\u2547", "\u2502") if unicode else "|-+|"
        header = ("step", "status", "duration", "cache key")
        cells = self._cells()
        widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header))]
        titles = [_paint(h.ljust(w), "bold") for h, w in zip(header, widths, strict=True)]
        lines = [
            f" {head_bar} ".join(titles),
            f"{rule}{cross}{rule}".join(rule * w for w in widths),
        ]
        for step, status, took, key in cells:
            status_cell = _paint(status, _STYLES.get(status, "")) + " " * (widths[1] - len(status))
            row = (step.ljust(widths[0]), status_cell, took.ljust(widths[2]), key)
            lines.append(f" {bar} ".join(row).rstrip())
        return "\n".join(lines)

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(show_edge=False, header_style="bold", pad_edge=False)
        for col in ("step", "status", "duration", "cache key"):
            table.add_column(col)
        for step, status, took, key in self._cells():
            table.add_row(step, f"[{_STYLES.get(status, '')}]{status}[/]", took, key)
        return table

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def finish(self, record: RunRecord) -> None:
        if not self.went_live:
            if self.rows:
                _out(self._plain_table())
            _out(_summary(record))
            if record.status != "succeeded" and record.error:
                _out(f"{_paint('error:', 'red')} {record.error}")
            return
        from seaway.cli.output import console

        console().print(_summary(record))
        if record.status != "succeeded" and record.error:
            from rich.markup import escape

            console().print(f"[red]error:[/] {escape(record.error)}")
