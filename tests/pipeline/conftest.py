"""Fixtures: a copy of tests/pipeline/fixture as a git project, on SQLite or PostgreSQL."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from seaway.project import Project

FIXTURE = Path(__file__).parent / "fixture"


@pytest.fixture(autouse=True)
def _no_workers_left() -> Iterator[None]:
    yield
    left = [p for p in multiprocessing.active_children() if p.name != "SyncManager"]
    assert not left, f"worker processes left running: {left}"


def copy_fixture(dest: Path) -> None:
    shutil.copytree(FIXTURE, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))


@pytest.fixture
def shell_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """`python` in shell steps is the interpreter running the tests."""
    bin_dir = os.path.dirname(sys.executable)
    monkeypatch.setenv("PATH", bin_dir + os.pathsep + os.environ.get("PATH", ""))


@pytest.fixture
def fx(
    project_dir: Path, metadata_url: str, monkeypatch: pytest.MonkeyPatch, shell_path: None
) -> Iterator[Project]:
    """The fixture project with dataset `raw` added, on SQLite and on PostgreSQL."""
    copy_fixture(project_dir)
    monkeypatch.setenv("SEAWAY_METADATA_URL", metadata_url)
    project = Project(project_dir)
    from seaway.data.datasets import add

    add(project, "raw")
    yield project
    project.close()


@pytest.fixture
def fx_sqlite(project_dir: Path, shell_path: None) -> Iterator[Project]:
    """The fixture project on its default SQLite store (for tests the store does not change)."""
    copy_fixture(project_dir)
    project = Project(project_dir)
    from seaway.data.datasets import add

    add(project, "raw")
    yield project
    project.close()


def statuses(record: object) -> dict[str, str]:
    return {s.step: s.status for s in record.steps}  # type: ignore[attr-defined]


def trace(project: Project, step: str) -> dict[str, object]:
    return json.loads((project.root / "trace" / f"{step}.json").read_text())  # type: ignore[no-any-return]


def read_blob(project: Project, digest: str) -> bytes:
    return project.blobs.get_bytes(digest)
