"""Roles and permissions: who may register, approve, alias or promote where.

`seaway.yaml` maps roles to permissions:

    roles:
      ml-engineer: [run, register, "promote:staging"]
      release-manager: [approve, "promote:prod", alias]

An action is a verb (`register`, `alias`, `approve`, `run`, `admin`) or a verb scoped to an
environment (`promote:prod`). A permission grants:

- `verb`: the action `verb` only (`promote` does not grant `promote:prod`: least privilege,
  so a bare verb never opens every environment by accident);
- `verb:env`: that action only;
- `verb:*`: `verb` and `verb:` any environment;
- `*`: every action.

Roles the spec does not declare grant nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from seaway.errors import UsageError
from seaway.policy.errors import PermissionDenied

ACTION_PATTERN = r"^[a-z][a-z_-]*(:[a-z0-9][a-z0-9_-]*)?$"
_ACTION_RE = re.compile(ACTION_PATTERN)

RolesSpec = Mapping[str, Sequence[str]]


def _check_action(action: str) -> None:
    if not _ACTION_RE.match(action):
        raise UsageError(
            f"{action!r} is not an action",
            hint="write a verb (approve) or verb:environment (promote:prod); wildcards belong "
            "in permissions, not in actions",
        )


def covers(permission: str, action: str) -> bool:
    """Whether one permission grants one action."""
    if permission == "*":
        return True
    verb, _, scope = action.partition(":")
    granted_verb, _, granted_scope = permission.partition(":")
    if granted_verb != verb:
        return False
    return granted_scope == "*" or granted_scope == scope


def permissions_of(roles: RolesSpec, actor_roles: Iterable[str]) -> list[str]:
    """The permissions the actor's roles grant, in spec order, without repeats."""
    seen: dict[str, None] = {}
    for role in actor_roles:
        for permission in roles.get(role, ()):
            seen.setdefault(permission, None)
    return list(seen)


def permits(roles: RolesSpec, actor_roles: Iterable[str], action: str) -> bool:
    """Whether any of the actor's roles grants `action`."""
    _check_action(action)
    return any(covers(p, action) for p in permissions_of(roles, actor_roles))


def roles_granting(roles: RolesSpec, action: str) -> list[str]:
    """The declared roles that grant `action`, for error hints."""
    _check_action(action)
    return [role for role, granted in roles.items() if any(covers(p, action) for p in granted)]


def require_permission(
    roles: RolesSpec, actor: str, actor_roles: Iterable[str], action: str
) -> None:
    """Raise PermissionDenied (exit 1, HTTP 403) unless the actor may do `action`."""
    actor_roles = list(actor_roles)
    if permits(roles, actor_roles, action):
        return
    held = ", ".join(actor_roles) or "none"
    granting = roles_granting(roles, action)
    hint = (
        f"roles that grant it: {', '.join(granting)}"
        if granting
        else f"no role in seaway.yaml grants it; add `{action}` to a role under `roles:`"
    )
    raise PermissionDenied(f"{actor or 'this actor'} (roles: {held}) may not {action}", hint=hint)
