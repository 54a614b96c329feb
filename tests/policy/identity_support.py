"""Helpers shared by the identity, token, approval and promotion tests (not a test module).

The spec is a small team's: engineers register, release managers approve prod, an admin
manages tokens, and prod needs a release manager's approval from someone other than the
version's author.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from seaway.project import Project

TEAM_SPEC = """\
name: demo
roles:
  ml-engineer: [run, register, "promote:staging"]
  release-manager: [approve, "promote:prod", alias]
  staging-approver: ["approve:staging"]
  admin: [admin]
policies:
  - name: prod-needs-approval
    when: 'environment == "prod"'
    require: 'approvals.exists(a, a.role == "release-manager" && a.actor != version.author)'
    message: "prod needs a release manager's approval from someone other than the author"
  - name: scanned
    when: 'true'
    require: 'version.scan == "safe"'
"""

IDENTITY_ENV = ("SEAWAY_TOKEN", "SEAWAY_ROLES", "SEAWAY_ACTOR")


def clean_identity_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in IDENTITY_ENV:
        monkeypatch.delenv(name, raising=False)


def team_project(root: Path, monkeypatch: pytest.MonkeyPatch, spec: str = TEAM_SPEC) -> Project:
    """A project with TEAM_SPEC whose local user is alice, on the parametrised store."""
    (root / "seaway.yaml").write_text(spec)
    (root / "environments").mkdir(exist_ok=True)
    for env in ("staging", "prod"):
        (root / "environments" / f"{env}.yaml").write_text("target: local\n")
    clean_identity_env(monkeypatch)
    monkeypatch.setenv("SEAWAY_ACTOR", "alice")
    return Project(root)


def act_as(monkeypatch: pytest.MonkeyPatch, secret: str | None) -> None:
    """Use a token (as a user exporting SEAWAY_TOKEN would), or the local user again."""
    if secret is None:
        monkeypatch.delenv("SEAWAY_TOKEN", raising=False)
    else:
        monkeypatch.setenv("SEAWAY_TOKEN", secret)


def register_version(project: Project, tmp_path: Path, name: str = "churn", **kw: Any) -> Any:
    """A real skops model registered as the next version of `name`."""
    from seaway.registry import register_model
    from tests.registry.conftest import customer_frame, fit_pipeline, save_skops

    count = len(list(tmp_path.glob("model-*.skops")))
    path = save_skops(
        fit_pipeline(customer_frame(rows=120), C=1.0 + count), tmp_path / f"model-{count}.skops"
    )
    return register_model(project, name, path, flavor="sklearn", **kw).version


def events(project: Project, kind: str) -> list[Any]:
    from seaway.audit.log import list_events

    return list(reversed(list_events(project, kind=kind, limit=None)))


def table_text(project: Project, table: str) -> str:
    """Every row of a table as text, to look for what must never be stored."""
    from sqlalchemy import text

    with project.metadata.read() as conn:
        rows = conn.execute(text(f"SELECT * FROM {table}")).all()
    return "\n".join(repr(tuple(r)) for r in rows)
