"""`seaway.start_run`, `seaway.log_metric`, …: run lifecycle, buffering, crashes, workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import seaway
from seaway.data.tree import decode_manifest
from seaway.errors import UsageError
from seaway.project import Project
from seaway.tracking import RunStore, fluent
from tests.tracking.conftest import run_python


def _reader(project: Project) -> RunStore:
    """A store of its own, as another process would read the database."""
    return RunStore(Project(project.root))


def test_with_block_records_a_succeeded_run(project: Project) -> None:
    with seaway.start_run(name="baseline", params={"C": 1.0}) as run:
        assert seaway.active_run() is run
        seaway.log_param("seed", 3)
        seaway.log_params({"solver": "lbfgs"})
        for step in range(5):
            seaway.log_metric("loss", 1 / (step + 1), step=step)
        seaway.log_metrics({"auc": 0.8, "acc": 0.7})
        seaway.set_tag("team", "churn")
    assert seaway.active_run() is None
    got = _reader(project).get(run.id)
    assert got.status == "succeeded" and got.name == "baseline" and got.ended_at is not None
    assert got.params == {"C": 1.0, "seed": 3, "solver": "lbfgs"}
    assert got.metrics == {"acc": 0.7, "auc": 0.8, "loss": 0.2}
    assert got.tags["team"] == "churn"
    assert len(_reader(project).metric_history(run.id, "loss")) == 5


def test_exception_fails_the_run_and_propagates(project: Project) -> None:
    with pytest.raises(ValueError, match="bad data"), seaway.start_run() as run:
        seaway.log_metric("loss", 0.5)
        raise ValueError("bad data")
    got = _reader(project).get(run.id)
    assert got.status == "failed" and got.error == "ValueError: bad data"
    assert got.metrics == {"loss": 0.5}  # what was logged before the error is kept


def test_keyboard_interrupt_cancels_the_run(project: Project) -> None:
    with pytest.raises(KeyboardInterrupt), seaway.start_run() as run:
        raise KeyboardInterrupt
    assert _reader(project).get(run.id).status == "cancelled"


def test_nested_runs(project: Project) -> None:
    with seaway.start_run(name="outer") as outer:
        with pytest.raises(UsageError, match="already active"):
            seaway.start_run()
        with seaway.start_run(name="inner", nested=True) as inner:
            assert seaway.active_run() is inner
            seaway.log_metric("m", 1.0)
        assert seaway.active_run() is outer
        seaway.log_metric("m", 2.0)
    reader = _reader(project)
    assert reader.get(inner.id).tags["seaway.parent_run"] == outer.id
    assert reader.get(inner.id).metrics == {"m": 1.0}
    assert reader.get(outer.id).metrics == {"m": 2.0}


def test_logging_without_a_run_starts_one(project: Project) -> None:
    seaway.log_metric("loss", 0.3)
    run = seaway.active_run()
    assert run is not None
    seaway.end_run()
    assert seaway.active_run() is None
    got = _reader(project).get(run.id)
    assert got.status == "succeeded" and got.metrics == {"loss": 0.3}


def test_a_param_cannot_change_and_an_ended_run_takes_nothing(project: Project) -> None:
    with seaway.start_run(params={"C": 1.0}) as run:
        seaway.log_param("C", 1.0)
        with pytest.raises(UsageError, match="param 'C'"):
            seaway.log_param("C", 2.0)
    with pytest.raises(UsageError, match="has ended"):
        run.log_metric("late", 1.0)


def test_metrics_reach_the_database_within_a_second(project: Project) -> None:
    reader = _reader(project)
    with seaway.start_run() as run:
        seaway.log_metric("loss", 0.25)
        deadline = time.monotonic() + 1.5
        seen: dict[str, float] = {}
        while time.monotonic() < deadline and not seen:
            seen = reader.get(run.id).metrics
            time.sleep(0.05)
        assert seen == {"loss": 0.25}, "the buffer was not written by the background thread"
        assert reader.get(run.id).status == "running"


def test_flush_writes_at_once(project: Project) -> None:
    with seaway.start_run() as run:
        seaway.log_metric("x", 1.0)
        seaway.flush()
        assert _reader(project).get(run.id).metrics == {"x": 1.0}


def test_log_artifact_file_and_folder(project: Project, project_dir: Path) -> None:
    (project_dir / "model.bin").write_bytes(b"weights")
    folder = project_dir / "report"
    (folder / "plots").mkdir(parents=True)
    (folder / "summary.txt").write_text("ok\n")
    (folder / "plots" / "roc.csv").write_text("0,0\n1,1\n")
    with seaway.start_run() as run:
        file_art = seaway.log_artifact(project_dir / "model.bin")
        dir_art = seaway.log_artifact(str(folder), name="eval")
    got = {a.name: a for a in _reader(project).get(run.id).artifacts}
    assert got["model.bin"].kind == "file" and got["model.bin"].size == 7
    assert project.blobs.get_bytes(file_art.digest) == b"weights"
    assert got["eval"].kind == "dir" and got["eval"].size == 3 + 8
    files = {e.path: e for e in decode_manifest(project.blobs.get_bytes(dir_art.digest))}
    assert set(files) == {"summary.txt", "plots/roc.csv"}
    assert project.blobs.get_bytes(files["plots/roc.csv"].digest) == b"0,0\n1,1\n"


def test_program_exit_ends_an_implicit_run(project: Project, project_dir: Path) -> None:
    ok = run_python(
        """
        import seaway
        seaway.log_metric("loss", 0.1)
        print(seaway.active_run().id)
        """,
        project_dir,
    )
    assert ok.returncode == 0, ok.stderr
    crashed = run_python(
        """
        import seaway
        seaway.log_param("C", 2)
        print(seaway.active_run().id, flush=True)
        raise RuntimeError("diverged")
        """,
        project_dir,
    )
    assert crashed.returncode == 1 and "diverged" in crashed.stderr
    reader = _reader(project)
    good = reader.get(ok.stdout.strip())
    assert good.status == "succeeded" and good.metrics == {"loss": 0.1}
    bad = reader.get(crashed.stdout.strip())
    assert bad.status == "failed" and bad.error == "RuntimeError: diverged"
    assert bad.params == {"C": 2}


def test_a_worker_process_reports_into_the_run_named_by_seaway_run_id(
    project: Project, project_dir: Path, tmp_path: Path
) -> None:
    parent = RunStore(project).create_run(pipeline="train", params={"C": 1.0})
    elsewhere = tmp_path / "worker-cwd"
    elsewhere.mkdir()
    worker = run_python(
        """
        import seaway
        seaway.log_metric("auc", 0.91)
        with seaway.start_run(params={"C": 1.0, "depth": 4}) as run:
            seaway.log_metric("loss", 0.2, step=7)
        assert seaway.active_run().id == run.id
        """,
        elsewhere,
        env={"SEAWAY_RUN_ID": parent.id, "SEAWAY_PROJECT": str(project_dir)},
    )
    assert worker.returncode == 0, worker.stderr
    got = _reader(project).get(parent.id)
    assert got.metrics == {"auc": 0.91, "loss": 0.2}
    assert got.params == {"C": 1.0, "depth": 4}
    assert got.status == "running", "a worker must not end the pipeline's run"
    assert [r.seq for r in _reader(project).search(limit=None)] == [parent.seq]


CRASHER = """
import sys, time
import seaway
run = seaway.start_run(name="doomed")
print(run.id, flush=True)
step = 0
while True:
    seaway.log_metric("tick", float(step), step=step)
    step += 1
    time.sleep(0.003)
