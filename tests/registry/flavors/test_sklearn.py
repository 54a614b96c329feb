"""The sklearn flavor on real estimators: skops files, pickles, and hostile files."""

from __future__ import annotations

import os
import pickle
import shutil
import zipfile
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.base import BaseEstimator, TransformerMixin

from seaway.errors import InputError
from seaway.registry.flavors import UnsafeModel, get_flavor
from seaway.registry.flavors.sklearn import MODEL_FILE, SklearnFlavor, is_trusted_type
from seaway.registry.scan import scan_path

from .conftest import FEATURES


@pytest.fixture
def flavor() -> SklearnFlavor:
    found = get_flavor("sklearn")
    assert isinstance(found, SklearnFlavor)
    return found


def test_skops_pipeline_predicts_as_sklearn_does(
    flavor: SklearnFlavor,
    churn_skops: Path,
    churn_pipeline: Any,
    churn_data: pd.DataFrame,
    tmp_path: Path,
) -> None:
    staging = tmp_path / "staging"
    meta = flavor.prepare(churn_skops, staging)

    assert sorted(p.name for p in staging.iterdir()) == [MODEL_FILE]
    assert meta["file"] == MODEL_FILE
    assert meta["source_format"] == "skops"
    assert meta["estimator"] == "sklearn.pipeline.Pipeline"
    assert meta["feature_names"] == FEATURES
    assert meta["has_proba"] is True
    assert meta["classes"] == [0, 1]

    predictor = flavor.load(staging, meta)
    assert predictor.flavor == "sklearn"
    assert predictor.input_names == FEATURES
    assert predictor.has_proba

    # The dataset still holds the id and the label: the model's columns are picked by name.
    np.testing.assert_array_equal(
        predictor.predict(churn_data), churn_pipeline.predict(churn_data[FEATURES])
    )
    np.testing.assert_allclose(
        predictor.predict_proba(churn_data),  # type: ignore[attr-defined]
        churn_pipeline.predict_proba(churn_data[FEATURES]),
    )


def test_skops_pipeline_takes_every_input_shape(
    flavor: SklearnFlavor,
    churn_skops: Path,
    churn_pipeline: Any,
    churn_data: pd.DataFrame,
    tmp_path: Path,
) -> None:
    meta = flavor.prepare(churn_skops, tmp_path / "staging")
    predictor = flavor.load(tmp_path / "staging", meta)
    rows = churn_data.head(20)
    expected = churn_pipeline.predict(rows[FEATURES])

    shapes = {
        "arrow": pa.Table.from_pandas(rows, preserve_index=False),
        "columns": {c: rows[c].tolist() for c in rows.columns},
        "records": rows.to_dict("records"),
        "matrix": rows[FEATURES].to_numpy(dtype=object),
    }
    for name, data in shapes.items():
        np.testing.assert_array_equal(predictor.predict(data), expected, err_msg=name)
    one = rows.iloc[0][FEATURES].to_dict()
    np.testing.assert_array_equal(predictor.predict(one), expected[:1])


def test_missing_column_is_named(
    flavor: SklearnFlavor, churn_skops: Path, churn_data: pd.DataFrame, tmp_path: Path
) -> None:
    meta = flavor.prepare(churn_skops, tmp_path / "staging")
    predictor = flavor.load(tmp_path / "staging", meta)
    with pytest.raises(InputError) as err:
        predictor.predict(churn_data.drop(columns=["region", "tenure"]))
    assert "missing columns tenure, region" in str(err.value)
    assert err.value.exit_code == 2


def test_folder_with_one_model_file(
    flavor: SklearnFlavor, churn_skops: Path, tmp_path: Path
) -> None:
    (churn_skops.parent / "README.md").write_text("the churn model\n")
    meta = flavor.prepare(churn_skops.parent, tmp_path / "staging")
    assert meta["source_file"] == churn_skops.name
    assert sorted(p.name for p in (tmp_path / "staging").iterdir()) == [MODEL_FILE]

    shutil.copy(churn_skops, churn_skops.parent / "other.skops")
    with pytest.raises(InputError, match="several skops or pickle files"):
        flavor.prepare(churn_skops.parent, tmp_path / "staging2")


