"""The Ray executor: the same outputs as the local one, and a Ray kept on loopback.

Ray is started for real, on this machine (no cluster address given)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from seaway.pipeline import run_pipeline
from seaway.project import Project
from tests.pipeline.conftest import statuses

ray = pytest.importorskip("ray", reason="Ray is in the test extras; CI installs it")


def _outputs(record: object) -> dict[str, dict[str, str]]:
    return {
        s.step: {name: out["tree_hash"] for name, out in s.outputs.items()}  # type: ignore[attr-defined]
        for s in record.steps  # type: ignore[attr-defined]
    }


@pytest.fixture
def two_projects(fx_sqlite: Project, tmp_path: Path) -> Iterator[tuple[Project, Project]]:
    """The fixture project, and an identical copy with a store of its own."""
    twin_root = tmp_path / "twin"
    shutil.copytree(fx_sqlite.root, twin_root, ignore=shutil.ignore_patterns(".seaway"))
    twin = Project(twin_root)
    from seaway.data.datasets import add

    cwd = Path.cwd()
    os.chdir(twin_root)
    try:
        add(twin, "raw")
    finally:
        os.chdir(cwd)
    yield fx_sqlite, twin
    twin.close()


def test_ray_gives_the_same_outputs_as_local_and_stays_on_loopback(
    two_projects: tuple[Project, Project],
) -> None:
    local_project, ray_project = two_projects
    local = run_pipeline(local_project, "train", executor="local")
    assert local.status == "succeeded"

    from seaway.pipeline.executors.ray import RayExecutor, node_addresses

    executor = RayExecutor(project=ray_project, jobs=2)
    try:
        # Every node of the Ray seaway started reports the loopback address...
        assert node_addresses() == ["127.0.0.1"]
        # ...and no process of it listens anywhere but on loopback.
        listening = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
        ray_lines = [
            line
            for line in listening.splitlines()
            if any(name in line for name in ("raylet", "gcs_server", "ray::", "plasma"))
        ]
        assert ray_lines, "expected Ray's own processes to be listening"
        for line in ray_lines:
            local_address = line.split()[3]
            assert "127.0.0.1" in local_address, line
    finally:
        executor.shutdown()

    on_ray = run_pipeline(ray_project, "train", executor="ray", jobs=2)
    assert on_ray.status == "succeeded", on_ray.error
    assert set(statuses(on_ray).values()) == {"ran"}
    assert on_ray.executor == "ray"
    # Content-addressed outputs: the same bytes whichever executor ran the steps.
    assert _outputs(on_ray) == _outputs(local)
    assert not ray.is_initialized(), "a Ray started by seaway is stopped after the run"
