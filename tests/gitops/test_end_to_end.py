"""The whole GitOps loop with real processes: a git repository, a gateway under synthetic
load, and `seaway controller` woken by its push webhook.

A candidate that fails requests is rolled back automatically (with a rollback commit); one
that answers 200 with shifted predictions is too; a healthy one reaches 100% and becomes
champion; a controller killed with SIGKILL mid-rollout is replaced by one that resumes at
the step it reached.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from seaway.registry.versions import get_version
from seaway.rollout.records import latest_rollout
from seaway.serving import routes
from tests.gitops.conftest import GitProject
from tests.serving.conftest import (
    BROKEN_PREDICT,
    free_port,
    python_model,
    register,
    training_data,
    wait_for,
)

pytestmark = pytest.mark.timeout(420)

ENV = """\
target: local
self_heal: true
rollback_commit: true
deployments:
  churn:
    version: {version}
    strategy:
      canary:
        analysis: {{max_error_rate: 0.05, max_prediction_psi: 0.5, min_requests: 15,
                    interval: 1s, inconclusive_limit: 2m}}
        steps:
          - {{weight: 30, analysis: {{max_error_rate: 0.05, max_prediction_psi: 0.5,
                                    min_requests: 15, interval: 1s, inconclusive_limit: 2m}}}}
          - {{weight: 60, pause: {pause}}}
          - {{weight: 100}}
"""


def _rollout_at_step(gp: GitProject, step: int) -> Any:
    rollout = latest_rollout(gp.project, "prod", "churn")
    return rollout if rollout is not None and rollout.step == step else None


@pytest.fixture
def metadata_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'meta' / 'seaway.db'}"


def _env() -> dict[str, str]:
    keep = ("SEAWAY_METADATA_URL",)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEAWAY_") or k in keep}
    env["SEAWAY_ACTOR"] = "alice"
    env["SEAWAY_SERVE_FLUSH_INTERVAL"] = "0.5"
    return env


@contextlib.contextmanager
def process(root: Path, name: str, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    log = root / f"{name}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "seaway.cli.main", *args],
            cwd=root,
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args} exited: {log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer: {log.read_text()}")
        time.sleep(0.1)


class Load:
    """One client thread sending one-row v1 requests without pause."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.codes: dict[int, int] = {}
        self.versions: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        rows, _ = training_data(seed=1)
        with httpx.Client(timeout=10) as client:
            i = 0
            while not self._stop.is_set():
                row = rows[i % len(rows)].tolist()
                i += 1
                try:
                    r = client.post(
                        f"{self.url}/v1/models/churn:predict", json={"instances": [row]}
                    )
                except httpx.HTTPError:
                    time.sleep(0.05)
                    continue
                self.codes[r.status_code] = self.codes.get(r.status_code, 0) + 1
                self.versions.append(r.headers.get("x-seaway-version", ""))
                time.sleep(0.005)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join(10)


def save_shifted(path: Path) -> Path:
    """A classifier that answers 1 for nearly every row: 200s, shifted predictions."""
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    X, _ = training_data()
    y = (X[:, 0] > -1.8).astype(int)
    model = LogisticRegression(max_iter=500).fit(X, y)
    path.parent.mkdir(parents=True, exist_ok=True)
    sio.dump(model, path)
    return path


def split(gp: GitProject) -> dict[int, float]:
    return {d.number: round(d.weight, 3) for d in routes.load_table(gp.project).for_model("churn")}


def push(gp: GitProject, version: int, hook: str, *, pause: str = "2s") -> None:
    gp.write_env(
        "prod", ENV.format(version=version, pause=pause), commit=f"promote churn@{version}"
    )
    httpx.post(hook, json={"ref": "refs/heads/main"}, timeout=5).raise_for_status()


def phase_of(gp: GitProject, version: int) -> str | None:
    r = latest_rollout(gp.project, "prod", "churn")
    return r.phase if r is not None and r.candidate == version else None


