"""Recording a dataset version in a SQLite metadata file with the standard library.

`data add` of a large, mostly unchanged folder is meant to take a fraction of a second;
importing SQLAlchemy alone takes about 0.15-0.3 s on the target machines. So when the
metadata database is a local SQLite file already migrated to a schema revision this module
was checked against, the two statements `data add` needs (find the latest version,
record a new one with its event) run through `sqlite3` directly, with the same locking as
MetadataStore (`BEGIN IMMEDIATE`, busy timeout) and the same stored formats as SQLAlchemy
(timestamps as `YYYY-MM-DD HH:MM:SS.ffffff` UTC, JSON as text). Everything else, and every
other database or schema revision, goes through SQLAlchemy. The tests record versions both
ways and read them back through SQLAlchemy to keep the two in step.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from seaway.store.chain import append_event_sqlite

# The schema revisions (seaway.store.schema.SCHEMA_REVISION) whose datasets, dataset_versions
# and events tables these statements match. Add a revision here only after checking that its
# migration leaves those tables as they are.
LANE_REVISIONS = frozenset({"0003", "0004", "0005", "0006", "0007"})
_BUSY_MS = 30_000

_VERSION_COLUMNS = (
    "number, tree_hash, manifest_hash, n_files, size, sources, created_at, author, message, "
    "check_status, check_report"
)


def lane_path(url: str) -> Path | None:
    """The database file when `url` is a plain SQLite file URL that already exists."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or "?" in url:
        return None
    rest = url[len(prefix) :]
    if not rest or rest.startswith(":memory:"):
        return None
    path = Path(rest)
    return path if path.is_file() else None


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class SqliteLane:
    """One connection to the metadata file, refused unless the schema is LANE_REVISION."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, timeout=_BUSY_MS / 1000, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        try:
            row = self.conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.Error:
            row = None
        self.usable = row is not None and row[0] in LANE_REVISIONS

    def close(self) -> None:
        self.conn.close()

    def latest(self, name: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            f"SELECT {_VERSION_COLUMNS} FROM dataset_versions WHERE dataset_id = "
            "(SELECT id FROM datasets WHERE name = ?) ORDER BY number DESC LIMIT 1",
            (name,),
        ).fetchone()
        return _version(row) if row is not None else None

    def record(
        self,
        name: str,
        values: dict[str, Any],
        event_kind: str,
        event_data: dict[str, Any],
        actor: str,
    ) -> tuple[dict[str, Any], bool]:
        """Insert the next version of `name` unless its latest has the same tree hash.

        Returns the version's fields and whether it was created."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            now = datetime.now(UTC)
            row = conn.execute("SELECT id FROM datasets WHERE name = ?", (name,)).fetchone()
            if row is None:
                cur = conn.execute(
                    "INSERT INTO datasets (name, created_at) VALUES (?, ?)", (name, _ts(now))
                )
                dataset_id = cur.lastrowid
            else:
                dataset_id = row[0]
            latest = conn.execute(
                f"SELECT {_VERSION_COLUMNS} FROM dataset_versions WHERE dataset_id = ? "
                "ORDER BY number DESC LIMIT 1",
                (dataset_id,),
            ).fetchone()
            if latest is not None and latest["tree_hash"] == values["tree_hash"]:
                conn.execute("COMMIT")
                return _version(latest), False
            number = (latest["number"] if latest is not None else 0) + 1
            conn.execute(
                "INSERT INTO dataset_versions (dataset_id, number, tree_hash, manifest_hash, "
                "n_files, size, sources, created_at, author, message, check_status, "
                "check_report) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    dataset_id,
                    number,
                    values["tree_hash"],
                    values["manifest_hash"],
                    values["n_files"],
                    values["size"],
                    json.dumps(values["sources"]),
                    _ts(now),
                    actor,
                    values["message"],
                    values["check_status"],
                    json.dumps(values["check_report"]),
                ),
            )
            append_event_sqlite(
                conn,
                ts=now,
                ts_text=_ts(now),
                kind=event_kind,
                actor=actor,
                subject=f"dataset:{name}@{number}",
                data=event_data,
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return {**values, "number": number, "created_at": now, "author": actor}, True


def _version(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "number": row["number"],
        "tree_hash": row["tree_hash"],
        "manifest_hash": row["manifest_hash"],
        "n_files": row["n_files"],
        "size": row["size"],
        "sources": json.loads(row["sources"]),
        "created_at": _parse_ts(row["created_at"]),
        "author": row["author"],
        "message": row["message"],
        "check_status": row["check_status"],
        "check_report": json.loads(row["check_report"]) if row["check_report"] else None,
    }
