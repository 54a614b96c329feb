"""The gateway's front door: API tokens, roles, rate limits and the body size limit.

`Guard.check(headers, client, action, body_size)` runs before a request is handled and
returns the caller's identity name (None when anonymous) or raises `HttpError` with the
status to answer, a message that says what to do, and headers (`WWW-Authenticate`,
`Retry-After`). Messages never contain a secret, a token hash or a stack trace.

Actions, checked with the project's `roles:` (`seaway.policy.identity.is_permitted`, so a
project that declares no roles lets every valid token do everything):

- `infer`: the inference endpoints (v2 infer, v1 predict). Grant it with a role such as
  `serving-client: [infer]`.
- `admin`: endpoints that change the gateway (reload, unload); the same `admin` action that
  manages tokens.
- `read`: health, metadata and metrics. They need no token; a token sent anyway must be
  valid (someone who sends one means to act as it), and then names the caller.

Tokens are on when `require_token` is True, or, when it is None, while the project has an
active API token (`seaway.policy.tokens.has_active_tokens`, asked at construction and again
at most every `refresh_s`, never per request). A token comes as `Authorization: Bearer
sw_...` or `X-Seaway-Token: sw_...`. Authentication results, good and bad, are kept for
`refresh_s` by the token's SHA-256, so the store is asked once per token per 30 s and a
revoked token stops working within that time. A store that cannot be reached answers 503
and caches nothing.

Rate limits are token buckets: `rate_limit` requests per second on average, bursts of up to
`burst` (default: one second's worth), per token name, or per client address without a
token. An empty bucket answers 429 with `Retry-After`, the whole seconds until a request
would pass. Requests refused with 401 draw from the client address's bucket too, so
guessing tokens is rate-limited as well.

Order: body size (413), then the token (401, 403), then the rate limit (429).
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from seaway.policy.identity import Identity
    from seaway.project import Project

log = logging.getLogger("seaway.serving.security")

ACTIONS = ("infer", "admin", "read")
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
REFRESH_S = 30.0
_MAX_CACHED = 10_000
_MAX_BUCKETS = 100_000


class HttpError(Exception):
    """A request refused before it is handled: its status, message and response headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}

    def __str__(self) -> str:
        return f"{self.status}: {self.message}"


@dataclass
class _Auth:
    expires: float
    identity: Identity | None
    refusal: str | None
    allowed: dict[str, bool]


