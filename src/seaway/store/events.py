"""Appending events to the metadata database's event log.

Every change users care about (a dataset version, later a promotion or a rollout step) is
an event written in the same transaction as the change itself, so the log never claims
something that did not happen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from seaway._util import actor as default_actor
from seaway._util import utcnow

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


# Appends to the chain are serialised: on PostgreSQL by this transaction-scoped advisory
# lock, on SQLite by the write lock every write transaction takes (BEGIN IMMEDIATE).
_PG_CHAIN_LOCK = 0x5EA_E7E7


def record_event(
    conn: Connection,
    kind: str,
    subject: str,
    data: dict[str, Any] | None = None,
    *,
    actor: str | None = None,
) -> int:
    """Append an event to the chained log, inside the caller's write transaction."""
    from sqlalchemy import select, text

    from seaway.store.chain import GENESIS, event_hash
    from seaway.store.schema import events

    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_CHAIN_LOCK})
    last = conn.execute(
        select(events.c.seq, events.c.hash).order_by(events.c.seq.desc()).limit(1)
    ).first()
    seq = (last.seq if last is not None else 0) + 1
    prev = last.hash if last is not None else GENESIS
    ts = utcnow()
    who = actor or default_actor()
    digest = event_hash(
        seq=seq, ts=ts, kind=kind, actor=who, subject=subject, data=data, prev_hash=prev
    )
    result = conn.execute(
        events.insert().values(
            ts=ts,
            kind=kind,
            actor=who,
            subject=subject,
            data=data,
            seq=seq,
            prev_hash=prev,
            hash=digest,
        )
    )
    pk = result.inserted_primary_key
    return int(pk[0]) if pk else 0
