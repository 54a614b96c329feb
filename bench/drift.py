"""seaway vs Evidently 0.7.23: data drift on 50 numeric and 10 categorical columns.

Run from the repository root with the project's virtualenv:

    .venv/bin/python bench/drift.py [--repeats N] [--quick] [--json FILE]
        [--rows 100000,1000000] [--evidently-repeats N] [--seaway-reads columns|tables]

Data (seeded, generated once into bench/.cache/data/drift/<rows>/ as Parquet): a reference
and a current table of the same size. The current one has mean shifts in 5 numeric columns and
mix shifts in 2 categorical columns, chosen large enough for Evidently's default thresholds.

Three tools, each in its own process, alternating: seaway (`seaway.stats.compare` over
`ParquetColumns`, which reads each column when it is compared; project virtualenv),
Evidently's DataDriftPreset (its own virtualenv, reading the Parquet files with pandas), and a
plain SciPy loop (`ks_2samp`, PSI on reference deciles, `chi2_contingency`; a column drifts at
p < 0.05). Each process loads both tables, compares them and builds its result, and reports
that span ("in-process"); the benchmark also takes the process' whole wall time and its peak
memory (max RSS, from `os.wait4`). At 1,000,000 rows Evidently runs once. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import harness
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from harness import Row

EVIDENTLY_VERSION = "0.7.23"
# Evidently 0.7.23 does not work with pandas 3; pyarrow lets pandas read Parquet.
EVIDENTLY_REQUIREMENTS = [f"evidently=={EVIDENTLY_VERSION}", "pandas<3", "pyarrow"]
SEED = 20261122
NUMERIC = 50
CATEGORICAL = 10
# Mean shifts, in standard deviations of the column. Evidently's default for numeric columns
# above 1,000 rows is the normed Wasserstein distance over 0.1, which a pure shift of d
# standard deviations moves to d: all of these are above it.
NUMERIC_SHIFTS = {"num_04": 0.12, "num_14": 0.15, "num_24": 0.2, "num_34": 0.3, "num_44": 0.5}
# Evidently's default for categorical columns is the Jensen-Shannon distance (natural log)
# over 0.1, which needs a large move: 15 points between two categories gives about 0.12, and
# a new category taking 12% about 0.2.
MIX_SHIFTS = {
    "cat_03": "move 15 points from the first category to the second",
    "cat_08": "a new category takes 12%",
}
CATEGORY_SETS = [
    ["alpha", "beta", "gamma"],
    ["red", "green", "blue", "yellow", "black"],
    ["north", "south", "east", "west"],
    [f"plan-{i}" for i in range(8)],
    [f"city-{i:02d}" for i in range(25)],
]

SEAWAY_SCRIPT = """\
import json, sys, time
import pyarrow.parquet as pq
from seaway.stats import ParquetColumns, compare
start = time.perf_counter()
if sys.argv[3] == "columns":
    # Each column is read when compare() reaches it: one column per table in memory.
    reference, current = ParquetColumns(sys.argv[1]), ParquetColumns(sys.argv[2])
else:
    reference = pq.read_table(sys.argv[1], memory_map=True)
    current = pq.read_table(sys.argv[2], memory_map=True)
report = compare(reference, current)
result = json.dumps(report.to_dict())
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "flagged": report.drifted_columns}))
"""

EVIDENTLY_SCRIPT = """\
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
start = time.perf_counter()
reference = pd.read_parquet(sys.argv[1], memory_map=True)
current = pd.read_parquet(sys.argv[2], memory_map=True)
definition = DataDefinition(
    numerical_columns=[c for c in reference.columns if c.startswith("num_")],
    categorical_columns=[c for c in reference.columns if c.startswith("cat_")],
)
snapshot = Report([DataDriftPreset()]).run(
    Dataset.from_pandas(current, data_definition=definition),
    Dataset.from_pandas(reference, data_definition=definition),
)
result = snapshot.dict()
seconds = time.perf_counter() - start
flagged = []
counted = -1
for metric in result["metrics"]:
    # One ValueDrift per column: its value is the drift score, its config the method and
    # threshold. p-value methods flag below the threshold, distances above it.
    config = metric.get("config", {})
    if str(config.get("type", "")).endswith("DriftedColumnsCount"):
        counted = int(metric["value"]["count"])
    if not str(config.get("type", "")).endswith("ValueDrift"):
        continue
    value, threshold = metric["value"], config["threshold"]
    method = str(config.get("method", "")).lower()
    by_p = "p_value" in method or "p-value" in method or method in {"ks", "chi2", "z", "chisquare"}
    if (value < threshold) if by_p else (value >= threshold):
        flagged.append(config["column"])
