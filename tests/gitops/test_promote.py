"""Promotion and rollback as git commits, on real repositories and both stores: what is
committed (one file, one scalar, comments kept), what is refused (checks, dirty files,
merges), and that a failure leaves everything as it was."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from seaway.errors import CheckFailed, NotFound, StoreError, UsageError
from seaway.gitops.promote import PromotionRefused, promote, rollback, set_version
from seaway.project import Project
from tests.gitops.conftest import PROD_YAML, SPEC_YAML, GitProject
from tests.policy.identity_support import events


@contextlib.contextmanager
def respec(gp: GitProject, extra: str) -> Iterator[Project]:
    """The project with `extra` appended to seaway.yaml (committed), freshly opened."""
    (gp.root / "seaway.yaml").write_text(SPEC_YAML + extra)
    if gp.status():
        gp.commit_all("spec")
    project = Project(gp.root)
    try:
        yield project
    finally:
        project.close()


def _changed_files(gp: GitProject, sha: str) -> list[str]:
    return gp.git("show", "--name-only", "--format=", sha).split()


def test_promote_commits_one_scalar_of_one_file(git_project: GitProject) -> None:
    gp = git_project
    (gp.root / "notes.txt").write_text("staged by the user\n")
    gp.git("add", "notes.txt")
    before, count = gp.head(), gp.commits()

    result = promote(gp.project, "churn@3", "prod", message="quarterly refresh")

    assert gp.commits() == count + 1 and gp.head() == result.commit != before
    assert _changed_files(gp, result.commit) == ["environments/prod.yaml"]
    # Only the number changed: the comment on that line and every other line are kept.
    assert gp.read_env("prod") == PROD_YAML.replace(
        "version: 1  # the stable one", "version: 3  # the stable one"
    )
    assert gp.git("show", f"{result.commit}:environments/prod.yaml") == gp.read_env("prod")
    # The user's staged change is still staged and not in the commit.
    assert gp.git("diff", "--cached", "--name-only").split() == ["notes.txt"]
    assert (result.model, result.number, result.previous) == ("churn", 3, 1)
    assert (result.branch, result.path, result.unchanged) == (
        "main",
        "environments/prod.yaml",
        False,
    )

    message = gp.git("log", "-1", "--format=%B", result.commit)
    assert message.splitlines()[0] == "promote churn@3 to prod"
    for expected in (
        "quarterly refresh",
        "Previous version: @1",
        "Gates: none declared",
        "Policies: allowed (no policy applies)",
        "Approvals: none",
        "Actor: alice",
    ):
        assert expected in message
    assert gp.git("log", "-1", "--format=%an <%ae>").strip() == "Test <test@example.com>"

    [event] = events(gp.project, "promotion.committed")
    assert (event.subject, event.actor) == ("model:churn@3", "alice")
    assert event.data["commit"] == result.commit and event.data["previous"] == 1
    assert (event.data["environment"], event.data["branch"]) == ("prod", "main")
    assert event.data["path"] == "environments/prod.yaml"


def test_an_alias_is_written_as_the_number_it_points_at(git_project: GitProject) -> None:
    from seaway.registry import set_alias

    gp = git_project
    set_alias(gp.project, "churn@2", "champion")
    result = promote(gp.project, "churn@champion", "staging")
    assert result.number == 2
    assert gp.read_env("staging") == "target: local\ndeployments:\n  churn:\n    version: 2\n"
    assert "promote churn@2 to staging" in gp.git("log", "-1", "--format=%s")


def test_the_same_version_again_commits_nothing(git_project: GitProject) -> None:
    gp = git_project
    head = gp.head()
    result = promote(gp.project, "churn@1", "prod")
    assert result.unchanged and result.commit == head and result.message == ""
    assert gp.head() == head and gp.status() == ""
    assert events(gp.project, "promotion.committed") == []


def test_branch_leaves_the_working_tree_and_the_current_branch_alone(
    git_project: GitProject,
) -> None:
    gp = git_project
    (gp.root / "notes.txt").write_text("mine\n")
    head, status = gp.head(), gp.status()

    result = promote(gp.project, "churn@2", "prod", branch=True)

    assert result.branch == "promote/churn-2-prod" and result.new_branch
    assert gp.head() == head and gp.status() == status
    assert gp.git("branch", "--show-current").strip() == "main"
    assert gp.read_env("prod") == PROD_YAML
    assert gp.git("rev-parse", "promote/churn-2-prod").strip() == result.commit
    assert gp.git("rev-parse", f"{result.commit}^").strip() == head
    on_branch = gp.git("show", f"{result.commit}:environments/prod.yaml")
    assert on_branch == PROD_YAML.replace("version: 1  #", "version: 2  #")
    assert _changed_files(gp, result.commit) == ["environments/prod.yaml"]

    with pytest.raises(UsageError, match="branch promote/churn-2-prod already exists"):
        promote(gp.project, "churn@2", "prod", branch=True)


def test_a_dirty_file_is_refused_and_nothing_changes(git_project: GitProject) -> None:
    gp = git_project
    edited = PROD_YAML + "# a note I am still writing\n"
    gp.write_env("prod", edited)
    head = gp.head()
    with pytest.raises(UsageError) as err:
        promote(gp.project, "churn@2", "prod")
    assert "environments/prod.yaml has uncommitted changes" in err.value.message
    assert "commit or stash" in (err.value.hint or "")
    assert gp.read_env("prod") == edited and gp.head() == head
    gp.git("add", "environments/prod.yaml")  # staged counts too
    with pytest.raises(UsageError, match="uncommitted changes"):
        rollback(gp.project, "churn", "prod", to=2)
    assert gp.head() == head and events(gp.project, "promotion.committed") == []


def test_a_failed_commit_restores_the_file_byte_for_byte(git_project: GitProject) -> None:
    gp = git_project
    original = PROD_YAML.replace("\n", "\r\n").encode()
    gp.env_file("prod").write_bytes(original)
    gp.commit_all("windows line endings")
    hook = gp.root / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'no commits on Fridays' >&2\nexit 1\n")
    hook.chmod(0o755)
    head = gp.head()

    with pytest.raises(StoreError) as err:
        promote(gp.project, "churn@2", "prod")
    assert "git commit failed" in err.value.message
    assert gp.env_file("prod").read_bytes() == original
    assert gp.head() == head and gp.status() == ""
    assert events(gp.project, "promotion.committed") == []

    hook.unlink()
    promote(gp.project, "churn@2", "prod")
    assert gp.env_file("prod").read_bytes() == original.replace(b"version: 1", b"version: 2")


def test_a_model_not_yet_in_the_file_gets_a_minimal_block(git_project: GitProject) -> None:
    gp = git_project
    gp.write_env("dev", "# the sandbox\ntarget: local\ndeployments: {}\n", commit="dev")
    result = promote(gp.project, "churn@2", "dev")
    assert result.previous is None
    assert gp.read_env("dev") == (
        "# the sandbox\ntarget: local\ndeployments:\n  churn:\n    version: 2\n"
    )
    assert "Previous version: none" in result.message


def test_failing_gates_name_each_gate_and_write_nothing(git_project: GitProject) -> None:
    from seaway.gates import run_gates

    gp = git_project
    gp.write_env("staging", "deployments:\n  churn:\n    version: 3\n", commit="three")
    with respec(gp, "    gates:\n      - {metric: auc, min: 0.8}\n") as project:
        head = gp.head()
        with pytest.raises(PromotionRefused) as missing:
            promote(project, "churn@1", "staging")
        assert [f.rule for f in missing.value.failures] == ["gates"]
        assert missing.value.failures[0].hint == "seaway gate churn@1"

        run_gates(project, "churn@1")  # auc 0.75
        with pytest.raises(CheckFailed) as failed:
            promote(project, "churn@1", "staging")
        assert isinstance(failed.value, PromotionRefused)
        assert failed.value.exit_code == 1
        assert [f.rule for f in failed.value.failures] == ["gate auc>=0.8"]
        assert "0.75 is below the minimum 0.8" in failed.value.failures[0].message
        assert "blocked by gate auc>=0.8" in failed.value.message
        assert gp.head() == head and gp.status() == ""

        run_gates(project, "churn@2")  # auc 0.85
        result = promote(project, "churn@2", "prod")
        assert "Gates: passed (auc>=0.8: passed)" in result.message


def test_policies_and_requirements_block_until_met(git_project: GitProject, tmp_path: Path) -> None:
    from seaway.policy import approve
    from seaway.registry.keys import generate_keys
    from seaway.registry.signing import sign_version

    gp = git_project
    policy = """\
