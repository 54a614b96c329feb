"""Column data as the statistics need it: numeric columns as NumPy pieces, categorical ones as
Arrow arrays.

Inputs are a mapping of column name to array (NumPy, Arrow, or anything `numpy.asarray`
accepts, such as a list or a pandas Series) or an Arrow Table / RecordBatch. Conversion is per
column and lazy, so only one converted column is alive at a time, and Arrow chunks without
nulls are used in place (no copy).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from seaway.errors import InputError

Kind = Literal["numeric", "categorical"]
ColumnData: TypeAlias = Mapping[str, Any] | pa.Table | pa.RecordBatch


class ParquetColumns(Mapping[str, pa.ChunkedArray]):
    """The columns of a Parquet file, each read when it is looked up.

    `compare` and `Profile.from_columns` take one column at a time, so with this mapping only
    the column being compared is in memory, not the whole table: at a million rows by 60
    columns that is tens of megabytes instead of about a gigabyte per table.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        try:
            schema = pq.read_schema(path)
            # Text columns are read as dictionaries, as Parquet stores them: building a plain
            # string array costs about 9x more (3 ms against 0.3 ms per 100,000 values), and
            # counting categories works on the dictionary directly.
            text = [
                f.name
                for f in schema
                if pa.types.is_string(f.type)
                or pa.types.is_large_string(f.type)
                or pa.types.is_binary(f.type)
            ]
            # No pre-buffering and (below) no Arrow threads: `compare` reads columns from its
            # own threads, and Arrow's asynchronous read-ahead, driven from several threads,
            # hung on glibc 2.36 (a condition-variable wake-up lost in Arrow's I/O pool).
            self._file = pq.ParquetFile(path, pre_buffer=False, read_dictionary=text)
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"cannot read {os.fspath(path)} as Parquet: {exc}") from exc
        self._names = list(schema.names)
        # One reader object is not meant for concurrent use; reads of one file take turns
        # (decoding a column is a few milliseconds, the comparison itself runs in parallel).
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> pa.ChunkedArray:
        if name not in self._names:
            raise KeyError(name)
        with self._lock:
            return self._file.read(columns=[name], use_threads=False).column(0)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def column_names(data: ColumnData, side: str) -> list[str]:
    if isinstance(data, pa.Table | pa.RecordBatch):
        return list(data.schema.names)
    if isinstance(data, Mapping):
        return [str(name) for name in data]
    raise InputError(
        f"the {side} data is a {type(data).__name__}, not columns",
        hint="pass a mapping of column name to array, or a pyarrow Table",
    )


def raw_column(data: ColumnData, name: str) -> Any:
    if isinstance(data, pa.Table | pa.RecordBatch):
        return data.column(name)
    return data[name]


def _as_known(value: Any, name: str) -> np.ndarray | pa.Array | pa.ChunkedArray:
    if isinstance(value, np.ndarray | pa.Array | pa.ChunkedArray):
        array: np.ndarray | pa.Array | pa.ChunkedArray = value
    else:
        try:
            array = np.asarray(value)
        except (TypeError, ValueError) as exc:
            raise InputError(f"column {name!r} cannot be read as an array: {exc}") from exc
    if isinstance(array, np.ndarray) and array.ndim != 1:
        raise InputError(
            f"column {name!r} has {array.ndim} dimensions",
            hint="pass one one-dimensional array per column",
        )
    return array


def infer_kind(value: Any, name: str) -> Kind:
    """numeric for integers, floats and decimals; categorical for text, booleans, bytes and
    Arrow dictionaries; an InputError for anything else (dates, nested values)."""
    array = _as_known(value, name)
    if isinstance(array, np.ndarray):
        if array.dtype.kind in "iuf":
            return "numeric"
        if array.dtype.kind in "bUSO":
            return "categorical"
        kind_name = str(array.dtype)
    else:
        t = array.type
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
            return "numeric"
        if (
            pa.types.is_boolean(t)
            or pa.types.is_string(t)
            or pa.types.is_large_string(t)
            or pa.types.is_binary(t)
            or pa.types.is_large_binary(t)
            or pa.types.is_dictionary(t)
            or pa.types.is_null(t)
        ):
            return "categorical"
        kind_name = str(t)
    raise InputError(
        f"column {name!r} has type {kind_name}, which drift statistics do not handle",
        hint="convert it to numbers or text, or leave it out with `columns`",
    )


def _chunks(array: pa.Array | pa.ChunkedArray) -> Iterable[pa.Array]:
    return array.chunks if isinstance(array, pa.ChunkedArray) else [array]


def numeric_pieces(value: Any, name: str) -> list[np.ndarray]:
    """The column as one-dimensional NumPy arrays (one per Arrow chunk); nulls become NaN."""
    array = _as_known(value, name)
    if isinstance(array, np.ndarray):
        if array.dtype.kind not in "iuf":
            raise InputError(f"column {name!r} is not numeric ({array.dtype})")
        return [array] if array.size else []
    pieces: list[np.ndarray] = []
    for chunk in _chunks(array):
        if len(chunk) == 0:
            continue
        if pa.types.is_null(chunk.type):
            pieces.append(np.full(len(chunk), np.nan))
            continue
        if pa.types.is_decimal(chunk.type):
            chunk = pc.cast(chunk, pa.float64())
        elif not (pa.types.is_integer(chunk.type) or pa.types.is_floating(chunk.type)):
            raise InputError(f"column {name!r} is not numeric ({chunk.type})")
        if chunk.null_count and pa.types.is_integer(chunk.type):
            # Integers have no NaN: widen to float so nulls can be counted as missing.
            chunk = pc.cast(chunk, pa.float64())
        # Without nulls this is a view of the Arrow buffer; with nulls, a float copy with NaN.
        pieces.append(np.asarray(chunk.to_numpy(zero_copy_only=False)))
    return pieces


def categorical_array(value: Any, name: str) -> pa.Array | pa.ChunkedArray:
    """The column as an Arrow array; None and NaN become nulls."""
    array = _as_known(value, name)
    if isinstance(array, pa.Array | pa.ChunkedArray):
        return array
    try:
        return pa.array(array, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise InputError(
            f"column {name!r} cannot be read as categories: {exc}",
            hint="categorical columns need values of one type (text, integers or booleans)",
        ) from exc


def column_length(value: Any) -> int:
    return len(value)
