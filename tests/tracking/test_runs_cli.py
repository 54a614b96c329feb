"""`seaway runs …` as a user runs it: listing, show, compare, logs; JSON shapes, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from seaway.project import Project
from seaway.tracking import RunStore, StepRecord
from tests.conftest import CliResult


def _json(result: CliResult) -> Any:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def filled(store: RunStore, project: Project) -> list[str]:
    """Three finished runs of `train` (auc 0.7, 0.8, 0.9) and one run of `tune`."""
    ids = []
    for i, auc in enumerate((0.7, 0.8, 0.9)):
        run = store.create_run(pipeline="train", params={"C": [1.0, 0.5, 0.5][i], "seed": 0})
        store.log_metrics(
            run.id,
            [("auc", auc - 0.1, 0, 1.0), ("auc", auc, 1, 2.0), ("loss", 1 - auc, 1, 2.0)],
        )
        store.finish(run.id, "succeeded")
        ids.append(run.id)
    other = store.create_run(pipeline="tune", name="sweep")
    store.log_metrics(other.id, [("f1", 0.5, 0, 1.0)])
    store.finish(other.id, "failed", "boom")
    ids.append(other.id)
    return ids


def test_list_json_with_filters_and_headline_metrics(cli, filled: list[str]) -> None:  # type: ignore[no-untyped-def]
    doc = _json(cli("runs", "--json"))
    assert [r["seq"] for r in doc["runs"]] == [4, 3, 2, 1]
    assert doc["headline_metrics"] == ["auc", "loss", "f1"]
    first = doc["runs"][-1]
    assert first["metrics"] == {"auc": 0.7, "loss": pytest.approx(0.3)}
    assert first["params"] == {"C": 1.0, "seed": 0} and first["pipeline"] == "train"

    found = _json(cli("runs", "--where", "auc>0.75", "--where", "params.C=0.5", "--json"))
    assert [r["seq"] for r in found["runs"]] == [3, 2]
    top = _json(cli("runs", "list", "--pipeline", "train", "--sort", "-auc", "-n", "1", "--json"))
    assert [r["seq"] for r in top["runs"]] == [3]
    assert _json(cli("runs", "--param", "C=1", "--json"))["runs"][0]["seq"] == 1
    assert [r["seq"] for r in _json(cli("runs", "--status", "failed", "--json"))["runs"]] == [4]


def test_list_for_people(cli, filled: list[str]) -> None:  # type: ignore[no-untyped-def]
    out = cli("runs").stdout
    assert filled[0][:8] in out and "#1" in out and "train" in out and "sweep" in out
    assert "auc" in out and "0.9" in out and "succeeded" in out and "failed" in out
    assert "no runs match" in cli("runs", "--where", "auc>5").stdout


def test_empty_project(cli, project: Project) -> None:  # type: ignore[no-untyped-def]
    assert "no runs yet" in cli("runs").stdout
    assert _json(cli("runs", "--json")) == {"runs": [], "headline_metrics": []}


def test_bad_filter_is_a_usage_error(cli, project: Project) -> None:  # type: ignore[no-untyped-def]
    result = cli("runs", "--where", "auc~0.8")
    assert result.exit_code == 2
    assert "auc~0.8" in result.stderr and "accepted forms" in result.stderr
    assert cli("runs", "--param", "C").exit_code == 2


def test_show_json_has_history_steps_and_lineage(  # type: ignore[no-untyped-def]
    cli, store: RunStore, project: Project
) -> None:
    run = store.create_run(pipeline="train", lineage={"datasets": {"customers": "customers@2"}})
    store.log_metrics(run.id, [("loss", 0.9, 0, 1.0), ("loss", 0.4, 1, 2.0), ("loss", 0.6, 2, 3.0)])
    digest = project.blobs.put_bytes(b"fitting...\ndone\n")
    t0 = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
    fit = StepRecord(
        "fit", "ran", cache_key="f" * 64, started_at=t0, duration_s=2.0, log_digest=digest
    )
    store.record_step(run.id, fit)
    later = t0 + timedelta(seconds=2)
    evaluate = StepRecord("evaluate", "cached", cache_key="e" * 64, started_at=later)
    store.record_step(run.id, evaluate)
    store.log_artifact(run.id, "model", digest, 16, "model")
    store.finish(run.id, "succeeded")

    doc = _json(cli("runs", "show", "#1", "--json"))
    assert doc["id"] == run.id and doc["lineage"]["datasets"] == {"customers": "customers@2"}
    loss = doc["metric_history"]["loss"]
    assert {k: loss[k] for k in ("count", "first", "last", "min", "max")} == {
        "count": 3,
        "first": 0.9,
        "last": 0.6,
        "min": 0.4,
        "max": 0.9,
    }
    assert [p["step"] for p in loss["points"]] == [0, 1, 2]
    assert [(s["step"], s["status"]) for s in doc["steps"]] == [
        ("fit", "ran"),
        ("evaluate", "cached"),
    ]
    assert doc["artifacts"][0]["kind"] == "model"
    assert doc["environment"]["python"]

    human = cli("runs", "show", run.id[:6]).stdout
    assert "fit" in human and "cached" in human and "ffffffffff" in human
    assert "customers@2" in human and "0.6" in human


def test_show_says_a_running_run_may_have_crashed(  # type: ignore[no-untyped-def]
    cli, store: RunStore, project: Project
) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    run = store.create_run()
    store.set_tags(run.id, {"seaway.pid": dead.stdout.strip()})
    shown = cli("runs", "show", "1").stdout
    assert "running?" in shown and "crashed" in shown
    assert _json(cli("runs", "--json"))["runs"][0]["maybe_crashed"] is True
    assert "running?" in cli("runs").stdout

    live = store.create_run()
    assert "may have crashed" in cli("runs", "show", live.id).stdout
    assert _json(cli("runs", "show", live.id, "--json"))["maybe_crashed"] is False


def test_compare_marks_differences(cli, filled: list[str]) -> None:  # type: ignore[no-untyped-def]
    doc = _json(cli("runs", "compare", "1", "2", "--json"))
    assert [r["seq"] for r in doc["runs"]] == [1, 2]
    params = {row["key"]: row for row in doc["params"]}
    assert params["C"] == {"key": "C", "values": [1.0, 0.5], "differs": True}
    assert params["seed"]["differs"] is False
    metrics = {row["key"]: row for row in doc["metrics"]}
    assert metrics["auc"]["values"] == [0.7, 0.8] and metrics["auc"]["differs"] is True

    with_missing = _json(cli("runs", "compare", "1", "#4", "--json"))
    f1 = next(row for row in with_missing["metrics"] if row["key"] == "f1")
    assert f1 == {"key": "f1", "values": [None, 0.5], "differs": True}

    human = cli("runs", "compare", "1", "2", "3")
    assert human.exit_code == 0 and "param C" in human.stdout and "rows differ" in human.stdout
    assert cli("runs", "compare", "1").exit_code == 2


def test_logs_print_each_steps_capture(  # type: ignore[no-untyped-def]
    cli, store: RunStore, project: Project
) -> None:
    run = store.create_run(pipeline="train")
    fit = project.blobs.put_bytes(b"epoch 1\nepoch 2\n")
    evaluate = project.blobs.put_bytes(b"auc=0.9")
    store.record_step(run.id, StepRecord("fit", "ran", log_digest=fit))
    store.record_step(run.id, StepRecord("evaluate", "ran", log_digest=evaluate))
    store.record_step(run.id, StepRecord("publish", "skipped"))

    everything = cli("runs", "logs", "1")
    assert everything.exit_code == 0
    assert "==> fit (ran) <==\nepoch 1\nepoch 2\n" in everything.stdout
    assert "==> evaluate (ran) <==\nauc=0.9\n" in everything.stdout
    assert cli("runs", "logs", "1", "evaluate").stdout == "auc=0.9\n"

    typo = cli("runs", "logs", "1", "evalute")
    assert typo.exit_code == 2 and "did you mean 'evaluate'" in typo.stderr
    quiet = cli("runs", "logs", "1", "publish")
    assert quiet.exit_code == 0 and "no captured logs" in quiet.stderr


def test_unknown_run_exit_code_and_hint(cli, filled: list[str]) -> None:  # type: ignore[no-untyped-def]
    result = cli("runs", "show", "#42")
    assert result.exit_code == 2
    assert "no run '#42'" in result.stderr and "#1..#4" in result.stderr


def test_runs_from_another_process_through_the_console_script(  # type: ignore[no-untyped-def]
    project: Project,
) -> None:
    code = (
        "import seaway\n"
        "with seaway.start_run(name='cli-check'):\n"
        "    seaway.log_metric('auc', 0.66)\n"
    )
    env = {**os.environ}
    made = subprocess.run(
        [sys.executable, "-c", code], cwd=project.root, env=env, capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    listed = subprocess.run(
        [sys.executable, "-m", "seaway.cli.main", "runs", "--json"],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert listed.returncode == 0, listed.stderr
    doc = json.loads(listed.stdout)
    assert doc["runs"][0]["name"] == "cli-check" and doc["runs"][0]["metrics"] == {"auc": 0.66}
