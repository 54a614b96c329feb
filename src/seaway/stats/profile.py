"""A compact summary of reference data that later comparisons use instead of the data.

    profile = Profile.from_columns(training_table)
    text = json.dumps(profile.to_dict())           # stored next to a model version
    report = compare_profile(Profile.from_dict(json.loads(text)), live_window)

Per numeric column the profile keeps the boundaries of the quantile bins that `compare` uses
and the reference's count in each, plus finer boundaries (about 1% of the reference apart, 100
by default) for the KS statistic, and the count, missing count, mean, standard deviation,
minimum and maximum. Per categorical column it keeps the `max_categories` most frequent
categories with their counts and the count of all others.

`compare_profile` gives the same statistics as `compare`, with one difference: without the raw
reference values the KS statistic is the largest CDF distance at the profile's boundaries, a
lower bound of the true statistic that is within about 1% of it (the share of the data between
two boundaries); the p-value is computed from that figure. PSI, chi-square, JS and Cramér's V
use the same bins and reference counts as `compare` and agree with it. For categorical columns,
current values outside the profiled categories share one bin with the reference's "other"
(`compare` keeps categories the reference never had apart); with no more than
`max_categories` categories in the reference the two are the same.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from seaway.errors import InputError, UsageError
from seaway.stats import _categorical, _numeric
from seaway.stats._columns import (
    ColumnData,
    categorical_array,
    column_names,
    numeric_pieces,
    raw_column,
)
from seaway.stats.drift import (
    Method,
    Thresholds,
    categorical_statistics,
    check_method,
    finish,
    kind_of,
    map_columns,
    numeric_statistics,
    select_columns,
)
from seaway.stats.measures import ks_from_counts, ks_pvalue
from seaway.stats.report import ColumnDrift, DriftReport

FORMAT = "seaway.profile/1"


def _num(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _from_num(value: Any) -> float:
    return math.nan if value is None else float(value)


@dataclass(frozen=True)
class NumericProfile:
    """Bin boundaries and the reference's counts in each (len(edges) + 1 counts).

    `bins` lists the positions in `edges` of the quantile-bin boundaries; the other edges only
    refine the CDF for the KS statistic.
    """

    rows: int
    missing: int
    mean: float
    std: float
    minimum: float
    maximum: float
    edges: NDArray[np.float64]
    counts: NDArray[np.int64]
    bins: NDArray[np.intp]

    kind = "numeric"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "numeric",
            "rows": self.rows,
            "missing": self.missing,
            "mean": _num(self.mean),
            "std": _num(self.std),
            "min": _num(self.minimum),
            "max": _num(self.maximum),
            # repr() of a float reads back as the same float, so the edges survive JSON.
            "edges": [float(e) for e in self.edges],
            "counts": [int(c) for c in self.counts],
            "bins": [int(b) for b in self.bins],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NumericProfile:
        edges = np.asarray(data["edges"], dtype=np.float64)
        counts = np.asarray(data["counts"], dtype=np.int64)
        bins = np.asarray(data["bins"], dtype=np.intp)
        if counts.size != edges.size + 1 or (
            bins.size and (bins.min() < 0 or bins.max() >= edges.size)
        ):
            raise ValueError("edges, counts and bins do not fit together")
        return cls(
            rows=int(data["rows"]),
            missing=int(data["missing"]),
            mean=_from_num(data["mean"]),
            std=_from_num(data["std"]),
            minimum=_from_num(data["min"]),
            maximum=_from_num(data["max"]),
            edges=edges,
            counts=counts,
            bins=bins,
        )


@dataclass(frozen=True)
class CategoricalProfile:
    """The most frequent categories, most frequent first, and the count of all the others."""

    rows: int
    missing: int
    values: pa.Array
    counts: NDArray[np.int64]
    other: int

    kind = "categorical"

    def to_dict(self) -> dict[str, Any]:
        t = self.values.type
        binary = pa.types.is_binary(t) or pa.types.is_large_binary(t)
        values = [v.hex() for v in self.values.to_pylist()] if binary else self.values.to_pylist()
        return {
            "kind": "categorical",
            "rows": self.rows,
            "missing": self.missing,
            "type": str(t),
            "values": values,
            "counts": [int(c) for c in self.counts],
            "other": self.other,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CategoricalProfile:
        t = pa.type_for_alias(data["type"])
        values = list(data["values"])
        if pa.types.is_binary(t) or pa.types.is_large_binary(t):
            values = [bytes.fromhex(v) for v in values]
        counts = np.asarray(data["counts"], dtype=np.int64)
        if counts.size != len(values):
            raise ValueError("values and counts differ in length")
        return cls(
            rows=int(data["rows"]),
            missing=int(data["missing"]),
            values=pa.array(values, type=t),
            counts=counts,
            other=int(data["other"]),
        )


ColumnProfile = NumericProfile | CategoricalProfile


@dataclass(frozen=True)
class Profile:
    """Reference profiles of columns, in order."""

    columns: Mapping[str, ColumnProfile]

    @classmethod
    def from_columns(
        cls,
        data: ColumnData,
        *,
        columns: Iterable[str] | None = None,
        categorical: Iterable[str] | None = None,
        bins: int = 10,
        max_categories: int = 100,
        ks_points: int = 100,
        workers: int | None = None,
    ) -> Profile:
        """Profile `data` (a mapping of name to array, or an Arrow Table or RecordBatch).

        The options mean what they mean for `compare`; `ks_points` sets how finely the
        reference CDF is kept for the KS statistic.
        """
        if bins < 2 or ks_points < 2:
            raise UsageError("bins and ks_points must be at least 2")
        if max_categories < 1:
            raise UsageError(f"max_categories must be at least 1, not {max_categories}")
        names = column_names(data, "reference")
        if columns is not None:
            wanted = list(dict.fromkeys(columns))
            absent = [c for c in wanted if c not in names]
            if absent:
                raise InputError(
                    "columns not found in the reference data: " + ", ".join(absent),
                    hint="check the column names, or leave `columns` out to profile all",
                )
            names = wanted
        forced = set(categorical or ())

        def one(name: str) -> ColumnProfile:
            raw = raw_column(data, name)
            if kind_of(name, raw, None, forced) == "numeric":
                return _profile_numeric(numeric_pieces(raw, name), bins, ks_points)
            return _profile_categorical(categorical_array(raw, name), max_categories)

        return cls(dict(zip(names, map_columns(one, names, workers), strict=True)))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form; the same profile always gives the same dictionary."""
        # A list, not a mapping: the column order survives tools that sort JSON keys.
        return {
            "format": FORMAT,
            "columns": [{"name": name, **col.to_dict()} for name, col in self.columns.items()],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Profile:
        if data.get("format") != FORMAT:
            raise InputError(
                f"not a drift profile of format {FORMAT} (found {data.get('format')!r})",
                hint="profile the reference data again with this version of seaway",
            )
        out: dict[str, ColumnProfile] = {}
        for position, col in enumerate(data.get("columns") or []):
            name = col.get("name", f"#{position}") if isinstance(col, Mapping) else f"#{position}"
            try:
                if col["kind"] == "numeric":
                    out[name] = NumericProfile.from_dict(col)
                elif col["kind"] == "categorical":
                    out[name] = CategoricalProfile.from_dict(col)
                else:
                    raise ValueError(f"unknown kind {col['kind']!r}")
            except (KeyError, TypeError, ValueError, pa.ArrowException) as exc:
                raise InputError(f"drift profile of column {name!r} is malformed: {exc}") from exc
        return cls(out)


def _profile_numeric(pieces: list[np.ndarray], bins: int, ks_points: int) -> NumericProfile:
    sample = _numeric.sample(pieces)
    grid = _numeric.build_grid(sample)
    center = float(sample[sample.size // 2]) if sample.size else 0.0
    ref = _numeric.tally(pieces, grid, center, extremes=True)
    coarse = _numeric.choose_boundaries(ref.counts, bins)
    fine = _numeric.choose_boundaries(ref.counts, ks_points)
    kept = np.union1d(coarse, fine).astype(np.intp)
    return NumericProfile(
        rows=ref.rows,
        missing=ref.missing,
        mean=ref.mean,
        std=ref.std,
        minimum=ref.minimum if ref.valid else math.nan,
        maximum=ref.maximum if ref.valid else math.nan,
        edges=grid.boundary_values(kept),
        counts=_numeric.group(ref.counts, kept),
        bins=np.searchsorted(kept, coarse).astype(np.intp),
    )


def _profile_categorical(
    array: pa.Array | pa.ChunkedArray, max_categories: int
) -> CategoricalProfile:
    ref = _categorical.count(array)
    kept = min(max_categories, len(ref.values))
    return CategoricalProfile(
        rows=ref.rows,
        missing=ref.missing,
        values=ref.values.slice(0, kept),
        counts=ref.counts[:kept].copy(),
        other=int(ref.counts[kept:].sum()),
    )


def _compare_numeric(
    name: str, prof: NumericProfile, raw: Any, method: str, t: Thresholds
) -> ColumnDrift:
    grid = _numeric.Grid.explicit(prof.edges)
    center = prof.mean if math.isfinite(prof.mean) else 0.0
    cur = _numeric.tally(numeric_pieces(raw, name), grid, center)
    # Edge i starts cell i + 1 of the explicit grid.
    boundaries = (prof.bins + 1).astype(np.intp)
    ref_bins = _numeric.group(prof.counts, boundaries)
    cur_bins = _numeric.group(cur.counts, boundaries)
    n, m = prof.rows - prof.missing, cur.valid
    d = ks_from_counts(prof.counts, cur.counts)
    s = numeric_statistics(ref_bins, cur_bins, (d, ks_pvalue(d, n, m)), cur, prof.mean, prof.std)
    return finish(name, "numeric", s, (prof.rows, cur.rows), (prof.missing, cur.missing), method, t)


def _compare_categorical(
    name: str, prof: CategoricalProfile, raw: Any, method: str, t: Thresholds
) -> ColumnDrift:
    cur = _categorical.count(categorical_array(raw, name))
    kept = len(prof.values)
    where = _categorical.positions(cur.values, prof.values, name)
    # Not among the profiled categories: the "other" bucket (index `kept`), which the
    # reference's other categories share, so there is nothing to call new.
    where = np.where(where < 0, kept, where)
    cur_buckets = np.bincount(where, weights=cur.counts, minlength=kept + 1)
    ref_buckets = np.append(prof.counts, prof.other)
    s = categorical_statistics(
        ref_buckets, np.rint(cur_buckets).astype(np.int64), np.zeros(0, dtype=np.int64)
    )
    valid_cur = cur.rows - cur.missing
    s["unseen"] = cur_buckets[kept] / valid_cur if valid_cur else math.nan
    return finish(
        name, "categorical", s, (prof.rows, cur.rows), (prof.missing, cur.missing), method, t
    )


def compare_profile(
    profile: Profile,
    current: ColumnData,
    *,
    columns: Iterable[str] | None = None,
    method: Method = "auto",
    thresholds: Thresholds | None = None,
    workers: int | None = None,
) -> DriftReport:
    """Compare `current` with a reference `profile`; the same report as `compare`.

    A column keeps the kind it had when profiled.
    """
    check_method(method)
    t = thresholds or Thresholds()
    names, skipped = select_columns(
        list(profile.columns), column_names(current, "current"), columns
    )

    def one(name: str) -> ColumnDrift:
        prof = profile.columns[name]
        raw = raw_column(current, name)
        if isinstance(prof, NumericProfile):
            return _compare_numeric(name, prof, raw, method, t)
        return _compare_categorical(name, prof, raw, method, t)

    results = dict(zip(names, map_columns(one, names, workers), strict=True))
    return DriftReport(
        columns=results, method=method, thresholds=t.to_dict(), skipped=skipped, source="profile"
    )
