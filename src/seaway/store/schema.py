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

SCHEMA_REVISION = "0007"

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

# The model registry (migration 0004). A version is keyed by (model_id, number); its files
# are a manifest blob like a dataset version's, and `digest` is their Merkle root.
models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("description", Text, nullable=True),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("manifest_hash", String(64), nullable=False),
    # What was handed to `register` (a file digest or a step output's manifest hash), before
    # any conversion: registering the same thing again finds the version without re-reading it.
    Column("source_digest", String(64), nullable=True),
    Column("flavor", String(50), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("n_files", Integer, nullable=False),
    Column("io_schema", JSON, nullable=True),
    Column("metrics", JSON, nullable=True),
    Column("lineage", JSON, nullable=True),
    Column("run_id", String(32), nullable=True),
    Column("author", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("scan_verdict", String(20), nullable=False),
    Column("scan_report", JSON, nullable=True),
    Column("meta", JSON, nullable=True),
    Column("description", Text, nullable=True),
    UniqueConstraint("model_id", "number", name="uq_model_versions_number"),
    Index("ix_model_versions_digest", "digest"),
    Index("ix_model_versions_run", "run_id"),
    Index("ix_model_versions_source", "model_id", "source_digest"),
)

# Where each alias points now; `alias_history` keeps every move (number NULL: removed).
model_aliases = Table(
    "model_aliases",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id"), primary_key=True),
    Column("alias", String(100), primary_key=True),
    Column("number", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
)

alias_history = Table(
    "alias_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("alias", String(100), nullable=False),
    Column("number", Integer, nullable=True),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Index("ix_alias_history_model_alias_ts", "model_id", "alias", "ts"),
)

model_signatures = Table(
    "model_signatures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("bundle_digest", String(64), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("method", String(20), nullable=False),
    Column("signer", String(200), nullable=False),
    Column("signed_at", DateTime(timezone=True), nullable=False),
    Index("ix_model_signatures_version", "model_id", "number"),
)

gate_reports = Table(
    "gate_reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("report", JSON, nullable=False),
    Index("ix_gate_reports_version", "model_id", "number", "created_at"),
)

approvals = Table(
    "approvals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("environment", String(100), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("role", String(100), nullable=False),
    Column("comment", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_approvals_version_env", "model_id", "number", "environment"),
)

# API tokens: only a hash of the secret is kept; the secret is shown once, at creation.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("roles", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
)

# The gateway's routing table (migration 0005): which versions serve, with what share of
# traffic, mirrored to which shadows. `routing_state.revision` goes up with every change in
# the same transaction, so gateways notice a change by reading one integer.
deployments = Table(
    "deployments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(200), nullable=False),
    Column("number", Integer, nullable=False),
    Column("weight", Float, nullable=False),
    Column("shadow", Float, nullable=False),
    Column("batching", JSON, nullable=True),
    Column("scale", JSON, nullable=True),
    Column("require_signature", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    UniqueConstraint("model", "number", name="uq_deployments_model_number"),
)

routing_state = Table(
    "routing_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("revision", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Per-version live figures a gateway flushes every few seconds, for rollout analysis.
live_stats = Table(
    "live_stats",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("gateway", String(64), nullable=False),
    Column("model", String(200), nullable=False),
    Column("number", Integer, nullable=False),
    Column("route", String(20), nullable=False),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("window_end", DateTime(timezone=True), nullable=False),
    Column("requests", Integer, nullable=False),
    Column("errors", Integer, nullable=False),
    Column("figures", JSON, nullable=False),
    Index("ix_live_stats_version_end", "model", "number", "window_end"),
)

# A sampled log of requests and predictions, for drift monitoring and joining labels later.
request_log = Table(
    "request_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("model", String(200), nullable=False),
    Column("number", Integer, nullable=False),
    Column("route", String(20), nullable=False),
    Column("key", String(200), nullable=True),
    Column("inputs", JSON, nullable=True),
    Column("outputs", JSON, nullable=True),
    Column("latency_ms", Float, nullable=False),
    Column("status", Integer, nullable=False),
    Index("ix_request_log_model_ts", "model", "ts"),
    Index("ix_request_log_request_id", "request_id"),
    # Added by migration 0007, for feedback posted by key.
    Index("ix_request_log_key", "key"),
)

# GitOps (migration 0006): one row per rollout, the state machine's durable state, so a
# restarted controller resumes at the right step; and what each environment last synced.
rollouts = Table(
    "rollouts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("environment", String(200), nullable=False),
    Column("model", String(200), nullable=False),
    Column("stable", Integer, nullable=True),
    Column("candidate", Integer, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("strategy", JSON, nullable=False),
    Column("phase", String(20), nullable=False),
    Column("step", Integer, nullable=False),
    Column("step_started_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("git_revision", String(64), nullable=True),
    Column("message", Text, nullable=True),
    Column("state", JSON, nullable=False),
    Index("ix_rollouts_env_model", "environment", "model", "id"),
)

sync_state = Table(
    "sync_state",
    metadata,
    Column("environment", String(200), primary_key=True),
    Column("git_revision", String(64), nullable=True),
    Column("models", JSON, nullable=False),
    Column("synced_at", DateTime(timezone=True), nullable=False),
    Column("status", String(20), nullable=False),
)

# Monitoring (migration 0007). A version's reference profile (a seaway.stats Profile as a
# JSON blob) is what live windows are compared with, so scoring never reloads training data.
reference_profiles = Table(
    "reference_profiles",
    metadata,
    Column("model", String(200), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("blob", String(64), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("source", String(500), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# One row per scored window: kind "drift" (request_log ids first_id..last_id against the
# reference) or "quality" (feedback ids first_id..last_id); score is the largest PSI or the
# quality metric; figures holds the per-feature statistics.
monitor_windows = Table(
    "monitor_windows",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(200), nullable=False),
    Column("number", Integer, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("window_end", DateTime(timezone=True), nullable=False),
    Column("first_id", Integer, nullable=False),
    Column("last_id", Integer, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("score", Float, nullable=True),
    Column("breached", Boolean, nullable=False),
    Column("figures", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_monitor_windows_model", "model", "kind", "id"),
)

# Where each reader of an append-only table stopped (the drift window of a model, the alert
# dispatcher), with what it carries over (a partly filled window).
monitor_cursors = Table(
    "monitor_cursors",
    metadata,
    Column("name", String(300), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("state", JSON, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# True labels posted after the fact, joined at arrival to the logged prediction they judge.
feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("model", String(200), nullable=False),
    Column("number", Integer, nullable=False),
    Column("route", String(20), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("log_id", Integer, nullable=False),
    Column("key", String(200), nullable=True),
    Column("labels", JSON, nullable=False),
    Column("actor", String(200), nullable=False),
    Index("ix_feedback_model_id", "model", "id"),
    Index("ix_feedback_version", "model", "number", "ts"),
    Index("ix_feedback_log", "log_id", unique=True),
)

# A retraining trigger and every hop it took (snapshot, run, register, gates, promote).
triggers = Table(
    "triggers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(200), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("status", String(30), nullable=False),
    Column("pipeline", String(200), nullable=True),
    Column("environment", String(200), nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("windows", JSON, nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("version", Integer, nullable=True),
    Column("commit", String(64), nullable=True),
    Column("message", Text, nullable=True),
    Column("details", JSON, nullable=False),
    Index("ix_triggers_model", "model", "id"),
)

# Webhook notifications owed for events, retried with backoff until delivered or given up.
alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_seq", Integer, nullable=False),
    Column("url", String(1000), nullable=False),
    Column("kind", String(100), nullable=False),
    Column("body", JSON, nullable=False),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_error", Text, nullable=True),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("event_seq", "url", name="uq_alert_deliveries_event_url"),
    Index("ix_alert_deliveries_due", "status", "next_attempt_at"),
)
