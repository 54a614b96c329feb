from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from seaway.errors import UsageError
from seaway.init import init_project
from tests.conftest import git, run_seaway


def test_init_creates_a_project_in_a_new_git_repo(tmp_path: Path) -> None:
    result = init_project(tmp_path / "churn")
    root = tmp_path / "churn"
    assert result.git_initialised and (root / ".git").is_dir()
    assert (root / "seaway.yaml").read_text().startswith("# seaway.yaml")
    assert (root / "environments" / "staging.yaml").exists()
    assert (root / ".seaway").is_dir()
    assert ".seaway/" in (root / ".gitignore").read_text().splitlines()
    assert "?? .seaway" not in git(root, "status", "--porcelain", "--untracked-files=all")


def test_init_in_an_existing_repo_keeps_its_gitignore(tmp_repo: Path) -> None:
    (tmp_repo / ".gitignore").write_text("*.log")
    result = init_project(tmp_repo)
    assert not result.git_initialised
    assert (tmp_repo / ".gitignore").read_text().splitlines() == ["*.log", ".seaway/"]


def test_init_refuses_to_overwrite(tmp_repo: Path) -> None:
    (tmp_repo / "seaway.yaml").write_text("name: mine\n")
    with pytest.raises(UsageError, match="does not overwrite"):
        init_project(tmp_repo)
    assert (tmp_repo / "seaway.yaml").read_text() == "name: mine\n"
    cli = run_seaway("init", str(tmp_repo), cwd=tmp_repo)
    assert cli.exit_code == 2 and "already exists" in cli.stderr


def test_initialised_project_validates_and_its_example_data_passes_checks(tmp_path: Path) -> None:
    root = tmp_path / "p"
    assert run_seaway("init", str(root), "--example", cwd=tmp_path).exit_code == 0
    assert run_seaway("validate", cwd=root).exit_code == 0
    added = run_seaway("data", "add", "customers", cwd=root)
    assert added.exit_code == 0, added.stdout + added.stderr
    assert run_seaway("data", "check", "customers", cwd=root).exit_code == 0


def test_demo_runs_the_loop(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    result = run_seaway("demo", str(root), cwd=tmp_path)
    out = result.stdout
    assert result.exit_code == 0, out + result.stderr
    assert "FAIL" not in out
    assert "4 of 4 steps cached" in out  # the second run of the pipeline
    assert "register: churn-classifier@1" in out
    assert "answered by churn-classifier@1, same probabilities as in process" in out
    # The shifted features are named, the unchanged region is not.
    (drift,) = [ln for ln in out.splitlines() if ln.startswith("ok  drift:")]
    assert "monthly_charges" in drift and "region" not in drift
    assert "churn-classifier@2 promoted to prod in commit" in out
    assert "champion: churn-classifier@2 serves all of prod" in out
    assert "retraining cycle" in out
    # Two promotions, both commits on the environment file; one trigger, completed.
    log = subprocess.run(
        ["git", "log", "--format=%s", "--", "environments/prod.yaml"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert len([line for line in log if "churn-classifier" in line]) == 2, log
    triggers = run_seaway("monitor", "triggers", "--json", cwd=root)
    assert triggers.exit_code == 0, triggers.stderr
    (only,) = json.loads(triggers.stdout)["triggers"]
    assert only["status"] == "completed" and only["version"] == 2
    assert (root / "drift-report.html").is_file()
