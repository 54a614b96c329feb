"""seaway's live drift monitor: one window scored against a stored reference, against
Evidently 0.7.23's data-drift preset; and the monitor keeping up with a loaded gateway.

Run from the repository root with the project's virtualenv:

    .venv/bin/python bench/monitor.py [--quick] [--repeats N] [--json FILE]
        [--rows 1000000] [--chunk 100000] [--evidently-rows N | --no-evidently]
        [--minutes 10] [--sample-rate 1] [--window-rows 5000] [--interval 10]
        [--only window|keepup]

Window (`--only window`). The data of bench/drift.py (50 numeric and 10 categorical columns,
seeded; the current table has mean shifts in 5 numeric columns and mix shifts in 2
categorical ones). The reference table is profiled once (`seaway.stats.Profile`), written as
JSON and, in each timed process, read back: the stored reference the monitor uses. The
current table is the live window, rewritten once with row groups of `--chunk` rows, and each
process streams it chunk by chunk through `seaway.monitor.drift.WindowAccumulator`, then
builds the report and the figures a window stores. Timed in the process: from the first
chunk read to the finished figures (reading the chunks included, the profile's load not).
Windows of 100,000 rows and of `--rows` rows run against the same profile, so their peak
memory (the process' own VmHWM, printed from /proc as it ends) shows whether it grows with
the window.
Evidently runs bench/drift.py's script (its own virtualenv, `Report([DataDriftPreset()])`
on the raw reference and current tables) once at `--evidently-rows` (default `--rows`; about
five minutes at a million rows). Both tools' flagged columns are compared.

Keep-up (`--only keepup`). A project with the serving benchmark's LogisticRegression
registered, its inputs declared (20 named float columns), its reference profile built from
the training data and deployed. `seaway serve --workers 1 --sample-rate R` runs as a
subprocess with the gateway's default sample cap (20,000 x the rate per 5 s flush; what it
drops beyond is reported, as the gateway counts it); wrk drives it
(one thread, 32 connections, one-row KServe v1 requests cycling through 5,000 rows of the
training data) for `--minutes`, after `--baseline` seconds without the monitor, at the
default sample rate (a gateway of its own) and at R. A monitor
process calls `score_drift` in a loop (immediately again when it scored something, after
one second otherwise). Every `--interval` seconds the benchmark samples the gateway's
request counter (/metrics), the request log's newest id, the monitor's cursor, the windows
stored, and the CPU and memory of both processes. Lag = newest logged id minus the cursor
(one row per request). After the load stops, the monitor gets up to 60 s to catch up.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import drift as drift_bench
import harness
from harness import Row

import serving as serving_bench

MODEL = "lr"
CONNECTIONS = 32
BODIES = 5000
DRAIN_S = 60.0

# --------------------------------------------------------------------------- window

WINDOW_SCRIPT = """\
import json, sys, time
import pyarrow.parquet as pq
from seaway.monitor.drift import WindowAccumulator
from seaway.stats.drift import Thresholds
from seaway.stats.profile import Profile
profile = Profile.from_dict(json.loads(open(sys.argv[1], encoding="utf-8").read()))
limit = int(sys.argv[3])
start = time.perf_counter()
acc = WindowAccumulator(profile)
# Not memory-mapped: mapped pages of the file would count as the process' memory.
reader = pq.ParquetFile(sys.argv[2], memory_map=False,
                        read_dictionary=[c for c in profile.columns if c.startswith("cat_")])
adding = 0.0
for group in range(reader.num_row_groups):
    if acc.rows >= limit:
        break
    chunk = reader.read_row_group(group)
    chunk = chunk.slice(0, limit - acc.rows)
    t0 = time.perf_counter()
    acc.add({name: chunk.column(name) for name in chunk.column_names})
    adding += time.perf_counter() - t0
    del chunk  # released before the next one is read, as a stream of chunks would be
t0 = time.perf_counter()
report = acc.report()
# What the monitor stores for the window (PSI above 0.2 marks a column, as score_drift does).
figures = acc.figures(Thresholds(psi=0.2), method="psi")
text = json.dumps(figures)
adding += time.perf_counter() - t0
seconds = time.perf_counter() - start
print(json.dumps({
    "seconds": seconds,
    "scoring": adding,
    "rows": acc.rows,
    "flagged": report.drifted_columns,
    "psi_flagged": sorted(n for n, c in figures.items() if c["drifted"]),
    "figures_bytes": len(text),
}))
"""

# The peak memory of the process itself, printed last. A child's ru_maxrss (os.wait4) also
# counts the parent's peak from before the exec on Linux, so it is read from /proc instead.
HWM_TAIL = """
import json as _json
with open("/proc/self/status") as _fh:
    for _line in _fh:
        if _line.startswith("VmHWM:"):
            print(_json.dumps({"hwm_mib": int(_line.split()[1]) / 1024}))
