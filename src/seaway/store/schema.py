"""Tables of the metadata database (SQLAlchemy Core).

The schema changes only through Alembic migrations in `migrations/versions`; bump
`SCHEMA_REVISION` to the newest migration whenever one is added, so that start-up can skip
importing Alembic when the database is already current.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

SCHEMA_REVISION = "0001"

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
    Index("ix_events_kind_ts", "kind", "ts"),
    Index("ix_events_subject", "subject"),
)
