"""The whole loop on the bundled example, with embedded defaults (`seaway demo`).

It grows with seaway: today it covers versioned data and its quality checks.
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
    from seaway.project import Project

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
        project.close()
    finally:
        os.chdir(previous)
    return result
