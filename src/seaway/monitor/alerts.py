"""Webhook alerts: the events a person should hear about, posted as JSON.

```yaml
monitoring:
  churn-classifier:
    alerts:
      - {url: "${SLACK_WEBHOOK}", events: [drift, rollout.failed]}
      - {url: "https://hooks.example.com/ml"}          # every alertable event
```

Alertable events are `monitor.drift`, `monitor.quality_drop`, `rollout.failed`,
`rollout.aborted`, `rollback.committed`, every `trigger.*` (started, promoted,
awaiting_approval, failed, ...) and `abuse.flagged`, for the model their subject names
(`model:NAME` or `model:NAME@N`). An `events` entry matches a kind exactly
(`rollout.failed`), as a prefix (`trigger`: every trigger event) or as its last part
(`failed`: rollout.failed and trigger.failed); an empty list takes them all.

Delivery is at least once and survives restarts, because the work lives in the store:

1. `enqueue_alerts(project)` reads the events after the `alerts` cursor and adds one
   `alert_deliveries` row per matching event and URL, moving the cursor in the same
   transaction (events from before alerts were configured are never sent).
2. `deliver_due(project)` claims the deliveries that are due (a claim is a one-minute lease,
   so two workers never post the same one at once), POSTs each body with a 5 s timeout, and
   records the outcome: a 2xx answer delivers it; anything else (a status, a refused
   connection, a timeout) is retried after 1 s, 2 s, 4 s, ... (at most 5 minutes, with
   jitter), and after `max_attempts` it is given up as `failed` with an `alert.failed`
   event. After a failure the other deliveries to the same URL are not sent but share its
   retry and attempt count, so a dead receiver costs one request a pass and its backlog is
   given up together; receivers are called in parallel.
3. `AlertWorker(project)` does both about every second in a daemon thread; `seaway monitor
   run` runs one, and so does `seaway controller` when seaway.yaml configures alerts.

`list_deliveries` (`seaway monitor alerts`) shows what was sent and what was given up;
`retry_failed` (`seaway monitor alerts --retry`) puts given-up deliveries back in the queue
with a fresh count of attempts, once the receiver is fixed.

An event more than an hour old when it is read is history, not news: it moves the cursor
but is not sent (the first run of a worker on a project with a long log sends no backlog).

The body: `{"event", "subject", "model", "ts", "actor", "data", "seq", "project", "text"}`,
where `text` is a one-line summary (what chat webhooks show) and `seq` the event's place
in the audit log. Requests carry `X-Seaway-Event` and `X-Seaway-Delivery` (the same on
every retry, for receivers that drop duplicates). `${VAR}` in a URL is read from the
environment when the alert is sent, so secrets stay out of seaway.yaml and out of the
store; a variable that is not set fails the delivery with that reason.
"""

from __future__ import annotations

import logging
import os
import random
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from seaway._periodic import Periodic
from seaway._util import as_utc, isoformat, utcnow
from seaway.errors import InputError

if TYPE_CHECKING:
    import httpx
    from sqlalchemy.engine import Connection

    from seaway.project import Project
    from seaway.spec.models import AlertSpec

__all__ = [
    "ALERTABLE",
    "AlertWorker",
    "Delivery",
    "DeliveryResult",
    "backoff_s",
    "deliver_due",
    "enqueue_alerts",
    "is_alertable",
    "list_deliveries",
    "matches",
    "resolve_url",
    "retry_failed",
]

log = logging.getLogger("seaway.monitor.alerts")

CURSOR = "alerts"
ALERTABLE = frozenset(
    {
        "monitor.drift",
        "monitor.quality_drop",
        "rollout.failed",
        "rollout.aborted",
        "rollback.committed",
        "abuse.flagged",
    }
)
ALERTABLE_PREFIXES = ("trigger.",)
TIMEOUT_S = 5.0
MAX_ATTEMPTS = 8
MAX_BACKOFF_S = 300.0
LEASE = timedelta(minutes=1)
MAX_AGE = timedelta(hours=1)
BATCH = 500
PARALLEL = 8
MAX_ERROR_CHARS = 500
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def is_alertable(kind: str) -> bool:
    """Whether events of `kind` can be sent as alerts."""
    return kind in ALERTABLE or kind.startswith(ALERTABLE_PREFIXES)


