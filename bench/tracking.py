"""seaway vs MLflow 3.17.2: experiment tracking (logging metrics, many runs, filtering runs).

Run from the repository root with the project's virtualenv:

    .venv/bin/python bench/tracking.py [--repeats N] [--quick] [--json FILE] [--only a,b,c]

Scenarios (the same script shape for both tools, each run in a fresh process):
  a  one run with 10,000 log_metric calls (--quick: 1,000)
  b  1,000 runs with 5 params and 5 metrics each (--quick: 100)
  c  filter runs by a metric (auc > 0.8) over the runs of (b), and over 10,000 runs
     (--quick: 100 and 1,000); the stores are built once per tool, untimed

MLflow uses its default local store (`sqlite:///mlflow.db` in the working directory, MLflow
3.x); seaway its default (`.seaway/seaway.db`). Scenarios a and b start from an empty folder
every run. Each script reports the time of its work (after imports and after opening the
store, which both tools do untimed in the script) and the harness times the whole process;
the table shows both. See bench/README.md.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import harness
from harness import Row

MLFLOW_VERSION = "3.17.2"
MLFLOW_REQUIREMENTS = [f"mlflow=={MLFLOW_VERSION}"]
SEAWAY_SPEC = "name: bench\n"
SEED = 20261122
BUILT = ".bench-built"

# The data every run logs, the same for both tools: five params and five metrics drawn
# from a generator seeded by the run's number (auc uniform in 0.5..1.0).
DATA = """
import random
def run_data(i):
    rng = random.Random(SEED * 100003 + i)
    params = {"C": rng.choice([0.01, 0.1, 1.0, 10.0]), "seed": i, "solver": "lbfgs",
              "max_iter": 100, "tol": 0.0001}
    metrics = {"auc": 0.5 + 0.5 * rng.random(), "accuracy": rng.random(),
               "f1": rng.random(), "precision": rng.random(), "loss": rng.random()}
    return params, metrics
"""

# Each script prints one JSON line last: {"work_s": …, "check": …}. `check` is a count read
# back after the timed part, so a tool that dropped data shows in the table's notes.
SEAWAY_OPEN = """
import json, sys, time
N = int(sys.argv[1])
import seaway
from seaway.project import Project
Project.find().metadata.engine  # create or open the store: untimed, as for MLflow
"""
MLFLOW_OPEN = """
import json, sys, time
N = int(sys.argv[1])
import mlflow
mlflow.search_experiments()  # create or open mlflow.db: untimed, as for seaway
"""

SEAWAY_METRICS = (
    SEAWAY_OPEN
    + """
t0 = time.perf_counter()
with seaway.start_run(name="metrics") as run:
    for i in range(N):
        seaway.log_metric("loss", 1.0 / (i + 1), step=i)
work = time.perf_counter() - t0
from seaway.tracking import RunStore
check = len(RunStore(Project.find()).metric_history(run.id, "loss"))
print(json.dumps({"work_s": work, "check": check}))
"""
)
MLFLOW_METRICS = (
    MLFLOW_OPEN
    + """
t0 = time.perf_counter()
with mlflow.start_run(run_name="metrics") as run:
    for i in range(N):
        mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
