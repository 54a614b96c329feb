"""Steps that fail, and how the run reports them: propagation, resume, bad steps, logs."""

from __future__ import annotations

import pytest

from seaway.pipeline import run_pipeline
from seaway.project import Project
from tests.pipeline.conftest import read_blob, statuses, trace


def _step(record: object, name: str) -> object:
    return next(s for s in record.steps if s.step == name)  # type: ignore[attr-defined]


def test_failure_skips_descendants_and_finishes_independent_branches(fx: Project) -> None:
    record = run_pipeline(fx, "broken")
    assert record.status == "failed"
    assert statuses(record) == {
        "start": "ran",
        "explode": "failed",
        "after": "skipped",
        "branch": "ran",
    }
    explode = _step(record, "explode")
    assert explode.error == "ValueError: boom: the data is bad"  # type: ignore[attr-defined]
    assert record.error is not None
    assert record.error.startswith("step 'explode' failed: ValueError: boom: the data is bad")
    assert "about to fail" in record.error  # the tail of its log
    log = read_blob(fx, explode.log_digest).decode()  # type: ignore[attr-defined]
    assert "Traceback (most recent call last)" in log and "misc.py" in log
    assert "seaway/pipeline/worker.py" not in log  # the traceback starts at the step's code
    assert "skipped" not in (_step(record, "branch").error or "")  # type: ignore[attr-defined]
    assert "explode" in _step(record, "after").error  # type: ignore[attr-defined]


def test_resume_runs_only_what_did_not_succeed(fx: Project) -> None:
    failed = run_pipeline(fx, "gated")
    assert statuses(failed) == {
        "start": "ran",
        "gate": "failed",
        "after": "skipped",
        "branch": "ran",
    }
    (fx.root / "trace" / "allow").write_text("")
    resumed = run_pipeline(fx, None, resume=f"#{failed.seq}")
    assert resumed.status == "succeeded"
    assert resumed.pipeline == "gated"
    assert resumed.resumed_from == failed.id
    assert statuses(resumed) == {
        "start": "cached",
        "gate": "ran",
        "after": "ran",
        "branch": "cached",
    }


def test_resume_keeps_params_and_dataset_versions(fx: Project) -> None:
    first = run_pipeline(fx, "train", params={"C": 0.25})
    from seaway.data.datasets import add

    (fx.root / "data" / "raw.csv").write_text("x,y\n9,1\n")
    add(fx, "raw")
    resumed = run_pipeline(fx, "train", resume=first.id)
    assert resumed.params["C"] == 0.25
    assert resumed.lineage["datasets"][0]["version"] == 1
    assert set(statuses(resumed).values()) == {"cached"}


def test_resume_refuses_params_and_another_pipeline(fx: Project) -> None:
    from seaway.errors import UsageError

    first = run_pipeline(fx, "broken")
    with pytest.raises(UsageError, match="reuses the params"):
        run_pipeline(fx, "broken", resume=first.id, params={"x": 1})
    with pytest.raises(UsageError, match="ran pipeline 'broken', not 'train'"):
        run_pipeline(fx, "train", resume=first.id)


def test_missing_output_fails_the_step(fx: Project) -> None:
    record = run_pipeline(fx, "missing-output")
    assert record.status == "failed"
    error = _step(record, "lazy").error  # type: ignore[attr-defined]
    assert error.startswith("step lazy did not write its output 'model' (expected a file or folder")
    assert "forgot to write the model" in (record.error or "")


def test_missing_declared_metric_fails_the_step(fx: Project) -> None:
    record = run_pipeline(fx, "missing-metric")
    assert statuses(record) == {"quiet": "failed"}
    assert "did not report its declared metric(s) 'auc'" in (record.error or "")
    # A failed step is not cached: the next run tries again.
    assert statuses(run_pipeline(fx, "missing-metric")) == {"quiet": "failed"}


def test_unimportable_callable_names_it_and_the_paths_tried(fx: Project) -> None:
    record = run_pipeline(fx, "bad-import")
    ghost = _step(record, "ghost").error  # type: ignore[attr-defined]
    assert "cannot import steps.nothere:fn" in ghost
    assert "steps/nothere.py" in ghost and "src/steps/nothere.py" in ghost
    typo = _step(record, "typo").error  # type: ignore[attr-defined]
    assert "has no attribute 'not_a_function'" in typo and "misc.py" in typo


