"""`seaway approve`, `seaway approvals` and `seaway policy eval NAME@V --env ENV` as a user
runs them: a release manager other than the author unblocks prod; exit codes 0/1/2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from seaway.project import Project
from tests.conftest import CliResult
from tests.policy.identity_support import act_as, events, register_version, team_project


@pytest.fixture
def team(project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """churn@1, registered by alice, the project's only user so far."""
    project = team_project(project_dir, monkeypatch)
    try:
        register_version(project, tmp_path)
    finally:
        project.close()
    return project_dir


def _json(result: CliResult) -> Any:
    assert result.exit_code in (0, 1), result.stderr
    return json.loads(result.stdout)


def _token(cli, name: str, role: str) -> str:  # type: ignore[no-untyped-def]
    result = cli("tokens", "create", name, "--role", role, "--json")
    assert result.exit_code == 0, result.stderr
    secret: str = json.loads(result.stdout)["secret"]
    return secret


def test_the_author_approving_is_not_enough_another_release_manager_is(  # type: ignore[no-untyped-def]
    team: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = cli("approve", "churn@1", "--env", "prod", "--comment", "I wrote it, it is good")
    assert mine.exit_code == 0, mine.stderr
    assert mine.stdout.strip() == "alice approved churn@1 for prod as release-manager"

    blocked = cli("policy", "eval", "churn@1", "--env", "prod")
    assert blocked.exit_code == 1
    assert "BLOCK" in blocked.stdout and "blocked by prod-needs-approval" in blocked.stdout
    doc = _json(cli("policy", "eval", "churn@1", "--env", "prod", "--json"))
    assert doc["allowed"] is False and doc["blocked_by"] == ["prod-needs-approval"]
    assert doc["request"]["version"]["author"] == "alice"
    assert doc["request"]["approvals"][0]["actor"] == "alice"
    assert [(p["policy"], p["applies"], p["passed"]) for p in doc["policies"]] == [
        ("prod-needs-approval", True, False),
        ("scanned", True, True),
    ]

    act_as(monkeypatch, _token(cli, "root", "admin"))
    act_as(monkeypatch, _token(cli, "bob", "release-manager"))
    theirs = cli("approve", "churn@1", "--env", "prod", "-m", "reviewed", "--json")
    assert _json(theirs)["actor"] == "bob" and _json(theirs)["role"] == "release-manager"

    allowed = cli("policy", "eval", "churn@1", "--env", "prod")
    assert allowed.exit_code == 0, allowed.stdout + allowed.stderr
    assert allowed.stdout.rstrip().endswith("allowed")
    doc = _json(cli("policy", "eval", "churn@1", "--env", "prod", "--json"))
    assert doc["allowed"] is True and doc["request"]["actor"] == "bob"

    listed = _json(cli("approvals", "churn@1", "--json"))
    assert [(a["actor"], a["role"], a["comment"]) for a in listed] == [
        ("alice", "release-manager", "I wrote it, it is good"),
        ("bob", "release-manager", "reviewed"),
    ]
    shown = cli("approvals", "churn@1", "--env", "prod")
    assert shown.exit_code == 0 and "bob" in shown.stdout
    none = cli("approvals", "churn@1", "--env", "staging")
    assert none.exit_code == 0 and "no approvals for staging" in none.stdout

    # A what-if leaves no trace in the audit log; the approvals do, under their actors.
    project = Project(team)
    try:
        assert events(project, "policy.decision") == []
        assert [e.actor for e in events(project, "model.approved")] == ["alice", "bob"]
    finally:
        project.close()


def test_a_token_without_the_role_exits_1(  # type: ignore[no-untyped-def]
    team: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    act_as(monkeypatch, _token(cli, "root", "admin"))
    act_as(monkeypatch, _token(cli, "eve", "ml-engineer"))
    denied = cli("approve", "churn@1", "--env", "prod")
    assert denied.exit_code == 1
    assert "error: eve (token, roles: ml-engineer) may not approve or approve:prod" in (
        denied.stderr
    )
    assert "release-manager" in denied.stderr
    wrong_role = cli("approve", "churn@1", "--env", "prod", "--role", "release-manager")
    assert wrong_role.exit_code == 1


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["policy", "eval", "churn@1"], "which environment"),
        (["policy", "eval"], "no request to evaluate"),
        (["policy", "eval", "churn@7", "--env", "prod"], "churn"),
        (["policy", "eval", "churn@1", "--env", "prd"], "did you mean 'prod'"),
        (["policy", "eval", "churn@1", "--env", "prod", "--request", "r.yaml"], "not both"),
        (["approve", "churn@1", "--env", "prd"], "did you mean 'prod'"),
        (["approve", "nope@1", "--env", "prod"], "no model named 'nope'"),
        (["approvals", "churn@x!"], "neither a version number nor an alias"),
    ],
)
def test_bad_input_exits_2(team: Path, cli, args: list[str], words: str) -> None:  # type: ignore[no-untyped-def]
    result = cli(*args)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert words in result.stderr


def test_eval_still_takes_a_request_file(team: Path, cli) -> None:  # type: ignore[no-untyped-def]
    (team / "r.yaml").write_text(
        "environment: staging\nmodel: churn\nversion: {number: 1, scan: safe}\n"
    )
    result = cli("policy", "eval", "--request", "r.yaml")
    assert result.exit_code == 0, result.stderr