def test_array_fitted_estimator_takes_a_float_matrix(
    flavor: SklearnFlavor, array_regressor: Any, array_data: Any, tmp_path: Path
) -> None:
    import skops.io as sio

    x, _, _ = array_data
    # skops files need no extension: a pipeline step writes its output where it is told.
    source = tmp_path / "model"
    sio.dump(array_regressor, source)
    meta = flavor.prepare(source, tmp_path / "staging")
    predictor = flavor.load(tmp_path / "staging", meta)

    assert predictor.input_names is None
    assert not predictor.has_proba
    assert not hasattr(predictor, "predict_proba")
    # Rows as a JSON client sends them: plain lists of floats.
    expected = array_regressor.predict(x.astype(np.float64))
    np.testing.assert_allclose(predictor.predict(x.tolist()), expected)
    with pytest.raises(InputError, match="expects 4"):
        predictor.predict(x[:, :3])


def test_pickle_needs_trust_pickle(
    flavor: SklearnFlavor, churn_pipeline: Any, tmp_path: Path
) -> None:
    source = tmp_path / "churn.pkl"
    source.write_bytes(pickle.dumps(churn_pipeline))
    with pytest.raises(UnsafeModel) as err:
        flavor.prepare(source, tmp_path / "staging")
    assert "--trust-pickle" in str(err.value)
    assert err.value.exit_code == 1
    assert not any((tmp_path / "staging").iterdir())


def test_safe_pickle_with_trust_pickle_is_stored_as_skops(
    flavor: SklearnFlavor, churn_pipeline: Any, churn_data: pd.DataFrame, tmp_path: Path
) -> None:
    source = tmp_path / "churn.joblib"
    joblib.dump(churn_pipeline, source, compress=3)
    staging = tmp_path / "staging"
    meta = flavor.prepare(source, staging, trust_pickle=True)

    assert meta["source_format"] == "joblib"
    assert meta["format"] == "skops"
    assert sorted(p.name for p in staging.iterdir()) == [MODEL_FILE]
    with zipfile.ZipFile(staging / MODEL_FILE) as archive:
        assert "schema.json" in archive.namelist()
    # What is stored is skops, as the scanner reads it too.
    assert [f.format for f in scan_path(staging).findings] == ["skops"]

    predictor = flavor.load(staging, meta)
    np.testing.assert_allclose(
        predictor.predict_proba(churn_data),  # type: ignore[attr-defined]
        churn_pipeline.predict_proba(churn_data[FEATURES]),
    )


class _Evil:
    """Unpickling this runs a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_never_run(flavor: SklearnFlavor, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    source = tmp_path / "model.pkl"
    source.write_bytes(pickle.dumps(_Evil(marker)))

    for trust in (False, True):
        with pytest.raises(UnsafeModel) as err:
            flavor.prepare(source, tmp_path / f"staging-{trust}", trust_pickle=trust)
        assert not marker.exists()
    message = str(err.value)
    assert "dangerous" in message
    assert "system" in message  # the offending global, posix.system or nt.system
    assert err.value.exit_code == 1


class _Custom(BaseEstimator, TransformerMixin):
    """A user's own transformer: loading it imports this test module."""

    def fit(self, x: Any, y: Any = None) -> _Custom:
        return self

    def transform(self, x: Any) -> Any:
        return x


def _custom_pipeline(array_data: Any) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    x, label, _ = array_data
    return Pipeline([("own", _Custom()), ("clf", LogisticRegression())]).fit(x, label)


def test_suspicious_pickle_is_refused_with_its_globals(
    flavor: SklearnFlavor, array_data: Any, tmp_path: Path
) -> None:
    source = tmp_path / "model.pkl"
    source.write_bytes(pickle.dumps(_custom_pipeline(array_data)))
    with pytest.raises(UnsafeModel) as err:
        flavor.prepare(source, tmp_path / "staging", trust_pickle=True)
    assert "suspicious" in str(err.value)
    assert f"{__name__}._Custom" in str(err.value)


