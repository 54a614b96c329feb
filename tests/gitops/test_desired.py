"""Desired state read from git at a revision: committed files only, errors located at
file@revision:line, remote sources fetched into a cache, and reads that cost a few git
processes however many environments there are."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from seaway.errors import NotFound, SpecError, UsageError
from seaway.gitops.desired import read_desired, resolve_revision
from seaway.project import Project
from tests.conftest import git
from tests.gitops.conftest import PROD_YAML, GitProject


def test_the_committed_file_is_read_not_the_working_tree(plain_git_project: GitProject) -> None:
    gp = plain_git_project
    project = gp.project
    gp.write_env("prod", PROD_YAML.replace("version: 1", "version: 9"))  # not committed
    gp.write_env("dev", "deployments: {}\n")  # untracked
    state = read_desired(project)
    assert state.revision == gp.head() and state.source == "local"
    assert sorted(state.environments) == ["prod", "staging"]
    prod = state.environments["prod"]
    assert prod.deployments["churn"].version == 1
    assert prod.self_heal and prod.deployments["churn"].strategy.kind == "canary"
    assert resolve_revision(project) == gp.head()


def test_an_older_revision_and_one_environment(plain_git_project: GitProject) -> None:
    gp = plain_git_project
    first = gp.head()
    second = gp.write_env("prod", PROD_YAML.replace("version: 1", "version: 2"), commit="two")
    assert read_desired(gp.project).environments["prod"].deployments["churn"].version == 2
    old = read_desired(gp.project, revision=first[:9], environment="prod")
    assert old.revision == first
    assert list(old.environments) == ["prod"]
    assert old.environments["prod"].deployments["churn"].version == 1
    gp.git("tag", "release-1", first)
    assert resolve_revision(gp.project, "release-1") == first
    assert resolve_revision(gp.project, "main") == second
    with pytest.raises(UsageError, match="unknown git revision 'nope'"):
        read_desired(gp.project, revision="nope")


def test_an_unknown_environment_names_the_known_ones(plain_git_project: GitProject) -> None:
    with pytest.raises(NotFound) as err:
        read_desired(plain_git_project.project, environment="prd")
    assert "no environment 'prd'" in err.value.message
    assert "did you mean 'prod'" in err.value.message
    assert "prod, staging" in (err.value.hint or "")


def test_a_bad_file_is_located_at_file_revision_and_line(plain_git_project: GitProject) -> None:
    gp = plain_git_project
    bad = PROD_YAML.replace(
        "steps: [{weight: 10, pause: 1m}, {weight: 100}]", "steps: [{weight: 10, pause: 1m}]"
    )
    sha = gp.write_env("prod", bad, commit="canary that never ends")
    assert sha is not None
    with pytest.raises(SpecError) as err:
        read_desired(gp.project)
    text = str(err.value)
    assert f"environments/prod.yaml@{sha[:7]}:8:" in text
    assert "must end at 100" in text
    # The other environment alone still reads; the bad one is named when asked for.
    assert read_desired(gp.project, environment="staging").environments["staging"]
    gp.write_env("staging", "deployments:\n  churn: {version: 0}\n", commit="bad staging")
    with pytest.raises(SpecError) as both:
        read_desired(gp.project)
    assert "2 environment files are not valid" in both.value.message
    assert any(
        p.startswith(f"environments/staging.yaml@{gp.head()[:7]}:2:") for p in both.value.problems
    )


def test_an_empty_repository_and_a_folder_that_is_none(tmp_path: Path) -> None:
    folder = tmp_path / "nogit"
    folder.mkdir()
    (folder / "seaway.yaml").write_text("name: x\n")
    with pytest.raises(UsageError, match="not a git repository"):
        read_desired(Project(folder))
    git(folder, "init", "-q", "-b", "main")
    with pytest.raises(UsageError, match="no commits yet"):
        read_desired(Project(folder))
    with pytest.raises(UsageError, match="no commits yet"):
        resolve_revision(Project(folder))


def test_a_remote_source_is_fetched_and_read(plain_git_project: GitProject, tmp_path: Path) -> None:
    gp = plain_git_project
    remote = tmp_path / "remote"
    git(tmp_path, "clone", "-q", str(gp.root), str(remote))
    git(remote, "config", "user.name", "Test")
    git(remote, "config", "user.email", "test@example.com")
    (remote / "environments" / "prod.yaml").write_text(
        PROD_YAML.replace("version: 1", "version: 5")
    )
    git(remote, "commit", "-q", "-am", "five on the remote")
    remote_head = git(remote, "rev-parse", "HEAD").strip()

    url = str(remote)
    assert resolve_revision(gp.project, source=url) == remote_head
    state = read_desired(gp.project, source=url)
    assert state.source == url and state.revision == remote_head
    assert state.environments["prod"].deployments["churn"].version == 5
    # Read in a cache under .seaway, not in the project's own repository.
    caches = list((gp.project.state_dir / "gitops" / "remotes").iterdir())
    assert len(caches) == 1
    local = subprocess.run(
        ["git", "cat-file", "-e", f"{remote_head}^{{commit}}"], cwd=gp.root, capture_output=True
    )
    assert local.returncode != 0

    # A new commit on the remote is seen on the next read; an older one by its sha.
    (remote / "environments" / "prod.yaml").write_text(
        PROD_YAML.replace("version: 1", "version: 6")
    )
    git(remote, "commit", "-q", "-am", "six")
    newest = read_desired(gp.project, source=url, environment="prod")
    assert newest.environments["prod"].deployments["churn"].version == 6
    older = read_desired(gp.project, source=url, revision=remote_head)
    assert older.environments["prod"].deployments["churn"].version == 5

    git(remote, "checkout", "-q", "-b", "experiment")
    (remote / "environments" / "prod.yaml").write_text(
        PROD_YAML.replace("version: 1", "version: 7")
    )
    git(remote, "commit", "-q", "-am", "seven on a branch")
    branch = read_desired(gp.project, source=url, revision="experiment")
    assert branch.environments["prod"].deployments["churn"].version == 7
    with pytest.raises(NotFound) as err:
        resolve_revision(gp.project, "nope", source=url)
    assert "experiment" in (err.value.hint or "") and "main" in (err.value.hint or "")


def test_reads_cost_a_few_git_processes_and_parse_only_what_changed(
    plain_git_project: GitProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    import seaway.spec.loader as loader

    gp = plain_git_project
    for i in range(10):
        body = "".join(f"  m{i}-{j}:\n    version: {j + 1}\n" for j in range(20))
        gp.write_env(f"env{i}", f"deployments:\n{body}")
    gp.commit_all("ten environments")

    git_calls: list[list[str]] = []
    parsed: list[str] = []
    real_run = subprocess.run
    real_load = loader.load_environment_text

    def counting_run(args: Any, *a: Any, **kw: Any) -> Any:
        if args and args[0] == "git":
            git_calls.append(list(args))
        return real_run(args, *a, **kw)

    def counting_load(text: str, label: str, name: str) -> Any:
        parsed.append(name)
        return real_load(text, label, name)

    monkeypatch.setattr(subprocess, "run", counting_run)
    monkeypatch.setattr(loader, "load_environment_text", counting_load)

    state = read_desired(gp.project)
    assert len(state.environments) == 12
    assert len(git_calls) <= 4, git_calls
    # prod and staging may be known already: other tests read the same content.
    assert {f"env{i}" for i in range(10)} <= set(parsed) <= set(state.environments)

    git_calls.clear()
    parsed.clear()
    again = read_desired(gp.project)
    assert again.environments == state.environments
    assert len(git_calls) == 1 and parsed == []

    monkeypatch.setattr(subprocess, "run", real_run)
    text = gp.read_env("env3").replace("version: 1\n", "version: 2\n", 1)
    gp.write_env("env3", text, commit="one changed")
    monkeypatch.setattr(subprocess, "run", counting_run)
    git_calls.clear()
    changed = read_desired(gp.project)
    assert parsed == ["env3"]
    assert len(git_calls) == 3
    assert changed.environments["env3"].deployments["m3-0"].version == 2
    assert changed.blobs["env4"] == state.blobs["env4"] != changed.blobs.get("env3")
