"""Reference profiles: contents, JSON round trip, and comparisons that agree with the raw ones."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from seaway.errors import InputError
from seaway.stats import (
    CategoricalProfile,
    NumericProfile,
    Profile,
    compare,
    compare_profile,
)


def _data(seed: int, n: int, *, shifted: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    d = 1.0 if shifted else 0.0
    out = {
        "normal": rng.normal(0.12 * d, 1, n),
        "uniform": rng.uniform(0.04 * d, 1 + 0.04 * d, n),
        "lognormal": rng.lognormal(0, 1, n) + 0.25 * d,
        "skewed": rng.lognormal(0, 3, n),
        "spread": rng.normal(0, 1 + 0.3 * d, n),
        "ints": rng.poisson(4, n),
        "clean": rng.normal(5, 2, n),
        "holes": np.where(rng.random(n) < 0.05 + 0.05 * d, np.nan, rng.normal(size=n)),
        "mix": rng.choice(["a", "b", "c", "d"], n, p=[0.4 - 0.07 * d, 0.3, 0.2 + 0.07 * d, 0.1]),
        "stable": rng.choice(["x", "y"], n, p=[0.7, 0.3]),
        "new": rng.choice(["p", "q", "r"] + (["s"] if shifted else []), n),
    }
    return out


def test_profile_contents() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(3, 2, 40_000)
    x[:400] = np.nan
    cats = np.array(["a"] * 50 + ["b"] * 30 + ["c"] * 15 + ["d"] * 5 + [None] * 7, dtype=object)
    profile = Profile.from_columns({"x": x, "c": cats}, max_categories=2)
    num = profile.columns["x"]
    assert isinstance(num, NumericProfile)
    valid = x[~np.isnan(x)]
    assert (num.rows, num.missing) == (40_000, 400)
    assert num.mean == pytest.approx(valid.mean(), rel=1e-12)
    assert num.std == pytest.approx(valid.std(ddof=1), rel=1e-9)
    assert (num.minimum, num.maximum) == (valid.min(), valid.max())
    assert num.counts.sum() == valid.size
    assert num.bins.size == 9  # ten quantile bins
    assert 95 <= num.edges.size <= 110  # plus the finer KS boundaries (deciles are among them)
    cat = profile.columns["c"]
    assert isinstance(cat, CategoricalProfile)
    assert cat.values.to_pylist() == ["a", "b"]
    assert cat.counts.tolist() == [50, 30]
    assert (cat.other, cat.missing, cat.rows) == (20, 7, 107)


def test_round_trip_through_json_is_exact_and_stable() -> None:
    data = _data(1, 20_000, shifted=False)
    data["codes"] = np.random.default_rng(1).integers(0, 5, 20_000)
    data["blobs"] = pa.array([b"\x00\xff", b"ok"] * 10_000)
    profile = Profile.from_columns(data, categorical=["codes"])
    first = profile.to_dict()
    text = json.dumps(first, allow_nan=False, sort_keys=True)
    again = Profile.from_dict(json.loads(text))
    assert again.to_dict() == first
    assert json.dumps(again.to_dict(), allow_nan=False, sort_keys=True) == text
    current = _data(2, 10_000, shifted=True)
    current["codes"] = np.random.default_rng(2).integers(0, 6, 10_000)
    current["blobs"] = pa.array([b"ok"] * 10_000)
    assert compare_profile(again, current).to_dict() == compare_profile(profile, current).to_dict()


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_profile_comparison_agrees_with_the_raw_one(seed: int) -> None:
    ref = _data(seed, 100_000, shifted=False)
    cur = _data(seed + 100, 80_000, shifted=True)
    raw = compare(ref, cur)
    via_profile = compare_profile(Profile.from_columns(ref), cur)
    assert via_profile.source == "profile"
    assert via_profile.drifted_columns == raw.drifted_columns
    assert set(raw.drifted_columns) == {
        "normal",
        "uniform",
        "lognormal",
        "spread",
        "holes",
        "mix",
        "new",
    }
    for name, col in raw.columns.items():
        other = via_profile[name].statistics
        for key in ("psi", "chi2", "js"):
            assert other[key] == pytest.approx(col.statistics[key], rel=1e-6, abs=1e-12), (
                name,
                key,
            )
        if col.kind == "numeric":
            # From 1%-apart boundaries: a lower bound of the raw figure, and close to it.
            assert other["ks_d"] <= col.statistics["ks_d"] + 1e-12
            assert other["ks_d"] == pytest.approx(col.statistics["ks_d"], abs=0.01)
            assert other["mean_shift"] == pytest.approx(col.statistics["mean_shift"], rel=1e-9)
        else:
            assert other["cramers_v"] == pytest.approx(col.statistics["cramers_v"], rel=1e-9)


def test_profile_groups_categories_outside_the_profile() -> None:
    ref = np.repeat(["a", "b", "c", "d"], [400, 300, 200, 100])
    profile = Profile.from_columns({"c": ref}, max_categories=2)
    same = compare_profile(profile, {"c": ref})["c"]
    assert not same.drifted and same.statistics["bins"] == 3
    moved = compare_profile(profile, {"c": np.repeat(["a", "b", "e"], [400, 300, 300])})["c"]
    # "e" is new, but the profile only knows that it is not "a" or "b": same shares as before.
    assert moved.statistics["psi"] == pytest.approx(0.0, abs=1e-12)
    assert moved.statistics["unseen"] == pytest.approx(0.3)


def test_profile_comparison_columns_and_kinds() -> None:
    profile = Profile.from_columns({"x": np.arange(100.0), "c": np.array(["a", "b"] * 50)})
    report = compare_profile(profile, {"x": np.arange(100.0), "extra": np.arange(3)})
    assert list(report.columns) == ["x"]
    assert report.skipped == {
        "c": "only in the reference data",
        "extra": "only in the current data",
    }
    with pytest.raises(InputError, match="not in the current data"):
        compare_profile(profile, {"x": np.arange(3.0)}, columns=["c"])
    with pytest.raises(InputError, match="not numeric"):
        compare_profile(profile, {"x": np.array(["a"])})
    with pytest.raises(InputError, match="columns not found"):
        Profile.from_columns({"x": np.arange(3.0)}, columns=["y"])


def test_malformed_profiles_are_input_errors() -> None:
    good = Profile.from_columns({"x": np.arange(100.0)}).to_dict()
    with pytest.raises(InputError, match="not a drift profile"):
        Profile.from_dict({**good, "format": "something/9"})
    broken = json.loads(json.dumps(good))
    broken["columns"][0]["counts"] = broken["columns"][0]["counts"][:-1]
    with pytest.raises(InputError, match="column 'x' is malformed"):
        Profile.from_dict(broken)
