"""The gateway as a raw ASGI application.

    from seaway.serving.app import create_app
    app = create_app(project)                 # any ASGI server; `seaway serve` uses uvicorn

No web framework sits between the server and the handlers: a request is a path split and a
dictionary lookup, a body read, an orjson parse, a routing decision over a precomputed
`Router`, a predict in a bounded thread pool, and an orjson write. Nothing on that path
touches the database or imports a module for the first time: the routing table is polled
by a background task (one integer read per `poll_interval_s`, the whole table only when its
revision moved, the queries in a thread), and telemetry counts in memory and flushes from
its own thread.

Endpoints: Open Inference Protocol v2 (`/v2/health/live|ready`, `/v2/models`,
`/v2/models/{name}[/versions/{v}]`, `.../ready`, `.../infer`), KServe v1
(`/v1/models/{name}` and `/v1/models/{name}:predict`), `POST /v1/feedback` (true labels for
logged requests, see `seaway.monitor.feedback`) and `/metrics`. Every response to a
model request names the version that answered (`x-seaway-version: NAME@N`) and carries an
`x-request-id` (the client's, or a new one). Errors are `{"error": ..., "hint"?: ...}` with
the status of the seaway error behind them (400 bad input, 404 unknown model or version,
413/429/401/403 from the guard, 503 a version that cannot load, 500 a model that raised),
never a traceback, and each is counted by telemetry.

Shadow copies run after the primary response has been sent, on a pool of their own and
with a cap on how many may be in flight, so they never delay or change the answer.

Abuse detection (`seaway.serving.abuse`) counts every inference request by client and model
and samples its rows; a client it flagged with `on_flag: throttle` is answered 429 before its
body is read.

The lifespan protocol starts the poller and telemetry; servers that do not speak it (an
in-process test client) get the same start on the first request.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from seaway.errors import InputError, NotFound, SeawayError
from seaway.serving.routes import DEFAULT_IDLE_TIMEOUT_S

if TYPE_CHECKING:
    import numpy

    from seaway.project import Project
    from seaway.serving.batching import Batcher
    from seaway.serving.manager import Loaded, ModelManager
    from seaway.serving.protocol import ModelInput
    from seaway.serving.router import ModelRoutes, Router
    from seaway.serving.routes import Deployment, RoutingTable

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("seaway.serving")

# A version whose predict takes less than this runs on the event loop: handing it to a
# thread and back costs more than that (measured: one-row LogisticRegression ~0.25 ms in
# predict, ~0.3 ms more through the pool). Slower ones go to the predict threads, so a
# heavy model cannot stall every other request.
INLINE_PREDICT_S = 0.002
# Threads that have had their native thread pools limited (the loop's own, once inline).
_LIMITED = threading.local()

KEY_HEADER = "x-seaway-key"
VERSION_HEADER = b"x-seaway-version"
REQUEST_ID_HEADER = "x-request-id"
MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_SHADOWS_IN_FLIGHT = 64
_JSON = (b"content-type", b"application/json")


class _HttpError(Exception):
    """A response other than 200, raised inside a handler."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        hint: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.hint = hint
        self.headers = headers or {}


class _ClientGone(Exception):
    pass


