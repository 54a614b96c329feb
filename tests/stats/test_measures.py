"""The formulas on small hand-made counts, against SciPy and the textbook definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon
from scipy.stats.contingency import association

from seaway.stats import measures


def test_psi_matches_the_formula_with_smoothed_shares() -> None:
    ref = [50, 30, 20]
    cur = [40, 30, 30]
    eps = measures.PSI_EPSILON
    p = (np.array(ref) / 100 + eps) / (1 + 3 * eps)
    q = (np.array(cur) / 100 + eps) / (1 + 3 * eps)
    expected = float(np.sum((q - p) * np.log(q / p)))
    assert measures.psi(ref, cur) == pytest.approx(expected, rel=1e-12)
    # By hand, without smoothing: 0.1 ln(5/4) + 0 + 0.1 ln(3/2) = 0.062860.
    assert measures.psi(ref, cur, epsilon=0.0) == pytest.approx(
        0.1 * math.log(1.25) + 0.1 * math.log(1.5), rel=1e-12
    )


def test_psi_is_zero_for_equal_shares_and_symmetric() -> None:
    assert measures.psi([10, 20, 70], [1, 2, 7]) == pytest.approx(0.0, abs=1e-15)
    assert measures.psi([5, 3, 2], [2, 3, 5]) == pytest.approx(measures.psi([2, 3, 5], [5, 3, 2]))


def test_psi_with_an_empty_bin_stays_finite() -> None:
    value = measures.psi([100, 0], [95, 5])
    eps = measures.PSI_EPSILON
    p = (np.array([1.0, 0.0]) + eps) / (1 + 2 * eps)
    q = (np.array([0.95, 0.05]) + eps) / (1 + 2 * eps)
    assert value == pytest.approx(float(np.sum((q - p) * np.log(q / p))))
    assert 0.3 < value < 0.35


def test_chi_square_matches_scipy() -> None:
    ref = np.array([120, 80, 40, 10])
    cur = np.array([90, 85, 60, 15])
    stat, dof, p = measures.chi_square(ref, cur)
    expected = stats.chi2_contingency(np.vstack([ref, cur]), correction=False)
    assert stat == pytest.approx(expected.statistic, rel=1e-12)
    assert dof == expected.dof == 3
    assert p == pytest.approx(expected.pvalue, rel=1e-9)


def test_chi_square_leaves_out_bins_empty_on_both_sides() -> None:
    stat, dof, p = measures.chi_square([10, 0, 30, 5], [12, 0, 25, 0])
    expected = stats.chi2_contingency(np.array([[10, 30, 5], [12, 25, 0]]), correction=False)
    assert (stat, dof) == (pytest.approx(expected.statistic), 2)
    assert p == pytest.approx(expected.pvalue)


def test_chi_square_of_a_single_bin_and_of_an_empty_side() -> None:
    assert measures.chi_square([7], [9]) == (0.0, 0, 1.0)
    stat, dof, p = measures.chi_square([0, 0], [1, 2])
    assert math.isnan(stat) and dof == 0 and math.isnan(p)


def test_js_distance_matches_scipy_base_2() -> None:
    ref = [5, 10, 0, 20]
    cur = [8, 2, 6, 20]
    expected = jensenshannon(np.array(ref) / 35, np.array(cur) / 36, base=2)
    assert measures.js_distance(ref, cur) == pytest.approx(expected, rel=1e-12)
    assert measures.js_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    assert measures.js_distance([3, 3], [1, 1]) == pytest.approx(0.0, abs=1e-12)


def test_cramers_v_equals_scipy_for_equal_sizes() -> None:
    ref = np.array([40, 35, 25])
    cur = np.array([30, 30, 40])
    expected = association(np.vstack([ref, cur]), method="cramer", correction=False)
    assert measures.cramers_v(ref, cur) == pytest.approx(expected, rel=1e-12)


def test_cramers_v_ignores_the_ratio_of_sample_sizes() -> None:
    balanced = measures.cramers_v([500, 300, 200], [450, 350, 200])
    lopsided = measures.cramers_v([5000, 3000, 2000], [450, 350, 200])
    assert lopsided == pytest.approx(balanced, rel=1e-12)
    usual = association(np.array([[5000, 3000, 2000], [450, 350, 200]]), method="cramer")
    assert usual < 0.6 * balanced


def test_cramers_v_is_never_below_the_total_variation_distance() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        k = int(rng.integers(2, 12))
        ref = rng.integers(0, 100, k)
        cur = rng.integers(0, 100, k)
        if ref.sum() == 0 or cur.sum() == 0:
            continue
        assert measures.cramers_v(ref, cur) >= measures.total_variation(ref, cur) - 1e-12
    assert measures.cramers_v([1, 0], [0, 1]) == pytest.approx(1.0)


def test_ks_from_counts_on_fine_bins_is_the_ks_statistic() -> None:
    ref = np.array([0.5, 1.5, 1.5, 2.5, 4.5])
    cur = np.array([1.5, 2.5, 3.5, 3.5, 5.5, 5.5])
    edges = np.arange(1, 6)  # one distinct value per bin
    ref_counts = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=6)
    cur_counts = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=6)
    expected = stats.ks_2samp(ref, cur).statistic
    assert measures.ks_from_counts(ref_counts, cur_counts) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("d", "n", "m"), [(0.1, 200, 300), (0.03, 1500, 2000), (0.012, 50_000, 80_000)]
)
def test_ks_pvalue_matches_scipy_asymptotic(d: float, n: int, m: int) -> None:
    en = n * m / (n + m)
    expected = stats.kstwo.sf(d, round(en))
    assert measures.ks_pvalue(d, n, m) == pytest.approx(expected, rel=0.01)


def test_ks_critical_value() -> None:
    assert measures.ks_critical(0.001, 1000, 1000) == pytest.approx(0.0872, abs=1e-4)
    # At the critical value the p-value is alpha.
    d = measures.ks_critical(0.001, 100_000, 100_000)
    assert measures.ks_pvalue(d, 100_000, 100_000) == pytest.approx(0.001, rel=0.02)


def test_counts_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="different bins"):
        measures.psi([1, 2], [1, 2, 3])
