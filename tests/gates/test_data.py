"""Resolving evaluation and drift data: dataset versions (files, folders, CSV), seeded
samples, the target column, and what is said when something is missing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from seaway.data.datasets import add
from seaway.gates import DataUnavailable, GateContext
from seaway.gates.data import resolve_table, sample, split_target, step_output_table
from seaway.project import Project
from tests.gates.support import customers, model_spec, version


@pytest.fixture
def project(project_dir: Path) -> Iterator[Project]:
    """On the default SQLite store only: resolving data does not depend on the database."""
    p = Project(project_dir)
    yield p
    p.close()


def test_dataset_versions_latest_and_numbered(project: Project, project_dir: Path) -> None:
    path = project_dir / "data.parquet"
    pq.write_table(customers(100, seed=1), path)
    add(project, "customers", [path])
    pq.write_table(customers(150, seed=2), path)
    add(project, "customers", [path])
    assert resolve_table(project, "dataset:customers").num_rows == 150
    assert resolve_table(project, "dataset:customers@1").num_rows == 100
    # Fetched once into the work cache, shared with pipeline steps.
    assert any((project.state_dir / "workcache").iterdir())


def test_a_folder_of_files_is_read_whole_and_csv_is_read(
    project: Project, project_dir: Path
) -> None:
    folder = project_dir / "parts"
    folder.mkdir()
    pq.write_table(customers(40, seed=1), folder / "a.parquet")
    pq.write_table(customers(60, seed=2), folder / "b.parquet")
    (folder / "README.md").write_text("not data")
    add(project, "parts", [folder])
    assert resolve_table(project, "dataset:parts").num_rows == 100
    csv = project_dir / "rows.csv"
    pcsv.write_csv(customers(25, seed=3), csv)
    add(project, "rows", [csv])
    table = resolve_table(project, "dataset:rows")
    assert table.num_rows == 25 and "region" in table.column_names


def test_missing_data_is_named_with_what_to_do(project: Project) -> None:
    with pytest.raises(DataUnavailable, match="unknown dataset 'nope'") as info:
        resolve_table(project, "dataset:nope")
    assert info.value.exit_code == 2
    with pytest.raises(DataUnavailable, match="not registered by a pipeline run") as run_info:
        step_output_table(project, None, "prepare.split/test.parquet")
    assert run_info.value.hint and "dataset:NAME" in run_info.value.hint


def test_samples_are_seeded_and_capped() -> None:
    table = customers(5000, seed=1)
    first = sample(table, 1000)
    assert first.num_rows == 1000
    assert first.equals(sample(table, 1000))
    ids = np.arange(5000)
    picked = sample(pa.table({"i": ids}), 1000)["i"].to_numpy()
    assert np.all(np.diff(picked) > 0)  # order kept
    assert sample(table, None).num_rows == 5000
    assert sample(table, 9999) is table


def test_target_column_rows_without_labels_and_a_missing_target() -> None:
    table = pa.table({"x": [1.0, 2.0, 3.0], "y": [1, None, 0]})
    features, labels = split_target(table, "y", "evaluation data")
    assert features.column_names == ["x"] and labels.tolist() == [1, 0]
    with pytest.raises(DataUnavailable, match="no target column 'label' \\(its columns: x, y\\)"):
        split_target(table, "label", "evaluation data")


def test_evaluation_is_sampled_to_the_declared_rows(project: Project, project_dir: Path) -> None:
    path = project_dir / "holdout.parquet"
    pq.write_table(customers(3000, seed=1), path)
    add(project, "holdout", [path])
    spec = model_spec(
        [{"metric": "auc", "min": 0.5}],
        evaluation={"data": "dataset:holdout", "target": "churned", "rows": 500},
    )
    ctx = GateContext(version(), spec, project)
    features, labels = ctx.evaluation()
    assert features.num_rows == len(labels) == 500
    assert "churned" not in features.column_names
    assert ctx.evaluation()[0] is features  # loaded once per run
