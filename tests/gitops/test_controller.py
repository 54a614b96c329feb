"""The controller: one leader per store (PostgreSQL advisory lock, SQLite lock file), the
push webhook, and loops that sync only when there is a reason to."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx
import pytest

from seaway.gitops.controller import Controller, Leadership, serve_webhook
from seaway.project import Project
from seaway.serving import routes
from tests.gitops.conftest import GitProject
from tests.serving.conftest import free_port, wait_for


def only_prod(gp: GitProject) -> None:
    gp.git("rm", "-q", "environments/staging.yaml")
    gp.write_env("prod", "target: local\ndeployments:\n  churn:\n    version: 1\n", commit="prod")


def test_two_controllers_never_both_lead(git_project: GitProject) -> None:
    gp = git_project
    only_prod(gp)
    # A second Project object: its own connections, as a second process would have.
    other = Project(gp.root)
    first, second = Controller(gp.project, interval_s=1), Controller(other, interval_s=1)
    try:
        assert first.loop_once() is not None and first.state.leader
        assert second.loop_once() is None and not second.state.leader
        assert routes.load_table(gp.project).for_model("churn")
        assert second.state.syncs == 0, "a standby never syncs"

        # The leader dies: its lock goes with its connection (PostgreSQL) or file (SQLite).
        first.leadership.release()
        assert second.loop_once() is not None and second.state.leader
        assert not Leadership(gp.project).acquire()
    finally:
        first.leadership.release()
        second.leadership.release()
        other.close()


def test_a_leader_syncs_only_when_git_moved_or_rollouts_run(git_project: GitProject) -> None:
    gp = git_project
    only_prod(gp)
    ctl = Controller(gp.project, interval_s=1, resync_s=3600)
    try:
        assert ctl.loop_once() is not None
        assert ctl.loop_once() is None, "nothing moved: no sync"
        gp.write_env("prod", "target: local\ndeployments:\n  churn:\n    version: 2\n", commit="v2")
        result = ctl.loop_once()
        assert result is not None and [a.kind for a in result.applied] == ["rollout"]
        assert ctl.state.syncs == 2 and ctl.state.last_revision == gp.head()
    finally:
        ctl.leadership.release()


@pytest.mark.parametrize("metadata_url", ["sqlite"], indirect=True)
def test_the_webhook_wakes_the_controller_and_checks_its_secret(git_project: GitProject) -> None:
    ctl = Controller(git_project.project, interval_s=60)
    port = free_port()
    body = json.dumps({"ref": "refs/heads/main"}).encode()
    good = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    with serve_webhook(ctl, port, secret="s3cret"):
        url = f"http://127.0.0.1:{port}"
        assert httpx.post(f"{url}/webhook", content=body).status_code == 401
        bad = httpx.post(f"{url}/webhook", content=body, headers={"X-Hub-Signature-256": "x"})
        assert bad.status_code == 401 and "does not match" in bad.json()["error"]
        ok = httpx.post(f"{url}/webhook", content=body, headers={"X-Hub-Signature-256": good})
        assert ok.status_code == 202
        gitlab = httpx.post(f"{url}/webhook", content=b"{}", headers={"X-Gitlab-Token": "s3cret"})
        assert gitlab.status_code == 202
        assert httpx.get(f"{url}/webhook").status_code == 405
        health = httpx.get(f"{url}/healthz").json()
        assert health["webhooks"] == 2 and health["leader"] is False
    assert ctl._wake.is_set()


@pytest.mark.parametrize("metadata_url", ["sqlite"], indirect=True)
def test_a_running_controller_applies_a_pushed_commit(git_project: GitProject) -> None:
    import threading

    gp = git_project
    only_prod(gp)
    ctl = Controller(gp.project, interval_s=120, resync_s=3600)
    thread = threading.Thread(target=ctl.run, daemon=True)
    port = free_port()
    with serve_webhook(ctl, port):
        thread.start()
        wait_for(lambda: routes.load_table(gp.project).for_model("churn"), timeout=30)
        gp.write_env("prod", "target: local\ndeployments:\n  churn:\n    version: 3\n", commit="v3")
        httpx.post(f"http://127.0.0.1:{port}/webhook", json={}).raise_for_status()
        # The poll interval is 2 minutes: only the webhook explains a change within seconds.
        wait_for(
            lambda: [d.number for d in routes.load_table(gp.project).for_model("churn")] == [3],
            timeout=20,
        )
        ctl.stop()
        thread.join(15)
    assert not thread.is_alive() and not ctl.leadership.held
