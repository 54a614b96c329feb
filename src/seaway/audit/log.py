"""Reading the event log (`seaway audit`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from seaway._util import isoformat

if TYPE_CHECKING:
    from seaway.project import Project


@dataclass
class Event:
    seq: int
    ts: datetime
    kind: str
    actor: str
    subject: str
    data: dict[str, Any] | None
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "ts": isoformat(self.ts),
            "kind": self.kind,
            "actor": self.actor,
            "subject": self.subject,
            "data": self.data,
            "hash": self.hash,
        }


def list_events(
    project: Project,
    *,
    kind: str | None = None,
    actor: str | None = None,
    subject: str | None = None,
    model: str | None = None,
    since: datetime | None = None,
    limit: int | None = 100,
) -> list[Event]:
    """Events newest first. `subject` matches a prefix (`dataset:customers`); `model` is a
    shorthand for the subject prefix `model:NAME`; `kind` matches a prefix too
    (`dataset.` for every dataset event)."""
    from sqlalchemy import select

    from seaway.store.schema import events as ev

    query = select(ev).order_by(ev.c.seq.desc())
    if kind:
        query = query.where(ev.c.kind.startswith(kind, autoescape=True))
    if actor:
        query = query.where(ev.c.actor == actor)
    if model:
        subject = f"model:{model}"
    if subject:
        query = query.where(
            (ev.c.subject == subject)
            | ev.c.subject.startswith(subject + "@", autoescape=True)
            | ev.c.subject.startswith(subject + "/", autoescape=True)
        )
    if since is not None:
        query = query.where(ev.c.ts >= since)
    if limit:
        query = query.limit(limit)
    with project.metadata.read() as conn:
        rows = conn.execute(query).all()
    return [Event(r.seq, r.ts, r.kind, r.actor, r.subject, r.data, r.hash) for r in rows]


def parse_since(text: str) -> datetime:
    """An ISO date/time (UTC unless it says otherwise) or a duration back from now
    (`30m`, `12h`, `7d`)."""
    import re
    from datetime import UTC, timedelta

    from seaway.errors import UsageError

    match = re.fullmatch(r"(\d+)\s*([smhdw])", text.strip())
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
        delta = timedelta(**{unit[match.group(2)]: int(match.group(1))})
        return datetime.now(UTC) - delta
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"cannot read --since {text!r}",
            hint="give an ISO time (2026-11-22 or 2026-11-22T10:00) or a duration: 30m, 12h, 7d",
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
