"""A fully cached rerun on SQLite is recorded by the standard-library lane
(seaway.pipeline.sqlite_lane), exactly as the runner would record it; anything the lane
cannot record the same way goes to the runner.

Which path ran is told from outside: `seaway` runs in a fresh interpreter that reports at
exit whether SQLAlchemy, pydantic or Rich were imported (the lane imports none of them).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from seaway.project import Project
from tests.conftest import git
from tests.pipeline.conftest import copy_fixture

PLAIN = ["prepare", "featurize", "train", "report"]

_PROBE = """
import sys
from seaway.cli.main import run
code = run(sys.argv[1:])
heavy = [m for m in ("sqlalchemy", "pydantic", "rich") if m in sys.modules]
sys.stderr.write("\\n[imported: " + " ".join(heavy) + "]\\n")
sys.exit(code)
"""
_TS = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")


@dataclass
class Probe:
    exit_code: int
    stdout: str
    stderr: str
    imported: set[str]

    @property
    def lane(self) -> bool:
        """The run was recorded without SQLAlchemy (and without pydantic or Rich)."""
        return not self.imported


def seaway(root: Path, *args: str, env: dict[str, str] | None = None) -> Probe:
    """`seaway ARGS` in a fresh interpreter, telling which heavy libraries it imported."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        cwd=root,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    found = re.search(r"\[imported: ([^\]]*)\]\s*$", proc.stderr)
    assert found, proc.stderr
    return Probe(proc.returncode, proc.stdout, proc.stderr, set(found.group(1).split()))


def statuses(doc: dict[str, Any]) -> dict[str, str]:
    return {s["step"]: s["status"] for s in doc["steps"]}


def show(root: Path, ref: str) -> dict[str, Any]:
    """`seaway runs show REF --json` (read back through SQLAlchemy)."""
    probe = seaway(root, "runs", "show", ref, "--json")
    assert probe.exit_code == 0, probe.stderr
    doc: dict[str, Any] = json.loads(probe.stdout)
    return doc


def comparable(doc: dict[str, Any]) -> dict[str, Any]:
    """A run as `runs show --json` prints it, less what differs between any two runs."""
    doc = json.loads(json.dumps(doc))
    for key in ("id", "seq", "started_at", "ended_at", "duration_s"):
        doc.pop(key)
    assert doc["tags"].pop("seaway.pid").isdigit()
    for series in doc.get("metric_history", {}).values():
        for point in series.get("points", []):
            point.pop("ts", None)
        series.pop("last_ts", None)
    return doc


