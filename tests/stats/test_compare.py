"""compare(): statistics on known data, categorical and missing-value handling, inputs, errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats

from seaway.errors import InputError, UsageError
from seaway.stats import DriftReport, ParquetColumns, Profile, Thresholds, compare, measures


def _bins_by_edges(values: np.ndarray, edges: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """Counts of `values` in the bins starting at edges[coarse] (NaN left out)."""
    values = values[~np.isnan(values)]
    cut = edges[coarse]
    return np.bincount(np.searchsorted(cut, values, side="right"), minlength=cut.size + 1)


def _same(one: DriftReport, other: DriftReport) -> None:
    assert one.drifted_columns == other.drifted_columns
    for name, col in other.columns.items():
        assert one[name].reason.split(" (")[0] == col.reason.split(" (")[0]
        for key, value in col.statistics.items():
            # Sums over chunks add up in another order: the last digits may differ.
            assert one[name].statistics[key] == pytest.approx(value, rel=1e-12), key


# --------------------------------------------------------------------------- numeric


def test_numeric_bins_are_deciles_of_the_reference_and_psi_uses_them() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=50_000)
    cur = rng.normal(0.05, 1.1, size=40_000)
    col = Profile.from_columns({"x": ref}).columns["x"]
    ref_bins = _bins_by_edges(ref, col.edges, col.bins)
    assert ref_bins.size == 10
    assert np.all(np.abs(ref_bins - 5_000) <= 50)  # within 1% of a tenth
    cur_bins = _bins_by_edges(cur, col.edges, col.bins)
    s = compare({"x": ref}, {"x": cur})["x"].statistics
    assert s["bins"] == 10
    assert s["psi"] == pytest.approx(measures.psi(ref_bins, cur_bins), rel=1e-12)
    assert s["js"] == pytest.approx(measures.js_distance(ref_bins, cur_bins), rel=1e-12)
    chi2 = stats.chi2_contingency(np.vstack([ref_bins, cur_bins]), correction=False)
    assert s["chi2"] == pytest.approx(chi2.statistic, rel=1e-9)
    assert s["chi2_p"] == pytest.approx(chi2.pvalue, rel=1e-6, abs=1e-300)


def test_small_samples_get_the_exact_ks_test() -> None:
    rng = np.random.default_rng(1)
    ref, cur = rng.normal(size=300), rng.normal(0.3, 1, size=250)
    s = compare({"x": ref}, {"x": cur})["x"].statistics
    expected = stats.ks_2samp(ref, cur)
    assert s["ks_d"] == pytest.approx(expected.statistic, rel=1e-12)
    assert s["ks_p"] == pytest.approx(expected.pvalue, rel=1e-9)


@pytest.mark.parametrize(
    "draw",
    [
        lambda rng, n, shift: rng.normal(shift, 1, n),
        lambda rng, n, shift: rng.lognormal(shift, 3.0, n),  # too skewed for the uniform grid
        lambda rng, n, shift: rng.poisson(3 + shift * 10, n).astype(np.int64),
    ],
    ids=["normal", "lognormal-sigma-3", "poisson"],
)
def test_large_samples_read_ks_off_the_grid_within_a_thousandth(draw) -> None:
    rng = np.random.default_rng(2)
    ref, cur = draw(rng, 60_000, 0.0), draw(rng, 50_000, 0.05)
    s = compare({"x": ref}, {"x": cur})["x"].statistics
    exact = stats.ks_2samp(ref, cur, method="asymp")
    assert s["ks_d"] <= exact.statistic + 1e-12
    assert s["ks_d"] == pytest.approx(exact.statistic, abs=1e-3)


def test_integer_levels_get_exact_ks_and_their_own_bins() -> None:
    rng = np.random.default_rng(3)
    ref, cur = rng.integers(0, 4, 30_000), rng.integers(0, 4, 30_000)
    col = compare({"x": ref}, {"x": cur})["x"]
    assert col.statistics["ks_d"] == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=1e-12)
    assert not col.drifted
    # Each level is a bin of its own, and so is each gap between levels: values the reference
    # never had (1.5) are drift even when they sit between known ones.
    assert col.statistics["bins"] == 8
    between = np.where(rng.random(30_000) < 0.05, 1.5, cur)
    assert compare({"x": ref}, {"x": between})["x"].statistics["psi"] > 0.2


def test_a_mean_shift_that_is_significant_but_negligible_is_not_drift() -> None:
    # At a million rows a shift of 0.01 standard deviations is highly significant; it is not
    # a change anyone should act on, and the default rule lets it pass.
    rng = np.random.default_rng(4)
    ref, cur = rng.normal(size=1_000_000), rng.normal(0.01, 1, size=1_000_000)
    col = compare({"x": ref}, {"x": cur})["x"]
    assert col.statistics["ks_p"] < 1e-6
    assert not col.drifted
    assert col.reason.startswith("within limits")
    assert col.statistics["mean_shift"] == pytest.approx(0.01, abs=0.003)


def test_noisy_psi_on_a_tiny_sample_is_not_drift() -> None:
    rng = np.random.default_rng(5)
    col = compare({"x": rng.normal(size=40)}, {"x": rng.normal(size=30)})["x"]
    assert col.statistics["psi"] > 0.1
    assert not col.drifted
    assert "not significant" in col.reason


def test_a_change_of_spread_is_drift() -> None:
    rng = np.random.default_rng(6)
    col = compare({"x": rng.normal(size=20_000)}, {"x": rng.normal(0, 1.5, size=20_000)})["x"]
    assert col.drifted
    assert col.statistics["psi"] > 0.1


# --------------------------------------------------------------------------- constant, zeros


def test_constant_columns() -> None:
    five = np.full(1_000, 5.0)
    same = compare({"x": five}, {"x": np.full(800, 5.0)})["x"]
    assert not same.drifted
    assert same.statistics["psi"] == pytest.approx(0.0, abs=1e-12)
    assert same.statistics["ks_d"] == 0
    assert math.isnan(same.statistics["mean_shift"])  # no spread to measure it in
    for other in (6.0, 4.0):
        moved = compare({"x": five}, {"x": np.full(800, other)})["x"]
        assert moved.drifted, other
        assert moved.statistics["psi"] > 1
    spread = compare({"x": five}, {"x": np.random.default_rng(7).normal(5, 1, 800)})["x"]
    assert spread.drifted


def test_a_large_constant_column_uses_the_grid_too() -> None:
    ref = np.zeros(200_000)
    col = compare({"x": ref}, {"x": np.r_[np.zeros(190_000), np.full(10_000, -1.0)]})["x"]
    assert col.drifted
    assert col.statistics["ks_d"] == pytest.approx(0.05)


def test_zeros_of_a_zero_inflated_column_get_their_own_bin() -> None:
    rng = np.random.default_rng(8)

    def draw(n: int, zeros: float) -> np.ndarray:
        x = rng.gamma(2.0, 1.0, n)
        x[rng.random(n) < zeros] = 0.0
        return x

    ref = draw(100_000, 0.4)
    col = Profile.from_columns({"x": ref}).columns["x"]
    counts = _bins_by_edges(ref, col.edges, col.bins)
    assert np.count_nonzero(ref == 0) in counts  # one bin holds exactly the zeros
    assert not compare({"x": ref}, {"x": draw(100_000, 0.4)})["x"].drifted
    assert compare({"x": ref}, {"x": draw(100_000, 0.34)})["x"].drifted


# --------------------------------------------------------------------------- missing values


def test_nan_is_counted_apart_and_left_out_of_the_statistics() -> None:
    rng = np.random.default_rng(9)
    # Small enough that the grid is built from every value, with or without the NaN.
    ref, cur = rng.normal(size=16_000), rng.normal(size=12_000)
    ref_holes, cur_holes = ref.copy(), cur.copy()
    ref_holes[::20] = np.nan
    cur_holes[5::20] = np.nan
    with_nan = compare({"x": ref_holes}, {"x": cur_holes})["x"]
    without = compare(
        {"x": ref_holes[~np.isnan(ref_holes)]}, {"x": cur_holes[~np.isnan(cur_holes)]}
    )["x"]
    assert (with_nan.n_ref, with_nan.missing_ref) == (16_000, 800)
    assert (with_nan.n_cur, with_nan.missing_cur) == (12_000, 600)
    for key in ("psi", "ks_d", "chi2", "js", "mean_shift"):
        assert with_nan.statistics[key] == pytest.approx(without.statistics[key], rel=1e-9), key
    assert not with_nan.drifted
    assert "missing 5.0% -> 5.0%" in with_nan.reason


def test_a_jump_in_missing_values_is_drift() -> None:
    rng = np.random.default_rng(10)
    ref, cur = rng.normal(size=10_000), rng.normal(size=10_000)
    ref[:100] = np.nan
    cur[:1_000] = np.nan
    col = compare({"x": ref}, {"x": cur})["x"]
    assert col.drifted
    assert col.reason.startswith("missing 1.0% -> 10.0%")


def test_all_missing_sides() -> None:
    values = np.arange(100.0)
    holes = np.full(50, np.nan)
    gone = compare({"x": values}, {"x": holes})["x"]
    assert gone.drifted and "missing 0.0% -> 100.0%" in gone.reason
    assert math.isnan(gone.statistics["psi"])
    nothing = compare({"x": holes}, {"x": holes})["x"]
    assert not nothing.drifted and nothing.reason == "no values on either side"
    json.dumps(compare({"x": values}, {"x": holes}).to_dict(), allow_nan=False)


def test_arrow_nulls_are_missing_values() -> None:
    ref = pa.table({"f": pa.array([1.0, None, 3.0, 4.0]), "i": pa.array([1, 2, None, None])})
    cur = pa.table({"f": pa.array([1.0, 2.0, 3.0, 4.0]), "i": pa.array([1, 2, 3, 4])})
    report = compare(ref, cur)
    assert (report["f"].missing_ref, report["i"].missing_ref) == (1, 2)
    assert report["i"].kind == "numeric"


# --------------------------------------------------------------------------- categorical


def test_categorical_statistics_match_scipy() -> None:
    ref = np.array(["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    cur = np.array(["a"] * 35 + ["b"] * 40 + ["c"] * 25)
    s = compare({"c": ref}, {"c": cur})["c"].statistics
    table = np.array([[50, 30, 20], [35, 40, 25]])
    expected = stats.chi2_contingency(table, correction=False)
    assert s["chi2"] == pytest.approx(expected.statistic)
    assert s["chi2_p"] == pytest.approx(expected.pvalue)
    assert s["psi"] == pytest.approx(measures.psi(table[0], table[1]))
    assert s["cramers_v"] == pytest.approx(
        stats.contingency.association(table, method="cramer", correction=False)
    )
    assert s["bins"] == 3 and s["unseen"] == 0


def test_unseen_categories_share_one_bin() -> None:
    ref = ["a"] * 600 + ["b"] * 400
    cur = ["a"] * 500 + ["b"] * 300 + ["d"] * 120 + ["e"] * 80
    col = compare({"c": ref}, {"c": cur})["c"]
    s = col.statistics
    assert s["bins"] == 3
    assert s["unseen"] == pytest.approx(0.2)
    table = np.array([[600, 400, 0], [500, 300, 200]])
    assert s["chi2"] == pytest.approx(stats.chi2_contingency(table, correction=False).statistic)
    assert s["psi"] == pytest.approx(measures.psi(table[0], table[1]))
    assert col.drifted


def test_categories_too_rare_for_the_chi_square_test_are_pooled() -> None:
    # Expected counts under 5 on the smaller side: "c", "d" and the new "x" are pooled, the
    # new "y" is common enough to be a bin of its own ("unseen").
    ref = ["a"] * 60 + ["b"] * 36 + ["c"] * 3 + ["d"] * 1
    cur = ["a"] * 50 + ["b"] * 30 + ["c"] * 2 + ["x"] * 2 + ["y"] * 16
    s = compare({"c": ref}, {"c": cur})["c"].statistics
    table = np.array([[60, 36, 0, 4], [50, 30, 16, 4]])
    assert s["bins"] == 4
    assert s["chi2"] == pytest.approx(stats.chi2_contingency(table, correction=False).statistic)
    assert s["unseen"] == pytest.approx(0.18)


def test_rare_categories_beyond_max_categories_share_other() -> None:
    ref = np.repeat([f"k{i:02d}" for i in range(20)], np.arange(20, 0, -1) * 10)
    s = compare({"c": ref}, {"c": ref}, max_categories=5)["c"].statistics
    assert s["bins"] == 6  # five kept categories and "other"; "unseen" is empty and dropped
    assert s["psi"] == pytest.approx(0.0, abs=1e-12)


def test_dictionary_columns_with_unused_entries() -> None:
    dictionary = pa.array(["a", "b", "never"])
    ref = pa.DictionaryArray.from_arrays(pa.array([0, 1, 0, 1, 0] * 10), dictionary)
    cur = pa.DictionaryArray.from_arrays(pa.array([1, 1, 0, None] * 10), dictionary)
    col = compare({"c": ref}, {"c": cur})["c"]
    assert col.kind == "categorical"
    assert col.statistics["bins"] == 2
    assert col.missing_cur == 10


def test_categorical_missing_values_and_empty_sides() -> None:
    ref = np.array(["a", "b", None, "a", float("nan")], dtype=object)
    cur = np.array([None, None], dtype=object)
    col = compare({"c": ref}, {"c": cur})["c"]
    assert (col.missing_ref, col.missing_cur) == (2, 2)
    assert col.reason.startswith("no values in the current data")
    assert not col.drifted  # too few rows for the jump in missing values to be significant
    empty = compare({"c": np.array([], dtype=str)}, {"c": np.array(["a"])})["c"]
    assert empty.reason == "no values in the reference data to compare"


def test_integer_codes_named_categorical() -> None:
    ref = np.array([1, 2, 2, 3] * 50)
    cur = np.array([1, 2, 3, 3] * 50)
    report = compare({"code": ref}, {"code": cur}, categorical=["code"])
    assert report["code"].kind == "categorical"
    assert report["code"].statistics["bins"] == 3


def test_booleans_are_categorical() -> None:
    report = compare({"b": np.array([True, False] * 10)}, {"b": np.array([True] * 20)})
    assert report["b"].kind == "categorical"
    assert report["b"].drifted


# --------------------------------------------------------------------------- inputs, options


def test_arrow_tables_with_chunks_give_the_numpy_result() -> None:
    rng = np.random.default_rng(11)
    ref = {"x": rng.normal(size=30_000), "c": rng.choice(["p", "q", "r"], 30_000)}
    cur = {"x": rng.normal(0.2, 1, 25_000), "c": rng.choice(["p", "q", "r"], 25_000)}
    plain = compare(ref, cur)

    def same(other: DriftReport) -> None:
        _same(other, plain)

    def chunked(data: dict[str, np.ndarray]) -> pa.Table:
        return pa.Table.from_batches(pa.table(data).to_batches(max_chunksize=7_000))

    assert chunked(ref).column("x").num_chunks > 1
    same(compare(chunked(ref), chunked(cur)))
    same(compare(pa.RecordBatch.from_pydict(dict(ref)), cur))
    same(compare({k: list(v) for k, v in ref.items()}, cur))


def test_columns_selection_and_skipped_columns() -> None:
    ref = {"a": np.arange(10.0), "b": np.arange(10.0), "only_ref": np.arange(3.0)}
    cur = {"b": np.arange(10.0), "a": np.arange(10.0), "only_cur": np.arange(3.0)}
    report = compare(ref, cur)
    assert list(report.columns) == ["a", "b"]
    assert report.skipped == {
        "only_ref": "only in the reference data",
        "only_cur": "only in the current data",
    }
    assert list(compare(ref, cur, columns=["b"]).columns) == ["b"]
    with pytest.raises(InputError, match=r"only_ref \(not in the current data\)"):
        compare(ref, cur, columns=["a", "only_ref"])


def test_bad_inputs_are_input_errors() -> None:
    with pytest.raises(InputError, match="numeric in the reference and categorical"):
        compare({"x": np.arange(3.0)}, {"x": np.array(["a", "b"])})
    with pytest.raises(InputError, match="2 dimensions"):
        compare({"x": np.zeros((2, 2))}, {"x": np.zeros(2)})
    with pytest.raises(InputError, match="datetime64"):
        compare({"t": np.array(["2026-01-01"], dtype="datetime64[D]")}, {"t": np.arange(1)})
    with pytest.raises(InputError, match="not columns"):
        compare([1, 2, 3], {"x": [1]})  # type: ignore[arg-type]
    with pytest.raises(InputError, match="same type on both sides"):
        compare({"c": pa.array([1, 2])}, {"c": pa.array(["a"])}, categorical=["c"])


def test_bad_options_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="unknown drift method"):
        compare({"x": [1.0]}, {"x": [1.0]}, method="wasserstein")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="alpha"):
        Thresholds(alpha=0)
    with pytest.raises(UsageError, match="psi"):
        Thresholds(psi=-1)
    with pytest.raises(UsageError, match="bins"):
        compare({"x": [1.0]}, {"x": [1.0]}, bins=1)


# --------------------------------------------------------------------------- methods, report


def _shifted(seed: int = 12, n: int = 50_000, shift: float = 0.15) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    return (
        {"x": rng.normal(size=n), "c": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])},
        {"x": rng.normal(shift, 1, n), "c": rng.choice(["a", "b", "c"], n, p=[0.44, 0.36, 0.2])},
    )


def test_methods_decide_by_their_own_statistic() -> None:
    ref, cur = _shifted()
    assert compare(ref, cur).drifted_columns == ["x", "c"]
    # PSI of these shifts is about 0.02: under the default 0.1, over 0.01.
    assert compare(ref, cur, method="psi").drifted_columns == []
    psi_01 = Thresholds().for_limit("psi", 0.01)
    assert compare(ref, cur, method="psi", thresholds=psi_01).drifted_columns == ["x", "c"]
    assert compare(ref, cur, method="ks").drifted_columns == ["x", "c"]
    ks_high = Thresholds().for_limit("ks", 0.2)
    assert (ks_high.ks, ks_high.cramers_v) == (0.2, 0.2)
    assert compare(ref, cur, method="ks", thresholds=ks_high).drifted_columns == []
    assert compare(ref, cur, method="js").drifted_columns == []
    js_low = Thresholds().for_limit("js", 0.02)
    assert compare(ref, cur, method="js", thresholds=js_low).drifted_columns == ["x", "c"]
    assert "JS distance" in compare(ref, cur, method="js", thresholds=js_low)["x"].reason


def test_report_summary_and_dict() -> None:
    ref, cur = _shifted()
    report = compare(ref, cur)
    assert report.drifted
    assert report.summary().startswith("drift in 2 of 2 columns: x (KS D 0.")
    assert "c (Cramér's V 0.0" in report.summary()
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["drifted"] == ["x", "c"]
    assert data["thresholds"]["psi"] == 0.1 and data["method"] == "auto"
    assert set(data["columns"]["x"]["statistics"]) >= {"psi", "ks_d", "ks_p", "chi2", "js"}
    assert data["columns"]["c"]["kind"] == "categorical"
    quiet = compare(ref, ref)
    assert quiet.summary() == "no drift in 2 columns"
    assert len(quiet) == 2 and [c.name for c in quiet] == ["x", "c"]


def test_parquet_files_compared_column_by_column(tmp_path: Path) -> None:
    ref, cur = _shifted(n=20_000)
    # Several row groups: text columns come back as dictionaries with one dictionary each.
    pq.write_table(pa.table(ref), tmp_path / "ref.parquet", row_group_size=7_000)
    pq.write_table(pa.table(cur), tmp_path / "cur.parquet")
    lazy = ParquetColumns(tmp_path / "ref.parquet")
    assert list(lazy) == ["x", "c"] and len(lazy) == 2
    with pytest.raises(KeyError):
        lazy["nope"]
    streamed = compare(lazy, ParquetColumns(tmp_path / "cur.parquet"))
    whole = compare(
        pq.read_table(tmp_path / "ref.parquet"), pq.read_table(tmp_path / "cur.parquet")
    )
    _same(streamed, whole)
    assert Profile.from_columns(lazy).to_dict() == Profile.from_columns(pa.table(ref)).to_dict()
    with pytest.raises(InputError, match="cannot read"):
        ParquetColumns(tmp_path / "missing.parquet")


def test_threads_do_not_change_the_result() -> None:
    ref, cur = _shifted(n=30_000)
    ref = {**ref, **{f"extra{i}": np.arange(30_000.0) * i for i in range(4)}}
    cur = {**cur, **{f"extra{i}": np.arange(30_000.0) * i for i in range(4)}}
    serial = compare(ref, cur, workers=1).to_dict()
    assert compare(ref, cur, workers=3).to_dict() == serial
    profile = Profile.from_columns(ref, workers=1)
    assert Profile.from_columns(ref, workers=3).to_dict() == profile.to_dict()
    with pytest.raises(UsageError, match="workers"):
        compare(ref, cur, workers=0)
