"""`seaway validate` and `seaway schema`, as a user runs them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from seaway.spec import project_json_schema

TESTDATA = Path(__file__).parent / "testdata"
Cli = Callable[..., Any]  # the `cli` fixture of tests/conftest.py
DESIGN = (TESTDATA / "valid-design.yaml").read_text()
PROD = (TESTDATA / "valid-env-design.yaml").read_text()


def setup_design(root: Path) -> None:
    (root / "seaway.yaml").write_text(DESIGN)
    (root / "environments").mkdir(exist_ok=True)
    (root / "environments" / "prod.yaml").write_text(PROD)
    (root / "environments" / "staging.yaml").write_text("deployments: {}\n")


def test_validate_a_valid_project(project_dir: Path, cli: Cli) -> None:
    setup_design(project_dir)
    result = cli("validate")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "seaway.yaml: valid; 2 environment files valid\n"


def test_validate_minimal_project(project_dir: Path, cli: Cli) -> None:
    result = cli("validate")
    assert result.exit_code == 0
    assert result.stdout == "seaway.yaml: valid; no environment files\n"


def test_validate_lists_problems_and_exits_1(project_dir: Path, cli: Cli) -> None:
    (project_dir / "seaway.yaml").write_text("name: demo\nstore: {linc: copy}\n")
    (project_dir / "environments").mkdir()
    (project_dir / "environments" / "prod.yaml").write_text("target: k8s\n")
    result = cli("validate")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "seaway.yaml:2:9: store.linc: unknown key 'linc'; did you mean 'link'?",
        "environments/prod.yaml:1:9: target: expected one of local, kubernetes, ray or a list, "
        "got 'k8s'",
    ]
    assert "2 problems (seaway.yaml: 1, environments/prod.yaml: 1)" in result.stderr


def test_validate_shows_warnings_without_failing(project_dir: Path, cli: Cli) -> None:
    (project_dir / "environments").mkdir()
    (project_dir / "environments" / "prod.yaml").write_text("deployments:\n  ghost: {version: 1}\n")
    result = cli("validate")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "warning: environments/prod.yaml:2:3: deployments.ghost: model 'ghost' is not declared "
        "in seaway.yaml (under models, or as a pipeline's register.model)",
        "seaway.yaml: valid; 1 environment file valid",
    ]


def test_validate_json_valid(project_dir: Path, cli: Cli) -> None:
    setup_design(project_dir)
    result = cli("validate", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"valid": True, "problems": [], "warnings": []}


def test_validate_json_invalid(project_dir: Path, cli: Cli) -> None:
    (project_dir / "seaway.yaml").write_text("name: demo\ndatasets:\n  a: {format: xls}\n")
    result = cli("validate", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "valid": False,
        "problems": [
            {
                "file": "seaway.yaml",
                "line": 3,
                "column": 15,
                "path": "datasets.a.format",
                "message": "must be one of: auto, parquet, csv; got 'xls'",
            }
        ],
        "warnings": [],
    }


def test_validate_json_reports_unparseable_files(project_dir: Path, cli: Cli) -> None:
    (project_dir / "seaway.yaml").write_text("name: [unclosed\n")
    result = cli("validate", "--json")
    assert result.exit_code == 1
    (problem,) = json.loads(result.stdout)["problems"]
    assert problem["file"] == "seaway.yaml" and problem["line"] == 2
    assert problem["message"].startswith("invalid YAML: ")


def test_validate_with_directory_option(tmp_path: Path, cli: Cli) -> None:
    setup_design(tmp_path)
    result = cli("-C", str(tmp_path), "validate")
    assert result.exit_code == 0
    assert "2 environment files valid" in result.stdout


def test_validate_outside_a_project(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("validate")
    assert result.exit_code == 2
    assert "no seaway.yaml" in result.stderr


def test_schema_prints_the_project_schema(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no project needed
    result = cli("schema")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == project_json_schema()


def test_schema_for_environments(tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("schema", "--environment")
    schema = json.loads(result.stdout)
    assert schema["title"] == "seaway environment"
    assert "deployments" in schema["properties"]


def test_schema_out_writes_a_file(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("schema", "--out", "seaway.schema.json")
    assert result.exit_code == 0
    assert result.stdout == ""
    written = json.loads((tmp_path / "seaway.schema.json").read_text())
    assert written["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_schema_out_to_a_missing_directory(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("schema", "--out", "no/such/dir/schema.json")
    assert result.exit_code == 2
    assert "cannot write" in result.stderr