class _NullTelemetry:
    """Stands in while `seaway.serving.telemetry` is not installed: counts nothing."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def request(self, *args: Any, **kwargs: Any) -> None: ...
    def load(self, *args: Any, **kwargs: Any) -> None: ...
    def unload(self, *args: Any, **kwargs: Any) -> None: ...
    def batch(self, *args: Any, **kwargs: Any) -> None: ...
    def shadow_compare(self, *args: Any, **kwargs: Any) -> None: ...
    def feedback(self, *args: Any, **kwargs: Any) -> None: ...

    def metrics_text(self) -> tuple[bytes, str]:
        return b"", "text/plain; version=0.0.4; charset=utf-8"


class _OpenGuard:
    """Stands in while `seaway.serving.security` is not installed: checks the body size only."""

    max_body_bytes = MAX_BODY_BYTES

    def check(
        self, headers: dict[str, str], client: str, action: str, body_size: int | None
    ) -> str | None:
        if body_size is not None and body_size > self.max_body_bytes:
            raise _HttpError(413, f"the request body is larger than {self.max_body_bytes} bytes")
        return None


def gateway_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"[:64]


def _default_telemetry(project: Project) -> Any:
    try:
        module = importlib.import_module("seaway.serving.telemetry")
    except ImportError:
        return _NullTelemetry()
    # Rollout analysis reads the flushed windows: a shorter interval gives it fresher figures.
    flush = os.environ.get(ENV_PREFIX + "FLUSH_INTERVAL")
    # The monitor scores drift and joins feedback labels on the sampled request log: a
    # higher rate gives it more rows per window, at the cost of more rows in the store.
    rate = float(os.environ.get(ENV_PREFIX + "SAMPLE_RATE") or 0.01)
    cap = os.environ.get(ENV_PREFIX + "SAMPLE_CAP")
    return module.Telemetry(
        project,
        gateway_id=gateway_id(),
        flush_interval_s=float(flush) if flush else 5.0,
        sample_rate=rate,
        # Per flush window, so a burst cannot flood the store; by default it grows with the
        # rate (at rate 1, about 4,000 logged requests a second with 5 s windows).
        sample_cap=int(cap) if cap else max(1000, int(20_000 * rate)),
    )


def _default_guard(project: Project) -> Any:
    try:
        module = importlib.import_module("seaway.serving.security")
    except ImportError:
        return _OpenGuard()
    return module.Guard(project)


def _default_abuse(project: Project, telemetry: Any) -> Any:
    from seaway.serving.abuse import AbuseDetector

    # How often clients are judged (seconds); a demo or a test wants its flags sooner.
    interval = os.environ.get(ENV_PREFIX + "ABUSE_INTERVAL")
    return AbuseDetector(
        project,
        telemetry=telemetry,
        actor=f"gateway:{gateway_id()}",
        interval_s=float(interval) if interval else 5.0,
    )


def limit_native_threads() -> None:
    """One BLAS/OpenMP thread per predict thread: concurrent requests already use the cores,
    and OpenMP's default (a thread per core, per call) makes HistGradientBoosting collapse
    under load."""
    with contextlib.suppress(Exception):
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)


def _agree(primary: numpy.ndarray, shadow: numpy.ndarray) -> bool:
    import numpy as np

    if primary.shape != shadow.shape:
        return False
    if primary.dtype.kind in "iufb" and shadow.dtype.kind in "iufb":
        return bool(np.allclose(primary, shadow, rtol=0.0, atol=1e-6))
    return bool(np.array_equal(primary.astype(str), shadow.astype(str)))


class Gateway:
    """The ASGI application; see the module docstring."""

    def __init__(
        self,
        project: Project,
        *,
        telemetry: Any = None,
        guard: Any = None,
        abuse: Any = None,
        poll_interval_s: float = 1.0,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
        memory_budget_bytes: int | None = None,
        predict_threads: int | None = None,
        sweep_interval_s: float | None = None,
        pinned: str | None = None,
    ) -> None:
        from seaway.serving.manager import ModelManager
        from seaway.serving.router import Router
        from seaway.serving.routes import RoutingTable

        os.environ.setdefault("OMP_NUM_THREADS", "1")
        self.project = project
        # A pod rendered by the kubernetes target serves one version, whatever the table.
        self.pinned = pinned
        self.telemetry = telemetry if telemetry is not None else _default_telemetry(project)
        self.guard = guard if guard is not None else _default_guard(project)
        self.abuse = abuse if abuse is not None else _default_abuse(project, self.telemetry)
        self.max_body_bytes = int(getattr(self.guard, "max_body_bytes", MAX_BODY_BYTES))
        self._guard_error = self._guard_error_class()
        self.poll_interval_s = poll_interval_s
        self.sweep_interval_s = sweep_interval_s or min(5.0, max(poll_interval_s, 0.05))
        # One core stays with the event loop (parsing, routing, inline predicts); measured on
        # 2 cores, a second predict thread cost HistGradientBoosting 30% of its throughput.
        threads = predict_threads or max(1, min(4, (os.cpu_count() or 2) - 1))
        self.predict_pool = ThreadPoolExecutor(
            threads, thread_name_prefix="seaway-predict", initializer=limit_native_threads
        )
        self.shadow_pool = ThreadPoolExecutor(
            1, thread_name_prefix="seaway-shadow", initializer=limit_native_threads
        )
        self.io_pool = ThreadPoolExecutor(2, thread_name_prefix="seaway-io")
        self.load_pool = ThreadPoolExecutor(
            2, thread_name_prefix="seaway-load", initializer=limit_native_threads
        )
        self.manager: ModelManager = ModelManager(
            project,
            telemetry=self.telemetry,
            load_pool=self.load_pool,
            idle_timeout_s=idle_timeout_s,
            memory_budget_bytes=memory_budget_bytes,
        )
        self.table: RoutingTable = RoutingTable(revision=-1)
        self.router: Router = Router(self.table)
        self.ready = False
        self._batchers: dict[tuple[str, int], tuple[Loaded, Batcher]] = {}
        self._shadows_in_flight = 0
        self._background: set[asyncio.Task[Any]] = set()
        self._poller: asyncio.Task[None] | None = None
        self._started = False
        self._start_lock: asyncio.Lock | None = None

    @staticmethod
    def _guard_error_class() -> type[Exception]:
        try:
            module = importlib.import_module("seaway.serving.security")
        except ImportError:
            return _HttpError
        cls = getattr(module, "HttpError", _HttpError)
        return cls if isinstance(cls, type) else _HttpError

    # -- lifecycle ------------------------------------------------------------------------

    async def startup(self) -> None:
        if self._started:
            return
        self._started = True
        self.telemetry.start()
        self.abuse.start()
        try:
            await self.refresh()
        except Exception as exc:  # the store may come up later; the poller keeps trying
            log.warning("cannot read the routing table yet: %s", exc)
        self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def shutdown(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._poller
            self._poller = None
        for task in list(self._background):
            task.cancel()
        for _, batcher in self._batchers.values():
            batcher.close()
        self._batchers.clear()
        if self._started:
            await asyncio.get_running_loop().run_in_executor(None, self.telemetry.stop)
            await asyncio.get_running_loop().run_in_executor(None, self.abuse.stop)
        self._started = False
        for pool in (self.predict_pool, self.shadow_pool, self.io_pool, self.load_pool):
            pool.shutdown(wait=False, cancel_futures=True)

    def _fetch_table(self) -> RoutingTable:
        from seaway.serving.routes import load_table

        table = self._pinned_table() if self.pinned is not None else load_table(self.project)
        self.manager.prefetch(table)
        return table

    def _pinned_table(self) -> RoutingTable:
        from seaway.registry.versions import get_version
        from seaway.serving.routes import Deployment, RoutingTable, ScaleSpec

        assert self.pinned is not None
        version = get_version(self.project, self.pinned)
        only = Deployment(version.model, version.number, 100.0, 0.0, scale=ScaleSpec(min=1))
        return RoutingTable(revision=0, deployments=(only,))

    async def refresh(self, *, force: bool = True) -> bool:
        """Reload the routing table when its revision moved (always with `force`)."""
        from seaway.serving.routes import read_revision

        if self.pinned is not None and self.ready:
            return False
        loop = asyncio.get_running_loop()
        if not force and self.ready:
            revision = await loop.run_in_executor(self.io_pool, read_revision, self.project)
            if revision == self.table.revision:
                return False
        table = await loop.run_in_executor(self.io_pool, self._fetch_table)
        self._swap(table)
        return True

    def _swap(self, table: RoutingTable) -> None:
        from seaway.serving.router import Router

        self.router = Router(table)
        self.table = table
        self.ready = True
        for d in self.manager.apply(table):
            self._spawn(self._preload(d))
        for key in list(self._batchers):
            entry, batcher = self._batchers[key]
            if self.manager.loaded.get(key) is not entry:
                batcher.close()
                del self._batchers[key]
        log.info(
            "routing table revision %s: %s",
            table.revision,
            ", ".join(f"{d.ref} w={d.weight:g} s={d.shadow:g}" for d in table.deployments)
            or "empty",
        )

    async def _preload(self, dep: Deployment) -> None:
        with contextlib.suppress(SeawayError):
            await self.manager.get(dep, cold_start=False)

    async def _poll(self) -> None:
        last_sweep = time.monotonic()
        while True:
            await asyncio.sleep(self.poll_interval_s)
            try:
                await self.refresh(force=not self.ready)
            except Exception as exc:
                log.warning("cannot read the routing table: %s", exc)
            if time.monotonic() - last_sweep >= self.sweep_interval_s:
                last_sweep = time.monotonic()
                self.manager.sweep(self.table)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- ASGI -------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if not self._started:
                await self._lazy_start()
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lazy_start(self) -> None:
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            await self.startup()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = headers.get(REQUEST_ID_HEADER) or os.urandom(8).hex()
        ctx = _Context(request_id, headers.get(KEY_HEADER))
        try:
            await self._dispatch(scope, receive, send, headers, ctx)
        except _ClientGone:
            ctx.status = 499
        except Exception as exc:
            status, payload, extra = self._error(exc)
            ctx.status = status
            ctx.count = True
            await self._respond(send, status, payload, ctx, extra)
        if ctx.count:
            self.telemetry.request(
                ctx.model or "",
                ctx.number,
                "primary",
                status=ctx.status,
                latency_s=time.perf_counter() - start,
                request_id=ctx.logged_id,
                key=ctx.key,
                inputs=ctx.inputs,
                outputs=ctx.outputs,
            )
        if ctx.mirror is not None:
            self._start_shadows(ctx)

    def _error(self, exc: Exception) -> tuple[int, bytes, dict[str, str]]:
        import orjson

        status: int
        hint: str | None = None
        extra: dict[str, str] = {}
        if isinstance(exc, _HttpError):
            status, message, hint, extra = exc.status, exc.message, exc.hint, exc.headers
        elif isinstance(exc, self._guard_error):
            status = int(getattr(exc, "status", 400))
            message = str(getattr(exc, "message", exc))
            extra = dict(getattr(exc, "headers", {}) or {})
        elif isinstance(exc, SeawayError):
            status, message, hint = exc.http_status, exc.message, exc.hint
        else:
            log.exception("unexpected error in the gateway")
            status, message = 500, f"internal error: {type(exc).__name__}"
        body: dict[str, Any] = {"error": message}
        if hint:
            body["hint"] = hint
        return status, orjson.dumps(body), extra

    async def _respond(
        self,
        send: Send,
        status: int,
        body: bytes,
        ctx: _Context,
        extra: dict[str, str] | None = None,
        content_type: bytes = b"application/json",
    ) -> None:
        raw = [
            (b"content-type", content_type),
            (b"x-request-id", ctx.request_id.encode("latin-1")),
        ]
        if ctx.answered is not None:
            raw.append((VERSION_HEADER, ctx.answered.encode()))
        if extra:
            raw.extend(
                (k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in extra.items()
            )
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})

    async def _read_body(self, receive: Receive) -> bytes:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        body: bytes = message.get("body", b"")
        if not message.get("more_body"):
            if len(body) > self.max_body_bytes:
                raise self._too_large()
            return body
        chunks = [body]
        size = len(body)
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise self._too_large()
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    def _too_large(self) -> _HttpError:
        return _HttpError(
            413,
            f"the request body is larger than the limit of {self.max_body_bytes} bytes",
            hint="send fewer rows per request",
        )

    async def _check(self, headers: dict[str, str], scope: Scope, action: str) -> str | None:
        """Let the guard pass or refuse the request; the caller's identity, if it has one.
        A check that reads the store (a token seen for the first time) runs in a worker
        thread, so one slow lookup never stalls the requests of others."""
        size: int | None = None
        length = headers.get("content-length")
        if length is not None:
            with contextlib.suppress(ValueError):
                size = int(length)
        client = scope.get("client")
        address = client[0] if client else ""
        needs_store = getattr(self.guard, "needs_store", None)
        if needs_store is not None and needs_store(headers):
            loop = asyncio.get_running_loop()
            who: str | None = await loop.run_in_executor(
                None, self.guard.check, headers, address, action, size
            )
            return who
        who = self.guard.check(headers, address, action, size)
        return who

    async def _caller(self, headers: dict[str, str], scope: Scope) -> str:
        """Let the guard check an inference request; who sent it, as abuse detection
        counts clients (the token's name, else the address)."""
        client = scope.get("client")
        who = await self._check(headers, scope, "infer")
        return self.abuse.client(who, client[0] if client else "")

    async def _dispatch(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str], ctx: _Context
    ) -> None:
        import orjson

        method: str = scope["method"]
        path: str = scope["path"]
        if path.startswith("/v2/models/"):
            parts = path[len("/v2/models/") :].split("/")
            name = parts[0]
            ctx.model = name
            rest = parts[1:]
            version: int | None = None
            if len(rest) >= 2 and rest[0] == "versions":
                version = self._version_number(rest[1])
                rest = rest[2:]
            if rest == ["infer"]:
                self._allow(method, "POST")
                ctx.client = await self._caller(headers, scope)
                await self._infer(name, version, receive, send, ctx, v1=False)
                return
            if rest in ([], ["ready"]):
                self._allow(method, "GET")
                await self._check(headers, scope, "read")
                ctx.count = False
                body = self._ready(name, version) if rest else self._metadata(name, version)
                await self._respond(send, 200, orjson.dumps(body), ctx)
                return
        elif path.startswith("/v1/models/"):
            rest_v1 = path[len("/v1/models/") :]
            if rest_v1.endswith(":predict"):
                name = rest_v1[: -len(":predict")]
                ctx.model = name
                self._allow(method, "POST")
                ctx.client = await self._caller(headers, scope)
                await self._infer(name, None, receive, send, ctx, v1=True)
                return
            if "/" not in rest_v1:
                self._allow(method, "GET")
                await self._check(headers, scope, "read")
                ctx.count = False
                body = self._ready(rest_v1, None)
                await self._respond(send, 200, orjson.dumps(body), ctx)
                return
        elif path == "/v1/feedback":
            self._allow(method, "POST")
            ctx.count = False
            who = await self._check(headers, scope, "infer")
            await self._feedback(receive, send, ctx, who)
            return
        elif path in ("/v2/health/live", "/v2/health/ready", "/v2", "/v2/models", "/metrics"):
            self._allow(method, "GET")
            ctx.count = False
            if path == "/v2/health/live":
                await self._respond(send, 200, b'{"live":true}', ctx)
            elif path == "/v2/health/ready":
                status = 200 if self.ready else 503
                await self._respond(send, status, orjson.dumps({"ready": self.ready}), ctx)
            elif path == "/v2":
                from seaway import __version__

                body = {"name": "seaway", "version": __version__, "extensions": []}
                await self._respond(send, 200, orjson.dumps(body), ctx)
            elif path == "/v2/models":
                await self._check(headers, scope, "read")
                models = [self._metadata(m, None) for m in self.table.models()]
                await self._respond(send, 200, orjson.dumps({"models": models}), ctx)
            else:
                await self._check(headers, scope, "read")
                text, content_type = self.telemetry.metrics_text()
                await self._respond(send, 200, text, ctx, content_type=content_type.encode())
            return
        raise _HttpError(
            404,
            f"no endpoint {method} {path}",
            hint="the gateway serves /v2/models/NAME/infer, /v1/models/NAME:predict, "
            "/v1/feedback, /v2/health/ready and /metrics",
        )

    @staticmethod
    def _allow(method: str, allowed: str) -> None:
        if method != allowed:
            raise _HttpError(
                405,
                f"method {method} is not allowed here; use {allowed}",
                headers={"allow": allowed},
            )

    @staticmethod
    def _version_number(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise InputError(
                f"version {text!r} is not a number",
                hint="name the version by its number: /versions/3/",
            ) from None
        return number

    # -- feedback ---------------------------------------------------------------------------

    async def _feedback(self, receive: Receive, send: Send, ctx: _Context, who: str | None) -> None:
        """POST /v1/feedback: parse and store in a worker thread (10,000 items and a write
        transaction must not hold up the loop), then count each item's outcome."""
        import orjson

        body = await self._read_body(receive)
        result = await asyncio.get_running_loop().run_in_executor(
            None, self._record_feedback, body, who
        )
        count = getattr(self.telemetry, "feedback", None)
        if count is not None:
            for model, outcomes in result.models.items():
                for outcome, n in outcomes.items():
                    count(model, outcome, n)
        await self._respond(send, 200, orjson.dumps(result.to_dict()), ctx)

    def _record_feedback(self, body: bytes, who: str | None) -> Any:
        import orjson

        from seaway.monitor.feedback import parse_feedback, record_feedback

        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InputError(
                f"the feedback body is not JSON: {exc}",
                hint='send {"feedback": [{"id": REQUEST_ID, "label": VALUE}, ...]}',
            ) from None
        model, items = parse_feedback(payload)
        # Labels often follow their answer within the flush interval: flushing the
        # telemetry logs those answers, so the labels find them (see record_feedback).
        flush = getattr(self.telemetry, "flush", None)
        return record_feedback(
            self.project, items, model=model, actor=who or "anonymous", pending=flush
        )

    # -- model endpoints ------------------------------------------------------------------------

    def _routes(self, name: str) -> ModelRoutes:
        routes = self.router.get(name)
        if routes is None:
            served = ", ".join(self.table.models())
            raise NotFound(
                f"model {name!r} is not deployed on this gateway",
                hint=f"deployed models: {served}"
                if served
                else "nothing is deployed yet: seaway deploy NAME@V",
            )
        return routes

    def _deployment(self, name: str, version: int | None) -> Deployment:
        routes = self._routes(name)
        if version is not None:
            dep = routes.by_number.get(version)
            if dep is None:
                served = ", ".join(str(n) for n in sorted(routes.by_number))
                raise NotFound(
                    f"version {version} of {name!r} is not deployed",
                    hint=f"deployed versions: {served}",
                )
            return dep
        primary = next(iter(routes.primaries), None)
        if primary is None:
            raise _HttpError(503, f"no version of {name!r} takes traffic (every weight is 0)")
        return primary

    def _metadata(self, name: str, version: int | None) -> dict[str, Any]:
        from seaway.serving.protocol import tensor_metadata

        routes = self._routes(name)
        dep = self._deployment(name, version) if version is not None else None
        numbers = sorted(routes.by_number)
        if dep is None:
            dep = routes.primaries[0] if routes.primaries else routes.by_number[numbers[0]]
        info = self.manager.version(dep.model, dep.number)
        schema = info.io_schema if info is not None else None
        outputs = tensor_metadata((schema or {}).get("outputs"))
        return {
            "name": name,
            "versions": [str(n) for n in numbers] if version is None else [str(version)],
            "platform": info.flavor if info is not None else "unknown",
            "inputs": tensor_metadata((schema or {}).get("inputs")),
            "outputs": outputs or [{"name": "predict", "datatype": "BYTES", "shape": [-1]}],
        }

    def _ready(self, name: str, version: int | None) -> dict[str, Any]:
        dep = self._deployment(name, version)
        failure = self.manager.failure(dep.model, dep.number)
        if failure is not None:
            raise _HttpError(503, failure.message, hint=failure.hint)
        return {"name": name, "ready": True}

    async def _infer(
        self,
        name: str,
        version: int | None,
        receive: Receive,
        send: Send,
        ctx: _Context,
        *,
        v1: bool,
    ) -> None:
        from seaway.serving import protocol

        routes = self._routes(name)
        if version is not None:
            dep = self._deployment(name, version)
        else:
            picked = routes.pick(ctx.key)
            if picked is None:
                raise _HttpError(503, f"no version of {name!r} takes traffic (every weight is 0)")
            dep = picked
        ctx.number = dep.number
        # A throttled client is refused before its body is read.
        self.abuse.admit(name, ctx.client)
        body = await self._read_body(receive)
        data: ModelInput
        wanted: list[str] | None = None
        request_id = ctx.request_id
        if v1:
            data = protocol.decode_v1(body)
            # Logged as columns ({name: values}) or rows ([[...], ...]) for the monitor.
            ctx.inputs = data.data
        else:
            info = self.manager.version(dep.model, dep.number)
            request = protocol.decode_v2(
                body, protocol.input_names(info.io_schema if info is not None else None)
            )
            data, wanted = request.input, request.outputs
            ctx.inputs = request.raw_inputs
            if request.id is not None:
                # The body's id names the request in the answer and in the request log,
                # and so in the feedback that judges it later.
                request_id = request.id
                ctx.logged_id = request.id[:64]
        self.abuse.observe(name, dep.number, ctx.client, data)
        entry = await self.manager.get(dep)
        outputs = await self._predict(entry, data, self.predict_pool)
        ctx.answered = dep.ref
        payload = (
            protocol.encode_v1(outputs)
            if v1
            else protocol.encode_v2(name, dep.number, request_id, outputs, wanted)
        )
        ctx.status = 200
        ctx.outputs = outputs
        await self._respond(send, 200, payload, ctx)
        if version is None and routes.shadows:
            mirrors = routes.mirrors(dep.number)
            if mirrors:
                ctx.mirror = (mirrors, data, outputs, dep.number)

    async def _predict(
        self, entry: Loaded, data: ModelInput, pool: ThreadPoolExecutor
    ) -> dict[str, numpy.ndarray]:
        dep = entry.deployment
        try:
            if dep.batching is not None and pool is self.predict_pool:
                return await self._batcher(entry).submit(data)
            inline = entry.predict_s is not None and entry.predict_s < INLINE_PREDICT_S
            if inline:
                # Fast versions answer on the loop, shadows too: a hop to a thread and back
                # costs more than their predict, and the client already has its answer.
                return self._timed(entry, data)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(pool, self._timed, entry, data)
        except SeawayError:
            raise
        except (ValueError, TypeError, KeyError) as exc:
            # What scikit-learn raises for input it cannot use (a string in a number column).
            raise InputError(
                f"{dep.ref} cannot use this input: {_first_line(exc)}",
                hint="check the input names, shapes and datatypes against GET /v2/models/"
                + dep.model,
            ) from None
        except Exception as exc:
            log.warning("%s raised %s: %s", dep.ref, type(exc).__name__, _first_line(exc))
            raise _HttpError(
                500, f"{dep.ref} failed to predict: {type(exc).__name__}: {_first_line(exc)}"
            ) from None

    def _timed(self, entry: Loaded, data: ModelInput) -> dict[str, numpy.ndarray]:
        from seaway.serving.manager import predict_outputs

        if not getattr(_LIMITED, "done", False):
            limit_native_threads()
            _LIMITED.done = True
        start = time.perf_counter()
        outputs = predict_outputs(entry, data)
        took = time.perf_counter() - start
        previous = entry.predict_s
        entry.predict_s = took if previous is None else previous + 0.1 * (took - previous)
        return outputs

    def _batcher(self, entry: Loaded) -> Batcher:
        from seaway.serving.batching import Batcher
        from seaway.serving.manager import predict_outputs

        dep = entry.deployment
        key = (dep.model, dep.number)
        held = self._batchers.get(key)
        if held is not None and held[0] is entry:
            return held[1]
        if held is not None:
            held[1].close()
        spec = dep.batching
        assert spec is not None
        telemetry = self.telemetry
        batcher = Batcher(
            lambda data: predict_outputs(entry, data),
            self.predict_pool,
            max_batch=spec.max_batch,
            max_wait_us=spec.max_wait_us,
            on_batch=lambda size: telemetry.batch(dep.model, dep.number, size),
        )
        self._batchers[key] = (entry, batcher)
        return batcher

    # -- shadows ----------------------------------------------------------------------------

    def _start_shadows(self, ctx: _Context) -> None:
        assert ctx.mirror is not None
        mirrors, data, outputs, primary = ctx.mirror
        for dep in mirrors:
            if self._shadows_in_flight >= MAX_SHADOWS_IN_FLIGHT:
                log.debug(
                    "shadow copy of %s to %s dropped: too many in flight", ctx.request_id, dep.ref
                )
                continue
            self._shadows_in_flight += 1
            self._spawn(self._shadow(dep, data, outputs, primary, ctx))

    async def _shadow(
        self,
        dep: Deployment,
        data: ModelInput,
        primary_outputs: dict[str, numpy.ndarray],
        primary: int,
        ctx: _Context,
    ) -> None:
        start = time.perf_counter()
        status = 200
        outputs: dict[str, numpy.ndarray] | None = None
        try:
            entry = await self.manager.get(dep)
            outputs = await self._predict(entry, data, self.shadow_pool)
            agreed = _agree(primary_outputs["predict"], outputs["predict"])
            self.telemetry.shadow_compare(dep.model, primary, dep.number, agreed=agreed)
        except asyncio.CancelledError:
            raise
        except _HttpError as exc:
            status = exc.status
        except SeawayError as exc:
            status = exc.http_status
        except Exception:
            status = 500
        finally:
            self._shadows_in_flight -= 1
        self.telemetry.request(
            dep.model,
            dep.number,
            "shadow",
            status=status,
            latency_s=time.perf_counter() - start,
            request_id=ctx.logged_id,
            key=ctx.key,
            inputs=ctx.inputs,
            outputs=outputs,
        )


class _Context:
    """What one request learned on its way, for the response headers and telemetry."""

    __slots__ = (
        "answered",
        "client",
        "count",
        "inputs",
        "key",
        "logged_id",
        "mirror",
        "model",
        "number",
        "outputs",
        "request_id",
        "status",
    )

    def __init__(self, request_id: str, key: str | None) -> None:
        self.request_id = request_id
        # The id the request log keeps (and feedback joins on): the v2 body's `id` when it
        # has one, else the x-request-id header's (or a random one).
        self.logged_id = request_id
        self.key = key
        self.client = ""
        self.model: str | None = None
        self.number: int | None = None
        self.answered: str | None = None
        self.status = 200
        self.count = True
        self.inputs: Any = None
        self.outputs: Any = None
        self.mirror: tuple[list[Deployment], ModelInput, dict[str, numpy.ndarray], int] | None = (
            None
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:500]


def create_app(
    project: Project,
    *,
    telemetry: Any = None,
    guard: Any = None,
    abuse: Any = None,
    poll_interval_s: float = 1.0,
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
    memory_budget_bytes: int | None = None,
    predict_threads: int | None = None,
    pinned: str | None = None,
) -> Gateway:
    """The gateway for `project`'s routing table, as an ASGI application.

    `pinned` (NAME@N) serves that one version and ignores the routing table: what a pod the
    kubernetes target renders runs, one version per Deployment.

    `telemetry` and `guard` default to `seaway.serving.telemetry.Telemetry` and
    `seaway.serving.security.Guard` for the project, and `abuse` to a
    `seaway.serving.abuse.AbuseDetector`; `idle_timeout_s` applies to deployments
    that set none; `memory_budget_bytes` caps the estimated memory of loaded versions.
    """
    return Gateway(
        project,
        telemetry=telemetry,
        guard=guard,
        abuse=abuse,
        poll_interval_s=poll_interval_s,
        idle_timeout_s=idle_timeout_s,
        memory_budget_bytes=memory_budget_bytes,
        predict_threads=predict_threads,
        pinned=pinned,
    )


ENV_PREFIX = "SEAWAY_SERVE_"


def app() -> Gateway:
    """Factory for ASGI servers (`uvicorn --factory seaway.serving.app:app`): the project
    found from the working directory, options from SEAWAY_SERVE_* variables (POLL_INTERVAL,
    IDLE_TIMEOUT, MEMORY_BUDGET, PREDICT_THREADS, FLUSH_INTERVAL, SAMPLE_RATE, SAMPLE_CAP,
    ABUSE_INTERVAL, and MODEL=NAME@N to serve one version only)."""
    from seaway.project import Project

    env = os.environ

    def number(name: str) -> float | None:
        raw = env.get(ENV_PREFIX + name)
        return float(raw) if raw else None

    budget = number("MEMORY_BUDGET")
    threads = number("PREDICT_THREADS")
    return create_app(
        Project.find(),
        poll_interval_s=number("POLL_INTERVAL") or 1.0,
        idle_timeout_s=number("IDLE_TIMEOUT") or DEFAULT_IDLE_TIMEOUT_S,
        memory_budget_bytes=int(budget) if budget else None,
        predict_threads=int(threads) if threads else None,
        pinned=env.get(ENV_PREFIX + "MODEL") or None,
    )


__all__ = ["ASGIApp", "Gateway", "app", "create_app", "gateway_id", "limit_native_threads"]
