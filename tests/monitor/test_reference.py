"""Reference profiles: built when a version is registered, from its lineage or its evaluation
data, or from a table given later; stored once per version and read back as they were."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from seaway.errors import InputError
from seaway.monitor.reference import build_reference, load_reference
from seaway.project import Project
from tests.monitor.test_drift import (
    FEATURES,
    customers,
    events,
    register_churn,
    save_churn_model,
    with_evaluation_data,
    write_spec,
)
from tests.serving.conftest import BROKEN_PREDICT, python_model, register


def profile_rows(project: Project) -> list[Any]:
    from sqlalchemy import select

    from seaway.store.schema import reference_profiles

    with project.metadata.read() as conn:
        return list(conn.execute(select(reference_profiles)).all())


@pytest.mark.slow
def test_the_pipeline_registers_a_version_with_its_training_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seaway.data.datasets import add
    from seaway.init import init_project
    from seaway.pipeline import run_pipeline

    monkeypatch.delenv("SEAWAY_METADATA_URL", raising=False)
    monkeypatch.delenv("SEAWAY_ARTIFACTS_URL", raising=False)
    init = init_project(tmp_path / "churn", name="churn", example_data=True)
    monkeypatch.chdir(init.root)
    project = Project(init.root)
    try:
        add(project, "customers")
        assert run_pipeline(project, "train").status == "succeeded"

        ref = load_reference(project, "churn-classifier", 1)
        assert ref is not None
        # The dataset the run read, its input columns only (no id, no label).
        assert (ref.rows, ref.source) == (5000, "dataset:customers@1")
        assert list(ref.features.columns) == FEATURES
        assert {c: p.kind for c, p in ref.features.columns.items()} == {
            "tenure": "numeric",
            "monthly_charges": "numeric",
            "support_calls": "numeric",
            "region": "categorical",
            "contract": "categorical",
        }
        assert ref.features.columns["tenure"].rows == 5000
        assert ref.predictions is not None
        assert list(ref.predictions.columns) == ["predict_proba"]
        proba = ref.predictions.columns["predict_proba"]
        assert proba.kind == "numeric" and 0 < proba.mean < 1

        (event,) = events(project, "model.profiled")
        assert event.subject == "model:churn-classifier@1"
        assert event.data["rows"] == 5000 and event.data["columns"] == FEATURES
        assert event.data["source"] == "dataset:customers@1"
        # Profiles never change: read again, the parsed profile is the same object.
        again = load_reference(project, "churn-classifier", 1)
        assert again is not None and again.features is ref.features
    finally:
        project.close()


def test_a_given_table_replaces_the_profile(project: Project, tmp_path: Path) -> None:
    number = register_churn(project, tmp_path)
    assert load_reference(project, "churn", number) is None  # nothing to profile it from
    assert profile_rows(project) == []

    first = build_reference(project, f"churn@{number}", customers(3000, seed=1), source="a.pq")
    assert (first.rows, first.source, list(first.features.columns)) == (3000, "a.pq", FEATURES)
    second = build_reference(project, "churn@latest", customers(2000, seed=2))
    assert (second.number, second.rows, second.source) == (number, 2000, None)

    (row,) = profile_rows(project)
    assert (row.model, row.number, row.rows) == ("churn", number, 2000)
    loaded = load_reference(project, "churn", number)
    assert loaded is not None and loaded.rows == 2000
    assert loaded.features.to_dict() == second.features.to_dict()
    assert loaded.predictions is not None and second.predictions is not None
    assert loaded.predictions.to_dict() == second.predictions.to_dict()
    assert [e.data["rows"] for e in events(project, "model.profiled")] == [3000, 2000]


def test_the_evaluation_data_is_the_fallback_at_registration(
    project: Project, tmp_path: Path
) -> None:
    with_evaluation_data(project, 2500)
    number = register_churn(project, tmp_path)

    ref = load_reference(project, "churn", number)
    assert ref is not None
    assert (ref.rows, ref.source) == (2500, "dataset:customers")
    assert list(ref.features.columns) == FEATURES  # the label left out


def test_without_data_the_registration_succeeds_and_the_build_says_what_to_do(
    project: Project, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        number = register_churn(project, tmp_path)
    assert caplog.records == [] or all(r.levelno < logging.WARNING for r in caplog.records)
    assert load_reference(project, "churn", number) is None
    with pytest.raises(InputError) as err:
        build_reference(project, f"churn@{number}")
    assert "no training data found for churn@1" in err.value.message
    assert err.value.hint == "seaway monitor reference churn@1 --data FILE"


def test_a_failing_build_at_registration_is_only_a_warning(
    project: Project, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_spec(
        project, "models:\n  churn:\n    evaluation: {data: 'dataset:nowhere', target: churned}\n"
    )
    with caplog.at_level(logging.WARNING, logger="seaway.registry"):
        number = register_churn(project, tmp_path)
    assert number == 1
    assert load_reference(project, "churn", 1) is None
    (record,) = [r for r in caplog.records if r.name == "seaway.registry"]
    assert "churn@1: no reference profile" in record.getMessage()
    assert "dataset:nowhere" in record.getMessage()


def test_data_lacking_an_input_is_refused_and_nothing_is_stored(
    project: Project, tmp_path: Path
) -> None:
    number = register_churn(project, tmp_path)
    with pytest.raises(InputError, match="lacks its inputs region, contract") as err:
        build_reference(
            project, f"churn@{number}", customers(100, seed=0).drop_columns(["region", "contract"])
        )
    assert err.value.hint
    empty = customers(10, seed=0).slice(0, 0)
    with pytest.raises(InputError, match="has no rows"):
        build_reference(project, f"churn@{number}", empty)
    assert profile_rows(project) == []


def test_a_model_that_cannot_predict_keeps_its_feature_profile(
    project: Project, tmp_path: Path
) -> None:
    number = register(project, "broken", python_model(tmp_path / "broken", BROKEN_PREDICT))
    table = pa.table({"x0": [0.1, 0.2, 0.3] * 50, "x1": ["a", "b", "c"] * 50})
    ref = build_reference(project, f"broken@{number}", table)
    assert list(ref.features.columns) == ["x0", "x1"] and ref.predictions is None
    (event,) = events(project, "model.profiled")
    assert "ZeroDivisionError" in event.data["predictions_error"]
    stored = load_reference(project, "broken", number)
    assert stored is not None and stored.predictions is None


def test_a_model_taking_whole_rows_names_its_columns_as_the_log_reader_does(
    project: Project, tmp_path: Path
) -> None:
    from tests.serving.conftest import NAMED, save_classifier, training_data

    number = register(project, "rows", save_classifier(tmp_path / "rows.skops"))
    X, _ = training_data()
    table = pa.table({name: X[:, i] for i, name in enumerate(NAMED)})
    ref = build_reference(project, f"rows@{number}", table)
    assert list(ref.features.columns) == ["x0", "x1", "x2", "x3"]
    assert ref.predictions is not None and list(ref.predictions.columns) == ["predict_proba"]
    with pytest.raises(InputError, match="takes rows of 4 values; the data has 3 columns"):
        build_reference(project, f"rows@{number}", table.drop_columns(["calls"]))


def test_a_stored_model_file_is_profiled_from_its_own_files(
    project: Project, tmp_path: Path
) -> None:
    """Without a predictor at hand the version is loaded from the store, as a gateway does."""
    from seaway.registry import register_model

    train = customers(1000, seed=0)
    path = save_churn_model(tmp_path / "m" / "model.skops", train, C=0.5)
    number = register_model(project, "other", path, sample=train.select(FEATURES)).version.number
    ref = build_reference(project, f"other@{number}", train)
    assert ref.predictions is not None and ref.predictions.columns["predict_proba"].rows == 1000
