"""Who is acting, which roles they hold, and whether they may do an action.

`current_identity(project)` answers "who is acting" in this order:

1. `SEAWAY_TOKEN` is set: the token is authenticated (`seaway.policy.tokens`) and the
   identity is the token's name with the token's roles. A bad token is an error
   (`InvalidToken`, exit 1), never a silent fall-back to the local user: someone who set a
   token means to act as it.
2. Otherwise the local user (`SEAWAY_ACTOR`, else the login name), whose roles follow one
   rule with two modes:

   - *single-user mode*, while the project has no active API token: the local user owns
     the project. They hold every role seaway.yaml declares and may do every action,
     `admin` included, so a laptop project just works and its first token can be created.
     `SEAWAY_ROLES=a,b` narrows them to those roles (to try a policy as a release manager,
     say); it must name declared roles.
   - *team mode*, as soon as one active token exists: the local user holds no role, so any
     action that needs a permission asks for `SEAWAY_TOKEN`. `SEAWAY_ROLES` only ever
     narrows, so it grants nothing here. The first token must grant `admin` (the owner
     usually creates one for themselves), so someone can still manage tokens. Revoking
     the last token returns to single-user mode (that needs an admin token, like any
     token change).

A project whose seaway.yaml declares no `roles:` has not opted into access control:
`authorize` allows every identity every action (a token, if given, is still checked).

`authorize(project, action, *alternatives)` returns the identity when one of its roles
grants the action or one of the alternatives (`approve` or `approve:prod`), and raises
`PermissionDenied` (exit 1, HTTP 403) otherwise, naming the identity, the roles it holds
and the roles that would grant the action. Callers record the returned identity's `name`
as the actor of the events they write, so the log says who did what, with which token.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from seaway.errors import UsageError
from seaway.policy.errors import PermissionDenied

if TYPE_CHECKING:
    from seaway.project import Project

TOKEN_ENV = "SEAWAY_TOKEN"
ROLES_ENV = "SEAWAY_ROLES"

Via = Literal["token", "local"]


@dataclass(frozen=True)
class Identity:
    """An acting person or service."""

    name: str
    roles: tuple[str, ...] = ()
    via: Via = "local"
    owner: bool = False
    """Single-user mode: the local user may do every action (see the module docstring)."""
    team_mode: bool = field(default=False, compare=False)
    """A local user of a project with active tokens: the reason they hold no roles."""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "roles": list(self.roles), "via": self.via, "owner": self.owner}

    def describe(self) -> str:
        held = ", ".join(self.roles) or "none"
        how = "token" if self.via == "token" else "local user"
        return f"{self.name} ({how}, roles: {held})"


def _env_roles() -> list[str] | None:
    raw = os.environ.get(ROLES_ENV)
    if raw is None or not raw.strip():
        return None
    return [r.strip() for r in raw.split(",") if r.strip()]


def local_identity(project: Project) -> Identity:
    """The local user, with the roles the module docstring's rule gives them."""
    from seaway._util import actor
    from seaway.policy.tokens import has_active_tokens

    name = actor()
    declared = list(project.spec.roles)
    narrowed = _env_roles()
    if narrowed is not None:
        unknown = [r for r in narrowed if r not in declared]
        if unknown:
            raise UsageError(
                f"{ROLES_ENV} names roles seaway.yaml does not declare: {', '.join(unknown)}",
                hint=f"declared roles: {', '.join(declared) or 'none'}",
            )
    if has_active_tokens(project):
        return Identity(name, (), "local", owner=False, team_mode=True)
    if narrowed is not None:
        return Identity(name, tuple(dict.fromkeys(narrowed)), "local")
    return Identity(name, tuple(declared), "local", owner=True)


def current_identity(project: Project) -> Identity:
    """Who is acting: the SEAWAY_TOKEN's identity, else the local user."""
    secret = os.environ.get(TOKEN_ENV)
    if secret is not None and secret.strip():
        from seaway.policy.tokens import authenticate

        return authenticate(project, secret)
    return local_identity(project)


def is_permitted(project: Project, identity: Identity, action: str, *alternatives: str) -> bool:
    """Whether `identity` may do `action` (or one of the alternatives), without raising."""
    from seaway.policy.roles import permits

    roles = project.spec.roles
    actions = (action, *alternatives)
    # Checked first so that a malformed action is a UsageError even for the owner.
    granted = any(permits(roles, identity.roles, a) for a in actions)
    return granted or identity.owner or not roles


def authorize(
    project: Project, action: str, *alternatives: str, identity: Identity | None = None
) -> Identity:
    """The acting identity when it may do `action` (or one of the alternatives);
    PermissionDenied otherwise. `identity` defaults to `current_identity(project)`."""
    from seaway.policy.roles import roles_granting

    who = identity if identity is not None else current_identity(project)
    if is_permitted(project, who, action, *alternatives):
        return who
    actions = (action, *alternatives)
    wanted = " or ".join(actions)
    roles = project.spec.roles
    granting = list(dict.fromkeys(r for a in actions for r in roles_granting(roles, a)))
    raise PermissionDenied(f"{who.describe()} may not {wanted}", hint=_hint(who, granting, action))


def _hint(who: Identity, granting: list[str], action: str) -> str:
    if not granting:
        return f"no role in seaway.yaml grants it; add `{action}` to a role under `roles:`"
    roles = ", ".join(granting)
    if who.via == "token":
        return (
            f"roles that grant it: {roles}; use a token with one of them "
            f"(an admin creates it: seaway tokens create NAME --role {granting[0]})"
        )
    if who.team_mode:
        return (
            f"this project has API tokens, so local users hold no roles: set {TOKEN_ENV} to a "
            f"token with one of: {roles}"
        )
    return f"roles that grant it: {roles} ({ROLES_ENV} narrows the local user's roles)"
