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
    return re.sub(r"(://[^:/@]+:)[^@]+@", r"\1***@", url)


class MetadataStore:
    """A connection pool to the metadata database, migrated to the current schema."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = self._create_engine()
            try:
                self._ensure_schema(self._engine)
            except Exception:
                self._engine.dispose()
                self._engine = None
                raise
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _create_engine(self) -> Engine:
        from sqlalchemy import create_engine, event
        from sqlalchemy.exc import ArgumentError
        from sqlalchemy.pool import NullPool

        try:
            if self.is_sqlite:
                db_path = self.url.split("///", 1)[-1].split("?", 1)[0]
                if db_path and db_path != ":memory:":
                    Path(db_path).parent.mkdir(parents=True, exist_ok=True)
                engine = create_engine(
                    self.url,
                    connect_args={"timeout": _SQLITE_BUSY_MS / 1000},
                    poolclass=NullPool,
                )

                @event.listens_for(engine, "connect")
                def _on_connect(dbapi_conn: Any, _record: Any) -> None:
                    # Hand transaction control to the "begin" hook below.
                    dbapi_conn.isolation_level = None
                    cur = dbapi_conn.cursor()
                    cur.execute("PRAGMA journal_mode=WAL")
                    cur.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_MS}")
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
            if self._current_revision(conn) != SCHEMA_REVISION:
                self._upgrade(conn)

    @contextlib.contextmanager
    def _migration_lock(self, engine: Engine) -> Iterator[Connection]:
        from sqlalchemy import text

        if self.is_sqlite:
            import fcntl

            db_path = self.url.split("///", 1)[-1].split("?", 1)[0]
            lock_path = Path(db_path + ".migrate-lock") if db_path != ":memory:" else None
            lock_file = open(lock_path, "a+") if lock_path else None  # noqa: SIM115
            try:
                if lock_file:
                    fcntl.flock(lock_file, fcntl.LOCK_EX)
                with engine.connect() as conn:
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
        first = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        return StoreError(
            f"cannot reach the metadata database {mask_url(self.url)}: {first}",
            hint="check that the server is running and the URL is right "
            "(store.metadata in seaway.yaml, or SEAWAY_METADATA_URL)",
        )

    # -- transactions ---------------------------------------------------------

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        from sqlalchemy.exc import OperationalError

        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except OperationalError as exc:
            raise self._unreachable(exc) from exc

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that will write; on SQLite it holds the write lock from the start."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(seaway_write=True)
            with conn.begin():
                yield conn

    def run_write(self, fn: Callable[[Connection], T], *, attempts: int = 8) -> T:
        """Run `fn` in a write transaction, retrying when a concurrent writer won a race."""
        from sqlalchemy.exc import IntegrityError, OperationalError

        delay = 0.01
        for attempt in range(attempts):
            try:
                with self.write() as conn:
                    return fn(conn)
            except IntegrityError:
                if attempt == attempts - 1:
                    raise
            except OperationalError as exc:
                transient = "locked" in str(exc) or "could not serialize" in str(exc)
                if not transient:
                    raise self._unreachable(exc) from exc
                if attempt == attempts - 1:
                    raise StoreError(
                        f"the metadata database {mask_url(self.url)} stayed locked",
                        hint="another seaway process holds a long write; try again",
                    ) from exc
            time.sleep(delay + (os.getpid() % 7) / 1000)
            delay = min(delay * 2, 0.5)
        raise AssertionError("unreachable")
