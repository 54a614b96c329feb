"""Re-walking the event chain (`seaway audit verify`).

Events are read in `seq` order in batches, so memory stays flat however long the log is.
The first problem found is reported with what it means: an edited event (its content no
longer matches its hash), a deleted one (a gap in `seq`, or a link to a hash that is not the
previous event's), or an inserted one (a link that does not match, without a gap).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from seaway.store.chain import GENESIS, event_hash

if TYPE_CHECKING:
    from seaway.project import Project

_BATCH = 5000


@dataclass
class ChainProblem:
    seq: int
    event_id: int
    problem: str  # edited | deleted | inserted | head
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "event_id": self.event_id,
            "problem": self.problem,
            "detail": self.detail,
        }


@dataclass
class ChainReport:
    events: int
    head: str
    problem: ChainProblem | None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "head": self.head,
            "problem": self.problem.to_dict() if self.problem else None,
        }


def verify_chain(project: Project, *, expected_head: str | None = None) -> ChainReport:
    from sqlalchemy import select

    from seaway.store.schema import events as ev

    prev_hash = GENESIS
    prev_seq = 0
    count = 0
    with project.metadata.read() as conn:
        while True:
            rows = conn.execute(
                select(ev).where(ev.c.seq > prev_seq).order_by(ev.c.seq).limit(_BATCH)
            ).all()
            if not rows:
                break
            for row in rows:
                count += 1
                problem = _check(row, prev_seq, prev_hash)
                if problem is not None:
                    return ChainReport(count, prev_hash, problem)
                prev_seq, prev_hash = row.seq, row.hash
    if expected_head is not None and expected_head != prev_hash:
        problem = ChainProblem(
            prev_seq,
            0,
            "head",
            f"the chain ends at {prev_hash[:16]}…, not at the head {expected_head[:16]}… "
            "recorded earlier: events after it were removed, or the log was rewritten",
        )
        return ChainReport(count, prev_hash, problem)
    return ChainReport(count, prev_hash, None)


def _check(row: Any, prev_seq: int, prev_hash: str) -> ChainProblem | None:
    recomputed = event_hash(
        seq=row.seq,
        ts=row.ts,
        kind=row.kind,
        actor=row.actor,
        subject=row.subject,
        data=row.data,
        prev_hash=row.prev_hash,
    )
    if row.seq != prev_seq + 1:
        missing = row.seq - prev_seq - 1
        return ChainProblem(
            row.seq,
            row.id,
            "deleted",
            f"{missing} event(s) before #{row.seq} are missing (after #{prev_seq})",
        )
    if row.prev_hash != prev_hash:
        if recomputed == row.hash:
            what, problem = "was inserted, or the event before it was replaced", "inserted"
        else:
            what, problem = "was edited or inserted", "edited"
        return ChainProblem(
            row.seq,
            row.id,
            problem,
            f"event #{row.seq} ({row.kind} {row.subject}) does not link to event "
            f"#{prev_seq}: it {what}",
        )
    if recomputed != row.hash:
        return ChainProblem(
            row.seq,
            row.id,
            "edited",
            f"event #{row.seq} ({row.kind} {row.subject}) was edited: its content no longer "
            "matches its hash",
        )
    return None
