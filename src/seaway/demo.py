"""The whole loop on the bundled example, with embedded defaults (`seaway demo`).

It grows with seaway: today it covers versioned data and its quality checks, the training
pipeline run twice (the second run entirely from the step cache), the model version the run
registered, its gates, the champion alias, a prediction in process and one from the gateway
over the Open Inference Protocol, ending with the runs table.
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
        _registry_steps(project, step, first_run, say)
        say("")
        say(_runs_table(search_runs(project, pipeline="train")))
        project.close()
    finally:
        os.chdir(previous)
    return result


def _registry_steps(
    project: Any, step: Callable[[str, bool, str], None], run: Any, say: Callable[[str], None]
) -> None:
    """The trained model as a registered version: its gates, the champion alias, a
    prediction through `seaway.load_model`."""
    from seaway.gates import run_gates
    from seaway.registry import get_version, load_model, set_alias

    ref = run.tags.get("seaway.registered")
    step("register", ref is not None, f"{ref} from run #{run.seq}" if ref else "no model")
    if ref is None:
        return
    version = get_version(project, ref)
    report = run_gates(project, ref)
    verdicts = ", ".join(f"{r.name} {r.status.value}" for r in report.results)
    step("gate", report.passed, f"{ref} in {report.duration_s:.2f}s: {verdicts}")
    if report.passed:
        move = set_alias(project, ref, "champion")
        step("alias", True, f"{move.model}@champion → version {move.number}")
    import pyarrow as pa

    model = load_model(f"{version.model}@{version.number}", project=project)
    rows = pa.table(
        {
            "tenure": [2.0, 60.0],
            "monthly_charges": [95.0, 30.0],
            "support_calls": [4.0, 0.0],
            "region": ["south", "north"],
            "contract": ["monthly", "two-year"],
        }
    )
    churn = model.predict_proba(rows)[:, 1]  # type: ignore[attr-defined]
    step(
        "predict",
        bool(churn[0] > churn[1]),
        f"load_model({version.ref!r}): churn probability {churn[0]:.2f} for a new monthly "
        f"customer, {churn[1]:.2f} for a loyal two-year one",
    )
    _serving_step(project, step, version.model, rows.to_pydict(), [float(c) for c in churn])


def _serving_step(
    project: Any,
    step: Callable[[str, bool, str], None],
    model: str,
    columns: dict[str, list[Any]],
    expected: list[float],
) -> None:
    """Deploy the champion and ask a real gateway on 127.0.0.1 over the Open Inference
    Protocol, as any KServe or Triton client would."""
    try:
        import httpx
        import uvicorn
    except ImportError:
        step("serve", True, "skipped: install seaway[serve] to serve the model")
        return
    import socket
    import threading
    import time

    from seaway.serving.app import create_app
    from seaway.serving.routes import deploy

    table = deploy(project, f"{model}@champion")
    (deployment,) = table.for_model(model)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(project), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="seaway-demo-gateway", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        datatype = {str: "BYTES", float: "FP64", int: "INT64"}
        body = {
            "inputs": [
                {
                    "name": name,
                    "shape": [len(values)],
                    "datatype": datatype[type(values[0])],
                    "data": values,
                }
                for name, values in columns.items()
            ]
        }
        url = f"http://127.0.0.1:{port}/v2/models/{model}/infer"
        response = httpx.post(url, json=body, timeout=30)
        outputs = {o["name"]: o for o in response.json().get("outputs", [])}
        proba = outputs.get("predict_proba", {}).get("data", [])
        served = [float(p) for p in proba[1::2]]
        same = len(served) == len(expected) and all(
            abs(a - b) < 1e-9 for a, b in zip(served, expected, strict=True)
        )
        step(
            "serve",
            response.status_code == 200 and same,
            f"deployed {deployment.ref}; POST /v2/models/{model}/infer on 127.0.0.1:{port} → "
            f"{response.status_code}, answered by {response.headers.get('x-seaway-version')}, "
            "same probabilities as in process",
        )
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _runs_table(runs: list[Any]) -> str:
    rows = [("run", "status", "duration", "auc", "accuracy")]
    for r in runs:
        duration = f"{r.duration_s:.2f}s" if r.duration_s is not None else ""
        metrics = [f"{r.metrics[k]:.3f}" if k in r.metrics else "" for k in ("auc", "accuracy")]
        rows.append((f"#{r.seq} {r.id[:8]}", r.status, duration, *metrics))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(text.rstrip() for text in lines)
