"""API tokens: how a person or a service proves who it is, and which roles it holds.

A token is a named set of roles (`seaway tokens create bob --role release-manager`). Its
secret is `sw_` followed by 43 URL-safe characters (32 random bytes from `secrets`), shown
once at creation and never stored: the `api_tokens` table keeps its SHA-256. A fast,
unsalted hash is enough here, unlike for passwords: the secret has 256 bits of entropy, so
there is nothing to guess even with the hash in hand, and hashing on every request must be
cheap for the gateway. The `sw_` prefix makes a leaked token recognisable to secret
scanners and lets `authenticate` refuse a pasted password before touching the database.

The token's name is the identity it stands for: events written with it carry that name
as their actor, and a version registered with it has it as its author. Name tokens after
the person or service (`bob`, `ci`).

Lifecycle:

- `create_token` needs the `admin` action (see `seaway.policy.identity` for how the very
  first token is created on a project without any). Its roles must be declared under
  `roles:` in seaway.yaml. The first active token must grant `admin`: from then on local
  users hold no roles, and a project whose only tokens cannot manage tokens would be
  locked. For the same reason the last admin token cannot be revoked while other tokens
  are active. A name in use by an active token is refused; the name of a
  revoked or expired token is reused (the row is replaced, its history stays in the audit
  log), so rotating a token is `revoke` then `create` under the same name.
- `revoke_token` (also `admin`) stamps `revoked_at`; the token stops working at once.
- `authenticate` finds the token by the hash of the secret (an indexed lookup), compares
  the hashes again in constant time, refuses revoked and expired tokens, and notes
  `last_used_at`, at most once a minute per token so that a busy gateway does not write
  on every request.

Events: `token.created` and `token.revoked`, subject `token:NAME`, with the roles and the
expiry; never the secret or its hash.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from seaway._util import as_utc, isoformat, utcnow
from seaway.errors import NotFound, UsageError
from seaway.policy.errors import PermissionDenied
from seaway.policy.identity import Identity

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Row

    from seaway.project import Project

TOKEN_PREFIX = "sw_"
_SECRET_BYTES = 32
_SECRET_RE = re.compile(r"^sw_[A-Za-z0-9_-]{43}$")
# A token's name is an actor in the audit log: people's logins and e-mail addresses fit.
TOKEN_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,199}$"
_NAME_RE = re.compile(TOKEN_NAME_PATTERN)
_LAST_USED_EVERY = timedelta(minutes=1)

TokenStatus = Literal["active", "revoked", "expired"]


class InvalidToken(PermissionDenied):
    """A presented token is unknown, revoked or expired (exit 1, HTTP 401)."""

    http_status = 401


@dataclass(frozen=True)
class TokenInfo:
    """What is known about a token; never its secret."""

    name: str
    roles: list[str]
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def status(self, now: datetime | None = None) -> TokenStatus:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or utcnow()):
            return "expired"
        return "active"

    @property
    def active(self) -> bool:
        return self.status() == "active"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "roles": list(self.roles),
            "status": self.status(),
            "created_at": isoformat(self.created_at),
            "created_by": self.created_by,
            "expires_at": isoformat(self.expires_at),
            "revoked_at": isoformat(self.revoked_at),
            "last_used_at": isoformat(self.last_used_at),
        }


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _info(row: Row[Any]) -> TokenInfo:
    return TokenInfo(
        name=row.name,
        roles=list(row.roles or []),
        created_at=as_utc(row.created_at) or utcnow(),
        created_by=row.created_by,
        expires_at=as_utc(row.expires_at),
        revoked_at=as_utc(row.revoked_at),
        last_used_at=as_utc(row.last_used_at),
    )


def _check_name(name: str) -> None:
    if not _NAME_RE.match(name):
        raise UsageError(
            f"{name!r} is not a valid token name",
            hint="use letters, digits and . _ @ + - (up to 200 characters), e.g. the login "
            "of the person or the name of the service the token stands for",
        )


def _check_roles(project: Project, roles: list[str]) -> list[str]:
    declared = list(project.spec.roles)
    if not roles:
        raise UsageError(
            "a token needs at least one role",
            hint=f"pass --role ROLE; roles declared in seaway.yaml: {', '.join(declared)}"
            if declared
            else "declare roles under `roles:` in seaway.yaml first",
        )
    unknown = [r for r in roles if r not in declared]
    if unknown:
        from seaway.spec.crossref import did_you_mean

        which = ", ".join(repr(r) for r in unknown)
        suggestion = did_you_mean(unknown[0], declared) if len(unknown) == 1 else ""
        raise UsageError(
            f"role {which} is not declared in seaway.yaml{suggestion}",
            hint=f"declared roles: {', '.join(declared)}"
            if declared
            else "declare roles under `roles:` in seaway.yaml, e.g. "
            '`release-manager: [approve, "promote:prod"]`',
        )
    return list(dict.fromkeys(roles))


def _grants_admin(project: Project, roles: list[str]) -> bool:
    from seaway.policy.roles import permits

    return permits(project.spec.roles, roles, "admin")


def _first_token_needs_admin(project: Project, creator: str, roles: list[str]) -> UsageError:
    from seaway.policy.roles import roles_granting

    admins = roles_granting(project.spec.roles, "admin")
    how = (
        f"create one for yourself first: seaway tokens create {creator} --role {admins[0]}"
        if admins
        else "add a role with `admin` under `roles:` in seaway.yaml (e.g. `admin: [admin]`), "
        "then create a token with it for yourself"
    )
    return UsageError(
        f"the first token must carry a role that grants admin ({', '.join(roles)} does not)",
        hint="once a token exists, local users hold no roles, and nobody could manage "
        f"tokens without one that grants admin; {how}",
    )


def create_token(
    project: Project,
    name: str,
    roles: list[str],
    *,
    expires: timedelta | None = None,
    identity: Identity | None = None,
) -> tuple[TokenInfo, str]:
    """Create a token; return what is stored and the secret, which is not kept anywhere.

    `identity` (default: `current_identity(project)`) must be allowed `admin`; it is the
    event's actor and the token's `created_by`."""
    from seaway.policy.identity import authorize

    _check_name(name)
    roles = _check_roles(project, roles)
    if expires is not None and expires <= timedelta(0):
        raise UsageError("a token's lifetime must be positive", hint="e.g. --expires 30d")
    creator = authorize(project, "admin", identity=identity)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)
    digest = hash_secret(secret)

    def write(conn: Connection) -> TokenInfo:
        from sqlalchemy import select

        from seaway.store.events import record_event
        from seaway.store.schema import api_tokens

        now = utcnow()
        expires_at = now + expires if expires is not None else None
        values = {
            "name": name,
            "token_hash": digest,
            "roles": roles,
            "created_at": now,
            "created_by": creator.name,
            "expires_at": expires_at,
            "revoked_at": None,
            "last_used_at": None,
        }
        active = [t for t in (_info(r) for r in conn.execute(select(api_tokens))) if t.active]
        if not active and not _grants_admin(project, roles):
            raise _first_token_needs_admin(project, creator.name, roles)
        existing = conn.execute(select(api_tokens).where(api_tokens.c.name == name)).first()
        if existing is not None:
            old = _info(existing)
            if old.active:
                until = f" until {isoformat(old.expires_at)}" if old.expires_at else ""
                raise UsageError(
                    f"a token named {name!r} already exists (roles: {', '.join(old.roles)}, "
                    f"active{until})",
                    hint=f"revoke it first (seaway tokens revoke {name}) or pick another name",
                )
            conn.execute(api_tokens.update().where(api_tokens.c.name == name).values(values))
        else:
            conn.execute(api_tokens.insert().values(values))
        record_event(
            conn,
            "token.created",
            f"token:{name}",
            {
                "roles": roles,
                "expires_at": isoformat(expires_at),
                "replaces": existing is not None,
            },
            actor=creator.name,
        )
        row = conn.execute(select(api_tokens).where(api_tokens.c.name == name)).one()
        return _info(row)

    info = project.metadata.run_write(write)
    return info, secret


def list_tokens(project: Project) -> list[TokenInfo]:
    """Every token, active or not, by name."""
    from sqlalchemy import select

    from seaway.store.schema import api_tokens

    with project.metadata.read() as conn:
        rows = conn.execute(select(api_tokens).order_by(api_tokens.c.name)).all()
    return [_info(r) for r in rows]


def get_token(project: Project, name: str) -> TokenInfo:
    from sqlalchemy import select

    from seaway.store.schema import api_tokens

    with project.metadata.read() as conn:
        row = conn.execute(select(api_tokens).where(api_tokens.c.name == name)).first()
    if row is None:
        raise _no_token(project, name)
    return _info(row)


def _no_token(project: Project, name: str) -> NotFound:
    from seaway.spec.crossref import did_you_mean

    names = [t.name for t in list_tokens(project)]
    return NotFound(
        f"no token named {name!r}{did_you_mean(name, names)}",
        hint="list tokens with `seaway tokens list`",
    )


def revoke_token(project: Project, name: str, *, identity: Identity | None = None) -> TokenInfo:
    """Revoke a token at once; `identity` must be allowed `admin`. Revoking a revoked
    token is a UsageError, so a typo in a rotation script does not go unnoticed."""
    from seaway.policy.identity import authorize

    revoker = authorize(project, "admin", identity=identity)

    def write(conn: Connection) -> TokenInfo | None:
        from sqlalchemy import select

        from seaway.store.events import record_event
        from seaway.store.schema import api_tokens

        row = conn.execute(select(api_tokens).where(api_tokens.c.name == name)).first()
        if row is None:
            return None
        info = _info(row)
        if info.revoked_at is not None:
            raise UsageError(
                f"token {name!r} was already revoked at {isoformat(info.revoked_at)}",
                hint="see `seaway tokens list`",
            )
        now = utcnow()
        rest = [
            t
            for t in (_info(r) for r in conn.execute(select(api_tokens)))
            if t.active and t.name != name
        ]
        last_admin = _grants_admin(project, info.roles) and not any(
            _grants_admin(project, t.roles) for t in rest
        )
        if rest and last_admin:
            raise UsageError(
                f"token {name!r} is the last one that may manage tokens, and "
                f"{len(rest)} other token(s) are active",
                hint="create another admin token first (seaway tokens create NAME "
                "--role ROLE), or revoke the others before this one",
            )
        conn.execute(api_tokens.update().where(api_tokens.c.name == name).values(revoked_at=now))
        record_event(
            conn,
            "token.revoked",
            f"token:{name}",
            {"roles": info.roles, "was": info.status(now)},
            actor=revoker.name,
        )
        return _info(conn.execute(select(api_tokens).where(api_tokens.c.name == name)).one())

    result = project.metadata.run_write(write)
    if result is None:
        raise _no_token(project, name)
    return result


def has_active_tokens(project: Project) -> bool:
    """Whether any token works now: from then on, local users act without roles."""
    from sqlalchemy import select

    from seaway.store.schema import api_tokens

    with project.metadata.read() as conn:
        rows = conn.execute(
            select(api_tokens.c.expires_at).where(api_tokens.c.revoked_at.is_(None))
        ).all()
    now = utcnow()
    return any(r.expires_at is None or as_utc(r.expires_at) > now for r in rows)


def authenticate(project: Project, secret: str) -> Identity:
    """The identity a token secret stands for; InvalidToken (exit 1, HTTP 401) when it is
    malformed, unknown, revoked or expired."""
    from sqlalchemy import select

    from seaway.store.schema import api_tokens

    secret = secret.strip()
    if not _SECRET_RE.match(secret):
        raise InvalidToken(
            "the token is not a seaway API token (they start with sw_ and have 46 characters)",
            hint="copy the secret printed by `seaway tokens create` whole",
        )
    digest = hash_secret(secret)
    with project.metadata.read() as conn:
        row = conn.execute(select(api_tokens).where(api_tokens.c.token_hash == digest)).first()
    # The lookup matched on the hash already; comparing again in constant time keeps the
    # check independent of how the database compares strings.
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        raise InvalidToken(
            "the token is not known to this project",
            hint="it may belong to another project's store, or have been replaced; "
            "ask an admin for a new one (seaway tokens create NAME --role ROLE)",
        )
    info = _info(row)
    now = utcnow()
    status = info.status(now)
    if status == "revoked":
        raise InvalidToken(
            f"token {info.name!r} was revoked at {isoformat(info.revoked_at)}",
            hint="ask an admin for a new token (seaway tokens create NAME --role ROLE)",
        )
    if status == "expired":
        raise InvalidToken(
            f"token {info.name!r} expired at {isoformat(info.expires_at)}",
            hint="ask an admin for a new token (seaway tokens revoke NAME, then "
            "seaway tokens create NAME --role ROLE --expires 30d)",
        )
    if info.last_used_at is None or now - info.last_used_at >= _LAST_USED_EVERY:
        _touch(project, info.name, now)
    return Identity(name=info.name, roles=tuple(info.roles), via="token")


def _touch(project: Project, name: str, now: datetime) -> None:
    from seaway.store.schema import api_tokens

    def write(conn: Connection) -> None:
        conn.execute(api_tokens.update().where(api_tokens.c.name == name).values(last_used_at=now))

    project.metadata.run_write(write)


def parse_lifetime(text: str) -> timedelta:
    """`30d`, `12h`, `1h30m` as a timedelta; a UsageError otherwise."""
    from seaway.spec.types import Duration

    try:
        seconds = Duration(text.strip()).seconds
    except ValueError:
        raise UsageError(
            f"--expires {text!r} is not a duration",
            hint="write a number with a unit: 30d, 12h, 90m",
        ) from None
    if seconds <= 0:
        raise UsageError(f"--expires {text!r} must be positive", hint="e.g. --expires 30d")
    return timedelta(seconds=seconds)
