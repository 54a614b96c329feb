"""Fixtures for the gates: a project with churn@1 registered and its data (see support.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from seaway.project import Project
from tests.gates.support import Setup, build


@pytest.fixture
def churn(project: Project) -> Setup:
    """churn@1 registered with gates, on SQLite and on PostgreSQL."""
    return build(project)


@pytest.fixture
def churn_sqlite(project_dir: Path) -> Iterator[Setup]:
    """churn@1 registered with gates, on the default SQLite store."""
    project = Project(project_dir)
    yield build(project)
    project.close()