"""

# Run in a child, so that this process never holds the tables (see HWM_TAIL).
PREP_SCRIPT = """\
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import drift
import pyarrow.parquet as pq
from seaway.stats.profile import Profile
rows, chunk, root = int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
ref, cur = drift.make_data(rows)
profile, window = root / "profile.json", root / f"window-{chunk}.parquet"
marker = root / f".ready-{chunk}"
signature = f"{ref.stat().st_mtime_ns}:{cur.stat().st_mtime_ns}"
if not (marker.is_file() and marker.read_text() == signature):
    t0 = time.perf_counter()
    built = Profile.from_columns(pq.read_table(ref, memory_map=True))
    profile.write_text(json.dumps(built.to_dict()), encoding="utf-8")
    print(f"profiled {rows:,} reference rows in {time.perf_counter() - t0:.1f} s "
          f"({profile.stat().st_size / 1e6:.2f} MB of JSON)", file=sys.stderr)
    pq.write_table(pq.read_table(cur), window, row_group_size=chunk)
    marker.write_text(signature)
print(json.dumps({"reference": str(ref), "current": str(cur), "profile": str(profile),
                  "window": str(window)}))
"""


@dataclass
class Proc:
    """A benchmarked process: its in-process time, whole time and peak memory per run."""

    name: str
    argv: list[str]
    inproc: list[float] = field(default_factory=list)
    scoring: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)

    def run(self) -> None:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(self.argv, stdout=out, stderr=err)
            # wait4 gives this child's own resource use; Popen.wait would discard it.
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read().decode(), err.read().decode(errors="replace")
        if proc.returncode != 0:
            raise harness.CommandFailed([self.name], proc.returncode, stderr.strip()[-1500:])
        self.result = {}
        for line in stdout.splitlines():
            if line.startswith("{"):
                self.result.update(json.loads(line))
        self.inproc.append(float(self.result["seconds"]))
        if "scoring" in self.result:
            self.scoring.append(float(self.result["scoring"]))
        # ru_maxrss is in kilobytes on Linux; it is an upper bound (see HWM_TAIL).
        self.rss_mib.append(float(self.result.get("hwm_mib", usage.ru_maxrss / 1024)))


def prepare(rows: int, chunk: int) -> dict[str, Path]:
    """bench/drift.py's tables, the stored profile of the reference and the window in
    row groups of `chunk` rows (the chunks that stream in), made once by a child process."""
    root = harness.cache_dir("data", "monitor", str(rows))
    argv = [str(harness.project_bin() / "python"), "-c", PREP_SCRIPT, str(harness.BENCH_DIR)]
    done = subprocess.run([*argv, str(rows), str(chunk), str(root)], capture_output=True, text=True)
    if done.stderr.strip():
        harness.log(done.stderr.strip()[-1500:])
    if done.returncode != 0:
        raise harness.CommandFailed(["prepare"], done.returncode, done.stderr[-1500:])
    return {k: Path(v) for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items()}


def flag_diff(seaway: list[str], other: list[str]) -> str:
    only_s = sorted(set(seaway) - set(other))
    only_o = sorted(set(other) - set(seaway))
    if not only_s and not only_o:
        return "same columns"
    parts = []
    if only_s:
        parts.append(f"only seaway: {', '.join(only_s)}")
    if only_o:
        parts.append(f"only Evidently: {', '.join(only_o)}")
    return "; ".join(parts)


def window_benchmark(args: argparse.Namespace) -> tuple[list[Row], list[str]]:
    python = str(harness.project_bin() / "python")
    rows, chunk = args.rows, args.chunk
    small = min(100_000, rows)
    files = prepare(rows, chunk)
    prof, win = files["profile"], files["window"]
    harness.warm_page_cache([prof, win])

    def window_proc(size: int, profile: Path, window: Path) -> Proc:
        argv = [python, "-c", WINDOW_SCRIPT + HWM_TAIL, str(profile), str(window), str(size)]
        return Proc(f"seaway {size:,}", argv)

    procs: dict[str, Proc] = {}
    if small < rows:
        procs["small"] = window_proc(small, prof, win)
    procs["full"] = window_proc(rows, prof, win)
    ev_rows = None if args.no_evidently else (args.evidently_rows or rows)
    if ev_rows is not None and ev_rows != rows:
        # Like for like: seaway on the Evidently-sized data too.
        e_files = prepare(ev_rows, min(chunk, ev_rows))
        e_prof, e_win = e_files["profile"], e_files["window"]
        harness.warm_page_cache([e_prof, e_win])
        procs["same"] = window_proc(ev_rows, e_prof, e_win)
    load = harness.check_quiet()
    snapshot = harness.load_snapshot()
    failures: dict[str, str] = {}
    # One untimed round (imports, page cache), then alternating timed rounds.
    harness.measure({k: p.run for k, p in procs.items()}, repeats=1, failures=failures)
    for p in procs.values():
        p.inproc, p.scoring, p.rss_mib = [], [], []
    wall = harness.measure(
        {k: p.run for k, p in procs.items() if k not in failures},
        repeats=args.repeats,
        failures=failures,
    )
    during = harness.other_load_since(snapshot)

    ev: Proc | None = None
    ev_wall: list[float] = []
    ev_fail = ""
    if ev_rows is not None:
        bin_dir = harness.competitor_venv(
            f"evidently-{drift_bench.EVIDENTLY_VERSION}", drift_bench.EVIDENTLY_REQUIREMENTS
        )
        e_files = prepare(ev_rows, min(chunk, ev_rows))
        e_ref, e_cur = e_files["reference"], e_files["current"]
        harness.warm_page_cache([e_ref, e_cur])
        ev = Proc(
            "evidently",
            [
                str(bin_dir / "python"),
                "-c",
                drift_bench.EVIDENTLY_SCRIPT + HWM_TAIL,
                str(e_ref),
                str(e_cur),
            ],
        )
        harness.log(f"Evidently on {ev_rows:,} rows (minutes at a million rows)")
        ev_load = harness.check_quiet()
        ev_snapshot = harness.load_snapshot()
        ev_failures: dict[str, str] = {}
        ev_times = harness.measure(
            {"evidently": ev.run}, repeats=args.evidently_repeats, failures=ev_failures
        )
        ev_during = harness.other_load_since(ev_snapshot)
        ev_fail = ev_failures.get("evidently", "")
        ev_wall = ev_times.get("evidently", [])
        load, during = max(load, ev_load), max(during, ev_during)

    busy = ""
    if load > harness.BUSY_THRESHOLD or during > harness.BUSY_THRESHOLD:
        busy = f"[busy: others used {load:.2f} cores before, {during:.2f} during] "
    full_p = procs["full"]
    small_p = procs.get("small", full_p)
    same = procs.get("same", full_p)
    out: list[Row] = []
    label = f"{rows // 1_000_000}M" if rows >= 1_000_000 else f"{rows // 1000:,}k"

    def mem(p: Proc) -> str:
        return f"{statistics.median(p.rss_mib):,.0f} MiB" if p.rss_mib else "-"

    note = f"peak RSS {mem(small_p)} at {small:,} rows, {mem(full_p)} at {rows:,}"
    out.append(
        Row(
            f"window {label} rows: stream + score (in-process)",
            full_p.inproc or None,
            None,
            "-",
            (busy + note).strip(),
            {"peak_rss_mib": {"small": small_p.rss_mib, "full": full_p.rss_mib}},
        )
    )
    out.append(
        Row(
            f"window {label} rows: scoring only (add + report)",
            full_p.scoring or None,
            None,
            "-",
            "reading the Parquet chunks left out",
        )
    )
    if small_p is not full_p:
        out.append(
            Row(
                f"window {small // 1000:,}k rows: stream + score (in-process)",
                small_p.inproc or None,
                None,
                "-",
                f"peak RSS {mem(small_p)}",
            )
        )
    if ev is not None:
        ev_label = (
            f"{ev_rows // 1_000_000}M"
            if ev_rows and ev_rows >= 1_000_000
            else (f"{(ev_rows or 0) // 1000:,}k")
        )
        ev_note = f"evidently failed, {ev_fail} " if ev_fail else ""
        mem_note = ""
        if same.rss_mib and ev.rss_mib:
            a, b = statistics.median(same.rss_mib), statistics.median(ev.rss_mib)
            mem_note = f"peak RSS {a:,.0f} vs {b:,.0f} MiB ({b / a:.1f}x)"
        runs = f"{len(ev.inproc)} run " if len(ev.inproc) == 1 else ""
        out.append(
            Row(
                f"window {ev_label} rows vs Evidently DataDriftPreset (in-process)",
                same.inproc or None,
                ev.inproc or None,
                "evidently",
                (busy + ev_note + runs + mem_note).strip(),
                {
                    "peak_rss_mib": {"seaway": same.rss_mib, "evidently": ev.rss_mib},
                    "flagged": {
                        "seaway": same.result.get("flagged"),
                        "evidently": ev.result.get("flagged"),
                    },
                },
            )
        )
        out.append(
            Row(
                f"window {ev_label} rows vs Evidently (whole process)",
                wall.get("same" if "same" in procs else "full") or None,
                ev_wall or None,
                "evidently",
                (busy + runs).strip(),
            )
        )
    lines = []
    for key, p in procs.items():
        if not p.result:
            lines.append(f"  {p.name:<16} failed: {failures.get(key, '?')}")
            continue
        lines.append(
            f"  {p.name:<16} auto rule: {drift_bench.describe_flags(sorted(p.result['flagged']))}"
        )
        lines.append(
            f"  {'':<16} PSI > 0.2 (the monitor's window rule): "
            f"{', '.join(p.result['psi_flagged']) or 'none'}; figures "
            f"{p.result['figures_bytes'] / 1000:.0f} kB of JSON"
        )
    if ev is not None and ev.result:
        flagged = sorted(ev.result["flagged"])
        lines.append(f"  {'evidently':<16} {drift_bench.describe_flags(flagged)}")
        if same.result:
            lines.append(f"  seaway vs Evidently: {flag_diff(same.result['flagged'], flagged)}")
    return out, lines


# --------------------------------------------------------------------------- keep-up

SETUP_SCRIPT = """\
import sys
from pathlib import Path
import numpy as np
import pyarrow as pa
from sklearn.datasets import make_classification
from seaway.monitor.reference import build_reference
from seaway.project import Project
from seaway.registry import register_model
from seaway.serving.routes import deploy
models, names = Path(sys.argv[1]), sys.argv[2].split(",")
project = Project(Path.cwd())
version = register_model(project, "lr", models / "lr.skops", flavor="sklearn").version
# The serving fixture's training data (serving_fixtures/train.py).
X, _ = make_classification(n_samples=20000, n_features=20, random_state=0)
ref = build_reference(project, version.ref, pa.table({n: X[:, i] for i, n in enumerate(names)}))
deploy(project, version.ref)
print(version.ref, ref.rows, sorted(ref.features.columns)[:3],
      None if ref.predictions is None else list(ref.predictions.columns))
