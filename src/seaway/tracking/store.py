"""The run store: runs, params, metrics, tags, artifacts and steps in the metadata database.

Everything is SQLAlchemy Core over MetadataStore and works the same on SQLite and
PostgreSQL. Writes are small transactions: creating a run is one, and a batch of buffered
params, metrics and tags (optionally with the run's end) is one more. `run_latest_metrics`
is kept in the same transaction as the metrics it summarises, so listings and filters never
see a metric without its latest value.

Params are stored as JSON text, so `1`, `1.0`, `"1"` and `true` stay distinct and come back
with their types. Like MLflow, a param logged twice must keep its value.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from seaway._util import actor, as_utc, utcnow
from seaway.errors import NotFound, UsageError
from seaway.tracking.db import Session
from seaway.tracking.records import (
    ARTIFACT_KINDS,
    FINAL_STATUSES,
    STEP_STATUSES,
    TAG_HOST,
    TAG_PID,
    ArtifactRecord,
    MetricPoint,
    RunRecord,
    RunSummary,
    StepRecord,
    hostname,
)
from seaway.tracking.sql import Statements, statements

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from seaway.project import Project

MAX_KEY = 250
_PREFIX_MIN = 4
_HEX = re.compile(r"[0-9a-f]+")
_HINT = "`seaway runs` lists them"

Metric = tuple[str, float, int, float]  # key, value, step, ts


# -- value encoding -------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError):
            pass
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    return str(value)


def encode_param(value: Any) -> str:
    """The stored text of a param value: canonical JSON (values JSON cannot hold: str())."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_json_default)


def decode_param(text: str) -> Any:
    # Listings decode thousands of params: plain strings and numbers skip the JSON parser.
    first = text[:1]
    if first == '"' and "\\" not in text:
        return text[1:-1]
    if first.isdigit() or first == "-":
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                pass
    try:
        return json.loads(text)
    except ValueError:
        return text


def check_key(key: Any, what: str) -> str:
    if not isinstance(key, str) or not key:
        raise UsageError(f"{what} names must be non-empty strings, got {key!r}")
    if len(key) > MAX_KEY:
        raise UsageError(f"{what} name {key[:40]!r}… is longer than {MAX_KEY} characters")
    return key


def check_metric(key: Any, value: Any, step: Any) -> tuple[str, float, int]:
    check_key(key, "metric")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"metric {key!r} must be a number, got {value!r}") from None
    if math.isnan(number):
        # SQLite cannot store NaN (it becomes NULL); refusing it keeps both databases alike.
        raise UsageError(
            f"metric {key!r} is NaN",
            hint="log a finite number (or ±inf); NaN usually means training diverged",
        )
    if step is None:  # MLflow's default, accepted so that its call sites work unchanged
        step = 0
    elif isinstance(step, bool) or not isinstance(step, int):
        try:
            step = int(step)
        except (TypeError, ValueError):
            raise UsageError(f"metric {key!r}: step must be an integer, got {step!r}") from None
    return key, number, step


# -- rows -------------------------------------------------------------------------------


def _common_fields(row: Any) -> dict[str, Any]:
    """The columns of `runs` that summaries and full records share."""
    return {
        "id": row.id,
        "seq": row.seq,
        "name": row.name,
        "pipeline": row.pipeline,
        "status": row.status,
        "started_at": as_utc(row.started_at),
        "ended_at": as_utc(row.ended_at),
        "duration_s": row.duration_s,
    }


def _summary_from_row(row: Any) -> RunSummary:
    return RunSummary(**_common_fields(row), tags=dict(row.tags or {}))


def _step_from_row(row: Any) -> StepRecord:
    return StepRecord(
        step=row.step,
        status=row.status,
        cache_key=row.cache_key,
        started_at=as_utc(row.started_at),
        duration_s=row.duration_s,
        error=row.error,
        log_digest=row.log_digest,
        outputs=dict(row.outputs or {}),
        metrics=dict(row.metrics or {}),
    )


def _sql(conn: Connection) -> Statements:
    return statements(conn.dialect.name)


