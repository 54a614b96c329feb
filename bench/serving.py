"""seaway's gateway vs a hand-written FastAPI endpoint, MLflow `models serve` and BentoML 1.4:
online inference of scikit-learn models over HTTP on 127.0.0.1.

Run from the repository root with the project's virtualenv:

    .venv/bin/python bench/serving.py [--quick] [--repeats N] [--json FILE] [--only lr,hgb]
                                      [--seconds S]

Workload (issue #5): `LogisticRegression` ("lr") and `HistGradientBoostingClassifier` ("hgb")
fitted on `make_classification(n_samples=20000, n_features=20, random_state=0)`; every server
answers with `predict_proba`. wrk (a separate process, one thread) drives each server for 15 s
a run (`--quick`: 3 s) with the same KServe v1 body, `{"instances": [[20 floats]]}`:

  1 row, 1 connection      latency floor of the server (seaway's added latency is taken here)
  1 row, 32 connections    throughput
  64 rows, 32 connections  batch requests
  adaptive batching        1 row, 32 connections, server-side batching (seaway, BentoML)
  90/10 split + shadow     seaway only: two versions 90/10 and a third mirroring 10%,
                           against seaway's own no-split figure
  OIP v2 body              seaway only: the same row as an Open Inference Protocol v2 tensor

Every server runs one worker process with native thread pools limited to one thread
(`OMP_NUM_THREADS=1` and friends, the same environment for everyone). Each server is started
once per model and kept running; its scenarios are measured in alternating rounds (seaway,
fastapi, mlflow, bentoml, then the next scenario; the order reverses every round), after an
untimed warm-up. The in-process floor (`predict_proba` on one row, no HTTP) is measured in a
fresh process with the same thread limits. See bench/README.md for the servers' setup.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import harness

FASTAPI_VERSION = "0.165.0"
UVICORN_VERSION = "0.54.0"
MLFLOW_VERSION = "3.17.2"  # 3.18.0 does not install from the registry here (FACTS.md)
BENTOML_VERSION = "1.4.39"  # 1.4.40 needs certifi>=2026.10.19, which the registry lacks

FIXTURES = harness.BENCH_DIR / "serving_fixtures"
MODELS = ("lr", "hgb")
CONNECTIONS = 32
# Seaway's adaptive batching; BentoML gets the same batch size and picks its own wait.
MAX_BATCH = 32
MAX_WAIT_US = 1000
# Native thread pools: one thread per server process, the same for every server.
THREAD_ENV = {
    name: "1"
    for name in (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "BLIS_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS",
        "NUMEXPR_NUM_THREADS",
    )
}
START_TIMEOUT_S = 240.0
SEAWAY = "seaway"
COMPETITORS = ("fastapi", "mlflow", "bentoml")

# wrk prints its own summary; `done` adds one JSON line with what the report needs.
# Latencies are in microseconds. The body comes from a file named in the environment
# (the script's top level runs in every wrk thread, before the request is built).
WRK_SCRIPT = """
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, '
    .. '"write": %d, "status": %d, "timeout": %d, "p50": %d, "p90": %d, "p99": %d, '
    .. '"max": %d, "mean": %.1f}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end