project.close()
"""

MONITOR_SCRIPT = """\
import json, sys, time
from pathlib import Path
from seaway.monitor.drift import score_drift
from seaway.project import Project
project = Project(Path.cwd())
model, stop_file = sys.argv[1], Path(sys.argv[2])
while not stop_file.exists():
    t0 = time.perf_counter()
    windows = score_drift(project, model)
    took = time.perf_counter() - t0
    print(json.dumps({"t": time.time(), "windows": len(windows),
                      "rows": sum(w.rows for w in windows), "seconds": took,
                      "breached": sum(1 for w in windows if w.breached)}), flush=True)
    if not windows:
        time.sleep(1.0)
project.close()
"""

# One-row KServe v1 bodies, one per line, sent in turn (wrk's `request` hook).
WRK_CYCLE = """
local path = os.getenv("BENCH_PATH")
local bodies = {}
for line in io.lines(os.getenv("BENCH_BODIES")) do bodies[#bodies + 1] = line end
local headers = {["Content-Type"] = "application/json"}
local i = 0
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", path, headers, bodies[i])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "errors": %d, "p50": %d, "p99": %d}\\n',
    summary.requests, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def feature_names() -> list[str]:
    return [f"f{i:02d}" for i in range(20)]


def spec_text(window_rows: int) -> str:
    inputs = "\n".join(f"        - {{name: {n}, type: float}}" for n in feature_names())
    return (
        "name: bench-monitor\n"
        "models:\n"
        "  lr:\n"
        "    schema:\n"
        "      inputs:\n"
        f"{inputs}\n"
        "monitoring:\n"
        "  lr:\n"
        f"    window: {{rows: {window_rows}}}\n"
    )


def prepare_keepup(work: Path, data: Path, window_rows: int) -> tuple[Path, Path]:
    """A fresh project (the request log of a long run is large) and the wrk bodies."""
    serving_bench.prepare_data(data)
    project = work / "project"
    harness.remove(project)
    project.mkdir(parents=True)
    (project / "seaway.yaml").write_text(spec_text(window_rows))
    harness.log("registering lr, building its reference profile and deploying it")
    done = subprocess.run(
        [
            str(harness.project_bin() / "python"),
            "-c",
            SETUP_SCRIPT,
            str(data),
            ",".join(feature_names()),
        ],
        cwd=project,
        env=harness.child_env(serving_bench.quiet_env({})),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise harness.CommandFailed(["setup"], done.returncode, done.stderr[-1500:])
    harness.log(f"  {done.stdout.strip()}")
    bodies = work / "bodies.jsonl"
    import numpy as np
    from sklearn.datasets import make_classification

    X, _ = make_classification(n_samples=20000, n_features=20, random_state=0)
    rng = np.random.default_rng(7)
    picked = X[rng.choice(len(X), BODIES, replace=False)]
    bodies.write_text("".join(json.dumps({"instances": [r.tolist()]}) + "\n" for r in picked))
    return project, bodies


def requests_total(text: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith("seaway_requests_total{") and f'model="{MODEL}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def dropped_total(text: str) -> float:
    m = re.search(r"^seaway_request_log_dropped_total\s+(\S+)", text, re.M)
    return float(m.group(1)) if m else 0.0


def scrape(url: str) -> str:
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
            return str(response.read().decode())
    except OSError:
        return ""


def proc_figures(pid: int) -> tuple[float, float, float]:
    """(CPU seconds, RSS MiB, peak RSS MiB) of a process (0s when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            rest = fh.read().rsplit(")", 1)[1].split()
        cpu = (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
        rss = hwm = 0.0
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) / 1024
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) / 1024
        return cpu, rss, hwm
    except (OSError, IndexError, ValueError):
        return 0.0, 0.0, 0.0


def store_figures(db: Path) -> tuple[int, int, int, int]:
    """(newest request_log id, monitor cursor, windows, breached windows)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        newest = conn.execute("select coalesce(max(id), 0) from request_log").fetchone()[0]
        row = conn.execute(
            "select position from monitor_cursors where name = ?", (f"drift:{MODEL}@1",)
        ).fetchone()
        windows, breached = conn.execute(
            "select count(*), coalesce(sum(breached), 0) from monitor_windows"
        ).fetchone()
    finally:
        conn.close()
    return int(newest), int(row[0]) if row else 0, int(windows), int(breached)


def db_mib(db: Path) -> float:
    total = 0
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(OSError):
            total += (db.parent / (db.name + suffix)).stat().st_size
    return total / 2**20


def start_wrk(script: Path, url: str, path: str, bodies: Path, seconds: float) -> Any:
    argv = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "--timeout", "10s"]
    argv += ["-s", str(script), url]
    env = harness.child_env({"BENCH_BODIES": str(bodies), "BENCH_PATH": path})
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish_wrk(proc: Any) -> dict[str, Any]:
    stdout, stderr = proc.communicate(timeout=120)
    line = next((ln for ln in stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {(stderr or stdout)[-500:]}")
    data = json.loads(line[len("WRKJSON ") :])
    data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
    return dict(data)


def stop_group(proc: Any) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def gateway_for(project: Path, logs: Path, rate: float, name: str) -> serving_bench.Server:
    # The default cap: without one, a gateway whose flush thread falls behind (it shares the
    # GIL with the request loop) writes ever larger batches and its log stalls.
    env = serving_bench.quiet_env({})
    port = serving_bench.free_port()
    argv = [str(harness.project_bin() / "seaway"), "serve", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--workers", "1", "--sample-rate", f"{rate:g}"]
    return serving_bench.Server(name, argv, project, env, port, logs / f"{name}.log")


def baseline(gateway: serving_bench.Server, script: Path, bodies: Path, seconds: float) -> float:
    """req/s of the gateway under the load alone (the first request already answered)."""
    path = f"/v1/models/{MODEL}:predict"
    gateway.start(path, bodies.read_text().splitlines()[0].encode())
    if gateway.failure:
        raise RuntimeError(f"the gateway did not start: {gateway.failure}")
    return float(finish_wrk(start_wrk(script, gateway.url(""), path, bodies, seconds))["rps"])


def keepup_benchmark(args: argparse.Namespace) -> tuple[list[str], dict[str, Any]]:
    if not harness.command_works(["wrk", "--version"]) and not Path("/usr/bin/wrk").exists():
        return ["keep-up: NOT MEASURED: wrk is not installed (apt-get install wrk)"], {}
    work = harness.cache_dir("workspaces", "monitor")
    data = harness.cache_dir("data", "serving")
    project, bodies = prepare_keepup(work, data, args.window_rows)
    db = project / ".seaway" / "seaway.db"
    script = work / "cycle.lua"
    script.write_text(WRK_CYCLE)
    logs = harness.cache_dir("workspaces", "monitor", "logs")
    path = f"/v1/models/{MODEL}:predict"
    summary: dict[str, Any] = {}
    samples: list[dict[str, Any]] = []

    # What logging every request costs the gateway: the default rate first, for reference.
    plain = gateway_for(project, logs, 0.01, "gateway-default-rate")
    try:
        summary["default_rate_rps"] = baseline(plain, script, bodies, args.baseline)
    except RuntimeError as exc:
        return [f"keep-up: NOT MEASURED: {exc}"], {}
    finally:
        plain.stop()
    harness.log(f"  --sample-rate 0.01, no monitor: {summary['default_rate_rps']:,.0f} req/s")
    gateway = gateway_for(project, logs, args.sample_rate, "gateway")
    monitor: Any = None
    stop_file = work / "monitor.stop"
    stop_file.unlink(missing_ok=True)
    try:
        try:
            summary["baseline_rps"] = baseline(gateway, script, bodies, args.baseline)
        except RuntimeError as exc:
            return [f"keep-up: NOT MEASURED: {exc}"], {}
        assert gateway.proc is not None
        harness.log(
            f"  --sample-rate {args.sample_rate:g}, no monitor: "
            f"{summary['baseline_rps']:,.0f} req/s"
        )
        env = serving_bench.quiet_env({})
        monitor = subprocess.Popen(
            [str(harness.project_bin() / "python"), "-c", MONITOR_SCRIPT, MODEL, str(stop_file)],
            cwd=project,
            env=harness.child_env(env),
            stdout=(logs / "monitor.jsonl").open("w"),
            stderr=(logs / "monitor.err").open("w"),
            start_new_session=True,
        )
        g_pid, m_pid = gateway.proc.pid, monitor.pid
        started = time.monotonic()

        def sample(phase: str) -> dict[str, Any]:
            text = scrape(gateway.url(""))
            newest, cursor, windows, breached = store_figures(db)
            g_cpu, g_rss, _ = proc_figures(g_pid)
            m_cpu, m_rss, m_hwm = proc_figures(m_pid)
            return {
                "t": time.monotonic() - started,
                "phase": phase,
                "requests": requests_total(text),
                "dropped": dropped_total(text),
                "logged": newest,
                "scored": cursor,
                "windows": windows,
                "breached": breached,
                "gateway_cpu": g_cpu,
                "gateway_rss": g_rss,
                "monitor_cpu": m_cpu,
                "monitor_rss": m_rss,
                "monitor_hwm": m_hwm,
                "db_mib": db_mib(db),
            }

        # The baselines' requests are scored first, so the load starts with no backlog.
        time.sleep(6)  # the gateway's flush interval is 5 s
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            s = sample("start")
            if s["logged"] - s["scored"] < args.window_rows:
                break
            time.sleep(1.0)
        summary["backlog_s"] = time.monotonic() - started
        if monitor.poll() is not None:
            err = (logs / "monitor.err").read_text()[-1500:]
            return [f"keep-up: NOT MEASURED: the monitor exited: {err}"], {}
        load = harness.check_quiet()
        harness.log(f"load for {args.minutes:g} min with the monitor running")
        wrk = start_wrk(script, gateway.url(""), path, bodies, args.minutes * 60)
        started = time.monotonic()
        wall_start = time.time()
        samples.append(sample("load"))
        while wrk.poll() is None:
            time.sleep(max(0.0, args.interval - (time.monotonic() - started) % args.interval))
            if wrk.poll() is not None:
                break
            samples.append(sample("load"))
            print(format_sample(samples[0], samples[-2], samples[-1]), flush=True)
        result = finish_wrk(wrk)
        load_end = time.monotonic() - started
        summary["monitor_calls"] = monitor_calls(logs / "monitor.jsonl", wall_start, time.time())
        during = harness.other_load(0.5)
        summary.update({"load_rps": result["rps"], "errors": result["errors"]})
        summary["p99_us"] = result["p99"]
        # After the load: the gateway's last flush, then how long the monitor needs.
        last = sample("drain")
        flushed = None
        drained = None
        deadline = time.monotonic() + DRAIN_S
        while time.monotonic() < deadline:
            time.sleep(1.0)
            s = sample("drain")
            if flushed is None and s["t"] - load_end >= 5.5 and s["logged"] == last["logged"]:
                flushed = s
            last = s
            if flushed is not None and s["logged"] - s["scored"] < args.window_rows:
                drained = s["t"] - flushed["t"]
                break
        samples.append(last)
        print(format_sample(samples[0], samples[-2], samples[-1]), flush=True)
        summary["lag_at_flush"] = (
            flushed["logged"] - flushed["scored"] if flushed is not None else None
        )
        summary["drain_s"] = drained
        summary["other_load"] = max(load, during)
    finally:
        stop_file.touch()
        if monitor is not None:
            try:
                monitor.wait(timeout=60)
            except subprocess.TimeoutExpired:
                stop_group(monitor)
        gateway.stop()
    lines = keepup_report(samples, summary, args)
    summary["samples"] = samples
    return lines, summary


def monitor_calls(log: Path, start: float, end: float) -> dict[str, float]:
    """The monitor's own account of the load: calls, rows scored and seconds spent scoring."""
    calls = rows = 0
    busy = 0.0
    for line in log.read_text().splitlines():
        with contextlib.suppress(ValueError, KeyError):
            entry = json.loads(line)
            if start <= entry["t"] <= end:
                calls += 1
                rows += int(entry["rows"])
                if entry["rows"]:
                    busy += float(entry["seconds"])
    return {"calls": calls, "rows": rows, "busy_s": busy, "span_s": end - start}


def format_sample(first: dict[str, Any], a: dict[str, Any], b: dict[str, Any]) -> str:
    dt = max(b["t"] - a["t"], 1e-6)
    lag = b["logged"] - b["scored"]
    # Lag in seconds of traffic at the run's mean logging rate (the gateway logs in bursts).
    rate = (b["logged"] - first["logged"]) / max(b["t"] - first["t"], 1e-6)
    return (
        f"{b['t']:>6.0f}  {b['phase']:<5}  {(b['requests'] - a['requests']) / dt:>9,.0f}  "
        f"{(b['logged'] - a['logged']) / dt:>9,.0f}  {(b['scored'] - a['scored']) / dt:>9,.0f}  "
        f"{lag:>9,}  {(lag / rate if rate > 0 else float('nan')):>6.1f}  "
        f"{b['windows']:>7,}  {b['monitor_rss']:>7,.0f}  "
        f"{100 * (b['monitor_cpu'] - a['monitor_cpu']) / dt:>5.0f}  "
        f"{100 * (b['gateway_cpu'] - a['gateway_cpu']) / dt:>5.0f}  {b['db_mib']:>7,.0f}"
    )


HEADER = (
    f"{'t s':>6}  {'phase':<5}  {'gw req/s':>9}  {'logged/s':>9}  {'scored/s':>9}  "
    f"{'lag rows':>9}  {'lag s':>6}  {'windows':>7}  {'mon MiB':>7}  {'mon %':>5}  "
    f"{'gw %':>5}  {'db MiB':>7}"
)


def keepup_report(
    samples: list[dict[str, Any]], summary: dict[str, Any], args: argparse.Namespace
) -> list[str]:
    load = [s for s in samples if s["phase"] == "load"]
    if len(load) < 2:
        return ["keep-up: too few samples (run longer than --interval)"]
    first, last = load[0], load[-1]
    dt = last["t"] - first["t"]
    served = (last["requests"] - first["requests"]) / dt
    logged = (last["logged"] - first["logged"]) / dt
    scored = (last["scored"] - first["scored"]) / dt
    lags = [s["logged"] - s["scored"] for s in load]
    half = load[len(load) // 2 :]
    slope = 0.0
    if len(half) >= 2:
        ts = [s["t"] for s in half]
        ls = [s["logged"] - s["scored"] for s in half]
        mt, ml = statistics.fmean(ts), statistics.fmean(ls)
        var = sum((t - mt) ** 2 for t in ts)
        slope = sum((t - mt) * (v - ml) for t, v in zip(ts, ls, strict=True)) / var if var else 0.0
    monitor_cpu = (last["monitor_cpu"] - first["monitor_cpu"]) / dt
    gateway_cpu = (last["gateway_cpu"] - first["gateway_cpu"]) / dt
    peak_rss = max(s["monitor_hwm"] for s in samples)
    calls = summary.get("monitor_calls") or {"calls": 0, "rows": 0, "busy_s": 0.0, "span_s": 0}
    busy = float(calls["busy_s"])
    # The lag moves in bursts (the gateway writes its log every 5 s and a window closes every
    # `--window-rows`), so its trend over a few samples is noisy. The monitor keeps up when it
    # had idle time between calls, scored what was logged, and caught up once the load ended.
    bounded = (
        busy < 0.9 * max(float(calls["span_s"]), 1e-9)
        and scored >= 0.95 * logged
        and summary.get("drain_s") is not None
    )
    summary.update(
        {
            "served_rps": served,
            "logged_rps": logged,
            "scored_rps": scored,
            "max_lag_rows": max(lags),
            "lag_slope_rows_per_s": slope,
            "monitor_cpu_cores": monitor_cpu,
            "gateway_cpu_cores": gateway_cpu,
            "monitor_peak_rss_mib": peak_rss,
            "bounded": bounded,
            "dropped": last["dropped"],
            "windows": last["windows"] - first["windows"],
            "breached": last["breached"] - first["breached"],
        }
    )
    out = [
        f"Keep-up: gateway (1 worker, --sample-rate {args.sample_rate:g}) under wrk "
        f"({CONNECTIONS} connections) for {args.minutes:g} min, score_drift in a loop, "
        f"windows of {args.window_rows:,} rows",
        f"  served {served:,.0f} req/s with the monitor (wrk: {summary.get('load_rps', 0):,.0f} "
        f"req/s, p99 {summary.get('p99_us', 0) / 1000:.1f} ms, {summary.get('errors', 0)} "
        f"errors); without it {summary.get('baseline_rps', 0):,.0f} req/s, and "
        f"{summary.get('default_rate_rps', 0):,.0f} req/s at the default --sample-rate 0.01",
        f"  logged {logged:,.0f} rows/s, scored {scored:,.0f} rows/s "
        f"({scored / logged:.1%} of logged); samples dropped by the gateway: "
        f"{last['dropped']:,.0f}",
        f"  lag: max {max(lags):,} rows ({max(lags) / max(logged, 1):.1f} s of traffic), "
        f"trend over the second half {slope:+,.1f} rows/s -> "
        f"{'bounded: the monitor keeps up' if bounded else 'the monitor does NOT keep up'}",
        f"  after the load: {summary.get('lag_at_flush')} rows behind at the gateway's last "
        "flush, "
        + (
            f"caught up (lag < one window) {summary['drain_s']:.0f} s later"
            if summary.get("drain_s") is not None
            else f"not caught up within {DRAIN_S:.0f} s"
        ),
        f"  CPU: gateway {gateway_cpu:.2f} cores, monitor {monitor_cpu:.2f} cores "
        f"(the machine has {os.cpu_count()}); monitor peak RSS {peak_rss:,.0f} MiB",
        f"  the monitor spent {busy:.0f} s of {calls['span_s']:.0f} s scoring "
        f"({busy / max(calls['span_s'], 1e-9):.0%}), {calls['rows'] / max(busy, 1e-9):,.0f} rows "
        "per second of scoring: its capacity on this machine while sharing it",
        f"  windows stored {summary['windows']:,} ({summary['breached']:,} breached); "
        f"store {last['db_mib']:,.0f} MiB after the run",
    ]
    if summary.get("other_load", 0) > harness.BUSY_THRESHOLD:
        out.append(f"  [busy: other processes used {summary['other_load']:.2f} cores]")
    return out


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--rows", type=int, default=None, help="window rows (default 1,000,000)")
    extra.add_argument("--chunk", type=int, default=100_000, help="rows per streamed chunk")
    extra.add_argument("--evidently-rows", type=int, default=None)
    extra.add_argument("--evidently-repeats", type=int, default=1)
    extra.add_argument("--no-evidently", action="store_true")
    extra.add_argument("--minutes", type=float, default=None, help="keep-up load (default 10)")
    extra.add_argument("--baseline", type=float, default=20.0, help="seconds without monitor")
    extra.add_argument("--sample-rate", type=float, default=1.0)
    extra.add_argument("--window-rows", type=int, default=5000)
    extra.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    extra.add_argument("--only", choices=["window", "keepup"], default=None)
    known, rest = extra.parse_known_args(argv)
    args = harness.parse_args((__doc__ or "").splitlines()[0], rest)
    for key, value in vars(known).items():
        setattr(args, key, value)
    if args.rows is None:
        args.rows = 100_000 if args.quick else 1_000_000
    if args.quick and args.evidently_rows is None and not args.no_evidently:
        args.evidently_rows = 20_000
    if args.minutes is None:
        args.minutes = 1.0 if args.quick else 10.0
    versions = {
        "seaway": harness.command_output(
            [harness.project_bin() / "python", "-c", "import seaway; print(seaway.__version__)"]
        )
        or "?",
    }
    rows: list[Row] = []
    notes: list[str] = []
    extra_json: dict[str, Any] = {}
    if args.only in (None, "window"):
        rows, notes = window_benchmark(args)
        if not args.no_evidently:
            bin_dir = harness.competitor_venv(
                f"evidently-{drift_bench.EVIDENTLY_VERSION}", drift_bench.EVIDENTLY_REQUIREMENTS
            )
            versions["evidently"] = serving_bench.package_version(bin_dir, "evidently")
    keep: list[str] = []
    if args.only in (None, "keepup"):
        print(HEADER, flush=True)
        keep, extra_json = keepup_benchmark(args)
    print()
    if rows:
        harness.report(
            "seaway's drift monitor: a window against a stored reference profile"
            + ("" if args.no_evidently else f" vs Evidently {drift_bench.EVIDENTLY_VERSION}"),
            rows,
            versions=versions,
            json_path=None,
        )
        print()
        print(f"shifted columns: {', '.join(drift_bench.expected_drift())}")
        print("flagged columns (auto rule: seaway.stats' default decision, as in drift.py):")
        print("\n".join(notes))
        print()
    if keep:
        print("\n".join(keep))
    if args.json is not None:
        payload_rows = [
            {
                "scenario": r.scenario,
                "seaway": r.seaway,
                "competitor": r.competitor,
                "ratio": harness.row_ratio(r),
                "note": r.note,
                **({"extra": r.extra} if r.extra else {}),
            }
            for r in rows
        ]
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "machine": harness.machine_info(),
                    "versions": versions,
                    "window": payload_rows,
                    "keepup": extra_json,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
