"""Shared fixtures: throwaway git projects, an isolated PostgreSQL database, a CLI runner."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from seaway.project import Project

PG_ADMIN_URL = os.environ.get("SEAWAY_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

MINIMAL_SPEC = "name: demo\n"


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }
    out = subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout


@pytest.fixture
def tmp_repo(tmp_path: Path) -> Path:
    """An empty git repository."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    return repo


@pytest.fixture
def project_dir(tmp_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository holding a minimal seaway.yaml, used as the working directory."""
    (tmp_repo / "seaway.yaml").write_text(MINIMAL_SPEC)
    monkeypatch.chdir(tmp_repo)
    monkeypatch.delenv("SEAWAY_METADATA_URL", raising=False)
    monkeypatch.delenv("SEAWAY_ARTIFACTS_URL", raising=False)
    return tmp_repo


@pytest.fixture
def cli(capfd: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run the CLI in-process: cli("data", "list", "--json") -> CliResult."""
    from seaway.cli.main import run

    def invoke(*args: str) -> CliResult:
        capfd.readouterr()
        code = run([str(a) for a in args])
        out, err = capfd.readouterr()
        return CliResult(code, out, err)

    return invoke


def run_seaway(*args: str, cwd: Path, env: dict[str, str] | None = None) -> CliResult:
    """Run the installed console script in a separate process."""
    proc = subprocess.run(
        [sys.executable, "-m", "seaway.cli.main", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def _pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=test", connect_timeout=3
        ):
            return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The PostgreSQL server's admin URL. In CI (CI=1) a missing server fails the run."""
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL on 127.0.0.1:5432 is required in CI")
        pytest.skip("PostgreSQL on 127.0.0.1:5432 is not running")
    return PG_ADMIN_URL


@contextlib.contextmanager
def private_pg_database() -> Iterator[str]:
    """A fresh database of its own on the shared server, dropped afterwards."""
    import psycopg

    name = f"seaway_test_{uuid.uuid4().hex[:12]}"
    admin = "host=127.0.0.1 port=5432 user=postgres dbname=test"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    with private_pg_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def metadata_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta' / 'seaway.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store_env(metadata_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the project's metadata at SQLite or PostgreSQL (parametrised)."""
    monkeypatch.setenv("SEAWAY_METADATA_URL", metadata_url)
    return metadata_url


@pytest.fixture
def project(project_dir: Path, store_env: str) -> Project:
    p = Project(project_dir)
    yield p  # type: ignore[misc]
    p.close()
