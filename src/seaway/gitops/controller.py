"""`seaway controller`: the reconciler in a loop, woken early by a push webhook.

Each loop resolves the tracked revision (one `git rev-parse`, or a fetch for a remote
source) and syncs when the revision moved, when rollouts are in flight (they advance on
every loop), or every `resync_s` anyway, so drift made outside git is seen and, where the
environment says so, healed. A POST to the webhook wakes the loop at once, so a pushed
commit reaches the gateway's routing table in well under the poll interval.

Only one controller acts on a store at a time. With PostgreSQL the leader holds a session
advisory lock on its own connection; with SQLite an exclusive lock on a file beside the
database. The others stand by and try again every interval; a leader that dies (even with
SIGKILL) loses the lock with its connection or process, and a standby takes over. All
rollout state is in the store, so the new leader resumes each rollout at its step.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seaway.gitops.reconcile import PlanCache

if TYPE_CHECKING:
    from seaway.gitops.reconcile import SyncResult
    from seaway.project import Project

log = logging.getLogger("seaway.controller")

_PG_KEY = "hashtext(current_database() || '.' || current_schema()), 1397055833"
"""The leader's advisory lock: one per database and schema, so projects sharing a server
in separate schemas each elect their own leader; the second key sets it apart from other
advisory locks."""


class Leadership:
    """The leader lock: `acquire()` without waiting, `release()`, `held`."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.held = False
        self._conn: Any = None
        self._file: Any = None

    def acquire(self) -> bool:
        if self.held:
            return True
        if self.project.metadata.is_sqlite:
            self.held = self._acquire_file()
        else:
            self.held = self._acquire_pg()
        return self.held

    def _lock_path(self) -> Path:
        from seaway.store.metadata import _sqlite_path

        db = _sqlite_path(self.project.metadata.url)
        return (
            Path(db + ".controller-lock")
            if db
            else self.project.root / ".seaway" / "controller.lock"
        )

    def _acquire_file(self) -> bool:
        import fcntl

        path = self._lock_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")  # noqa: SIM115 - held for as long as we lead
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    def _acquire_pg(self) -> bool:
        from sqlalchemy import text

        conn = self.project.metadata.engine.connect()
        try:
            got = bool(conn.execute(text(f"SELECT pg_try_advisory_lock({_PG_KEY})")).scalar())
            conn.commit()
        except Exception:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def still_held(self) -> bool:
        """For PostgreSQL, whether the lock's connection is alive (a restarted server
        drops it, and with it the lock)."""
        if not self.held or self._conn is None:
            return self.held
        from sqlalchemy import text

        try:
            self._conn.execute(text("SELECT 1")).scalar()
            self._conn.commit()
        except Exception:
            self._drop()
            return False
        return True

    def _drop(self) -> None:
        with contextlib.suppress(Exception):
            if self._conn is not None:
                self._conn.close()
        self._conn = None
        self.held = False

    def release(self) -> None:
        if self._file is not None:
            import fcntl

            with contextlib.suppress(OSError):
                fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._conn is not None:
            from sqlalchemy import text

            with contextlib.suppress(Exception):
                self._conn.execute(text(f"SELECT pg_advisory_unlock({_PG_KEY})"))
                self._conn.commit()
            self._drop()
        self.held = False


@dataclass
class ControllerState:
    """What the controller has done, for its health endpoint and for tests."""

    leader: bool = False
    loops: int = 0
    syncs: int = 0
    last_revision: str | None = None
    last_sync_at: float | None = None
    last_error: str | None = None
    webhooks: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "leader": self.leader,
            "loops": self.loops,
            "syncs": self.syncs,
            "last_revision": self.last_revision,
            "last_sync_at": self.last_sync_at,
            "last_error": self.last_error,
            "webhooks": self.webhooks,
        }