def _latest_of(metrics: Sequence[Metric]) -> dict[str, Metric]:
    """Per key, the value with the highest step; ties go to the later ts, then to the one
    logged last."""
    best: dict[str, Metric] = {}
    for m in metrics:
        old = best.get(m[0])
        if old is None or (m[2], m[3]) >= (old[2], old[3]):
            best[m[0]] = m
    return best


# -- writes inside a transaction ----------------------------------------------------------


def _insert_params(conn: Connection, run_id: str, params: Mapping[str, str]) -> None:
    """Insert encoded params, refusing a key whose stored value differs."""
    from sqlalchemy import select

    from seaway.store.schema import run_params

    if not params:
        return
    # All of the run's params rather than `key IN (…)`: a run has few, and an IN list is
    # compiled anew for every length.
    existing = dict(
        conn.execute(
            select(run_params.c.key, run_params.c.value).where(run_params.c.run_id == run_id)
        ).all()
    )
    for key, old in existing.items():
        if key in params and old != params[key]:
            raise UsageError(
                f"param {key!r} of run {run_id[:8]} is already {old}; cannot change it to "
                f"{params[key]}",
                hint="params are fixed once logged; log the new value under another name "
                "or start a new run",
            )
    new = [{"run_id": run_id, "key": k, "value": v} for k, v in params.items() if k not in existing]
    if new:
        conn.execute(_sql(conn).insert_params, new)


def _insert_metrics(conn: Connection, run_id: str, metrics: Sequence[Metric]) -> None:
    if not metrics:
        return
    sql = _sql(conn)
    conn.execute(
        sql.insert_metrics,
        [{"run_id": run_id, "key": k, "value": v, "step": s, "ts": t} for k, v, s, t in metrics],
    )
    # One row per key: PostgreSQL refuses an upsert that touches a row twice.
    latest = [
        {"run_id": run_id, "key": k, "value": v, "step": s, "ts": t}
        for k, v, s, t in _latest_of(metrics).values()
    ]
    conn.execute(sql.upsert_latest, latest)


def _merge_tags(conn: Connection, run_id: str, tags: Mapping[str, str]) -> None:
    from sqlalchemy import select

    from seaway.store.schema import runs

    if not tags:
        return
    row = conn.execute(select(runs.c.tags).where(runs.c.id == run_id).with_for_update()).first()
    if row is None:
        raise _unknown_run_id(run_id)
    merged = {**(row.tags or {}), **tags}
    conn.execute(_sql(conn).set_tags, {"b_id": run_id, "b_tags": merged})


def _finish(
    conn: Connection,
    run_id: str,
    status: str,
    error: str | None,
    started_at: datetime | None = None,
) -> None:
    from sqlalchemy import select

    from seaway.store.schema import runs

    if started_at is None:
        found = conn.execute(select(runs.c.started_at).where(runs.c.id == run_id)).scalar()
        if found is None:
            raise _unknown_run_id(run_id)
        started_at = as_utc(found)
    assert started_at is not None
    ended = utcnow()
    result = conn.execute(
        _sql(conn).finish,
        {
            "b_id": run_id,
            "b_status": status,
            "b_ended_at": ended,
            "b_duration_s": max(0.0, (ended - started_at).total_seconds()),
            "b_error": error,
        },
    )
    if result.rowcount == 0:
        raise _unknown_run_id(run_id)
    _record_finished(conn, run_id)


def run_event_data(
    pipeline: str | None, name: str | None, seq: int, status: str, duration_s: float | None
) -> dict[str, Any]:
    """The `run.finished` event's data, shared with the pipeline's SQLite lane."""
    return {
        "seq": seq,
        "pipeline": pipeline,
        "name": name,
        "status": status,
        "duration_s": None if duration_s is None else round(duration_s, 3),
    }


def _record_finished(conn: Connection, run_id: str) -> None:
    from sqlalchemy import select

    from seaway.store.events import record_event
    from seaway.store.schema import runs

    row = conn.execute(
        select(runs.c.pipeline, runs.c.name, runs.c.seq, runs.c.status, runs.c.duration_s).where(
            runs.c.id == run_id
        )
    ).one()
    record_event(
        conn,
        "run.finished",
        f"run:{run_id}",
        run_event_data(row.pipeline, row.name, row.seq, row.status, row.duration_s),
    )


