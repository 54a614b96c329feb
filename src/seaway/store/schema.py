"""Tables of the metadata database (SQLAlchemy Core).

The schema changes only through Alembic migrations in `migrations/versions`; bump
`SCHEMA_REVISION` to the newest migration whenever one is added, so that start-up can skip
importing Alembic when the database is already current.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

SCHEMA_REVISION = "0003"

metadata = MetaData()

datasets = Table(
    "datasets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dataset_id", Integer, ForeignKey("datasets.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("tree_hash", String(64), nullable=False),
    Column("manifest_hash", String(64), nullable=False),
    Column("n_files", Integer, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sources", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("author", String(200), nullable=False),
    Column("message", Text, nullable=True),
    Column("check_status", String(20), nullable=False),
    Column("check_report", JSON, nullable=True),
    UniqueConstraint("dataset_id", "number", name="uq_dataset_versions_number"),
    Index("ix_dataset_versions_tree_hash", "tree_hash"),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("kind", String(100), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("subject", String(400), nullable=False),
    Column("data", JSON, nullable=True),
    # The hash chain (see seaway.store.chain): position, link to the previous event, own hash.
    Column("seq", Integer, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_events_kind_ts", "kind", "ts"),
    Index("ix_events_subject", "subject"),
    UniqueConstraint("seq", name="uq_events_seq"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("seq", Integer, nullable=False, unique=True),
    Column("name", String(200), nullable=True),
    Column("pipeline", String(200), nullable=True),
    Column("status", String(20), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("duration_s", Float, nullable=True),
    Column("author", String(200), nullable=False),
    Column("git_commit", String(64), nullable=True),
    Column("git_dirty", Boolean, nullable=True),
    Column("executor", String(20), nullable=True),
    Column("resumed_from", String(32), nullable=True),
    Column("error", Text, nullable=True),
    Column("environment", JSON, nullable=True),
    Column("lineage", JSON, nullable=True),
    Column("tags", JSON, nullable=True),
    Index("ix_runs_pipeline_started", "pipeline", "started_at"),
    Index("ix_runs_status", "status"),
    Index("ix_runs_started", "started_at"),
)

run_params = Table(
    "run_params",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_run_params_key_value", "key", "value"),
)

run_metrics = Table(
    "run_metrics",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.id"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Float, nullable=False),
    Column("step", Integer, nullable=False),
    Column("ts", Float, nullable=False),
    Index("ix_run_metrics_run_key_step", "run_id", "key", "step"),
)

# The last value of each metric of each run: what listings show and filters compare.
run_latest_metrics = Table(
    "run_latest_metrics",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Float, nullable=False),
    Column("step", Integer, nullable=False),
    Column("ts", Float, nullable=False),
    Index("ix_run_latest_metrics_key_value", "key", "value"),
)

run_artifacts = Table(
    "run_artifacts",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("name", String(500), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("kind", String(20), nullable=False),
)

run_steps = Table(
    "run_steps",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("step", String(200), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("cache_key", String(64), nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("duration_s", Float, nullable=True),
    Column("error", Text, nullable=True),
    Column("log_digest", String(64), nullable=True),
    Column("outputs", JSON, nullable=True),
    Column("metrics", JSON, nullable=True),
)

step_cache = Table(
    "step_cache",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("pipeline", String(200), nullable=False),
    Column("step", String(200), nullable=False),
    Column("outputs", JSON, nullable=False),
    Column("metrics", JSON, nullable=True),
    Column("run_id", String(32), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
