"""The gateway's Guard with real tokens on SQLite and PostgreSQL: 401, 403, 413, 429 with
Retry-After, token caching, and per-token rate limits."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from seaway.policy import Identity, create_token, revoke_token
from seaway.project import Project
from seaway.serving.security import Guard, HttpError
from tests.policy.identity_support import team_project

SPEC = """\
name: demo
roles:
  admin: [admin]
  client: [infer]
  analyst: [register]
"""


@pytest.fixture
def team(project_dir: Path, store_env: str, monkeypatch: pytest.MonkeyPatch) -> Project:
    p = team_project(project_dir, monkeypatch, SPEC)
    yield p  # type: ignore[misc]
    p.close()


@pytest.fixture
def secrets(team: Project) -> dict[str, str]:
    _, root = create_token(team, "root", ["admin"])
    as_root = Identity("root", ("admin",), "token")
    _, client = create_token(team, "app", ["client"], identity=as_root)
    _, analyst = create_token(team, "ana", ["analyst"], identity=as_root)
    return {"root": root, "app": client, "ana": analyst}


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


def refused(
    guard: Guard, headers: dict[str, str], action: str = "infer", body_size: int | None = 100
) -> HttpError:
    with pytest.raises(HttpError) as err:
        guard.check(headers, "10.0.0.1", action, body_size)
    return err.value


def test_without_tokens_requests_are_anonymous(team: Project) -> None:
    guard = Guard(team)
    assert guard.check({}, "10.0.0.1", "infer", 10) is None
    assert guard.check({}, "10.0.0.1", "admin", None) is None
    assert refused(guard, {}, body_size=11 * 1024 * 1024).status == 413
    # require_token=True asks for one even before any exists.
    err = refused(Guard(team, require_token=True), {})
    assert err.status == 401 and "WWW-Authenticate" in err.headers


def test_every_status_with_real_tokens(team: Project, secrets: dict[str, str]) -> None:
    guard = Guard(team)
    assert guard.tokens_enabled
    assert guard.check(bearer(secrets["app"]), "10.0.0.1", "infer", 10) == "app"
    assert guard.check({"x-seaway-token": secrets["app"]}, "10.0.0.1", "infer", 10) == "app"
    assert guard.check(bearer(secrets["root"]), "10.0.0.1", "admin", 10) == "root"
    # Health and metadata need no token; a token sent anyway names the caller.
    assert guard.check({}, "10.0.0.1", "read", None) is None
    assert guard.check(bearer(secrets["ana"]), "10.0.0.1", "read", None) == "ana"

    missing = refused(guard, {})
    assert missing.status == 401 and "needs an API token" in missing.message
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert refused(guard, bearer("not-a-token")).status == 401
    assert refused(guard, {"authorization": "Basic dXNlcjpwdw=="}).status == 401
    unknown = refused(guard, bearer("sw_" + "A" * 43))
    assert unknown.status == 401 and "not known" in unknown.message
    lacking = refused(guard, bearer(secrets["ana"]))
    assert lacking.status == 403
    assert "'ana'" in lacking.message and "client" in lacking.message
    assert refused(guard, bearer(secrets["app"]), "admin").status == 403
    big = refused(guard, bearer(secrets["app"]), body_size=20 * 1024 * 1024)
    assert big.status == 413 and str(10 * 1024 * 1024) in big.message
    for err in (missing, unknown, lacking, big):
        assert not any(s in err.message for s in secrets.values())
        assert "Traceback" not in err.message


def test_revocation_is_seen_after_the_cache_expires(team: Project, secrets: dict[str, str]) -> None:
    guard = Guard(team, refresh_s=0.3)
    assert guard.check(bearer(secrets["app"]), "c", "infer", 1) == "app"
    revoke_token(team, "app", identity=Identity("root", ("admin",), "token"))
    # Cached: the store is not asked again for a while.
    assert guard.check(bearer(secrets["app"]), "c", "infer", 1) == "app"
    time.sleep(0.4)
    err = refused(guard, bearer(secrets["app"]))
    assert err.status == 401 and "revoked" in err.message


def test_rate_limit_refills_and_says_when_to_retry(team: Project, secrets: dict[str, str]) -> None:
    guard = Guard(team, rate_limit=20, burst=2)
    app, root = bearer(secrets["app"]), bearer(secrets["root"])
    assert guard.check(app, "c", "infer", 1) == "app"
    assert guard.check(app, "c", "infer", 1) == "app"
    err = refused(guard, app)
    assert err.status == 429 and err.headers["Retry-After"] == "1"
    assert "token 'app'" in err.message
    # Buckets are per token: another token is not held back.
    assert guard.check(root, "c", "admin", 1) == "root"
    time.sleep(0.12)  # 20/s refills two requests' worth, up to the burst
    assert guard.check(app, "c", "infer", 1) == "app"
    assert guard.check(app, "c", "infer", 1) == "app"
    assert refused(guard, app).status == 429

    slow = Guard(team, rate_limit=0.5, burst=1)
    assert slow.check(app, "c", "infer", 1) == "app"
    assert refused(slow, app).headers["Retry-After"] == "2"


def test_without_tokens_the_limit_is_per_client_address(team: Project) -> None:
    guard = Guard(team, rate_limit=1, burst=1)
    assert guard.check({}, "10.0.0.1", "infer", 1) is None
    assert guard.check({}, "10.0.0.2", "infer", 1) is None
    with pytest.raises(HttpError) as err:
        guard.check({}, "10.0.0.1", "infer", 1)
    assert err.value.status == 429 and "10.0.0.1" in err.value.message


def test_guessing_tokens_is_rate_limited_too(team: Project, secrets: dict[str, str]) -> None:
    guard = Guard(team, rate_limit=1, burst=2)
    assert refused(guard, bearer("sw_" + "B" * 43)).status == 401
    assert refused(guard, bearer("sw_" + "C" * 43)).status == 401
    assert refused(guard, bearer("sw_" + "D" * 43)).status == 429


def test_the_gateway_looks_a_new_token_up_off_its_event_loop(
    team: Project, secrets: dict[str, str]
) -> None:
    """The first request with a token reads the store in a worker thread; later ones, from
    the cache, stay on the loop (a slow lookup must never stall everyone's requests)."""
    import asyncio
    import threading
    from typing import Any

    import httpx

    from seaway.serving.app import create_app

    guard = Guard(team, require_token=True)
    assert guard.needs_store(bearer(secrets["app"]))
    on_loop: list[bool] = []
    original = guard.check

    def check(*args: Any) -> str | None:
        on_loop.append(threading.current_thread() is threading.main_thread())
        return original(*args)

    guard.check = check  # type: ignore[method-assign]
    app = create_app(team, guard=guard)

    async def requests() -> list[int]:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            return [
                (await client.get("/v2/models", headers=bearer(secrets["app"]))).status_code
                for _ in range(2)
            ]

    assert asyncio.run(requests()) == [200, 200]
    assert on_loop == [False, True]
    assert not guard.needs_store(bearer(secrets["app"]))
    assert guard.needs_store(bearer("sw_never_seen"))
