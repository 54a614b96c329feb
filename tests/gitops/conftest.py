"""Fixtures for the GitOps tests: projects that are real git repositories.

`git_project` (a `GitProject`) is what most GitOps tests start from:

- a git repository on branch `main` whose config sets user.name `Test` and user.email
  `test@example.com` (so commits seaway writes have a known author), with `.seaway/`
  ignored;
- `seaway.yaml` declaring the model `churn` (no gates, roles or policies: every promotion
  is allowed), and two environments, `environments/prod.yaml` (`PROD_YAML`: comments, a
  canary strategy) and `environments/staging.yaml` (`STAGING_YAML`), both deploying
  `churn@1`, all in one commit;
- `churn` versions 1, 2 and 3 registered (real scikit-learn classifiers saved with skops,
  with `auc` metrics 0.75, 0.85 and 0.92), on SQLite and on PostgreSQL (it builds on the
  `project` fixture, so a test using it runs once per store; a module that needs only one
  overrides the `metadata_url` fixture);
- the local user is `alice` (SEAWAY_ACTOR), no token set.

Its helpers (`git`, `head`, `commits`, `write_env`, `commit_all`, `status`) run git in the
repository. `plain_git_project` is the same repository without registered versions, on
the default SQLite store, for tests that only read git.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from seaway.project import Project
from tests.conftest import git

MODEL = "churn"
AUCS = (0.75, 0.85, 0.92)

SPEC_YAML = """\
name: gitops-test
models:
  churn:
    description: churn classifier
"""

PROD_YAML = """\
# Production: every change here is a reviewed commit.
target: local
self_heal: true
deployments:
  churn:
    version: 1  # the stable one
    strategy:
      canary:
        steps: [{weight: 10, pause: 1m}, {weight: 100}]
    scale: {min: 1, max: 2}
"""

STAGING_YAML = """\
target: local
deployments:
  churn:
    version: 1
"""


@dataclass
class GitProject:
    """A seaway project that is a git repository (see the module docstring)."""

    project: Project
    root: Path
    model: str = MODEL
    versions: tuple[int, ...] = field(default_factory=tuple)

    def git(self, *args: str) -> str:
        return git(self.root, *args)

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    def commits(self) -> int:
        return int(self.git("rev-list", "--count", "HEAD").strip())

    def env_file(self, name: str) -> Path:
        return self.root / "environments" / f"{name}.yaml"

    def read_env(self, name: str) -> str:
        return self.env_file(name).read_text()

    def write_env(self, name: str, text: str, *, commit: str | None = None) -> str | None:
        """Write environments/NAME.yaml; with `commit`, commit it with that message and
        return the new sha."""
        path = self.env_file(name)
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        if commit is None:
            return None
        self.git("add", str(path.relative_to(self.root)))
        self.git("commit", "-q", "-m", commit)
        return self.head()

    def commit_all(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.head()

    def status(self) -> str:
        """`git status --porcelain` (empty when the working tree is clean)."""
        return self.git("status", "--porcelain")


def init_git_project(root: Path, project: Project) -> GitProject:
    """Make `root` (holding seaway.yaml) the repository described in the module docstring,
    without registered versions."""
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@example.com")
    (root / ".gitignore").write_text(".seaway/\n")
    (root / "seaway.yaml").write_text(SPEC_YAML)
    envs = root / "environments"
    envs.mkdir(exist_ok=True)
    (envs / "prod.yaml").write_text(PROD_YAML)
    (envs / "staging.yaml").write_text(STAGING_YAML)
    gp = GitProject(project, root)
    gp.commit_all("project and environments")
    return gp


def _clean_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SEAWAY_TOKEN", "SEAWAY_ROLES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SEAWAY_ACTOR", "alice")


@pytest.fixture
def git_project(project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GitProject:
    """churn@1..3 registered in a git project with prod and staging committed."""
    from tests.serving.conftest import register, save_classifier

    _clean_identity(monkeypatch)
    gp = init_git_project(project.root, project)
    numbers = []
    for i, auc in enumerate(AUCS):
        path = save_classifier(tmp_path / "models" / f"churn-{i}.skops", C=1.0 + i)
        numbers.append(register(project, MODEL, path, metrics={"auc": auc}))
    gp.versions = tuple(numbers)
    return gp


@pytest.fixture
def plain_git_project(project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GitProject]:
    """The same repository with no version registered, on the default SQLite store."""
    _clean_identity(monkeypatch)
    project = Project(project_dir)
    yield init_git_project(project_dir, project)
    project.close()
