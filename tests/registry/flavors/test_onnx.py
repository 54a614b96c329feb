"""The onnx flavor on graphs converted from scikit-learn with skl2onnx."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from seaway.errors import InputError
from seaway.registry.flavors import get_flavor
from seaway.registry.flavors.onnx import MODEL_FILE, OnnxFlavor

from .conftest import to_onnx_file


@pytest.fixture
def flavor() -> OnnxFlavor:
    found = get_flavor("onnx")
    assert isinstance(found, OnnxFlavor)
    return found


def test_classifier_matches_sklearn(
    flavor: OnnxFlavor, array_classifier: Any, array_data: Any, tmp_path: Path
) -> None:
    x, _, _ = array_data
    source = to_onnx_file(array_classifier, x, tmp_path / "src" / "clf.onnx", zipmap=False)
    staging = tmp_path / "staging"
    meta = flavor.prepare(source, staging)

    assert sorted(p.name for p in staging.iterdir()) == [MODEL_FILE]
    assert meta["label_output"] == "label"
    assert meta["proba_output"] == "probabilities"
    assert meta["producer"] == "skl2onnx"
    assert meta["inputs"] == [{"name": "X", "type": "tensor(float)", "shape": [-1, 4]}]

    predictor = flavor.load(staging, meta)
    assert predictor.flavor == "onnx"
    assert predictor.has_proba
    np.testing.assert_array_equal(predictor.predict(x), array_classifier.predict(x))
    np.testing.assert_allclose(
        predictor.predict_proba(x),  # type: ignore[attr-defined]
        array_classifier.predict_proba(x),
        atol=1e-5,
    )
    # A DataFrame of the same width and plain lists work too.
    frame = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    np.testing.assert_array_equal(predictor.predict(frame), array_classifier.predict(x))
    np.testing.assert_array_equal(predictor.predict(x[0].tolist()), array_classifier.predict(x[:1]))


def test_zipmap_classifier_gives_a_probability_matrix(
    flavor: OnnxFlavor, array_classifier: Any, array_data: Any, tmp_path: Path
) -> None:
    x, _, _ = array_data
    source = to_onnx_file(array_classifier, x, tmp_path / "clf.onnx")  # ZipMap on
    meta = flavor.prepare(source, tmp_path / "staging")
    predictor = flavor.load(tmp_path / "staging", meta)
    assert meta["proba_output"] == "output_probability"
    proba = predictor.predict_proba(x)  # type: ignore[attr-defined]
    assert proba.shape == (len(x), 2)
    np.testing.assert_allclose(proba, array_classifier.predict_proba(x), atol=1e-5)


def test_regressor_matches_sklearn(
    flavor: OnnxFlavor, array_regressor: Any, array_data: Any, tmp_path: Path
) -> None:
    x, _, _ = array_data
    source = to_onnx_file(array_regressor, x, tmp_path / "reg.onnx")
    meta = flavor.prepare(source, tmp_path / "staging")
    predictor = flavor.load(tmp_path / "staging", meta)

    assert not predictor.has_proba
    assert not hasattr(predictor, "predict_proba")
    predicted = predictor.predict(x)
    assert predicted.shape == (len(x),)  # flat, as scikit-learn returns it
    np.testing.assert_allclose(predicted, array_regressor.predict(x), atol=1e-5)
    with pytest.raises(InputError, match="expects 4"):
        predictor.predict(x[:, :2])


def test_one_input_per_column(flavor: OnnxFlavor, churn_data: pd.DataFrame, tmp_path: Path) -> None:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    columns = ["tenure", "monthly_charges", "region"]
    train = churn_data[columns].astype({"tenure": np.float32, "monthly_charges": np.float32})
    pipe = Pipeline(
        [
            (
                "pre",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), ["tenure", "monthly_charges"]),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["region"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression(max_iter=1000)),
        ]
    ).fit(train, churn_data["churned"])
    onx = convert_sklearn(
        pipe,
        initial_types=[
            ("tenure", FloatTensorType([None, 1])),
            ("monthly_charges", FloatTensorType([None, 1])),
            ("region", StringTensorType([None, 1])),
        ],
        options={id(pipe): {"zipmap": False}},
        target_opset=17,
    )
    (tmp_path / "churn.onnx").write_bytes(onx.SerializeToString())
    meta = flavor.prepare(tmp_path / "churn.onnx", tmp_path / "staging")
    predictor = flavor.load(tmp_path / "staging", meta)

    assert predictor.input_names == columns
    # Integer tenure from the dataset is cast to the graph's float; extra columns are ignored.
    np.testing.assert_array_equal(predictor.predict(churn_data), pipe.predict(train))
    np.testing.assert_allclose(
        predictor.predict_proba(churn_data.to_dict("records")),  # type: ignore[attr-defined]
        pipe.predict_proba(train),
        atol=1e-5,
    )
    with pytest.raises(InputError, match="missing column region"):
        predictor.predict(churn_data.drop(columns=["region"]))
    assert flavor.infer_schema(predictor, churn_data) == {
        "inputs": [
            {"name": "tenure", "type": "float", "nullable": False},
            {"name": "monthly_charges", "type": "float", "nullable": False},
            {"name": "region", "type": "string", "nullable": False},
        ],
        "outputs": [
            {"name": "label", "type": "int", "nullable": False},
            {"name": "probabilities", "type": "tensor", "shape": [-1, 2], "nullable": False},
        ],
    }


def test_feature_names_in_metadata_select_columns(
    flavor: OnnxFlavor, array_classifier: Any, array_data: Any, tmp_path: Path
) -> None:
    import onnx

    x, _, _ = array_data
    source = to_onnx_file(array_classifier, x, tmp_path / "clf.onnx", zipmap=False)
    model = onnx.load(source)
    onnx.helper.set_model_props(model, {"feature_names": json.dumps(["a", "b", "c", "d"])})
    onnx.save(model, source)

    meta = flavor.prepare(source, tmp_path / "staging")
    assert meta["columns"] == ["a", "b", "c", "d"]
    predictor = flavor.load(tmp_path / "staging", meta)
    assert predictor.input_names == ["a", "b", "c", "d"]
    wide = pd.DataFrame(x, columns=["a", "b", "c", "d"]).assign(label=1)[
        ["label", "d", "c", "b", "a"]
    ]
    np.testing.assert_array_equal(predictor.predict(wide), array_classifier.predict(x))


def test_schema_from_the_graph(
    flavor: OnnxFlavor,
    array_classifier: Any,
    array_regressor: Any,
    array_data: Any,
    tmp_path: Path,
) -> None:
    x, _, _ = array_data
    clf = to_onnx_file(array_classifier, x, tmp_path / "c" / "clf.onnx", zipmap=False)
    meta = flavor.prepare(clf, tmp_path / "s1")
    expected = {
        "inputs": [{"name": "X", "type": "tensor", "shape": [-1, 4], "nullable": False}],
        "outputs": [
            {"name": "label", "type": "int", "nullable": False},
            {"name": "probabilities", "type": "tensor", "shape": [-1, 2], "nullable": False},
        ],
    }
    predictor = flavor.load(tmp_path / "s1", meta)
    assert flavor.infer_schema(predictor, None) == expected
    assert flavor.infer_schema(predictor, x) == expected

    reg = to_onnx_file(array_regressor, x, tmp_path / "r" / "reg.onnx")
    meta = flavor.prepare(reg, tmp_path / "s2")
    assert flavor.infer_schema(flavor.load(tmp_path / "s2", meta), None) == {
        "inputs": [{"name": "X", "type": "tensor", "shape": [-1, 4], "nullable": False}],
        "outputs": [{"name": "variable", "type": "float", "nullable": False}],
    }


def test_broken_file_is_an_input_error(flavor: OnnxFlavor, tmp_path: Path) -> None:
    (tmp_path / "broken.onnx").write_bytes(b"\x08\x07\x12\x03not a graph")
    with pytest.raises(InputError, match="onnxruntime cannot load it"):
        flavor.prepare(tmp_path / "broken.onnx", tmp_path / "staging")


def test_values_that_are_not_numbers_are_an_input_error(
    flavor: OnnxFlavor, array_classifier: Any, array_data: Any, tmp_path: Path
) -> None:
    x, _, _ = array_data
    source = to_onnx_file(array_classifier, x, tmp_path / "clf.onnx", zipmap=False)
    predictor = flavor.load(tmp_path, {"file": source.name})
    with pytest.raises(InputError, match="cannot be read as float32"):
        predictor.predict([["a", "b", "c", "d"]])
