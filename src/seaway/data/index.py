"""The workspace index: a machine-local SQLite file under `.seaway/`.

It holds what only makes sense on this machine, so it never goes to the shared metadata
database: the stat cache (absolute path, size, mtime_ns, inode → BLAKE3 digest), which
spares re-reading unchanged files, and for each dataset the version this workspace last
added (its manifest and source paths), which `data status` compares against. It uses the
standard library's sqlite3, not SQLAlchemy, because `data status` must answer in a small
fraction of a second and importing SQLAlchemy alone costs several times that.
"""

from __future__ import annotations

import json
import marshal
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

# A file modified this recently may change again within the same mtime tick without its
# stat changing (the "racy git" problem), so its digest is not cached.
RACY_WINDOW_NS = 2_000_000_000

# Bump when the tables below change: the index is a cache, an old one is simply rebuilt.
_INDEX_VERSION = 3

_SCHEMA = """
DROP TABLE IF EXISTS stat_cache;
DROP TABLE IF EXISTS workspace;
CREATE TABLE stat_cache (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    digest TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE workspace (
    dataset TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    tree_hash TEXT NOT NULL,
    manifest_hash TEXT NOT NULL,
    sources TEXT NOT NULL,
    snapshot BLOB,
    store TEXT NOT NULL,
    updated_at REAL NOT NULL
);
"""


class StatEntry(NamedTuple):
    size: int
    mtime_ns: int
    inode: int
    digest: str


# tree path → (size, mtime_ns, inode, digest)
Snapshot = dict[str, tuple[int, int, int, str]]


@dataclass(frozen=True)
class WorkspaceRecord:
    """The version this workspace last added, and the stat of each of its files then.

    When every file still has the stat in `snapshot`, the workspace is unchanged without
    reading any file or computing any hash; and since the version references those
    digests, their blobs are known to be in the store. Files modified too recently to be
    trusted (see RACY_WINDOW_NS) are left out of the snapshot."""

    dataset: str
    version: int
    tree_hash: str
    manifest_hash: str
    sources: list[dict[str, Any]]
    snapshot: Snapshot | None = None
    store: str = ""  # the blob store the snapshot's blobs were written to


def make_snapshot(stats: list[tuple[str, int, int, int, str]]) -> Snapshot:
    cutoff = time.time_ns() - RACY_WINDOW_NS
    return {
        path: (size, mtime_ns, inode, digest)
        for path, size, mtime_ns, inode, digest in stats
        if mtime_ns < cutoff
    }


class WorkspaceIndex:
    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection | None:
        if self._conn is None:
            if self.readonly:
                if not self.path.exists():
                    return None
                conn = sqlite3.connect(
                    f"file:{self.path}?mode=ro", uri=True, timeout=30, isolation_level=None
                )
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                conn.execute("PRAGMA synchronous=NORMAL")
                if conn.execute("PRAGMA user_version").fetchone()[0] != _INDEX_VERSION:
                    self._create(conn)
            self._conn = conn
        return self._conn

    def _create(self, conn: sqlite3.Connection) -> None:
        """Set up a new (or outdated) index, once, when several processes start together.

        Switching to WAL needs the file to itself and SQLite answers "database is locked"
        at once instead of waiting, so set-up is serialised with a lock file, and the
        version is read again under it: the first process may have done the work."""
        import fcntl

        with open(self.path.with_name(self.path.name + ".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                if conn.execute("PRAGMA user_version").fetchone()[0] != _INDEX_VERSION:
                    conn.executescript(
                        f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA user_version={_INDEX_VERSION}; COMMIT;"
                    )
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def stat_entries(self, prefixes: Iterable[str]) -> dict[str, StatEntry]:
        """Cached stats for every path under the given absolute path prefixes."""
        conn = self._connect()
        if conn is None:
            return {}
        out: dict[str, StatEntry] = {}
        try:
            for prefix in prefixes:
                rows = conn.execute(
                    "SELECT path, size, mtime_ns, inode, digest FROM stat_cache "
                    "WHERE path = ? OR (path >= ? AND path < ?)",
                    (prefix, prefix + "/", prefix + "0"),  # '0' sorts right after '/'
                )
                for path, size, mtime_ns, inode, digest in rows:
                    out[path] = StatEntry(size, mtime_ns, inode, digest)
        except sqlite3.OperationalError:
            return {}
        return out

    def update_stats(self, entries: dict[str, StatEntry]) -> None:
        conn = self._connect()
        if conn is None or not entries:
            return
        cutoff = time.time_ns() - RACY_WINDOW_NS
        rows = [
            (p, e.size, e.mtime_ns, e.inode, e.digest)
            for p, e in entries.items()
            if e.mtime_ns < cutoff
        ]
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT OR REPLACE INTO stat_cache VALUES (?, ?, ?, ?, ?)", rows)

    def workspace(self, dataset: str) -> WorkspaceRecord | None:
        conn = self._connect()
        if conn is None:
            return None
        try:
            row = conn.execute(
                "SELECT dataset, version, tree_hash, manifest_hash, sources, snapshot, store "
                "FROM workspace WHERE dataset = ?",
                (dataset,),
            ).fetchone()
        except sqlite3.OperationalError:
            return None
        return _record(row) if row else None

    def workspaces(self) -> list[WorkspaceRecord]:
        conn = self._connect()
        if conn is None:
            return []
        try:
            rows = conn.execute(
                "SELECT dataset, version, tree_hash, manifest_hash, sources, snapshot, store "
                "FROM workspace ORDER BY dataset"
            ).fetchall()
        except sqlite3.OperationalError:
            return []
        return [_record(r) for r in rows]

    def set_workspace(self, record: WorkspaceRecord) -> None:
        conn = self._connect()
        if conn is None:
            return
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT OR REPLACE INTO workspace VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.dataset,
                    record.version,
                    record.tree_hash,
                    record.manifest_hash,
                    json.dumps(record.sources),
                    # marshal: the fastest load for a large dict of tuples, and this file is
                    # only ever read back by the process that wrote it or its successors.
                    marshal.dumps(record.snapshot) if record.snapshot is not None else None,
                    record.store,
                    time.time(),
                ),
            )


def _record(row: tuple[Any, ...]) -> WorkspaceRecord:
    snapshot = None
    if row[5] is not None:
        try:
            snapshot = marshal.loads(row[5])
        except (ValueError, EOFError, TypeError):
            snapshot = None  # written by another Python version: take the slow path
    return WorkspaceRecord(
        row[0], int(row[1]), row[2], row[3], json.loads(row[4]), snapshot, row[6]
    )
