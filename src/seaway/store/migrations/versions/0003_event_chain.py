"""chain the event log: seq, prev_hash, hash

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from seaway.store.chain import GENESIS, event_hash

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("seq", sa.Integer, nullable=True))
        batch.add_column(sa.Column("prev_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("hash", sa.String(64), nullable=True))

    # Chain the events already recorded, in the order they were written.
    conn = op.get_bind()
    events = sa.table(
        "events",
        sa.column("id", sa.Integer),
        sa.column("ts", sa.DateTime(timezone=True)),
        sa.column("kind", sa.String),
        sa.column("actor", sa.String),
        sa.column("subject", sa.String),
        sa.column("data", sa.JSON),
        sa.column("seq", sa.Integer),
        sa.column("prev_hash", sa.String),
        sa.column("hash", sa.String),
    )
    prev = GENESIS
    rows = conn.execute(sa.select(events).order_by(events.c.id)).all()
    for seq, row in enumerate(rows, start=1):
        digest = event_hash(
            seq=seq,
            ts=row.ts,
            kind=row.kind,
            actor=row.actor,
            subject=row.subject,
            data=row.data,
            prev_hash=prev,
        )
        conn.execute(
            events.update()
            .where(events.c.id == row.id)
            .values(seq=seq, prev_hash=prev, hash=digest)
        )
        prev = digest

    with op.batch_alter_table("events") as batch:
        batch.alter_column("seq", existing_type=sa.Integer, nullable=False)
        batch.alter_column("prev_hash", existing_type=sa.String(64), nullable=False)
        batch.alter_column("hash", existing_type=sa.String(64), nullable=False)
        batch.create_unique_constraint("uq_events_seq", ["seq"])


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_constraint("uq_events_seq", type_="unique")
        batch.drop_column("hash")
        batch.drop_column("prev_hash")
        batch.drop_column("seq")
