"""Model inputs in every shape a caller holds them, and schema types from samples."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from seaway.errors import InputError
from seaway.registry.flavors import to_frame, to_matrix
from seaway.registry.flavors.schema import frame_columns, validate

NAMES = ["b", "a"]
EXPECTED = pd.DataFrame({"b": [1.5, 2.5], "a": [1, 2]})


@pytest.mark.parametrize(
    "data",
    [
        pd.DataFrame({"a": [1, 2], "b": [1.5, 2.5], "label": [0, 1]}),
        pa.table({"a": [1, 2], "b": [1.5, 2.5], "label": [0, 1]}),
        {"a": [1, 2], "b": [1.5, 2.5]},
        {"a": np.array([1, 2]), "b": np.array([[1.5], [2.5]])},
        [{"a": 1, "b": 1.5, "id": "x"}, {"a": 2, "b": 2.5, "id": "y"}],
        np.array([[1.5, 1], [2.5, 2]], dtype=object),
    ],
    ids=["pandas", "arrow", "columns", "arrays", "records", "matrix"],
)
def test_to_frame_selects_the_named_columns(data: object) -> None:
    frame = to_frame(data, NAMES)
    assert list(frame.columns) == NAMES
    np.testing.assert_allclose(frame.to_numpy(dtype=float), EXPECTED.to_numpy(dtype=float))


def test_to_frame_errors_name_the_problem() -> None:
    with pytest.raises(InputError, match="missing column a that"):
        to_frame({"b": [1.0]}, NAMES)
    with pytest.raises(InputError, match="3 values per row, the model expects 2 columns"):
        to_frame([[1, 2, 3]], NAMES)
    with pytest.raises(InputError, match="cannot read model input of type str"):
        to_frame("1,2", NAMES)
    with pytest.raises(InputError, match="do not line up"):
        to_frame({"a": [1, 2], "b": [1]})


def test_one_row_forms() -> None:
    assert to_frame({"a": 1, "b": 2.0}).shape == (1, 2)
    assert to_matrix([1, 2, 3]).shape == (1, 3)


def test_to_matrix() -> None:
    matrix = to_matrix(pa.table({"x": [1, 2], "y": [3, 4]}), 2, "float32")
    assert matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix, [[1, 3], [2, 4]])
    with pytest.raises(InputError, match="has 3 values per row, the model expects 2"):
        to_matrix([[1, 2, 3]], 2)
    with pytest.raises(InputError, match="cannot be read as float32"):
        to_matrix([["x", "y"]], 2, "float32")
    with pytest.raises(InputError, match="differ in length"):
        to_matrix([[1, 2], [3]])


def test_column_types_from_a_sample() -> None:
    sample = pd.DataFrame(
        {
            "n": [1, 2],
            "x": [1.0, np.nan],
            "s": ["a", "b"],
            "flag": [True, False],
            "day": [dt.date(2024, 1, 1), dt.date(2024, 1, 2)],
            "at": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "blob": [b"\x00", b"\x01"],
            "cat": pd.Categorical(["u", "v"]),
            "maybe": pd.array([1, None], dtype="Int64"),
        }
    )
    kinds = {c["name"]: (c["type"], c["nullable"]) for c in frame_columns(sample)}
    assert kinds == {
        "n": ("int", False),
        "x": ("float", True),
        "s": ("string", False),
        "flag": ("bool", False),
        "day": ("date", False),
        "at": ("timestamp", False),
        "blob": ("binary", False),
        "cat": ("string", False),
        "maybe": ("int", True),
    }
    # Every inferred column is a valid ColumnSchema.
    validate({"inputs": frame_columns(sample)}, "sample")
    with pytest.raises(InputError, match="the schema is invalid"):
        validate({"inputs": [{"name": "x", "type": "complex"}]}, "declared")