class Controller:
    """The loop. `run()` blocks until `stop()`; `wake()` starts the next loop now."""

    def __init__(
        self,
        project: Project,
        *,
        environment: str | None = None,
        source: str | None = None,
        revision: str | None = None,
        interval_s: float = 30.0,
        rollout_interval_s: float = 2.0,
        resync_s: float = 60.0,
        on_sync: Callable[[SyncResult], None] | None = None,
    ) -> None:
        if interval_s <= 0 or rollout_interval_s <= 0:
            from seaway.errors import UsageError

            raise UsageError("controller intervals must be positive")
        self.project = project
        self.environment = environment
        self.source = source
        self.revision = revision
        self.interval_s = interval_s
        self.rollout_interval_s = rollout_interval_s
        self.resync_s = resync_s
        self.on_sync = on_sync
        self.state = ControllerState()
        self.leadership = Leadership(project)
        self.plan_cache = PlanCache()
        self._wake = threading.Event()
        self._stop = threading.Event()

    def wake(self) -> None:
        self.state.webhooks += 1
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _rollouts_in_flight(self) -> bool:
        from seaway.rollout.records import list_rollouts

        return bool(
            list_rollouts(self.project, environment=self.environment, active_only=True, limit=1)
        )

    def loop_once(self) -> SyncResult | None:
        """One loop: lead or stand by; sync when there is a reason to."""
        from seaway.gitops.desired import resolve_revision
        from seaway.gitops.reconcile import sync

        self.state.loops += 1
        if not (self.leadership.acquire() and self.leadership.still_held()):
            self.state.leader = False
            return None
        self.state.leader = True
        revision = resolve_revision(self.project, self.revision, self.source)
        due = (
            revision != self.state.last_revision
            or self.state.last_sync_at is None
            or time.monotonic() - self.state.last_sync_at >= self.resync_s
            or self._rollouts_in_flight()
        )
        if not due:
            return None
        result = sync(
            self.project,
            environment=self.environment,
            revision=revision,
            source=self.source,
            cache=self.plan_cache,
        )
        self.state.syncs += 1
        self.state.last_revision = revision
        self.state.last_sync_at = time.monotonic()
        if self.on_sync is not None:
            self.on_sync(result)
        return result

    def run(self) -> None:
        alerts = _alert_worker(self.project)
        try:
            while not self._stop.is_set():
                self._wake.clear()
                try:
                    self.loop_once()
                    self.state.last_error = None
                except Exception as exc:
                    self.state.last_error = str(exc)
                    log.warning("controller loop failed: %s", exc)
                pause = self.interval_s
                if self.state.leader and self._rollouts_in_flight_safe():
                    pause = min(pause, self.rollout_interval_s)
                if not self.state.leader:
                    pause = min(pause, 5.0)
                self._wake.wait(pause)
        finally:
            if alerts is not None:
                alerts.stop()
            self.leadership.release()
            self.state.leader = False

    def _rollouts_in_flight_safe(self) -> bool:
        try:
            return self._rollouts_in_flight()
        except Exception:
            return False


def _alert_worker(project: Project) -> Any:
    """A started `AlertWorker` when seaway.yaml configures webhook alerts, so failed
    rollouts and rollback commits are announced even where no monitor runs (deliveries are
    leased: beside a monitor's worker, none is sent twice); else None."""
    try:
        if not project.spec_path.is_file() or not any(
            m.alerts for m in project.spec.monitoring.values()
        ):
            return None
    except Exception:  # a broken seaway.yaml must not stop the controller's own work
        return None
    from seaway.monitor.alerts import AlertWorker
    from seaway.monitor.loop import can_send_alerts

    if not can_send_alerts(project):
        return None
    worker = AlertWorker(project)
    worker.start()
    return worker


# -- the webhook ---------------------------------------------------------------


def webhook_app(controller: Controller, secret: str | None = None) -> Any:
    """A minimal ASGI app: `POST /webhook` wakes the controller (GitHub's
    `X-Hub-Signature-256` and GitLab's `X-Gitlab-Token` are checked when a secret is set);
    `GET /healthz` answers the controller's state."""

    async def read_body(receive: Any) -> bytes:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                return body

    async def respond(send: Any, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": data})

    def authorised(headers: dict[bytes, bytes], body: bytes) -> bool:
        if secret is None:
            return True
        token = headers.get(b"x-gitlab-token")
        if token is not None:
            return hmac.compare_digest(token.decode(errors="replace"), secret)
        signature = headers.get(b"x-hub-signature-256", b"").decode(errors="replace")
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(signature, expected)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/healthz" and method == "GET":
            await respond(send, 200, controller.state.to_dict())
            return
        if path == "/webhook":
            if method != "POST":
                await respond(send, 405, {"error": "POST a push event to /webhook"})
                return
            body = await read_body(receive)
            if len(body) > 25 * 1024 * 1024:
                await respond(send, 413, {"error": "webhook body too large"})
                return
            if not authorised(dict(scope["headers"]), body):
                await respond(send, 401, {"error": "webhook signature or token does not match"})
                return
            controller.wake()
            await respond(send, 202, {"accepted": True})
            return
        await respond(send, 404, {"error": f"no route {path}; POST /webhook or GET /healthz"})

    return app


@contextlib.contextmanager
def serve_webhook(
    controller: Controller, port: int, *, host: str = "127.0.0.1", secret: str | None = None
) -> Iterator[Any]:
    """Run the webhook server in a thread for the duration of the block."""
    import uvicorn

    config = uvicorn.Config(
        webhook_app(controller, secret),
        host=host,
        port=port,
        log_level="warning",
        lifespan="on",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="seaway-webhook", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        from seaway.errors import UsageError

        raise UsageError(
            f"the webhook server could not listen on {host}:{port}",
            hint="choose another --webhook-port, or stop what uses this one",
        )
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(timeout=10)


__all__ = ["Controller", "ControllerState", "Leadership", "serve_webhook", "webhook_app"]
