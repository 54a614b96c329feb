"""The result of a drift comparison: one entry per column, and the columns that drifted."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["numeric", "categorical"]


def _plain(value: float) -> float | int | None:
    # JSON has no NaN or infinity; a statistic that could not be computed is null.
    if isinstance(value, int):
        return value
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class ColumnDrift:
    """How one column compares.

    `n_ref` and `n_cur` count rows, missing values included; `missing_ref` and `missing_cur`
    count the missing ones (null or NaN), which the distribution statistics leave out.

    `statistics` holds, where they apply (NaN when a side has no values):

    - `psi`: population stability index over the bins (numeric: quantile bins of the
      reference; categorical: categories);
    - `chi2`, `chi2_dof`, `chi2_p`: chi-square test of homogeneity on the same bins;
    - `js`: Jensen-Shannon distance (base 2, 0 to 1) on the same bins;
    - `ks_d`, `ks_p` (numeric): two-sample Kolmogorov-Smirnov statistic and p-value;
    - `mean_shift` (numeric): change of the mean, in reference standard deviations;
    - `cramers_v` (categorical): Cramér's V with both samples weighted equally;
    - `unseen` (categorical): share of current values in categories the reference lacks;
    - `missing_p`: test of the change in the share of missing values;
    - `bins`: number of bins or categories compared.
    """

    name: str
    kind: Kind
    n_ref: int
    n_cur: int
    missing_ref: int
    missing_cur: int
    statistics: Mapping[str, float]
    drifted: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "n_ref": self.n_ref,
            "n_cur": self.n_cur,
            "missing_ref": self.missing_ref,
            "missing_cur": self.missing_cur,
            "statistics": {k: _plain(v) for k, v in self.statistics.items()},
            "drifted": self.drifted,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class DriftReport:
    """Per-column results of comparing current data with a reference.

    `source` says what the reference was: the raw data (`data`) or a stored profile
    (`profile`, where the KS statistic is approximated). `skipped` names columns found on
    one side only, with the reason.
    """

    columns: Mapping[str, ColumnDrift]
    method: str
    thresholds: Mapping[str, float]
    skipped: Mapping[str, str] = field(default_factory=dict)
    source: Literal["data", "profile"] = "data"

    @property
    def drifted_columns(self) -> list[str]:
        return [name for name, col in self.columns.items() if col.drifted]

    @property
    def drifted(self) -> bool:
        return any(col.drifted for col in self.columns.values())

    def __getitem__(self, name: str) -> ColumnDrift:
        return self.columns[name]

    def __iter__(self) -> Iterator[ColumnDrift]:
        return iter(self.columns.values())

    def __len__(self) -> int:
        return len(self.columns)

    def summary(self) -> str:
        """One line: how many columns drifted, and which, with the reason for each."""
        total = len(self.columns)
        drifted = [self.columns[name] for name in self.drifted_columns]
        if not drifted:
            return f"no drift in {total} column{'s' if total != 1 else ''}"
        shown = "; ".join(f"{col.name} ({col.reason})" for col in drifted[:5])
        more = f"; and {len(drifted) - 5} more" if len(drifted) > 5 else ""
        return f"drift in {len(drifted)} of {total} columns: {shown}{more}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "method": self.method,
            "thresholds": dict(self.thresholds),
            "drifted": self.drifted_columns,
            "columns": {name: col.to_dict() for name, col in self.columns.items()},
            "skipped": dict(self.skipped),
        }