def matches(kind: str, wanted: Sequence[str]) -> bool:
    """Whether an alert's `events` filter takes `kind` (empty: every kind)."""
    if not wanted:
        return True
    return any(kind == w or kind.startswith(w + ".") or kind.endswith("." + w) for w in wanted)


def _model_of(subject: str) -> str | None:
    if not subject.startswith("model:"):
        return None
    return subject[len("model:") :].split("@", 1)[0].split("/", 1)[0] or None


def _summary(project: str, kind: str, subject: str, actor: str, data: Any) -> str:
    text = f"[{project}] {kind}: {subject.removeprefix('model:')} (by {actor})"
    if isinstance(data, Mapping):
        for key in ("reason", "message", "error"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return f"{text}: {value.splitlines()[0][:300]}"
    return text


# -- enqueue ----------------------------------------------------------------------------------


def enqueue_alerts(project: Project) -> int:
    """Add a delivery for every new alertable event that a model's `alerts` want; the
    number added. The `alerts` cursor moves past every event read, alertable or not."""
    if not _new_events(project):
        return 0
    spec = project.spec
    routes = {model: m.alerts for model, m in spec.monitoring.items() if m.alerts}
    added = 0
    while True:
        count, read = project.metadata.run_write(lambda conn: _enqueue(conn, routes, spec.name))
        added += count
        if read < BATCH:
            return added


def _new_events(project: Project) -> bool:
    """Whether events were recorded after the cursor: a read, so an idle worker takes no
    write lock every second."""
    from sqlalchemy import func, select

    from seaway.monitor.windows import get_cursor
    from seaway.store.schema import events as ev

    with project.metadata.read() as conn:
        position, _ = get_cursor(conn, CURSOR)
        last = conn.execute(select(func.max(ev.c.seq))).scalar()
    return last is not None and int(last) > position


def _enqueue(
    conn: Connection, routes: Mapping[str, Sequence[AlertSpec]], project_name: str
) -> tuple[int, int]:
    from sqlalchemy import select

    from seaway.monitor.windows import get_cursor, set_cursor
    from seaway.store.schema import alert_deliveries
    from seaway.store.schema import events as ev

    position, _ = get_cursor(conn, CURSOR)
    rows = conn.execute(
        select(ev.c.seq, ev.c.ts, ev.c.kind, ev.c.actor, ev.c.subject, ev.c.data)
        .where(ev.c.seq > position)
        .order_by(ev.c.seq)
        .limit(BATCH)
    ).all()
    if not rows:
        return 0, 0
    now = utcnow()
    oldest = now - MAX_AGE
    deliveries: list[dict[str, Any]] = []
    for row in rows:
        model = _model_of(row.subject)
        alerts = routes.get(model) if model is not None else None
        if not alerts or not is_alertable(row.kind) or as_utc(row.ts) < oldest:
            continue
        body = {
            "event": row.kind,
            "subject": row.subject,
            "model": model,
            "ts": isoformat(row.ts),
            "actor": row.actor,
            "data": row.data,
            "seq": int(row.seq),
            "project": project_name,
            "text": _summary(project_name, row.kind, row.subject, row.actor, row.data),
        }
        urls: set[str] = set()
        for alert in alerts:
            if alert.url in urls or not matches(row.kind, alert.events):
                continue
            urls.add(alert.url)
            deliveries.append(
                {
                    "event_seq": int(row.seq),
                    "url": alert.url,
                    "kind": row.kind,
                    "body": body,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "last_error": None,
                    "delivered_at": None,
                }
            )
    if deliveries:
        conn.execute(alert_deliveries.insert(), deliveries)
    set_cursor(conn, CURSOR, int(rows[-1].seq))
    return len(deliveries), len(rows)


# -- deliver ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """A stored delivery (`list_deliveries`)."""

    id: int
    event_seq: int
    url: str
    kind: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    delivered_at: datetime | None
    body: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event_seq": self.event_seq,
            "url": self.url,
            "kind": self.kind,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": isoformat(self.next_attempt_at),
            "last_error": self.last_error,
            "delivered_at": isoformat(self.delivered_at),
        }


