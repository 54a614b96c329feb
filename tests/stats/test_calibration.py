"""Calibration of the default decision on seeded synthetic data.

Specificity: 10 seeds x 60 clean columns (reference and current drawn from the same
distributions) must give no flagged column at 100,000 rows and only a handful at 1,000 rows.
Sensitivity: at 100,000 rows a mean shift of 0.1 standard deviations and a categorical mix
shift of 5 to 10 percentage points must be flagged.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from seaway.stats import compare

Draw = Callable[[np.random.Generator, int], np.ndarray]


def _with_holes(draw: Draw, share: float) -> Draw:
    def holed(rng: np.random.Generator, n: int) -> np.ndarray:
        x = draw(rng, n).astype(np.float64)
        x[rng.random(n) < share] = np.nan
        return x

    return holed


def _zero_inflated(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.gamma(2.0, 1.0, n)
    x[rng.random(n) < 0.3] = 0.0
    return x


def _categories(k: int, missing: float = 0.0) -> Draw:
    names = np.array([f"v{i}" for i in range(k)], dtype=object)
    weights = 1.0 / np.arange(1, k + 1)  # Zipf-like: a few common, many rare
    p = weights / weights.sum()

    def draw(rng: np.random.Generator, n: int) -> np.ndarray:
        x = names[rng.choice(k, n, p=p)]
        if missing:
            x[rng.random(n) < missing] = None
        return x

    return draw


NUMERIC: list[Draw] = [
    lambda rng, n: rng.normal(0, 1, n),
    lambda rng, n: rng.normal(100, 15, n),
    lambda rng, n: rng.uniform(0, 1, n),
    lambda rng, n: rng.lognormal(0, 1, n),
    lambda rng, n: rng.lognormal(0, 3, n),  # too skewed for the uniform grid
    lambda rng, n: rng.exponential(2, n),
    lambda rng, n: rng.poisson(3, n),
    lambda rng, n: rng.integers(0, 1000, n),
    lambda rng, n: rng.standard_t(3, n),
    _zero_inflated,
    lambda rng, n: np.round(rng.normal(50, 10, n), 1),  # many ties
    lambda rng, n: np.where(rng.random(n) < 0.3, rng.normal(-2, 0.5, n), rng.normal(2, 1, n)),
    _with_holes(lambda rng, n: rng.normal(0, 1, n), 0.05),
    _with_holes(lambda rng, n: rng.gamma(1.5, 2, n), 0.3),
    lambda rng, n: rng.binomial(1, 0.2, n).astype(np.float64),
    lambda rng, n: rng.beta(0.5, 0.5, n),
    lambda rng, n: rng.pareto(2.5, n),
]
CATEGORICAL: list[Draw] = [
    _categories(2),
    _categories(3),
    _categories(5),
    _categories(10),
    _categories(40),
    _categories(5, missing=0.1),
    _categories(3),
    _categories(8),
    _categories(20),
    _categories(150),  # more than max_categories: the rare ones share "other"
]


def _clean(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    columns = {f"num{i:02d}": NUMERIC[i % len(NUMERIC)](rng, n) for i in range(50)}
    columns.update({f"cat{i}": CATEGORICAL[i](rng, n) for i in range(10)})
    return columns


def _flags(n: int, seeds: range) -> list[str]:
    flagged = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        report = compare(_clean(rng, n), _clean(rng, n))
        assert len(report) == 60
        flagged += [f"seed {seed}: {c} ({report[c].reason})" for c in report.drifted_columns]
    return flagged


def test_no_clean_column_is_flagged_at_100k_rows() -> None:
    assert _flags(100_000, range(10)) == []


def test_at_most_a_handful_of_clean_columns_are_flagged_at_1k_rows() -> None:
    flagged = _flags(1_000, range(10))
    assert len(flagged) <= 5, flagged


def test_no_clean_column_is_flagged_at_20k_rows() -> None:
    # Near the size where the floors take over from significance.
    assert len(_flags(20_000, range(10))) <= 2


SHIFTS: dict[str, Callable[[np.random.Generator, int, float], np.ndarray]] = {
    # Each shifts the mean by `d` standard deviations of the distribution.
    "normal": lambda rng, n, d: rng.normal(d, 1, n),
    "uniform": lambda rng, n, d: rng.uniform(0, 1, n) + d / np.sqrt(12),
    "lognormal": lambda rng, n, d: rng.lognormal(0, 1, n) + d * np.sqrt((np.e - 1) * np.e),
    "exponential": lambda rng, n, d: rng.exponential(1, n) + d,
    "bimodal": lambda rng, n, d: (
        np.where(rng.random(n) < 0.5, rng.normal(-1, 0.5, n), rng.normal(1, 0.5, n))
        + d * np.sqrt(1.25)
    ),
}


@pytest.mark.parametrize("shape", sorted(SHIFTS))
def test_a_mean_shift_of_a_tenth_of_a_standard_deviation_is_flagged(shape: str) -> None:
    draw = SHIFTS[shape]
    for seed in range(5):
        rng = np.random.default_rng(1000 + seed)
        col = compare({"x": draw(rng, 100_000, 0.0)}, {"x": draw(rng, 100_000, 0.1)})["x"]
        assert col.drifted, (shape, seed, col.reason)
        assert col.statistics["mean_shift"] == pytest.approx(0.1, abs=0.02)


MIXES = {
    # (reference shares, current shares): 5 and 10 point moves, between large categories
    # (the hardest case for V) and into small ones.
    "5 points, large to large": ([0.5, 0.5], [0.45, 0.55]),
    "5 points, three way": ([0.5, 0.3, 0.2], [0.45, 0.35, 0.2]),
    "5 points, into a rare one": ([0.4, 0.3, 0.2, 0.08, 0.02], [0.35, 0.3, 0.2, 0.08, 0.07]),
    "5 points, spread": ([0.25, 0.25, 0.25, 0.25], [0.225, 0.225, 0.275, 0.275]),
    "10 points": ([0.6, 0.25, 0.15], [0.5, 0.3, 0.2]),
}


@pytest.mark.parametrize("mix", sorted(MIXES))
def test_a_category_mix_shift_of_5_to_10_points_is_flagged(mix: str) -> None:
    before, after = MIXES[mix]
    names = np.array([f"k{i}" for i in range(len(before))])
    for seed in range(5):
        rng = np.random.default_rng(2000 + seed)
        ref = names[rng.choice(len(before), 100_000, p=before)]
        cur = names[rng.choice(len(after), 100_000, p=after)]
        col = compare({"c": ref}, {"c": cur})["c"]
        assert col.drifted, (mix, seed, col.reason)


def test_a_shift_within_clean_columns_is_found_among_them() -> None:
    rng = np.random.default_rng(77)
    ref, cur = _clean(rng, 100_000), _clean(rng, 100_000)
    cur["num00"] = cur["num00"] + 0.1  # normal(0, 1)
    values, shares = np.unique(ref["cat2"], return_counts=True)
    cur["cat2"] = rng.choice(values, 100_000, p=(shares / shares.sum() + [-0.05, 0.05, 0, 0, 0]))
    assert compare(ref, cur).drifted_columns == ["num00", "cat2"]
