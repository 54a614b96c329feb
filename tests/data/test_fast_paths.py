"""The shortcuts that keep `data add` and `data status` fast give the same answers as the
general code: the SQLite lane, the settings cache and the workspace snapshot."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from seaway.data import datasets as ds
from seaway.data.sqlite_lane import LANE_REVISIONS
from seaway.errors import InputError, SpecError
from seaway.project import Project
from seaway.store.schema import SCHEMA_REVISION
from tests.data.conftest import age, make_tree, write_random


@pytest.fixture
def sqlite_project(project_dir: Path) -> Project:
    p = Project(project_dir)
    yield p  # type: ignore[misc]
    p.close()


def test_the_lane_matches_the_current_schema() -> None:
    # When a migration is added, the lane must be checked against it and its revision
    # bumped; until then it steps aside (see the next test), which is safe but slow.
    assert SCHEMA_REVISION in LANE_REVISIONS


def _add_twice(project: Project, monkeypatch: pytest.MonkeyPatch, sqlalchemy_only: bool) -> None:
    if sqlalchemy_only:
        monkeypatch.setenv("SEAWAY_SQLALCHEMY_ONLY", "1")
    write_random(project.root / "data" / "a.bin", 100, 1)
    ds.add(project, "raw", [Path("data")], message="one")  # creates the database
    write_random(project.root / "data" / "a.bin", 100, 2)
    ds.add(project, "raw", [Path("data")], message="two")
    ds.add(project, "raw", [Path("data")], message="same content again")


def test_lane_and_sqlalchemy_record_the_same_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = []
    for sqlalchemy_only in (False, True):
        root = tmp_path / f"p{int(sqlalchemy_only)}"
        root.mkdir()
        (root / "seaway.yaml").write_text("name: demo\n")
        monkeypatch.chdir(root)
        project = Project(root)
        with monkeypatch.context() as m:
            _add_twice(project, m, sqlalchemy_only)
        # Read back through SQLAlchemy in both cases.
        versions = [v.to_dict() for v in ds.log(project, "raw")]
        with project.metadata.read() as conn:
            from sqlalchemy import text

            events = conn.execute(text("SELECT kind, subject, data FROM events")).all()
        project.close()
        for v in versions:
            v.pop("created_at")
            v.pop("sources")
        results.append((versions, [tuple(e) for e in events]))
    assert results[0] == results[1]
    assert [v["version"] for v in results[0][0]] == [2, 1]


def test_lane_steps_aside_for_another_schema_revision(
    sqlite_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_random(sqlite_project.root / "a.bin", 10, 1)
    ds.add(sqlite_project, "a", [Path("a.bin")])
    db = sqlite_project.metadata_url.removeprefix("sqlite:///")
    sqlite_project.close()
    from seaway.data.sqlite_lane import SqliteLane

    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0000'")
    assert not SqliteLane(Path(db)).usable


def test_settings_cache_follows_edits_of_seaway_yaml(project_dir: Path) -> None:
    spec = project_dir / "seaway.yaml"
    spec.write_text("name: demo\ndatasets:\n  raw: {path: data}\n")
    first = Project(project_dir).settings
    assert first.datasets["raw"].paths == ["data"]
    assert (project_dir / ".seaway" / "settings.json").exists()

    spec.write_text("name: demo\ndatasets:\n  raw: {path: other}\n")
    assert Project(project_dir).settings.datasets["raw"].paths == ["other"]

    spec.write_text("name: demo\ndatasets:\n  raw: {pathh: other}\n")
    with pytest.raises(SpecError, match="did you mean 'path'"):
        _ = Project(project_dir).settings


def test_declared_path_and_checks_are_used_by_add(project_dir: Path) -> None:
    (project_dir / "seaway.yaml").write_text("name: demo\ndatasets:\n  raw:\n    path: data\n")
    make_tree(project_dir / "data", 3)
    project = Project(project_dir)
    assert ds.add(project, "raw").version.n_files == 3
    project.close()


def test_a_declared_glob_adds_every_match(project_dir: Path) -> None:
    (project_dir / "seaway.yaml").write_text(
        "name: demo\ndatasets:\n  parts:\n    path: 'data/part-*.csv'\n"
    )
    for i in range(3):
        write_random(project_dir / "data" / f"part-{i}.csv", 10, i)
    write_random(project_dir / "data" / "other.csv", 10, 9)
    project = Project(project_dir)
    v = ds.add(project, "parts").version
    assert sorted(e.path for e in ds.read_manifest(project, v)) == [
        "part-0.csv",
        "part-1.csv",
        "part-2.csv",
    ]
    (project_dir / "seaway.yaml").write_text(
        "name: demo\ndatasets:\n  parts:\n    path: 'data/nothing-*.csv'\n"
    )
    with pytest.raises(InputError, match="matches no file"):
        ds.add(Project(project_dir), "parts")
    project.close()


def test_add_to_a_new_store_writes_every_blob_again(
    sqlite_project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    make_tree(sqlite_project.root / "data", 5)
    age(sqlite_project.root / "data")
    ds.add(sqlite_project, "raw", [Path("data")])
    sqlite_project.close()
    monkeypatch.setenv("SEAWAY_ARTIFACTS_URL", str(tmp_path / "elsewhere"))
    moved = Project(sqlite_project.root)
    again = ds.add(moved, "raw", [Path("data")])
    assert not again.created  # same content: the same version
    assert again.stored == 5  # but the new store received every blob
    from seaway.data.maintenance import verify

    assert verify(moved).ok
    moved.close()


def test_status_snapshot_is_not_fooled_by_a_racy_edit(sqlite_project: Project) -> None:
    path = sqlite_project.root / "data" / "a.bin"
    write_random(path, 64, 1)  # just written: inside the racy window, so not in the snapshot
    ds.add(sqlite_project, "raw", [Path("data")])
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))
    import os

    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime, same inode
    (status,) = ds.status(sqlite_project, "raw")
    assert status.state == "modified"