def test_canaries_roll_back_bad_candidates_and_promote_a_good_one(
    git_project: GitProject, tmp_path: Path
) -> None:
    gp = git_project
    root = gp.root
    gp.git("rm", "-q", "environments/staging.yaml")
    gp.write_env("prod", ENV.format(version=1, pause="2s"), commit="prod serves churn@1")
    broken = register(gp.project, "churn", python_model(tmp_path / "broken", BROKEN_PREDICT))
    shifted = register(gp.project, "churn", save_shifted(tmp_path / "shifted.skops"))
    hook_port, gw_port = free_port(), free_port()
    hook = f"http://127.0.0.1:{hook_port}/webhook"
    gateway = f"http://127.0.0.1:{gw_port}"

    with (
        process(root, "gateway", "serve", "--port", str(gw_port), "--poll-interval", "0.2") as gw,
        process(
            root,
            "controller",
            "controller",
            "--interval",
            "1",
            "--rollout-interval",
            "0.3",
            "--webhook-port",
            str(hook_port),
        ) as ctl,
    ):
        wait_http(f"{gateway}/v2/health/ready", gw, root / "gateway.log")
        wait_http(f"http://127.0.0.1:{hook_port}/healthz", ctl, root / "controller.log")
        wait_for(lambda: split(gp) == {1: 100.0}, timeout=30)

        with Load(gateway) as load:
            # A candidate that raises: Degraded, all traffic back on @1, a rollback commit.
            push(gp, broken, hook)
            wait_for(lambda: phase_of(gp, broken) == "Degraded", timeout=90)
            assert split(gp) == {1: 100.0}
            wait_for(lambda: gp.git("log", "-1", "--format=%s").startswith("rollback"))
            assert "rollback churn to @1" in gp.git("log", "-1", "--format=%s")
            assert "version: 1" in gp.git("show", "HEAD:environments/prod.yaml")
            assert load.codes.get(500, 0) > 0, "the broken candidate served some requests"

            # 200s with shifted predictions: Degraded on prediction PSI.
            push(gp, shifted, hook)
            wait_for(lambda: phase_of(gp, shifted) == "Degraded", timeout=90)
            rollout = latest_rollout(gp.project, "prod", "churn")
            assert rollout is not None and "prediction_psi" in (rollout.message or "")
            assert split(gp) == {1: 100.0}
            wait_for(lambda: gp.git("log", "-1", "--format=%s").startswith("rollback"))

            # A healthy candidate goes 30% -> 60% -> 100% and becomes champion.
            push(gp, 2, hook)
            wait_for(lambda: phase_of(gp, 2) == "Successful", timeout=90)
            assert split(gp) == {2: 100.0}
            assert "champion" in get_version(gp.project, "churn@2").aliases
            served = set(load.versions)
        assert {"churn@1", "churn@2"} <= served
        out = subprocess.run(
            [sys.executable, "-m", "seaway.cli.main", "status", "--json"],
            cwd=root,
            env=_env(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert '"sync": "Synced"' in out


def test_a_controller_killed_mid_rollout_is_resumed_at_its_step(
    git_project: GitProject, tmp_path: Path
) -> None:
    gp = git_project
    root = gp.root
    gp.git("rm", "-q", "environments/staging.yaml")
    gp.write_env("prod", ENV.format(version=1, pause="2s"), commit="prod serves churn@1")
    hook_port, gw_port = free_port(), free_port()
    hook = f"http://127.0.0.1:{hook_port}/webhook"
    gateway = f"http://127.0.0.1:{gw_port}"
    args = ["controller", "--interval", "1", "--rollout-interval", "0.3"]

    with process(root, "gateway", "serve", "--port", str(gw_port), "--poll-interval", "0.2") as gw:
        wait_http(f"{gateway}/v2/health/ready", gw, root / "gateway.log")
        with Load(gateway):
            with process(root, "c1", *args, "--webhook-port", str(hook_port)) as first:
                wait_http(f"http://127.0.0.1:{hook_port}/healthz", first, root / "c1.log")
                wait_for(lambda: split(gp) == {1: 100.0}, timeout=30)
                # A long pause at 60%: the kill lands while the rollout holds that step.
                push(gp, 2, hook, pause="6s")
                wait_for(lambda: split(gp) == {1: 40.0, 2: 60.0}, timeout=60)
                # Traffic moves before the step is saved: wait for the saved step too.
                held = wait_for(lambda: _rollout_at_step(gp, 1), timeout=10)
                assert held.candidate == 2
                os.kill(first.pid, signal.SIGKILL)
                first.wait(10)
            assert phase_of(gp, 2) == "Progressing"
            seen: list[dict[int, float]] = []
            with process(root, "c2", *args) as second:

                def done() -> bool:
                    seen.append(split(gp))
                    return phase_of(gp, 2) == "Successful"

                wait_for(done, timeout=60, interval=0.1)
                assert second.poll() is None
    assert {1: 70.0, 2: 30.0} not in seen, "the new controller must not restart the canary"
    assert split(gp) == {2: 100.0}
    finished = latest_rollout(gp.project, "prod", "churn")
    assert finished is not None and finished.step >= 2
