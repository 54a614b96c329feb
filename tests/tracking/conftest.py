from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from seaway.project import Project
from seaway.tracking import fluent
from seaway.tracking.environment import reset_cache
from seaway.tracking.store import RunStore

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _clean_tracking_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No run, store or git answer leaks from one test into the next."""
    monkeypatch.delenv(fluent.ENV_RUN_ID, raising=False)
    monkeypatch.delenv(fluent.ENV_PROJECT, raising=False)
    reset_cache()
    yield
    fluent.reset()
    reset_cache()


@pytest.fixture
def store_env(metadata_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the project's metadata at SQLite or PostgreSQL (parametrised)."""
    monkeypatch.setenv("SEAWAY_METADATA_URL", metadata_url)
    return metadata_url


@pytest.fixture
def project(project_dir: Path, store_env: str) -> Iterator[Project]:
    p = Project(project_dir)
    yield p
    p.close()


@pytest.fixture
def store(project: Project) -> Iterator[RunStore]:
    s = RunStore(project)
    yield s
    s.close()


def run_python(
    code: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a Python snippet in a fresh interpreter with this environment (plus `env`)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
