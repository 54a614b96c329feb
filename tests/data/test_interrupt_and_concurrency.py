"""A killed `data add` leaves the store consistent; concurrent adds lose nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seaway.data import datasets as ds
from seaway.data.checkout import checkout
from seaway.data.maintenance import verify
from seaway.project import Project
from tests.conftest import run_seaway
from tests.data.conftest import make_tree, write_random


def _blob_count(project: Project) -> int:
    return sum(1 for _ in project.blobs.iter_digests())


def test_sigkill_mid_add_leaves_store_consistent_and_next_add_completes(
    project: Project, tmp_path: Path
) -> None:
    files = make_tree(project.root / "data", 1500, size=32 * 1024)
    proc = subprocess.Popen(
        [sys.executable, "-m", "seaway.cli.main", "data", "add", "raw", "data"],
        cwd=project.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while _blob_count(project) < 200:
        assert proc.poll() is None, "add finished before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stored_before_retry = _blob_count(project)
    assert 0 < stored_before_retry < 1501

    # Nothing half-done is visible: no version, no dangling references.
    assert ds.list_datasets(project) == []
    assert verify(project).ok

    result = run_seaway("data", "add", "raw", "data", "--json", cwd=project.root)
    assert result.exit_code == 0, result.stderr
    added = json.loads(result.stdout)
    assert added["version"] == 1 and added["files"] == 1500
    # Blobs that arrived before the kill were not written again.
    assert added["stored_blobs"] <= 1501 - stored_before_retry + 1
    assert verify(project).ok
    checkout(project, "raw@1", tmp_path / "out")
    for rel, content in files.items():
        assert (tmp_path / "out" / rel).read_bytes() == content


_WORKER = """
import sys
from pathlib import Path
from seaway.project import Project
from seaway.data import datasets as ds
from tests.data.conftest import write_random

root, me = Path(sys.argv[1]), int(sys.argv[2])
project = Project(root)
mine = root / f"w{me}"
for round_ in range(3):
    write_random(mine / "own.bin", 4096, me * 100 + round_)
    ds.add(project, f"own{me}", [mine])
    shared = root / f"shared{me}"
    write_random(shared / "x.bin", 4096, 1000 + me * 100 + round_)
    ds.add(project, "shared", [shared])
project.close()
"""


def test_four_processes_adding_at_once_keep_every_version(project: Project, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(project.root), str(i)],
            cwd=project.root,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err

    for i in range(4):
        versions = ds.log(project, f"own{i}")
        assert [v.number for v in versions] == [3, 2, 1]
    shared = ds.log(project, "shared")
    # Twelve adds of twelve distinct contents: twelve versions, numbered without gaps.
    assert sorted(v.number for v in shared) == list(range(1, 13))
    assert len({v.tree_hash for v in shared}) == 12
    assert verify(project).ok
    for v in shared:
        out = tmp_path / f"s{v.number}"
        checkout(project, v.ref, out)
        assert len(list(out.rglob("*.bin"))) == 1


@pytest.mark.parametrize("content_seed", [1])
def test_concurrent_identical_adds_make_one_version(project: Project, content_seed: int) -> None:
    write_random(project.root / "same" / "a.bin", 1024, content_seed)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "seaway.cli.main", "data", "add", "same", "same"],
            cwd=project.root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert [v.number for v in ds.log(project, "same")] == [1]


def test_processes_opening_a_new_index_together_all_succeed(project: Project) -> None:
    """The workspace index is created by whichever process comes first; the others wait
    for it instead of failing with "database is locked" or recreating it."""
    code = (
        "import sys; from pathlib import Path; from seaway.data.index import WorkspaceIndex\n"
        "ix = WorkspaceIndex(Path(sys.argv[1])); ix.workspace('x'); ix.close(); print('ok')"
    )
    target = project.state_dir / "fresh-index.db"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(target)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0 and out.strip() == "ok", err