def test_skops_file_with_untrusted_type_is_refused(
    flavor: SklearnFlavor, array_data: Any, tmp_path: Path
) -> None:
    import skops.io as sio

    source = tmp_path / "custom.skops"
    sio.dump(_custom_pipeline(array_data), source)
    with pytest.raises(UnsafeModel) as err:
        flavor.prepare(source, tmp_path / "staging")
    assert f"{__name__}._Custom" in str(err.value)
    assert "python" in (err.value.hint or "")


def test_skops_trusts_scikit_learn_tree_types(
    flavor: SklearnFlavor, array_data: Any, tmp_path: Path
) -> None:
    import skops.io as sio
    from sklearn.ensemble import RandomForestClassifier

    x, label, _ = array_data
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(x, label)
    sio.dump(forest, tmp_path / "forest.skops")
    meta = flavor.prepare(tmp_path / "forest.skops", tmp_path / "staging")
    assert "sklearn.tree._tree.Tree" in meta["trusted_types"]
    predictor = flavor.load(tmp_path / "staging", meta)
    np.testing.assert_array_equal(predictor.predict(x), forest.predict(x))


def test_allow_list_keeps_denied_names_out() -> None:
    assert is_trusted_type("sklearn.tree._tree.Tree")
    assert is_trusted_type("numpy.float64")
    assert not is_trusted_type("numpy.load")
    assert not is_trusted_type("sklearn.datasets.fetch_openml")
    assert not is_trusted_type("builtins.eval")
    assert not is_trusted_type("mypackage.Transformer")


def test_not_an_estimator(flavor: SklearnFlavor, tmp_path: Path) -> None:
    import skops.io as sio

    sio.dump({"weights": [1, 2, 3]}, tmp_path / "dict.skops")
    with pytest.raises(InputError, match="not an estimator with predict"):
        flavor.prepare(tmp_path / "dict.skops", tmp_path / "staging")


def test_missing_source(flavor: SklearnFlavor, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        flavor.prepare(tmp_path / "nope.skops", tmp_path / "staging")


def test_schema_from_a_sample(
    flavor: SklearnFlavor, churn_skops: Path, churn_data: pd.DataFrame, tmp_path: Path
) -> None:
    meta = flavor.prepare(churn_skops, tmp_path / "staging")
    predictor = flavor.load(tmp_path / "staging", meta)
    schema = flavor.infer_schema(predictor, churn_data)
    assert schema == {
        "inputs": [
            {"name": "tenure", "type": "int", "nullable": False},
            {"name": "monthly_charges", "type": "float", "nullable": False},
            {"name": "region", "type": "string", "nullable": False},
            {"name": "contract", "type": "string", "nullable": False},
        ],
        "outputs": [
            {"name": "prediction", "type": "int", "nullable": False},
            {"name": "probabilities", "type": "tensor", "shape": [-1, 2], "nullable": False},
        ],
    }
    # Named columns cannot be typed without a sample.
    assert flavor.infer_schema(predictor, None) is None


def test_schema_of_an_array_model_without_sample(
    flavor: SklearnFlavor, array_classifier: Any, tmp_path: Path
) -> None:
    import skops.io as sio

    sio.dump(array_classifier, tmp_path / "clf.skops")
    meta = flavor.prepare(tmp_path / "clf.skops", tmp_path / "staging")
    predictor = flavor.load(tmp_path / "staging", meta)
    assert flavor.infer_schema(predictor, None) == {
        "inputs": [{"name": "input", "type": "tensor", "shape": [-1, 4], "nullable": False}],
        "outputs": [
            {"name": "prediction", "type": "int", "nullable": False},
            {"name": "probabilities", "type": "tensor", "shape": [-1, 2], "nullable": False},
        ],
    }