"""

# The floor: predict_proba on one row in a warm process, no HTTP, the same thread limits.
FLOOR_SCRIPT = """
import json, pickle, sys, time
import numpy as np
one = np.load(sys.argv[1])[:1]
out = {}
for name in sys.argv[2:]:
    with open(name + ".pkl", "rb") as fh:
        model = pickle.load(fh)
    for _ in range(500):
        model.predict_proba(one)
    times = []
    for _ in range(5000):
        t0 = time.perf_counter_ns()
        model.predict_proba(one)
        times.append(time.perf_counter_ns() - t0)
    times.sort()
    out[name] = {"p50_us": times[len(times) // 2] / 1000,
                 "p99_us": times[int(len(times) * 0.99)] / 1000}
print(json.dumps(out))
"""

# seaway's side, run once in the project's interpreter: register and deploy every model.
SEAWAY_SETUP = """
import sys
from pathlib import Path
from seaway.project import Project
from seaway.registry import register_model
from seaway.serving.routes import BatchingSpec, deploy, load_table
models = Path(sys.argv[1])
max_batch, max_wait_us = int(sys.argv[2]), int(sys.argv[3])
project = Project(Path.cwd())
for m in sys.argv[4:]:
    for name, files in ((m, [m]), (m + "-batched", [m]),
                        (m + "-canary", [m, m + "-v2", m + "-v3"])):
        for f in files:
            register_model(project, name, models / (f + ".skops"), flavor="sklearn")
    deploy(project, m + "@1")
    deploy(project, m + "-batched@1",
           batching=BatchingSpec(max_batch=max_batch, max_wait_us=max_wait_us))
    deploy(project, m + "-canary@1")
    deploy(project, m + "-canary@2", weight=10)
    deploy(project, m + "-canary@3", shadow=10)
for d in load_table(project).deployments:
    print(d.ref, d.weight, d.shadow, d.batching)
project.close()
"""


# --------------------------------------------------------------------------- servers


@dataclass
class Server:
    """One server process: how to start it and where it answers."""

    name: str
    argv: list[str]
    cwd: Path
    env: dict[str, str | None]
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    cold_start_s: float | None = None
    failure: str | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self, probe_path: str, body: bytes) -> None:
        """Start the process and wait for a correct answer to `body` (the cold start)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log_fh = open(self.log_path, "wb")  # noqa: SIM115 - closed with the process
        started = time.perf_counter()
        try:
            # Its own session, so stopping it reaches its workers (BentoML, MLflow's uvicorn).
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=harness.child_env(self.env),
                stdout=log_fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            self.failure = f"cannot start: {exc}"
            log_fh.close()
            return
        log_fh.close()
        deadline = started + START_TIMEOUT_S
        last = ""
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                self.failure = f"exited with {self.proc.returncode} before answering: " + _tail(
                    self.log_path
                )
                return
            status, text = post(self.url(probe_path), body, timeout=30)
            if status == 200:
                self.cold_start_s = time.perf_counter() - started
                return
            last = f"HTTP {status}: {text[:200]}" if status else text[:200]
            time.sleep(0.1)
        self.failure = f"no answer within {START_TIMEOUT_S:g} s (last: {last})"
        self.stop()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM to the server's own process group, SIGKILL after 15 s."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        # Workers left behind after the leader exited (the group outlives it).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc = None


def _tail(path: Path, chars: int = 600) -> str:
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return ""
    return " ".join(text[-chars:].split())


def post(url: str, body: bytes, timeout: float = 10) -> tuple[int, str]:
    """POST a JSON body: (status, response text); status 0 when no HTTP answer came."""
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (OSError, ValueError) as exc:
        return 0, repr(exc)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- environments


def sklearn_pins() -> list[str]:
    """The project's scikit-learn and NumPy: the pickles load unchanged in every venv."""
    return [
        f"scikit-learn=={metadata.version('scikit-learn')}",
        f"numpy=={metadata.version('numpy')}",
    ]


def venv_or_reason(name: str, requirements: list[str]) -> tuple[Path | None, str]:
    try:
        return harness.competitor_venv(name, requirements), ""
    except harness.CommandFailed as exc:
        lines = [ln for ln in exc.output.splitlines() if ln.startswith("ERROR")]
        reason = (lines[-1] if lines else exc.short(300))[:300]
        harness.log(f"WARNING: {name} could not be installed: {exc.output[-1500:]}")
        return None, f"pip install failed: {reason}"


def package_version(bin_dir: Path, package: str) -> str:
    return (
        harness.command_output(
            [
                bin_dir / "python",
                "-c",
                f"import importlib.metadata as m; print(m.version({package!r}))",
            ]
        )
        or "?"
    )


def quiet_env(extra: dict[str, str | None]) -> dict[str, str | None]:
    env: dict[str, str | None] = {
        **THREAD_ENV,
        "PYTHONDONTWRITEBYTECODE": None,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "BENTOML_DO_NOT_TRACK": "true",
    }
    # The workspace's own store and no tokens, whatever the caller's environment says.
    for name in os.environ:
        if name.startswith("SEAWAY_"):
            env[name] = None
    env.update(extra)
    return env


# --------------------------------------------------------------------------- wrk


@dataclass
class Result:
    requests: int
    seconds: float
    p50_us: float
    p90_us: float
    p99_us: float
    errors: int
    error_detail: str
    busy_cores: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def run_wrk(script: Path, url: str, body_path: Path, connections: int, seconds: float) -> Result:
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    busy = harness.other_load(0.5)
    done = subprocess.run(
        argv,
        env=harness.child_env({"BENCH_BODY": str(body_path)}),
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {(done.stderr or done.stdout)[-500:]}")
    data = json.loads(line[len("WRKJSON ") :])
    errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    detail = ", ".join(
        f"{data[k]} {k}" for k in ("status", "timeout", "connect", "read", "write") if data[k]
    )
    return Result(
        requests=int(data["requests"]),
        seconds=data["duration_us"] / 1e6,
        p50_us=float(data["p50"]),
        p90_us=float(data["p90"]),
        p99_us=float(data["p99"]),
        errors=int(errors),
        error_detail=detail,
        busy_cores=busy,
    )


# --------------------------------------------------------------------------- scenarios


@dataclass
class Target:
    """One server's side of a scenario: where to send which body."""

    server: str  # the Server's name
    label: str  # what the table calls it
    path: str
    body: Path
    exact: bool = True  # the answer must be this model's probabilities (not a split's)


@dataclass
class Scenario:
    name: str
    model: str
    connections: int
    targets: list[Target]
    baseline: str | None = None  # seaway's no-split scenario, for the split's ratio
    runs: dict[str, list[Result]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    skipped: set[str] = field(default_factory=set)  # servers that cannot be measured


def scenarios_for(model: str, data: Path) -> list[Scenario]:
    one, batch, v2 = data / "one.json", data / "batch64.json", data / "one-v2.json"

    def everyone(body: Path) -> list[Target]:
        return [
            Target(SEAWAY, SEAWAY, f"/v1/models/{model}:predict", body),
            Target("fastapi", "fastapi", "/v1/models/model:predict", body),
            Target("mlflow", "mlflow", "/invocations", body),
            Target("bentoml", "bentoml", "/predict", body),
        ]

    c = CONNECTIONS
    return [
        Scenario(f"{model} 1 row, 1 conn", model, 1, everyone(one)),
        Scenario(f"{model} 1 row, {c} conn", model, c, everyone(one)),
        Scenario(f"{model} 64 rows, {c} conn", model, c, everyone(batch)),
        Scenario(
            f"{model} 1 row, {c} conn, adaptive batching",
            model,
            c,
            [
                Target(SEAWAY, SEAWAY, f"/v1/models/{model}-batched:predict", one),
                Target("bentoml-batched", "bentoml", "/predict", one),
            ],
        ),
        Scenario(
            f"{model} 1 row, {c} conn, 90/10 split + 10% shadow",
            model,
            c,
            [Target(SEAWAY, SEAWAY, f"/v1/models/{model}-canary:predict", one, exact=False)],
            baseline=f"{model} 1 row, {c} conn",
        ),
        Scenario(
            f"{model} 1 row, {c} conn, OIP v2 body",
            model,
            c,
            [Target(SEAWAY, SEAWAY, f"/v2/models/{model}/infer", v2)],
            baseline=f"{model} 1 row, {c} conn",
        ),
    ]


def probabilities(text: str) -> list[float] | None:
    """The first row of probabilities in a v1 or v2 answer (or None)."""
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if isinstance(doc, dict) and "outputs" in doc:
        outputs = doc["outputs"]
        for out in outputs:
            if "prob" in str(out.get("name", "")) or len(outputs) == 1:
                data = out.get("data", [])
                return [float(x) for x in data[:2]] if len(data) >= 2 else None
        return None
    preds = doc.get("predictions") if isinstance(doc, dict) else doc
    while isinstance(preds, list) and preds and isinstance(preds[0], list):
        if not isinstance(preds[0][0], list):
            return [float(x) for x in preds[0]]
        preds = preds[0]
    return None


def labels(text: str) -> list[int] | None:
    """The class labels of a v1 answer that gives labels, not probabilities (or None)."""
    try:
        preds = json.loads(text).get("predictions")
    except (ValueError, AttributeError):
        return None
    if isinstance(preds, list) and preds and all(isinstance(p, int) for p in preds):
        return preds
    return None


def check_answer(server: Server, target: Target, expected: list[float]) -> tuple[str, str]:
    """(what was wrong, a note): the answer must hold the row's probabilities, or, where
    a server answers v1 with class labels (seaway, as KServe's scikit-learn server does), the
    label of the highest one. For a split, another version may answer: labels only."""
    body = target.body.read_bytes()
    status, text = post(server.url(target.path), body, timeout=60)
    if status != 200:
        return f"HTTP {status}: {' '.join(text.split())[:160]}", ""
    got = probabilities(text)
    if got is not None:
        if target.exact and any(abs(a - b) > 1e-6 for a, b in zip(got, expected, strict=False)):
            return f"answer {got} differs from predict_proba {expected}", ""
        return "", ""
    found = labels(text)
    if found is None:
        return f"neither probabilities nor labels in the answer: {text[:120]}", ""
    if found[0] != max(range(len(expected)), key=lambda i: expected[i]):
        return f"label {found[0]} is not the arg-max of predict_proba {expected}", ""
    return "", "answers labels (v1)"


# --------------------------------------------------------------------------- setup


def prepare_data(data: Path) -> None:
    """Train the models and write the bodies once (untimed)."""
    signature = (FIXTURES / "train.py").read_text() + "".join(sklearn_pins())
    marker = data / ".bench-ready"
    if marker.is_file() and marker.read_text() == signature:
        return
    harness.log(f"training the models into {data.relative_to(harness.REPO_ROOT)} (once)")
    harness.run_command(
        [harness.project_bin() / "python", FIXTURES / "train.py", data], env=THREAD_ENV
    )
    marker.write_text(signature)


def prepare_seaway(work: Path, data: Path, models: Sequence[str]) -> str:
    """A seaway project with every model registered and deployed: '' or why it failed."""
    signature = SEAWAY_SETUP + " ".join(models) + (data / ".bench-ready").read_text()
    marker = work / ".bench-ready"
    if marker.is_file() and marker.read_text() == signature:
        return ""
    harness.remove(work)
    work.mkdir(parents=True)
    (work / "seaway.yaml").write_text("name: bench-serving\n")
    harness.log("registering and deploying seaway's models (once)")
    argv: list[str | os.PathLike[str]] = [
        harness.project_bin() / "python",
        "-c",
        SEAWAY_SETUP,
        data,
        str(MAX_BATCH),
        str(MAX_WAIT_US),
    ]
    try:
        harness.run_command([*argv, *models], cwd=work, env=quiet_env({}))
    except harness.CommandFailed as exc:
        harness.log(f"WARNING: seaway setup failed: {exc.output}")
        return "setup failed: " + exc.short(200)
    marker.write_text(signature)
    return ""


def seaway_server(work: Path, logs: Path) -> tuple[Server | None, str]:
    seaway = harness.project_bin() / "seaway"
    if not harness.command_works([seaway, "serve", "--help"], cwd=work):
        return None, "`seaway serve --help` fails: the gateway is not there yet"
    port = free_port()
    argv = [str(seaway), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    return Server(SEAWAY, argv, work, quiet_env({}), port, logs / "seaway.log"), ""


def _with_path(bin_dir: Path, env: dict[str, str | None]) -> dict[str, str | None]:
    # MLflow starts `uvicorn` by name, BentoML its workers: the venv's bin/ goes first.
    return {**env, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def competitor_servers(
    model: str, data: Path, work: Path, bins: dict[str, Path | None]
) -> list[Server]:
    servers: list[Server] = []
    pkl = str(data / f"{model}.pkl")
    fastapi_bin, mlflow_bin, bentoml_bin = (
        bins.get("fastapi"),
        bins.get("mlflow"),
        bins.get("bentoml"),
    )
    if fastapi_bin is not None:
        port = free_port()
        argv = [
            str(fastapi_bin / "uvicorn"),
            "fastapi_app:app",
            "--app-dir",
            str(FIXTURES),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        servers.append(
            Server(
                "fastapi",
                argv,
                work,
                _with_path(fastapi_bin, quiet_env({"BENCH_MODEL": pkl})),
                port,
                work / "logs" / f"fastapi-{model}.log",
            )
        )
    if mlflow_bin is not None:
        port = free_port()
        argv = [
            str(mlflow_bin / "mlflow"),
            "models",
            "serve",
            "-m",
            str(data / f"mlflow-{model}"),
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ]
        servers.append(
            Server(
                "mlflow",
                argv,
                work / "mlflow",
                _with_path(mlflow_bin, quiet_env({})),
                port,
                work / "logs" / f"mlflow-{model}.log",
            )
        )
    if bentoml_bin is not None:
        for name, service in (("bentoml", "Classifier"), ("bentoml-batched", "BatchedClassifier")):
            port = free_port()
            argv = [
                str(bentoml_bin / "bentoml"),
                "serve",
                f"bentoml_service:{service}",
                "--working-dir",
                str(FIXTURES),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ]
            env = _with_path(
                bentoml_bin,
                quiet_env(
                    {
                        "BENCH_MODEL": pkl,
                        "BENCH_MAX_BATCH": str(MAX_BATCH),
                        "BENTOML_HOME": str(work / "bentoml-home"),
                    }
                ),
            )
            servers.append(
                Server(name, argv, work, env, port, work / "logs" / f"{name}-{model}.log")
            )
    return servers


def prepare_mlflow(bin_dir: Path, data: Path, models: Sequence[str]) -> str:
    for model in models:
        out = data / f"mlflow-{model}"
        if (out / "MLmodel").is_file():
            continue
        try:
            harness.run_command(
                [bin_dir / "python", FIXTURES / "mlflow_save.py", data / f"{model}.pkl", out],
                env=quiet_env({}),
            )
        except harness.CommandFailed as exc:
            return "saving the model failed: " + exc.short(200)
    return ""


def measure_floor(data: Path, models: Sequence[str]) -> dict[str, dict[str, float]]:
    out = harness.command_output(
        [harness.project_bin() / "python", "-c", FLOOR_SCRIPT, data / "rows.npy", *models],
        cwd=data,
        env=harness.child_env(THREAD_ENV),
    )
    return json.loads(out) if out else {}


# --------------------------------------------------------------------------- report


def _med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize(sc: Scenario, label_of: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    for target in sc.targets:
        runs = sc.runs.get(target.server, [])
        rows.append(
            {
                "scenario": sc.name,
                "server": target.label,
                "runs": len(runs),
                "rps": _med([r.rps for r in runs]) if runs else None,
                "rps_min": min((r.rps for r in runs), default=None),
                "rps_max": max((r.rps for r in runs), default=None),
                "p50_us": _med([r.p50_us for r in runs]) if runs else None,
                "p90_us": _med([r.p90_us for r in runs]) if runs else None,
                "p99_us": _med([r.p99_us for r in runs]) if runs else None,
                "errors": sum(r.errors for r in runs),
                "busy_cores": max((r.busy_cores for r in runs), default=0.0),
                "note": sc.notes.get(target.server, ""),
                "all_runs": [r.__dict__ | {"rps": r.rps} for r in runs],
            }
        )
    return rows


def table(summaries: list[dict[str, Any]], baselines: dict[str, float | None]) -> list[str]:
    head = (
        f"{'scenario':<44} {'server':<8} {'req/s':>8} {'min-max':>13} {'p50 us':>8} "
        f"{'p99 us':>8} {'x req/s':>7} {'x p99':>6}  note"
    )
    lines = [head, "-" * len(head)]
    seaway_of: dict[str, dict[str, Any]] = {
        s["scenario"]: s for s in summaries if s["server"] == SEAWAY
    }
    last = ""
    for s in summaries:
        name = s["scenario"] if s["scenario"] != last else ""
        last = s["scenario"]
        sw = seaway_of.get(s["scenario"])
        ratio = p99_ratio = "-"
        if s["server"] != SEAWAY and sw and sw["rps"] and s["rps"]:
            ratio = f"{sw['rps'] / s['rps']:.2f}"
            p99_ratio = f"{s['p99_us'] / sw['p99_us']:.2f}"
        elif s["server"] == SEAWAY and baselines.get(s["scenario"]) and s["rps"]:
            base = baselines[s["scenario"]]
            ratio = f"{s['rps'] / base:.2f}" if base else "-"
        note = s["note"]
        if s["errors"]:
            note = f"{s['errors']} errors; " + note
        if s["busy_cores"] > harness.BUSY_THRESHOLD:
            note += f" [busy: {s['busy_cores']:.2f} cores]"
        if s["rps"] is None:
            lines.append(
                f"{name:<44} {s['server']:<8} {'-':>8} {'':>13} {'-':>8} {'-':>8} "
                f"{'-':>7} {'-':>6}  {note}"
            )
            continue
        span = f"{s['rps_min']:,.0f}-{s['rps_max']:,.0f}"
        lines.append(
            f"{name:<44} {s['server']:<8} {s['rps']:>8,.0f} {span:>13} {s['p50_us']:>8,.0f} "
            f"{s['p99_us']:>8,.0f} {ratio:>7} {p99_ratio:>6}  {note.strip()}"
        )
    return lines


# --------------------------------------------------------------------------- main


def parse() -> Any:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=None, help="alternating rounds")
    parser.add_argument("--quick", action="store_true", help="3 s runs, 1 round")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="write JSON")
    parser.add_argument("--only", default=",".join(MODELS), help="models: lr,hgb")
    parser.add_argument("--seconds", type=float, default=None, help="length of a run")
    args = parser.parse_args()
    # Each round is 32 wrk runs: the defaults are smaller than the other benchmarks'.
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.seconds is None:
        args.seconds = 3.0 if args.quick else 15.0
    args.models = [m for m in args.only.split(",") if m]
    unknown = set(args.models) - set(MODELS)
    if unknown or args.repeats < 1:
        parser.error(f"--only takes {','.join(MODELS)}; --repeats at least 1")
    return args


def main() -> None:
    args = parse()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: it is the load generator (apt-get install wrk)")
    work = harness.cache_dir("workspaces", "serving")
    data = harness.cache_dir("data", "serving")
    logs = harness.cache_dir("workspaces", "serving", "logs")
    (work / "mlflow").mkdir(exist_ok=True)
    script = work / "report.lua"
    script.write_text(WRK_SCRIPT)
    prepare_data(data)
    expected = {
        m: json.loads(
            harness.command_output(
                [
                    harness.project_bin() / "python",
                    "-c",
                    "import pickle, sys, numpy as np; m = pickle.load(open(sys.argv[1], 'rb')); "
                    "print(m.predict_proba(np.load(sys.argv[2])[:1])[0].tolist())",
                    data / f"{m}.pkl",
                    data / "rows.npy",
                ]
            )
            or "[]"
        )
        for m in args.models
    }

    # Competitors: one virtualenv each, built once.
    pins = sklearn_pins()
    reasons: dict[str, str] = {}
    bins: dict[str, Path | None] = {}
    bins["fastapi"], reasons["fastapi"] = venv_or_reason(
        f"fastapi-{FASTAPI_VERSION}",
        [f"fastapi=={FASTAPI_VERSION}", f"uvicorn[standard]=={UVICORN_VERSION}", *pins],
    )
    bins["mlflow"], reasons["mlflow"] = venv_or_reason(
        f"mlflow-serve-{MLFLOW_VERSION}", [f"mlflow=={MLFLOW_VERSION}", *pins]
    )
    bins["bentoml"], reasons["bentoml"] = venv_or_reason(
        f"bentoml-{BENTOML_VERSION}", [f"bentoml=={BENTOML_VERSION}", *pins]
    )
    if bins["mlflow"] is not None:
        reasons["mlflow"] = prepare_mlflow(bins["mlflow"], data, args.models)
        if reasons["mlflow"]:
            bins["mlflow"] = None
    reasons["bentoml-batched"] = reasons["bentoml"]

    # seaway: one gateway for every model and scenario.
    reasons[SEAWAY] = prepare_seaway(work / "project", data, args.models)
    gateway: Server | None = None
    if not reasons[SEAWAY]:
        gateway, reasons[SEAWAY] = seaway_server(work / "project", logs)

    # `wrk -v` prints its version and exits with status 1.
    wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()
    versions = {"wrk": wrk_v[1] if len(wrk_v) > 1 else "?"}
    versions["seaway"] = metadata.version("seaway")
    for tool, package in (("fastapi", "fastapi"), ("mlflow", "mlflow"), ("bentoml", "bentoml")):
        tool_bin = bins[tool]
        if tool_bin is not None:
            versions[package] = package_version(tool_bin, package)
            if tool == "fastapi":
                versions["uvicorn"] = package_version(tool_bin, "uvicorn")
    versions["scikit-learn"] = metadata.version("scikit-learn")

    harness.log("measuring the in-process floor")
    floors = [measure_floor(data, args.models)]

    all_scenarios: list[Scenario] = []
    cold: dict[str, float] = {}
    started_all = time.perf_counter()
    try:
        if gateway is not None:
            first = args.models[0]
            gateway.start(f"/v1/models/{first}:predict", (data / "one.json").read_bytes())
            if gateway.failure:
                reasons[SEAWAY] = gateway.failure
                harness.log(f"WARNING: seaway serve: {gateway.failure}")
                gateway = None
            elif gateway.cold_start_s is not None:
                cold[f"seaway (first {first} answer)"] = gateway.cold_start_s
        for model in args.models:
            scenarios = scenarios_for(model, data)
            all_scenarios.extend(scenarios)
            servers = {s.name: s for s in competitor_servers(model, data, work, bins)}
            if gateway is not None:
                servers[SEAWAY] = gateway
            try:
                run_model(model, scenarios, servers, reasons, expected[model], script, args, cold)
            finally:
                for server in servers.values():
                    if server is not gateway:
                        server.stop()
    finally:
        if gateway is not None:
            gateway.stop()
    harness.log(f"measured in {time.perf_counter() - started_all:.0f} s")
    floors.append(measure_floor(data, args.models))
    # The floor before and after the servers ran; the lower is the least disturbed.
    floor = {
        m: min((f[m] for f in floors if m in f), key=lambda v: v["p50_us"])
        for m in args.models
        if any(m in f for f in floors)
    }
    report(all_scenarios, floor, cold, versions, reasons, args)


def run_model(
    model: str,
    scenarios: list[Scenario],
    servers: dict[str, Server],
    reasons: dict[str, str],
    expected: list[float],
    script: Path,
    args: Any,
    cold: dict[str, float],
) -> None:
    """Start the competitors for `model`, check every answer, then the alternating rounds."""
    for server in servers.values():
        if server.name == SEAWAY:
            continue
        harness.log(f"starting {server.name} for {model}")
        server.start(
            "/v1/models/model:predict"
            if server.name == "fastapi"
            else ("/invocations" if server.name == "mlflow" else "/predict"),
            (harness.DATA_DIR / "serving" / "one.json").read_bytes(),
        )
        if server.failure:
            reasons[server.name] = server.failure
            harness.log(f"WARNING: {server.name} ({model}): {server.failure}")
        elif server.cold_start_s is not None:
            cold[f"{server.name} ({model})"] = server.cold_start_s
    # Drop what cannot run; check that everyone answers with the same probabilities.
    for sc in scenarios:
        for target in sc.targets:
            found = servers.get(target.server)
            if found is None or found.failure or not found.alive():
                sc.skipped.add(target.server)
                sc.notes[target.server] = "not measured: " + (
                    reasons.get(target.server) or "not running"
                )
                continue
            wrong, note = check_answer(found, target, expected)
            if wrong:
                sc.skipped.add(target.server)
                sc.notes[target.server] = "not measured: " + wrong
            elif note:
                sc.notes[target.server] = note
    warm_s = 1.0 if args.quick else 3.0
    for rnd in range(args.repeats):
        for sc in scenarios:
            targets = [t for t in sc.targets if t.server not in sc.skipped]
            if rnd % 2:
                targets.reverse()
            for target in targets:
                server = servers[target.server]
                url = server.url(target.path)
                try:
                    if rnd == 0:
                        run_wrk(script, url, target.body, sc.connections, warm_s)
                    result = run_wrk(script, url, target.body, sc.connections, args.seconds)
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    sc.skipped.add(target.server)
                    sc.notes[target.server] = f"failed: {str(exc)[:200]}"
                    harness.log(f"  {sc.name} / {target.label}: FAILED: {exc}")
                    continue
                if not server.alive():
                    sc.notes[target.server] = "the server died: " + _tail(server.log_path, 200)
                sc.runs.setdefault(target.server, []).append(result)
                harness.log(
                    f"  [{rnd + 1}/{args.repeats}] {sc.name} / {target.label}: "
                    f"{result.rps:,.0f} req/s, p50 {result.p50_us:,.0f} us, "
                    f"p99 {result.p99_us:,.0f} us"
                    + (f", {result.errors} errors ({result.error_detail})" if result.errors else "")
                    + (f" [busy {result.busy_cores:.2f}]" if result.busy_cores > 0.15 else "")
                )


def report(
    scenarios: list[Scenario],
    floor: dict[str, dict[str, float]],
    cold: dict[str, float],
    versions: dict[str, str],
    reasons: dict[str, str],
    args: Any,
) -> None:
    summaries = [row for sc in scenarios for row in summarize(sc, {})]
    by_key = {(s["scenario"], s["server"]): s for s in summaries}
    baselines: dict[str, float | None] = {}
    for sc in scenarios:
        if sc.baseline:
            base = by_key.get((sc.baseline, SEAWAY))
            baselines[sc.name] = base["rps"] if base else None
    title = "serving: seaway gateway vs FastAPI, MLflow, BentoML (one-worker servers, wrk)"
    machine = harness.machine_info()
    load = os.getloadavg()
    lines = [title, "=" * len(title)]
    lines.append("command: " + " ".join([".venv/bin/python", "bench/serving.py", *sys.argv[1:]]))
    lines.append(
        f"load: wrk -t1 -c{{1,{CONNECTIONS}}} -d{args.seconds:g}s --timeout 10s, "
        f"{args.repeats} round(s), alternating; one worker per server; "
        + " ".join(f"{k}=1" for k in THREAD_ENV)
    )
    lines.extend(table(summaries, baselines))
    lines.append(
        "req/s and latencies are medians over rounds; 'x req/s' = seaway req/s / other's "
        "(> 1: seaway serves more), 'x p99' = other's p99 / seaway's (> 1: seaway's p99 is "
        "lower); on seaway-only rows 'x req/s' = this / seaway's plain 1-row figure"
    )
    lines.append("")
    lines.append(
        "in-process predict_proba on one row, 5,000 calls in a warm process (the floor; "
        "no HTTP; the lower of two measurements, before and after the servers ran):"
    )
    for key, value in floor.items():
        lines.append(f"  {key:<4} p50 {value['p50_us']:8.1f} us   p99 {value['p99_us']:8.1f} us")
    for model in args.models:
        floor_p50 = floor.get(model, {}).get("p50_us")
        for server in (SEAWAY, *COMPETITORS):
            row = by_key.get((f"{model} 1 row, 1 conn", server))
            if floor_p50 is not None and row and row["p50_us"] is not None:
                lines.append(
                    f"  added by {server} at 1 connection ({model}): "
                    f"{row['p50_us'] - floor_p50:,.0f} us at p50 "
                    "(wrk's p50 minus the floor; wrk and the loopback included)"
                )
    if cold:
        lines.append(
            "time from start to the first correct answer (cold start, model load "
            "included): " + ", ".join(f"{k} {v:.1f} s" for k, v in cold.items())
        )
    failed = {k: v for k, v in reasons.items() if v}
    for name, why in failed.items():
        lines.append(f"NOT MEASURED: {name}: {why}")
    lines.append(
        f"machine: {machine['cores']} cores, {machine['cpu']}, {machine['memory_gib']} GiB, "
        f"{machine['os']}, Python {machine['python']}; load average at the end "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    lines.append("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print("\n".join(lines), flush=True)
    if args.json is not None:
        payload = {
            "title": title,
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "argv": sys.argv[1:],
            "seconds": args.seconds,
            "repeats": args.repeats,
            "machine": machine,
            "versions": versions,
            "floor": floor,
            "cold_start_s": cold,
            "not_measured": failed,
            "rows": summaries,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        harness.log(f"wrote {args.json}")


if __name__ == "__main__":
    main()
