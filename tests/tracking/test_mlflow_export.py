"""`seaway runs export --to mlflow` against a real MLflow 3.17.2 server on 127.0.0.1.

MLflow lives in a virtualenv of its own, built once under `.cache/test-venvs/` at the
repository root (a minute or two the first time) and reused after that. The server runs
with a SQLite backend and `--serve-artifacts` in a temporary folder. Everything that
arrived is checked through the server's REST API, as any MLflow client would see it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from seaway.project import Project
from seaway.tracking import RunStore, StepRecord
from tests.tracking.conftest import REPO_ROOT

MLFLOW_VERSION = "3.17.2"
VENV = REPO_ROOT / ".cache" / "test-venvs" / f"mlflow-{MLFLOW_VERSION}"

httpx = pytest.importorskip("httpx")


def _installed_version(python: Path) -> str | None:
    if not python.exists():
        return None
    done = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('mlflow'))"],
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"MLflow {MLFLOW_VERSION} is required in CI: {reason}")
    pytest.skip(f"MLflow {MLFLOW_VERSION} could not be installed here: {reason}")


@pytest.fixture(scope="session")
def mlflow_venv() -> Path:
    python = VENV / "bin" / "python"
    if _installed_version(python) == MLFLOW_VERSION:
        return VENV / "bin"
    if VENV.exists():
        shutil.rmtree(VENV)
    VENV.parent.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", f"mlflow=={MLFLOW_VERSION}"],
            check=True,
            capture_output=True,
            timeout=1200,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        tail = getattr(exc, "stderr", b"") or b""
        _unavailable(f"{exc}: {tail.decode(errors='replace')[-500:]}")
    if _installed_version(python) != MLFLOW_VERSION:
        _unavailable("pip finished but mlflow is not importable")
    return VENV / "bin"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def mlflow_server(mlflow_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    env = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "HOME": str(home),
    }
    log = open(home / "server.log", "wb")  # noqa: SIM115 - closed in teardown
    proc = subprocess.Popen(
        [
            str(mlflow_venv / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{home / 'mlflow.db'}",
            "--serve-artifacts",
            "--artifacts-destination",
            str(home / "artifacts"),
        ],
        cwd=home,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited: {(home / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"mlflow server did not start: {(home / 'server.log').read_text()[-2000:]}"
                )
            time.sleep(0.3)
        yield url
    finally:
        # The server forks workers: end its whole process group, which it leads.
        try:
            os.killpg(proc.pid, 15)
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, 9)
            proc.wait()
        log.close()


def _api(url: str, method: str, endpoint: str, **kwargs: Any) -> Any:
    response = httpx.request(method, f"{url}/api/2.0/mlflow/{endpoint}", timeout=30, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def _mlflow_run(url: str, experiment: str, seaway_id: str) -> dict[str, Any]:
    exp = _api(url, "GET", "experiments/get-by-name", params={"experiment_name": experiment})
    found = _api(
        url,
        "POST",
        "runs/search",
        json={
            "experiment_ids": [exp["experiment"]["experiment_id"]],
            "filter": f"tags.`seaway.run_id` = '{seaway_id}'",
        },
    )
    assert len(found["runs"]) == 1
    return dict(found["runs"][0])


def _history(url: str, run_id: str, key: str) -> list[tuple[int, float]]:
    doc = _api(
        url,
        "GET",
        "metrics/get-history",
        params={"run_id": run_id, "metric_key": key, "max_results": 25000},
    )
    return sorted((int(m["step"]), float(m["value"])) for m in doc.get("metrics", []))


def _artifact(url: str, path: str) -> bytes:
    response = httpx.get(f"{url}/api/2.0/mlflow-artifacts/artifacts/{path}", timeout=30)
    assert response.status_code == 200, response.text
    return response.content


def test_export_copies_runs_and_updates_them_on_re_export(  # type: ignore[no-untyped-def]
    cli, mlflow_server: str, project: Project, project_dir: Path
) -> None:
    import seaway

    (project_dir / "model.bin").write_bytes(b"\x00weights\xff")
    report = project_dir / "report"
    (report / "plots").mkdir(parents=True)
    (report / "plots" / "roc.csv").write_text("0,0\n1,1\n")
    with seaway.start_run(
        name="baseline", pipeline="train", params={"C": 1.0, "solver": "lbfgs"}
    ) as run:
        for step in range(1500):  # more than one log-batch request of metrics
            seaway.log_metric("loss", 1.0 / (step + 1), step=step)
        seaway.log_metric("auc", 0.87, step=3)
        seaway.set_tag("team", "churn")
        seaway.log_artifact(project_dir / "model.bin")
        seaway.log_artifact(report, name="report")
    store = RunStore(project)
    log_digest = project.blobs.put_bytes(b"fit: done\n")
    store.record_step(run.id, StepRecord("fit", "ran", log_digest=log_digest))
    failed = store.create_run(name="broken")
    store.finish(failed.id, "failed", "ValueError: boom")

    result = cli(
        "runs", "export", "--to", "mlflow", "--tracking-uri", mlflow_server,
        "--experiment", "churn", run.id[:8], "#2", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    import json

    exported = json.loads(result.stdout)["runs"]
    assert [r["action"] for r in exported] == ["created", "created"]
    assert exported[0]["metric_points"] == 1501 and exported[0]["artifact_files"] == 3

    mlrun = _mlflow_run(mlflow_server, "churn", run.id)
    info, data = mlrun["info"], mlrun["data"]
    assert info["run_id"] == exported[0]["mlflow_run_id"]
    assert info["status"] == "FINISHED" and info["run_name"] == "baseline"
    record = store.get(run.id)
    assert int(info["start_time"]) == int(record.started_at.timestamp() * 1000)
    assert record.ended_at is not None
    assert int(info["end_time"]) == int(record.ended_at.timestamp() * 1000)
    sent = {p["key"]: p["value"] for p in data["params"]}
    assert sent == {"C": "1.0", "solver": "lbfgs"}
    tags = {t["key"]: t["value"] for t in data["tags"]}
    assert tags["seaway.run_id"] == run.id and tags["seaway.pipeline"] == "train"
    assert tags["team"] == "churn"

    loss = _history(mlflow_server, info["run_id"], "loss")
    assert len(loss) == 1500
    assert loss[0] == (0, 1.0) and loss[-1] == (1499, pytest.approx(1 / 1500))
    assert _history(mlflow_server, info["run_id"], "auc") == [(3, 0.87)]

    root = info["artifact_uri"].split("mlflow-artifacts:", 1)[1].lstrip("/")
    assert _artifact(mlflow_server, f"{root}/model.bin") == b"\x00weights\xff"
    assert _artifact(mlflow_server, f"{root}/report/plots/roc.csv") == b"0,0\n1,1\n"
    assert _artifact(mlflow_server, f"{root}/seaway-logs/fit.log") == b"fit: done\n"

    broken = _mlflow_run(mlflow_server, "churn", failed.id)
    assert broken["info"]["status"] == "FAILED"
    assert {t["key"]: t["value"] for t in broken["data"]["tags"]}[
        "seaway.error"
    ] == "ValueError: boom"

    # Exporting again finds the same MLflow runs and adds no duplicate points.
    store.set_tags(run.id, {"reviewed": "yes"})
    again = cli(
        "runs", "export", "--tracking-uri", mlflow_server, "--experiment", "churn", run.id, "--json"
    )
    assert again.exit_code == 0, again.stderr
    second = json.loads(again.stdout)["runs"][0]
    assert second["action"] == "updated" and second["mlflow_run_id"] == info["run_id"]
    assert len(_history(mlflow_server, info["run_id"], "loss")) == 1500
    retagged = _mlflow_run(mlflow_server, "churn", run.id)
    assert {t["key"]: t["value"] for t in retagged["data"]["tags"]}["reviewed"] == "yes"


def test_unreachable_server_is_reported(cli, project: Project) -> None:  # type: ignore[no-untyped-def]
    store = RunStore(project)
    store.finish(store.create_run().id, "succeeded")
    port = _free_port()
    result = cli("runs", "export", "--tracking-uri", f"http://127.0.0.1:{port}")
    assert result.exit_code == 2
    assert "cannot reach the MLflow server" in result.stderr
    assert cli("runs", "export").exit_code == 2  # no --tracking-uri
