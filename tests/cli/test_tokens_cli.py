"""`seaway tokens …` as a user runs it: the secret shown once, exit codes, messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from seaway.project import Project
from tests.conftest import CliResult
from tests.policy.identity_support import act_as, table_text, team_project


@pytest.fixture
def team(project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    team_project(project_dir, monkeypatch).close()
    return project_dir


def _json(result: CliResult) -> Any:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _stored(root: Path) -> str:
    project = Project(root)
    try:
        return table_text(project, "api_tokens") + table_text(project, "events")
    finally:
        project.close()


def _create_root(cli) -> str:  # type: ignore[no-untyped-def]
    created = cli("tokens", "create", "root", "--role", "admin", "--json")
    secret: str = _json(created)["secret"]
    return secret


def test_create_list_revoke(team: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    created = cli("tokens", "create", "root", "--role", "admin", "--json")
    doc = _json(created)
    root = doc["secret"]
    assert root.startswith("sw_") and doc["roles"] == ["admin"] and doc["status"] == "active"
    assert "only time the secret is shown" in created.stderr

    act_as(monkeypatch, root)
    human = cli(
        "tokens", "create", "bob", "-r", "release-manager", "-r", "ml-engineer", "--expires", "30d"
    )
    assert human.exit_code == 0, human.stderr
    first, secret = human.stdout.splitlines()
    assert "created token bob (roles: release-manager, ml-engineer, expires 20" in first
    assert secret.startswith("sw_") and len(secret) == 46

    listed = _json(cli("tokens", "list", "--json"))
    assert [(t["name"], t["status"], t["created_by"]) for t in listed] == [
        ("bob", "active", "root"),
        ("root", "active", "alice"),
    ]
    assert listed[0]["expires_at"] is not None and "secret" not in listed[0]
    shown = cli("tokens", "list")
    assert shown.exit_code == 0
    assert all(word in shown.stdout for word in ("bob", "ml-engineer", "root", "active"))
    assert secret not in shown.stdout

    revoked = cli("tokens", "revoke", "bob")
    assert revoked.exit_code == 0 and "revoked token bob" in revoked.stdout
    again = cli("tokens", "revoke", "bob")
    assert again.exit_code == 2 and "already revoked" in again.stderr
    assert [t["status"] for t in _json(cli("tokens", "list", "--json"))] == ["revoked", "active"]

    stored = _stored(team)
    assert root not in stored and secret not in stored


def test_a_token_without_the_role_exits_1(team: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    act_as(monkeypatch, _create_root(cli))
    eve = _json(cli("tokens", "create", "eve", "--role", "ml-engineer", "--json"))["secret"]
    act_as(monkeypatch, eve)
    denied = cli("tokens", "revoke", "root")
    assert denied.exit_code == 1
    assert "error: eve (token, roles: ml-engineer) may not admin" in denied.stderr
    assert "hint: roles that grant it: admin" in denied.stderr
    assert denied.stdout == ""


def test_local_users_need_a_token_once_one_exists(team: Path, cli) -> None:  # type: ignore[no-untyped-def]
    _create_root(cli)
    denied = cli("tokens", "create", "bob", "--role", "release-manager")
    assert denied.exit_code == 1
    assert "alice (local user, roles: none) may not admin" in denied.stderr
    assert "set SEAWAY_TOKEN" in denied.stderr


def test_revoked_and_unknown_tokens_exit_1(
    team: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    root = _create_root(cli)
    act_as(monkeypatch, root)
    bob = _json(cli("tokens", "create", "bob", "--role", "admin", "--json"))["secret"]
    assert cli("tokens", "revoke", "bob").exit_code == 0
    act_as(monkeypatch, bob)
    refused = cli("tokens", "create", "carol", "--role", "release-manager")
    assert refused.exit_code == 1 and "token 'bob' was revoked at" in refused.stderr
    act_as(monkeypatch, "not-a-token")
    refused = cli("tokens", "create", "carol", "--role", "release-manager")
    assert refused.exit_code == 1 and "not a seaway API token" in refused.stderr
    assert "not-a-token" not in refused.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["create", "bob", "--role", "release-manger"], "did you mean 'release-manager'"),
        (["create", "bob"], "at least one role"),
        (["create", "bob", "--role", "admin", "--expires", "30"], "not a duration"),
        (["create", "bob smith", "--role", "admin"], "not a valid token name"),
        (["revoke", "nobody"], "no token named 'nobody'"),
    ],
)
def test_bad_input_exits_2(team: Path, cli, args: list[str], words: str) -> None:  # type: ignore[no-untyped-def]
    result = cli("tokens", *args)
    assert result.exit_code == 2, result.stderr
    assert words in result.stderr


def test_the_first_token_must_grant_admin(team: Path, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("tokens", "create", "bob", "--role", "release-manager")
    assert result.exit_code == 2
    assert "seaway tokens create alice --role admin" in result.stderr
    assert _json(cli("tokens", "list", "--json")) == []
