"""Transactions for the run store, on a connection kept open per thread for SQLite.

MetadataStore opens a new SQLite connection for every transaction (NullPool), which costs
about 0.6 ms of connect and PRAGMAs: more than the whole of a small run's writes. Tracking
makes two transactions per run and flushes metrics every half second, so it keeps one
connection per thread (SQLite connections may not cross threads) and begins its
transactions on it, with the same `BEGIN IMMEDIATE` locking and the same retries as
`MetadataStore.run_write`. PostgreSQL already pools its connections, so it goes through
MetadataStore unchanged. A forked child never touches its parent's connection.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from seaway.errors import StoreError
from seaway.store.metadata import _is_transient, _is_unique_violation, mask_url

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from seaway.store.metadata import MetadataStore

T = TypeVar("T")
_ATTEMPTS = 8


class Session:
    def __init__(self, metadata: MetadataStore) -> None:
        self.metadata = metadata
        self._local = threading.local()

    def _conn(self) -> Connection:
        local = self._local
        conn: Connection | None = getattr(local, "conn", None)
        if conn is not None and getattr(local, "pid", None) == os.getpid():
            return conn
        # A connection inherited through fork is abandoned, not closed: closing it could
        # disturb the parent's use of the same file.
        local.conn = None
        conn = self.metadata.engine.connect()
        local.conn, local.pid = conn, os.getpid()
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            with contextlib.suppress(Exception):
                conn.close()

    def close(self) -> None:
        self._drop()

    def write(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn` in a write transaction; it may run more than once (see run_write)."""
        if not self.metadata.is_sqlite:
            return self.metadata.run_write(fn)
        from sqlalchemy.exc import IntegrityError, OperationalError

        delay = 0.01
        for attempt in range(_ATTEMPTS):
            conn = self._conn()
            try:
                conn.execution_options(seaway_write=True)
                with conn.begin():
                    return fn(conn)
            except IntegrityError as exc:
                if not _is_unique_violation(exc) or attempt == _ATTEMPTS - 1:
                    raise
            except OperationalError as exc:
                if exc.connection_invalidated or not _is_transient(exc):
                    self._drop()
                    raise
                if attempt == _ATTEMPTS - 1:
                    raise StoreError(
                        f"the metadata database {mask_url(self.metadata.url)} stayed locked",
                        hint="another seaway process holds a long write; try again",
                    ) from exc
            time.sleep(delay + (os.getpid() % 7) / 1000)
            delay = min(delay * 2, 0.5)
        raise AssertionError("unreachable")

    def read(self, fn: Callable[[Connection], T]) -> T:
        if not self.metadata.is_sqlite:
            with self.metadata.read() as conn:
                return fn(conn)
        from sqlalchemy.exc import OperationalError

        conn = self._conn()
        try:
            conn.execution_options(seaway_write=False)
            with conn.begin():
                return fn(conn)
        except OperationalError:
            self._drop()
            raise
