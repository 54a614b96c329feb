"""Input/output schemas in the terms of `seaway.spec.models.ColumnSchema`.

A schema is a plain dict, `{"inputs": [column, ...], "outputs": [column, ...]}`, where a column
is `{"name", "type", "nullable"}` plus `"shape"` for tensors; the types are the closed list
int, float, string, bool, date, timestamp, binary, tensor. It is stored as JSON with the
version, so it must validate as `ModelSchemaSpec` (no other keys).

Flavors infer what they can: column types from a sample's dtypes (a sample is needed, since a
fitted scikit-learn pipeline knows its column names but not their types), tensor shapes from
an ONNX graph, outputs from predicting on the sample. A schema declared in `seaway.yaml` or in
a python model's descriptor wins over anything inferred.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from seaway.errors import InputError

if TYPE_CHECKING:
    import numpy
    import pandas

SAMPLE_ROWS = 100
"""Rows of a sample used to infer types and predict outputs; more only costs time."""


def value_kind(value: Any) -> str:
    """The column type of one Python value (from an object column)."""
    import numpy as np

    if isinstance(value, bool | np.bool_):
        return "bool"
    if isinstance(value, int | np.integer):
        return "int"
    if isinstance(value, float | np.floating):
        return "float"
    if isinstance(value, bytes | bytearray):
        return "binary"
    if isinstance(value, dt.datetime):
        return "timestamp"
    if isinstance(value, dt.date):
        return "date"
    if isinstance(value, list | tuple | np.ndarray):
        return "tensor"
    return "string"


def dtype_kind(dtype: Any, values: Any = None) -> str:
    """The column type of a numpy or pandas dtype; object columns are judged by `values`."""
    import pandas as pd

    if isinstance(dtype, pd.CategoricalDtype):
        return dtype_kind(dtype.categories.dtype, dtype.categories)
    kind = getattr(dtype, "kind", "O")
    if kind == "b":
        return "bool"
    if kind in "iu":
        return "int"
    if kind in "fc":
        return "float"
    if kind == "M":
        return "timestamp"
    if kind == "m":
        # A duration has no column type of its own; as a number it keeps its order.
        return "float"
    if kind == "S":
        return "binary"
    if kind == "U":
        return "string"
    if values is not None:
        for value in values:
            if value is not None and not (isinstance(value, float) and value != value):
                return value_kind(value)
    return "string"


def column(
    name: str, kind: str, *, nullable: bool = False, shape: list[int] | None = None
) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "type": kind}
    if shape is not None:
        entry["shape"] = shape
    entry["nullable"] = nullable
    return entry


def frame_columns(frame: pandas.DataFrame) -> list[dict[str, Any]]:
    """One column entry per column of a sample, typed by its dtype, nullable if it has nulls."""
    return [
        column(
            str(name),
            dtype_kind(frame[name].dtype, frame[name].dropna()),
            nullable=bool(frame[name].isna().any()),
        )
        for name in frame.columns
    ]


def array_column(name: str, values: Any) -> dict[str, Any]:
    """The schema of one output: a column for one value per row, a tensor otherwise."""
    import numpy as np

    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim <= 1:
        nulls = _has_nulls(array)
        return column(name, dtype_kind(array.dtype, array), nullable=nulls)
    return column(name, "tensor", shape=[-1, *array.shape[1:]])


def tensor_input(name: str, width: int | None) -> dict[str, Any]:
    return column(name, "tensor", shape=[-1, width if width is not None else -1])


def head(sample: Any, rows: int = SAMPLE_ROWS) -> Any:
    """The first rows of a sample, whatever its shape (enough to infer types and outputs)."""
    import numpy as np
    import pandas as pd

    if isinstance(sample, pd.DataFrame | pd.Series):
        return sample.head(rows)
    if hasattr(sample, "slice") and hasattr(sample, "num_rows"):  # pyarrow Table/RecordBatch
        return sample.slice(0, rows)
    if isinstance(sample, np.ndarray):
        return sample[:rows] if sample.ndim > 1 else sample
    if isinstance(sample, dict):
        return {
            k: (v[:rows] if hasattr(v, "__getitem__") and not isinstance(v, str) else v)
            for k, v in sample.items()
        }
    if isinstance(sample, list) and sample and isinstance(sample[0], dict | list | tuple):
        return sample[:rows]
    return sample


def validate(schema: dict[str, Any], where: str) -> dict[str, Any]:
    """Check a schema against `ModelSchemaSpec`; returns it as plain JSON-able data."""
    from pydantic import ValidationError

    from seaway.spec.models import ModelSchemaSpec

    try:
        spec = ModelSchemaSpec.model_validate(schema, strict=False)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise InputError(
            f"{where}: the schema is invalid: {problems}",
            hint="a column is {name, type, shape?, nullable?} with type one of int, float, "
            "string, bool, date, timestamp, binary, tensor",
        ) from exc
    return spec.model_dump(exclude_none=True)


def _has_nulls(array: numpy.ndarray) -> bool:
    import pandas as pd

    if array.dtype.kind in "biuSU":
        return False
    return bool(pd.isna(array).any())


__all__ = [
    "SAMPLE_ROWS",
    "array_column",
    "column",
    "dtype_kind",
    "frame_columns",
    "head",
    "tensor_input",
    "validate",
    "value_kind",
]
