"""`seaway data …` as a user runs it: JSON shapes, exit codes, messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import CliResult


@pytest.fixture
def added(project_dir: Path, cli) -> Path:  # type: ignore[no-untyped-def]
    (project_dir / "data").mkdir()
    (project_dir / "data" / "a.txt").write_text("alpha\n")
    (project_dir / "data" / "b.txt").write_text("beta\n")
    result = cli("data", "add", "raw", "data", "-m", "first")
    assert result.exit_code == 0, result.stderr
    return project_dir


def _json(result: CliResult) -> dict:  # type: ignore[type-arg]
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_add_json(project_dir: Path, cli) -> None:  # type: ignore[no-untyped-def]
    (project_dir / "f.txt").write_text("x")
    doc = _json(cli("data", "add", "f", "f.txt", "--json"))
    assert doc["ref"] == "f@1" and doc["created"] is True and doc["files"] == 1
    assert len(doc["tree_hash"]) == 64


def test_list_log_status_diff_json(added: Path, cli) -> None:  # type: ignore[no-untyped-def]
    listed = _json(cli("data", "list", "--json"))
    assert [d["name"] for d in listed["datasets"]] == ["raw"]
    assert listed["datasets"][0]["latest"]["version"] == 1

    log = _json(cli("data", "log", "raw", "--json"))
    assert [v["message"] for v in log["versions"]] == ["first"]

    assert _json(cli("data", "status", "--json"))["datasets"][0]["state"] == "unchanged"
    (added / "data" / "a.txt").write_text("changed\n")
    status = _json(cli("data", "status", "raw", "--json"))["datasets"][0]
    assert status["state"] == "modified"
    assert status["changes"] == [
        {"path": "a.txt", "change": "modified", "old_size": 6, "new_size": 8}
    ]

    assert cli("data", "add", "raw", "data").exit_code == 0
    diff = _json(cli("data", "diff", "raw", "1", "2", "--json"))
    assert diff["summary"] == {"added": 0, "removed": 0, "modified": 1}


def test_json_output_is_only_json(added: Path, cli) -> None:  # type: ignore[no-untyped-def]
    for args in (("data", "list"), ("data", "log", "raw"), ("data", "status"), ("data", "verify")):
        result = cli(*args, "--json")
        json.loads(result.stdout)


def test_human_status_names_the_change(added: Path, cli) -> None:  # type: ignore[no-untyped-def]
    (added / "data" / "c.txt").write_text("new")
    out = cli("data", "status").stdout
    assert "modified since raw@1" in out and "+ c.txt" in out


def test_checkout_and_verify(added: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("data", "checkout", "raw@1", str(tmp_path / "o")).exit_code == 0
    assert (tmp_path / "o" / "b.txt").read_text() == "beta\n"
    assert cli("data", "verify").exit_code == 0

    blobs = [
        p
        for p in (added / ".seaway" / "objects").rglob("*")
        if p.is_file() and p.parent.name != "tmp"
    ]
    victim = next(p for p in blobs if p.read_bytes() == b"beta\n")
    victim.chmod(0o644)
    victim.write_bytes(b"BETA\n")
    result = cli("data", "verify", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["problems"][0]["state"] == "corrupt"
    bad = cli("data", "checkout", "raw@1", str(tmp_path / "o2"))
    assert bad.exit_code == 2 and "corrupt" in bad.stderr and "expected BLAKE3" in bad.stderr


def test_errors_exit_2_with_what_and_hint(added: Path, cli) -> None:  # type: ignore[no-untyped-def]
    missing = cli("data", "add", "raw", "nowhere")
    assert missing.exit_code == 2 and "nowhere does not exist" in missing.stderr
    unknown = cli("data", "log", "rwa")
    assert unknown.exit_code == 2 and "did you mean 'raw'" in unknown.stderr
    version = cli("data", "checkout", "raw@5", "out")
    assert version.exit_code == 2 and "no version 5" in version.stderr
    link = cli("data", "add", "raw", "data", "--link", "teleport")
    assert link.exit_code == 2 and "unknown link mode" in link.stderr


def test_gc_dry_run_json(added: Path, cli) -> None:  # type: ignore[no-untyped-def]
    doc = _json(cli("data", "gc", "--dry-run", "--min-age", "0", "--json"))
    assert doc["dry_run"] is True and doc["removed"] == 0 and doc["kept"] == 3


CHECKED_SPEC = """\
name: demo
datasets:
  people:
    path: people.csv
    checks:
      - {column: age, min: 0}
      - {column: name, not_null: true}
"""


def test_a_failing_check_keeps_the_version_marked_failed(project_dir: Path, cli) -> None:  # type: ignore[no-untyped-def]
    (project_dir / "seaway.yaml").write_text(CHECKED_SPEC)
    (project_dir / "people.csv").write_text("name,age\nann,31\nbob,-4\n")
    result = cli("data", "add", "people", "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["ref"] == "people@1" and doc["checks"] == "failed"
    failed = [r for r in doc["check_report"]["results"] if r["status"] == "failed"]
    assert [r["column"] for r in failed] == ["age"]

    logged = _json(cli("data", "log", "people", "--json"))["versions"][0]
    assert logged["checks"] == "failed"
    assert cli("data", "check", "people@1").exit_code == 1

    (project_dir / "people.csv").write_text("name,age\nann,31\nbob,4\n")
    fixed = cli("data", "add", "people", "--json")
    assert fixed.exit_code == 0
    assert json.loads(fixed.stdout)["checks"] == "passed"


def test_a_malformed_spec_is_exit_2_naming_file_line_and_field(project_dir: Path, cli) -> None:  # type: ignore[no-untyped-def]
    (project_dir / "seaway.yaml").write_text("name: demo\ndatasets:\n  people:\n    pth: x.csv\n")
    (project_dir / "x.csv").write_text("a\n1\n")
    result = cli("data", "add", "people", "x.csv")
    assert result.exit_code == 2
    assert "seaway.yaml:4:5" in result.stderr and "did you mean 'path'" in result.stderr
    assert "Traceback" not in result.stderr
