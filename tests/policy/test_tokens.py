"""API tokens and identities, on SQLite and PostgreSQL: creation, authentication, refusal,
revocation, expiry, and the switch from single-user to team mode."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta
from pathlib import Path

import pytest

from seaway.errors import NotFound, UsageError
from seaway.policy import (
    Identity,
    InvalidToken,
    PermissionDenied,
    authenticate,
    authorize,
    create_token,
    current_identity,
    has_active_tokens,
    list_tokens,
    revoke_token,
)
from seaway.project import Project
from tests.policy.identity_support import act_as, events, table_text, team_project


@pytest.fixture
def root(team: Project) -> Identity:
    """The first token, an admin one, created by the local user: the project's team mode."""
    _, secret = create_token(team, "root", ["admin"])
    return authenticate(team, secret)


def test_a_token_is_shown_once_and_only_its_hash_is_stored(team: Project) -> None:
    info, secret = create_token(team, "root", ["admin"])
    assert secret.startswith("sw_") and len(secret) == 46
    assert (info.name, info.roles, info.created_by) == ("root", ["admin"], "alice")
    assert info.status() == "active" and info.expires_at is None
    root = authenticate(team, secret)
    _, other = create_token(team, "bob", ["release-manager"], identity=root)
    assert other != secret

    stored = table_text(team, "api_tokens")
    for s in (secret, other):
        assert s not in stored and s[3:] not in stored
        assert hashlib.sha256(s.encode()).hexdigest() in stored
    # The audit log says who created which token with which roles, never the secret.
    logged = table_text(team, "events")
    for s in (secret, other):
        assert s not in logged and hashlib.sha256(s.encode()).hexdigest() not in logged
    first, second = events(team, "token.created")
    assert (first.subject, first.actor, first.data["roles"]) == ("token:root", "alice", ["admin"])
    assert (second.subject, second.actor) == ("token:bob", "root")
    assert [t.name for t in list_tokens(team)] == ["bob", "root"]


def test_the_first_token_must_grant_admin(team: Project) -> None:
    # Otherwise the project would be in team mode with nobody able to manage tokens.
    with pytest.raises(UsageError, match="first token must carry a role that grants admin") as e:
        create_token(team, "bob", ["release-manager"])
    assert "seaway tokens create alice --role admin" in (e.value.hint or "")
    assert list_tokens(team) == [] and not has_active_tokens(team)


def test_the_last_admin_token_cannot_be_revoked_while_others_work(
    team: Project, root: Identity
) -> None:
    create_token(team, "bob", ["release-manager"], identity=root)
    with pytest.raises(UsageError, match="last one that may manage tokens"):
        revoke_token(team, "root", identity=root)
    revoke_token(team, "bob", identity=root)
    # Alone, it may go: the project is back in single-user mode.
    revoke_token(team, "root", identity=root)
    assert not has_active_tokens(team) and current_identity(team).owner


def test_authenticate_gives_the_tokens_identity_and_notes_its_use(
    team: Project, root: Identity
) -> None:
    _, secret = create_token(team, "bob", ["release-manager", "ml-engineer"], identity=root)
    identity = authenticate(team, secret)
    assert identity.name == "bob" and identity.via == "token"
    assert identity.roles == ("release-manager", "ml-engineer")
    bob = next(t for t in list_tokens(team) if t.name == "bob")
    assert bob.last_used_at is not None


@pytest.mark.parametrize(
    ("secret", "words"),
    [
        ("hunter2", "not a seaway API token"),
        ("sw_" + "A" * 43, "not known to this project"),
    ],
)
def test_unknown_or_malformed_tokens_are_refused(
    team: Project, root: Identity, secret: str, words: str
) -> None:
    with pytest.raises(InvalidToken) as info:
        authenticate(team, secret)
    assert words in info.value.message
    assert info.value.exit_code == 1 and info.value.http_status == 401
    assert secret not in str(info.value)


def test_a_revoked_token_stops_working_and_its_name_can_be_reused(
    team: Project, root: Identity
) -> None:
    act_as_admin = root
    _, old = create_token(team, "bob", ["release-manager"], identity=act_as_admin)

    revoked = revoke_token(team, "bob", identity=act_as_admin)
    assert revoked.status() == "revoked"
    with pytest.raises(InvalidToken, match="'bob' was revoked at"):
        authenticate(team, old)
    with pytest.raises(UsageError, match="already revoked"):
        revoke_token(team, "bob", identity=act_as_admin)
    [event] = events(team, "token.revoked")
    assert (event.subject, event.actor) == ("token:bob", "root")

    # Rotation: the same name, a new secret; the old one stays refused.
    _, new = create_token(team, "bob", ["release-manager"], identity=act_as_admin)
    assert authenticate(team, new).name == "bob"
    with pytest.raises(InvalidToken):
        authenticate(team, old)
    assert len(events(team, "token.created")) == 3


def test_an_expired_token_is_refused(team: Project) -> None:
    info, secret = create_token(team, "bob", ["admin"], expires=timedelta(seconds=0.2))
    assert info.expires_at is not None
    assert authenticate(team, secret).name == "bob"
    time.sleep(0.3)
    with pytest.raises(InvalidToken, match="'bob' expired at") as err:
        authenticate(team, secret)
    assert "seaway tokens create" in (err.value.hint or "")
    assert list_tokens(team)[0].status() == "expired"
    # An expired token no longer makes the project a team project.
    assert not has_active_tokens(team) and current_identity(team).owner


