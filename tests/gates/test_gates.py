"""Each gate's statuses, on a real fitted scikit-learn pipeline and real Arrow tables.

The context is built by hand (no database): the model goes through the sklearn flavor's own
predictor, the version is a plain ModelVersion record.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from seaway.gates import GateContext, GateStatus, evaluate_gate, evaluate_gates
from seaway.gates.robustness import perturb
from tests.gates.support import customers, fit, model_spec, predictor, version

PASSED, FAILED = GateStatus.PASSED, GateStatus.FAILED
INCONCLUSIVE, ERROR = GateStatus.INCONCLUSIVE, GateStatus.ERROR


@pytest.fixture(scope="module")
def train() -> pa.Table:
    return customers(3000, seed=1)


@pytest.fixture(scope="module")
def model(train: pa.Table) -> Any:
    return predictor(fit(train))


@pytest.fixture(scope="module")
def holdout() -> tuple[pa.Table, np.ndarray]:
    table = customers(1500, seed=3)
    return table.drop_columns(["churned"]), table["churned"].to_numpy()


def run(gate: dict[str, Any], ctx_args: dict[str, Any] | None = None, **spec: Any) -> Any:
    """Evaluate one gate written as in seaway.yaml."""
    ms = model_spec([gate], **spec)
    args = dict(ctx_args or {})
    ctx = GateContext(args.pop("version", version()), ms, **args)
    return evaluate_gate(ms.gates[0], ctx)


# -- metric ----------------------------------------------------------------------------------


def test_metric_threshold_passes_and_fails_on_the_recorded_metric() -> None:
    ok = run({"metric": "auc", "min": 0.7})
    assert (ok.status, ok.name, ok.figures["value"]) == (PASSED, "auc>=0.7", 0.8)
    low = run({"metric": "auc", "min": 0.85})
    assert low.status is FAILED and "below the minimum 0.85" in low.message
    high = run({"metric": "rmse", "max": 1.0}, {"version": version(metrics={"rmse": 1.5})})
    assert high.status is FAILED and "above the maximum 1" in high.message


def test_metric_the_version_did_not_record_is_an_error_naming_what_it_has() -> None:
    result = run({"metric": "f1", "min": 0.5})
    assert result.status is ERROR
    assert "recorded no metric 'f1' (it has: auc)" in result.message
    assert result.hint and "log the metric" in result.hint


# -- no regression ------------------------------------------------------------------------------


def _regression(champion: Any, candidate: Any = None, **spec: Any) -> Any:
    gate = {"no_regression": {"metric": "auc", **spec}}
    refs = {"champion": champion}
    return run(gate, {"version": candidate or version(), "references": refs})


def test_no_champion_yet_passes_and_says_so() -> None:
    result = _regression(None)
    assert result.status is PASSED
    assert result.message == "no champion yet: nothing to compare auc with"


def test_candidate_that_is_the_champion_passes() -> None:
    result = _regression(version(number=2))
    assert result.status is PASSED and "is the champion itself" in result.message


def test_regression_beyond_the_absolute_tolerance_fails() -> None:
    champion = version(number=1, metrics={"auc": 0.85})
    failed = _regression(champion, tolerance=0.01)
    assert failed.status is FAILED
    assert failed.figures["limit"] == pytest.approx(0.84)
    assert failed.figures["change"] == pytest.approx(-0.05)
    assert "churn@1" in failed.message
    assert _regression(champion, tolerance=0.06).status is PASSED


def test_relative_tolerance_and_minimize_direction() -> None:
    champion = version(number=1, metrics={"auc": 0.84, "rmse": 1.0})
    # 5% of 0.84 is 0.042: 0.8 is within it.
    assert _regression(champion, tolerance=0.05, relative=True).status is PASSED
    assert _regression(champion, tolerance=0.04, relative=True).status is FAILED
    worse = version(metrics={"rmse": 1.2})
    gate = {"no_regression": {"metric": "rmse", "direction": "minimize", "tolerance": 0.1}}
    result = run(gate, {"version": worse, "references": {"champion": champion}})
    assert result.status is FAILED and "above the limit 1.1" in result.message


def test_champion_without_the_metric_is_inconclusive_and_candidate_without_it_an_error() -> None:
    champion = version(number=1, metrics={"accuracy": 0.9})
    assert _regression(champion).status is INCONCLUSIVE
    assert _regression(champion, candidate=version(metrics={})).status is ERROR


# -- drift -----------------------------------------------------------------------------------


def _drift(train: pa.Table, recent: pa.Table, ver: Any = None, **spec: Any) -> Any:
    gate = {"drift": {"train": "dataset:customers@1", "reference": "dataset:recent", **spec}}
    datasets = {"dataset:customers@1": train, "dataset:recent": recent}
    return run(gate, {"version": ver or version(), "datasets": datasets})


def test_drift_passes_on_the_same_distribution_and_fails_naming_the_shifted_column() -> None:
    train = customers(3000, seed=1)
    same = _drift(train, customers(3000, seed=2))
    assert same.status is PASSED, same.message
    shifted = _drift(train, customers(3000, seed=2, shift=0.5))
    assert shifted.status is FAILED
    # The label follows charges, so it moves too: every shared column is compared here.
    assert shifted.figures["drifted"] == ["charges", "churned"]
    column = shifted.figures["per_column"]["charges"]
    assert column["drifted"] and column["psi"] > 0.2 and column["ks_d"] > 0.1
    assert "charges" in shifted.message and "PSI" in shifted.message


def test_drift_default_does_not_flag_every_column_of_large_samples() -> None:
    # 200,000 rows a side with differences too small to matter (a 0.01 sd move of charges):
    # every column differs "significantly", none by enough to count as drift.
    big_train = customers(200_000, seed=11)
    big_recent = customers(200_000, seed=12, shift=0.01)
    result = _drift(big_train, big_recent)
    assert result.status is PASSED, result.message
    assert result.figures["rows"] == {"train": 200_000, "reference": 200_000}


def test_drift_compares_the_model_inputs_by_default_and_named_columns_when_given() -> None:
    train = customers(2000, seed=1)
    recent = customers(2000, seed=2)
    with_inputs = version(meta={"feature_names": ["tenure", "charges", "region"]})
    result = _drift(train, recent, with_inputs)
    assert set(result.figures["per_column"]) == {"tenure", "charges", "region"}
    without = _drift(train, recent)
    assert set(without.figures["per_column"]) == {
        "tenure",
        "charges",
        "region",
        "segment",
        "churned",
    }
    picked = _drift(train, recent, columns=["tenure"])
    assert set(picked.figures["per_column"]) == {"tenure"}
    missing = _drift(train, recent.drop_columns(["tenure"]), columns=["tenure"])
    assert missing.status is ERROR
    assert "tenure (not in recent)" in missing.message


def test_drift_ks_method_uses_the_limit_on_its_statistic() -> None:
    train = customers(3000, seed=1)
    shifted = customers(3000, seed=2, shift=0.5)
    # A KS limit above any D seen passes what PSI 0.2 (the default method) fails.
    assert _drift(train, shifted, method="ks", max_psi=0.9).status is PASSED
    assert _drift(train, shifted, method="ks", max_psi=0.05).status is FAILED


# -- robustness --------------------------------------------------------------------------------


def test_robustness_passes_under_small_noise_and_fails_under_large(
    model: Any, holdout: Any
) -> None:
    ctx = {"model": model, "evaluation": holdout}
    small = run({"robustness": {"noise": 0.01, "max_flip_rate": 0.05}}, ctx)
    assert small.status is PASSED, small.message
    assert small.figures["perturbed_columns"] == ["tenure", "charges"]
    assert 0 <= small.figures["flip_rate"] < 0.05
    large = run({"robustness": {"noise": 1.0, "max_flip_rate": 0.01}}, ctx)
    assert large.status is FAILED
    assert large.figures["flip_rate"] > 0.01 and "flipped" in large.message


def test_robustness_metric_drop(model: Any, holdout: Any) -> None:
    ctx = {"model": model, "evaluation": holdout}
    gate = {"noise": 1.0, "max_metric_drop": 0.01, "metric": "auc"}
    result = run({"robustness": gate}, ctx)
    assert result.status is FAILED
    assert result.figures["metric_clean"] > result.figures["metric_noisy"]
    assert result.figures["drop"] > 0.01 and "a drop of" in result.message
    lenient = run({"robustness": {**gate, "max_metric_drop": 0.9}}, ctx)
    assert lenient.status is PASSED


def test_perturb_keeps_types_categories_and_missing_values() -> None:
    table = pa.table(
        {
            "n": pa.array([1, 2, 3, None, 5] * 20, pa.int64()),
            "x": pa.array(np.linspace(0, 1, 100)),
            "c": pa.array(["a", "b"] * 50),
        }
    )
    noisy, changed = perturb(table, ["n", "x", "c"], 0.5, seed=0)
    assert changed == ["n", "x"]
    assert noisy.schema == table.schema
    assert noisy["c"].equals(table["c"])
    assert noisy["n"].null_count == 20
    assert not noisy["x"].equals(table["x"])
    again, _ = perturb(table, ["n", "x", "c"], 0.5, seed=0)
    assert again.equals(noisy)  # seeded


def test_robustness_without_numeric_inputs_is_inconclusive(train: pa.Table, holdout: Any) -> None:
    only_region = predictor(fit(train, ["region"]))
    result = run(
        {"robustness": {"noise": 0.1, "max_flip_rate": 0.05}},
        {"model": only_region, "evaluation": holdout},
    )
    assert result.status is INCONCLUSIVE
    assert "no numeric input column" in result.message


def test_robustness_flip_rate_on_a_regressor_is_inconclusive(train: pa.Table) -> None:
    from sklearn.linear_model import LinearRegression

    frame = train.to_pandas()
    reg = LinearRegression().fit(frame[["tenure", "charges"]], frame["charges"] * 2)
    features = train.select(["tenure", "charges"])
    evaluation = (features, frame["charges"].to_numpy() * 2)
    ctx = {"model": predictor(reg), "evaluation": evaluation}
    flips = run({"robustness": {"noise": 0.1, "max_flip_rate": 0.05}}, ctx)
    assert flips.status is INCONCLUSIVE and "continuous values" in flips.message
    assert flips.figures["mean_abs_change"] > 0
    drop = run({"robustness": {"noise": 0.01, "max_metric_drop": 5.0, "metric": "rmse"}}, ctx)
    assert drop.status is PASSED, drop.message


def test_gate_without_evaluation_data_is_an_error_not_a_failure(model: Any) -> None:
    ms = model_spec([{"robustness": {"noise": 0.1, "max_flip_rate": 0.05}}])
    result = evaluate_gate(ms.gates[0], GateContext(version(), ms, model=model))
    assert result.status is ERROR
    assert result.message == "model 'churn' declares no evaluation data"
    assert result.hint and "evaluation: {data: dataset:NAME" in result.hint


# -- fairness ----------------------------------------------------------------------------------


def test_fairness_reports_every_slice_and_passes_within_the_gap(model: Any, holdout: Any) -> None:
    result = run(
        {"fairness": {"slice": "region", "metric": "auc", "max_gap": 0.3}},
        {"model": model, "evaluation": holdout},
    )
    assert result.status is PASSED, result.message
    slices = result.figures["slices"]
    assert set(slices) == {"north", "south", "east", "west"}
    assert sum(s["rows"] for s in slices.values()) == 1500
    values = [s["value"] for s in slices.values()]
    assert result.figures["gap"] == pytest.approx(max(values) - min(values))


def test_fairness_fails_when_one_slice_is_much_worse(model: Any) -> None:
    table = customers(3000, seed=4, south_noise=0.9)
    evaluation = (table.drop_columns(["churned"]), table["churned"].to_numpy())
    result = run(
        {"fairness": {"slice": "region", "metric": "accuracy", "max_gap": 0.05}},
        {"model": model, "evaluation": evaluation},
    )
    assert result.status is FAILED
    assert result.figures["worst"] == "south"
    assert "region=south" in result.message


def test_fairness_with_slices_too_small_is_inconclusive(model: Any, holdout: Any) -> None:
    # `segment` is not a model input: it is read from the evaluation data. Its "tiny" value
    # has 10 rows, too few to judge, so only one slice is measured.
    result = run(
        {"fairness": {"slice": "segment", "metric": "auc", "max_gap": 0.1}},
        {"model": model, "evaluation": holdout},
    )
    assert result.status is INCONCLUSIVE
    assert result.figures["slices"]["tiny"]["note"].startswith("too few rows")
    assert result.figures["unmeasured"] == ["tiny"]


def test_fairness_one_class_slice_is_left_out_rather_than_judged(model: Any) -> None:
    table = customers(1500, seed=5)
    churned = np.where(
        table["region"].to_numpy(zero_copy_only=False) == "west", 0, table["churned"]
    )
    evaluation = (table.drop_columns(["churned"]), churned)
    result = run(
        {"fairness": {"slice": "region", "metric": "auc", "max_gap": 0.5}},
        {"model": model, "evaluation": evaluation},
    )
    assert result.status is INCONCLUSIVE
    assert result.figures["slices"]["west"]["note"] == "one class only"
    assert "could not be measured: west" in result.message


def test_fairness_slice_column_missing_is_an_error(model: Any, holdout: Any) -> None:
    result = run(
        {"fairness": {"slice": "gender", "metric": "auc", "max_gap": 0.1}},
        {"model": model, "evaluation": holdout},
    )
    assert result.status is ERROR and "no column 'gender'" in result.message


# -- latency -----------------------------------------------------------------------------------


def test_latency_within_and_over_budget(model: Any, holdout: Any) -> None:
    ctx = {"model": model, "evaluation": holdout}
    ok = run({"latency": {"batch": 4, "p50_ms": 10_000, "p99_ms": 10_000}}, ctx)
    assert ok.status is PASSED, ok.message
    assert ok.figures["runs"] >= 20 and 0 < ok.figures["p50_ms"] <= ok.figures["p99_ms"]
    over = run({"latency": {"batch": 1, "p99_ms": 0.0001}}, ctx)
    assert over.status is FAILED and "p99 above 0.0001 ms" in over.message


def test_latency_batch_larger_than_the_data_repeats_rows(model: Any, holdout: Any) -> None:
    features, labels = holdout
    tiny = (features.slice(0, 3), labels[:3])
    result = run({"latency": {"batch": 50, "p99_ms": 10_000}}, {"model": model, "evaluation": tiny})
    assert result.status is PASSED and result.figures["batch"] == 50


# -- scan --------------------------------------------------------------------------------------


def _finding(verdict: str, suspicious: list[str]) -> dict[str, Any]:
    return {
        "findings": [
            {
                "file": "model.skops",
                "verdict": verdict,
                "globals": [{"name": n, "verdict": "suspicious"} for n in suspicious],
                "untrusted_types": [],
            }
        ]
    }


def test_scan_verdicts() -> None:
    assert run({"scan": True}).status is PASSED
    suspicious = version(
        scan_verdict="suspicious", scan_report=_finding("suspicious", ["acme.Model"])
    )
    failed = run({"scan": True}, {"version": suspicious})
    assert failed.status is FAILED and "acme.Model" in failed.message
    trusted = run({"scan": {"trusted": ["acme.Model"]}}, {"version": suspicious})
    assert trusted.status is PASSED and "trusted by the gate" in trusted.message
    dangerous = version(scan_verdict="dangerous", scan_report=_finding("dangerous", []))
    bad = run({"scan": {"trusted": ["acme.Model"]}}, {"version": dangerous})
    assert bad.status is FAILED and "dangerous content in model.skops" in bad.message
    assert run({"scan": True}, {"version": version(scan_verdict="error")}).status is ERROR


# -- isolation -----------------------------------------------------------------------------------


class BrokenModel:
    """A model whose predict() raises, as a buggy custom predictor would."""

    flavor = "python"
    input_names: list[str] | None = None
    has_proba = False

    def predict(self, data: Any) -> Any:
        raise RuntimeError("the model's own code crashed\nsecond line")


def test_a_crashing_gate_is_an_error_and_the_others_still_run(holdout: Any) -> None:
    ms = model_spec(
        [
            {"robustness": {"noise": 0.1, "max_flip_rate": 0.05}},
            {"metric": "auc", "min": 0.7},
            {"latency": {"batch": 1, "p99_ms": 100}, "required": False},
        ]
    )
    ctx = GateContext(version(), ms, model=BrokenModel(), evaluation=holdout)
    results = evaluate_gates(ms.gates, ctx)
    assert [r.status for r in results] == [ERROR, PASSED, ERROR]
    assert results[0].message == "RuntimeError: the model's own code crashed"
    assert results[0].figures["exception"] == "RuntimeError"
    assert results[2].required is False
    assert all(r.duration_s >= 0 for r in results)