@dataclass(frozen=True)
class DeliveryResult:
    """What one attempt did: `status` is delivered, pending (to be retried) or failed."""

    id: int
    event_seq: int
    kind: str
    subject: str
    url: str
    status: str
    attempts: int
    code: int | None
    error: str | None
    next_attempt_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event_seq": self.event_seq,
            "kind": self.kind,
            "subject": self.subject,
            "url": self.url,
            "status": self.status,
            "attempts": self.attempts,
            "code": self.code,
            "error": self.error,
            "next_attempt_at": isoformat(self.next_attempt_at),
        }


class _Unresolved(InputError):
    """A URL that cannot be sent to as configured; retrying would not help."""


def resolve_url(template: str, environ: Mapping[str, str] | None = None) -> str:
    """`template` with each ${VAR} read from the environment; InputError when a variable
    is not set or the result is not an http(s) URL."""
    env = os.environ if environ is None else environ

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        got = env.get(name)
        if not got:
            raise _Unresolved(
                f"environment variable {name} is not set (the alert URL is {template})",
                hint="set it where the alert worker runs (seaway monitor run, the controller)",
            )
        return got

    url = _VAR.sub(value, template).strip()
    if not url.startswith(("http://", "https://")):
        raise _Unresolved(
            f"{template} is not an http(s) URL once its variables are read",
            hint="alerts are posted to http:// or https:// URLs",
        )
    return url


def backoff_s(attempts: int) -> float:
    """Seconds to wait after the `attempts`-th failed attempt: 1, 2, 4, ... at most 5 min,
    each with up to 20% jitter either way so retries of many alerts spread out."""
    base = min(MAX_BACKOFF_S, 2.0 ** max(0, attempts - 1))
    return min(MAX_BACKOFF_S, base * random.uniform(0.8, 1.2))


def deliver_due(
    project: Project,
    *,
    client: httpx.Client | None = None,
    now: datetime | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    limit: int = 100,
) -> list[DeliveryResult]:
    """POST the deliveries due at `now` (default: now), at most `limit`; what each did.
    Never raises for a network error or a receiver's answer."""
    import httpx

    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
    at = as_utc(now) if now is not None else utcnow()
    if not _any_due(project, at):
        return []
    claimed = project.metadata.run_write(lambda conn: _claim(conn, at, limit))
    if not claimed:
        return []
    groups: dict[str, list[Any]] = {}
    for row in claimed:
        groups.setdefault(row.url, []).append(row)
    own = client is None
    http = client if client is not None else httpx.Client(timeout=TIMEOUT_S)
    try:
        with ThreadPoolExecutor(min(PARALLEL, len(groups))) as pool:
            outcomes = list(
                pool.map(lambda rows: _send_group(http, rows, at, max_attempts), groups.values())
            )
    finally:
        if own:
            http.close()
    results = [r for group in outcomes for r in group]
    project.metadata.run_write(lambda conn: _record(conn, results))
    return results


def _any_due(project: Project, at: datetime) -> bool:
    from sqlalchemy import select

    from seaway.store.schema import alert_deliveries as t

    with project.metadata.read() as conn:
        due = conn.execute(
            select(t.c.id).where(t.c.status == "pending", t.c.next_attempt_at <= at).limit(1)
        ).first()
    return due is not None