def _unknown_run_id(run_id: str) -> NotFound:
    return NotFound(f"no run {run_id}", hint=_HINT)


def _check_status(status: str) -> str:
    if status not in FINAL_STATUSES:
        raise UsageError(
            f"a run ends as one of {', '.join(FINAL_STATUSES)}, not {status!r}",
        )
    return status


def _clean_tags(tags: Mapping[str, Any]) -> dict[str, str]:
    return {check_key(k, "tag"): str(v) for k, v in tags.items()}


# -- the store ------------------------------------------------------------------------------


class RunStore:
    """Runs of one project. Cheap to create; keep one per process for best speed (it holds
    one SQLite connection per thread that uses it)."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._session = Session(project.metadata)

    def close(self) -> None:
        self._session.close()

    def _write(self, fn: Callable[[Connection], Any]) -> Any:
        from sqlalchemy.exc import IntegrityError

        try:
            return self._session.write(fn)
        except IntegrityError as exc:
            # A foreign key failure: the run id names no run.
            if "foreign key" in str(exc.orig).lower():
                raise NotFound("no such run", hint=_HINT) from None
            raise

    # -- writing --------------------------------------------------------------------------

    def create_run(
        self,
        *,
        name: str | None = None,
        pipeline: str | None = None,
        params: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        lineage: dict[str, Any] | None = None,
        executor: str | None = None,
        resumed_from: str | None = None,
        capture_environment: bool = True,
    ) -> RunRecord:
        """Record a new run, status `running`, numbered after the newest one."""
        import os

        from sqlalchemy import func, select

        from seaway.store.schema import runs
        from seaway.tracking.environment import environment, git_state

        encoded = {check_key(k, "param"): encode_param(v) for k, v in (params or {}).items()}
        all_tags = {TAG_HOST: hostname(), TAG_PID: str(os.getpid()), **_clean_tags(tags or {})}
        commit, dirty = git_state(self.project.root) if capture_environment else (None, None)
        env = environment(self.project.state_dir) if capture_environment else {}
        run_id = uuid.uuid4().hex
        started = utcnow()
        author = actor()
        values = {
            "id": run_id,
            "name": name,
            "pipeline": pipeline,
            "status": "running",
            "started_at": started,
            "author": author,
            "git_commit": commit,
            "git_dirty": dirty,
            "executor": executor,
            "resumed_from": resumed_from,
            "environment": env,
            "lineage": lineage or {},
            "tags": all_tags,
        }

        def create(conn: Connection) -> int:
            # Two writers may read the same maximum (PostgreSQL): the unique seq makes the
            # second insert fail, and the retry reads the new maximum.
            newest = conn.execute(select(func.max(runs.c.seq))).scalar()
            seq = (newest or 0) + 1
            sql = _sql(conn)
            conn.execute(sql.insert_run, {**values, "seq": seq})
            if encoded:
                conn.execute(
                    sql.insert_params,
                    [{"run_id": run_id, "key": k, "value": v} for k, v in encoded.items()],
                )
            return seq

        seq = self._session.write(create)
        return RunRecord(
            id=run_id,
            seq=seq,
            name=name,
            pipeline=pipeline,
            status="running",
            started_at=started,
            author=author,
            git_commit=commit,
            git_dirty=dirty,
            executor=executor,
            resumed_from=resumed_from,
            environment=env,
            lineage=lineage or {},
            tags=all_tags,
            params={k: decode_param(v) for k, v in encoded.items()},
        )

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        encoded = {check_key(k, "param"): encode_param(v) for k, v in params.items()}
        self._write(lambda conn: _insert_params(conn, run_id, encoded))

    def log_metrics(self, run_id: str, metrics: Sequence[tuple[str, float, int, float]]) -> None:
        """Append metric points (key, value, step, ts) and update the latest values."""
        rows = [(*check_metric(k, v, s), float(t)) for k, v, s, t in metrics]
        self._write(lambda conn: _insert_metrics(conn, run_id, rows))

    def log_artifact(self, run_id: str, name: str, digest: str, size: int, kind: str) -> None:
        """Record (or replace) an artifact whose blob is already in the blob store."""
        from seaway.store.hashing import is_digest

        if kind not in ARTIFACT_KINDS:
            raise UsageError(
                f"unknown artifact kind {kind!r}", hint="use " + ", ".join(ARTIFACT_KINDS)
            )
        if not name or len(name) > 500:
            raise UsageError(f"bad artifact name {name!r}", hint="1 to 500 characters")
        if not is_digest(digest):
            raise UsageError(f"not a BLAKE3 digest: {digest!r}")
        row = {"run_id": run_id, "name": name, "digest": digest, "size": int(size), "kind": kind}

        self._write(lambda conn: conn.execute(_sql(conn).upsert_artifact, row))

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        cleaned = _clean_tags(tags)
        self._write(lambda conn: _merge_tags(conn, run_id, cleaned))

    def record_step(self, run_id: str, step: StepRecord) -> None:
        """Insert or replace the record of one step of the run."""

        if step.status not in STEP_STATUSES:
            raise UsageError(
                f"unknown step status {step.status!r}", hint="use " + ", ".join(STEP_STATUSES)
            )
        row = {
            "run_id": run_id,
            "step": step.step,
            "status": step.status,
            "cache_key": step.cache_key,
            "started_at": step.started_at,
            "duration_s": step.duration_s,
            "error": step.error,
            "log_digest": step.log_digest,
            "outputs": step.outputs or {},
            "metrics": step.metrics or {},
        }

        self._write(lambda conn: conn.execute(_sql(conn).upsert_step, row))

    def finish(self, run_id: str, status: str, error: str | None = None) -> None:
        _check_status(status)
        self._write(lambda conn: _finish(conn, run_id, status, error))

    def log_batch(
        self,
        run_id: str,
        *,
        params: Mapping[str, str] | None = None,
        metrics: Sequence[Metric] | None = None,
        tags: Mapping[str, str] | None = None,
        status: str | None = None,
        error: str | None = None,
        started_at: datetime | None = None,
    ) -> None:
        """One transaction: already encoded params, checked metrics, tags and, when `status`
        is given, the run's end. The fluent API's buffer flushes through this."""
        if status is not None:
            _check_status(status)

        def write(conn: Connection) -> None:
            _insert_params(conn, run_id, params or {})
            _insert_metrics(conn, run_id, metrics or ())
            _merge_tags(conn, run_id, tags or {})
            if status is not None:
                _finish(conn, run_id, status, error, started_at)

        self._write(write)

    # -- reading --------------------------------------------------------------------------

    def resolve(self, ref: str) -> str:
        """The id of the run `ref` names: a full id, an id prefix of 4+ hex characters, a
        number (`12` or `#12`), or a run name (its newest run)."""
        return str(self._session.read(lambda conn: _resolve(conn, ref)))

    def get(self, ref: str) -> RunRecord:
        def load(conn: Connection) -> RunRecord:
            return _load_run(conn, _resolve(conn, ref))

        return self._session.read(load)

    def metric_history(self, ref: str, key: str | None = None) -> list[MetricPoint]:
        """Every logged point of the run's metrics (or of one key), by key, step and ts."""
        from sqlalchemy import select

        from seaway.store.schema import run_metrics as rm

        def load(conn: Connection) -> list[MetricPoint]:
            run_id = _resolve(conn, ref)
            query = (
                select(rm.c.key, rm.c.value, rm.c.step, rm.c.ts)
                .where(rm.c.run_id == run_id)
                .order_by(rm.c.key, rm.c.step, rm.c.ts, rm.c.id)
            )
            if key is not None:
                query = query.where(rm.c.key == key)
            return [MetricPoint(*row) for row in conn.execute(query)]

        return self._session.read(load)

    def search(self, **kwargs: Any) -> list[RunSummary]:
        """Runs matching filters; see seaway.tracking.search.search_runs for the arguments."""
        from seaway.tracking.search import search_runs

        return search_runs(self.project, **kwargs)


