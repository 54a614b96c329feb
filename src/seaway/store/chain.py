"""The hash chain that makes the event log tamper-evident.

Each event carries `seq` (1, 2, 3, … with no gaps), the hash of the event before it and its
own hash: BLAKE3 over a canonical encoding of its fields and the previous hash. Editing an
event changes its hash; deleting one leaves a gap in `seq` and a broken link; inserting one
without recomputing every later hash breaks a link too. Someone able to rewrite the whole
tail consistently can only be caught against a head hash kept elsewhere (`seaway audit head`).

The encoding below is a storage format: changing it would make every existing log fail
verification, so it is versioned and must never change for version 1.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from blake3 import blake3

CHAIN_FORMAT = 1
GENESIS = "0" * 64


def canonical_ts(ts: datetime) -> str:
    """UTC, microseconds, no zone suffix: what both SQLite and PostgreSQL give back."""
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts.isoformat(timespec="microseconds")


def event_hash(
    *,
    seq: int,
    ts: datetime,
    kind: str,
    actor: str,
    subject: str,
    data: dict[str, Any] | None,
    prev_hash: str,
) -> str:
    body = json.dumps(
        [CHAIN_FORMAT, seq, canonical_ts(ts), kind, actor, subject, data, prev_hash],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return blake3(body.encode()).hexdigest()


def append_event_sqlite(
    conn: Any,
    *,
    ts: datetime,
    ts_text: str,
    kind: str,
    actor: str,
    subject: str,
    data: dict[str, Any] | None,
) -> int:
    """Append an event through a stdlib `sqlite3` connection inside the caller's write
    transaction (the fast lanes' twin of `seaway.store.events.record_event`); its seq."""
    last = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    seq = (last[0] if last is not None else 0) + 1
    prev = last[1] if last is not None else GENESIS
    digest = event_hash(
        seq=seq, ts=ts, kind=kind, actor=actor, subject=subject, data=data, prev_hash=prev
    )
    conn.execute(
        "INSERT INTO events (ts, kind, actor, subject, data, seq, prev_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (ts_text, kind, actor, subject, json.dumps(data), seq, prev, digest),
    )
    return int(seq)
