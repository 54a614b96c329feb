"""Drift measures computed from counts.

Raw data and stored profiles both end up as two vectors of counts over the same bins
(quantile bins of a numeric column, categories of a categorical one), so every measure here
takes `ref` and `cur` counts of equal length. The functions are small and exact, and the tests
check them against SciPy and the textbook formulas.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

# Shares are smoothed additively before taking logarithms: an empty bin would otherwise make
# PSI infinite. The value is the customary one; it caps the contribution of a bin that one side
# leaves empty at about share * ln(share / 1e-4) (0.31 for a 5% share).
PSI_EPSILON = 1e-4

# Below this effective sample size the exact distribution of the KS statistic is cheap and
# noticeably different from its limit; above it the limit (with Stephens' correction) is used.
_KS_EXACT_EN = 2_500


def _counts(values: ArrayLike) -> NDArray[np.float64]:
    out = np.asarray(values, dtype=np.float64)
    if out.ndim != 1:
        raise ValueError("counts must be one-dimensional")
    return out


def _pair(ref: ArrayLike, cur: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r, c = _counts(ref), _counts(cur)
    if r.shape != c.shape:
        raise ValueError(f"counts over different bins: {r.size} and {c.size}")
    return r, c


def psi(ref: ArrayLike, cur: ArrayLike, *, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index: sum of (q - p) * ln(q / p) over bins.

    p and q are the reference and current shares, each smoothed as (share + epsilon) /
    (1 + bins * epsilon). NaN when either side has no values.
    """
    r, c = _pair(ref, cur)
    n, m = r.sum(), c.sum()
    if n <= 0 or m <= 0:
        return math.nan
    k = r.size
    p = (r / n + epsilon) / (1 + k * epsilon)
    q = (c / m + epsilon) / (1 + k * epsilon)
    return float(np.sum((q - p) * np.log(q / p)))


def small_sample_psi(ref: list[float], cur: list[float]) -> float:
    """PSI that a canary's first few dozen requests can be judged by.

    Plain PSI of two samples of one distribution is not 0 but about (k - 1)(1/n + 1/m)
    for k occupied bins, and an empty bin on one side weighs ln(share / epsilon): 45
    requests over 20 probability bins read as PSI 1.9 between two near-identical models.
    Half a count per occupied bin on both sides (Jeffreys' prior) tames the empty bins,
    and that expected sampling part is taken off, so the limit in the analysis means the
    same shift whatever the traffic so far. Large samples are left as they were."""
    pairs = [(float(r), float(c)) for r, c in zip(ref, cur, strict=True) if r > 0 or c > 0]
    n, m = sum(r for r, _ in pairs), sum(c for _, c in pairs)
    if n <= 0 or m <= 0:
        return math.nan
    k = len(pairs)
    raw = psi([r + 0.5 for r, _ in pairs], [c + 0.5 for _, c in pairs])
    return max(0.0, raw - (k - 1) * (1.0 / n + 1.0 / m))


def chi_square(ref: ArrayLike, cur: ArrayLike) -> tuple[float, int, float]:
    """Pearson's chi-square test of homogeneity on the 2 x k table of counts.

    Returns (statistic, degrees of freedom, p-value), without continuity correction (as
    `scipy.stats.chi2_contingency(..., correction=False)`). Bins empty on both sides are left
    out. NaN statistic and p-value when either side has no values.
    """
    r, c = _pair(ref, cur)
    n, m = r.sum(), c.sum()
    if n <= 0 or m <= 0:
        return math.nan, 0, math.nan
    keep = (r + c) > 0
    r, c = r[keep], c[keep]
    dof = r.size - 1
    if dof < 1:
        return 0.0, 0, 1.0
    total = r + c
    e_ref = total * (n / (n + m))
    e_cur = total * (m / (n + m))
    stat = float(np.sum((r - e_ref) ** 2 / e_ref) + np.sum((c - e_cur) ** 2 / e_cur))
    return stat, dof, float(special.chdtrc(dof, stat))