if counted != len(flagged):
    print(f"flagged {len(flagged)} columns, Evidently counted {counted}", file=sys.stderr)
    sys.exit(3)
print(json.dumps({"seconds": seconds, "flagged": flagged}))
"""

SCIPY_SCRIPT = """\
import json, sys, time
import numpy as np
import pyarrow.parquet as pq
from scipy import stats
start = time.perf_counter()
reference = pq.read_table(sys.argv[1], memory_map=True)
current = pq.read_table(sys.argv[2], memory_map=True)
flagged = []
for name in reference.column_names:
    r = reference.column(name).to_numpy()
    c = current.column(name).to_numpy()
    if name.startswith("num_"):
        p = stats.ks_2samp(r, c).pvalue
        edges = np.quantile(r, np.linspace(0, 1, 11)[1:-1])
        pr = np.bincount(np.searchsorted(edges, r), minlength=10) / r.size + 1e-4
        pc = np.bincount(np.searchsorted(edges, c), minlength=10) / c.size + 1e-4
        psi = float(np.sum((pc - pr) * np.log(pc / pr)))
    else:
        # Fixed-width text sorts about 5x faster than Python string objects.
        both = np.concatenate([r, c]).astype(str)
        values, codes = np.unique(both, return_inverse=True)
        table = np.vstack([
            np.bincount(codes[: r.size], minlength=values.size),
            np.bincount(codes[r.size :], minlength=values.size),
        ])
        p = stats.chi2_contingency(table, correction=False).pvalue
        shares = table / table.sum(axis=1, keepdims=True) + 1e-4
        psi = float(np.sum((shares[1] - shares[0]) * np.log(shares[1] / shares[0])))
    if p < 0.05:
        flagged.append(name)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "flagged": flagged}))
