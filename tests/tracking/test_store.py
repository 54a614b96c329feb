"""The run store on SQLite and PostgreSQL: what the pipeline engine and the CLI rely on."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from seaway.errors import NotFound, UsageError
from seaway.project import Project
from seaway.tracking import RunStore, StepRecord
from tests.conftest import git

DIGEST = "ab" * 32


def test_create_run_numbers_runs_and_records_where_they_ran(
    store: RunStore, project_dir: Path
) -> None:
    git(project_dir, "add", "seaway.yaml")
    git(project_dir, "commit", "-q", "-m", "init")
    commit = git(project_dir, "rev-parse", "HEAD").strip()

    first = store.create_run(name="baseline", pipeline="train", executor="local")
    second = store.create_run()

    assert (first.seq, second.seq) == (1, 2)
    assert len(first.id) == 32 and first.id != second.id
    got = store.get(first.id)
    assert got.status == "running" and got.name == "baseline" and got.pipeline == "train"
    assert got.git_commit == commit and got.git_dirty is False
    assert got.executor == "local"
    assert got.environment["python"].count(".") == 2
    assert "seaway" in got.environment["packages"]
    assert got.started_at.tzinfo is not None


def test_dirty_work_tree_and_no_git(store: RunStore, project_dir: Path, tmp_path: Path) -> None:
    git(project_dir, "add", "seaway.yaml")
    git(project_dir, "commit", "-q", "-m", "init")
    (project_dir / "seaway.yaml").write_text("name: changed\n")
    assert store.get(store.create_run().id).git_dirty is True

    outside = tmp_path / "nogit"
    outside.mkdir()
    (outside / "seaway.yaml").write_text("name: x\n")
    plain = RunStore(Project(outside))
    try:
        run = plain.get(plain.create_run().id)
        assert run.git_commit is None and run.git_dirty is None
    finally:
        plain.close()
        plain.project.close()


def test_capture_environment_off(store: RunStore) -> None:
    run = store.get(store.create_run(capture_environment=False).id)
    assert run.environment == {} and run.git_commit is None


def test_params_keep_their_types(store: RunStore) -> None:
    values = {"C": 1.0, "n": 1, "name": "1", "flag": True, "none": None, "grid": [1, 2.5, "a"]}
    run = store.create_run(params={"C": 1.0})
    store.log_params(run.id, values)
    assert store.get(run.id).params == values
    got = store.get(run.id).params
    assert isinstance(got["C"], float) and isinstance(got["n"], int) and got["name"] == "1"


def test_param_cannot_change_but_may_repeat(store: RunStore) -> None:
    run = store.create_run(params={"C": 1.0})
    store.log_params(run.id, {"C": 1.0, "seed": 0})
    with pytest.raises(UsageError, match=r"param .C.*already 1\.0"):
        store.log_params(run.id, {"C": 0.5})
    # The refused batch wrote nothing, not even its other keys.
    with pytest.raises(UsageError):
        store.log_params(run.id, {"seed": 1, "extra": 2})
    assert store.get(run.id).params == {"C": 1.0, "seed": 0}


def test_latest_metric_is_the_highest_step_then_the_latest_time(store: RunStore) -> None:
    run = store.create_run()
    store.log_metrics(run.id, [("loss", 0.9, 0, 100.0), ("loss", 0.5, 2, 101.0)])
    # A later batch with a lower step does not replace the latest value...
    store.log_metrics(run.id, [("loss", 0.7, 1, 102.0), ("auc", 0.6, 0, 102.0)])
    assert store.get(run.id).metrics == {"auc": 0.6, "loss": 0.5}
    # ...an equal step with a later timestamp does, and so does a higher step.
    store.log_metrics(run.id, [("loss", 0.4, 2, 103.0)])
    assert store.get(run.id).metrics["loss"] == 0.4
    store.log_metrics(run.id, [("loss", 0.45, 2, 99.0), ("auc", 0.8, 5, 50.0)])
    assert store.get(run.id).metrics == {"auc": 0.8, "loss": 0.4}
    history = store.metric_history(run.id, "loss")
    assert [(p.step, p.value) for p in history] == [
        (0, 0.9),
        (1, 0.7),
        (2, 0.45),
        (2, 0.5),
        (2, 0.4),
    ]


def test_within_one_batch_the_later_of_equal_points_wins(store: RunStore) -> None:
    run = store.create_run()
    store.log_metrics(run.id, [("acc", 0.1, 3, 5.0), ("acc", 0.2, 3, 5.0)])
    assert store.get(run.id).metrics == {"acc": 0.2}


def test_bad_metrics_are_refused(store: RunStore) -> None:
    run = store.create_run()
    with pytest.raises(UsageError, match="NaN"):
        store.log_metrics(run.id, [("loss", float("nan"), 0, 1.0)])
    with pytest.raises(UsageError, match="must be a number"):
        store.log_metrics(run.id, [("loss", "high", 0, 1.0)])  # type: ignore[list-item]
    store.log_metrics(run.id, [("loss", float("inf"), 0, 1.0)])
    assert store.get(run.id).metrics == {"loss": float("inf")}


def test_logging_to_an_unknown_run_is_not_found(store: RunStore) -> None:
    with pytest.raises(NotFound):
        store.log_metrics("0" * 32, [("loss", 1.0, 0, 1.0)])
    with pytest.raises(NotFound):
        store.finish("0" * 32, "succeeded")


def test_tags_merge(store: RunStore) -> None:
    run = store.create_run(tags={"team": "a"})
    store.set_tags(run.id, {"team": "b", "stage": "dev"})
    tags = store.get(run.id).tags
    assert tags["team"] == "b" and tags["stage"] == "dev"
    assert tags["seaway.pid"].isdigit()


def test_artifacts_and_steps_are_upserted(store: RunStore) -> None:
    run = store.create_run(pipeline="train")
    store.log_artifact(run.id, "model", DIGEST, 10, "file")
    store.log_artifact(run.id, "model", "cd" * 32, 20, "model")
    with pytest.raises(UsageError, match="artifact kind"):
        store.log_artifact(run.id, "x", DIGEST, 1, "zip")

    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    store.record_step(run.id, StepRecord("fit", "running", cache_key="k" * 64, started_at=started))
    store.record_step(
        run.id,
        StepRecord(
            "fit",
            "ran",
            cache_key="k" * 64,
            started_at=started,
            duration_s=1.5,
            log_digest=DIGEST,
            outputs={"model": {"digest": DIGEST, "size": 3}},
            metrics={"auc": 0.9},
        ),
    )
    store.record_step(run.id, StepRecord("evaluate", "pending"))
    with pytest.raises(UsageError, match="step status"):
        store.record_step(run.id, StepRecord("x", "done"))

    got = store.get(run.id)
    assert [(a.name, a.digest, a.size, a.kind) for a in got.artifacts] == [
        ("model", "cd" * 32, 20, "model")
    ]
    assert [s.step for s in got.steps] == ["fit", "evaluate"]
    fit = got.steps[0]
    assert fit.status == "ran" and fit.duration_s == 1.5 and fit.started_at == started
    assert fit.outputs == {"model": {"digest": DIGEST, "size": 3}} and fit.metrics == {"auc": 0.9}
    assert got.to_dict()["steps"][0]["started_at"] == "2026-01-02T03:04:05Z"


def test_finish_records_end_duration_and_error(store: RunStore) -> None:
    run = store.create_run()
    time.sleep(0.05)
    store.finish(run.id, "failed", "ValueError: boom")
    got = store.get(run.id)
    assert got.status == "failed" and got.error == "ValueError: boom"
    assert got.ended_at is not None and got.duration_s is not None and got.duration_s >= 0.05
    with pytest.raises(UsageError, match="ends as one of"):
        store.finish(run.id, "done")


def test_get_by_id_prefix_number_and_name(store: RunStore) -> None:
    runs = [store.create_run(name=f"exp-{i}") for i in range(3)]
    again = store.create_run(name="exp-1")
    assert store.get(runs[1].id).id == runs[1].id
    assert store.get(runs[1].id[:6]).id == runs[1].id
    assert store.get(runs[1].id[:6].upper()).id == runs[1].id
    assert store.get("2").id == runs[1].id
    assert store.get("#3").id == runs[2].id
    assert store.get("exp-1").id == again.id  # a name means its newest run


def test_unknown_refs_say_what_exists(store: RunStore) -> None:
    for _ in range(3):
        store.create_run(name="alpha")
    with pytest.raises(NotFound, match=r"no run '#99'") as missing:
        store.get("#99")
    assert "#1..#3" in str(missing.value)
    with pytest.raises(NotFound) as typo:
        store.get("alpah")
    assert "did you mean 'alpha'" in str(typo.value)
    with pytest.raises(NotFound) as other:
        store.get("zzzz-unrelated")
    assert "seaway runs" in str(other.value)
    with pytest.raises(UsageError):
        store.get("#x")


def test_ambiguous_prefix_is_a_usage_error(
    store: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uuid

    ids = iter(["abcd" + "0" * 28, "abcd" + "1" * 28])
    monkeypatch.setattr(uuid, "uuid4", lambda: type("U", (), {"hex": next(ids)})())
    store.create_run()
    store.create_run()
    with pytest.raises(UsageError, match="matches several runs"):
        store.get("abcd")
    assert store.get("abcd1").id == "abcd" + "1" * 28


def test_no_runs_yet(store: RunStore) -> None:
    with pytest.raises(NotFound, match="no runs yet"):
        store.get("#1")


def test_concurrent_creators_get_distinct_numbers(store: RunStore, project: Project) -> None:
    stores = [RunStore(Project(project.root)) for _ in range(4)]
    seqs: list[int] = []
    errors: list[BaseException] = []

    def create(s: RunStore) -> None:
        try:
            for _ in range(10):
                seqs.append(s.create_run().seq)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
        s.project.close()
    assert not errors
    assert sorted(seqs) == list(range(1, 41))


def test_record_round_trips_to_json(store: RunStore) -> None:
    run = store.create_run(name="n", lineage={"datasets": {"customers": "customers@2"}})
    store.log_metrics(run.id, [("auc", 0.75, 1, 1.0)])
    store.finish(run.id, "succeeded")
    doc = store.get(run.id).to_dict()
    assert doc["lineage"] == {"datasets": {"customers": "customers@2"}}
    assert doc["metrics"] == {"auc": 0.75} and doc["status"] == "succeeded"
    assert doc["started_at"].endswith("Z") and doc["maybe_crashed"] is False


@pytest.mark.parametrize(
    "value",
    [1, 1.0, -2.5, 1e-05, float("inf"), float("-inf"), 10**20, "1.0", "-3", 'say "hi"', "é", "",
     True, False, None, [1, "a"], {"k": [1.5]}],
)  # fmt: skip
def test_param_text_round_trips(value: object) -> None:
    from seaway.tracking.store import decode_param, encode_param

    back = decode_param(encode_param(value))
    assert back == value and type(back) is type(value)
