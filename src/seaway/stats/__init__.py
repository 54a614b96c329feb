"""Drift statistics shared by the drift gate and live monitoring.

`compare` sets current data against reference data column by column and decides which columns
drifted (`seaway.stats.drift` documents the rule); `Profile` keeps a compact summary of the
reference so that later comparisons (`compare_profile`) need no raw data; `seaway.stats.measures`
holds the formulas (PSI, chi-square, JS distance, Cramér's V, KS p-values) on counts.
`ParquetColumns(path)` hands a Parquet file over column by column, so that only the column
being compared is in memory.

The package depends on NumPy, SciPy and PyArrow only (and `seaway.errors`), not on pandas or on
the rest of seaway.
"""

from seaway.stats._columns import ParquetColumns
from seaway.stats.drift import METHODS, Method, Thresholds, compare
from seaway.stats.profile import CategoricalProfile, NumericProfile, Profile, compare_profile
from seaway.stats.report import ColumnDrift, DriftReport

__all__ = [
    "METHODS",
    "CategoricalProfile",
    "ColumnDrift",
    "DriftReport",
    "Method",
    "NumericProfile",
    "ParquetColumns",
    "Profile",
    "Thresholds",
    "compare",
    "compare_profile",
]