def db_rows(project: Project, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every row the run wrote, as stored (JSON as text, booleans as 0/1), less its id,
    timestamps and durations; those are checked for the format SQLAlchemy stores."""
    path = project.metadata_url.removeprefix("sqlite:///")
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        tables = {
            "runs": "SELECT * FROM runs WHERE id = ?",
            "run_params": "SELECT * FROM run_params WHERE run_id = ? ORDER BY key",
            "run_steps": "SELECT * FROM run_steps WHERE run_id = ? ORDER BY step",
            "run_metrics": "SELECT * FROM run_metrics WHERE run_id = ? ORDER BY id",
            "run_latest_metrics": "SELECT * FROM run_latest_metrics WHERE run_id = ? ORDER BY key",
            "run_artifacts": "SELECT * FROM run_artifacts WHERE run_id = ? ORDER BY name",
        }
        out: dict[str, list[dict[str, Any]]] = {}
        for table, sql in tables.items():
            rows = []
            for row in conn.execute(sql, (run_id,)):
                values = dict(row)
                for key in ("started_at", "ended_at"):
                    if values.get(key) is not None:
                        assert _TS.match(values.pop(key)), (table, key, row[key])
                for key in ("id", "run_id", "seq", "duration_s", "ts"):
                    values.pop(key, None)
                if table == "runs":
                    tags = json.loads(values.pop("tags"))
                    assert tags.pop("seaway.pid").isdigit()
                    values["tags"] = tags
                rows.append(values)
            out[table] = rows
        out["types"] = [
            dict(r)
            for r in conn.execute(
                "SELECT typeof(started_at) AS s, typeof(ended_at) AS e, typeof(git_dirty) AS g,"
                " typeof(duration_s) AS d FROM runs WHERE id = ?",
                (run_id,),
            )
        ]
        return out
    finally:
        conn.close()


def test_the_lane_matches_the_current_schema() -> None:
    # When a migration is added, the lane's statements must be checked against it and the
    # revision added; until then runs go to the runner, which is safe but slow.
    from seaway.pipeline.sqlite_lane import RUN_LANE_REVISIONS
    from seaway.store.schema import SCHEMA_REVISION

    assert SCHEMA_REVISION in RUN_LANE_REVISIONS


@pytest.fixture
def committed(fx_sqlite: Project) -> Project:
    """The fixture project with its files committed, so runs record a git commit."""
    (fx_sqlite.root / ".gitignore").write_text(".seaway/\ntrace/\n")
    git(fx_sqlite.root, "add", "-A")
    git(fx_sqlite.root, "commit", "-q", "-m", "fixture")
    return fx_sqlite


def test_a_cached_rerun_takes_the_lane_and_prints_as_the_runner_does(committed: Project) -> None:
    first = seaway(committed.root, "run", "plain")
    assert first.exit_code == 0, first.stderr
    assert "sqlalchemy" in first.imported  # the first run needs the runner
    again = seaway(committed.root, "run", "plain")
    assert again.exit_code == 0, again.stderr
    assert again.lane, again.imported
    lines = again.stdout.splitlines()
    assert re.fullmatch(r"run #2 [0-9a-f]{32}", lines[0])
    keys = {s["step"]: s["cache_key"] for s in show(committed.root, "1")["steps"]}
    assert lines[1:-1] == [f"{step}: cached  {keys[step][:10]}" for step in PLAIN]
    assert re.fullmatch(r"run #2 succeeded: 4 cached in \d+\.\d\ds", lines[-1])


def test_lane_and_runner_record_the_same_rows(committed: Project) -> None:
    assert seaway(committed.root, "run", "plain").exit_code == 0
    runner = seaway(committed.root, "run", "plain", "--json", env={"SEAWAY_SQLALCHEMY_ONLY": "1"})
    lane = seaway(committed.root, "run", "plain", "--json")
    assert runner.exit_code == 0 and lane.exit_code == 0, lane.stderr
    assert not runner.lane and lane.lane
    by_runner, by_lane = json.loads(runner.stdout), json.loads(lane.stdout)
    assert statuses(by_runner) == statuses(by_lane) == dict.fromkeys(PLAIN, "cached")
    assert by_lane["git_commit"] and by_lane["git_dirty"] is False
    assert by_lane["metrics"] == {"accuracy": 0.75, "n": 4.0, "rows": 4.0}
    assert by_lane["params"] == {"scale": 3, "C": 0.5, "label": "plain"}
    assert [d["ref"] for d in by_lane["lineage"]["datasets"]] == ["raw@1"]

    # What `runs show` reads back is the same, and is what `run --json` printed.
    shown_runner, shown_lane = show(committed.root, "2"), show(committed.root, "3")
    assert comparable(shown_lane) == comparable(shown_runner)
    shown_lane.pop("metric_history")
    assert shown_lane == by_lane
    # So are the stored rows, byte for byte where they do not hold ids or times.
    rows_runner = db_rows(committed, by_runner["id"])
    rows_lane = db_rows(committed, by_lane["id"])
    assert rows_lane == rows_runner
    assert len(rows_lane["run_steps"]) == 4 and len(rows_lane["run_metrics"]) == 3


def test_lane_runs_are_listed_resumed_and_leave_the_audit_log_intact(
    committed: Project,
) -> None:
    assert seaway(committed.root, "run", "plain").exit_code == 0
    lane = seaway(committed.root, "run", "plain", "--json")
    assert lane.lane
    run_id = json.loads(lane.stdout)["id"]
    listing = json.loads(seaway(committed.root, "runs", "--json").stdout)
    assert [(r["seq"], r["status"]) for r in listing["runs"]] == [
        (2, "succeeded"),
        (1, "succeeded"),
    ]
    assert listing["runs"][0]["metrics"] == {"accuracy": 0.75, "n": 4.0, "rows": 4.0}
    resumed = seaway(committed.root, "run", "--resume", run_id[:8], "--json")
    assert resumed.exit_code == 0, resumed.stderr
    doc = json.loads(resumed.stdout)
    assert doc["resumed_from"] == run_id and set(statuses(doc).values()) == {"cached"}
    verify = seaway(committed.root, "audit", "verify")
    assert verify.exit_code == 0 and "intact" in verify.stdout


def test_a_changed_step_takes_the_runner_then_the_lane_again(fx_sqlite: Project) -> None:
    assert seaway(fx_sqlite.root, "run", "plain").exit_code == 0
    model = fx_sqlite.root / "steps" / "model.py"
    model.write_text(model.read_text() + "\n# a comment changes the key\n")
    changed = seaway(fx_sqlite.root, "run", "plain", "--json")
    assert changed.exit_code == 0, changed.stderr
    assert not changed.lane
    assert statuses(json.loads(changed.stdout)) == {
        "prepare": "cached",
        "featurize": "cached",
        "train": "ran",
        "report": "cached",
    }
    again = seaway(fx_sqlite.root, "run", "plain", "--json")
    assert again.lane and set(statuses(json.loads(again.stdout)).values()) == {"cached"}


def test_force_and_new_params_take_the_runner(fx_sqlite: Project) -> None:
    assert seaway(fx_sqlite.root, "run", "plain").exit_code == 0
    forced = seaway(fx_sqlite.root, "run", "plain", "--force", "train", "--json")
    assert forced.exit_code == 0 and not forced.lane
    assert statuses(json.loads(forced.stdout))["train"] == "ran"
    other = seaway(fx_sqlite.root, "run", "plain", "-p", "C=2", "--json")
    assert other.exit_code == 0 and not other.lane
    assert statuses(json.loads(other.stdout))["train"] == "ran"
    # Given params that match what is cached need the spec to check them, not the runner.
    same = seaway(fx_sqlite.root, "run", "plain", "-p", "C=2", "--json")
    assert same.exit_code == 0 and "sqlalchemy" not in same.imported
    assert json.loads(same.stdout)["params"]["C"] == 2.0


@pytest.mark.postgres
def test_postgres_takes_the_runner(
    project_dir: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, shell_path: None
) -> None:
    copy_fixture(project_dir)
    monkeypatch.setenv("SEAWAY_METADATA_URL", pg_url)
    assert seaway(project_dir, "data", "add", "raw").exit_code == 0
    assert seaway(project_dir, "run", "plain").exit_code == 0
    again = seaway(project_dir, "run", "plain", "--json")
    assert again.exit_code == 0, again.stderr
    assert not again.lane
    doc = json.loads(again.stdout)
    assert set(statuses(doc).values()) == {"cached"}
    assert doc["metrics"] == {"accuracy": 0.75, "n": 4.0, "rows": 4.0}


def test_a_registered_model_is_recorded_by_the_lane_as_by_the_runner(
    committed: Project,
) -> None:
    first = seaway(committed.root, "run", "packaged", "--json")
    assert first.exit_code == 0, first.stderr
    registered = json.loads(first.stdout)
    assert registered["tags"]["seaway.registered"] == "toy-folder@1"
    runner = seaway(
        committed.root, "run", "packaged", "--json", env={"SEAWAY_SQLALCHEMY_ONLY": "1"}
    )
    lane = seaway(committed.root, "run", "packaged", "--json")
    assert runner.exit_code == 0 and lane.exit_code == 0, lane.stderr
    assert not runner.lane and lane.lane
    by_lane = json.loads(lane.stdout)
    assert by_lane["tags"]["seaway.registered"] == "toy-folder@1"
    [model] = by_lane["artifacts"]
    out = next(s for s in by_lane["steps"] if s["step"] == "package")["outputs"]["model"]
    assert (model["name"], model["kind"]) == ("toy-folder", "model")
    assert (model["digest"], model["size"]) == (out["manifest_hash"], out["size"])
    assert comparable(show(committed.root, "3")) == comparable(show(committed.root, "2"))
    assert db_rows(committed, by_lane["id"]) == db_rows(committed, json.loads(runner.stdout)["id"])
    assert (
        seaway(committed.root, "run", "packaged")
        .stdout.splitlines()[-1]
        .endswith("; model toy-folder@1")
    )


def test_a_model_not_registered_yet_or_an_identity_to_check_takes_the_runner(
    fx_sqlite: Project,
) -> None:
    # The steps run, but registering refuses a token that is not one: nothing registered.
    refused = seaway(fx_sqlite.root, "run", "packaged", env={"SEAWAY_TOKEN": "not-a-token"})
    assert refused.exit_code == 1
    assert "registering toy-folder from package.model failed" in refused.stderr
    # Every step cached, the model not registered: the runner registers it.
    registers = seaway(fx_sqlite.root, "run", "packaged", "--json")
    assert registers.exit_code == 0, registers.stderr
    assert not registers.lane
    doc = json.loads(registers.stdout)
    assert set(statuses(doc).values()) == {"cached"}
    assert doc["tags"]["seaway.registered"] == "toy-folder@1"
    # Registered now, but a token is given: register_model must check it, as before.
    checked = seaway(fx_sqlite.root, "run", "packaged", env={"SEAWAY_TOKEN": "not-a-token"})
    assert checked.exit_code == 1 and not checked.lane
    assert "registering toy-folder from package.model failed" in checked.stderr
    assert seaway(fx_sqlite.root, "run", "packaged").lane


def test_on_a_terminal_the_table_is_drawn_without_rich(fx_sqlite: Project) -> None:
    import pty

    assert seaway(fx_sqlite.root, "run", "plain").exit_code == 0
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", _PROBE, "run", "plain"],
        cwd=fx_sqlite.root,
        env={**os.environ, "TERM": "xterm", "NO_COLOR": "1"},
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert proc.wait(timeout=120) == 0
    os.close(controller)
    lines = b"".join(chunks).decode().replace("\r\n", "\n").splitlines()
    assert lines[-1] == "[imported: ]"
    assert re.fullmatch(r"run #2 [0-9a-f]{32}", lines[0])
    assert [c.strip() for c in lines[1].split("\u2503")] == [
        "step",
        "status",
        "duration",
        "cache key",
    ]
    rows = [[c.strip() for c in line.split("\u2502")] for line in lines[3:7]]
    assert [(r[0], r[1]) for r in rows] == [(step, "cached") for step in PLAIN]
    assert all(re.fullmatch(r"[0-9a-f]{10}", r[3]) for r in rows)
    assert lines[7].startswith("run #2 succeeded: 4 cached in ")
