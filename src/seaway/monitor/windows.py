"""The monitor's time series: scored windows, and where each reader of the logs stopped.

A window is one batch of live data judged against a reference: kind `drift` (logged
requests, ids `first_id..last_id` of `request_log`, compared with the version's reference
profile) or kind `quality` (feedback labels, ids of `feedback`, scored as accuracy, AUC or
MAE). `score` is the figure a trigger compares with its threshold (the largest PSI; the
quality metric) and `breached` whether it crossed it. Windows are appended, never changed,
so `seaway monitor status`, the report, the triggers and `seaway metrics` all read the same
history.

Cursors (`monitor_cursors`) remember the last id a reader consumed, by name (`drift:MODEL@N`,
`quality:MODEL@N`, `alerts`), and are moved in the same transaction that stores what was read,
so an interrupted monitor resumes without scoring anything twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from seaway._util import as_utc, isoformat, utcnow

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from seaway.project import Project
    from seaway.spec.models import WindowSpec

DEFAULT_SETTLE_S = 30.0

__all__ = [
    "DEFAULT_SETTLE_S",
    "MonitorWindow",
    "get_cursor",
    "list_windows",
    "set_cursor",
    "settle_for",
    "store_window",
]


@dataclass(frozen=True)
class MonitorWindow:
    id: int
    model: str
    number: int
    kind: str
    window_start: datetime
    window_end: datetime
    first_id: int
    last_id: int
    rows: int
    score: float | None
    breached: bool
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def drifted(self) -> list[str]:
        """The features and predictions over their threshold (drift windows)."""
        return list(self.figures.get("drifted", []))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "version": self.number,
            "kind": self.kind,
            "window_start": isoformat(self.window_start),
            "window_end": isoformat(self.window_end),
            "first_id": self.first_id,
            "last_id": self.last_id,
            "rows": self.rows,
            "score": self.score,
            "breached": self.breached,
            "figures": self.figures,
        }


def _from_row(row: Any) -> MonitorWindow:
    return MonitorWindow(
        id=int(row.id),
        model=row.model,
        number=int(row.number),
        kind=row.kind,
        window_start=as_utc(row.window_start),
        window_end=as_utc(row.window_end),
        first_id=int(row.first_id),
        last_id=int(row.last_id),
        rows=int(row.rows),
        score=None if row.score is None else float(row.score),
        breached=bool(row.breached),
        figures=dict(row.figures or {}),
    )


def store_window(
    conn: Connection,
    *,
    model: str,
    number: int,
    kind: str,
    window_start: datetime,
    window_end: datetime,
    first_id: int,
    last_id: int,
    rows: int,
    score: float | None,
    breached: bool,
    figures: dict[str, Any],
) -> MonitorWindow:
    """Append a window inside the caller's write transaction."""
    from seaway.store.schema import monitor_windows

    values: dict[str, Any] = {
        "model": model,
        "number": number,
        "kind": kind,
        "window_start": as_utc(window_start),
        "window_end": as_utc(window_end),
        "first_id": first_id,
        "last_id": last_id,
        "rows": rows,
        "score": score,
        "breached": breached,
        "figures": figures,
        "created_at": utcnow(),
    }
    pk = conn.execute(monitor_windows.insert().values(**values)).inserted_primary_key
    assert pk is not None
    return MonitorWindow(id=int(pk[0]), **{k: v for k, v in values.items() if k != "created_at"})


def list_windows(
    project: Project,
    model: str,
    *,
    kind: str | None = "drift",
    number: int | None = None,
    since: datetime | None = None,
    after_id: int | None = None,
    limit: int | None = None,
) -> list[MonitorWindow]:
    """Stored windows of `model`, oldest first; `limit` keeps the newest ones."""
    from sqlalchemy import select

    from seaway.store.schema import monitor_windows as t

    query = select(t).where(t.c.model == model)
    if kind is not None:
        query = query.where(t.c.kind == kind)
    if number is not None:
        query = query.where(t.c.number == number)
    if since is not None:
        query = query.where(t.c.window_end > as_utc(since))
    if after_id is not None:
        query = query.where(t.c.id > after_id)
    query = query.order_by(t.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    with project.metadata.read() as conn:
        rows = conn.execute(query).all()
    return [_from_row(r) for r in reversed(rows)]


def get_cursor(conn: Connection, name: str) -> tuple[int, dict[str, Any] | None]:
    """(position, state) of a reader; (0, None) before its first read."""
    from sqlalchemy import select

    from seaway.store.schema import monitor_cursors as t

    row = conn.execute(select(t.c.position, t.c.state).where(t.c.name == name)).first()
    if row is None:
        return 0, None
    return int(row.position), (dict(row.state) if row.state is not None else None)


def set_cursor(
    conn: Connection, name: str, position: int, state: dict[str, Any] | None = None
) -> None:
    """Move a reader's cursor inside the caller's write transaction."""
    from sqlalchemy import update

    from seaway.store.schema import monitor_cursors as t

    now = utcnow()
    done = conn.execute(
        update(t).where(t.c.name == name).values(position=position, state=state, updated_at=now)
    )
    if done.rowcount == 0:
        conn.execute(t.insert().values(name=name, position=position, state=state, updated_at=now))


def settle_for(project: Project, window: WindowSpec | None) -> timedelta:
    """How old a logged request must be before it is scored.

    Logs are read in the order of their ids and the cursor is the last id scored. On
    PostgreSQL, several gateways write at once and a transaction that took its ids first can
    commit after one that took later ids: a reader that moved past the later ids would never
    see the earlier ones. A gateway commits what it logged within a flush or two (5 s each),
    so rows younger than the settle time (`window.settle`, 30 s by default) wait for the
    next call. SQLite commits one writer at a time, in id order: nothing needs to settle.
    """
    if window is not None and window.settle is not None:
        return timedelta(seconds=window.settle.seconds)
    if project.metadata.is_sqlite:
        return timedelta(0)
    return timedelta(seconds=DEFAULT_SETTLE_S)
