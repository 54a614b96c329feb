"""Roles and the permissions they grant."""

from __future__ import annotations

import pytest

from seaway.errors import UsageError
from seaway.policy import PermissionDenied, permissions_of, permits, require_permission
from seaway.policy.roles import covers, roles_granting

ROLES = {
    "ml-engineer": ["run", "register", "promote:staging"],
    "release-manager": ["approve", "promote:prod", "alias"],
    "deployer": ["promote:*"],
    "admin": ["*"],
}


@pytest.mark.parametrize(
    ("roles", "action", "allowed"),
    [
        (["ml-engineer"], "register", True),
        (["ml-engineer"], "promote:staging", True),
        (["ml-engineer"], "promote:prod", False),
        (["ml-engineer"], "approve", False),
        (["release-manager"], "promote:prod", True),
        (["release-manager"], "alias", True),
        (["release-manager"], "register", False),
        (["ml-engineer", "release-manager"], "promote:prod", True),
        (["deployer"], "promote:prod", True),
        (["deployer"], "promote:anything-else", True),
        (["deployer"], "promote", True),
        (["deployer"], "approve", False),
        (["admin"], "admin", True),
        (["admin"], "promote:prod", True),
        (["ml-engineer"], "admin", False),
        (["unknown-role"], "run", False),
        ([], "run", False),
    ],
)
def test_permits(roles: list[str], action: str, allowed: bool) -> None:
    assert permits(ROLES, roles, action) is allowed


def test_a_bare_verb_does_not_open_every_environment() -> None:
    assert covers("promote", "promote")
    assert not covers("promote", "promote:prod")
    assert covers("promote:*", "promote")
    assert not covers("promote:prod", "promote:staging")
    assert not covers("promote:prod", "promote")


@pytest.mark.parametrize("action", ["promote:*", "*", "Promote", "promote:", ""])
def test_actions_are_checked(action: str) -> None:
    with pytest.raises(UsageError):
        permits(ROLES, ["admin"], action)


def test_permissions_of_merges_roles_in_order() -> None:
    assert permissions_of(ROLES, ["ml-engineer", "release-manager", "ml-engineer"]) == [
        "run",
        "register",
        "promote:staging",
        "approve",
        "promote:prod",
        "alias",
    ]


def test_require_permission_explains_who_could() -> None:
    require_permission(ROLES, "bob", ["release-manager"], "promote:prod")
    with pytest.raises(PermissionDenied) as info:
        require_permission(ROLES, "alice", ["ml-engineer"], "promote:prod")
    err = info.value
    assert err.exit_code == 1 and err.http_status == 403
    assert err.message == "alice (roles: ml-engineer) may not promote:prod"
    assert err.hint == "roles that grant it: release-manager, deployer, admin"
    assert roles_granting({"a": ["run"]}, "approve") == []
    with pytest.raises(PermissionDenied) as info:
        require_permission({"a": ["run"]}, "", [], "approve")
    assert "no role in seaway.yaml grants it" in str(info.value)
