"""monitor: reference profiles of versions, drift and quality windows, feedback labels,
retraining triggers, alert deliveries and the monitor's cursors

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reference_profiles",
        sa.Column("model", sa.String(200), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("blob", sa.String(64), nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("source", sa.String(500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "monitor_windows",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_id", sa.Integer, nullable=False),
        sa.Column("last_id", sa.Integer, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("breached", sa.Boolean, nullable=False),
        sa.Column("figures", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_monitor_windows_model", "monitor_windows", ["model", "kind", "id"])
    op.create_table(
        "monitor_cursors",
        sa.Column("name", sa.String(300), primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("state", sa.JSON, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("route", sa.String(20), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("log_id", sa.Integer, nullable=False),
        sa.Column("key", sa.String(200), nullable=True),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
    )
    op.create_index("ix_feedback_model_id", "feedback", ["model", "id"])
    op.create_index("ix_feedback_version", "feedback", ["model", "number", "ts"])
    # One label per logged answer: the duplicate check, and a race between two posts.
    op.create_index("ix_feedback_log", "feedback", ["log_id"], unique=True)
    # Feedback by key finds the newest logged request with that key.
    op.create_index("ix_request_log_key", "request_log", ["key"])
    op.create_table(
        "triggers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("pipeline", sa.String(200), nullable=True),
        sa.Column("environment", sa.String(200), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("windows", sa.JSON, nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("commit", sa.String(64), nullable=True),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("details", sa.JSON, nullable=False),
    )
    op.create_index("ix_triggers_model", "triggers", ["model", "id"])
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_seq", sa.Integer, nullable=False),
        sa.Column("url", sa.String(1000), nullable=False),
        sa.Column("kind", sa.String(100), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("event_seq", "url", name="uq_alert_deliveries_event_url"),
    )
    op.create_index("ix_alert_deliveries_due", "alert_deliveries", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_request_log_key", "request_log")
    op.drop_table("alert_deliveries")
    op.drop_table("triggers")
    op.drop_table("feedback")
    op.drop_table("monitor_cursors")
    op.drop_table("monitor_windows")
    op.drop_table("reference_profiles")
