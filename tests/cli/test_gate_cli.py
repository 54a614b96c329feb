"""`seaway gate NAME@V`: the table, --json, --only, and exit codes 0 / 1 / 2."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from seaway.project import Project
from tests.gates.support import Setup, build, write_spec


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 200-column console, so table cells are not folded across lines."""
    import seaway.cli.output

    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(seaway.cli.output, "_console", None)


@pytest.fixture
def churn(project_dir: Path) -> Iterator[Setup]:
    project = Project(project_dir)
    yield build(project)
    project.close()


def test_passing_gates_print_a_table_and_exit_0(churn: Setup, cli: Any) -> None:
    result = cli("gate", "churn@1")
    assert result.exit_code == 0, result.stdout + result.stderr
    out = result.stdout
    assert "churn@1: passed (7 passed)" in out
    for text in ("auc>=0.7", "no_regression(auc vs champion)", "latency(batch 1)", "PASSED"):
        assert text in out
    assert "no champion yet" in out


def test_json_is_the_stored_report(churn: Setup, cli: Any) -> None:
    result = cli("gate", "churn@1", "--json", "--only", "metric", "--only", "scan")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["ref"] == "churn@1" and doc["passed"] is True
    assert doc["only"] == ["metric", "scan"]
    assert [r["kind"] for r in doc["results"]] == ["metric", "scan"]
    assert doc["results"][0]["figures"]["value"] == 0.8


def test_a_required_gate_that_does_not_pass_exits_1_with_its_hint(churn: Setup, cli: Any) -> None:
    write_spec(
        churn.root,
        {
            "churn": {
                "gates": [
                    {"metric": "auc", "min": 0.9},
                    {"robustness": {"noise": 0.1, "max_flip_rate": 0.1}},
                ]
            }
        },
    )
    result = cli("gate", "churn@1")
    assert result.exit_code == 1
    assert "FAILED" in result.stdout and "below the minimum 0.9" in result.stdout
    assert "ERROR" in result.stdout and "declares no evaluation data" in result.stdout
    assert "hint (robustness(noise 0.1)): add to seaway.yaml under models.churn" in result.stdout


def test_a_gate_that_is_not_required_does_not_block(churn: Setup, cli: Any) -> None:
    write_spec(churn.root, {"churn": {"gates": [{"metric": "auc", "min": 0.9, "required": False}]}})
    result = cli("gate", "churn@1", "--json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["passed"] is True and doc["results"][0]["status"] == "failed"


def test_bad_input_exits_2(churn: Setup, cli: Any) -> None:
    unknown = cli("gate", "churn@7")
    assert unknown.exit_code == 2 and "error:" in unknown.stderr
    assert cli("gate", "ghost@1").exit_code == 2
    bad_kind = cli("gate", "churn@1", "--only", "speed")
    assert bad_kind.exit_code == 2 and "unknown gate kind 'speed'" in bad_kind.stderr
    write_spec(churn.root, {"churn": {"description": "no gates yet"}})
    none = cli("gate", "churn@1")
    assert none.exit_code == 2 and "declares no gates" in none.stderr