"""


# --------------------------------------------------------------------------- data


def _numeric_column(rng: np.random.Generator, shape: int, n: int, shift: float) -> np.ndarray:
    """One numeric column of one of five shapes, shifted by `shift` standard deviations."""
    if shape == 0:
        x, sd = rng.normal(0.0, 1.0, n), 1.0
    elif shape == 1:
        x, sd = rng.lognormal(0.0, 0.6, n), float(np.sqrt((np.exp(0.36) - 1) * np.exp(0.36)))
    elif shape == 2:
        x, sd = rng.uniform(0.0, 10.0, n), 10.0 / float(np.sqrt(12.0))
    elif shape == 3:
        x, sd = rng.gamma(2.0, 3.0, n), 3.0 * float(np.sqrt(2.0))
    else:
        x, sd = 50.0 + 10.0 * rng.standard_t(5, n), 10.0 * float(np.sqrt(5.0 / 3.0))
    return x + shift * sd if shift else x


def _categorical_column(rng: np.random.Generator, index: int, n: int, current: bool) -> np.ndarray:
    names = CATEGORY_SETS[index % len(CATEGORY_SETS)]
    weights = 1.0 / np.arange(1, len(names) + 1) ** 0.8
    p = weights / weights.sum()
    name = f"cat_{index:02d}"
    if current and name == "cat_03":
        p = p.copy()
        p[0] -= 0.15
        p[1] += 0.15
    values = np.array(names, dtype=object)[rng.choice(len(names), n, p=p)]
    if current and name == "cat_08":
        values[rng.random(n) < 0.12] = "brand-new"
    return values


def make_data(rows: int) -> tuple[Path, Path]:
    """reference.parquet and current.parquet for `rows` rows, made once."""
    root = harness.cache_dir("data", "drift", str(rows))
    ref, cur = root / "reference.parquet", root / "current.parquet"
    signature = json.dumps(
        {"rows": rows, "seed": SEED, "numeric": NUMERIC_SHIFTS, "mix": MIX_SHIFTS, "v": 1}
    )
    marker = root / ".done"
    if marker.is_file() and marker.read_text() == signature and ref.is_file() and cur.is_file():
        return ref, cur
    harness.log(f"generating {rows:,} x {NUMERIC + CATEGORICAL} columns into {root}")
    for path, current in ((ref, False), (cur, True)):
        rng = np.random.default_rng([SEED, rows, int(current)])
        columns: dict[str, object] = {}
        for i in range(NUMERIC):
            name = f"num_{i:02d}"
            shift = NUMERIC_SHIFTS.get(name, 0.0) if current else 0.0
            columns[name] = _numeric_column(rng, i % 5, rows, shift)
        for i in range(CATEGORICAL):
            columns[f"cat_{i:02d}"] = pa.array(_categorical_column(rng, i, rows, current))
        pq.write_table(pa.table(columns), path)
    marker.write_text(signature)
    return ref, cur


# --------------------------------------------------------------------------- measuring


@dataclass
class Tool:
    """One competitor: a command reading the two Parquet files and printing a JSON line."""

    name: str
    argv: list[str]
    inproc: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)
    flagged: list[str] | None = None

    def case(self, ref: Path, cur: Path) -> Callable[[], None]:
        def run() -> None:
            with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
                argv = [*self.argv[:3], str(ref), str(cur), *self.argv[3:]]
                proc = subprocess.Popen(argv, stdout=out, stderr=err)
                # wait4 gives this child's own resource use; Popen.wait would discard it.
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(status)
                out.seek(0)
                err.seek(0)
                stdout, stderr = out.read().decode(), err.read().decode(errors="replace")
            if proc.returncode != 0:
                raise harness.CommandFailed([self.name], proc.returncode, stderr.strip()[-1500:])
            result = json.loads(stdout.strip().splitlines()[-1])
            self.inproc.append(float(result["seconds"]))
            self.rss_mib.append(usage.ru_maxrss / 1024)  # kilobytes on Linux
            self.flagged = sorted(result["flagged"])

        return run

    def reset(self) -> None:
        self.inproc, self.rss_mib, self.flagged = [], [], None


def tools(seaway_reads: str) -> list[Tool]:
    python = str(harness.project_bin() / "python")
    evidently = str(
        harness.competitor_venv(f"evidently-{EVIDENTLY_VERSION}", EVIDENTLY_REQUIREMENTS) / "python"
    )
    return [
        Tool("seaway", [python, "-c", SEAWAY_SCRIPT, seaway_reads]),
        Tool("evidently", [evidently, "-c", EVIDENTLY_SCRIPT]),
        Tool("scipy-loop", [python, "-c", SCIPY_SCRIPT]),
    ]


def expected_drift() -> list[str]:
    return sorted([*NUMERIC_SHIFTS, *MIX_SHIFTS])


def describe_flags(flagged: list[str] | None) -> str:
    if flagged is None:
        return "no result"
    shifted = set(expected_drift())
    found = [c for c in flagged if c in shifted]
    missed = [c for c in expected_drift() if c not in flagged]
    clean = [c for c in flagged if c not in shifted]
    text = f"found {len(found)}/{len(shifted)}"
    if missed:
        text += f" (missed {', '.join(missed)})"
    text += f", clean flagged {len(clean)}"
    if clean:
        text += f" ({', '.join(clean)})"
    return text


def scenario(rows: int, repeats: int, ev_repeats: int, all_tools: list[Tool]) -> list[Row]:
    ref, cur = make_data(rows)
    label = f"{rows // 1000:,}k rows" if rows < 1_000_000 else f"{rows // 1_000_000}M rows"
    harness.log(f"scenario: {label} (evidently: {ev_repeats} run(s))")
    for tool in all_tools:
        tool.reset()
    harness.warm_page_cache([ref, cur])
    load = harness.check_quiet()
    failures: dict[str, str] = {}
    cheap = [t for t in all_tools if t.name != "evidently"]
    evidently = [t for t in all_tools if t.name == "evidently"]
    snapshot = harness.load_snapshot()
    # One untimed round of the cheap tools (imports, page cache); Evidently only when it
    # runs more than once, as its single run at 1M rows takes minutes.
    warm = cheap + (evidently if ev_repeats > 1 else [])
    harness.measure({t.name: t.case(ref, cur) for t in warm}, repeats=1, failures=failures)
    for tool in warm:
        tool.reset()
    wall: dict[str, list[float]] = {t.name: [] for t in all_tools}
    for rep in range(repeats):
        active = [t for t in all_tools if t.name not in failures]
        if rep >= ev_repeats:
            active = [t for t in active if t.name != "evidently"]
        times = harness.measure(
            {t.name: t.case(ref, cur) for t in active}, repeats=1, failures=failures
        )
        for name, values in times.items():
            wall[name].extend(values)
    during = harness.other_load_since(snapshot)
    by_name = {t.name: t for t in all_tools}
    seaway = by_name["seaway"]
    rows_out: list[Row] = []
    busy = ""
    if load > harness.BUSY_THRESHOLD or during > harness.BUSY_THRESHOLD:
        busy = f"[busy: others used {load:.2f} cores before, {during:.2f} during] "
    for other in ("evidently", "scipy-loop"):
        tool = by_name[other]
        fail = f"{other} failed, {failures[other]} " if other in failures else ""
        once = "1 run " if other == "evidently" and ev_repeats == 1 else ""
        mem = ""
        if seaway.rss_mib and tool.rss_mib:
            a, b = statistics.median(seaway.rss_mib), statistics.median(tool.rss_mib)
            mem = f"peak RSS {a:,.0f} vs {b:,.0f} MiB ({b / a:.1f}x)"
        extra = {
            "other_load_before": round(load, 3),
            "other_load_during": round(during, 3),
            "peak_rss_mib": {"seaway": seaway.rss_mib, other: tool.rss_mib},
            "flagged": {"seaway": seaway.flagged, other: tool.flagged},
        }
        rows_out.append(
            Row(
                f"{label}: compare (in-process)",
                seaway.inproc or None,
                tool.inproc or None,
                other,
                (busy + fail + once + mem).strip(),
                extra,
            )
        )
        rows_out.append(
            Row(
                f"{label}: whole process",
                wall.get("seaway") or None,
                wall.get(other) or None,
                other,
                (busy + fail + once).strip(),
                {"other_load_before": round(load, 3), "other_load_during": round(during, 3)},
            )
        )
    return rows_out


def main(argv: list[str] | None = None) -> int:
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--rows", default=None, help="comma-separated row counts")
    extra.add_argument("--evidently-repeats", type=int, default=None)
    extra.add_argument(
        "--seaway-reads",
        choices=["columns", "tables"],
        default="columns",
        help="seaway reads each column when it compares it (default) or both whole tables",
    )
    known, rest = extra.parse_known_args(argv)
    args = harness.parse_args((__doc__ or "").splitlines()[0], rest)
    default_rows = "20000" if args.quick else "100000,1000000"
    sizes = [int(r.replace("_", "")) for r in (known.rows or default_rows).split(",")]
    all_tools = tools(known.seaway_reads)
    versions = {
        "seaway": harness.command_output(
            [harness.project_bin() / "python", "-c", "import seaway; print(seaway.__version__)"]
        ),
        "evidently": harness.command_output(
            [all_tools[1].argv[0], "-c", "import evidently; print(evidently.__version__)"]
        ),
        "pandas (evidently)": harness.command_output(
            [all_tools[1].argv[0], "-c", "import pandas; print(pandas.__version__)"]
        ),
        "numpy": harness.command_output(
            [harness.project_bin() / "python", "-c", "import numpy; print(numpy.__version__)"]
        ),
        "scipy": harness.command_output(
            [harness.project_bin() / "python", "-c", "import scipy; print(scipy.__version__)"]
        ),
    }
    harness.log("versions: " + ", ".join(f"{k} {v or '?'}" for k, v in versions.items()))
    rows: list[Row] = []
    flags: list[str] = []
    for size in sizes:
        ev_repeats = known.evidently_repeats or (args.repeats if size <= 300_000 else 1)
        rows.extend(scenario(size, args.repeats, min(ev_repeats, args.repeats), all_tools))
        for tool in all_tools:
            flags.append(f"  {size:>9,} rows  {tool.name:<10}  {describe_flags(tool.flagged)}")
    print()
    harness.report(
        f"seaway vs Evidently {EVIDENTLY_VERSION}: data drift, {NUMERIC} numeric + "
        f"{CATEGORICAL} categorical columns",
        rows,
        versions={k: v or "?" for k, v in versions.items()},
        json_path=args.json,
    )
    print()
    print(f"shifted columns: {', '.join(expected_drift())}")
    print(
        "  numeric, in standard deviations: "
        + ", ".join(f"{k} +{v}" for k, v in NUMERIC_SHIFTS.items())
    )
    print("  categorical: " + "; ".join(f"{k}: {v}" for k, v in MIX_SHIFTS.items()))
    print("flagged columns (found = shifted columns flagged; clean flagged = false alarms):")
    print("\n".join(flags))
    return 0


if __name__ == "__main__":
    sys.exit(main())
