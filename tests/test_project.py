"""Finding a project and resolving the URLs of its stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from seaway.errors import ProjectNotFound
from seaway.project import Project, find_root, resolve_sqlite_url
from seaway.store.blobs import FsspecBlobStore, LocalBlobStore


@pytest.fixture
def subdir(project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    deeper = project_dir / "src" / "pkg"
    deeper.mkdir(parents=True)
    monkeypatch.chdir(deeper)
    return deeper


def test_found_by_walking_up_from_a_subdirectory(project_dir: Path, subdir: Path) -> None:
    assert Project.find().root == project_dir.resolve()
    assert find_root(subdir) == project_dir.resolve()


def test_found_from_an_explicit_directory(project_dir: Path, tmp_path: Path) -> None:
    assert Project.find(str(project_dir / ".")).root == project_dir.resolve()
    # An explicit directory is searched instead of the working directory (a project).
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(ProjectNotFound):
        Project.find(elsewhere)


def test_missing_directory_given_with_C(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    with pytest.raises(ProjectNotFound) as err:
        Project.find(missing)
    assert str(missing) in err.value.message
    assert err.value.hint and "-C" in err.value.hint


def test_no_spec_anywhere_suggests_seaway_init(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty" / "deeper"
    empty.mkdir(parents=True)
    monkeypatch.chdir(empty)
    with pytest.raises(ProjectNotFound) as err:
        Project.find()
    assert "seaway.yaml" in err.value.message
    assert err.value.hint and "seaway init" in err.value.hint
    with pytest.raises(ProjectNotFound):
        Project.find(empty)


def test_environment_overrides_win_over_seaway_yaml(
    project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project_dir / "seaway.yaml").write_text(
        "name: demo\nstore:\n  metadata: sqlite:///from-yaml.db\n  artifacts: from-yaml-objects\n"
    )
    metadata = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("SEAWAY_METADATA_URL", metadata)
    monkeypatch.setenv("SEAWAY_ARTIFACTS_URL", "memory://seaway-env-objects")
    project = Project.find()
    assert project.metadata_url == metadata
    assert project.artifacts_url == "memory://seaway-env-objects"
    assert isinstance(project.blobs, FsspecBlobStore)


def test_store_settings_of_seaway_yaml_apply_without_overrides(project_dir: Path) -> None:
    (project_dir / "seaway.yaml").write_text(
        "name: demo\nstore:\n  metadata: sqlite:///state/meta.db\n  artifacts: state/objects\n"
    )
    project = Project.find()
    root = project_dir.resolve()
    assert project.metadata_url == f"sqlite:///{root / 'state' / 'meta.db'}"
    assert project.artifacts_url == str(root / "state" / "objects")


def test_defaults_live_under_dot_seaway(project_dir: Path) -> None:
    project = Project.find()
    root = project_dir.resolve()
    assert project.metadata_url == f"sqlite:///{root / '.seaway' / 'seaway.db'}"
    assert project.artifacts_url == str(root / ".seaway" / "objects")


def test_relative_sqlite_path_resolves_against_the_root_not_the_cwd(
    project_dir: Path, subdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEAWAY_METADATA_URL", "sqlite:///rel/x.db")
    project = Project.find()
    expected = project_dir.resolve() / "rel" / "x.db"
    assert project.metadata_url == f"sqlite:///{expected}"
    # And the database really is created there, not under the working directory.
    with project.metadata.read():
        pass
    project.close()
    assert expected.is_file()
    assert not (subdir / "rel").exists()


def test_relative_artifacts_path_resolves_against_the_root(
    project_dir: Path, subdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEAWAY_ARTIFACTS_URL", "store/objects")
    project = Project.find()
    assert project.artifacts_url == str(project_dir.resolve() / "store" / "objects")
    blobs = project.blobs
    assert isinstance(blobs, LocalBlobStore)
    digest = blobs.put_bytes(b"x")
    assert (project_dir / "store" / "objects" / digest[:2] / digest[2:]).is_file()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///rel/x.db", "sqlite:////project/rel/x.db"),
        ("sqlite+pysqlite:///x.db", "sqlite+pysqlite:////project/x.db"),
        ("sqlite:////abs/x.db", "sqlite:////abs/x.db"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("sqlite://", "sqlite://"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    ],
)
def test_resolve_sqlite_url(url: str, expected: str) -> None:
    assert resolve_sqlite_url(url, Path("/project")) == expected


def test_relpath_is_relative_inside_and_absolute_outside(project_dir: Path, tmp_path: Path) -> None:
    project = Project.find()
    assert project.relpath(project_dir / "data" / "a.csv") == "data/a.csv"
    outside = tmp_path / "outside.csv"
    assert project.relpath(outside) == outside.resolve().as_posix()
