"""Recording a fully cached run with the standard library.

A rerun of an unchanged pipeline does no work: every step's key is in the step cache, so
the run is only its record. The runner writes records through RunStore (SQLAlchemy), whose
import alone costs more than all the rest of such a run, and it writes every step in a
transaction of its own. So when the metadata store is a local SQLite file at a schema
revision the data lane was checked against (`seaway.data.sqlite_lane.LANE_REVISIONS`; the
step cache's own connection is that lane), `record_cached_run` takes the run the runner has
already planned (the same keys, cache look-ups, params and lineage: nothing here
recomputes them) and, when every step is a cache hit, writes the rows `_Run.execute` would
write in one transaction with `sqlite3`:

- `runs`: the row as `RunStore.create_run` writes it, already finished (`succeeded`, its end
  and duration as `RunStore.finish` sets them), with the same environment, git state, tags
  and lineage;
- `run_params`, `run_steps` (status `cached`, the cache's outputs and metrics), `run_metrics`
  and `run_latest_metrics` (the cached metrics as `log_metrics` records them);
- when the pipeline registers a model: the `model` row of `run_artifacts` and the
  `seaway.registered` tag, exactly what `_Run._register` records when the version exists.

- the `run.finished` audit event, chained like every other (`append_event_sqlite`).

Values are stored in the
formats SQLAlchemy uses on SQLite (timestamps `YYYY-MM-DD HH:MM:SS.ffffff` UTC, JSON as
`json.dumps` text, booleans as 0/1); tests record runs both ways and compare the rows and
`seaway runs show --json`.

It answers None, and the runner runs the pipeline as usual, whenever it cannot record the
run exactly as the runner would: a step to run (changed code, params or data, `--force`),
another database, a schema revision not checked here (RUN_LANE_REVISIONS),
`SEAWAY_SQLALCHEMY_ONLY`, a model that is not registered yet, or a project where
registering checks an identity (`SEAWAY_TOKEN`, `SEAWAY_ROLES`, or API tokens in use:
`register_model` authorizes before it finds the existing version, and that check stays
with it). `--resume` and executors other than `local` never come here (run_pipeline
decides).
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from seaway.errors import StoreError, UsageError

if TYPE_CHECKING:
    from seaway.pipeline.runner import StepState, _Run
    from seaway.tracking.records import RunRecord

# The schema revisions (seaway.store.schema.SCHEMA_REVISION) whose runs, run_* and model
# tables these statements match (0003 has no model tables: a pipeline that registers steps
# aside there). Add a revision here only after checking that its migration leaves those
# tables as they are; the data lane's own check covers the step cache and datasets.
RUN_LANE_REVISIONS = frozenset({"0003", "0004", "0005", "0006", "0007"})
# The only executor run_pipeline sends here (a cached run starts none); recorded on the run.
EXECUTOR = "local"
REGISTERED_TAG = "seaway.registered"
_IDENTITY_ENV = ("SEAWAY_TOKEN", "SEAWAY_ROLES")


@dataclass(frozen=True)
class _Model:
    """The model row of run_artifacts and the version the run points at."""

    name: str
    digest: str
    size: int
    ref: str


def record_cached_run(run: _Run) -> RunRecord | None:
    """Record `run` (planned, not started) if every step is cached; None when the runner
    must run it. See the module docstring for what is written and when it steps aside."""
    lane = run.cache.lane
    if lane is None:
        return None
    states = list(run.steps.values())
    if not states or any(s.status != "cached" for s in states):
        return None
    revision = lane.conn.execute("SELECT version_num FROM alembic_version").fetchone()
    if revision is None or revision[0] not in RUN_LANE_REVISIONS:
        return None
    try:
        model = _registered_model(lane.conn, run)
        metrics = _metric_rows(run, states)
    except _StepAside:
        return None
    return _record(run, lane.conn, states, metrics, model)


class _StepAside(Exception):
    """Only the runner can record this run as it must be recorded."""


def _registered_model(conn: sqlite3.Connection, run: _Run) -> _Model | None:
    """The model the run records (None: nothing to record). Steps aside when only the
    runner can tell: the version does not exist yet, or registering checks an identity."""
    reg = run.plan.register
    if reg is None:
        return None
    state = run.steps.get(reg.from_step)
    out = state.outputs.get(reg.from_output) if state is not None else None
    if out is None:
        return None
    if any(os.environ.get(k, "").strip() for k in _IDENTITY_ENV):
        raise _StepAside
    # As _Run._register computes it: what `register_model` stores as `source_digest`.
    digest = out.digest if out.kind == "file" and out.digest else out.manifest_hash
    try:
        # With a token in use, local users hold no roles: `register` may be refused.
        if conn.execute("SELECT 1 FROM api_tokens WHERE revoked_at IS NULL LIMIT 1").fetchone():
            raise _StepAside
        # The lowest number, as register_model's own look-up answers.
        row = conn.execute(
            "SELECT v.number FROM model_versions v JOIN models m ON m.id = v.model_id "
            "WHERE m.name = ? AND v.source_digest = ? ORDER BY v.number LIMIT 1",
            (reg.model, digest),
        ).fetchone()
    except sqlite3.Error:
        raise _StepAside from None
    if row is None:
        raise _StepAside
    return _Model(reg.model, digest, int(out.size), f"{reg.model}@{row[0]}")


def _metric_rows(run: _Run, states: list[StepState]) -> list[tuple[str, float, int, float]]:
    """The cached steps' metrics as RunStore.log_metrics checks them. Steps aside if one
    would be refused: the runner then fails the run its own way."""
    from seaway.tracking.store import check_metric

    rows = []
    for state in states:
        for key, value, step, ts in run._metric_points(state):
            try:
                rows.append((*check_metric(key, value, step), float(ts)))
            except UsageError:
                raise _StepAside from None
    return rows


def _ts(value: datetime | None) -> str | None:
    # The text SQLAlchemy stores for DateTime on SQLite (every stored time is UTC).
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _record(
    run: _Run,
    conn: sqlite3.Connection,
    states: list[StepState],
    metrics: list[tuple[str, float, int, float]],
    model: _Model | None,
) -> RunRecord:
    from seaway._util import actor, utcnow
    from seaway.store.chain import append_event_sqlite
    from seaway.tracking.environment import environment, git_state
    from seaway.tracking.records import (
        TAG_HOST,
        TAG_PID,
        ArtifactRecord,
        RunRecord,
        hostname,
    )
    from seaway.tracking.store import (
        _latest_of,
        check_key,
        decode_param,
        encode_param,
        run_event_data,
    )

    project = run.project
    encoded = {check_key(k, "param"): encode_param(v) for k, v in run.params.items()}
    tags = {TAG_HOST: hostname(), TAG_PID: str(os.getpid())}
    if model is not None:
        tags[REGISTERED_TAG] = model.ref
    commit, dirty = git_state(project.root)
    env = environment(project.state_dir)
    lineage = run._lineage()
    steps = [run._step_record(s) for s in states]
    run_id = uuid.uuid4().hex
    started = utcnow()
    author = actor()
    latest = _latest_of(metrics)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM runs").fetchone()[0]
            ended = utcnow()
            duration = max(0.0, (ended - started).total_seconds())
            conn.execute(
                "INSERT INTO runs (id, seq, name, pipeline, status, started_at, ended_at, "
                "duration_s, author, git_commit, git_dirty, executor, resumed_from, error, "
                "environment, lineage, tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "?, ?, ?)",
                (
                    run_id,
                    seq,
                    None,
                    run.plan.name,
                    "succeeded",
                    _ts(started),
                    _ts(ended),
                    duration,
                    author,
                    commit,
                    None if dirty is None else int(dirty),
                    EXECUTOR,
                    None,
                    None,
                    json.dumps(env),
                    json.dumps(lineage),
                    json.dumps(tags),
                ),
            )
            conn.executemany(
                "INSERT INTO run_params (run_id, key, value) VALUES (?, ?, ?)",
                [(run_id, k, v) for k, v in encoded.items()],
            )
            conn.executemany(
                "INSERT INTO run_steps (run_id, step, status, cache_key, started_at, "
                "duration_s, error, log_digest, outputs, metrics) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        run_id,
                        s.step,
                        s.status,
                        s.cache_key,
                        _ts(s.started_at),
                        s.duration_s,
                        s.error,
                        s.log_digest,
                        json.dumps(s.outputs or {}),
                        json.dumps(s.metrics or {}),
                    )
                    for s in steps
                ],
            )
            if metrics:
                conn.executemany(
                    "INSERT INTO run_metrics (run_id, key, value, step, ts) VALUES (?, ?, ?, ?, ?)",
                    [(run_id, *m) for m in metrics],
                )
                conn.executemany(
                    "INSERT INTO run_latest_metrics (run_id, key, value, step, ts) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [(run_id, *m) for m in latest.values()],
                )
            if model is not None:
                conn.execute(
                    "INSERT INTO run_artifacts (run_id, name, digest, size, kind) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (run_id, model.name, model.digest, model.size, "model"),
                )
            append_event_sqlite(
                conn,
                ts=ended,
                ts_text=_ts(ended) or "",
                kind="run.finished",
                actor=author,
                subject=f"run:{run_id}",
                data=run_event_data(run.plan.name, None, seq, "succeeded", duration),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise StoreError(
            f"cannot record the run in the metadata database {project.metadata_url}: {exc}",
            hint="another seaway process may hold a long write; try again",
        ) from exc

    run.run_id, run.seq = run_id, seq
    run._emit("started", steps=tuple(run.dag.order))
    for state in states:
        run._emit("step", state)
    # What RunStore.get would read back: JSON values round-tripped, rows in its order.
    record = RunRecord(
        id=run_id,
        seq=seq,
        name=None,
        pipeline=run.plan.name,
        status="succeeded",
        started_at=started,
        ended_at=ended,
        duration_s=duration,
        author=author,
        git_commit=commit,
        git_dirty=dirty,
        executor=EXECUTOR,
        resumed_from=None,
        error=None,
        environment=json.loads(json.dumps(env)),
        lineage=json.loads(json.dumps(lineage)),
        tags=dict(tags),
        params={k: decode_param(encoded[k]) for k in sorted(encoded)},
        metrics={k: latest[k][1] for k in sorted(latest)},
        steps=sorted(steps, key=lambda s: s.step),
        artifacts=[]
        if model is None
        else [ArtifactRecord(model.name, model.digest, model.size, "model")],
    )
    for step in record.steps:
        step.outputs = json.loads(json.dumps(step.outputs))
        step.metrics = json.loads(json.dumps(step.metrics))
    run._emit("finished", status="succeeded", error=None)
    return record