work = time.perf_counter() - t0
check = len(mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss"))
print(json.dumps({"work_s": work, "check": check}))
"""
)

SEAWAY_RUNS = (
    SEAWAY_OPEN
    + DATA
    + """
t0 = time.perf_counter()
for i in range(N):
    params, metrics = run_data(i)
    with seaway.start_run(name=f"run-{i}"):
        seaway.log_params(params)
        for key, value in metrics.items():
            seaway.log_metric(key, value)
work = time.perf_counter() - t0
check = len(seaway.search_runs(limit=None))
print(json.dumps({"work_s": work, "check": check}))
"""
)
MLFLOW_RUNS = (
    MLFLOW_OPEN
    + DATA
    + """
t0 = time.perf_counter()
for i in range(N):
    params, metrics = run_data(i)
    with mlflow.start_run(run_name=f"run-{i}"):
        mlflow.log_params(params)
        for key, value in metrics.items():
            mlflow.log_metric(key, value)
work = time.perf_counter() - t0
check = len(mlflow.search_runs(experiment_ids=["0"]))
print(json.dumps({"work_s": work, "check": check}))
"""
)

# Building the large stores for the filter scenario: the fastest documented way for each
# tool (MLflow's client with one log_batch per run), untimed.
SEAWAY_BUILD = SEAWAY_RUNS
MLFLOW_BUILD = (
    MLFLOW_OPEN
    + DATA
    + """
import time as _t
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
client = MlflowClient()
t0 = time.perf_counter()
for i in range(N):
    params, metrics = run_data(i)
    run = client.create_run("0", run_name=f"run-{i}")
    ms = int(_t.time() * 1000)
    client.log_batch(run.info.run_id,
                     metrics=[Metric(k, v, ms, 0) for k, v in metrics.items()],
                     params=[Param(k, str(v)) for k, v in params.items()])
    client.set_terminated(run.info.run_id)
print(json.dumps({"work_s": time.perf_counter() - t0, "check": N}))
"""
)

SEAWAY_SEARCH = (
    SEAWAY_OPEN
    + """
t0 = time.perf_counter()
found = seaway.search_runs(where=["auc>0.8"], limit=None)
work = time.perf_counter() - t0
print(json.dumps({"work_s": work, "check": len(found)}))
"""
)
MLFLOW_SEARCH = (
    MLFLOW_OPEN
    + """
t0 = time.perf_counter()
found = mlflow.search_runs(experiment_ids=["0"], filter_string="metrics.auc > 0.8")
work = time.perf_counter() - t0
print(json.dumps({"work_s": work, "check": len(found)}))
"""
)


@dataclass(frozen=True)
class Workload:
    label: str
    metrics: int
    runs: int
    big: int

    def describe(self) -> str:
        return (
            f"a: {self.metrics:,} log_metric calls; b: {self.runs:,} runs x (5 params, "
            f"5 metrics); c: filter over {self.runs:,} and {self.big:,} runs"
        )


FULL = Workload("full", 10_000, 1_000, 10_000)
QUICK = Workload("quick", 1_000, 100, 1_000)


@dataclass
class Tool:
    name: str
    python: Path
    env: dict[str, str | None]
    scripts: dict[str, str]
    spec: str | None  # file written into a fresh folder (seaway.yaml), or None

    def prepare(self, folder: Path) -> None:
        harness.remove(folder)
        folder.mkdir(parents=True)
        if self.spec is not None:
            (folder / "seaway.yaml").write_text(self.spec)


class ScriptFailed(harness.CommandFailed):
    pass


def run_script(tool: Tool, script: str, n: int, cwd: Path) -> dict[str, float]:
    """Run one of the tool's scripts in `cwd`; its JSON report."""
    code = script.replace("SEED", str(SEED))
    argv = [str(tool.python), "-c", code, str(n)]
    done = subprocess.run(argv, cwd=cwd, env=harness.child_env(tool.env), capture_output=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).decode(errors="replace").strip()[-1500:]
        raise ScriptFailed(
            [str(tool.python), "-c", f"<{tool.name} script>", str(n)], done.returncode, tail
        )
    last = done.stdout.decode().strip().splitlines()[-1]
    return dict(json.loads(last))


def seaway_tool() -> Tool:
    # Keep the developer's own settings (store URLs, a run to attach to) out of the benchmark.
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("SEAWAY_")}
    return Tool(
        name="seaway",
        python=harness.project_bin() / "python",
        env=env,
        scripts={
            "metrics": SEAWAY_METRICS,
            "runs": SEAWAY_RUNS,
            "build": SEAWAY_BUILD,
            "search": SEAWAY_SEARCH,
        },
        spec=SEAWAY_SPEC,
    )


def mlflow_tool() -> Tool:
    bin_dir = harness.competitor_venv(f"mlflow-{MLFLOW_VERSION}", MLFLOW_REQUIREMENTS)
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("MLFLOW_")}
    env.update(
        {
            # No network here, and none wanted: telemetry off, git lookups quiet.
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
            "GIT_PYTHON_REFRESH": "quiet",
        }
    )
    return Tool(
        name="mlflow",
        python=bin_dir / "python",
        env=env,
        scripts={
            "metrics": MLFLOW_METRICS,
            "runs": MLFLOW_RUNS,
            "build": MLFLOW_BUILD,
            "search": MLFLOW_SEARCH,
        },
        spec=None,
    )


def built_store(tool: Tool, n: int, label: str) -> Path:
    """A folder holding `n` runs in the tool's store; built once and reused."""
    folder = harness.cache_dir("workspaces", "tracking", f"{tool.name}-{label}-{n}")
    marker = folder / BUILT
    signature = f"{n} {SEED}\n"
    if marker.is_file() and marker.read_text() == signature:
        return folder
    harness.log(f"  building a store of {n:,} runs for {tool.name} (untimed, once)")
    tool.prepare(folder)
    report = run_script(tool, tool.scripts["build"], n, folder)
    harness.log(f"    took {report['work_s']:.1f} s")
    marker.write_text(signature)
    return folder


@dataclass
class Scenario:
    title: str
    script: str  # key of Tool.scripts
    n: int
    fresh: bool  # a fresh folder before every run (else a built store, read only)
    expected: int | None = None


