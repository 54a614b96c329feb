"""`seaway promote` and `seaway rollback` as a user runs them: what is shown, the JSON,
and the exit codes (0 written, 1 refused by a check, 2 bad input)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.gitops.conftest import SPEC_YAML, GitProject
from tests.gitops.conftest import git_project as git_project  # the shared fixture


@pytest.fixture
def metadata_url(tmp_path: Path) -> str:
    """SQLite only: the store paths are covered by tests/gitops on both stores."""
    return f"sqlite:///{tmp_path / 'meta' / 'seaway.db'}"


def test_promote_shows_the_commit_and_the_change(git_project: GitProject, cli) -> None:  # type: ignore[no-untyped-def]
    gp = git_project
    result = cli("promote", "churn@3", "--to", "prod", "-m", "refresh")
    assert result.exit_code == 0, result.stderr
    sha = gp.head()
    assert "promoted churn in prod: @1 -> @3" in result.stdout
    assert f"commit {sha[:7]} on main (environments/prod.yaml)" in result.stdout
    assert "version: 3  # the stable one" in gp.read_env("prod")

    again = cli("promote", "churn@3", "--to", "prod")
    assert again.exit_code == 0
    assert "churn@3 is already the version in environments/prod.yaml" in again.stdout
    assert gp.head() == sha

    doc = json.loads(cli("promote", "churn@2", "--to", "staging", "--json").stdout)
    assert doc["commit"] == gp.head() and doc["previous"] == 1 and doc["version"] == 2
    assert doc["branch"] == "main" and doc["unchanged"] is False
    assert doc["message"].startswith("promote churn@2 to staging\n")


def test_promote_on_a_review_branch(git_project: GitProject, cli) -> None:  # type: ignore[no-untyped-def]
    gp = git_project
    head = gp.head()
    result = cli("promote", "churn@2", "--to", "prod", "--branch")
    assert result.exit_code == 0, result.stderr
    assert "on new branch promote/churn-2-prod" in result.stdout
    assert "working tree and current branch are untouched" in result.stdout
    assert gp.head() == head


def test_a_refused_promotion_names_the_rule_and_exits_1(git_project: GitProject, cli) -> None:  # type: ignore[no-untyped-def]
    gp = git_project
    (gp.root / "seaway.yaml").write_text(
        SPEC_YAML + "    gates:\n      - {metric: auc, min: 0.9}\n"
    )
    gp.commit_all("a stricter gate")
    head = gp.head()
    assert cli("gate", "churn@2").exit_code == 1  # auc 0.85

    result = cli("promote", "churn@2", "--to", "prod")
    assert result.exit_code == 1
    assert "refused: churn@2 cannot go to prod; nothing was written" in result.stderr
    assert "gate auc>=0.9: failed: auc 0.85 is below the minimum 0.9" in result.stderr
    assert "hint: seaway gate churn@2" in result.stderr

    doc = json.loads(cli("promote", "churn@2", "--to", "prod", "--json").stdout)
    assert doc["promoted"] is False
    assert [f["rule"] for f in doc["failures"]] == ["gate auc>=0.9"]
    assert gp.head() == head and gp.status() == ""


def test_bad_input_exits_2(git_project: GitProject, cli) -> None:  # type: ignore[no-untyped-def]
    gp = git_project
    gp.write_env("prod", gp.read_env("prod") + "# draft\n")
    dirty = cli("promote", "churn@2", "--to", "prod")
    assert dirty.exit_code == 2
    assert "environments/prod.yaml has uncommitted changes" in dirty.stderr
    unknown = cli("promote", "churn@2", "--to", "qa")
    assert unknown.exit_code == 2 and "no environment 'qa'" in unknown.stderr
    assert cli("rollback", "churn", "--env", "staging").exit_code == 2  # no earlier version


def test_rollback_goes_back_one_version(git_project: GitProject, cli) -> None:  # type: ignore[no-untyped-def]
    gp = git_project
    assert cli("promote", "churn@2", "--to", "staging").exit_code == 0
    result = cli("rollback", "churn", "--env", "staging", "--reason", "bad canary")
    assert result.exit_code == 0, result.stderr
    assert "rolled back churn in staging: @2 -> @1" in result.stdout
    assert "Reason: bad canary" in gp.git("log", "-1", "--format=%B")
    doc = json.loads(cli("rollback", "churn", "--env", "staging", "--to", "3", "--json").stdout)
    assert (doc["version"], doc["previous"], doc["commit"]) == (3, 1, gp.head())
