"""The metadata database, on SQLite and on PostgreSQL (the `metadata_url` fixture runs each
test once per backend)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from seaway._util import utcnow
from seaway.errors import StoreError
from seaway.store.events import record_event
from seaway.store.metadata import MetadataStore, mask_url
from seaway.store.schema import SCHEMA_REVISION, datasets, events

WORKER = Path(__file__).with_name("metadata_worker.py")


@pytest.fixture
def store(metadata_url: str) -> Iterator[MetadataStore]:
    s = MetadataStore(metadata_url)
    yield s
    s.close()


def sqlite_file(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def add_event(conn: sa.Connection, subject: str) -> int:
    return record_event(conn, "test", subject, actor="me")


def count_events(store: MetadataStore) -> int:
    with store.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one())


# -- schema and migrations --------------------------------------------------------------------


def test_first_use_creates_the_schema_at_the_current_revision(store: MetadataStore) -> None:
    with store.read() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
        assert list(revision) == [SCHEMA_REVISION]
    assert {"datasets", "dataset_versions", "events", "alembic_version"} <= tables


PROBE = textwrap.dedent(
    """
    import json, sys
    import sqlalchemy as sa
    from seaway.store.metadata import MetadataStore
    from seaway.store.schema import events
    store = MetadataStore(sys.argv[1])
    from seaway.store.events import record_event
    store.run_write(lambda c: record_event(c, "probe", "probe", actor="probe"))
    with store.read() as c:
        n = c.execute(sa.select(sa.func.count()).select_from(events)).scalar_one()
    print(json.dumps({"alembic": "alembic" in sys.modules, "events": n}))
    """
)


def probe(url: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, url], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def test_migrations_run_once_and_a_current_database_skips_alembic(metadata_url: str) -> None:
    # A new database is built from the table definitions, without Alembic.
    first = probe(metadata_url)
    assert first == {"alembic": False, "events": 1}
    # Start-up of every later command must not pay for importing Alembic, and must keep
    # what is already stored.
    second = probe(metadata_url)
    assert second == {"alembic": False, "events": 2}


def test_an_old_database_is_upgraded_and_its_events_chained(metadata_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    import seaway.store.metadata as metadata_module

    # A database made by the first release: migrated to 0001 only, events without a chain.
    if metadata_url.startswith("sqlite:///"):
        Path(metadata_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(metadata_url)
    with engine.connect() as conn:
        cfg = Config()
        cfg.set_main_option(
            "script_location", str(Path(metadata_module.__file__).parent / "migrations")
        )
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.commit()
        for i in range(3):
            conn.execute(
                sa.text(
                    "INSERT INTO events (ts, kind, actor, subject) VALUES (:ts, 'old', 'me', :s)"
                ),
                {"ts": utcnow(), "s": f"old:{i}"},
            )
        conn.commit()
    engine.dispose()

    upgraded = probe(metadata_url)
    assert upgraded == {"alembic": True, "events": 4}
    store = MetadataStore(metadata_url)
    with store.read() as conn:
        seqs = conn.execute(sa.text("SELECT seq FROM events ORDER BY seq")).scalars().all()
    assert seqs == [1, 2, 3, 4]
    store.close()

    class _P:  # just enough of a Project for verify_chain
        metadata = MetadataStore(metadata_url)

    from seaway.audit.verify import verify_chain

    report = verify_chain(_P())  # type: ignore[arg-type]
    assert report.ok and report.events == 4
    _P.metadata.close()


def test_database_newer_than_the_code_is_refused(metadata_url: str) -> None:
    first = MetadataStore(metadata_url)
    with first.write() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    first.close()

    later = MetadataStore(metadata_url)
    with pytest.raises(StoreError) as err:
        later.engine  # noqa: B018
    assert "9999" in err.value.message
    assert SCHEMA_REVISION in err.value.message
    assert err.value.hint and "upgrade seaway" in err.value.hint
    later.close()
    # Nothing may have tried to "migrate" the newer database back.
    engine = sa.create_engine(metadata_url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "9999"
    engine.dispose()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state' / 'seaway.db'}"
    store = MetadataStore(url)
    with store.read() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    store.close()
    # WAL is a property of the file: any other client sees it too.
    with sqlite3.connect(sqlite_file(url)) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sqlite_write_holds_the_write_lock_from_its_start(tmp_path: Path) -> None:
    # A deferred transaction that reads first fails at once with "database is locked" when
    # another process wrote meanwhile; BEGIN IMMEDIATE makes competing writers queue.
    url = f"sqlite:///{tmp_path / 'seaway.db'}"
    store = MetadataStore(url)
    store.engine  # noqa: B018
    other = sqlite3.connect(sqlite_file(url), timeout=0.05, isolation_level=None)
    try:
        with store.read():
            other.execute("BEGIN IMMEDIATE")  # a reader does not block a writer
            other.execute("ROLLBACK")
        with store.write(), pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
    finally:
        other.close()
        store.close()


def test_in_memory_sqlite_keeps_its_schema_and_rows() -> None:
    store = MetadataStore("sqlite:///:memory:")
    store.run_write(lambda conn: add_event(conn, "a"))
    assert count_events(store) == 1
    store.close()


# -- errors a user sees -----------------------------------------------------------------------


def test_unreachable_server_is_one_clear_line_with_a_hint() -> None:
    store = MetadataStore("postgresql+psycopg://postgres:hunter2@127.0.0.1:1/x")
    with pytest.raises(StoreError) as err, store.read():
        pass
    message = err.value.message
    assert "\n" not in message
    assert "postgresql+psycopg://postgres:***@127.0.0.1:1/x" in message
    assert "hunter2" not in str(err.value)
    assert err.value.hint and "server is running" in err.value.hint


def test_sqlite_path_under_a_file_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    url = f"sqlite:///{blocker / 'sub' / 'seaway.db'}"
    with pytest.raises(StoreError) as err:
        MetadataStore(url).engine  # noqa: B018
    assert url in err.value.message
    assert "\n" not in err.value.message
    assert err.value.hint and "SEAWAY_METADATA_URL" in err.value.hint


def test_sqlite_path_that_is_a_directory_is_a_store_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}"
    with pytest.raises(StoreError) as err:
        MetadataStore(url).engine  # noqa: B018
    assert url in err.value.message
    assert err.value.hint and "server" not in err.value.hint, "SQLite has no server to check"


@pytest.mark.parametrize("url", ["nosuchdb://user:pw@host/db", "not a url at all"])
def test_bad_url_is_a_store_error(url: str) -> None:
    with pytest.raises(StoreError) as err:
        MetadataStore(url).engine  # noqa: B018
    assert mask_url(url) in err.value.message
    assert "pw@" not in err.value.message
    assert err.value.hint and "sqlite:///" in err.value.hint


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:secret@h:5432/d", "postgresql://u:***@h:5432/d"),
        ("postgresql://u:p@ss@h/d", "postgresql://u:***@h/d"),
        ("postgresql://u@h/d", "postgresql://u@h/d"),
        ("sqlite:///rel/x.db", "sqlite:///rel/x.db"),
    ],
)
def test_mask_url_hides_the_whole_password(url: str, masked: str) -> None:
    assert mask_url(url) == masked


# -- transactions -----------------------------------------------------------------------------


def test_a_failed_write_leaves_nothing_behind(store: MetadataStore) -> None:
    with pytest.raises(RuntimeError), store.write() as conn:
        add_event(conn, "half")
        raise RuntimeError("boom")
    assert count_events(store) == 0


def test_run_write_retries_a_unique_race_without_keeping_the_losing_attempt(
    store: MetadataStore,
) -> None:
    store.run_write(
        lambda conn: conn.execute(datasets.insert().values(name="d", created_at=utcnow()))
    )
    calls = []

    def create_once(conn: sa.Connection) -> str:
        calls.append(1)
        add_event(conn, f"attempt {len(calls)}")
        if len(calls) == 1:
            # As if another process had created "d" between our check and our insert.
            conn.execute(datasets.insert().values(name="d", created_at=utcnow()))
        return "done"

    assert store.run_write(create_once) == "done"
    assert len(calls) == 2
    with store.read() as conn:
        subjects = conn.execute(sa.select(events.c.subject)).scalars().all()
    assert subjects == ["attempt 2"]


def test_run_write_does_not_retry_other_integrity_errors(store: MetadataStore) -> None:
    calls = []

    def broken(conn: sa.Connection) -> None:
        calls.append(1)
        conn.execute(datasets.insert().values(name=None, created_at=utcnow()))

    with pytest.raises(sa.exc.IntegrityError):
        store.run_write(broken)
    assert len(calls) == 1, "a NOT NULL violation cannot be won by retrying"


def test_sql_errors_in_a_transaction_are_not_reported_as_unreachable(store: MetadataStore) -> None:
    store.engine  # noqa: B018
    # A bug in a query must surface as itself, not as "cannot reach the database".
    with pytest.raises(sa.exc.DBAPIError, match="no_such_table"), store.read() as conn:
        conn.execute(sa.text("SELECT * FROM no_such_table"))


# -- several processes at once ----------------------------------------------------------------


def race(mode: str, url: str, count: int, tmp_path: Path, workers: int = 4) -> list[Any]:
    """Run `workers` copies of metadata_worker.py, released at the same moment."""
    go = tmp_path / f"go-{mode}"
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), mode, url, str(w), str(count), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(workers)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.strip() == "ready", proc.communicate()[1]
        go.touch()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=240)
            assert proc.returncode == 0, err
            results.append(json.loads(out))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def assert_sqlite_intact(url: str) -> None:
    if url.startswith("sqlite"):
        with sqlite3.connect(sqlite_file(url)) as raw:
            assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_concurrent_event_writers_lose_nothing(store: MetadataStore, tmp_path: Path) -> None:
    store.engine  # noqa: B018 - migrate first: this test is about the writes
    results = race("events", store.url, 200, tmp_path)

    with store.read() as conn:
        rows = conn.execute(sa.select(events.c.id, events.c.subject)).all()
    subjects = [subject for _, subject in rows]
    assert len(rows) == 800
    assert sorted(subjects) == sorted(f"w{w}-{i}" for w in range(4) for i in range(200))
    reported = [i for r in results for i in r["ids"]]
    assert sorted(reported) == sorted(row_id for row_id, _ in rows)
    assert_sqlite_intact(store.url)


def test_concurrent_version_numbers_have_no_gap_or_duplicate(
    store: MetadataStore, tmp_path: Path
) -> None:
    store.engine  # noqa: B018
    per_worker = 25
    results = race("versions", store.url, per_worker, tmp_path)

    assert len({r["dataset_id"] for r in results}) == 1, "all must find the same dataset"
    with store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(datasets)).scalar_one() == 1
        numbers = conn.execute(sa.text("SELECT number FROM dataset_versions")).scalars().all()
    expected = list(range(1, 4 * per_worker + 1))
    assert sorted(numbers) == expected
    assert sorted(n for r in results for n in r["numbers"]) == expected
    for r in results:
        assert r["numbers"] == sorted(r["numbers"]), "one process's versions only go up"
    assert_sqlite_intact(store.url)


def test_concurrent_first_use_migrates_once(metadata_url: str, tmp_path: Path) -> None:
    race("migrate", metadata_url, 0, tmp_path)

    engine = sa.create_engine(metadata_url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
        assert list(versions) == [SCHEMA_REVISION]
        assert {"datasets", "dataset_versions", "events"} <= set(sa.inspect(conn).get_table_names())
    engine.dispose()
    assert_sqlite_intact(metadata_url)


def test_threads_that_open_a_new_store_at_once_all_see_its_tables(metadata_url: str) -> None:
    """A controller's loop and the caller's first write can ask for the engine together;
    none of them may reach the database before its schema exists."""
    import threading

    store = MetadataStore(metadata_url)
    start = threading.Barrier(12)
    errors: list[BaseException] = []

    def first_read(delay: float) -> None:
        start.wait()
        time.sleep(delay)  # spread over the time the first one spends creating tables
        try:
            with store.read() as conn:
                conn.execute(sa.select(events.c.seq).limit(1)).all()
        except BaseException as exc:  # reported below, on the test's own thread
            errors.append(exc)

    threads = [threading.Thread(target=first_read, args=(i * 0.01,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    store.close()
    assert errors == []
