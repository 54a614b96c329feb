"""Turning what a caller passes to `predict` into what a model wants.

Callers hold data in many shapes: a pyarrow Table from a dataset version, a pandas DataFrame
from a notebook, a dict of columns or a list of row dicts decoded from a JSON request, a 2-D
array from a tensor payload. Models want one of two things: a table with named columns
(`to_frame`, a pandas DataFrame, since that is what scikit-learn pipelines with a
ColumnTransformer select from) or a 2-D matrix (`to_matrix`). Both helpers accept every shape
above, so flavors and their callers never special-case a source.

Named columns are selected, in the model's order, from a table that may be wider (a dataset
with the label and ids still in it); a missing column is an InputError that names it. A
matrix passed where names are wanted is taken positionally when its width matches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from seaway.errors import InputError

if TYPE_CHECKING:
    import numpy
    import pandas

_ACCEPTED = (
    "pass a pandas DataFrame, a pyarrow Table, a dict of columns, a list of row dicts or a "
    "2-D array"
)


def _is_scalar(value: Any) -> bool:
    import numpy as np

    return value is None or isinstance(value, (str, bytes, int, float, bool, np.generic))


def to_frame(data: Any, names: list[str] | None = None) -> pandas.DataFrame:
    """A pandas DataFrame of `data`; with `names`, exactly those columns in that order."""
    import numpy as np
    import pandas as pd

    frame: pd.DataFrame
    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, pd.Series):
        frame = data.to_frame().T.reset_index(drop=True)
    elif hasattr(data, "to_pandas") and not isinstance(data, np.ndarray):
        # pyarrow Table and RecordBatch, polars DataFrame.
        frame = data.to_pandas()
        if isinstance(frame, pd.Series):
            frame = frame.to_frame()
    elif isinstance(data, Mapping):
        if all(_is_scalar(v) for v in data.values()):
            frame = pd.DataFrame([dict(data)])  # one row, given as {column: value}
        else:
            try:
                frame = pd.DataFrame({k: _column(v) for k, v in data.items()})
            except ValueError as exc:
                raise InputError(
                    f"the input columns do not line up: {exc}", hint=_ACCEPTED
                ) from exc
    elif isinstance(data, Sequence | np.ndarray) and not isinstance(data, str | bytes):
        if len(data) and all(isinstance(row, Mapping) for row in data):
            frame = pd.DataFrame(list(data))
        else:
            matrix = _as_2d(data)
            columns = names if names is not None and matrix.shape[1] == len(names) else None
            if names is not None and columns is None:
                raise InputError(
                    f"the input has {matrix.shape[1]} values per row, the model expects "
                    f"{len(names)} columns ({_list(names)})",
                    hint="pass a table with named columns, or rows of exactly that width",
                )
            frame = pd.DataFrame(matrix, columns=columns)
            # An object matrix of mixed values (from JSON rows) keeps each column's own type.
            if matrix.dtype == object:
                frame = frame.infer_objects()
    else:
        raise InputError(f"cannot read model input of type {type(data).__name__}", hint=_ACCEPTED)
    if names is None:
        return frame
    have = {str(c) for c in frame.columns}
    missing = [n for n in names if n not in have]
    if missing:
        raise InputError(
            f"the input is missing column{'s' if len(missing) > 1 else ''} {_list(missing)} "
            "that the model needs",
            hint=f"the model reads the columns {_list(names)}",
        )
    if any(not isinstance(c, str) for c in frame.columns):
        frame = frame.rename(columns=str)
    return frame.loc[:, list(names)]


def to_matrix(data: Any, n_features: int | None = None, dtype: Any | None = None) -> numpy.ndarray:
    """A 2-D array of `data` (one row per example); with `n_features`, rows of that width.

    `dtype` casts the result; a value that cannot be cast is an InputError.
    """
    import numpy as np
    import pandas as pd

    if isinstance(data, np.ndarray) or (
        isinstance(data, Sequence)
        and not isinstance(data, str | bytes)
        and not (len(data) and all(isinstance(row, Mapping) for row in data))
    ):
        matrix = _as_2d(data)
    else:
        frame = to_frame(data)
        matrix = frame.to_numpy() if isinstance(frame, pd.DataFrame) else np.asarray(frame)
    if n_features is not None and matrix.shape[1] != n_features:
        raise InputError(
            f"the input has {matrix.shape[1]} values per row, the model expects {n_features}",
            hint="pass rows of exactly that width, or a table holding only the model's columns",
        )
    if dtype is not None and matrix.dtype != np.dtype(dtype):
        try:
            matrix = matrix.astype(dtype)
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"the input cannot be read as {np.dtype(dtype).name}: {exc}", hint=_ACCEPTED
            ) from exc
    return matrix


def _column(values: Any) -> Any:
    import numpy as np

    if isinstance(values, np.ndarray) and values.ndim > 1:
        if values.ndim == 2 and values.shape[1] == 1:
            return values[:, 0]
        raise InputError(
            f"a column holds an array of shape {values.shape}; columns are one value per row",
            hint=_ACCEPTED,
        )
    return values


def _as_2d(data: Any) -> numpy.ndarray:
    import numpy as np

    try:
        matrix = np.asarray(data)
    except ValueError as exc:
        # Ragged rows (lists of different lengths) make numpy refuse.
        raise InputError(f"the input rows differ in length: {exc}", hint=_ACCEPTED) from exc
    if matrix.ndim == 0:
        raise InputError("the input is a single value, not rows of values", hint=_ACCEPTED)
    if matrix.ndim == 1:
        # A flat list of values is one example, as a JSON client most often sends it.
        matrix = matrix.reshape(1, -1)
    if matrix.ndim != 2:
        raise InputError(
            f"the input is an array of shape {matrix.shape}; a table is 2-D", hint=_ACCEPTED
        )
    return matrix


def _list(names: Sequence[str], limit: int = 8) -> str:
    text = ", ".join(names[:limit])
    return text + (f" and {len(names) - limit} more" if len(names) > limit else "")


__all__ = ["to_frame", "to_matrix"]
