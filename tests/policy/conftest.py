"""Policies and requests shared by the policy tests: the example from DESIGN.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from seaway.project import Project
from seaway.spec.models import PolicySpec
from tests.policy.identity_support import team_project

DESIGN_POLICY = {
    "name": "prod-needs-approval",
    "when": 'environment == "prod"',
    "require": 'version.signed && gates.passed && approvals.exists(a, a.role == "release-manager"'
    " && a.actor != version.author)",
    "message": "prod needs a signed version that passed its gates and a release manager's approval",
}


@pytest.fixture
def design_policy() -> PolicySpec:
    return PolicySpec.model_validate(DESIGN_POLICY)


@pytest.fixture
def good_request() -> dict[str, Any]:
    """A prod promotion the DESIGN policy allows."""
    return {
        "environment": "prod",
        "model": "churn-classifier",
        "actor": "alice",
        "roles": ["ml-engineer"],
        "version": {
            "number": 7,
            "author": "alice",
            "signed": True,
            "metrics": {"auc": 0.91},
            "scan": "safe",
            "age_hours": 5,
        },
        "gates": {
            "passed": True,
            "results": [{"name": "auc>=0.8", "kind": "metric", "status": "passed"}],
        },
        "approvals": [{"actor": "bob", "role": "release-manager", "comment": "ok"}],
    }


@pytest.fixture
def team(project_dir: Path, store_env: str, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A project with roles declared, on SQLite or PostgreSQL (test_promotion overrides it
    with a spec of its own)."""
    p = team_project(project_dir, monkeypatch)
    yield p  # type: ignore[misc]
    p.close()