def test_an_active_name_cannot_be_taken_twice(team: Project, root: Identity) -> None:
    with pytest.raises(UsageError, match="already exists") as err:
        create_token(team, "root", ["admin"], identity=root)
    assert "seaway tokens revoke root" in (err.value.hint or "")


@pytest.mark.parametrize(
    ("roles", "words"),
    [
        (["release-manger"], "did you mean 'release-manager'"),
        (["nobody"], "not declared in seaway.yaml"),
        ([], "at least one role"),
    ],
)
def test_roles_must_be_declared(team: Project, roles: list[str], words: str) -> None:
    with pytest.raises(UsageError, match=words) as err:
        create_token(team, "bob", roles)
    assert "ml-engineer, release-manager, staging-approver, admin" in (err.value.hint or "")
    assert list_tokens(team) == []


def test_bad_names_and_lifetimes_are_usage_errors(team: Project) -> None:
    with pytest.raises(UsageError, match="not a valid token name"):
        create_token(team, "bob smith", ["admin"])
    with pytest.raises(UsageError, match="positive"):
        create_token(team, "bob", ["admin"], expires=timedelta(0))


def test_revoking_an_unknown_token_says_which_exist(team: Project, root: Identity) -> None:
    with pytest.raises(NotFound, match="did you mean 'root'"):
        revoke_token(team, "roots", identity=root)


# --- Identities and permissions ---------------------------------------------------------------


def test_single_user_mode_the_local_user_may_do_everything(team: Project) -> None:
    me = current_identity(team)
    assert (me.name, me.via, me.owner) == ("alice", "local", True)
    assert set(me.roles) == {"ml-engineer", "release-manager", "staging-approver", "admin"}
    assert authorize(team, "promote:prod") == me
    # Even an action no role grants: the only user must be able to set the project up.
    assert authorize(team, "promote:qa") == me


def test_seaway_roles_narrows_the_local_user(
    team: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEAWAY_ROLES", "ml-engineer")
    me = current_identity(team)
    assert me.roles == ("ml-engineer",) and not me.owner
    assert authorize(team, "register").name == "alice"
    with pytest.raises(PermissionDenied) as err:
        authorize(team, "approve")
    assert "alice (local user, roles: ml-engineer) may not approve" in err.value.message
    assert "release-manager" in (err.value.hint or "")

    monkeypatch.setenv("SEAWAY_ROLES", "ml-engineer,wizard")
    with pytest.raises(UsageError, match="wizard"):
        current_identity(team)

    # Narrowed, the local user is no longer the owner: admin needs a role that grants it.
    monkeypatch.setenv("SEAWAY_ROLES", "release-manager")
    with pytest.raises(PermissionDenied, match="may not admin"):
        create_token(team, "root", ["admin"])


def test_once_a_token_exists_local_users_need_one(
    team: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, secret = create_token(team, "root", ["admin"])
    assert has_active_tokens(team)
    me = current_identity(team)
    assert me.roles == () and not me.owner
    # SEAWAY_ROLES only narrows: it cannot give a local user roles back.
    monkeypatch.setenv("SEAWAY_ROLES", "admin")
    with pytest.raises(PermissionDenied) as err:
        create_token(team, "bob", ["release-manager"])
    assert err.value.exit_code == 1
    assert "SEAWAY_TOKEN" in (err.value.hint or "")

    act_as(monkeypatch, secret)
    info, _ = create_token(team, "bob", ["release-manager"])
    assert info.created_by == "root"
    [_, second] = events(team, "token.created")
    assert second.actor == "root"


def test_a_token_without_the_role_is_denied(
    team: Project, root: Identity, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, secret = create_token(team, "eve", ["ml-engineer"], identity=root)
    act_as(monkeypatch, secret)
    with pytest.raises(PermissionDenied) as err:
        revoke_token(team, "eve")
    assert err.value.exit_code == 1 and err.value.http_status == 403
    assert err.value.message == "eve (token, roles: ml-engineer) may not admin"
    assert "roles that grant it: admin" in (err.value.hint or "")
    with pytest.raises(PermissionDenied, match="may not promote:prod"):
        authorize(team, "promote:prod")
    assert authorize(team, "promote:staging").name == "eve"
    assert all(t.status() == "active" for t in list_tokens(team))


def test_a_bad_seaway_token_is_an_error_never_the_local_user(
    team: Project, root: Identity, monkeypatch: pytest.MonkeyPatch
) -> None:
    act_as(monkeypatch, "sw_" + "x" * 43)
    with pytest.raises(InvalidToken):
        current_identity(team)
    with pytest.raises(InvalidToken):
        authorize(team, "register")


def test_without_declared_roles_there_is_no_access_control(
    project_dir: Path, store_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = team_project(project_dir, monkeypatch, spec="name: demo\n")
    try:
        assert authorize(p, "promote:prod").name == "alice"
        with pytest.raises(UsageError, match="declare roles"):
            create_token(p, "bob", ["release-manager"])
    finally:
        p.close()
