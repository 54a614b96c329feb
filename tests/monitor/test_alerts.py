"""Webhook alerts against a real HTTP receiver on 127.0.0.1, on SQLite and PostgreSQL:
retries with backoff until the receiver accepts, filters by event kind, ${VAR} URLs, a dead
receiver given up after max_attempts without holding up the others, one delivery per alert
even with two workers, and the background worker."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from seaway._util import utcnow
from seaway.audit.log import list_events
from seaway.errors import InputError
from seaway.monitor.alerts import (
    AlertWorker,
    backoff_s,
    deliver_due,
    enqueue_alerts,
    is_alertable,
    list_deliveries,
    matches,
    resolve_url,
)
from seaway.project import Project
from seaway.store.events import record_event
from tests.serving.conftest import free_port, wait_for


class Receiver:
    """An HTTP server that records what it is sent; `/flaky` answers 500 twice first."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], Any]] = []
        self.calls: dict[str, int] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                with receiver.lock:
                    n = receiver.calls[self.path] = receiver.calls.get(self.path, 0) + 1
                    receiver.received.append((self.path, dict(self.headers), body))
                status = 500 if self.path == "/flaky" and n <= 2 else 200
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def bodies(self, path: str) -> list[Any]:
        with self.lock:
            return [b for p, _, b in self.received if p == path]

    def kinds(self, path: str) -> list[str]:
        return [b["event"] for b in self.bodies(path)]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


def alerting(root: Path, alerts: str) -> Project:
    """The project at `root` (on the parametrised store) with `alerts` for model churn."""
    (root / "seaway.yaml").write_text(f"name: shop\nmonitoring:\n  churn:\n    alerts:\n{alerts}")
    return Project(root)


def emit(project: Project, kind: str, subject: str, data: dict[str, Any] | None = None) -> int:
    return project.metadata.run_write(
        lambda conn: record_event(conn, kind, subject, data, actor="controller")
    )


@pytest.fixture
def store(project_dir: Path, store_env: str) -> Path:
    return project_dir


def test_a_delivery_is_retried_with_backoff_until_the_third_attempt(
    store: Path, receiver: Receiver
) -> None:
    project = alerting(store, f"      - {{url: {receiver.url}/flaky}}\n")
    emit(project, "rollout.failed", "model:churn@7", {"reason": "p99 latency 80 ms > 50 ms"})
    assert enqueue_alerts(project) == 1
    assert enqueue_alerts(project) == 0  # the cursor moved

    t0 = utcnow()
    (first,) = deliver_due(project, now=t0)
    assert (first.status, first.attempts, first.code) == ("pending", 1, 500)
    assert first.error is not None and first.error.startswith("HTTP 500")
    assert first.next_attempt_at is not None
    assert timedelta(seconds=0.8) <= first.next_attempt_at - t0 <= timedelta(seconds=1.2)
    assert deliver_due(project, now=t0) == []  # not due yet

    t1 = t0 + timedelta(seconds=1.3)
    (second,) = deliver_due(project, now=t1)
    assert (second.status, second.attempts) == ("pending", 2)
    assert second.next_attempt_at is not None
    assert timedelta(seconds=1.6) <= second.next_attempt_at - t1 <= timedelta(seconds=2.4)
    assert deliver_due(project, now=t1 + timedelta(seconds=1)) == []

    (third,) = deliver_due(project, now=t1 + timedelta(seconds=3))
    assert (third.status, third.attempts, third.code, third.error) == ("delivered", 3, 200, None)
    assert deliver_due(project, now=t1 + timedelta(hours=1)) == []

    assert receiver.calls["/flaky"] == 3
    deliveries = {h["x-seaway-delivery"] for _, h, _ in receiver.received}
    assert deliveries == {str(first.id)}  # the same id on every retry, for deduplication
    body = receiver.bodies("/flaky")[-1]
    assert body["event"] == "rollout.failed"
    assert body["subject"] == "model:churn@7"
    assert body["model"] == "churn"
    assert body["project"] == "shop"
    assert body["actor"] == "controller"
    assert body["data"] == {"reason": "p99 latency 80 ms > 50 ms"}
    assert isinstance(body["seq"], int) and body["ts"].endswith("Z")
    assert "p99 latency" in body["text"]
    (stored,) = list_deliveries(project)
    assert (stored.status, stored.attempts, stored.last_error) == ("delivered", 3, None)
    project.close()


