"""Counting a categorical column: Arrow's hash-based `value_counts`, then the current counts
lined up against the reference's categories with `index_in` (no per-row Python)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from seaway.errors import InputError


@dataclass
class Categories:
    """Distinct non-null values of a column, most frequent first, and their counts."""

    values: pa.Array
    counts: NDArray[np.int64]
    rows: int
    missing: int


def count(array: pa.Array | pa.ChunkedArray) -> Categories:
    rows = len(array)
    missing = array.null_count
    if rows == missing:
        return Categories(pa.array([], type=_value_type(array.type)), _empty(), rows, missing)
    vc = pc.value_counts(array)
    values = vc.field("values")
    counts = np.asarray(vc.field("counts").to_numpy(zero_copy_only=False), dtype=np.int64)
    if values.null_count:
        keep = values.is_valid()
        values = values.filter(keep)
        counts = counts[np.asarray(keep.to_numpy(zero_copy_only=False), dtype=bool)]
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    # Most frequent first; the stable sort keeps first-seen order among equal counts, so the
    # same data always gives the same order.
    order = np.argsort(-counts, kind="stable")
    return Categories(values.take(pa.array(order)), counts[order], rows, missing)


def _value_type(t: pa.DataType) -> pa.DataType:
    return t.value_type if pa.types.is_dictionary(t) else t


def _empty() -> NDArray[np.int64]:
    return np.zeros(0, dtype=np.int64)


def positions(values: pa.Array, known: pa.Array, name: str) -> NDArray[np.int64]:
    """Position of each of `values` in `known`, -1 where absent."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    if len(known) == 0:
        return np.full(len(values), -1, dtype=np.int64)
    if not values.type.equals(known.type):
        try:
            values = pc.cast(values, known.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise InputError(
                f"column {name!r} holds {values.type} values in one data set and "
                f"{known.type} in the other",
                hint="give the column the same type on both sides",
            ) from exc
    found = pc.index_in(values, value_set=known).fill_null(-1)
    return np.asarray(found.to_numpy(zero_copy_only=False), dtype=np.int64)
