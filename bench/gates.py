"""seaway's gates on the bundled example model, against the 5 s budget for all of them.

Run from the repository root with the project's virtualenv:

    .venv/bin/python bench/gates.py [--repeats N] [--quick] [--json FILE]

Setup (once, untimed, kept in bench/.cache/workspaces/gates/): the example project as
`seaway init --example` writes it, its dataset `customers` added, its pipeline `train` run
(which registers `churn-classifier@1`), a second version of `customers` (a new month of
customers from the same distribution, seed 1) added, a key pair generated and the version
signed. The example's own gates (metric, no regression, robustness, fairness, latency, scan)
get the two kinds it does not declare, so every kind runs:

    - {drift: {train: "dataset:customers@1", reference: "dataset:customers@2"}}
    - {signature: {key: keys/bench.pub}}

Timed, alternating, after one untimed round:

- **all gates, in-process**: `run_gates(Project(root), "churn-classifier@1")` with a fresh
  Project each run (spec parsed, database opened, model loaded from its cached files,
  evaluation data read, report and event stored); imports are warm. Each gate's own time
  comes from its result (`duration_s`); the first gate that predicts also pays for loading
  the model and reading the evaluation data.
- **`seaway gate` (whole process)**: the command in a fresh process, interpreter start-up and
  imports included: what a person or CI waits for.
- **floor**: `python -c "import skops.io, sklearn.pipeline, pandas"`, what any process that
  loads this model pays first; most of the gap between the two rows above.

The 5 s budget is the "competitor" column, so `ratio` = budget / median: above 1 the gates fit.
--quick changes only the repeats (the example is small already).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import harness
from harness import Row

BUDGET_S = 5.0
MODEL = "churn-classifier"
REF = f"{MODEL}@1"
EXTRA_GATES: list[dict[str, Any]] = [
    {"drift": {"train": "dataset:customers@1", "reference": "dataset:customers@2"}},
    {"signature": {"key": "keys/bench.pub"}},
]


def _clean_env() -> None:
    # The workspace's own store, whatever the caller's environment points at.
    for name in ("SEAWAY_METADATA_URL", "SEAWAY_ARTIFACTS_URL", "SEAWAY_TOKEN", "SEAWAY_ROLES"):
        os.environ.pop(name, None)


def prepare(root: Path) -> None:
    """The example project with its model registered and signed (skipped when done)."""
    import yaml

    from seaway.data.datasets import add
    from seaway.example import write_customers
    from seaway.init import init_project
    from seaway.pipeline import run_pipeline
    from seaway.project import Project
    from seaway.registry.keys import generate_keys
    from seaway.registry.signing import sign_version

    marker = root / ".bench-ready"
    if marker.is_file():
        return
    harness.remove(root)
    harness.log(f"setting up the example in {root} (once)")
    init = init_project(root, name="churn", example_data=True)
    os.chdir(init.root)
    spec_path = init.root / "seaway.yaml"
    doc = yaml.safe_load(spec_path.read_text())
    doc["models"][MODEL]["gates"].extend(EXTRA_GATES)
    spec_path.write_text(yaml.safe_dump(doc, sort_keys=False))
    project = Project(init.root)
    add(project, "customers", message="initial snapshot")
    record = run_pipeline(project, "train")
    if record.status != "succeeded":
        raise SystemExit(f"the example pipeline {record.status}: {record.error}")
    # A new month of customers from the same distribution: the drift gate's recent data.
    write_customers(init.root, rows=6000, seed=1)
    add(project, "customers", message="new month")
    (init.root / "keys").mkdir(exist_ok=True)
    generate_keys(init.root / "keys" / "bench.key")
    sign_version(project, REF, init.root / "keys" / "bench.key")
    project.close()
    marker.write_text("ok\n")


def main() -> None:
    args = harness.parse_args(__doc__.splitlines()[0])
    _clean_env()
    root = harness.cache_dir("workspaces") / "gates"
    prepare(root)
    os.chdir(root)

    from seaway import __version__
    from seaway.gates import GateReport, run_gates
    from seaway.project import Project

    reports: list[GateReport] = []

    def in_process() -> None:
        project = Project(root)
        try:
            reports.append(run_gates(project, REF))
        finally:
            project.close()

    seaway = harness.project_bin() / "seaway"
    python = harness.project_bin() / "python"
    cases = {
        "all gates, in-process": in_process,
        "seaway gate (whole process)": harness.command([seaway, "gate", REF], cwd=root),
        # What any process that loads this model pays before seaway does anything.
        "floor: import skops.io, sklearn, pandas": harness.command(
            [python, "-c", "import skops.io, sklearn.pipeline, pandas"], cwd=root
        ),
    }
    harness.check_quiet()
    started = time.perf_counter()
    times = harness.measure(cases, repeats=args.repeats, warmup=1)
    harness.log(f"measured in {time.perf_counter() - started:.1f} s")

    timed = reports[-args.repeats :]
    failed = [(r.name, r.status.value) for rep in timed for r in rep.results if not r.passed]
    if failed:
        harness.log(f"WARNING: gates that did not pass: {sorted(set(failed))}")
    rows: list[Row] = []
    for i, result in enumerate(timed[0].results):
        durations = [rep.results[i].duration_s for rep in timed]
        rows.append(
            Row(
                f"gate {result.name}",
                durations,
                None,
                competitor_name="-",
                note=f"{result.status.value}: {result.message}"[:90],
            )
        )
    for name, values in times.items():
        if name.startswith("floor"):
            rows.append(Row(name, values, None, competitor_name="-", note="not a budget item"))
            continue
        median = statistics.median(values)
        verdict = "within" if median <= BUDGET_S else "OVER"
        rows.append(
            Row(
                name,
                values,
                [BUDGET_S] * len(values),
                competitor_name="budget",
                note=f"{verdict} the {BUDGET_S:g} s budget",
            )
        )
    harness.report(
        f"gates on the example model ({REF}, {len(timed[0].results)} gates)",
        rows,
        {"seaway": __version__, "python": sys.version.split()[0]},
        args.json,
    )


if __name__ == "__main__":
    main()