def _claim(conn: Connection, at: datetime, limit: int) -> list[Any]:
    from sqlalchemy import select, update

    from seaway.store.schema import alert_deliveries as t

    query = (
        select(t.c.id, t.c.event_seq, t.c.url, t.c.kind, t.c.body, t.c.attempts)
        .where(t.c.status == "pending", t.c.next_attempt_at <= at)
        .order_by(t.c.next_attempt_at, t.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = list(conn.execute(query).all())
    if rows:
        conn.execute(
            update(t).where(t.c.id.in_([r.id for r in rows])).values(next_attempt_at=at + LEASE)
        )
    return sorted(rows, key=lambda r: (r.event_seq, r.id))


def _send_group(
    http: httpx.Client, rows: list[Any], at: datetime, max_attempts: int
) -> list[DeliveryResult]:
    """Send one URL's deliveries in event order. After a failure the rest are not sent:
    they share its retry (and its attempt count), so a dead receiver costs one request a
    pass and its deliveries are given up together."""
    results: list[DeliveryResult] = []
    for i, row in enumerate(rows):
        result = _send(http, row, at, max_attempts)
        results.append(result)
        if result.status == "pending":
            why = f"not sent: the delivery before it to this URL failed ({result.error})"
            results.extend(
                _outcome(r, at, max_attempts, code=None, error=why, final=False, retry=result)
                for r in rows[i + 1 :]
            )
            break
    return results


def _send(http: httpx.Client, row: Any, at: datetime, max_attempts: int) -> DeliveryResult:
    import httpx

    code: int | None = None
    url = ""
    final = False
    try:
        url = resolve_url(row.url)
        response = http.post(
            url,
            json=row.body,
            headers={"x-seaway-event": row.kind, "x-seaway-delivery": str(row.id)},
            timeout=TIMEOUT_S,
        )
        code = response.status_code
        error = None if 200 <= code < 300 else f"HTTP {code}: {response.text[:200]}"
    except _Unresolved as exc:
        error, final = exc.message, True
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    except Exception as exc:  # a bad URL or body must not stop the other deliveries
        error = f"{type(exc).__name__}: {exc}"
    if error is not None and url:
        # The resolved URL may hold a secret; messages name the template.
        error = error.replace(url, row.url)
    return _outcome(row, at, max_attempts, code=code, error=error, final=final)


def _outcome(
    row: Any,
    at: datetime,
    max_attempts: int,
    *,
    code: int | None,
    error: str | None,
    final: bool,
    retry: DeliveryResult | None = None,
) -> DeliveryResult:
    """The result of an attempt at `row` (or of following `retry`, the failed one before)."""
    attempts = int(row.attempts) + 1
    next_at: datetime | None = None
    if error is None:
        status = "delivered"
    elif final or attempts >= max_attempts:
        status = "failed"
    else:
        status = "pending"
        next_at = (
            retry.next_attempt_at
            if retry is not None and retry.next_attempt_at is not None
            else at + timedelta(seconds=backoff_s(attempts))
        )
    return DeliveryResult(
        id=int(row.id),
        event_seq=int(row.event_seq),
        kind=row.kind,
        subject=str((row.body or {}).get("subject") or ""),
        url=row.url,
        status=status,
        attempts=attempts,
        code=code,
        error=None if error is None else error[:MAX_ERROR_CHARS],
        next_attempt_at=next_at,
    )


def _record(conn: Connection, results: list[DeliveryResult]) -> None:
    from sqlalchemy import update

    from seaway.store.events import record_event
    from seaway.store.schema import alert_deliveries as t

    done = utcnow()
    for r in results:
        values: dict[str, Any] = {"status": r.status, "attempts": r.attempts}
        if r.status == "delivered":
            values.update(delivered_at=done, last_error=None)
        else:
            values["last_error"] = r.error
        if r.next_attempt_at is not None:
            values["next_attempt_at"] = r.next_attempt_at
        conn.execute(update(t).where(t.c.id == r.id).values(**values))
        if r.status == "failed":
            record_event(
                conn,
                "alert.failed",
                r.subject or f"event:{r.event_seq}",
                {
                    "url": r.url,
                    "event": r.kind,
                    "seq": r.event_seq,
                    "attempts": r.attempts,
                    "error": r.error,
                },
            )


def list_deliveries(
    project: Project, *, status: str | None = None, limit: int | None = 100
) -> list[Delivery]:
    """Stored deliveries, newest first, optionally of one status."""
    from sqlalchemy import select

    from seaway.store.schema import alert_deliveries as t

    query = select(t).order_by(t.c.id.desc())
    if status is not None:
        query = query.where(t.c.status == status)
    if limit:
        query = query.limit(limit)
    with project.metadata.read() as conn:
        rows = conn.execute(query).all()
    return [
        Delivery(
            id=int(r.id),
            event_seq=int(r.event_seq),
            url=r.url,
            kind=r.kind,
            status=r.status,
            attempts=int(r.attempts),
            next_attempt_at=as_utc(r.next_attempt_at),
            last_error=r.last_error,
            delivered_at=as_utc(r.delivered_at),
            body=dict(r.body or {}),
        )
        for r in rows
    ]


# -- the worker -------------------------------------------------------------------------------


class AlertWorker:
    """Enqueue and deliver alerts about every `interval_s` in a daemon thread.

    `start()` and `stop()` are idempotent; a pass that fails (the store out of reach) is
    logged and the next one tries again.
    """

    def __init__(
        self,
        project: Project,
        *,
        interval_s: float = 1.0,
        max_attempts: int = MAX_ATTEMPTS,
        client: httpx.Client | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, not {interval_s}")
        self.project = project
        self.interval_s = interval_s
        self.max_attempts = max_attempts
        self._client = client
        self._own_client = client is None
        self._loop = Periodic("seaway-alerts", interval_s, self.tick, log=log, immediate=True)

    def tick(self) -> list[DeliveryResult]:
        """One pass: enqueue new alerts, then deliver what is due."""
        import httpx

        if self._client is None:
            self._client = httpx.Client(timeout=TIMEOUT_S)
        enqueue_alerts(self.project)
        return deliver_due(self.project, client=self._client, max_attempts=self.max_attempts)

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()
        if self._own_client and self._client is not None:
            self._client.close()
            self._client = None


def retry_failed(project: Project, ids: Sequence[int] | None = None) -> list[int]:
    """Put failed deliveries (all, or those of `ids`) back in the queue, due now, with a
    fresh count of attempts; the ids requeued, oldest first. An id that is not a failed
    delivery is an error naming it, and nothing is requeued."""
    from sqlalchemy import select, update

    from seaway.store.events import record_event
    from seaway.store.schema import alert_deliveries as t

    def requeue(conn: Connection) -> list[int]:
        query = select(t.c.id, t.c.status).order_by(t.c.id)
        if ids is not None:
            query = query.where(t.c.id.in_(list(ids)))
        else:
            query = query.where(t.c.status == "failed")
        rows = conn.execute(query).all()
        found = {int(r.id): r.status for r in rows}
        if ids is not None:
            missing = [str(i) for i in ids if i not in found]
            if missing:
                raise InputError(
                    f"no alert delivery {', '.join(missing)}",
                    hint="list them with: seaway monitor alerts",
                )
            waiting = [f"{i} ({found[i]})" for i in ids if found[i] != "failed"]
            if waiting:
                raise InputError(
                    f"alert delivery {', '.join(waiting)} has not failed; only failed "
                    "deliveries are retried",
                    hint="pending ones are retried on their own: seaway monitor alerts "
                    "--status pending",
                )
        chosen = sorted(found)
        if not chosen:
            return []
        conn.execute(
            update(t)
            .where(t.c.id.in_(chosen))
            .values(status="pending", attempts=0, next_attempt_at=utcnow())
        )
        record_event(conn, "alert.retried", "alerts", {"deliveries": chosen})
        return chosen

    return project.metadata.run_write(requeue)
