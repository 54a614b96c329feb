"""`seaway monitor status|check|reference|report` on SQLite and PostgreSQL: their JSON, their
words for people, and their exit codes."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from seaway.project import Project
from tests.monitor.test_drift import (
    FEATURES,
    T0,
    customers,
    log_traffic,
    register_churn,
    shifted,
    with_reference,
    write_spec,
)


def test_status_says_why_there_is_no_window_yet(project: Project, tmp_path: Path, cli: Any) -> None:
    register_churn(project, tmp_path)  # no training data anywhere: no reference

    result = cli("monitor", "status", "churn", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["model"] == "churn" and doc["threshold"] == 0.2 and not doc["breached"]
    (version,) = doc["versions"]
    assert version["version"] == 1 and version["window"] is None
    assert version["reason"].startswith("no traffic logged")

    log_traffic(project, customers(200, seed=1))
    (version,) = json.loads(cli("monitor", "status", "churn", "--json").stdout)["versions"]
    assert version["reason"].startswith("no reference profile")
    assert "seaway monitor reference churn@1" in version["reason"]
    assert version["pending_requests"] == 10  # requests

    text = cli("monitor", "status", "churn")
    assert text.exit_code == 0
    assert "churn@1: no window yet: no reference profile" in text.stdout


def test_reference_builds_from_a_file_and_refuses_what_it_cannot_use(
    project: Project, tmp_path: Path, cli: Any
) -> None:
    register_churn(project, tmp_path)
    without = cli("monitor", "reference", "churn@1")
    assert without.exit_code == 2
    assert "no training data found for churn@1" in without.stderr
    assert "hint: seaway monitor reference churn@1 --data FILE" in without.stderr

    data = tmp_path / "train.parquet"
    pq.write_table(customers(1500, seed=0), data)
    result = cli("monitor", "reference", "churn@1", "--data", data, "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["rows"] == 1500 and doc["source"] == str(data)
    assert list(doc["features"]) == FEATURES and doc["predictions"] == {"predict_proba": "numeric"}

    csv = tmp_path / "train.csv"
    csv.write_text("tenure,monthly_charges\n1,2\n")
    short = cli("monitor", "reference", "churn@1", "--data", csv)
    assert short.exit_code == 2 and "lacks its inputs support_calls, region" in short.stderr
    missing = cli("monitor", "reference", "churn@1", "--data", tmp_path / "nope.parquet")
    assert missing.exit_code == 2 and "no such file" in missing.stderr
    unknown = cli("monitor", "reference", "churn@7", "--data", data)
    assert unknown.exit_code == 2

    text = cli("monitor", "reference", "churn@1", "--data", data)
    assert text.exit_code == 0
    assert text.stdout.startswith("churn@1: profiled 1500 rows of")


def test_check_exits_one_on_a_breach_and_status_shows_the_newest_window(
    project: Project, tmp_path: Path, cli: Any
) -> None:
    with_reference(project, tmp_path)
    log_traffic(project, customers(1000, seed=2))

    calm = cli("monitor", "check", "churn", "--json")
    assert calm.exit_code == 0, calm.stderr
    (window,) = json.loads(calm.stdout)["windows"]
    assert window["rows"] == 1000 and window["breached"] is False
    nothing = cli("monitor", "check", "churn")
    assert (nothing.exit_code, nothing.stdout.strip()) == (
        0,
        "no new complete window of churn to score",
    )

    assert cli("monitor", "check", "nobody").exit_code == 2

    log_traffic(project, shifted(customers(1000, seed=3)), start=T0 + timedelta(hours=1))
    moved = cli("monitor", "check", "churn")
    assert moved.exit_code == 1
    assert "breached" in moved.stdout and "tenure" in moved.stdout

    doc = json.loads(cli("monitor", "status", "churn", "--json").stdout)
    assert doc["breached"] is True
    (version,) = doc["versions"]
    assert version["window"]["id"] == window["id"] + 1 and version["reason"] is None
    columns = {c["name"]: c for c in version["columns"]}
    assert list(columns) == [*FEATURES, "predict_proba"]
    assert columns["tenure"]["drifted"] and columns["monthly_charges"]["drifted"]
    assert not columns["region"]["drifted"] and columns["region"]["ks"] is None
    assert columns["predict_proba"]["role"] == "prediction"

    text = cli("monitor", "status", "churn")
    assert text.exit_code == 0
    for word in ("window #2", "breached", "PSI", "chi² p", "tenure", "predict_proba"):
        assert word in text.stdout, word


def test_status_of_an_environment_reads_its_file(
    project: Project, tmp_path: Path, cli: Any
) -> None:
    with_reference(project, tmp_path)
    register_churn(project, tmp_path, C=0.5)
    envs = project.root / "environments"
    envs.mkdir()
    (envs / "prod.yaml").write_text("deployments:\n  churn: {version: 1}\n")
    (envs / "staging.yaml").write_text("deployments:\n  other: {version: 1}\n")

    doc = json.loads(cli("monitor", "status", "churn", "--env", "prod", "--json").stdout)
    assert doc["environment"] == "prod"
    assert [v["version"] for v in doc["versions"]] == [1]
    # Without --env: nothing served or logged yet, so the newest version.
    doc = json.loads(cli("monitor", "status", "churn", "--json").stdout)
    assert [v["version"] for v in doc["versions"]] == [2]

    assert cli("monitor", "status", "churn", "--env", "staging").exit_code == 2
    assert cli("monitor", "status", "churn", "--env", "nowhere").exit_code == 2
    assert cli("monitor", "status", "nobody").exit_code == 2


def test_report_writes_the_html_file(project: Project, tmp_path: Path, cli: Any) -> None:
    with_reference(project, tmp_path)
    log_traffic(project, customers(1000, seed=4))
    assert cli("monitor", "check", "churn").exit_code == 0

    out = tmp_path / "reports" / "churn.html"
    result = cli("monitor", "report", "churn", "--out", out, "--since", "3650d", "--top", "2")
    assert result.exit_code == 0, result.stderr
    assert out.is_file() and str(out) in result.stdout
    bad = cli("monitor", "report", "churn", "--out", out, "--since", "soon")
    assert bad.exit_code == 2 and "not a duration" in bad.stderr


def test_run_once_scores_windows_and_fires_an_alert_only_trigger(
    project: Project, tmp_path: Path, cli: Any
) -> None:
    with_reference(project, tmp_path)
    write_spec(
        project,
        "monitoring:\n  churn:\n    window: {rows: 500}\n"
        "    on_drift: {psi_above: 0.2, windows: 2}\n",
    )
    assert json.loads(cli("monitor", "triggers", "--json").stdout) == {"triggers": []}
    assert cli("monitor", "triggers").stdout.strip() == "no trigger has fired"
    log_traffic(project, shifted(customers(1000, seed=3)))

    result = cli("monitor", "run", "--once", "--json")
    assert result.exit_code == 0, result.stderr
    tick = json.loads(result.stdout)
    assert [w["breached"] for w in tick["drift"]] == [True, True]
    (fired,) = tick["fired"]
    # No pipeline named: the trigger alerts and ends there.
    assert fired["status"] == "alerted" and fired["pipeline"] is None
    assert len(fired["windows"]) == 2

    again = cli("monitor", "run", "--once")
    assert again.exit_code == 0 and again.stdout == ""  # nothing new to score or fire
    listed = cli("monitor", "triggers", "churn")
    assert listed.stdout.startswith(f"#{fired['id']} churn drift alerted")
    assert "drift in 2 consecutive windows of @1" in listed.stdout
