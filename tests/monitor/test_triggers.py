"""Retraining triggers on the churn example: breached windows fire one trigger that
snapshots the data, runs the pipeline, gates and promotes the new version as a commit; the
cool-down and a trigger in flight hold further breaches back; a failed run or a policy that
wants a person stop the trigger and say so, with serving untouched."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from seaway._util import utcnow
from seaway.audit.log import list_events
from seaway.monitor.triggers import check_triggers, list_triggers, update_triggers
from seaway.monitor.windows import store_window
from seaway.project import Project

MONITORING = """
monitoring:
  churn-classifier:
    window: {{rows: 100}}
    on_drift: {{psi_above: 0.2, windows: 2, cooldown: 1h, retrain: {pipeline}, promote_to: prod}}
"""

BROKEN_PIPELINE = """
  broken:
    steps:
      fail:
        run: churn.steps:does_not_exist
        inputs: {raw: "dataset:customers"}
        outputs: [out]
    register: {model: churn-classifier, from: fail.out, flavor: sklearn}
"""


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def _project(root: Path, monkeypatch: pytest.MonkeyPatch, *, pipeline: str = "train") -> Project:
    from seaway.data.datasets import add
    from seaway.gitops.promote import promote
    from seaway.gitops.reconcile import sync
    from seaway.init import init_project
    from seaway.pipeline import run_pipeline

    init_project(root, name="churn", example_data=True)
    spec = (root / "seaway.yaml").read_text()
    if pipeline == "broken":
        spec = spec.replace("\nmodels:", BROKEN_PIPELINE + "\nmodels:", 1)
    spec = spec.split("\nmonitoring:")[0] + MONITORING.format(pipeline=pipeline)
    (root / "seaway.yaml").write_text(spec)
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "example")
    monkeypatch.chdir(root)
    project = Project(root)
    add(project, "customers")
    run = run_pipeline(project, "train")
    assert run.tags["seaway.registered"] == "churn-classifier@1"
    from seaway.gates import run_gates

    assert run_gates(project, "churn-classifier@1").passed
    promote(project, "churn-classifier@1", "prod")
    sync(project, environment="prod")
    return project


def _breach(project: Project, number: int, count: int, *, score: float = 0.6) -> list[int]:
    ids = []
    for _ in range(count):
        now = utcnow()

        def write(conn: Any, now: Any = now) -> int:
            w = store_window(
                conn,
                model="churn-classifier",
                number=number,
                kind="drift",
                window_start=now - timedelta(seconds=5),
                window_end=now,
                first_id=1,
                last_id=2,
                rows=100,
                score=score,
                breached=score > 0.2,
                figures={"drifted": ["tenure"], "threshold": 0.2},
            )
            return w.id

        ids.append(project.metadata.run_write(write))
    return ids


@pytest.fixture
def store_url(metadata_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SEAWAY_METADATA_URL", metadata_url)
    monkeypatch.setenv("SEAWAY_ACTOR", "monitor")
    return metadata_url


def test_new_data_retrains_gates_and_promotes_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_url: str
) -> None:
    from seaway.example import write_customers

    project = _project(tmp_path / "p", monkeypatch)
    _breach(project, 1, 1)
    assert check_triggers(project, "churn-classifier") is None  # one window is not enough
    windows = _breach(project, 1, 1)
    write_customers(project.root, rows=6000, seed=21, drift=1.0)
    hops: list[str] = []
    trigger = check_triggers(project, "churn-classifier", on_hop=lambda h, d: hops.append(h))
    assert trigger is not None
    assert trigger.status == "promoted", trigger.message
    assert trigger.version == 2 and trigger.environment == "prod"
    assert windows[-1] in trigger.windows
    assert hops == ["snapshot", "run", "registered", "gated", "promoted"]
    # The promotion is a commit on the environment file, naming the trigger.
    log = _git(project.root, "log", "-1", "--format=%H %B", "--", "environments/prod.yaml")
    assert log.startswith(trigger.commit or "-") and f"Trigger #{trigger.id}" in log
    assert "version: 2" in (project.root / "environments" / "prod.yaml").read_text()
    # Every hop is an event linked to the trigger.
    kinds = [
        e.kind
        for e in sorted(list_events(project, kind="trigger"), key=lambda e: e.seq)
        if (e.data or {}).get("trigger") == trigger.id
    ]
    assert kinds[:1] == ["trigger.started"] and "trigger.promoted" in kinds
    assert {"trigger.snapshot", "trigger.run", "trigger.registered", "trigger.gated"} <= set(kinds)
    # The newest data became a dataset version the run used.
    assert trigger.details["datasets"] == [{"ref": "customers@2", "created": True}]
    # More breaches while the trigger is in flight start nothing.
    _breach(project, 1, 3)
    assert check_triggers(project, "churn-classifier") is None
    assert len(list_triggers(project, "churn-classifier")) == 1
    # Before @2 goes out, a person rolls @1 out again: the trigger's version will never
    # serve, so it ends and frees the model for the next breach.
    from seaway.rollout.records import start_rollout
    from seaway.spec.environment import StrategySpec

    assert update_triggers(project) == []  # @2 not rolled out yet: still in flight
    start_rollout(
        project,
        "prod",
        "churn-classifier",
        stable=1,
        candidate=1,
        strategy=StrategySpec.model_validate("direct"),
        git_revision=None,
    )
    (ended,) = update_triggers(project)
    assert ended.id == trigger.id and ended.status == "superseded"
    assert ended.message == "@1 was rolled out to prod before @2 (rollout #2)"


def test_cooldown_holds_back_a_second_trigger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(tmp_path / "p", monkeypatch)
    _breach(project, 1, 2)
    first = check_triggers(project, "churn-classifier")
    # Same data, all steps cached: the run gives back version 1.
    assert first is not None and first.status == "unchanged", first
    _breach(project, 1, 2)
    assert check_triggers(project, "churn-classifier") is None  # inside the hour
    later = utcnow() + timedelta(hours=2)
    second = check_triggers(project, "churn-classifier", now=later, execute=False)
    assert second is not None and second.status == "started"
    assert second.windows != first.windows


def test_failed_run_is_recorded_and_serving_is_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seaway.serving.routes import load_table

    project = _project(tmp_path / "p", monkeypatch, pipeline="broken")
    before = [(d.number, d.weight) for d in load_table(project).for_model("churn-classifier")]
    prod = (project.root / "environments" / "prod.yaml").read_text()
    _breach(project, 1, 2)
    trigger = check_triggers(project, "churn-classifier")
    assert trigger is not None and trigger.status == "failed"
    assert trigger.message is not None and trigger.message.startswith("run failed")
    failed = [e for e in list_events(project, kind="trigger.failed")]
    assert failed and failed[-1].data["trigger"] == trigger.id
    assert [(d.number, d.weight) for d in load_table(project).for_model("churn-classifier")] == (
        before
    )
    assert (project.root / "environments" / "prod.yaml").read_text() == prod
    assert update_triggers(project) == []


def test_a_policy_asking_for_approval_stops_the_trigger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seaway.example import write_customers

    # Version 1 went to prod before prod asked for approvals.
    project = _approved_project(tmp_path / "p", monkeypatch)
    write_customers(project.root, rows=6000, seed=21, drift=1.0)
    _breach(project, 1, 2)
    trigger = check_triggers(project, "churn-classifier")
    assert trigger is not None and trigger.status == "awaiting_approval", trigger
    assert trigger.version == 2
    assert "seaway approve churn-classifier@2" in (trigger.message or "")
    assert "version: 1" in (project.root / "environments" / "prod.yaml").read_text()


def _approved_project(root: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    _project(root, monkeypatch)
    prod = root / "environments" / "prod.yaml"
    text = prod.read_text().replace("deployments:", "requires: {approval: true}\ndeployments:", 1)
    prod.write_text(text)
    _git(root, "commit", "-qam", "prod needs an approval")
    return Project(root)
