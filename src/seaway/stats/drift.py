"""Compare two data sets column by column and decide which columns drifted.

    report = compare(reference, current)          # mappings of name -> array, or Arrow tables
    report.drifted_columns                         # ["tenure", "region"]
    report["tenure"].statistics["ks_d"]

Every column gets all its statistics (numeric: PSI, KS, chi-square and JS distance on the
reference's quantile bins; categorical: PSI, chi-square, JS distance and Cramér's V on the
categories), then one decision, `drifted`, with the `reason` in words.

The decision (method "auto", the default)
-----------------------------------------
A column drifted when at least one of these holds, every test at `alpha` (0.001):

1. Shape: PSI > `psi` (0.1), and the chi-square test on the same bins is significant.
2. Effect size: for a numeric column the KS statistic D > `ks` (0.02) and the KS test is
   significant; for a categorical column Cramér's V > `cramers_v` (0.03) and the chi-square
   test is significant.
3. Missing values: the share of missing values moved by more than `missing` (0.02, two
   percentage points) and the two-proportion test is significant.

Why this rule. A p-value measures how sure we are that two distributions differ, not how much
they differ. A KS test at p < 0.05 flags mean shifts of 0.015 standard deviations at 100,000
rows and of 0.005 at a million, which real data always has (rounding, a week's seasonality),
and it flags 5% of perfectly clean columns by chance, so "p < 0.05" alone marks nearly every
column of a wide table. An effect size alone has the opposite failure: at 1,000 rows the
sampling noise of D is about 0.04 and of PSI about 0.02 (0.056 at the 99.9th percentile), so a
fixed floor on them flags noise. Requiring both
makes the bar `max(floor, critical value at this n)`: the critical value of D at alpha 0.001 is
1.95 * sqrt((n + m) / (n m)), 0.087 at 1,000 + 1,000 rows and 0.009 at 100,000 + 100,000; so
below about 20,000 rows significance decides and above it the size of the change does. The
floors are set at what must be caught: a mean shift of 0.1 standard deviations moves D by 0.040
for a normal column and by 0.029 for a uniform one (the flattest shape, so the smallest D for a
given shift), hence 0.02; a mix shift of 5 points gives a V of at least 0.05 (V is never below
the total variation distance), hence 0.03. PSI over 10 bins needs a shift of about 0.3 standard
deviations to pass 0.1, so the PSI clause adds changes of shape that D sees poorly (the spread
of a column, a new category taking a few percent). Alpha is small because a gate looks at many
columns at once, and each column runs two or three tests.

Calibration (seeded synthetic data, `tests/stats/test_calibration.py`): clean columns, where
reference and current come from the same distributions (17 numeric shapes: normal, uniform,
log-normal with sigma 1 and 3, exponential, Poisson, wide integers, Student t, zero-inflated,
rounded, bimodal, with 5% and 30% missing, binary, beta, Pareto; and 10 categorical columns of 2
to 150 categories, one with missing values), 60 columns per comparison. Flagged clean columns:
0 of 600 at 100,000 rows (10 seeds), 0 of 600 at 20,000, 2 of 1,200 at 5,000, 2 of 2,400 at
1,000 (40 seeds) and 3 of 2,400 at 300: about one false alarm per 20 comparisons of 60 columns
on small samples, none on large ones. At 100,000 rows every mean shift of 0.1 standard
deviations (normal, uniform, log-normal, exponential and bimodal columns, 5 seeds each) and
every categorical mix shift of 5 and 10 points (5 patterns, 5 seeds each) was flagged. Before
rare categories were pooled (`buckets`), a 150-category column on 300-1,000 rows caused most
false alarms.

Other methods (the gate's `method`) use one clause each, plus the missing-value clause: "psi"
(PSI > `psi`, significant), "ks" (D > `ks` for numeric, V > `cramers_v` for categorical,
significant), "js" (JS distance > `js`, significant). `Thresholds.for_limit` maps a gate's
`max_psi` onto the statistic its method names.

How the figures are computed
----------------------------
Numeric columns are counted in a fine grid over the reference's range (see `_numeric`): the
bins are groups of cells holding about 1/`bins` of the reference each (a value holding a large
share on its own, like the zeros of a zero-inflated column or a constant, gets its own bin), and
above 10,000 values per side the KS statistic is read at the 16,384 cell boundaries (exact
below that, with `scipy.stats.ks_2samp`). Categorical columns keep the reference's
`max_categories` most frequent categories; rarer ones share an "other" bin, and categories the
reference lacks share an "unseen" bin. Missing values (null, NaN) are counted apart and left out
of the distribution statistics.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal, TypeVar, get_args

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from seaway.errors import InputError, UsageError
from seaway.stats import _categorical, _numeric
from seaway.stats._columns import (
    ColumnData,
    Kind,
    categorical_array,
    column_names,
    infer_kind,
    numeric_pieces,
    raw_column,
)
from seaway.stats.measures import (
    chi_square,
    cramers_v,
    js_distance,
    ks_from_counts,
    ks_pvalue,
    psi,
)
from seaway.stats.report import ColumnDrift, DriftReport

Method = Literal["auto", "psi", "ks", "js"]
METHODS: tuple[str, ...] = get_args(Method)

# Up to this many values per side the exact KS test is cheap; above it the grid is used.
EXACT_KS_MAX = 10_000
# Cochran's rule for the chi-square approximation: expected counts of at least 5.
MIN_EXPECTED = 5.0


@dataclass(frozen=True)
class Thresholds:
    """The limits of the drift decision (see the module documentation for the rule)."""

    psi: float = 0.1
    ks: float = 0.02
    cramers_v: float = 0.03
    js: float = 0.1
    missing: float = 0.02
    alpha: float = 0.001

    def __post_init__(self) -> None:
        for name in ("psi", "ks", "cramers_v", "js", "missing"):
            value = getattr(self, name)
            if not value >= 0:
                raise UsageError(f"drift threshold {name} must be at least 0, not {value}")
        if not 0 < self.alpha < 1:
            raise UsageError(f"drift alpha must be between 0 and 1, not {self.alpha}")

    def for_limit(self, method: str, limit: float) -> Thresholds:
        """These thresholds with `limit` on the statistic `method` decides by.

        A drift gate's `max_psi` goes through here: "psi" and "auto" set `psi`; "ks" sets `ks`
        and `cramers_v` (its counterpart for categorical columns); "js" sets `js`.
        """
        check_method(method)
        if method == "ks":
            return replace(self, ks=limit, cramers_v=limit)
        if method == "js":
            return replace(self, js=limit)
        return replace(self, psi=limit)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def check_method(method: str) -> None:
    if method not in METHODS:
        raise UsageError(
            f"unknown drift method {method!r}", hint=f"use one of: {', '.join(METHODS)}"
        )


# --------------------------------------------------------------------------- decision


def _p(value: float) -> str:
    return f"p {value:.2g}"


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def decide(
    kind: Kind,
    s: dict[str, float],
    missing: tuple[float, float],
    valid: tuple[int, int],
    method: str,
    t: Thresholds,
) -> tuple[bool, str]:
    """Apply the rule to one column's statistics; returns (drifted, reason).

    `missing` holds the shares of missing values in the reference and the current data (NaN
    for a side without rows), `valid` the numbers of non-missing values.
    """
    fired: list[str] = []
    quiet: list[str] = []
    significant_bins = s["chi2_p"] < t.alpha

    def clause(label: str, value: float, limit: float, significant: bool, p: float) -> None:
        if math.isnan(value):
            return
        if value > limit and significant:
            fired.append(f"{label} {value:.3g} > {limit:g} ({_p(p)})")
        elif value > limit:
            quiet.append(f"{label} {value:.3g} above {limit:g} but not significant ({_p(p)})")
        else:
            quiet.append(f"{label} {value:.3g}")

    if method in ("auto", "psi"):
        clause("PSI", s["psi"], t.psi, significant_bins, s["chi2_p"])
    if method in ("auto", "ks"):
        if kind == "numeric":
            clause("KS D", s["ks_d"], t.ks, s["ks_p"] < t.alpha, s["ks_p"])
        else:
            clause("Cramér's V", s["cramers_v"], t.cramers_v, significant_bins, s["chi2_p"])
    if method == "js":
        clause("JS distance", s["js"], t.js, significant_bins, s["chi2_p"])

    before, after = missing
    if abs(after - before) > t.missing and s["missing_p"] < t.alpha:
        fired.append(f"missing {_pct(before)} -> {_pct(after)} ({_p(s['missing_p'])})")
    elif before or after:
        quiet.append(f"missing {_pct(before)} -> {_pct(after)}")

    if fired:
        return True, "; ".join(fired)
    if not valid[0] and not valid[1]:
        return False, "no values on either side"
    if not valid[0] or not valid[1]:
        side = "reference" if not valid[0] else "current"
        return False, f"no values in the {side} data to compare"
    return False, "within limits: " + ", ".join(quiet)


# --------------------------------------------------------------------------- per column


def _share(part: int, whole: int) -> float:
    return part / whole if whole else math.nan


def _missing_test(rows_ref: int, missing_ref: int, rows_cur: int, missing_cur: int) -> float:
    if not rows_ref or not rows_cur or (missing_ref == 0 and missing_cur == 0):
        return 1.0
    _, _, p = chi_square(
        [rows_ref - missing_ref, missing_ref], [rows_cur - missing_cur, missing_cur]
    )
    return p


def _bin_statistics(ref: NDArray[np.int64], cur: NDArray[np.int64]) -> dict[str, float]:
    chi2, dof, chi2_p = chi_square(ref, cur)
    return {
        "psi": psi(ref, cur),
        "chi2": chi2,
        "chi2_dof": float(dof),
        "chi2_p": chi2_p,
        "js": js_distance(ref, cur),
        "bins": float(ref.size),
    }


def finish(
    name: str,
    kind: Kind,
    s: dict[str, float],
    rows: tuple[int, int],
    missing: tuple[int, int],
    method: str,
    t: Thresholds,
) -> ColumnDrift:
    """Add the missing-value test to `s`, decide, and build the column's entry."""
    s["missing_p"] = _missing_test(rows[0], missing[0], rows[1], missing[1])
    shares = (_share(missing[0], rows[0]), _share(missing[1], rows[1]))
    valid = (rows[0] - missing[0], rows[1] - missing[1])
    drifted, reason = decide(kind, s, shares, valid, method, t)
    return ColumnDrift(
        name=name,
        kind=kind,
        n_ref=rows[0],
        n_cur=rows[1],
        missing_ref=missing[0],
        missing_cur=missing[1],
        statistics=s,
        drifted=drifted,
        reason=reason,
    )