def test_alerts_follow_their_event_filters_and_read_urls_from_the_environment(
    store: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_URL", f"{receiver.url}/env")
    monkeypatch.delenv("MISSING_HOOK", raising=False)
    project = alerting(
        store,
        f"      - {{url: {receiver.url}/ops, events: [drift, rollout.failed]}}\n"
        f"      - {{url: {receiver.url}/retrain, events: [trigger]}}\n"
        f"      - {{url: {receiver.url}/all}}\n"
        "      - {url: '${HOOK_URL}', events: [abuse.flagged]}\n"
        "      - {url: '${MISSING_HOOK}', events: [failed]}\n",
    )
    emit(project, "model.created", "model:churn")  # not alertable
    emit(project, "monitor.drift", "model:churn@3", {"score": 0.31})
    emit(project, "trigger.started", "model:churn", {"kind": "drift"})
    emit(project, "rollout.succeeded", "model:churn@4")  # not alertable
    emit(project, "rollout.failed", "model:other@2")  # a model without alerts
    emit(project, "abuse.flagged", "model:churn", {"client": "token:scraper"})
    emit(project, "rollout.failed", "model:churn@4", {"reason": "error rate"})
    emit(project, "dataset.version", "dataset:customers")

    assert enqueue_alerts(project) == 9
    results = deliver_due(project)
    assert sorted(r.status for r in results) == ["delivered"] * 8 + ["failed"]
    assert receiver.kinds("/ops") == ["monitor.drift", "rollout.failed"]
    assert receiver.kinds("/retrain") == ["trigger.started"]
    assert receiver.kinds("/all") == [
        "monitor.drift",
        "trigger.started",
        "abuse.flagged",
        "rollout.failed",
    ]
    assert receiver.kinds("/env") == ["abuse.flagged"]

    # A variable that is not set fails the delivery at once, naming it (and no secret).
    (missing,) = [r for r in results if r.status == "failed"]
    assert missing.url == "${MISSING_HOOK}" and missing.attempts == 1
    assert missing.error is not None and "MISSING_HOOK is not set" in missing.error
    (event,) = list_events(project, kind="alert.failed")
    assert event.subject == "model:churn@4"
    assert event.data["url"] == "${MISSING_HOOK}" and event.data["event"] == "rollout.failed"
    # The URL read from the environment is not stored.
    stored = json.dumps([d.to_dict() for d in list_deliveries(project)])
    assert "${HOOK_URL}" in stored and f"{receiver.url}/env" not in stored
    project.close()


def test_a_dead_receiver_is_given_up_after_max_attempts_without_holding_up_others(
    store: Path, receiver: Receiver
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    project = alerting(store, f"      - {{url: {receiver.url}/ok}}\n      - {{url: '{dead}'}}\n")
    for n in range(3):
        emit(project, "trigger.failed", "model:churn", {"message": f"run {n} failed"})
    assert enqueue_alerts(project) == 6

    now = utcnow()
    passes = []
    for _ in range(4):
        passes.append(deliver_due(project, now=now, max_attempts=3))
        now += timedelta(minutes=6)  # past any backoff
    # The live receiver had all three at the first pass, in order.
    assert [b["data"]["message"] for b in receiver.bodies("/ok")] == [
        f"run {n} failed" for n in range(3)
    ]
    # The dead one: one request a pass (the others follow its retry), given up together.
    to_dead = [[r for r in p if r.url == dead] for p in passes]
    assert [[r.status for r in p] for p in to_dead] == [
        ["pending"] * 3,
        ["pending"] * 3,
        ["failed"] * 3,
        [],
    ]
    first, *rest = to_dead[0]
    assert first.error is not None and first.error.startswith("ConnectError")
    assert all(r.error is not None and r.error.startswith("not sent") for r in rest)
    failed = list_deliveries(project, status="failed")
    assert len(failed) == 3 and all(d.attempts == 3 and d.last_error for d in failed)
    events = list_events(project, kind="alert.failed", limit=None)
    assert len(events) == 3 and {e.data["url"] for e in events} == {dead}
    assert list_deliveries(project, status="pending") == []
    project.close()


def test_two_workers_deliver_each_alert_once(store: Path, receiver: Receiver) -> None:
    project = alerting(store, f"      - {{url: {receiver.url}/once}}\n")
    for n in range(20):
        emit(project, "monitor.drift", f"model:churn@{n % 3 + 1}", {"window": n})
    other = Project(store)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(p: Project) -> None:
        try:
            barrier.wait()
            enqueue_alerts(p)
            deliver_due(p)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(p,)) for p in (project, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    deliver_due(project)  # whatever a claim left
    windows = sorted(b["data"]["window"] for b in receiver.bodies("/once"))
    assert windows == list(range(20))
    other.close()
    project.close()


def test_the_worker_sends_alerts_in_the_background(store: Path, receiver: Receiver) -> None:
    project = alerting(store, f"      - {{url: {receiver.url}/flaky, events: [quality_drop]}}\n")
    worker = AlertWorker(project, interval_s=0.1)
    worker.start()
    try:
        emit(project, "monitor.quality_drop", "model:churn@2", {"auc": 0.61})
        # Refused twice, then accepted after the 1 s and 2 s backoffs.
        wait_for(lambda: receiver.calls.get("/flaky") == 3, timeout=30)
        wait_for(lambda: list_deliveries(project, status="delivered"), timeout=10)
    finally:
        worker.stop()
    assert receiver.kinds("/flaky") == ["monitor.quality_drop"] * 3
    project.close()


def test_matching_urls_and_backoff() -> None:
    assert is_alertable("trigger.awaiting_approval") and is_alertable("abuse.flagged")
    assert not is_alertable("alert.failed") and not is_alertable("monitor.window")
    assert matches("rollout.failed", [])
    assert matches("rollout.failed", ["rollout.failed"])
    assert matches("trigger.promoted", ["trigger"])
    assert matches("trigger.failed", ["failed"]) and matches("monitor.drift", ["drift"])
    assert not matches("monitor.drift", ["monitor.quality_drop", "rollout"])
    assert not matches("rollout.failed", ["roll"])
    env = {"TOKEN": "abc"}
    assert resolve_url("https://hooks.example.com/${TOKEN}/x", env) == (
        "https://hooks.example.com/abc/x"
    )
    for template in ("${NOPE}", "ftp://example.com/${TOKEN}"):
        with pytest.raises(InputError, match=r"NOPE is not set|not an http"):
            resolve_url(template, env)
    waits = [backoff_s(n) for n in range(1, 14)]
    assert 0.8 <= waits[0] <= 1.2 and 1.6 <= waits[1] <= 2.4 and 3.2 <= waits[2] <= 4.8
    assert max(waits) <= 300 and waits[-1] >= 240


def test_a_network_error_never_raises(store: Path) -> None:
    project = alerting(store, "      - {url: 'http://127.0.0.1:9/x'}\n")
    emit(project, "rollout.aborted", "model:churn@2")
    enqueue_alerts(project)
    with httpx.Client(timeout=0.5) as client:
        (result,) = deliver_due(project, client=client)
    assert result.status == "pending" and result.error and result.code is None
    project.close()


def test_events_older_than_an_hour_are_history_not_alerts(
    store: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    import seaway.store.events

    project = alerting(store, f"      - {{url: {receiver.url}/hook}}\n")
    long_ago = utcnow() - timedelta(hours=3)
    with monkeypatch.context() as patch:
        patch.setattr(seaway.store.events, "utcnow", lambda: long_ago)
        emit(project, "rollout.failed", "model:churn@6", {"reason": "old news"})
    emit(project, "rollout.failed", "model:churn@7", {"reason": "just now"})
    assert enqueue_alerts(project) == 1
    deliver_due(project)
    assert [b["data"]["reason"] for b in receiver.bodies("/hook")] == ["just now"]
    project.close()


def test_the_controller_sends_alerts_where_no_monitor_runs(store: Path, receiver: Receiver) -> None:
    from seaway.gitops.controller import Controller

    project = alerting(store, f"      - {{url: {receiver.url}/hook, events: [rollout]}}\n")
    controller = Controller(project, interval_s=0.2)
    thread = threading.Thread(target=controller.run, daemon=True)
    thread.start()
    try:
        emit(project, "rollout.aborted", "model:churn@7", {"reason": "p99 over its limit"})
        wait_for(lambda: receiver.kinds("/hook"), timeout=20)
    finally:
        controller.stop()
        thread.join(timeout=20)
    assert receiver.kinds("/hook") == ["rollout.aborted"]
    project.close()


def test_given_up_deliveries_are_listed_and_sent_again_once_the_receiver_is_fixed(
    store: Path, receiver: Receiver, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    project = alerting(store, "      - {url: '${HOOK}/hook'}\n")
    emit(project, "rollout.failed", "model:churn@2", {"reason": "error rate 9% > 1%"})
    emit(project, "monitor.drift", "model:churn@2", {"window": 4})
    assert enqueue_alerts(project) == 2
    assert {r.status for r in deliver_due(project, max_attempts=1)} == {"failed"}

    listed = json.loads(cli("monitor", "alerts", "--status", "failed", "--json").stdout)
    failed = listed["deliveries"]
    assert [(d["kind"], d["status"], d["attempts"]) for d in failed] == [
        ("monitor.drift", "failed", 1),
        ("rollout.failed", "failed", 1),
    ]
    assert failed[0]["url"] == "${HOOK}/hook"  # the secret stays out of the store
    assert failed[1]["last_error"].startswith("ConnectError")
    text = cli("monitor", "alerts").stdout
    assert "rollout.failed" in text and "failed" in text

    # Asking for a delivery that did not fail, or does not exist, changes nothing.
    missing = cli("monitor", "alerts", "--retry", "--id", "99")
    assert missing.exit_code == 2 and "no alert delivery 99" in missing.stderr
    assert cli("monitor", "alerts", "--id", "1").exit_code == 2

    monkeypatch.setenv("HOOK", receiver.url)
    retried = json.loads(cli("monitor", "alerts", "--retry", "--json").stdout)["retried"]
    assert sorted(retried) == sorted(d["id"] for d in failed)
    assert list_deliveries(project, status="failed") == []
    assert {r.status for r in deliver_due(project)} == {"delivered"}
    assert receiver.kinds("/hook") == ["rollout.failed", "monitor.drift"]
    assert cli("monitor", "alerts", "--retry").stdout.strip() == "no failed delivery to retry"
    delivered = cli("monitor", "alerts", "--retry", "--id", str(retried[0]))
    assert delivered.exit_code == 2 and "(delivered) has not failed" in delivered.stderr
    (requeued,) = list_events(project, kind="alert.retried", limit=None)
    assert requeued.data == {"deliveries": sorted(retried)}
    project.close()