class Guard:
    """Authentication, authorization, rate limits and the body size limit of a gateway."""

    def __init__(
        self,
        project: Project,
        *,
        require_token: bool | None = None,
        rate_limit: float | None = None,
        burst: int | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_limit is not None and rate_limit <= 0:
            raise ValueError(f"rate_limit must be positive requests/s, not {rate_limit}")
        if burst is not None and burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst}")
        self.project = project
        self.require_token = require_token
        self.rate_limit = rate_limit
        self.burst = burst if burst is not None else max(1, math.ceil(rate_limit or 1))
        self.max_body_bytes = max_body_bytes
        self.refresh_s = refresh_s
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, _Auth] = {}
        self._buckets: dict[str, list[float]] = {}
        self._tokens_on = bool(require_token)
        self._next_refresh = math.inf
        if require_token is None:
            self._tokens_on = self._active_tokens(default=False)
            self._next_refresh = clock() + refresh_s

    # -- tokens --------------------------------------------------------------------

    @property
    def tokens_enabled(self) -> bool:
        if self.require_token is None and self._clock() >= self._next_refresh:
            self._next_refresh = self._clock() + self.refresh_s
            self._tokens_on = self._active_tokens(default=self._tokens_on)
        return self._tokens_on

    def _active_tokens(self, *, default: bool) -> bool:
        from seaway.policy.tokens import has_active_tokens

        try:
            return has_active_tokens(self.project)
        except Exception as exc:
            log.warning(
                "gateway: cannot tell whether tokens are enabled (kept %s): %s", default, exc
            )
            return default

    def needs_store(self, headers: Mapping[str, str]) -> bool:
        """Whether `check` would read the metadata store for these headers (a token not
        in the cache, or the periodic check of whether tokens are enabled), so the gateway
        runs it off its event loop; a cached token is checked in microseconds."""
        now = self._clock()
        if self.require_token is None and now >= self._next_refresh:
            return True
        secret = _presented(headers)
        if not secret:
            return False
        cached = self._cache.get(hashlib.sha256(secret.encode()).hexdigest())
        return cached is None or cached.expires <= now

    def _authenticate(self, secret: str) -> _Auth:
        digest = hashlib.sha256(secret.encode()).hexdigest()
        now = self._clock()
        cached = self._cache.get(digest)
        if cached is not None and cached.expires > now:
            return cached
        from seaway.policy.tokens import InvalidToken, authenticate

        try:
            identity: Identity | None = authenticate(self.project, secret)
            refusal = None
        except InvalidToken as exc:
            identity, refusal = None, exc.message
        except Exception as exc:
            # The store is out of reach: refuse this request, remember nothing.
            log.warning("gateway: cannot check a token against the store: %s", exc)
            raise HttpError(
                503,
                "the gateway cannot check API tokens right now (the metadata store is out "
                "of reach); retry shortly",
                {"Retry-After": "5"},
            ) from None
        entry = _Auth(now + self.refresh_s, identity, refusal, {})
        with self._lock:
            if len(self._cache) >= _MAX_CACHED:
                self._cache = {k: v for k, v in self._cache.items() if v.expires > now}
                if len(self._cache) >= _MAX_CACHED:
                    self._cache.clear()
            self._cache[digest] = entry
        return entry

    def _allowed(self, auth: _Auth, action: str) -> bool:
        allowed = auth.allowed.get(action)
        if allowed is None:
            from seaway.policy.identity import is_permitted

            assert auth.identity is not None
            allowed = auth.allowed[action] = is_permitted(self.project, auth.identity, action)
        return allowed

    def _forbidden(self, identity: Identity, action: str) -> HttpError:
        from seaway.policy.roles import roles_granting

        granting = roles_granting(self.project.spec.roles, action)
        held = ", ".join(identity.roles) or "none"
        how = (
            f"use a token with one of the roles {', '.join(granting)}"
            if granting
            else f"no role in seaway.yaml grants `{action}`: add it to a role under `roles:`"
        )
        return HttpError(403, f"token {identity.name!r} (roles: {held}) may not {action}; {how}")

    # -- rate limits -----------------------------------------------------------------

    def _take(self, key: str, who: str) -> None:
        rate = self.rate_limit
        if rate is None:
            return
        now = self._clock()
        burst = float(self.burst)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= _MAX_BUCKETS:
                    self._sweep(now, rate, burst)
                bucket = self._buckets[key] = [burst, now]
            tokens = min(burst, bucket[0] + (now - bucket[1]) * rate)
            bucket[1] = now
            if tokens >= 1.0:
                bucket[0] = tokens - 1.0
                return
            bucket[0] = tokens
        wait = max(1, math.ceil((1.0 - tokens) / rate))
        raise HttpError(
            429,
            f"rate limit exceeded for {who}: {rate:g} requests/s, bursts of {self.burst}; "
            f"retry in {wait} s",
            {"Retry-After": str(wait)},
        )

    def _sweep(self, now: float, rate: float, burst: float) -> None:
        # A bucket that has refilled is the same as no bucket: forget it.
        full = [k for k, (t, at) in self._buckets.items() if t + (now - at) * rate >= burst]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= _MAX_BUCKETS:
            self._buckets.clear()

    # -- the check -------------------------------------------------------------------

    def check(
        self,
        headers: Mapping[str, str],
        client: str,
        action: str,
        body_size: int | None,
    ) -> str | None:
        """The caller's identity name (None when anonymous), or HttpError 401, 403, 413,
        429 or 503. `headers` have lower-case names; `client` is the peer address."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
        if body_size is not None and body_size > self.max_body_bytes:
            raise HttpError(
                413,
                f"the request body is {body_size} bytes, over this gateway's limit of "
                f"{self.max_body_bytes} bytes; send fewer rows per request",
            )
        secret = _presented(headers)
        enabled = self.tokens_enabled
        if secret is None or not (enabled or secret):
            if enabled and action != "read":
                self._take(f"client:{client}", f"client {client}")
                raise HttpError(
                    401,
                    f"{action} needs an API token: send `Authorization: Bearer sw_...` or "
                    "`X-Seaway-Token: sw_...` (an admin creates one: seaway tokens create "
                    "NAME --role ROLE)",
                    {"WWW-Authenticate": 'Bearer realm="seaway"'},
                )
            self._take(f"client:{client}", f"client {client}")
            return None
        auth = self._authenticate(secret)
        if auth.identity is None:
            self._take(f"client:{client}", f"client {client}")
            raise HttpError(
                401,
                f"{auth.refusal or 'the token is not valid'}; ask an admin for a new token",
                {"WWW-Authenticate": 'Bearer realm="seaway", error="invalid_token"'},
            )
        if enabled and action != "read" and not self._allowed(auth, action):
            raise self._forbidden(auth.identity, action)
        self._take(f"token:{auth.identity.name}", f"token {auth.identity.name!r}")
        return auth.identity.name


def _presented(headers: Mapping[str, str]) -> str | None:
    """The token secret a request carries, if any ("" for an empty or non-Bearer value)."""
    value = headers.get("authorization")
    if value is not None:
        scheme, _, rest = value.strip().partition(" ")
        return rest.strip() if scheme.lower() == "bearer" else ""
    token = headers.get("x-seaway-token")
    return token.strip() if token is not None else None
