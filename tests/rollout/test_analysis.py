"""The analysis on its own: constructed live figures in, a verdict a person can read out."""

from __future__ import annotations

from datetime import datetime

import pytest

from seaway.errors import StoreError
from seaway.rollout.analysis import analyse, measure
from seaway.spec.environment import AnalysisSpec
from tests.rollout import (
    SHIFTED_SCORES,
    STABLE_SCORES,
    T0,
    FakeFigures,
    canary_rollout,
    healthy,
    make_figures,
)


def spec(**limits: object) -> AnalysisSpec:
    return AnalysisSpec.model_validate({"min_requests": 100, **limits})


def test_too_few_requests_is_inconclusive_not_successful() -> None:
    result = analyse(spec(max_error_rate=0.01), make_figures(2, requests=40), healthy(1))
    assert result.outcome == "Inconclusive"
    assert result.requests == 40
    assert "40 of the 100 requests" in result.message


def test_no_traffic_never_reads_as_a_zero_error_rate() -> None:
    result = analyse(spec(max_error_rate=0.01, min_requests=0), make_figures(2, requests=0), None)
    # Zero requests must never read as a 0% error rate.
    assert result.outcome == "Successful"
    (check,) = result.checks
    assert check.value is None and check.passed is None
    assert "error_rate skipped" in result.message


def test_error_rate_over_the_limit_fails_and_names_both_versions() -> None:
    result = analyse(
        spec(max_error_rate=0.05), make_figures(2, requests=200, errors=30), healthy(1)
    )
    assert result.outcome == "Failed"
    (check,) = result.failed_checks
    assert check.name == "error_rate"
    assert check.value == pytest.approx(0.15)
    assert check.stable == 0.0
    assert "error_rate 0.15 > 0.05 (stable 0)" in result.message


def test_error_rate_within_the_limit_succeeds() -> None:
    result = analyse(spec(max_error_rate=0.05), make_figures(2, requests=200, errors=2), None)
    assert result.outcome == "Successful"
    assert result.checks[0].passed is True


def test_latency_limits_are_in_milliseconds() -> None:
    slow = make_figures(2, requests=300, latency_s=0.080)
    result = analyse(spec(max_p50_ms=50, max_p99_ms=100), slow, healthy(1))
    by_name = {c.name: c for c in result.checks}
    # The histogram is exact to within about 4.4%.
    assert by_name["p50_ms"].value == pytest.approx(80, rel=0.05)
    assert by_name["p50_ms"].passed is False
    assert by_name["p99_ms"].passed is True
    assert by_name["p50_ms"].stable == pytest.approx(4, rel=0.05)
    assert result.outcome == "Failed"


def test_shifted_predictions_fail_on_psi_although_every_answer_was_ok() -> None:
    shifted = make_figures(2, requests=400, scores=SHIFTED_SCORES)
    result = analyse(spec(max_error_rate=0.01, max_prediction_psi=0.2), shifted, healthy(1))
    assert result.outcome == "Failed"
    assert [c.name for c in result.failed_checks] == ["prediction_psi"]
    assert result.checks[0].passed is True  # the error rate was fine


def test_same_predictions_pass_psi() -> None:
    same = make_figures(2, requests=400, scores=STABLE_SCORES)
    result = analyse(spec(max_prediction_psi=0.2), same, healthy(1))
    assert result.outcome == "Successful"
    assert result.checks[0].value == pytest.approx(0.0, abs=1e-9)


def test_psi_is_skipped_and_said_without_stable_or_without_sketches() -> None:
    no_stable = analyse(spec(max_prediction_psi=0.2), healthy(2), None)
    assert no_stable.checks[0].passed is None
    assert "no stable version to compare predictions with" in no_stable.message
    no_sketch = analyse(spec(max_prediction_psi=0.2), make_figures(2, requests=200), healthy(1))
    assert no_sketch.checks[0].passed is None
    assert "no prediction sketch shared" in no_sketch.message
    assert no_sketch.outcome == "Successful"


def test_class_flip_rate_only_from_compared_shadow_pairs() -> None:
    flipping = make_figures(2, requests=200, agreed=150, disagreed=50)
    result = analyse(spec(max_class_flip_rate=0.1), flipping, healthy(1))
    assert result.outcome == "Failed"
    assert result.checks[0].value == pytest.approx(0.25)
    agreeing = make_figures(2, requests=200, agreed=196, disagreed=4)
    assert analyse(spec(max_class_flip_rate=0.1), agreeing, None).outcome == "Successful"
    unpaired = analyse(spec(max_class_flip_rate=0.1), make_figures(2, requests=200), None)
    assert unpaired.checks[0].passed is None
    assert "no mirrored requests compared" in unpaired.message


def test_result_to_dict_is_json_ready() -> None:
    import json

    result = analyse(spec(max_error_rate=0.01, max_prediction_psi=0.1), healthy(2), None)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["outcome"] == "Successful"
    assert {c["name"] for c in data["checks"]} == {"error_rate", "prediction_psi"}


def test_measure_reads_both_versions_since_the_given_time() -> None:
    source = FakeFigures({1: healthy(1), 2: make_figures(2, requests=300, errors=100)})
    since = datetime(2026, 11, 2, 9, 5, tzinfo=T0.tzinfo)
    result = measure(None, canary_rollout(), spec(max_error_rate=0.1), since=since, figures=source)  # type: ignore[arg-type]
    assert result.outcome == "Failed"
    assert sorted(source.reads) == [(1, since), (2, since)]


def test_measure_turns_a_read_failure_into_an_error_outcome() -> None:
    source = FakeFigures({2: StoreError("cannot reach the metadata database")})
    result = measure(None, canary_rollout(), spec(max_error_rate=0.1), since=T0, figures=source)  # type: ignore[arg-type]
    assert result.outcome == "Error"
    assert "cannot reach the metadata database" in result.message
