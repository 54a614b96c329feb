"""Approvals on real registered versions, on SQLite and PostgreSQL: who may approve, in
which role, and how a policy that wants someone other than the author reads them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from seaway.errors import NotFound, UsageError
from seaway.policy import (
    Identity,
    PermissionDenied,
    approve,
    authenticate,
    create_token,
    evaluate_promotion,
    list_approvals,
)
from seaway.project import Project
from tests.policy.identity_support import act_as, events, register_version


@pytest.fixture
def version(team: Project, tmp_path: Path) -> Any:
    """churn@1, registered by alice while she is the project's only user."""
    return register_version(team, tmp_path)


@pytest.fixture
def root(team: Project, version: Any) -> Identity:
    """The first (admin) token; from here on local users hold no roles."""
    _, secret = create_token(team, "root", ["admin"])
    return authenticate(team, secret)


def token(team: Project, root: Identity, name: str, *roles: str) -> str:
    return create_token(team, name, list(roles), identity=root)[1]


def test_an_approval_by_the_author_does_not_count_another_release_managers_does(
    team: Project, version: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert version.author == "alice"
    # Alice, alone on the project, holds every role: her approval is recorded as a
    # release manager's, and the policy still blocks, because she wrote the version.
    mine = approve(team, "churn@1", "prod", comment="looks fine to me")
    assert (mine.actor, mine.role, mine.environment) == ("alice", "release-manager", "prod")
    blocked = evaluate_promotion(team, "churn@1", "prod")
    assert not blocked.allowed and blocked.blocked_by == ["prod-needs-approval"]

    # The team grows: an admin token for alice, a release-manager token for bob.
    _, root_secret = create_token(team, "root", ["admin"])
    root = authenticate(team, root_secret)
    act_as(monkeypatch, token(team, root, "bob", "release-manager"))
    theirs = approve(team, "churn@1", "prod", comment="reviewed the metrics")
    assert (theirs.actor, theirs.role) == ("bob", "release-manager")

    allowed = evaluate_promotion(team, "churn@1", "prod")
    assert allowed.allowed and allowed.blocked_by == []

    approved = events(team, "model.approved")
    assert [(e.actor, e.subject) for e in approved] == [
        ("alice", "model:churn@1"),
        ("bob", "model:churn@1"),
    ]
    assert approved[1].data["via"] == "token"
    assert approved[1].data["comment"] == "reviewed the metrics"
    decisions = events(team, "policy.decision")
    assert [(e.actor, e.data["allowed"]) for e in decisions] == [("alice", False), ("bob", True)]
    assert [a.actor for a in list_approvals(team, "churn@1", "prod")] == ["alice", "bob"]


def test_a_token_without_an_approving_role_is_denied(
    team: Project, root: Identity, monkeypatch: pytest.MonkeyPatch
) -> None:
    act_as(monkeypatch, token(team, root, "eve", "ml-engineer"))
    with pytest.raises(PermissionDenied) as err:
        approve(team, "churn@1", "prod")
    assert err.value.exit_code == 1
    assert err.value.message == ("eve (token, roles: ml-engineer) may not approve or approve:prod")
    assert "release-manager" in (err.value.hint or "")
    assert list_approvals(team, "churn@1") == []
    assert events(team, "model.approved") == []


def test_a_local_user_in_team_mode_is_told_to_use_a_token(team: Project, root: Identity) -> None:
    with pytest.raises(PermissionDenied) as err:
        approve(team, "churn@1", "prod")
    assert "alice (local user, roles: none)" in err.value.message
    assert "SEAWAY_TOKEN" in (err.value.hint or "")


def test_an_approval_scoped_to_an_environment(
    team: Project, root: Identity, monkeypatch: pytest.MonkeyPatch
) -> None:
    act_as(monkeypatch, token(team, root, "sam", "staging-approver"))
    record = approve(team, "churn@1", "staging")
    assert record.role == "staging-approver"
    with pytest.raises(PermissionDenied, match="may not approve or approve:prod"):
        approve(team, "churn@1", "prod")


def test_the_role_must_be_held_and_must_grant_approval(
    team: Project, root: Identity, monkeypatch: pytest.MonkeyPatch
) -> None:
    act_as(monkeypatch, token(team, root, "kim", "release-manager", "staging-approver"))
    # Both roles may approve staging: kim says in which one.
    with pytest.raises(UsageError, match="several roles that may approve") as err:
        approve(team, "churn@1", "staging")
    assert "--role" in (err.value.hint or "")
    assert approve(team, "churn@1", "staging", role="staging-approver").role == "staging-approver"
    # Only one of them may approve prod, so there it is chosen for kim.
    assert approve(team, "churn@1", "prod").role == "release-manager"
    with pytest.raises(PermissionDenied, match="does not hold the role 'admin'"):
        approve(team, "churn@1", "staging", role="admin")
    with pytest.raises(PermissionDenied, match="'staging-approver' does not grant approval"):
        approve(team, "churn@1", "prod", role="staging-approver")


def test_approving_twice_is_refused(team: Project, version: Any) -> None:
    approve(team, "churn@1", "prod")
    with pytest.raises(UsageError, match="alice already approved churn@1 for prod"):
        approve(team, "churn@1", "prod", comment="again")
    assert len(list_approvals(team, version, "prod")) == 1
    # Another environment is another approval.
    approve(team, "churn@1", "staging", role="release-manager")
    assert [a.environment for a in list_approvals(team, version)] == ["prod", "staging"]


def test_unknown_versions_and_environments(team: Project, version: Any) -> None:
    with pytest.raises(NotFound):
        approve(team, "churn@9", "prod")
    with pytest.raises(NotFound, match="no model named 'churm'"):
        approve(team, "churm@1", "prod")
    with pytest.raises(UsageError, match="did you mean 'prod'") as err:
        approve(team, "churn@1", "prd")
    assert "prod, staging" in (err.value.hint or "")
    with pytest.raises(UsageError, match="not an environment name"):
        approve(team, "churn@1", "Prod!")
    assert list_approvals(team, version) == []


def test_approvals_follow_aliases(team: Project, version: Any) -> None:
    from seaway.registry import set_alias

    set_alias(team, "churn@1", "champion")
    record = approve(team, "churn@champion", "prod")
    assert record.ref == "churn@1"
    assert [a.id for a in list_approvals(team, "churn@1")] == [record.id]
