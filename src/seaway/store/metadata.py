"""The metadata database: engine set-up, automatic migrations, transactions.

SQLite (the default) runs in WAL mode with a busy timeout, and every write transaction
starts with `BEGIN IMMEDIATE`: a deferred transaction that reads and then writes can fail
at once with "database is locked" when another process wrote in between, instead of
waiting. PostgreSQL serialises competing writers with row locks taken by the callers.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from seaway.errors import StoreError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

T = TypeVar("T")

_SQLITE_BUSY_MS = 30_000
_PG_MIGRATION_LOCK = 0x5EA_3A7  # advisory lock key held while migrating


def mask_url(url: str) -> str:
    """The URL with any password replaced, for messages."""
    # Greedy up to the last "@" of the authority, so that a password holding an
    # unescaped "@" is hidden whole rather than half.
    return re.sub(r"(://[^:/@]*:)[^/?#]*@", r"\1***@", url)


def _sqlite_path(url: str) -> str | None:
    """The file of a SQLite URL, or None for an in-memory database."""
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return database


def _sqlstate(exc: Exception) -> str | None:
    return getattr(getattr(exc, "orig", None), "sqlstate", None)


def _is_unique_violation(exc: Exception) -> bool:
    orig = getattr(exc, "orig", exc)
    if _sqlstate(exc) == "23505":
        return True
    name = getattr(orig, "sqlite_errorname", "")
    if name in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"):
        return True
    return "UNIQUE constraint failed" in str(orig)


def _is_transient(exc: Exception) -> bool:
    """A lock or serialisation conflict that a retry of the whole transaction resolves."""
    # 40001 serialization_failure, 40P01 deadlock_detected, 55P03 lock_not_available
    if _sqlstate(exc) in ("40001", "40P01", "55P03"):
        return True
    text = str(getattr(exc, "orig", exc)).lower()
    return "database is locked" in text or "database table is locked" in text


def _use_wal(cur: Any) -> None:
    """Put the database in WAL mode, waiting out other processes doing the same.

    WAL mode is stored in the file, so this is a read once it is set. Switching needs the
    file to itself and SQLite answers "database is locked" at once instead of calling the
    busy handler, so several processes opening a new database together retry here."""
    import sqlite3
    import time

    deadline = time.monotonic() + _SQLITE_BUSY_MS / 1000
    delay = 0.005
    while True:
        try:
            if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


class MetadataStore:
    """A connection pool to the metadata database, migrated to the current schema."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None
        self._engine_lock = threading.Lock()

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def engine(self) -> Engine:
        engine = self._engine
        if engine is not None:
            return engine
        # The engine is published only once its schema is in place: a second thread that
        # asked in the meantime (a controller's loop beside the caller's first write) would
        # otherwise query tables that do not exist yet.
        with self._engine_lock:
            if self._engine is None:
                engine = self._create_engine()
                try:
                    self._ensure_schema(engine)
                except Exception:
                    engine.dispose()
                    raise
                self._engine = engine
            return self._engine

    def close(self) -> None:
        with self._engine_lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    def _create_engine(self) -> Engine:
        from sqlalchemy import create_engine, event
        from sqlalchemy.exc import ArgumentError
        from sqlalchemy.pool import NullPool, StaticPool

        try:
            if self.is_sqlite:
                db_path = _sqlite_path(self.url)
                if db_path is not None:
                    self._make_parent(Path(db_path))
                    engine = create_engine(
                        self.url,
                        connect_args={"timeout": _SQLITE_BUSY_MS / 1000},
                        poolclass=NullPool,
                    )
                else:
                    # Every new connection to ":memory:" is a new, empty database: keep
                    # one connection for the store's lifetime so the schema survives.
                    engine = create_engine(
                        self.url,
                        connect_args={"check_same_thread": False},
                        poolclass=StaticPool,
                    )

                @event.listens_for(engine, "connect")
                def _on_connect(dbapi_conn: Any, _record: Any) -> None:
                    # Hand transaction control to the "begin" hook below.
                    dbapi_conn.isolation_level = None
                    cur = dbapi_conn.cursor()
                    cur.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_MS}")
                    _use_wal(cur)
                    cur.execute("PRAGMA foreign_keys=ON")
                    cur.execute("PRAGMA synchronous=NORMAL")
                    cur.close()

                @event.listens_for(engine, "begin")
                def _on_begin(conn: Connection) -> None:
                    mode = "IMMEDIATE" if conn.get_execution_options().get("seaway_write") else ""
                    conn.exec_driver_sql(f"BEGIN {mode}".strip())

                return engine
            return create_engine(self.url, pool_pre_ping=True, pool_size=5, max_overflow=10)
        except (ArgumentError, ImportError, ValueError) as exc:
            raise StoreError(
                f"cannot use metadata URL {mask_url(self.url)}: {exc}",
                hint="use sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB "
                "(set store.metadata in seaway.yaml or SEAWAY_METADATA_URL)",
            ) from exc

    def _make_parent(self, db_path: Path) -> None:
        try:
            db_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the directory of the metadata database {mask_url(self.url)}: "
                f"{exc.strerror or exc}",
                hint=f"make {db_path.parent} a writable directory, or point store.metadata "
                "(or SEAWAY_METADATA_URL) elsewhere",
            ) from exc

    # -- schema -------------------------------------------------------------

    def _current_revision(self, conn: Connection) -> str | None:
        from sqlalchemy import inspect, text

        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()

    def _ensure_schema(self, engine: Engine) -> None:
        from sqlalchemy.exc import OperationalError

        from seaway.store.schema import SCHEMA_REVISION

        try:
            with engine.connect() as conn:
                current = self._current_revision(conn)
                conn.rollback()
        except OperationalError as exc:
            raise self._unreachable(exc) from exc
        if current == SCHEMA_REVISION:
            return
        if current is not None and current > SCHEMA_REVISION:
            raise StoreError(
                f"the metadata database {mask_url(self.url)} has schema {current}, newer "
                f"than this seaway ({SCHEMA_REVISION})",
                hint="upgrade seaway (pip install -U seaway)",
            )
        with self._migration_lock(engine) as conn:
            if self._current_revision(conn) == SCHEMA_REVISION:
                return
            if self._is_empty(conn):
                self._create_fresh(conn)
            else:
                self._upgrade(conn)

    def _is_empty(self, conn: Connection) -> bool:
        from sqlalchemy import inspect

        return not inspect(conn).get_table_names()

    def _create_fresh(self, conn: Connection) -> None:
        """Build a new database straight from the table definitions and mark it as being at
        the newest revision, as Alembic's documentation recommends for new databases:
        importing Alembic and replaying every migration costs about half a second, which
        would land on every first command of a new project."""
        from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table

        from seaway.store.schema import SCHEMA_REVISION, metadata

        version = Table(
            "alembic_version",
            MetaData(),
            Column("version_num", String(32), nullable=False),
            PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
        )
        metadata.create_all(conn)
        version.create(conn)
        conn.execute(version.insert().values(version_num=SCHEMA_REVISION))
        conn.commit()

    @contextlib.contextmanager
    def _migration_lock(self, engine: Engine) -> Iterator[Connection]:
        from sqlalchemy import text

        if self.is_sqlite:
            import fcntl

            db_path = _sqlite_path(self.url)
            lock_path = Path(db_path + ".migrate-lock") if db_path is not None else None
            lock_file = open(lock_path, "a+") if lock_path else None  # noqa: SIM115
            try:
                if lock_file:
                    fcntl.flock(lock_file, fcntl.LOCK_EX)
                # Take the write lock up front, so that a reader that started before the
                # migration cannot make the DDL fail half-way with "database is locked".
                with engine.connect().execution_options(seaway_write=True) as conn:
                    yield conn
            finally:
                if lock_file:
                    fcntl.flock(lock_file, fcntl.LOCK_UN)
                    lock_file.close()
        else:
            with engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
                conn.commit()
                try:
                    yield conn
                finally:
                    conn.rollback()
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})
                    conn.commit()

    def _upgrade(self, conn: Connection) -> None:
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        conn.commit()

    def _unreachable(self, exc: Exception) -> StoreError:
        lines = str(getattr(exc, "orig", exc)).strip().splitlines()
        first = lines[0] if lines else type(exc).__name__
        if self.is_sqlite:
            where = _sqlite_path(self.url) or ":memory:"
            hint = (
                f"check that {where} is a database file (or a new name) in a directory "
                "you can write to (store.metadata in seaway.yaml, or SEAWAY_METADATA_URL)"
            )
            return StoreError(f"cannot open the metadata database {self.url}: {first}", hint=hint)
        return StoreError(
            f"cannot reach the metadata database {mask_url(self.url)}: {first}",
            hint="check that the server is running and the URL is right "
            "(store.metadata in seaway.yaml, or SEAWAY_METADATA_URL)",
        )

    # -- transactions ---------------------------------------------------------

    def _connect(self, *, write: bool) -> Connection:
        from sqlalchemy.exc import OperationalError

        engine = self.engine
        try:
            conn = engine.connect()
        except OperationalError as exc:
            if _is_transient(exc):
                raise
            raise self._unreachable(exc) from exc
        return conn.execution_options(seaway_write=True) if write else conn

    @contextlib.contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Connection]:
        from sqlalchemy.exc import OperationalError

        try:
            with self._connect(write=write) as conn, conn.begin():
                yield conn
        except OperationalError as exc:
            # Only a lost connection means the database is out of reach; any other
            # operational error (a lock, a missing table) is the caller's to see.
            if exc.connection_invalidated:
                raise self._unreachable(exc) from exc
            raise

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        with self._transaction(write=False) as conn:
            yield conn

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that will write; on SQLite it holds the write lock from the start."""
        with self._transaction(write=True) as conn:
            yield conn

    def run_write(self, fn: Callable[[Connection], T], *, attempts: int = 8) -> T:
        """Run `fn` in a write transaction, retrying when a concurrent writer won a race.

        `fn` may run more than once, so it must not have effects outside the transaction.
        A unique-constraint violation is retried (another process inserted the same key
        first: the retry sees its row); other integrity errors are raised at once.
        """
        from sqlalchemy.exc import IntegrityError, OperationalError

        delay = 0.01
        for attempt in range(attempts):
            try:
                with self.write() as conn:
                    return fn(conn)
            except IntegrityError as exc:
                if not _is_unique_violation(exc) or attempt == attempts - 1:
                    raise
            except OperationalError as exc:
                if not _is_transient(exc):
                    raise
                if attempt == attempts - 1:
                    raise StoreError(
                        f"the metadata database {mask_url(self.url)} stayed locked",
                        hint="another seaway process holds a long write; try again",
                    ) from exc
            time.sleep(delay + (os.getpid() % 7) / 1000)
            delay = min(delay * 2, 0.5)
        raise AssertionError("unreachable")