def measure_scenario(
    scenario: Scenario, tools: list[Tool], repeats: int, folders: dict[str, Path]
) -> list[Row]:
    harness.log(f"scenario: {scenario.title}")
    load = harness.check_quiet()
    work: dict[str, list[float]] = {t.name: [] for t in tools}
    checks: dict[str, set[int]] = {t.name: set() for t in tools}
    cases: dict[str, Callable[[], None]] = {}
    setup: dict[str, Callable[[], None]] = {}
    for tool in tools:
        folder = folders[tool.name]

        def case(tool: Tool = tool, folder: Path = folder) -> None:
            report = run_script(tool, tool.scripts[scenario.script], scenario.n, folder)
            work[tool.name].append(float(report["work_s"]))
            checks[tool.name].add(int(report["check"]))

        cases[tool.name] = case
        if scenario.fresh:

            def reset(tool: Tool = tool, folder: Path = folder) -> None:
                tool.prepare(folder)
                harness.flush_writes()

            setup[tool.name] = reset
    failures: dict[str, str] = {}
    snapshot = harness.load_snapshot()
    process = harness.measure(cases, setup, repeats, warmup=1, failures=failures)
    during = harness.other_load_since(snapshot)

    notes = [f"{name} failed, {msg}" for name, msg in failures.items()]
    if load > harness.BUSY_THRESHOLD or during > harness.BUSY_THRESHOLD:
        notes.insert(0, f"[busy: others used {load:.2f} cores before, during {during:.2f}]")
    counts = {name: sorted(c) for name, c in checks.items() if c}
    if scenario.expected is not None:
        wrong = {n: c for n, c in counts.items() if c != [scenario.expected]}
        if wrong:
            notes.append(f"read back {wrong}, expected {scenario.expected}")
    elif len({tuple(c) for c in counts.values()}) > 1:
        notes.append(f"tools disagree: {counts}")
    if scenario.script == "search" and counts:
        notes.append(f"{next(iter(counts.values()))[0]:,} runs match")
    extra: dict[str, object] = {
        "other_load_before": round(load, 3),
        "other_load_during": round(during, 3),
    }
    if failures:
        extra["failures"] = failures
    rows = []
    for kind, times in (
        ("in-script work", {n: w[-repeats:] for n, w in work.items() if n in process}),
        ("whole process", process),
    ):
        rows.append(
            Row(
                scenario=f"{scenario.title}: {kind}",
                seaway=times.get("seaway"),
                competitor=times.get("mlflow"),
                competitor_name="mlflow",
                note=" ".join(notes),
                extra=extra,
            )
        )
    return rows


def _only(argv: list[str]) -> tuple[set[str], list[str]]:
    """`--only a,c` (this benchmark's own option): the scenarios to run; the rest of argv."""
    wanted, rest = {"a", "b", "c"}, []
    it = iter(argv)
    for arg in it:
        if arg == "--only":
            wanted = set(next(it, "").split(","))
        elif arg.startswith("--only="):
            wanted = set(arg.split("=", 1)[1].split(","))
        else:
            rest.append(arg)
    return wanted, rest


def main(argv: list[str] | None = None) -> int:
    import sys

    only, argv = _only(list(sys.argv[1:] if argv is None else argv))
    args = harness.parse_args((__doc__ or "").splitlines()[0], argv)
    work = QUICK if args.quick else FULL
    repeats: int = args.repeats
    harness.log(f"workload ({work.label}): {work.describe()}; {repeats} repeats")
    harness.run_command(
        [harness.project_bin() / "python", "-m", "compileall", "-q", harness.REPO_ROOT / "src"]
    )
    tools = [seaway_tool(), mlflow_tool()]
    versions = {
        "seaway": harness.command_output(
            [tools[0].python, "-c", "import seaway; print(seaway.__version__)"]
        ),
        "mlflow": harness.command_output(
            [tools[1].python, "-c", "import importlib.metadata as m; print(m.version('mlflow'))"]
        ),
    }
    for tool in tools:
        versions[f"sqlalchemy ({tool.name})"] = harness.command_output(
            [tool.python, "-c", "import importlib.metadata as m; print(m.version('sqlalchemy'))"]
        )
    harness.log("versions: " + ", ".join(f"{k} {v or '?'}" for k, v in versions.items()))

    fresh = {t.name: harness.cache_dir("workspaces", "tracking", f"{t.name}-fresh") for t in tools}
    a = Scenario(f"a. 1 run, {work.metrics:,} log_metric", "metrics", work.metrics, True)
    a.expected = work.metrics
    b_ = Scenario(f"b. {work.runs:,} runs x 5 params + 5 metrics", "runs", work.runs, True)
    b_.expected = work.runs
    rows: list[Row] = []
    if "a" in only:
        rows += measure_scenario(a, tools, repeats, fresh)
    if "b" in only:
        rows += measure_scenario(b_, tools, repeats, fresh)
    if "c" in only:
        for n, label in ((work.runs, "small"), (work.big, "big")):
            stores = {t.name: built_store(t, n, label) for t in tools}
            c = Scenario(f"c. filter auc > 0.8 over {n:,} runs", "search", n, False)
            rows += measure_scenario(c, tools, repeats, stores)
    harness.report(
        f"seaway vs MLflow {MLFLOW_VERSION}: experiment tracking ({work.label})",
        rows,
        versions,
        args.json,
    )
    for r in rows:
        ratio = harness.row_ratio(r)
        if r.scenario.endswith("in-script work") and ratio is not None:
            harness.log(f"{r.scenario}: seaway {ratio:.0f}x faster")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
