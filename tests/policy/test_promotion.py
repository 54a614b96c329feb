"""The promotion request built from a registered version (gates, signature, scan, aliases,
approvals, the asking identity) and the recorded decision on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from seaway.errors import UsageError
from seaway.policy import authenticate, build_request, create_token, evaluate_promotion
from seaway.project import Project
from tests.policy.identity_support import TEAM_SPEC, events, register_version, team_project

SPEC = (
    TEAM_SPEC
    + """\
  - name: prod-needs-signed-gated
    when: 'environment == "prod"'
    require: 'version.signed && gates.passed && version.metrics.auc >= 0.8'
    message: "prod takes signed versions that passed their gates"
models:
  churn:
    gates:
      - {metric: auc, min: 0.8}
      - {metric: accuracy, min: 0.9, required: false}
"""
)


@pytest.fixture
def team(project_dir: Path, store_env: str, monkeypatch: pytest.MonkeyPatch) -> Project:
    p = team_project(project_dir, monkeypatch, spec=SPEC)
    yield p  # type: ignore[misc]
    p.close()


@pytest.fixture
def version(team: Project, tmp_path: Path) -> Any:
    return register_version(team, tmp_path, metrics={"auc": 0.86, "accuracy": 0.7})


def test_facts_of_a_fresh_version_count_against_it(team: Project, version: Any) -> None:
    request = build_request(team, "churn@1", "prod")
    assert (request.environment, request.model, request.actor) == ("prod", "churn", "alice")
    assert set(request.roles) == {"ml-engineer", "release-manager", "staging-approver", "admin"}
    facts = request.version
    assert (facts.number, facts.author, facts.scan) == (1, "alice", "safe")
    assert facts.metrics == {"auc": 0.86, "accuracy": 0.7}
    assert not facts.signed
    assert 0 <= facts.age_hours < 0.1
    assert facts.aliases == []
    # No gate report yet: the gates have not passed.
    assert not request.gates.passed and request.gates.results == []
    assert request.approvals == []

    decision = evaluate_promotion(team, "churn@1", "prod", record=False)
    assert set(decision.blocked_by) == {"prod-needs-approval", "prod-needs-signed-gated"}
    assert events(team, "policy.decision") == []


def test_gates_signature_aliases_and_approvals_reach_the_policies(
    team: Project, version: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seaway.gates import run_gates
    from seaway.policy import approve
    from seaway.registry import set_alias
    from seaway.registry.keys import generate_keys
    from seaway.registry.signing import sign_version

    report = run_gates(team, "churn@1")
    assert report.passed  # the accuracy gate fails, but it is not required
    (tmp_path / "keys").mkdir()
    generate_keys(tmp_path / "keys" / "signing.pem")
    sign_version(team, "churn@1", tmp_path / "keys" / "signing.pem")
    set_alias(team, "churn@1", "champion")
    approve(team, "churn@1", "staging", role="release-manager", comment="staging only")

    # Bob approves prod and asks for the promotion, with his token.
    _, root = create_token(team, "root", ["admin"])
    _, bob = create_token(team, "bob", ["release-manager"], identity=authenticate(team, root))
    monkeypatch.setenv("SEAWAY_TOKEN", bob)
    approve(team, "churn@1", "prod", comment="ship it")

    request = build_request(team, "churn@champion", "prod")
    assert request.version.signed and request.version.aliases == ["champion"]
    assert request.gates.passed
    assert [(g.name, g.kind, g.status, g.required) for g in request.gates.results] == [
        (report.results[0].name, "metric", "passed", True),
        (report.results[1].name, "metric", "failed", False),
    ]
    # Only the approvals for the environment asked about.
    assert [(a.actor, a.role, a.comment) for a in request.approvals] == [
        ("bob", "release-manager", "ship it")
    ]
    assert (request.actor, request.roles) == ("bob", ["release-manager"])

    decision = evaluate_promotion(team, "churn@champion", "prod")
    assert decision.allowed
    [event] = events(team, "policy.decision")
    assert (event.actor, event.subject) == ("bob", "model:churn@1")
    assert event.data["environment"] == "prod" and event.data["allowed"] is True
    assert {p["policy"]: p["passed"] for p in event.data["policies"]} == {
        "prod-needs-approval": True,
        "scanned": True,
        "prod-needs-signed-gated": True,
    }


def test_a_policy_that_does_not_apply_is_reported_as_such(team: Project, version: Any) -> None:
    decision = evaluate_promotion(team, "churn@1", "staging")
    assert decision.allowed
    applies = {o.policy: o.applies for o in decision.outcomes}
    assert applies == {
        "prod-needs-approval": False,
        "scanned": True,
        "prod-needs-signed-gated": False,
    }
    [event] = events(team, "policy.decision")
    assert event.data["environment"] == "staging" and event.actor == "alice"


def test_an_unknown_environment_is_a_usage_error(team: Project, version: Any) -> None:
    with pytest.raises(UsageError, match="no environment 'qa'"):
        build_request(team, "churn@1", "qa")
