"""The bundled example end to end: its pipeline registers a version, whose gates read their
evaluation data from the registering run's step output (featurize.features/test.parquet)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from seaway.gates import DataUnavailable, GateStatus, run_gates
from seaway.gates.data import step_output_table
from seaway.project import Project
from seaway.registry import get_version

pytestmark = pytest.mark.slow


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    from seaway.data.datasets import add
    from seaway.init import init_project
    from seaway.pipeline import run_pipeline

    monkeypatch.delenv("SEAWAY_METADATA_URL", raising=False)
    monkeypatch.delenv("SEAWAY_ARTIFACTS_URL", raising=False)
    init = init_project(tmp_path / "churn", name="churn", example_data=True)
    monkeypatch.chdir(init.root)
    project = Project(init.root)
    add(project, "customers")
    record = run_pipeline(project, "train")
    assert record.status == "succeeded"
    yield project
    project.close()


def test_the_example_version_passes_its_gates_on_the_runs_holdout(example: Project) -> None:
    report = run_gates(example, "churn-classifier@1")
    assert report.passed, [(r.name, r.status, r.message) for r in report.results]
    kinds = [r.kind for r in report.results]
    assert {"robustness", "fairness", "latency", "scan"} <= set(kinds)
    fairness = next(r for r in report.results if r.kind == "fairness")
    assert set(fairness.figures["slices"]) == {"north", "south", "east", "west"}
    assert all(r.status is GateStatus.PASSED for r in report.results)

    version = get_version(example, "churn-classifier@1")
    test = step_output_table(example, version.run_id, "featurize.features/test.parquet")
    assert "churned" in test.column_names
    with pytest.raises(DataUnavailable, match=r"has no step 'fit' \(its steps: evaluate, "):
        step_output_table(example, version.run_id, "fit.model")
    with pytest.raises(DataUnavailable, match="has no output 'model2'"):
        step_output_table(example, version.run_id, "train.model2")
    with pytest.raises(DataUnavailable, match=r"has no file valid\.parquet"):
        step_output_table(example, version.run_id, "featurize.features/valid.parquet")


def test_the_example_version_knows_its_lineage_and_schema(example: Project, cli: Any) -> None:
    from seaway.registry import lineage_tree, load_model
    from seaway.tracking.store import RunStore

    version = get_version(example, "churn-classifier@1")
    store = RunStore(example)
    run = store.get(version.run_id or "")
    store.close()
    assert run.tags["seaway.registered"] == "churn-classifier@1"
    assert version.metrics["auc"] == run.metrics["auc"]
    inputs = [c["name"] for c in (version.io_schema or {}).get("inputs", [])]
    assert inputs == ["tenure", "monthly_charges", "support_calls", "region", "contract"]

    # dataset -> prepare -> featurize -> train -> the version
    tree = lineage_tree(example, version)
    (run_node,) = tree.children
    chain = []
    node = run_node.children[0]
    while node.children:
        chain.append(node.label)
        (node,) = node.children
    assert chain == ["train.model", "featurize.features", "prepare.split"]
    assert node.kind == "dataset" and node.label == "dataset customers@1"

    out = cli("models", "lineage", "churn-classifier@1")
    assert out.exit_code == 0 and "customers@1" in out.stdout and "prepare.split" in out.stdout

    # The second, fully cached run finds the same version instead of making a new one.
    from seaway.pipeline import run_pipeline

    again = run_pipeline(example, "train")
    assert again.tags["seaway.registered"] == "churn-classifier@1"
    model = load_model("churn-classifier", project=example)
    test = step_output_table(example, version.run_id, "featurize.features/test.parquet")
    assert model.predict(test).shape == (test.num_rows,)