def numeric_statistics(
    ref_bins: NDArray[np.int64],
    cur_bins: NDArray[np.int64],
    ks: tuple[float, float],
    cur: _numeric.Tally,
    ref_mean: float,
    ref_std: float,
) -> dict[str, float]:
    s = _bin_statistics(ref_bins, cur_bins)
    s["ks_d"], s["ks_p"] = ks
    s["mean_shift"] = (cur.mean - ref_mean) / ref_std if ref_std > 0 else math.nan
    return s


def _numeric_column(
    name: str, ref_raw: Any, cur_raw: Any, bins: int, method: str, t: Thresholds
) -> ColumnDrift:
    ref_pieces = numeric_pieces(ref_raw, name)
    cur_pieces = numeric_pieces(cur_raw, name)
    sample = _numeric.sample(ref_pieces)
    grid = _numeric.build_grid(sample)
    center = float(sample[sample.size // 2]) if sample.size else 0.0
    ref = _numeric.tally(ref_pieces, grid, center)
    cur = _numeric.tally(cur_pieces, grid, center)
    boundaries = _numeric.choose_boundaries(ref.counts, bins)
    ref_bins = _numeric.group(ref.counts, boundaries)
    cur_bins = _numeric.group(cur.counts, boundaries)
    n, m = ref.valid, cur.valid
    if n and m and max(n, m) <= EXACT_KS_MAX:
        # Imported here: scipy.stats takes about half a second to import, and large data
        # never needs it.
        from scipy.stats import ks_2samp

        with warnings.catch_warnings():
            # With ties the exact method can fail and falls back to the asymptotic one,
            # which is what we want; the warning saying so is noise here.
            warnings.simplefilter("ignore", RuntimeWarning)
            result = ks_2samp(_numeric.exact_values(ref_pieces), _numeric.exact_values(cur_pieces))
        ks = (float(result.statistic), float(result.pvalue))
    else:
        d = ks_from_counts(ref.counts, cur.counts)
        ks = (d, ks_pvalue(d, n, m))
    s = numeric_statistics(ref_bins, cur_bins, ks, cur, ref.mean, ref.std)
    return finish(name, "numeric", s, (ref.rows, cur.rows), (ref.missing, cur.missing), method, t)


def buckets(
    ref: NDArray[np.int64], cur: NDArray[np.int64], new: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The bins a categorical column is compared on.

    `ref` and `cur` count the reference's categories (and its "other"), `new` the current
    data's categories that the reference lacks, one count each. Bins empty on both sides go;
    categories whose expected count on the smaller side is under MIN_EXPECTED (Cochran's rule
    for the chi-square approximation) are pooled into one bin, new ones included; the
    remaining new categories share one "unseen" bin.

    Without pooling, a column with many rare categories on a small sample gets a chi-square
    p-value far too small and a PSI of 1-2 from noise alone: a rare category missing from
    a small reference sample looks "new" in the current one. In calibration a 150-category
    column at 300-1,000 rows caused most false alarms before this.
    """
    keep = (ref + cur) > 0
    ref, cur = ref[keep], cur[keep]
    n, m = int(ref.sum()), int(cur.sum() + new.sum())
    if not n or not m:
        if new.size:
            return np.append(ref, 0), np.append(cur, new.sum())
        return ref, cur
    small = min(n, m) / (n + m)
    rare = (ref + cur) * small < MIN_EXPECTED
    rare_new = new * small < MIN_EXPECTED
    ref_out, cur_out = list(ref[~rare]), list(cur[~rare])
    if np.any(~rare_new):
        ref_out.append(0)
        cur_out.append(int(new[~rare_new].sum()))
    if np.any(rare) or np.any(rare_new):
        ref_out.append(int(ref[rare].sum()))
        cur_out.append(int(cur[rare].sum() + new[rare_new].sum()))
    return np.asarray(ref_out, dtype=np.int64), np.asarray(cur_out, dtype=np.int64)


def categorical_statistics(
    ref: NDArray[np.int64], cur: NDArray[np.int64], new: NDArray[np.int64]
) -> dict[str, float]:
    ref_b, cur_b = buckets(ref, cur, new)
    s = _bin_statistics(ref_b, cur_b)
    s["cramers_v"] = cramers_v(ref_b, cur_b)
    valid_cur = int(cur.sum() + new.sum())
    s["unseen"] = _share(int(new.sum()), valid_cur)
    return s


def _categorical_column(
    name: str, ref_raw: Any, cur_raw: Any, max_categories: int, method: str, t: Thresholds
) -> ColumnDrift:
    ref = _categorical.count(categorical_array(ref_raw, name))
    cur = _categorical.count(categorical_array(cur_raw, name))
    kept = min(max_categories, len(ref.values))
    where = _categorical.positions(cur.values, ref.values, name)
    known = where >= 0
    # Categories past the kept ones go to the "other" bucket (index `kept`).
    into = np.minimum(where[known], kept)
    cur_known = np.bincount(into, weights=cur.counts[known], minlength=kept + 1)
    ref_known = np.append(ref.counts[:kept], ref.counts[kept:].sum())
    s = categorical_statistics(ref_known, np.rint(cur_known).astype(np.int64), cur.counts[~known])
    return finish(
        name, "categorical", s, (ref.rows, cur.rows), (ref.missing, cur.missing), method, t
    )


# --------------------------------------------------------------------------- columns


def kind_of(name: str, ref_raw: Any, cur_raw: Any | None, forced: Collection[str]) -> Kind:
    """The column's kind: categorical when named in `forced`, else inferred from both sides."""
    if name in forced:
        return "categorical"
    ref_kind = infer_kind(ref_raw, name) if not _all_null(ref_raw) else None
    cur_kind = None
    if cur_raw is not None and not _all_null(cur_raw):
        cur_kind = infer_kind(cur_raw, name)
    if ref_kind and cur_kind and ref_kind != cur_kind:
        raise InputError(
            f"column {name!r} is {ref_kind} in the reference and {cur_kind} in the current data",
            hint="give it the same type on both sides, or name it in `categorical`",
        )
    return ref_kind or cur_kind or "categorical"


def _all_null(raw: Any) -> bool:
    return isinstance(raw, pa.Array | pa.ChunkedArray) and pa.types.is_null(raw.type)


def select_columns(
    ref_names: Sequence[str], cur_names: Sequence[str], columns: Iterable[str] | None
) -> tuple[list[str], dict[str, str]]:
    """The columns to compare, and the ones skipped (found on one side only) with why."""
    cur_set = set(cur_names)
    ref_set = set(ref_names)
    if columns is not None:
        wanted = list(dict.fromkeys(columns))
        absent = [c for c in wanted if c not in ref_set or c not in cur_set]
        if absent:
            where = []
            for c in absent:
                sides = [
                    s
                    for s, names in (("reference", ref_set), ("current", cur_set))
                    if c not in names
                ]
                where.append(f"{c} (not in the {' or '.join(sides)} data)")
            raise InputError(
                "drift columns not found: " + ", ".join(where),
                hint="check the column names, or leave `columns` out to compare all shared ones",
            )
        return wanted, {}
    shared = [c for c in ref_names if c in cur_set]
    skipped = {c: "only in the reference data" for c in ref_names if c not in cur_set}
    skipped.update({c: "only in the current data" for c in cur_names if c not in ref_set})
    return shared, skipped


T = TypeVar("T")


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def map_columns(fn: Callable[[str], T], names: list[str], workers: int | None) -> list[T]:
    """`fn` over `names`, in order, on up to `workers` threads.

    Threads pay off because nearly all the work (Parquet decoding, NumPy passes, Arrow's
    value counts) runs in native code that releases the GIL: on 2 cores, 1.3-1.8x faster at
    a million rows. Each thread holds one column of each side at a time.
    """
    count = default_workers() if workers is None else workers
    if count < 1:
        raise UsageError(f"workers must be at least 1, not {count}")
    if count == 1 or len(names) < 2:
        return [fn(name) for name in names]
    with ThreadPoolExecutor(max_workers=min(count, len(names))) as pool:
        return list(pool.map(fn, names))


def compare(
    reference: ColumnData,
    current: ColumnData,
    *,
    columns: Iterable[str] | None = None,
    categorical: Iterable[str] | None = None,
    method: Method = "auto",
    thresholds: Thresholds | None = None,
    bins: int = 10,
    max_categories: int = 100,
    workers: int | None = None,
) -> DriftReport:
    """Compare `current` with `reference`, column by column.

    `reference` and `current` map column names to one-dimensional arrays (NumPy, Arrow, or
    anything `numpy.asarray` takes), or are Arrow Tables or RecordBatches. `columns` picks the
    columns (default: every column both sides have). Numbers are numeric and text, booleans and
    Arrow dictionaries categorical; name integer codes in `categorical` to treat them as
    categories. `method` and `thresholds` set the decision (see the module documentation);
    `bins` is the number of quantile bins of numeric columns and `max_categories` the number of
    categories kept before the rest are grouped as "other". Columns are compared on
    `workers` threads (default: the number of cores, at most 4).
    """
    check_method(method)
    if bins < 2:
        raise UsageError(f"drift bins must be at least 2, not {bins}")
    if max_categories < 1:
        raise UsageError(f"max_categories must be at least 1, not {max_categories}")
    t = thresholds or Thresholds()
    names, skipped = select_columns(
        column_names(reference, "reference"), column_names(current, "current"), columns
    )
    forced = set(categorical or ())

    def one(name: str) -> ColumnDrift:
        ref_raw, cur_raw = raw_column(reference, name), raw_column(current, name)
        if kind_of(name, ref_raw, cur_raw, forced) == "numeric":
            return _numeric_column(name, ref_raw, cur_raw, bins, method, t)
        return _categorical_column(name, ref_raw, cur_raw, max_categories, method, t)

    results = dict(zip(names, map_columns(one, names, workers), strict=True))
    return DriftReport(
        columns=results, method=method, thresholds=t.to_dict(), skipped=skipped, source="data"
    )
