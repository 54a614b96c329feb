"""Fixtures for the gateway: real registered models and a real server process on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from seaway.project import Project
from tests.conftest import git

N_FEATURES = 4
NAMED = ["tenure", "charges", "age", "calls"]

BROKEN_PREDICT = """\
class Model:
    def load(self):
        pass

    def predict(self, data):
        raise ZeroDivisionError("the model divided by zero")
"""


def training_data(seed: int = 0) -> tuple[Any, Any]:
    from sklearn.datasets import make_classification

    return make_classification(n_samples=300, n_features=N_FEATURES, random_state=seed)


def save_classifier(path: Path, *, flip: bool = False, named: bool = False, C: float = 1.0) -> Path:
    """A LogisticRegression saved with skops; `flip` learns the opposite labels (so it
    disagrees with the others), `named` fits on a DataFrame with named columns."""
    import pandas as pd
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    X, y = training_data()
    if flip:
        y = 1 - y
    data: Any = pd.DataFrame(X, columns=NAMED) if named else X
    model = LogisticRegression(C=C, max_iter=500).fit(data, y)
    path.parent.mkdir(parents=True, exist_ok=True)
    sio.dump(model, path)
    return path


def python_model(folder: Path, code: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "predictor.py").write_text(code)
    (folder / "seaway-model.yaml").write_text("class: predictor:Model\ninput: array\n")
    return folder


def register(project: Project, name: str, path: Path, **kwargs: Any) -> int:
    from seaway.registry import register_model

    return register_model(project, name, path, **kwargs).version.number


def make_project(root: Path) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    (root / "seaway.yaml").write_text("name: gateway-test\n")
    return Project(root)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_server(root: Path, *args: str, timeout: float = 60.0) -> Iterator[str]:
    """`seaway serve` in a subprocess on a free port; yields its base URL."""
    import httpx

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEAWAY_")}
    log = root / f"server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "seaway.cli.main", "serve", "--port", str(port), *args],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"the server exited: {log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"the server did not get ready: {log.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(predicate: Any, timeout: float = 15.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(interval)


def v2_rows(rows: Any, name: str = "x") -> dict[str, Any]:
    import numpy as np

    arr = np.asarray(rows, dtype=float)
    return {
        "inputs": [
            {
                "name": name,
                "shape": list(arr.shape),
                "datatype": "FP64",
                "data": arr.ravel().tolist(),
            }
        ]
    }


def metric_samples(text: str, name: str) -> list[Any]:
    from prometheus_client.parser import text_string_to_metric_families

    out = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                out.append(sample)
    return out


@pytest.fixture(scope="module")
def isolated_env() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("SEAWAY_"):
                mp.delenv(key)
        yield