"""


def test_sigkill_loses_at_most_the_last_second(project: Project, project_dir: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CRASHER)],
        cwd=project_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        run_id = proc.stdout.readline().strip()
        assert run_id, proc.stderr.read() if proc.stderr else ""
        time.sleep(2.5)
        killed_at = time.time()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader = _reader(project)
    points = reader.metric_history(run_id, "tick")
    steps = [p.step for p in points]
    assert steps == list(range(len(steps))), "the stored points must have no gaps"
    assert len(steps) > 100
    lost_window = killed_at - points[-1].ts
    assert lost_window < 1.1, f"lost the last {lost_window:.2f} s of metrics"
    run = reader.get(run_id)
    assert run.status == "running" and run.maybe_crashed


def test_json_of_an_active_run_is_plain(project: Project) -> None:
    with seaway.start_run() as run:
        seaway.log_metric("a", 1.0)
        record = run.record()
    assert json.loads(json.dumps(record.to_dict()))["metrics"] == {"a": 1.0}
    assert fluent.active_run() is None


def test_a_multiprocessing_worker_writes_its_last_metrics(project: Project, tmp_path: Path) -> None:
    """forkserver (and fork) workers leave through os._exit, skipping atexit: what they
    logged last must still arrive."""
    run = RunStore(project).create_run(pipeline="train")
    script = tmp_path / "worker_main.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import multiprocessing as mp, os

            def step():
                import seaway
                seaway.log_metric("auc", 0.93)  # then the worker exits at once

            if __name__ == "__main__":
                os.environ["SEAWAY_RUN_ID"] = "{run.id}"
                worker = mp.get_context("forkserver").Process(target=step)
                worker.start()
                worker.join()
                raise SystemExit(worker.exitcode)
            """
        )
    )
    result = subprocess.run(
        [sys.executable, str(script)], cwd=project.root, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert _reader(project).get(run.id).metrics == {"auc": 0.93}


def test_gc_keeps_logged_artifacts(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Files and folders logged with seaway.log_artifact survive `seaway data gc`."""
    import seaway
    from seaway.data.maintenance import gc, verify
    from seaway.project import Project

    root = tmp_path / "proj"
    root.mkdir()
    (root / "seaway.yaml").write_text("name: demo\n")
    (root / "report.txt").write_text("a report\n")
    (root / "plots").mkdir()
    (root / "plots" / "a.svg").write_text("<svg/>")
    monkeypatch.chdir(root)
    with seaway.start_run(name="artifacts"):
        seaway.log_artifact(root / "report.txt")
        seaway.log_artifact(root / "plots")
    project = Project(root)
    before = set(project.blobs.iter_digests())
    assert gc(project, grace_seconds=0).removed == 0
    assert set(project.blobs.iter_digests()) == before
    assert verify(project).ok
    project.close()
