"""Running the fixture pipeline: caching, invalidation, params, datasets, --force, records.

These run on SQLite and on PostgreSQL (the `fx` fixture), since the step cache and the run
records live in the metadata store.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from seaway.pipeline import run_pipeline
from seaway.project import Project
from tests.pipeline.conftest import read_blob, statuses

ALL = ["prepare", "featurize", "train", "report"]


def _outputs(record: object) -> dict[str, dict[str, object]]:
    return {s.step: s.outputs for s in record.steps}  # type: ignore[attr-defined]


def test_first_run_runs_all_then_all_cached(fx: Project) -> None:
    first = run_pipeline(fx, "train")
    assert first.status == "succeeded"
    assert statuses(first) == dict.fromkeys(ALL, "ran")
    assert first.metrics == {"accuracy": 0.75, "n": 4.0, "rows": 4.0}
    assert first.params == {"scale": 2, "C": 1.0, "label": "base"}

    second = run_pipeline(fx, "train")
    assert second.status == "succeeded"
    assert statuses(second) == dict.fromkeys(ALL, "cached")
    assert _outputs(second) == _outputs(first)
    assert second.metrics == first.metrics
    keys = {s.step: s.cache_key for s in first.steps}
    assert {s.step: s.cache_key for s in second.steps} == keys
    assert all(k and len(k) == 64 for k in keys.values())


def test_outputs_are_content_addressed_and_readable(fx: Project) -> None:
    record = run_pipeline(fx, "train")
    steps = {s.step: s for s in record.steps}
    table = steps["prepare"].outputs["table"]
    assert table["kind"] == "file" and table["files"] == 1
    assert read_blob(fx, table["digest"]) == b"x,y\n2,0\n4,1\n6,1\n8,0\n"
    features = steps["featurize"].outputs["features"]
    assert features["kind"] == "dir" and features["files"] == 2
    from seaway.data.tree import decode_manifest

    entries = decode_manifest(read_blob(fx, features["manifest_hash"]))
    assert sorted(e.path for e in entries) == ["n.txt", "x.txt"]
    # x -> (x*2 + 1) * 2 for x in 1..4
    x_txt = next(e for e in entries if e.path == "x.txt")
    assert read_blob(fx, x_txt.digest) == b"6.0\n10.0\n14.0\n18.0\n"
    summary = steps["report"].outputs["summary"]
    assert read_blob(fx, summary["digest"]) == b"base: 4 rows\n"


def test_lineage_and_registered_model(fx: Project) -> None:
    record = run_pipeline(fx, "train")
    lineage = record.lineage
    assert lineage["pipeline"] == "train"
    [dataset] = lineage["datasets"]
    assert dataset["name"] == "raw" and dataset["version"] == 1
    assert len(dataset["tree_hash"]) == 64
    assert "register" not in lineage
    assert set(lineage["cache_keys"]) == {"prepare"}  # known before the run started
    assert not [a for a in record.artifacts if a.kind == "model"]
    cached = run_pipeline(fx, "train")
    assert set(cached.lineage["cache_keys"]) == set(ALL)

    # A pipeline with `register:` records its model output and registers it as a version.
    from seaway.registry import get_version

    packaged = run_pipeline(fx, "packaged")
    assert packaged.status == "succeeded", packaged.error
    assert packaged.lineage["register"] == {
        "model": "toy-folder",
        "from": "package.model",
        "flavor": "python",
    }
    [model] = [a for a in packaged.artifacts if a.kind == "model"]
    out = next(s for s in packaged.steps if s.step == "package").outputs["model"]
    assert model.name == "toy-folder" and model.digest == out["manifest_hash"]
    assert packaged.tags["seaway.registered"] == "toy-folder@1"
    version = get_version(fx, "toy-folder@1")
    assert version.run_id == packaged.id and version.flavor == "python"
    again = run_pipeline(fx, "packaged")
    assert again.tags["seaway.registered"] == "toy-folder@1"


def test_editing_step_code_reruns_it_and_what_depends_on_it(fx: Project) -> None:
    run_pipeline(fx, "train")
    model = fx.root / "steps" / "model.py"
    model.write_text(model.read_text() + "\n# a comment changes the key\n")
    assert statuses(run_pipeline(fx, "train")) == {
        "prepare": "cached",
        "featurize": "cached",
        "train": "ran",
        "report": "cached",
    }
    # A project module that featurize imports (relative import), with a new result.
    util = fx.root / "steps" / "util.py"
    util.write_text(util.read_text().replace("OFFSET = 1", "OFFSET = 2"))
    assert statuses(run_pipeline(fx, "train")) == {
        "prepare": "cached",
        "featurize": "ran",
        "train": "ran",
        "report": "cached",
    }


def test_editing_an_imported_module_under_src(fx: Project) -> None:
    run_pipeline(fx, "train")
    mathx = fx.root / "src" / "helpers" / "mathx.py"
    mathx.write_text(mathx.read_text().replace("2 * value", "3 * value"))
    record = run_pipeline(fx, "train")
    assert statuses(record)["featurize"] == "ran"
    assert statuses(record)["train"] == "ran"
    assert statuses(record)["prepare"] == "cached"


def test_same_output_keeps_descendants_cached(fx: Project) -> None:
    run_pipeline(fx, "train")
    prep = fx.root / "steps" / "prep.py"
    prep.write_text(prep.read_text() + "\n\nUNUSED = 1\n")
    record = run_pipeline(fx, "train")
    assert statuses(record) == {
        "prepare": "ran",
        "featurize": "cached",
        "train": "cached",
        "report": "cached",
    }
    # Found cached only once prepare ran: their metrics still reach the run.
    assert record.metrics == {"accuracy": 0.75, "n": 4.0, "rows": 4.0}


def test_param_change_reruns_only_the_steps_that_list_it(fx: Project) -> None:
    run_pipeline(fx, "train")
    record = run_pipeline(fx, "train", params={"C": 0.5})
    assert statuses(record) == {
        "prepare": "cached",
        "featurize": "cached",
        "train": "ran",
        "report": "cached",
    }
    assert record.params["C"] == 0.5
    label = run_pipeline(fx, "train", params={"label": "other"})
    assert statuses(label)["report"] == "ran"
    assert [s for s, v in statuses(label).items() if v == "ran"] == ["report"]
    scale = run_pipeline(fx, "train", params={"scale": 3})
    assert statuses(scale) == dict.fromkeys(ALL, "ran")
    # Back to the defaults: every result is still in the cache.
    assert set(statuses(run_pipeline(fx, "train")).values()) == {"cached"}


def test_int_given_for_float_param_is_the_same_run(fx: Project) -> None:
    run_pipeline(fx, "train")
    record = run_pipeline(fx, "train", params={"C": 1})
    assert set(statuses(record).values()) == {"cached"}
    assert record.params["C"] == 1.0


def test_new_dataset_version_reruns_its_consumers(fx: Project) -> None:
    run_pipeline(fx, "train")
    from seaway.data.datasets import add

    (fx.root / "data" / "raw.csv").write_text("x,y\n1,0\n2,1\n3,1\n4,0\n5,1\n")
    add(fx, "raw")
    record = run_pipeline(fx, "train")
    assert statuses(record) == dict.fromkeys(ALL, "ran")
    assert record.lineage["datasets"][0]["version"] == 2
    assert record.metrics["rows"] == 5.0


def test_force_reruns_step_and_descendants(fx: Project) -> None:
    run_pipeline(fx, "train")
    record = run_pipeline(fx, "train", force=["featurize"])
    assert statuses(record) == {
        "prepare": "cached",
        "featurize": "ran",
        "train": "ran",
        "report": "cached",
    }
    everything = run_pipeline(fx, "train", force=["prepare"])
    assert statuses(everything) == dict.fromkeys(ALL, "ran")


def test_fully_cached_run_reads_no_blobs_and_starts_no_workers(
    fx: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_pipeline(fx, "train")

    def forbidden(*_a: object, **_k: object) -> None:
        raise AssertionError("a fully cached run must not do this")

    from seaway.pipeline import executors
    from seaway.store.blobs import LocalBlobStore

    monkeypatch.setattr(executors, "create_executor", forbidden)
    monkeypatch.setattr(LocalBlobStore, "get_bytes", forbidden)
    monkeypatch.setattr(LocalBlobStore, "get_file", forbidden)
    assert set(statuses(run_pipeline(fx, "train")).values()) == {"cached"}


def test_inputs_materialise_from_the_blob_store(fx: Project) -> None:
    """A step whose upstream output is cached gets it from blobs into the work cache."""
    import shutil

    run_pipeline(fx, "train")
    shutil.rmtree(fx.root / ".seaway" / "workcache")
    record = run_pipeline(fx, "train", params={"C": 2.0})
    assert statuses(record)["train"] == "ran"
    work = fx.root / ".seaway" / "workcache"
    features = next(s for s in record.steps if s.step == "featurize").outputs["features"]
    assert (work / features["tree_hash"] / "x.txt").is_file()
    assert not [p for p in work.iterdir() if p.name.startswith(".tmp-")]


def test_runs_are_numbered_and_resumable_by_ref(fx: Project, tmp_path: Path) -> None:
    first = run_pipeline(fx, "train")
    second = run_pipeline(fx, "train", resume=first.id)
    assert second.seq == first.seq + 1
    assert second.resumed_from == first.id
    assert set(statuses(second).values()) == {"cached"}


def test_gc_keeps_step_outputs_and_logs(fx: Project) -> None:
    from seaway.data.maintenance import gc

    first = run_pipeline(fx, "train")
    report = gc(fx, grace_seconds=0)
    assert report.removed == 0
    for step in first.steps:
        assert fx.blobs.has(step.log_digest or "")
        for out in step.outputs.values():
            assert fx.blobs.has(out["manifest_hash"])
    # The outputs still feed a later run that needs them from the blob store.
    import shutil

    shutil.rmtree(fx.root / ".seaway" / "workcache")
    assert statuses(run_pipeline(fx, "train", params={"C": 3.0}))["train"] == "ran"


def test_every_run_is_an_audit_event_on_both_paths(fx: Project) -> None:
    from seaway.audit.log import list_events
    from seaway.audit.verify import verify_chain

    first = run_pipeline(fx, "train")
    second = run_pipeline(fx, "train")  # all cached: on SQLite the stdlib lane records it
    events = list_events(fx, kind="run.", limit=None)
    assert [e.subject for e in events] == [f"run:{second.id}", f"run:{first.id}"]
    for event, record in zip(events, (second, first), strict=True):
        assert event.kind == "run.finished"
        assert event.data is not None
        assert event.data["seq"] == record.seq and event.data["status"] == "succeeded"
        assert event.data["pipeline"] == "train"
    assert verify_chain(fx).ok
