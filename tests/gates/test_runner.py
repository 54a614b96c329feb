"""`run_gates` on registered versions: reports stored with an audit event (SQLite and
PostgreSQL), champions, missing data, crashes, partial runs and the signature gate."""

from __future__ import annotations

import pyarrow as pa
import pytest

from seaway.audit.log import list_events
from seaway.errors import NotFound, UsageError
from seaway.gates import GateStatus, latest_report, reports, run_gates
from seaway.registry import get_version, set_alias
from tests.gates.support import DEFAULT_GATES, Setup, customers, fit, write_spec

PASSED, FAILED = GateStatus.PASSED, GateStatus.FAILED
INCONCLUSIVE, ERROR = GateStatus.INCONCLUSIVE, GateStatus.ERROR


def statuses(report: object) -> dict[str, GateStatus]:
    return {r.kind: r.status for r in report.results}  # type: ignore[attr-defined]


def test_gates_run_and_the_report_is_stored_with_an_event(churn: Setup) -> None:
    project = churn.project
    report = run_gates(project, "churn@1", actor="alice")
    assert statuses(report) == {
        "metric": PASSED,
        "no_regression": PASSED,
        "drift": PASSED,
        "robustness": PASSED,
        "fairness": PASSED,
        "latency": PASSED,
        "scan": PASSED,
    }, [r.message for r in report.results]
    assert report.passed and report.ref == "churn@1" and report.actor == "alice"

    version = get_version(project, "churn@1")
    stored = latest_report(project, version)
    assert stored is not None
    assert stored.to_dict()["results"] == report.to_dict()["results"]
    assert stored.passed and stored.actor == "alice"
    (event,) = list_events(project, kind="model.gate")
    assert (event.subject, event.actor) == ("model:churn@1", "alice")
    assert event.data is not None and event.data["passed"] is True
    assert [g["status"] for g in event.data["gates"]] == ["passed"] * 7
    assert event.data["gates"][0]["name"] == "auc>=0.7"


def test_regression_against_the_champion_blocks_and_reports_accumulate(churn: Setup) -> None:
    project = churn.project
    set_alias(project, "churn@1", "champion")
    worse = churn.register("churn", fit(customers(400, seed=9), ["tenure"]), metrics={"auc": 0.7})
    assert worse.number == 2
    version = get_version(project, "churn@2")
    first = run_gates(project, "churn@2", only=["no_regression"])
    assert first.only == ["no_regression"] and first.partial
    # A partial run says nothing about the other gates: it is never "the" report.
    assert latest_report(project, version) is None
    partial = latest_report(project, version, include_partial=True)
    assert partial is not None and partial.only == ["no_regression"]

    second = run_gates(project, "churn@2")
    assert not second.passed
    assert statuses(second)["no_regression"] is FAILED
    assert "vs 0.8 for the champion (churn@1)" in second.results[1].message
    assert [b.kind for b in second.blocking] == ["no_regression"]
    history = reports(project, version)
    assert [r.partial for r in history] == [False, True]  # newest first
    latest = latest_report(project, version)
    assert latest is not None and not latest.passed and latest.created_at.tzinfo is not None
    # The champion itself passes against itself.
    assert statuses(run_gates(project, "churn@champion"))["no_regression"] is PASSED


def test_missing_evaluation_data_is_an_error_and_the_other_gates_still_run(
    churn_sqlite: Setup,
) -> None:
    models = {
        "churn": {
            "evaluation": {"data": "dataset:nowhere", "target": "churned"},
            "gates": DEFAULT_GATES,
        }
    }
    write_spec(churn_sqlite.root, models)
    churn_sqlite.reload()
    report = run_gates(churn_sqlite.project, "churn@1")
    got = statuses(report)
    assert got["robustness"] is got["fairness"] is got["latency"] is ERROR
    assert got["metric"] is got["drift"] is got["scan"] is PASSED
    assert not report.passed
    robustness = next(r for r in report.results if r.kind == "robustness")
    assert robustness.message == "dataset:nowhere: unknown dataset 'nowhere'"
    assert robustness.hint


def test_a_model_that_crashes_on_the_data_does_not_stop_the_run(churn_sqlite: Setup) -> None:
    # Charges as text: scikit-learn raises inside predict(), an exception seaway did not
    # foresee. It becomes that gate's error; the gates that do not predict still pass.
    bad = customers(500, seed=3)
    text = pa.array([f"{v:.2f} EUR" for v in bad["charges"].to_pylist()])
    bad = bad.set_column(1, "charges", text)
    churn_sqlite.add_data("holdout", bad)
    report = run_gates(churn_sqlite.project, "churn@1", only=["metric", "robustness", "scan"])
    got = statuses(report)
    assert got == {"metric": PASSED, "robustness": ERROR, "scan": PASSED}
    crashed = report.results[1]
    assert crashed.message.startswith("ValueError: ")
    assert "Traceback" not in crashed.message


def test_bad_references_and_models_without_gates(churn_sqlite: Setup) -> None:
    project = churn_sqlite.project
    with pytest.raises(NotFound):
        run_gates(project, "churn@9")
    with pytest.raises(NotFound):
        run_gates(project, "nope@1")
    with pytest.raises(UsageError, match="unknown gate kind 'speed'"):
        run_gates(project, "churn@1", only=["speed"])
    write_spec(churn_sqlite.root, {"churn": {"gates": [{"metric": "auc", "min": 0.5}]}})
    churn_sqlite.reload()
    with pytest.raises(UsageError, match="declares no drift gate"):
        run_gates(project, "churn@1", only=["drift"])
    write_spec(churn_sqlite.root, {"churn": {"description": "no gates"}})
    churn_sqlite.reload()
    with pytest.raises(UsageError, match="model 'churn' declares no gates") as info:
        run_gates(project, "churn@1")
    assert info.value.hint and "models.churn.gates" in info.value.hint
    assert latest_report(project, get_version(project, "churn@1")) is None


def test_signature_gate_unsigned_then_signed(churn_sqlite: Setup) -> None:
    from seaway.registry.keys import generate_keys
    from seaway.registry.signing import sign_version

    project, root = churn_sqlite.project, churn_sqlite.root
    write_spec(root, {"churn": {"gates": [{"signature": True}]}})
    churn_sqlite.reload()
    unsigned = run_gates(project, "churn@1").results[0]
    assert unsigned.status is FAILED and unsigned.message == "churn@1 is not signed"
    assert unsigned.hint and "seaway sign churn@1" in unsigned.hint

    (root / "keys").mkdir()
    generate_keys(root / "keys" / "release.key")
    sign_version(project, "churn@1", root / "keys" / "release.key")
    stored_key = run_gates(project, "churn@1").results[0]
    assert stored_key.status is PASSED
    assert stored_key.figures["trusted"] is False and "not trusted" in stored_key.message

    write_spec(root, {"churn": {"gates": [{"signature": {"key": "keys/release.pub"}}]}})
    churn_sqlite.reload()
    trusted = run_gates(project, "churn@1").results[0]
    assert trusted.status is PASSED and trusted.figures["trusted"] is True

    generate_keys(root / "keys" / "other.key")
    write_spec(root, {"churn": {"gates": [{"signature": {"key": "keys/other.pub"}}]}})
    churn_sqlite.reload()
    wrong = run_gates(project, "churn@1").results[0]
    assert wrong.status is FAILED and "is not signed with" in wrong.message
