"""gitops: rollouts (the rollout state machines' durable state) and what each environment
last synced

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("environment", sa.String(200), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("stable", sa.Integer, nullable=True),
        sa.Column("candidate", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("strategy", sa.JSON, nullable=False),
        sa.Column("phase", sa.String(20), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("step_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("git_revision", sa.String(64), nullable=True),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("state", sa.JSON, nullable=False),
    )
    op.create_index("ix_rollouts_env_model", "rollouts", ["environment", "model", "id"])
    op.create_table(
        "sync_state",
        sa.Column("environment", sa.String(200), primary_key=True),
        sa.Column("git_revision", sa.String(64), nullable=True),
        sa.Column("models", sa.JSON, nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sync_state")
    op.drop_table("rollouts")