# -- lookups -----------------------------------------------------------------------------------


def _resolve(conn: Connection, ref: str) -> str:
    from sqlalchemy import func, select

    from seaway.store.schema import runs

    text = ref.strip()
    if text.startswith("#"):
        number = text[1:]
        if not number.isdigit():
            raise UsageError(f"bad run number {ref!r}", hint="write #N, e.g. #12")
        return _by_seq(conn, int(number), ref)
    if text.isdigit():
        found = conn.execute(select(runs.c.id).where(runs.c.seq == int(text))).scalar()
        if found is not None:
            return str(found)
        if len(text) < _PREFIX_MIN:
            return _by_seq(conn, int(text), ref)
    lowered = text.lower()
    if len(lowered) >= _PREFIX_MIN and _HEX.fullmatch(lowered) and len(lowered) <= 32:
        # A range on the primary key uses its index on both databases (LIKE may not).
        rows = conn.execute(
            select(runs.c.id).where(runs.c.id >= lowered, runs.c.id <= lowered + "z").limit(2)
        ).all()
        if len(rows) == 1:
            return str(rows[0].id)
        if len(rows) > 1:
            raise UsageError(
                f"run id prefix {text!r} matches several runs", hint="give more characters"
            )
    if not text:
        raise UsageError("empty run reference", hint="give a run id, #N or a run name")
    found = conn.execute(
        select(runs.c.id).where(runs.c.name == text).order_by(runs.c.seq.desc()).limit(1)
    ).scalar()
    if found is not None:
        return str(found)
    newest = conn.execute(select(func.max(runs.c.seq))).scalar()
    if newest is None:
        raise NotFound(f"no run {ref!r}: this project has no runs yet")
    names = [
        n
        for n in conn.execute(
            select(runs.c.name)
            .where(runs.c.name.is_not(None))
            .group_by(runs.c.name)
            .order_by(func.max(runs.c.seq).desc())
            .limit(1000)
        ).scalars()
    ]
    import difflib

    close = difflib.get_close_matches(text, names, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"runs are #1..#{newest}; {_HINT}"
    raise NotFound(f"no run {ref!r}", hint=hint)


def _by_seq(conn: Connection, seq: int, ref: str) -> str:
    from sqlalchemy import func, select

    from seaway.store.schema import runs

    found = conn.execute(select(runs.c.id).where(runs.c.seq == seq)).scalar()
    if found is not None:
        return str(found)
    newest = conn.execute(select(func.max(runs.c.seq))).scalar()
    known = f"runs are #1..#{newest}" if newest else "this project has no runs yet"
    raise NotFound(f"no run {ref!r} ({known})", hint=_HINT)


def _load_run(conn: Connection, run_id: str) -> RunRecord:
    from sqlalchemy import select

    from seaway.store.schema import run_artifacts, run_latest_metrics, run_params, run_steps, runs

    row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
    if row is None:
        raise _unknown_run_id(run_id)
    params = {
        k: decode_param(v)
        for k, v in conn.execute(
            select(run_params.c.key, run_params.c.value)
            .where(run_params.c.run_id == run_id)
            .order_by(run_params.c.key)
        )
    }
    metrics = {
        k: v
        for k, v in conn.execute(
            select(run_latest_metrics.c.key, run_latest_metrics.c.value)
            .where(run_latest_metrics.c.run_id == run_id)
            .order_by(run_latest_metrics.c.key)
        )
    }
    artifacts = [
        ArtifactRecord(a.name, a.digest, a.size, a.kind)
        for a in conn.execute(
            select(run_artifacts)
            .where(run_artifacts.c.run_id == run_id)
            .order_by(run_artifacts.c.name)
        )
    ]
    steps = [
        _step_from_row(s)
        for s in conn.execute(
            select(run_steps)
            .where(run_steps.c.run_id == run_id)
            .order_by(run_steps.c.started_at.asc().nulls_last(), run_steps.c.step)
        )
    ]
    return RunRecord(
        **_common_fields(row),
        author=row.author,
        git_commit=row.git_commit,
        git_dirty=row.git_dirty,
        executor=row.executor,
        resumed_from=row.resumed_from,
        error=row.error,
        environment=dict(row.environment or {}),
        lineage=dict(row.lineage or {}),
        tags=dict(row.tags or {}),
        params=params,
        metrics=metrics,
        steps=steps,
        artifacts=artifacts,
    )
