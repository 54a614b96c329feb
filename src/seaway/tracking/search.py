"""Finding runs: `--where` expressions, param equality, sorting, in SQL on the indexes.

A metric condition is `runs.id IN (SELECT run_id FROM run_latest_metrics WHERE key = ? AND
value > ?)`, answered from the `(key, value)` index; a param condition is the same over
`run_params (key, value)`; the order and limit use `runs (pipeline, started_at)` or
`runs (started_at)`. Only the page of runs asked for is loaded, with its latest metrics and
params in two more queries, so a listing costs the same with 100 runs or 100,000.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seaway._util import as_utc
from seaway.errors import UsageError
from seaway.tracking.records import RUN_STATUSES, RunSummary
from seaway.tracking.store import encode_param

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from seaway.project import Project

ACCEPTED = (
    "accepted forms: auc>0.8, loss<=0.2, accuracy=0.9, auc!=0.5 (metrics; also written "
    "metrics.auc>0.8), params.C=1.0, params.solver!=lbfgs, params.C>0.5"
)
SORT_FORMS = "sort by started, -started, duration, -duration, METRIC or -METRIC"
_CHUNK = 900  # bound parameters per IN list, under every database's limit
_EXPR = re.compile(r"^(?P<key>[^<>=!]+?)\s*(?P<op><=|>=|!=|==|=|<|>)\s*(?P<value>.*)$")


@dataclass(frozen=True)
class Condition:
    """One parsed `--where` expression."""

    namespace: str  # "metrics" | "params"
    key: str
    op: str  # one of > >= < <= = !=
    value: str
    number: float | None  # the value as a number, when it is one


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return None if value != value else value  # NaN compares with nothing


def parse_where(expr: str) -> Condition:
    """`auc>0.8`, `metrics.auc>0.8`, `params.C=1.0`, … → Condition; UsageError otherwise."""
    match = _EXPR.match(expr.strip())
    if match is None or not match["key"].strip() or not match["value"].strip():
        raise UsageError(f"cannot read the filter {expr!r}", hint=ACCEPTED)
    key, op, value = match["key"].strip(), match["op"], match["value"].strip()
    op = "=" if op == "==" else op
    namespace = "metrics"
    for prefix in ("metrics.", "params."):
        if key.startswith(prefix):
            namespace, key = prefix[:-1], key[len(prefix) :]
            break
    else:
        if "." in key and key.split(".", 1)[0] in ("metric", "param", "tags", "tag"):
            raise UsageError(f"unknown namespace in the filter {expr!r}", hint=ACCEPTED)
    if not key:
        raise UsageError(f"the filter {expr!r} names no key", hint=ACCEPTED)
    number = _number(_unquote(value))
    if namespace == "metrics" and number is None:
        raise UsageError(
            f"the filter {expr!r} compares metric {key!r} with {value!r}, which is not a number",
            hint=ACCEPTED,
        )
    if namespace == "params" and op in ("<", "<=", ">", ">=") and number is None:
        raise UsageError(
            f"the filter {expr!r} orders param {key!r} by {value!r}, which is not a number",
            hint="params compare with = and != as text, and with < <= > >= as numbers; " + ACCEPTED,
        )
    return Condition(namespace, key, op, value, number)


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def param_texts(value: Any) -> set[str]:
    """The stored texts a param value given on the command line (or in Python) may have:
    `1.0` matches a param logged as 1.0, 1 or "1.0"; `lbfgs` matches "lbfgs"."""
    if not isinstance(value, str):
        texts = {encode_param(value)}
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = repr(value)
        else:
            return texts
    else:
        texts = set()
    raw = _unquote(value.strip())
    texts.add(encode_param(raw))
    try:
        parsed = json.loads(raw)
    except ValueError:
        return texts
    texts.add(encode_param(parsed))
    if isinstance(parsed, int | float) and not isinstance(parsed, bool):
        texts.add(encode_param(float(parsed)))
        if float(parsed).is_integer():
            texts.add(encode_param(int(parsed)))
    return texts


def parse_sort(text: str) -> tuple[str, str | None, bool]:
    """`started`, `-duration`, `auc`, `-metrics.auc` → (kind, metric key, descending)."""
    raw = text.strip()
    descending = raw.startswith("-")
    key = raw.lstrip("-+").strip()
    if not key:
        raise UsageError(f"bad sort {text!r}", hint=SORT_FORMS)
    if key in ("started", "duration"):
        return key, None, descending
    if key.startswith("params."):
        raise UsageError(f"cannot sort by param {key[7:]!r}", hint=SORT_FORMS)
    return "metric", key.removeprefix("metrics."), descending


def _ops(column: Any, op: str, value: Any) -> Any:
    if op == ">":
        return column > value
    if op == ">=":
        return column >= value
    if op == "<":
        return column < value
    if op == "<=":
        return column <= value
    if op == "!=":
        return column != value
    return column == value


def _condition_clause(cond: Condition) -> Any:
    from sqlalchemy import Float, case, cast, func, select

    from seaway.store.schema import run_latest_metrics as rlm
    from seaway.store.schema import run_params as rp
    from seaway.store.schema import runs

    if cond.namespace == "metrics":
        value = _ops(rlm.c.value, cond.op, cond.number)
        return runs.c.id.in_(select(rlm.c.run_id).where(rlm.c.key == cond.key, value))
    if cond.op in ("=", "!="):
        texts = sorted(param_texts(cond.value))
        match = rp.c.value.in_(texts) if cond.op == "=" else rp.c.value.not_in(texts)
        return runs.c.id.in_(select(rp.c.run_id).where(rp.c.key == cond.key, match))
    # Every stored value is JSON text, and a JSON number is the only kind that starts with
    # a digit or a minus: guard the cast so PostgreSQL never casts "abc".
    numeric = func.substr(rp.c.value, 1, 1).in_(list("-0123456789"))
    as_number = case((numeric, cast(rp.c.value, Float)), else_=None)
    compared = _ops(as_number, cond.op, cond.number)
    return runs.c.id.in_(select(rp.c.run_id).where(rp.c.key == cond.key, numeric, compared))


def search_runs(
    project: Project | str | Path | None = None,
    *,
    pipeline: str | None = None,
    status: str | None = None,
    where: Iterable[str] = (),
    params: Mapping[str, Any] | None = None,
    sort: str | None = None,
    limit: int | None = 100,
) -> list[RunSummary]:
    """Runs matching every filter, newest first unless `sort` says otherwise.

    `where` holds expressions such as `auc>0.8` or `params.C=1.0` (ANDed); `params` maps
    param names to values that must be equal; `limit=None` returns every match. The
    project defaults to the one holding the working directory."""
    from seaway.project import Project

    if not isinstance(project, Project):
        project = Project.find(project)
    dialect = "sqlite" if project.metadata.is_sqlite else "postgresql"
    query = runs_query(
        pipeline=pipeline,
        status=status,
        where=where,
        params=params,
        sort=sort,
        limit=limit,
        values_for=dialect,
    )
    with project.metadata.read() as conn:
        summaries = [_summary(row) for row in conn.execute(query).all()]
        if dialect == "sqlite":
            _attach_metrics(conn, summaries)
    return summaries


def _attach_metrics(conn: Connection, summaries: list[RunSummary]) -> None:
    """The latest metrics of the listed runs, as rows: SQLite cannot write a double as text
    that reads back exactly (its printf is off in the last digit for large exponents, and
    on machines without a long double), so the values travel as numbers."""
    from sqlalchemy import select

    from seaway.store.schema import run_latest_metrics as rlm

    by_id = {s.id: s for s in summaries}
    ids = list(by_id)
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        query = select(rlm.c.run_id, rlm.c.key, rlm.c.value).where(rlm.c.run_id.in_(chunk))
        for run_id, key, value in conn.execute(query).all():
            by_id[run_id].metrics[key] = value


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return as_utc(value)
    return datetime.fromisoformat(value + "+00:00")  # SQLite's text, always UTC


def _summary(row: Any) -> RunSummary:
    run_id, seq, name, pipeline, status, started, ended, duration, values = row
    if isinstance(values, str):  # SQLite: [tags, params]; metrics follow as rows
        tags, params = json.loads(values)
        metrics = {}
    else:
        tags, metrics, params = values
    return RunSummary(
        id=run_id,
        seq=seq,
        name=name,
        pipeline=pipeline,
        status=status,
        started_at=_time(started),  # type: ignore[arg-type]
        ended_at=_time(ended),
        duration_s=duration,
        tags=tags or {},
        # PostgreSQL writes ±inf in JSON as the strings "Infinity" and "-Infinity".
        metrics={k: float(v) for k, v in (metrics or {}).items()},
        params=params or {},
    )


def _values_column(dialect: str) -> Any:
    """Per run, a JSON array built by the database through the (run_id, key) primary keys:
    `[tags, latest metrics, params]` on PostgreSQL, `[tags, params]` on SQLite. Python then
    parses one JSON text per run instead of a row per param."""
    from sqlalchemy import String, func, literal, select, type_coerce

    from seaway.store.schema import run_latest_metrics as rlm
    from seaway.store.schema import run_params as rp
    from seaway.store.schema import runs

    def per_run(table: Any, aggregate: Any) -> Any:
        query = select(aggregate).where(table.c.run_id == runs.c.id).correlate(runs)
        return query.scalar_subquery()

    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        metrics = per_run(rlm, func.json_object_agg(rlm.c.key, rlm.c.value))
        params = per_run(rp, func.json_object_agg(rp.c.key, rp.c.value.cast(postgresql.JSON)))
        return func.json_build_array(runs.c.tags, metrics, params).label("values")
    # Built as text: params and tags are stored as JSON texts already, and SQLite's JSON
    # functions would parse each of them again.
    pairs = func.group_concat(func.json_quote(rp.c.key) + literal(":") + rp.c.value, ",")
    params_text = func.coalesce(per_run(rp, literal("{") + pairs + literal("}")), "{}")
    text = (
        literal("[")
        + func.coalesce(type_coerce(runs.c.tags, String), "null")
        + literal(",")
        + params_text
        + literal("]")
    )
    return type_coerce(text, String).label("values")


def runs_query(
    *,
    pipeline: str | None = None,
    status: str | None = None,
    where: Iterable[str] = (),
    params: Mapping[str, Any] | None = None,
    sort: str | None = None,
    limit: int | None = 100,
    values_for: str | None = None,
) -> Any:
    """The SELECT behind search_runs: the runs' own columns and, when `values_for` names
    the dialect ("sqlite" or "postgresql"), their tags and params (and on PostgreSQL
    their latest metrics) as one JSON array; else only their tags.

    On SQLite, times and tags come back as the text it stores: datetime.fromisoformat and
    json.loads parse them several times faster than SQLAlchemy's generic processors, which
    matters when a listing returns thousands of runs."""
    from sqlalchemy import String, and_, select, type_coerce

    from seaway.store.schema import run_latest_metrics as rlm
    from seaway.store.schema import runs

    if status is not None and status not in RUN_STATUSES:
        raise UsageError(f"unknown run status {status!r}", hint="use " + ", ".join(RUN_STATUSES))
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")
    conditions = [parse_where(w) for w in where]
    for key, value in (params or {}).items():
        text = value if isinstance(value, str) else encode_param(value)
        conditions.append(Condition("params", key, "=", text, None))
    order: tuple[str, str | None, bool] = parse_sort(sort) if sort else ("started", None, True)

    started: Any = runs.c.started_at
    ended: Any = runs.c.ended_at
    if values_for == "sqlite":
        started = type_coerce(started, String).label("started_at")
        ended = type_coerce(ended, String).label("ended_at")
    query = select(
        runs.c.id,
        runs.c.seq,
        runs.c.name,
        runs.c.pipeline,
        runs.c.status,
        started,
        ended,
        runs.c.duration_s,
        _values_column(values_for) if values_for else runs.c.tags,
    )
    if pipeline is not None:
        query = query.where(runs.c.pipeline == pipeline)
    if status is not None:
        query = query.where(runs.c.status == status)
    for cond in conditions:
        query = query.where(_condition_clause(cond))
    kind, sort_key, descending = order
    if kind == "metric":
        sort_metric = rlm.alias("sort_metric")
        query = query.outerjoin(
            sort_metric, and_(sort_metric.c.run_id == runs.c.id, sort_metric.c.key == sort_key)
        )
        value = sort_metric.c.value
        query = query.order_by(
            (value.desc() if descending else value.asc()).nulls_last(), runs.c.seq.desc()
        )
    else:
        column = runs.c.started_at if kind == "started" else runs.c.duration_s
        primary = column.desc() if descending else column.asc()
        tie = runs.c.seq.desc() if descending else runs.c.seq.asc()
        query = query.order_by(primary.nulls_last(), tie)
    if limit is not None:
        query = query.limit(limit)
    return query
