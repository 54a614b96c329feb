"""The whole loop on the bundled example, with embedded defaults (`seaway demo`).

Everything runs in one process against a SQLite store, a local blob folder, a git repository
and a real gateway on 127.0.0.1:

1. versioned data and its checks; the training pipeline (run twice: the second is cached);
2. the registered version's gates; its promotion to prod as a git commit; `sync` deploys it;
3. generated customers as traffic: the monitor scores it against the training profile and
   feedback labels give live accuracy;
4. the customers change: the monitor sees the drift in two windows in a row, and its trigger
   snapshots the newest data, retrains, gates and promotes the new version (a commit), which
   goes through prod's canary under live traffic and becomes champion;
5. the delivery metrics of what happened, a drift report, and where to look next.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODEL = "churn-classifier"
ENV = "prod"
FEATURES = ("tenure", "monthly_charges", "support_calls", "region", "contract")


@dataclass
class DemoResult:
    root: Path
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s["ok"] for s in self.steps)


Step = Callable[[str, bool, str], None]


@dataclass(frozen=True)
class _Served:
    """The first version deployed, with rows and the probabilities it gave in process."""

    number: int
    rows: dict[str, list[Any]]
    expected: list[float]


def run_demo(directory: Path, *, say: Callable[[str], None] = print) -> DemoResult:
    from seaway.init import init_project
    from seaway.project import Project

    result = DemoResult(directory.resolve())

    def step(name: str, ok: bool, detail: str) -> None:
        result.steps.append({"step": name, "ok": ok, "detail": detail})
        say(f"{'ok ' if ok else 'FAIL'} {name}: {detail}")

    init = init_project(directory, name="churn", example_data=True)
    step("init", True, f"project in {init.root} ({', '.join(init.created)})")
    _git_commit(init.root, "churn example project")

    previous = Path.cwd()
    os.chdir(init.root)
    try:
        project = Project(init.root)
        run = _data_and_training(project, step)
        version = _gates_and_promotion(project, step, run)
        if version is not None:
            _serve_and_watch(project, step, say, version)
        project.close()
    finally:
        os.chdir(previous)
    return result


# --- data, runs, gates, promotion -------------------------------------------------------


def _git_commit(root: Path, message: str) -> None:
    import subprocess

    from seaway.gitops.git import ensure_repo

    git = ensure_repo(root)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True, capture_output=True)
    subprocess.run(
        ["git", *git.identity_args(), "commit", "-q", "-m", message],
        cwd=root,
        check=True,
        capture_output=True,
    )


def _data_and_training(project: Any, step: Step) -> Any:
    from seaway.data.datasets import add, status
    from seaway.data.quality import check_version
    from seaway.pipeline import run_pipeline

    first = add(project, "customers", message="initial snapshot")
    step(
        "data add",
        first.created,
        f"{first.version.ref}: {first.version.n_files} file, {first.version.size} bytes, "
        f"checks {first.version.check_status}",
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
    run = run_pipeline(project, "train")
    ran = [s.step for s in run.steps if s.status == "ran"]
    step(
        "run train",
        run.status == "succeeded" and len(ran) == len(run.steps),
        f"run #{run.seq}: {len(ran)} steps ran, auc {run.metrics.get('auc', float('nan')):.3f}",
    )
    again = run_pipeline(project, "train")
    cached = [s.step for s in again.steps if s.status == "cached"]
    step(
        "run train again",
        again.status == "succeeded" and len(cached) == len(again.steps),
        f"run #{again.seq}: {len(cached)} of {len(again.steps)} steps cached",
    )
    return run


def _gates_and_promotion(project: Any, step: Step, run: Any) -> _Served | None:
    from seaway.gates import run_gates
    from seaway.gitops.promote import promote
    from seaway.gitops.reconcile import sync
    from seaway.registry import get_version, load_model

    ref = run.tags.get("seaway.registered")
    step("register", ref is not None, f"{ref} from run #{run.seq}" if ref else "no model")
    if ref is None:
        return None
    version = get_version(project, ref)
    report = run_gates(project, ref)
    verdicts = ", ".join(f"{r.name} {r.status.value}" for r in report.results)
    step("gate", report.passed, f"{ref} in {report.duration_s:.2f}s: {verdicts}")
    if not report.passed:
        return None
    promoted = promote(project, ref, ENV)
    step(
        "promote",
        not promoted.unchanged,
        f"{ref} → {ENV}: commit {promoted.commit[:10]} edits {promoted.path}",
    )
    synced = sync(project, environment=ENV)
    step(
        "sync",
        not synced.failed,
        f"{len(synced.applied)} change applied: {ref} serves all of {ENV}",
    )
    model = load_model(ref, project=project)
    # A new monthly customer with many support calls, and a loyal two-year one.
    rows: dict[str, list[Any]] = {
        "tenure": [2.0, 60.0],
        "monthly_charges": [95.0, 30.0],
        "support_calls": [4.0, 0.0],
        "region": ["south", "north"],
        "contract": ["monthly", "two-year"],
    }
    churn = model.predict_proba(_table(rows))[:, 1]  # type: ignore[attr-defined]
    step(
        "predict",
        bool(churn[0] > churn[1]),
        f"load_model({ref!r}): churn probability {churn[0]:.2f} for a new monthly customer, "
        f"{churn[1]:.2f} for a loyal two-year one",
    )
    return _Served(version.number, rows, [float(c) for c in churn])


# --- serving, monitoring, the retraining loop --------------------------------------------


def _customers(rows: int, *, seed: int, drift: float = 0.0, start_id: int = 1) -> Any:
    from seaway.example import data_module

    return data_module(Path.cwd()).customers_table(rows, seed=seed, drift=drift, start_id=start_id)


def _rows(table: Any) -> dict[str, list[Any]]:
    data = table.to_pydict()
    out = {k: data[k] for k in FEATURES}
    for name in ("tenure", "monthly_charges", "support_calls"):
        out[name] = [float(v) for v in out[name]]
    out["churned"] = data["churned"]
    return out


def _table(rows: dict[str, list[Any]]) -> Any:
    import pyarrow as pa

    return pa.table({k: rows[k] for k in FEATURES})


@contextmanager
def _gateway(project: Any) -> Iterator[str]:
    """A real gateway on 127.0.0.1 that logs every request for the monitor."""
    import socket
    import threading

    import uvicorn

    from seaway.serving.app import create_app
    from seaway.serving.telemetry import Telemetry

    telemetry = Telemetry(project, gateway_id="demo", flush_interval_s=0.25, sample_rate=1.0)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(project, telemetry=telemetry, poll_interval_s=0.2),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="seaway-demo-gateway", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


class _Traffic:
    """Customers sent to the gateway over the Open Inference Protocol, a few per request,
    each request with an id so that its true outcome can be posted later as feedback."""

    def __init__(self, url: str) -> None:
        import httpx

        self.url = url
        self.client = httpx.Client(timeout=30)
        self.sent = 0
        self.answered: dict[str, int] = {}
        self.labels: list[tuple[str, list[int]]] = []

    def send(self, rows: dict[str, list[Any]], *, per_request: int = 5, tag: str = "r") -> None:
        n = len(rows["tenure"])
        for start in range(0, n, per_request):
            cut = {k: v[start : start + per_request] for k, v in rows.items()}
            request_id = f"{tag}-{self.sent}"
            self.sent += 1
            response = self.infer(cut, request_id)
            answered_by = response.headers.get("x-seaway-version", "?")
            self.answered[answered_by] = self.answered.get(answered_by, 0) + 1
            if response.status_code == 200:
                self.labels.append((request_id, list(cut["churned"])))

    def infer(self, rows: dict[str, list[Any]], request_id: str | None = None) -> Any:
        """One Open Inference Protocol v2 request holding `rows` (a column per feature)."""
        datatype = {str: "BYTES", float: "FP64", int: "INT64"}
        inputs = [
            {
                "name": name,
                "shape": [len(rows[name])],
                "datatype": datatype[type(rows[name][0])],
                "data": rows[name],
            }
            for name in FEATURES
        ]
        body = {"inputs": inputs} | ({"id": request_id} if request_id is not None else {})
        return self.client.post(f"{self.url}/v2/models/{MODEL}/infer", json=body)

    def feedback(self) -> dict[str, Any]:
        items = [{"id": rid, "labels": labels} for rid, labels in self.labels]
        self.labels = []
        response = self.client.post(
            f"{self.url}/v1/feedback", json={"model": MODEL, "feedback": items}
        )
        body: dict[str, Any] = response.json()
        return body

    def close(self) -> None:
        self.client.close()


def _serve_and_watch(
    project: Any, step: Step, say: Callable[[str], None], version: _Served
) -> None:
    try:
        import httpx  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        step("serve", True, "skipped: install seaway[serve] to serve the model and close the loop")
        return
    from seaway.monitor.loop import monitor_tick

    with _gateway(project) as url:
        traffic = _Traffic(url)
        try:
            _first_answer(step, traffic, version)
            # A month of customers like the ones the model was trained on.
            traffic.send(_rows(_customers(1500, seed=11, start_id=100_000)), tag="m1")
            time.sleep(0.6)  # one flush of the gateway's request log
            fed = traffic.feedback()
            tick = monitor_tick(project, fire=False)
            drifted = [w for w in tick.drift if w.breached]
            accuracy = [w.score for w in tick.quality if w.score is not None]
            step(
                "monitor",
                bool(tick.drift) and not drifted,
                f"{sum(w.rows for w in tick.drift)} logged rows in {len(tick.drift)} windows, "
                f"none drifted from the training profile; {fed.get('accepted', 0)} labelled "
                "requests give live accuracy "
                + (f"{accuracy[-1]:.3f}" if accuracy else "(no full window yet)"),
            )
            _drift_and_retrain(project, step, traffic)
            _report_and_metrics(project, step, say)
        finally:
            traffic.close()


def _first_answer(step: Step, traffic: _Traffic, version: _Served) -> None:
    response = traffic.infer(version.rows)
    outputs = {o["name"]: o for o in response.json().get("outputs", [])}
    proba = outputs.get("predict_proba", {}).get("data", [])
    served = [float(p) for p in proba[1::2]]
    same = len(served) == 2 and all(
        abs(a - b) < 1e-9 for a, b in zip(served, version.expected, strict=True)
    )
    step(
        "serve",
        response.status_code == 200 and same,
        f"POST {traffic.url}/v2/models/{MODEL}/infer → {response.status_code}, answered by "
        f"{response.headers.get('x-seaway-version')}, same probabilities as in process",
    )


def _drift_and_retrain(project: Any, step: Step, traffic: _Traffic) -> None:
    from seaway.example import write_customers
    from seaway.gitops.reconcile import sync
    from seaway.monitor.loop import monitor_tick
    from seaway.rollout.records import latest_rollout

    # The customers change: longer tenures, higher charges, more support calls. The newest
    # month, with its outcomes, lands where the pipeline reads its data.
    write_customers(Path.cwd(), rows=6000, seed=21, drift=1.0)
    traffic.send(_rows(_customers(1500, seed=22, drift=1.0, start_id=200_000)), tag="m2")
    time.sleep(0.6)
    hops: list[str] = []
    tick = monitor_tick(project, on_hop=lambda name, data: hops.append(name))
    drifted = [w for w in tick.drift if w.breached]
    names = sorted({n for w in drifted for n in w.drifted})
    step(
        "drift",
        len(drifted) >= 2,
        f"{len(drifted)} of {len(tick.drift)} windows over PSI "
        f"{drifted[0].figures.get('threshold', 0):g}: {', '.join(names)}"
        if drifted
        else f"no drift seen in {len(tick.drift)} windows",
    )
    if not tick.fired:
        step("retrain", False, "no trigger fired: " + "; ".join(tick.errors or ["see above"]))
        return
    trigger = tick.fired[0]
    step(
        "retrain",
        trigger.status == "promoted",
        f"trigger #{trigger.id}: {' → '.join(hops)}; "
        + (
            f"{MODEL}@{trigger.version} promoted to {ENV} in commit {(trigger.commit or '')[:10]}"
            if trigger.status == "promoted"
            else f"{trigger.status}: {trigger.message}"
        ),
    )
    if trigger.status != "promoted":
        return
    # The reconciler starts the canary; live traffic goes on while the analysis judges it.
    deadline = time.monotonic() + 120
    rollout = None
    seed = 30
    while time.monotonic() < deadline:
        seed += 1
        traffic.send(_rows(_customers(200, seed=seed, drift=1.0, start_id=seed * 1000)), tag="m3")
        sync(project, environment=ENV)
        rollout = latest_rollout(project, ENV, MODEL)
        if (
            rollout is not None
            and rollout.candidate == trigger.version
            and rollout.phase in ("Successful", "Aborted", "Degraded")
        ):
            break
        time.sleep(0.2)
    answered = ", ".join(f"{k} {v}" for k, v in sorted(traffic.answered.items()))
    step(
        "canary",
        rollout is not None and rollout.phase == "Successful",
        f"rollout #{rollout.id} of @{rollout.candidate}: {rollout.phase} "
        f"({rollout.message or 'analysis passed at every step'}); requests answered: {answered}"
        if rollout is not None
        else "no rollout started",
    )
    time.sleep(0.6)
    tick = monitor_tick(project)
    done = [t for t in tick.finished if t.id == trigger.id]
    step(
        "champion",
        bool(done) and done[0].status == "completed",
        f"{done[0].message}; trigger #{trigger.id} completed"
        if done
        else f"trigger #{trigger.id} not finished",
    )
    traffic.send(_rows(_customers(1000, seed=40, drift=1.0, start_id=400_000)), tag="m4")
    time.sleep(0.6)
    tick = monitor_tick(project)
    new = [w for w in tick.drift if w.number == trigger.version]
    step(
        "monitor",
        bool(new) and not any(w.breached for w in new),
        f"{len(new)} windows of @{trigger.version}: the new customers match its training "
        "profile, no drift",
    )


def _report_and_metrics(project: Any, step: Step, say: Callable[[str], None]) -> None:
    from seaway.audit.metrics import delivery_metrics
    from seaway.monitor.report import render_report

    out = render_report(project, MODEL, Path("drift-report.html"))
    step("report", out.is_file(), f"drift over time and distributions in {out}")
    metrics = delivery_metrics(project, model=MODEL)
    cycle = metrics.retraining.cycle
    step(
        "metrics",
        cycle.n >= 1 and metrics.dora.deployments >= 2,
        _metrics_line(metrics),
    )
    say("")
    say(_summary())


def _metrics_line(metrics: Any) -> str:
    def seconds(value: float | None) -> str:
        return "—" if value is None else f"{value:.0f}s"

    dora = metrics.dora
    rate = dora.change_failures.rate
    drift = metrics.drift.rate
    return (
        f"{dora.deployments} deployments, lead time {seconds(dora.lead_time.median_s)}, "
        f"change failure rate {'—' if rate is None else f'{rate:.2f}'}; retraining cycle "
        f"{seconds(metrics.retraining.cycle.median_s)} (trigger to 100% of traffic)"
        f", drift in {'—' if drift is None else f'{drift:.0%}'} of windows"
    )


def _summary() -> str:
    looks = [
        (f"git log --oneline -- environments/{ENV}.yaml", "the promotions, as commits"),
        (f"seaway monitor status {MODEL}", "drift per feature, newest window"),
        (f"seaway monitor triggers {MODEL}", "the retraining trigger, hop by hop"),
        ("open drift-report.html", "drift over time, the shifted features"),
        (f"seaway rollout list --env {ENV}", "the canary and its analysis"),
        (f"seaway metrics --model {MODEL}", "DORA and ML delivery metrics"),
        ("seaway audit list", "every hop, as a hash-chained event"),
    ]
    width = max(len(command) for command, _ in looks)
    return "\n".join(
        [
            "What happened: the model was trained, gated, promoted as a commit and served; the",
            "customers changed, the monitor saw it, and a retrained version went through the",
            "canary and became champion without anyone stepping in. Where to look:",
            *(f"  {command.ljust(width)}  {why}" for command, why in looks),
        ]
    )
