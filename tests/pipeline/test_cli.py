"""`seaway run` as a user runs it: output, JSON, exit codes, bad input."""

from __future__ import annotations

import json
from pathlib import Path

from seaway.project import Project
from tests.conftest import CliResult


def test_plain_output_lists_steps_and_a_summary(fx_sqlite: Project, cli) -> None:  # type: ignore[no-untyped-def]
    result: CliResult = cli("run", "train")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("run #1 ")
    assert any(line.startswith("prepare: ran ") for line in lines)
    assert lines[-1].startswith("run #1 succeeded: 4 ran in ")
    again = cli("run", "train")
    assert "prepare: cached" in again.stdout
    assert again.stdout.splitlines()[-1].startswith("run #2 succeeded: 4 cached in ")


def test_json_prints_only_the_run_record(fx_sqlite: Project, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("run", "train", "--json", "-p", "C=0.5", "--param", "label=x y")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["status"] == "succeeded" and doc["pipeline"] == "train"
    assert doc["params"] == {"scale": 2, "C": 0.5, "label": "x y"}
    assert [s["status"] for s in doc["steps"]] == ["ran"] * 4


def test_params_file_then_param_overrides(fx_sqlite: Project, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    params = tmp_path / "p.yaml"
    params.write_text("C: 0.1\nlabel: from-file\n")
    doc = json.loads(cli("run", "train", "--params", str(params), "-p", "C=0.2", "--json").stdout)
    assert doc["params"]["C"] == 0.2 and doc["params"]["label"] == "from-file"
    as_json = tmp_path / "p.json"
    as_json.write_text('{"scale": 5}')
    assert (
        json.loads(cli("run", "train", "--params", str(as_json), "--json").stdout)["params"][
            "scale"
        ]
        == 5
    )


def test_failed_run_exits_1_with_the_error(fx_sqlite: Project, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("run", "broken")
    assert result.exit_code == 1
    assert "explode: failed" in result.stdout
    assert "after: skipped" in result.stdout
    assert "error: step 'explode' failed: ValueError: boom" in result.stderr
    doc = json.loads(cli("run", "broken", "--json").stdout)
    assert doc["status"] == "failed"


def test_bad_param_type_is_a_usage_error(fx_sqlite: Project, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("run", "train", "-p", "C=abc")
    assert result.exit_code == 2
    assert "pipeline 'train': param 'C' expects float; 'abc' is not of type float" in result.stderr
    bool_for_int = cli("run", "train", "-p", "scale=true")
    assert bool_for_int.exit_code == 2 and "param 'scale' expects int" in bool_for_int.stderr


def test_unknown_param_and_bad_assignment(fx_sqlite: Project, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("run", "train", "-p", "CC=1")
    assert result.exit_code == 2
    assert "pipeline 'train' has no param 'CC'; did you mean 'C'?" in result.stderr
    assert "its params are: scale, C, label" in result.stderr
    bad = cli("run", "train", "-p", "C")
    assert bad.exit_code == 2 and "is not KEY=VALUE" in bad.stderr


def test_unknown_pipeline_lists_the_pipelines(fx_sqlite: Project, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("run", "trian")
    assert result.exit_code == 2
    assert "no pipeline 'trian' in seaway.yaml; did you mean 'train'?" in result.stderr
    assert "the pipelines are: " in result.stderr and "broken" in result.stderr


def test_unknown_force_step_and_executor(fx_sqlite: Project, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("run", "train", "--force", "featurise")
    assert result.exit_code == 2
    assert "has no step 'featurise'; did you mean 'featurize'?" in result.stderr
    bad = cli("run", "train", "--executor", "lcoal")
    assert bad.exit_code == 2 and "unknown executor 'lcoal'; did you mean 'local'?" in bad.stderr
    assert cli("run", "train", "-j", "0").exit_code == 2


def test_resume_from_the_cli(fx_sqlite: Project, cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("run", "gated").exit_code == 1
    (fx_sqlite.root / "trace" / "allow").write_text("")
    result = cli("run", "--resume", "1", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["pipeline"] == "gated" and doc["resumed_from"]
    assert {s["step"]: s["status"] for s in doc["steps"]}["start"] == "cached"


def test_missing_pipeline_argument(fx_sqlite: Project, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("run")
    assert result.exit_code == 2 and "no pipeline given" in result.stderr


def test_spec_without_pipelines(project_dir: Path, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("run", "train")
    assert result.exit_code == 2
    assert "declares no pipelines" in result.stderr


def test_dataset_never_added(project_dir: Path, cli, shell_path: None) -> None:  # type: ignore[no-untyped-def]
    from tests.pipeline.conftest import copy_fixture

    copy_fixture(project_dir)
    result = cli("run", "train")
    assert result.exit_code == 2
    assert "step 'prepare' reads dataset:raw (input 'raw'): unknown dataset 'raw'" in result.stderr
