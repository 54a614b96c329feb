"""The event log is a hash chain: editing, deleting or inserting a row directly in the
database is found by `audit verify`, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from seaway.audit.log import list_events, parse_since
from seaway.audit.verify import verify_chain
from seaway.data import datasets as ds
from seaway.project import Project
from seaway.store.events import record_event
from tests.data.conftest import write_random


@pytest.fixture
def logged(project: Project) -> Project:
    """A project with six events: three dataset versions and three plain events."""
    for i in range(3):
        write_random(project.root / "a.bin", 50, i)
        ds.add(project, "raw", [Path("a.bin")])
    for i in range(3):
        project.metadata.run_write(
            lambda c, i=i: record_event(c, "test.event", f"thing:{i}", {"i": i, "x": [1.5, "é"]})
        )
    return project


def _sql(project: Project, statement: str, **params: object) -> None:
    engine = sa.create_engine(project.metadata_url)
    with engine.begin() as conn:
        conn.execute(sa.text(statement), params)
    engine.dispose()


def test_an_untouched_log_verifies(logged: Project) -> None:
    report = verify_chain(logged)
    assert report.ok and report.events == 6
    assert [e.seq for e in list_events(logged)] == [6, 5, 4, 3, 2, 1]


def test_edited_event_is_found(logged: Project) -> None:
    _sql(logged, "UPDATE events SET actor = 'mallory' WHERE seq = 3")
    report = verify_chain(logged)
    assert report.problem is not None
    assert (report.problem.seq, report.problem.problem) == (3, "edited")


def test_edited_data_is_found(logged: Project) -> None:
    _sql(logged, "UPDATE events SET data = :d WHERE seq = 5", d=json.dumps({"i": 99}))
    problem = verify_chain(logged).problem
    assert problem is not None and problem.seq == 5 and problem.problem == "edited"


def test_deleted_event_is_found(logged: Project) -> None:
    _sql(logged, "DELETE FROM events WHERE seq = 2")
    problem = verify_chain(logged).problem
    assert problem is not None and problem.problem == "deleted" and problem.seq == 3


def test_inserted_event_is_found(logged: Project) -> None:
    # Make room after #4 by moving the later events up, then insert a forged event there.
    _sql(logged, "UPDATE events SET seq = seq + 100 WHERE seq > 4")
    _sql(logged, "UPDATE events SET seq = seq - 99 WHERE seq > 100")
    _sql(
        logged,
        "INSERT INTO events (ts, kind, actor, subject, data, seq, prev_hash, hash) "
        "SELECT ts, 'model.approved', 'mallory', 'model:x@1', NULL, 5, hash, hash "
        "FROM events WHERE seq = 4",
    )
    problem = verify_chain(logged).problem
    assert problem is not None and problem.seq == 5
    assert problem.problem in ("edited", "inserted")


def test_truncated_tail_is_found_against_a_saved_head(logged: Project) -> None:
    head = verify_chain(logged).head
    _sql(logged, "DELETE FROM events WHERE seq = 6")
    assert verify_chain(logged).ok  # a clean prefix is still a valid chain...
    problem = verify_chain(logged, expected_head=head).problem
    assert problem is not None and problem.problem == "head"  # ...but not the one recorded


def test_cli_verify_exit_codes(logged: Project, cli) -> None:  # type: ignore[no-untyped-def]
    ok = cli("audit", "verify", "--json")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["ok"] is True
    _sql(logged, "UPDATE events SET subject = 'dataset:other@1' WHERE seq = 1")
    broken = cli("audit", "verify")
    assert broken.exit_code == 1 and "#1" in broken.stdout and "edited" in broken.stdout


def test_cli_lists_and_filters(logged: Project, cli) -> None:  # type: ignore[no-untyped-def]
    every = json.loads(cli("audit", "--json").stdout)["events"]
    assert len(every) == 6
    data = json.loads(cli("audit", "--kind", "dataset.", "--json").stdout)["events"]
    assert [e["subject"] for e in data] == ["dataset:raw@3", "dataset:raw@2", "dataset:raw@1"]
    one = json.loads(cli("audit", "--subject", "thing:1", "--json").stdout)["events"]
    assert [e["data"]["i"] for e in one] == [1]


def test_parse_since() -> None:
    assert parse_since("2026-11-22") == datetime(2026, 11, 22, tzinfo=UTC)
    assert (datetime.now(UTC) - parse_since("2h")).total_seconds() == pytest.approx(7200, abs=5)
