"""Aliases: movable names on versions (champion, challenger), with their full history.

`model_aliases` holds where each alias points now; `alias_history` gets a row for every
move or removal, written in the same transaction as the move and its audit event, so "which
version was champion at 14:05 last Tuesday" has one exact answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from seaway._util import as_utc, isoformat, utcnow
from seaway.errors import NotFound
from seaway.registry.versions import check_alias, fetch_version, model_row, parse_ref

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from seaway.project import Project


@dataclass
class AliasMove:
    model: str
    alias: str
    number: int | None  # None: the alias was removed
    previous: int | None
    at: datetime
    actor: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "alias": self.alias,
            "version": self.number,
            "previous": self.previous,
            "at": isoformat(self.at),
            "actor": self.actor,
        }


def _move(
    conn: Connection, model_id: int, model: str, alias: str, number: int | None, actor: str
) -> AliasMove:
    from sqlalchemy import select

    from seaway.store.events import record_event
    from seaway.store.schema import alias_history, model_aliases

    ma = model_aliases
    previous = conn.execute(
        select(ma.c.number).where(ma.c.model_id == model_id, ma.c.alias == alias)
    ).scalar()
    now = utcnow()
    if number is None:
        if previous is None:
            raise NotFound(f"model {model!r} has no alias {alias!r}")
        conn.execute(ma.delete().where(ma.c.model_id == model_id, ma.c.alias == alias))
    elif previous is None:
        conn.execute(
            ma.insert().values(
                model_id=model_id, alias=alias, number=number, updated_at=now, actor=actor
            )
        )
    else:
        conn.execute(
            ma.update()
            .where(ma.c.model_id == model_id, ma.c.alias == alias)
            .values(number=number, updated_at=now, actor=actor)
        )
    conn.execute(
        alias_history.insert().values(
            model_id=model_id, alias=alias, number=number, ts=now, actor=actor
        )
    )
    subject = f"model:{model}@{number}" if number is not None else f"model:{model}"
    record_event(
        conn,
        "model.alias" if number is not None else "model.alias_removed",
        subject,
        {"alias": alias, "version": number, "previous": previous},
        actor=actor,
    )
    return AliasMove(model, alias, number, previous, now, actor)


def set_alias(project: Project, ref: str, alias: str) -> AliasMove:
    """Point `alias` at the version `ref` names (moving it from wherever it was)."""
    from seaway.policy.identity import authorize

    check_alias(alias)
    identity = authorize(project, "alias")

    def write(conn: Connection) -> AliasMove:
        version = fetch_version(conn, ref)
        return _move(conn, version.model_id, version.model, alias, version.number, identity.name)

    return project.metadata.run_write(write)


def remove_alias(project: Project, name: str, alias: str) -> AliasMove:
    from seaway.policy.identity import authorize

    check_alias(alias)
    identity = authorize(project, "alias")

    def write(conn: Connection) -> AliasMove:
        model = model_row(conn, name)
        return _move(conn, model.id, name, alias, None, identity.name)

    return project.metadata.run_write(write)


def alias_history(project: Project, ref: str, *, at: datetime | None = None) -> list[AliasMove]:
    """Every move of the alias in `NAME@ALIAS`, oldest first; with `at`, only the move in
    force at that time (an empty list: the alias pointed nowhere then)."""
    from datetime import UTC

    from sqlalchemy import select

    from seaway.store.schema import alias_history as ah

    name, alias = parse_ref(ref)
    if alias is None or alias.isdigit():
        from seaway.errors import UsageError

        raise UsageError(
            f"{ref!r} names no alias", hint="write NAME@ALIAS, for example churn@champion"
        )
    if at is not None and at.tzinfo is None:
        at = at.astimezone(UTC)
    with project.metadata.read() as conn:
        model = model_row(conn, name)
        query = select(ah).where(ah.c.model_id == model.id, ah.c.alias == alias)
        if at is not None:
            query = query.where(ah.c.ts <= at).order_by(ah.c.ts.desc(), ah.c.id.desc()).limit(1)
        else:
            query = query.order_by(ah.c.ts, ah.c.id)
        rows = list(conn.execute(query))
        moves = []
        previous: int | None = None
        for r in rows:
            moves.append(AliasMove(name, alias, r.number, previous, as_utc(r.ts), r.actor))
            previous = r.number
        if at is not None and moves and moves[0].number is None:
            return []
        return moves