policies:
  - name: prod-needs-approval
    when: 'environment == "prod"'
    require: 'approvals.exists(a, a.role == "release-manager")'
    message: "prod needs a release manager's approval"
"""
    gp.write_env(
        "prod",
        PROD_YAML.replace("self_heal: true\n", "self_heal: true\nrequires: {signature: true}\n"),
        commit="prod takes signed versions",
    )
    with respec(gp, policy) as project:
        head = gp.head()
        with pytest.raises(PromotionRefused) as err:
            promote(project, "churn@2", "prod")
        rules = [f.rule for f in err.value.failures]
        assert rules == ["policy prod-needs-approval", "requires.signature"]
        assert "prod needs a release manager's approval" in err.value.failures[0].message
        assert "seaway approve churn@2 --env prod" in err.value.failures[0].hint
        assert err.value.failures[1].hint == "seaway sign churn@2 --key PRIVATE.pem"
        assert gp.head() == head and gp.status() == ""
        [decision] = events(project, "policy.decision")
        assert decision.data["allowed"] is False

        approve(project, "churn@2", "prod", role="release-manager", comment="looks good")
        (tmp_path / "keys").mkdir()
        generate_keys(tmp_path / "keys" / "signing.pem")
        sign_version(project, "churn@2", tmp_path / "keys" / "signing.pem")
        result = promote(project, "churn@2", "prod")
        assert "Policies: allowed (prod-needs-approval: passed)" in result.message
        assert "Approvals: alice as release-manager: looks good" in result.message
        assert "Signed: yes" in result.message


def test_requires_approval_asks_for_one(git_project: GitProject) -> None:
    from seaway.policy import approve

    gp = git_project
    gp.write_env("staging", "requires: {approval: true}\ndeployments: {}\n", commit="gated")
    with respec(gp, "") as project:
        with pytest.raises(PromotionRefused) as err:
            promote(project, "churn@3", "staging")
        [failure] = err.value.failures
        assert failure.rule == "requires.approval"
        assert failure.hint == "seaway approve churn@3 --env staging"
        approve(project, "churn@3", "staging", role="qa")
        assert promote(project, "churn@3", "staging").number == 3


def test_rollback_restores_the_previous_version(git_project: GitProject) -> None:
    gp = git_project
    with pytest.raises(NotFound, match="no earlier version of churn"):
        rollback(gp.project, "churn", "prod")
    promote(gp.project, "churn@2", "prod")
    promote(gp.project, "churn@3", "prod")

    back = rollback(gp.project, "churn", "prod", reason="error rate 4%")
    assert (back.number, back.previous) == (2, 3)
    assert gp.read_env("prod") == PROD_YAML.replace("version: 1  #", "version: 2  #")
    assert _changed_files(gp, back.commit) == ["environments/prod.yaml"]
    message = gp.git("log", "-1", "--format=%B")
    assert message.splitlines()[0] == "rollback churn to @2 in prod"
    assert "Reason: error rate 4%" in message and "Rolled back from: @3" in message
    [event] = events(gp.project, "rollback.committed")
    assert event.subject == "model:churn@2" and event.data["previous"] == 3
    assert event.data["reason"] == "error rate 4%" and event.data["commit"] == back.commit

    # `to` needs no history, and names a version that must exist.
    to_one = rollback(gp.project, "churn", "prod", to=1)
    assert to_one.number == 1 and "version: 1  #" in gp.read_env("prod")
    assert rollback(gp.project, "churn", "prod", to=1).unchanged
    with pytest.raises(NotFound):
        rollback(gp.project, "churn", "prod", to=9)
    with pytest.raises(NotFound, match="nope is not deployed in prod"):
        rollback(gp.project, "nope", "prod", to=1)


def test_rollback_on_a_branch(git_project: GitProject) -> None:
    gp = git_project
    promote(gp.project, "churn@3", "staging")
    head = gp.head()
    result = rollback(gp.project, "churn", "staging", branch=True)
    assert result.branch == "rollback/churn-1-staging" and result.number == 1
    assert gp.head() == head and "version: 3" in gp.read_env("staging")
    assert "version: 1" in gp.git("show", f"{result.commit}:environments/staging.yaml")


def test_an_unknown_environment_or_version_is_bad_input(git_project: GitProject) -> None:
    gp = git_project
    with pytest.raises(NotFound) as err:
        promote(gp.project, "churn@2", "qa")
    assert "no environment 'qa'" in err.value.message
    assert "prod, staging" in (err.value.hint or "")
    with pytest.raises(NotFound):
        promote(gp.project, "churn@7", "prod")
    with pytest.raises(UsageError, match="not an environment name"):
        promote(gp.project, "churn@2", "../prod")


def test_a_merge_in_progress_or_a_detached_head_is_refused(git_project: GitProject) -> None:
    gp = git_project
    gp.git("checkout", "-q", "--detach")
    with pytest.raises(UsageError, match="HEAD is detached"):
        promote(gp.project, "churn@2", "prod")
    # A review branch needs no current branch.
    assert promote(gp.project, "churn@2", "prod", branch=True).new_branch
    gp.git("checkout", "-q", "main")

    gp.git("checkout", "-q", "-b", "side")
    (gp.root / "notes.txt").write_text("side\n")
    gp.commit_all("side")
    gp.git("checkout", "-q", "main")
    (gp.root / "notes.txt").write_text("main\n")
    gp.commit_all("main")
    with pytest.raises(Exception):  # noqa: B017 - the conflicting merge exits 1
        gp.git("merge", "-q", "side")
    with pytest.raises(UsageError, match="in the middle of a merge"):
        promote(gp.project, "churn@3", "prod")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "deployments:\n  churn:\n    version: '1'  # quoted\n",
            "deployments:\n  churn:\n    version: 4  # quoted\n",
        ),
        (
            "deployments:\n    other:\n        version: 1\n# footer\nself_heal: false\n",
            "deployments:\n    other:\n        version: 1\n    churn:\n        version: 4\n"
            "# footer\nself_heal: false\n",
        ),
        (
            "deployments: {other: {version: 1}}\n",
            "deployments: {other: {version: 1}, churn: {version: 4}}\n",
        ),
        ("target: local\n", "target: local\ndeployments:\n  churn:\n    version: 4\n"),
        ("target: local", "target: local\ndeployments:\n  churn:\n    version: 4\n"),
        (
            "target: local\r\ndeployments:\r\n  churn:\r\n    version: champion\r\n",
            "target: local\r\ndeployments:\r\n  churn:\r\n    version: 4\r\n",
        ),
    ],
)
def test_set_version_keeps_the_rest_of_the_text(text: str, expected: str) -> None:
    assert set_version(text, "churn", 4).text == expected


def test_a_version_shared_through_an_anchor_is_not_edited() -> None:
    from seaway.errors import SpecError

    text = "deployments:\n  a:\n    version: &v 1\n  churn:\n    version: *v\n"
    with pytest.raises(SpecError, match="cannot be edited in place"):
        set_version(text, "churn", 2)
