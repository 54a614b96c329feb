"""The step cache: cache key → outputs and metrics of a step that succeeded.

A fully cached run must finish in a small fraction of a second, and importing SQLAlchemy
alone takes longer than that. So on a local SQLite metadata file at a known schema
revision (the same condition as seaway.data.sqlite_lane) the cache is read and written with
the standard library; any other database goes through SQLAlchemy. Look-ups are batched: one
query fetches the latest entries of every step of the pipeline, which answers a rerun of an
unchanged pipeline at once; keys it does not answer are looked up in one query per wave of
steps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from seaway.pipeline.task import OutputRecord

if TYPE_CHECKING:
    from seaway.data.sqlite_lane import SqliteLane
    from seaway.project import Project

# Entries per step fetched up front: enough for a few alternating param values.
_RECENT = 4


@dataclass
class CacheEntry:
    key: str
    step: str
    outputs: dict[str, OutputRecord]
    metrics: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None


def _entry(key: str, step: str, outputs: Any, metrics: Any, run_id: str | None) -> CacheEntry:
    if isinstance(outputs, str):
        outputs = json.loads(outputs)
    if isinstance(metrics, str):
        metrics = json.loads(metrics)
    return CacheEntry(
        key,
        step,
        {name: OutputRecord.from_dict(doc) for name, doc in (outputs or {}).items()},
        {k: float(v) for k, v in (metrics or {}).items()},
        run_id,
    )


def _ts(value: datetime) -> str:
    # The text form SQLAlchemy writes for DateTime on SQLite.
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


class StepCache:
    def __init__(self, project: Project) -> None:
        self.project = project
        self._lane: SqliteLane | None = None
        self._lane_checked = False

    def _sqlite(self) -> SqliteLane | None:
        if self._lane_checked:
            return self._lane
        import os

        if os.environ.get("SEAWAY_SQLALCHEMY_ONLY"):
            self._lane_checked = True
            return None
        from seaway.data.sqlite_lane import SqliteLane, lane_path

        path = lane_path(self.project.metadata_url)
        if path is None:
            # Not SQLite, or a database not created yet: after SQLAlchemy has created and
            # migrated it (the first query of a project's first run), the lane applies.
            self._lane_checked = not self.project.metadata_url.startswith("sqlite")
            return None
        self._lane_checked = True
        lane = SqliteLane(path)
        if lane.usable:
            self._lane = lane
        else:
            lane.close()
        return self._lane

    @property
    def lane(self) -> SqliteLane | None:
        """The standard-library connection, when the metadata store allows one."""
        return self._sqlite()

    def close(self) -> None:
        if self._lane is not None:
            self._lane.close()
            self._lane = None

    # -- reads ---------------------------------------------------------------------

    def recent(self, pipeline: str) -> dict[str, CacheEntry]:
        """The latest few entries of every step of `pipeline`, by key."""
        sql = (
            "SELECT key, step, outputs, metrics, run_id FROM ("
            " SELECT key, step, outputs, metrics, run_id, ROW_NUMBER() OVER"
            " (PARTITION BY step ORDER BY created_at DESC) AS n"
            " FROM step_cache WHERE pipeline = :p) AS recent WHERE n <= :k"
        )
        rows = self._select(sql, {"p": pipeline, "k": _RECENT})
        return {r[0]: _entry(*r) for r in rows}

    def lookup(self, keys: list[str]) -> dict[str, CacheEntry]:
        if not keys:
            return {}
        names = {f"k{i}": k for i, k in enumerate(keys)}
        holders = ", ".join(f":{n}" for n in names)
        sql = f"SELECT key, step, outputs, metrics, run_id FROM step_cache WHERE key IN ({holders})"
        return {r[0]: _entry(*r) for r in self._select(sql, names)}

    def _select(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        lane = self._sqlite()
        if lane is not None:
            return [tuple(r) for r in lane.conn.execute(sql, params).fetchall()]
        from sqlalchemy import text

        with self.project.metadata.read() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params).all()]

    # -- writes --------------------------------------------------------------------

    def put(
        self,
        key: str,
        pipeline: str,
        step: str,
        outputs: dict[str, OutputRecord],
        metrics: dict[str, float],
        run_id: str,
    ) -> None:
        """Record (or, after --force, replace) the entry of `key`."""
        now = datetime.now(UTC)
        out_doc = {name: rec.to_dict() for name, rec in outputs.items()}
        lane = self._sqlite()
        if lane is not None:
            lane.conn.execute(
                "INSERT INTO step_cache (key, pipeline, step, outputs, metrics, run_id, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
                "pipeline = excluded.pipeline, step = excluded.step, outputs = "
                "excluded.outputs, metrics = excluded.metrics, run_id = excluded.run_id, "
                "created_at = excluded.created_at",
                (key, pipeline, step, json.dumps(out_doc), json.dumps(metrics), run_id, _ts(now)),
            )
            return
        values = {
            "key": key,
            "pipeline": pipeline,
            "step": step,
            "outputs": out_doc,
            "metrics": metrics,
            "run_id": run_id,
            "created_at": now,
        }
        self.project.metadata.run_write(lambda conn: _upsert(conn, values))


def _upsert(conn: Any, values: dict[str, Any]) -> None:
    from seaway.store.schema import step_cache

    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    stmt = insert(step_cache).values(**values)
    update = {k: stmt.excluded[k] for k in values if k != "key"}
    conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_=update))
