"""The git wrapper on real repositories: reading at revisions, dirtiness, branches, history,
and the two ways of writing a commit (the current branch; a new branch by plumbing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from seaway.errors import StoreError, UsageError
from seaway.gitops.git import Git, ensure_repo
from tests.conftest import git


def _commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        git(repo, "add", name)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture
def repo(tmp_repo: Path) -> Path:
    _commit(tmp_repo, {"environments/prod.yaml": "v: 1\n", "README": "hi\n"}, "first")
    _commit(tmp_repo, {"environments/prod.yaml": "v: 2\n"}, "second")
    _commit(tmp_repo, {"README": "hello\n"}, "readme only")
    _commit(tmp_repo, {"environments/staging.yaml": "v: 9\n"}, "staging")
    return tmp_repo


def test_not_a_repository_and_an_empty_one_are_explained(tmp_path: Path, tmp_repo: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(UsageError) as err:
        ensure_repo(plain)
    assert "not a git repository" in err.value.message and "git init" in (err.value.hint or "")
    with pytest.raises(UsageError, match="not a git repository"):
        Git(plain).head()

    with pytest.raises(UsageError) as empty:
        ensure_repo(tmp_repo).head()
    assert "has no commits yet" in empty.value.message
    assert "git commit" in (empty.value.hint or "")
    assert Git(tmp_repo).log_paths("environments", 10) == []


def test_revisions_resolve_to_full_commit_shas(repo: Path) -> None:
    g = Git(repo)
    head = g.head()
    assert len(head) == 40 and head == git(repo, "rev-parse", "HEAD").strip()
    git(repo, "tag", "-a", "v1", "-m", "release", "HEAD~2")
    first_parent = git(repo, "rev-parse", "HEAD~2").strip()
    # An annotated tag resolves to its commit, not to the tag object.
    assert g.rev_parse("v1") == first_parent
    assert g.rev_parse(head[:8]) == head
    assert g.rev_parse("main") == head
    with pytest.raises(UsageError, match="unknown git revision 'nope'"):
        g.rev_parse("nope")
    with pytest.raises(UsageError, match="is not a git revision"):
        g.rev_parse("--all")


def test_show_and_ls_read_the_commit_not_the_working_tree(repo: Path) -> None:
    g = Git(repo)
    (repo / "environments" / "prod.yaml").write_text("v: edited\n")
    (repo / "environments" / "dev.yaml").write_text("v: 0\n")
    assert g.show("HEAD", "environments/prod.yaml") == "v: 2\n"
    assert g.show("HEAD~3", "environments/prod.yaml") == "v: 1\n"
    assert g.show("HEAD", "environments/dev.yaml") is None
    assert g.show("HEAD", "environments") is None  # a folder is not a file
    assert g.ls("HEAD", "environments") == ["prod.yaml", "staging.yaml"]
    assert g.ls("HEAD~1", "environments") == ["prod.yaml"]
    assert g.ls("HEAD", "nowhere") == []


def test_paths_are_relative_to_a_project_inside_the_repository(repo: Path) -> None:
    _commit(repo, {"ml/environments/prod.yaml": "v: sub\n"}, "a project in a folder")
    g = Git(repo / "ml")
    assert g.prefix == "ml/"
    assert g.show("HEAD", "environments/prod.yaml") == "v: sub\n"
    assert g.ls("HEAD", "environments") == ["prod.yaml"]


def test_dirty_means_any_uncommitted_change_to_that_path(repo: Path) -> None:
    g = Git(repo)
    prod = "environments/prod.yaml"
    assert not g.is_dirty(prod)
    (repo / "README").write_text("someone else's edit\n")
    assert not g.is_dirty(prod)  # other files do not count
    (repo / prod).write_text("v: 3\n")
    assert g.is_dirty(prod)
    git(repo, "add", prod)
    assert g.is_dirty(prod)  # staged
    git(repo, "commit", "-q", "-m", "three")
    assert not g.is_dirty(prod)
    (repo / "environments" / "new.yaml").write_text("v: 0\n")
    assert g.is_dirty("environments/new.yaml")  # untracked


def test_branch_detached_head_and_history(repo: Path) -> None:
    g = Git(repo)
    assert g.current_branch() == "main"
    history = g.log_paths("environments/prod.yaml", 10)
    assert [subject for _, subject in history] == ["second", "first"]
    assert history[0][0] == git(repo, "rev-parse", "HEAD~2").strip()
    assert [s for _, s in g.log_paths("environments", 2)] == ["staging", "second"]
    git(repo, "checkout", "-q", "--detach", "HEAD~1")
    assert g.current_branch() is None


def test_a_merge_in_progress_is_noticed(repo: Path) -> None:
    g = Git(repo)
    assert g.operation_in_progress() is None
    git(repo, "checkout", "-q", "-b", "other", "HEAD~2")
    _commit(repo, {"README": "theirs\n"}, "theirs")
    git(repo, "checkout", "-q", "main")
    with pytest.raises(Exception):  # noqa: B017 - the conflict makes git exit 1
        git(repo, "merge", "-q", "other")
    assert g.operation_in_progress() == "a merge"


def test_commit_only_leaves_the_users_staged_changes_staged(repo: Path) -> None:
    g = Git(repo)
    (repo / "README").write_text("staged by the user\n")
    git(repo, "add", "README")
    (repo / "environments" / "prod.yaml").write_text("v: 3\n")
    before = g.head()
    sha = g.commit_only("environments/prod.yaml", "promote\n\nbody\n")
    assert sha == g.head() != before
    changed = git(repo, "show", "--name-only", "--format=", sha).split()
    assert changed == ["environments/prod.yaml"]
    assert git(repo, "log", "-1", "--format=%B", sha) == "promote\n\nbody\n\n"
    assert git(repo, "diff", "--cached", "--name-only").split() == ["README"]
    assert g.show("HEAD", "README") == "hello\n"


def test_a_branch_commit_touches_neither_tree_nor_index_nor_head(repo: Path) -> None:
    g = Git(repo)
    (repo / "README").write_text("work in progress\n")
    git(repo, "add", "README")
    status = git(repo, "status", "--porcelain")
    head = g.head()
    sha = g.commit_file_on_branch(
        "promote/churn-3-prod", head, "environments/prod.yaml", b"v: 3\n", "promote churn@3\n"
    )
    assert g.head() == head and g.current_branch() == "main"
    assert git(repo, "status", "--porcelain") == status
    assert (repo / "environments" / "prod.yaml").read_text() == "v: 2\n"
    assert g.rev_parse("promote/churn-3-prod") == sha
    assert g.show("promote/churn-3-prod", "environments/prod.yaml") == "v: 3\n"
    assert git(repo, "rev-parse", f"{sha}^").strip() == head
    assert git(repo, "diff", "--name-only", head, sha).split() == ["environments/prod.yaml"]
    # The branch exists now: creating it again is refused by git itself.
    with pytest.raises(StoreError):
        g.commit_file_on_branch(
            "promote/churn-3-prod", head, "environments/prod.yaml", b"v: 4\n", "again\n"
        )
    assert g.show("promote/churn-3-prod", "environments/prod.yaml") == "v: 3\n"


def test_commits_get_an_identity_when_git_has_none(
    tmp_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-global"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("EMAIL", raising=False)
    _commit(tmp_repo, {"a.txt": "1\n"}, "first")
    g = Git(tmp_repo)
    assert g.config("user.name") is None
    (tmp_repo / "a.txt").write_text("2\n")
    sha = g.commit_only("a.txt", "second\n")
    assert git(tmp_repo, "log", "-1", "--format=%cn <%ce>", sha).strip() == (
        "seaway <seaway@localhost>"
    )
    # Configured identities are used as they are.
    git(tmp_repo, "config", "user.name", "Carol")
    git(tmp_repo, "config", "user.email", "carol@example.com")
    (tmp_repo / "a.txt").write_text("3\n")
    sha = g.commit_only("a.txt", "third\n")
    assert git(tmp_repo, "log", "-1", "--format=%cn <%ce>", sha).strip() == (
        "Carol <carol@example.com>"
    )


def test_an_inherited_git_dir_does_not_redirect_commands(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q", "-b", "main")
    _commit(other, {"x": "1\n"}, "other repo")
    # As when seaway runs from inside a git hook of another repository.
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    assert Git(repo).show("HEAD", "environments/prod.yaml") == "v: 2\n"