def js_distance(ref: ArrayLike, cur: ArrayLike) -> float:
    """Jensen-Shannon distance between the two distributions, in bits (0 to 1).

    The square root of the JS divergence with base-2 logarithms, as
    `scipy.spatial.distance.jensenshannon(p, q, base=2)`; no smoothing is needed.
    """
    r, c = _pair(ref, cur)
    n, m = r.sum(), c.sum()
    if n <= 0 or m <= 0:
        return math.nan
    p, q = r / n, c / m
    mid = (p + q) / 2
    div = 0.0
    for share in (p, q):
        seen = share > 0
        div += 0.5 * float(np.sum(share[seen] * np.log2(share[seen] / mid[seen])))
    return math.sqrt(max(div, 0.0))


def cramers_v(ref: ArrayLike, cur: ArrayLike) -> float:
    """Cramér's V of the 2 x k table with both samples weighted equally (0 to 1).

    Equal to the usual V of the table when the two samples have the same size. The usual V
    shrinks as the sizes grow apart (a 10:1 table gives about 0.57 times the V of a balanced
    one for the same shares), which would make a fixed floor mean different things for
    different samples; weighting the shares equally removes that. It is never below the total
    variation distance (half the sum of absolute share differences), so a floor of 0.03 catches
    any mix shift that moves more than 3 percentage points.
    """
    r, c = _pair(ref, cur)
    n, m = r.sum(), c.sum()
    if n <= 0 or m <= 0:
        return math.nan
    p, q = r / n, c / m
    mid = (p + q) / 2
    seen = mid > 0
    v2 = 0.25 * float(np.sum((p[seen] - q[seen]) ** 2 / mid[seen]))
    return math.sqrt(min(max(v2, 0.0), 1.0))


def total_variation(ref: ArrayLike, cur: ArrayLike) -> float:
    """Half the sum of absolute differences of the shares (0 to 1)."""
    r, c = _pair(ref, cur)
    n, m = r.sum(), c.sum()
    if n <= 0 or m <= 0:
        return math.nan
    return 0.5 * float(np.sum(np.abs(r / n - c / m)))


def ks_from_counts(ref: ArrayLike, cur: ArrayLike) -> float:
    """Largest distance between the two empirical CDFs at the bin boundaries.

    With bins finer than the data's distinct values this is the KS statistic; with coarser
    bins it is a lower bound (the supremum over the boundaries only).
    """
    r, c = _pair(ref, cur)
    n, m = r.sum(), c.sum()
    if n <= 0 or m <= 0:
        return math.nan
    return float(np.max(np.abs(np.cumsum(r) / n - np.cumsum(c) / m)))


def ks_pvalue(d: float, n: int, m: int) -> float:
    """Two-sided p-value of a two-sample KS statistic `d` for sample sizes `n` and `m`.

    Uses the distribution of the one-sample statistic at the effective size n*m/(n+m), as
    `scipy.stats.ks_2samp(..., method="asymp")` does; above an effective size of 2,500 the
    Kolmogorov limit with Stephens' small-sample correction replaces it (within about 1%,
    and hundreds of times cheaper at large n).
    """
    if n <= 0 or m <= 0 or math.isnan(d):
        return math.nan
    en = n * m / (n + m)
    if en <= _KS_EXACT_EN:
        # scipy.stats takes about half a second to import; only small samples need it.
        from scipy.stats import kstwo

        return float(min(max(kstwo.sf(d, round(en)), 0.0), 1.0))
    root = math.sqrt(en)
    return float(min(max(special.kolmogorov((root + 0.12 + 0.11 / root) * d), 0.0), 1.0))


def ks_critical(alpha: float, n: int, m: int) -> float:
    """The KS statistic at which the two-sample test reaches significance `alpha` (asymptotic).

    c(alpha) * sqrt((n + m) / (n m)), with c(alpha) = sqrt(-ln(alpha / 2) / 2); 1.95 for
    alpha = 0.001. Shows how the noise floor of D falls with the sample size.
    """
    if n <= 0 or m <= 0:
        return math.nan
    return math.sqrt(-math.log(alpha / 2) / 2) * math.sqrt((n + m) / (n * m))
