"""The whole loop on the bundled example, with embedded defaults (`seaway demo`).

It grows with seaway: today it covers versioned data and its quality checks, and the
training pipeline run twice (the second run entirely from the step cache), ending with the
runs table.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class DemoResult:
    root: Path
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s["ok"] for s in self.steps)


def run_demo(directory: Path, *, say: Callable[[str], None] = print) -> DemoResult:
    from seaway.data.datasets import add, diff, status
    from seaway.data.quality import check_version
    from seaway.example import write_customers
    from seaway.init import init_project
    from seaway.pipeline import run_pipeline
    from seaway.project import Project
    from seaway.tracking.search import search_runs

    result = DemoResult(directory.resolve())

    def step(name: str, ok: bool, detail: str) -> None:
        result.steps.append({"step": name, "ok": ok, "detail": detail})
        say(f"{'ok ' if ok else 'FAIL'} {name}: {detail}")

    init = init_project(directory, name="churn", example_data=True)
    step("init", True, f"project in {init.root} ({', '.join(init.created)})")

    previous = Path.cwd()
    os.chdir(init.root)
    try:
        project = Project(init.root)
        first = add(project, "customers", message="initial snapshot")
        step(
            "data add",
            first.created,
            f"{first.version.ref}: {first.version.n_files} file, "
            f"{first.version.size} bytes, checks {first.version.check_status}",
        )
        _, checked = check_version(project, "customers@1")
        failed = [r.name for r in checked.results if r.status in ("failed", "error")]
        step(
            "data check",
            checked.status == "passed",
            f"{len(checked.results)} checks on {checked.rows} rows, "
            + ("all passed" if not failed else "failed: " + ", ".join(failed)),
        )
        (unchanged,) = status(project, "customers")
        step("data status", unchanged.state == "unchanged", f"customers is {unchanged.state}")

        # New customers arrive with a shifted distribution: the workspace changes.
        write_customers(init.root, rows=6000, seed=1, drift=0.5)
        (changed,) = status(project, "customers")
        step(
            "data status",
            changed.state == "modified",
            f"after new data: customers is {changed.state}",
        )
        second = add(project, "customers", message="new month of customers")
        step(
            "data add",
            second.created and second.version.number == 2,
            f"{second.version.ref}, checks {second.version.check_status}",
        )
        d = diff(project, "customers")
        step("data diff", bool(d.changes), f"{d.old.ref} → {d.new.ref}: {d.counts()}")

        first_run = run_pipeline(project, "train")
        ran = [s.step for s in first_run.steps if s.status == "ran"]
        step(
            "run train",
            first_run.status == "succeeded" and len(ran) == len(first_run.steps),
            f"run #{first_run.seq}: {len(ran)} steps ran, auc "
            f"{first_run.metrics.get('auc', float('nan')):.3f}",
        )
        second_run = run_pipeline(project, "train")
        cached = [s.step for s in second_run.steps if s.status == "cached"]
        step(
            "run train again",
            second_run.status == "succeeded" and len(cached) == len(second_run.steps),
            f"run #{second_run.seq}: {len(cached)} of {len(second_run.steps)} steps cached",
        )
        say("")
        say(_runs_table(search_runs(project, pipeline="train")))
        project.close()
    finally:
        os.chdir(previous)
    return result


def _runs_table(runs: list[Any]) -> str:
    rows = [("run", "status", "duration", "auc", "accuracy")]
    for r in runs:
        duration = f"{r.duration_s:.2f}s" if r.duration_s is not None else ""
        metrics = [f"{r.metrics[k]:.3f}" if k in r.metrics else "" for k in ("auc", "accuracy")]
        rows.append((f"#{r.seq} {r.id[:8]}", r.status, duration, *metrics))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(text.rstrip() for text in lines)
