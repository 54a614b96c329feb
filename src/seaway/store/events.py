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


def record_event(
    conn: Connection,
    kind: str,
    subject: str,
    data: dict[str, Any] | None = None,
    *,
    actor: str | None = None,
) -> int:
    from seaway.store.schema import events

    result = conn.execute(
        events.insert().values(
            ts=utcnow(), kind=kind, actor=actor or default_actor(), subject=subject, data=data
        )
    )
    pk = result.inserted_primary_key
    return int(pk[0]) if pk else 0