def test_logs_capture_every_writer(fx_sqlite: Project) -> None:
    record = run_pipeline(fx_sqlite, "noisy")
    assert record.status == "succeeded"
    log = read_blob(fx_sqlite, _step(record, "talk").log_digest).decode()  # type: ignore[attr-defined]
    for text in (
        "from python print",
        "from fd 1",
        "from fd 2",
        "from a subprocess",
        "from a shell",
        "to stderr",
    ):
        assert text in log
    assert record.metrics == {"words": 6.0}


def test_shell_placeholders_environment_and_metrics_file(fx_sqlite: Project) -> None:
    record = run_pipeline(fx_sqlite, "shell")
    assert record.status == "succeeded", record.error
    make = _step(record, "make")
    text = read_blob(fx_sqlite, make.outputs["text"]["digest"])  # type: ignore[attr-defined]
    assert text == b"hello world\n3\n"  # the quoted placeholder stayed one argument
    assert make.metrics == {"lines": 2.0, "n": 3.0}  # type: ignore[attr-defined]
    count = _step(record, "count")
    assert count.outputs["folder"]["kind"] == "dir"  # type: ignore[attr-defined]
    assert _step(record, "consume").metrics == {"count": 2.0}  # type: ignore[attr-defined]
    assert set(statuses(run_pipeline(fx_sqlite, "shell")).values()) == {"cached"}


def test_shell_step_key_covers_the_script_it_runs(fx_sqlite: Project) -> None:
    run_pipeline(fx_sqlite, "train")
    script = fx_sqlite.root / "scripts" / "report.py"
    script.write_text(script.read_text() + "\n# edited\n")
    record = run_pipeline(fx_sqlite, "train")
    assert [s for s, v in statuses(record).items() if v == "ran"] == ["report"]
    # and what the script imports from the project
    tr = fx_sqlite.root / "steps" / "trace.py"
    tr.write_text(tr.read_text() + "\n# edited\n")
    assert set(statuses(run_pipeline(fx_sqlite, "train")).values()) == {"ran"}


def test_independent_steps_run_at_the_same_time(fx_sqlite: Project) -> None:
    # Each step waits until the other has started: run one after the other, they fail.
    record = run_pipeline(fx_sqlite, "parallel", jobs=2)
    assert record.status == "succeeded", record.error
    times = {
        f"{s}.{e}": float((fx_sqlite.root / "trace" / f"{s}.{e}").read_text())
        for s in ("left", "right")
        for e in ("start", "end")
    }
    assert times["left.start"] < times["right.end"]
    assert times["right.start"] < times["left.end"]


def test_warm_workers_run_several_steps(fx_sqlite: Project) -> None:
    run_pipeline(fx_sqlite, "train", jobs=1)
    pids = {trace(fx_sqlite, s)["pid"] for s in ("prepare", "featurize", "train")}
    assert len(pids) == 1


def test_fluent_api_logs_into_the_pipeline_run(fx: Project) -> None:
    record = run_pipeline(fx, "fluent")
    assert record.status == "succeeded", record.error
    assert record.metrics == {"loss": 1.0 / 3}
    from seaway.tracking.store import RunStore

    store = RunStore(fx)
    try:
        history = store.metric_history(record.id, "loss")
    finally:
        store.close()
    assert [p.step for p in history] == [0, 1, 2]


def test_a_dying_worker_fails_only_its_own_step(fx_sqlite: Project) -> None:
    record = run_pipeline(fx_sqlite, "crash", jobs=2)
    assert statuses(record) == {"boom": "failed", "fine": "ran", "after": "ran"}
    assert "worker process died" in (_step(record, "boom").error or "")  # type: ignore[attr-defined]


def test_lost_input_blobs_fail_with_a_way_out(fx_sqlite: Project) -> None:
    import shutil

    first = run_pipeline(fx_sqlite, "train")
    features = _step(first, "featurize").outputs["features"]  # type: ignore[attr-defined]
    blob = fx_sqlite.blobs.path(features["manifest_hash"])  # type: ignore[attr-defined]
    blob.chmod(0o644)
    blob.unlink()
    shutil.rmtree(fx_sqlite.root / ".seaway" / "workcache")
    record = run_pipeline(fx_sqlite, "train", params={"C": 5.0})
    error = _step(record, "train").error  # type: ignore[attr-defined]
    assert "input 'features' (featurize.features) could not be read" in error
    assert "seaway run train --force featurize" in error
    assert statuses(run_pipeline(fx_sqlite, "train", force=["featurize"]))["train"] == "ran"
