"""The ray target on a real, local Ray Serve bound to 127.0.0.1: split, stickiness, shadows,
idempotence, removal and reading back what Ray runs."""

from __future__ import annotations

import contextlib
import os
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from seaway.errors import UsageError
from seaway.gitops.targets import make_target
from seaway.gitops.targets.base import ModelState, Route
from seaway.gitops.targets.ray import RayTarget
from seaway.project import Project
from seaway.spec.environment import BatchingSpec, EnvironmentSpec, ScaleSpec

ray = pytest.importorskip("ray", reason="Ray Serve is in the test extras; CI installs it")
pytest.importorskip("ray.serve")

pytestmark = pytest.mark.timeout(300)

ROWS = [[0.1, -0.2, 0.3, 0.4], [1.5, 0.2, -0.7, 0.0]]


@dataclass
class Cluster:
    project: Project
    url: str


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One local Ray and Serve for the module, and a project with three versions of `churn`
    whose store lies outside the project (replicas find it only through the environment
    the target hands them)."""
    from ray import serve

    from tests.serving.conftest import free_port, make_project, register, save_classifier

    base = tmp_path_factory.mktemp("ray-target")
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("SEAWAY_"):
                mp.delenv(key)
        mp.setenv("SEAWAY_METADATA_URL", f"sqlite:///{base / 'store' / 'meta.db'}")
        mp.setenv("SEAWAY_ARTIFACTS_URL", str(base / "store" / "objects"))
        mp.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        mp.setenv("RAY_USAGE_STATS_ENABLED", "0")
        project = make_project(base / "proj")
        models = base / "models"
        register(project, "churn", save_classifier(models / "a.skops"))
        register(project, "churn", save_classifier(models / "b.skops", flip=True))
        register(project, "churn", save_classifier(models / "c.skops", C=0.1))
        ray.init(
            address="local",
            _node_ip_address="127.0.0.1",
            include_dashboard=False,
            num_cpus=8,
            log_to_driver=False,
            configure_logging=False,
        )
        port = free_port()
        try:
            serve.start(http_options={"host": "127.0.0.1", "port": port})
            yield Cluster(project, f"http://127.0.0.1:{port}")
        finally:
            serve.shutdown()
            ray.shutdown()
            project.close()


def ray_target(cluster: Cluster, env: str = "prod", prefix: str = "/{model}") -> RayTarget:
    spec = EnvironmentSpec.model_validate({"target": "ray", "ray": {"route_prefix": prefix}})
    t = make_target("ray", cluster.project, env, spec)
    assert isinstance(t, RayTarget)
    return t


def post(url: str, key: str | None = None) -> Any:
    import httpx

    headers = {"x-seaway-key": key} if key is not None else {}
    return httpx.post(url, json={"instances": ROWS}, headers=headers, timeout=30)


def versions_answering(url: str, n: int) -> Counter[str]:
    import httpx

    seen: Counter[str] = Counter()
    with httpx.Client(timeout=30) as client:
        for _ in range(n):
            r = client.post(url, json={"instances": ROWS})
            assert r.status_code == 200, r.text
            seen[r.headers["x-seaway-version"]] += 1
    return seen


def replica_pid(deployment: str, app: str = "prod-churn") -> int:
    from ray import serve

    described = serve.get_deployment_handle(deployment, app).describe.remote().result(timeout_s=30)
    return int(described["pid"])


@contextlib.contextmanager
def load(url: str) -> Iterator[list[int]]:
    """Requests sent one after another from a thread while the block runs."""
    import httpx

    statuses: list[int] = []
    stop = threading.Event()

    def send() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                statuses.append(client.post(url, json={"instances": ROWS}).status_code)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    try:
        yield statuses
    finally:
        stop.set()
        thread.join(30)


def deployed_at(name: str) -> float:
    from ray import serve

    return float(serve.status().applications[name].last_deployed_time_s)


def test_split_stickiness_idempotence_and_round_trip(cluster: Cluster) -> None:
    from seaway.serving.router import BUCKETS, key_bucket

    target = ray_target(cluster)
    canary = ModelState(
        "churn",
        (Route(1, 90.0), Route(2, 10.0)),
        scale=ScaleSpec(min=1, max=2),
        batching=BatchingSpec(max_batch=8, max_wait_us=500),
    )
    target.apply(canary, reason={"revision": "abc"})
    url = f"{cluster.url}/churn"

    first = post(url)
    assert first.status_code == 200
    assert len(first.json()["predictions"]) == len(ROWS)

    seen = versions_answering(url, 400)
    assert sum(seen.values()) == 400
    # 10% of 400 is 40; a binomial split would stay within 40 +/- 19 (3 sigma).
    assert 21 <= seen["churn@2"] <= 59, seen
    assert set(seen) == {"churn@1", "churn@2"}

    # Sticky: a key keeps its version, and it is the version the gateway would pick.
    for key in ("alice", "bob", "carol", "dave", "erin", "frank"):
        answers = {post(url, key).headers["x-seaway-version"] for _ in range(5)}
        expected = "churn@1" if key_bucket(key) < 0.9 * BUCKETS else "churn@2"
        assert answers == {expected}, key

    live = target.live()
    assert live == {"churn": canary}
    assert live["churn"].details["application"] == "prod-churn"
    assert live["churn"].details["route_prefix"] == "/churn"

    # The same split again: nothing is redeployed.
    stamp = deployed_at("prod-churn")
    target.apply(canary, reason={"revision": "def"})
    assert deployed_at("prod-churn") == stamp


def test_changing_the_split_and_shadowing_take_effect(cluster: Cluster) -> None:
    import httpx

    target = ray_target(cluster)
    target.apply(ModelState("churn", (Route(1, 90.0), Route(2, 10.0))))
    url = f"{cluster.url}/churn"
    versions_answering(url, 10)
    answered = sum(httpx.get(url, timeout=30).json()["answered"].values())
    pid = replica_pid("v1")

    half = ModelState("churn", (Route(1, 50.0), Route(2, 50.0)))
    target.apply(half)
    seen = versions_answering(url, 100)
    assert 35 <= seen["churn@2"] <= 65, seen
    assert target.live() == {"churn": half}
    # A new split is a reconfiguration: no replica was replaced, no model reloaded.
    assert replica_pid("v1") == pid
    assert sum(httpx.get(url, timeout=30).json()["answered"].values()) == answered + 100

    # Version 2 leaves, version 3 joins as a 50% shadow that never answers; requests
    # arriving during the change all get an answer.
    shadowed = ModelState("churn", (Route(1, 100.0), Route(3, 0.0, 50.0)))
    with load(url) as statuses:
        target.apply(shadowed)
    assert statuses and set(statuses) == {200}, Counter(statuses)
    before = httpx.get(url, timeout=30).json()["mirrored"].get("3", 0)
    seen = versions_answering(url, 60)
    assert seen == Counter({"churn@1": 60})
    assert target.live() == {"churn": shadowed}

    def mirrored() -> int:
        return int(httpx.get(url, timeout=30).json()["mirrored"].get("3", 0)) - before

    from tests.serving.conftest import wait_for

    wait_for(lambda: mirrored() >= 30, timeout=30)
    assert mirrored() == 30
    from ray import serve

    assert "v2" not in serve.status().applications["prod-churn"].deployments


def test_environments_are_apart_and_remove_stops_the_app(cluster: Cluster) -> None:
    import httpx
    from ray import serve

    prod = ray_target(cluster)
    pre_prod = ray_target(cluster, env="pre-prod", prefix="/{environment}/{model}")
    prod.apply(ModelState("churn", (Route(1, 100.0),)))
    pre_prod.apply(ModelState("churn", (Route(3, 100.0),)))
    assert post(f"{cluster.url}/pre-prod/churn").headers["x-seaway-version"] == "churn@3"
    assert set(prod.live()) == {"churn"} and prod.live()["churn"].routes == (Route(1, 100.0),)
    assert pre_prod.live()["churn"].routes == (Route(3, 100.0),)

    # Environment "pre" with model "prod-churn" would name its application the same.
    pre = ray_target(cluster, env="pre", prefix="/pre/{model}")
    assert pre.live() == {}
    with pytest.raises(UsageError, match="serves environment 'pre-prod'"):
        pre.apply(ModelState("prod-churn", (Route(1, 100.0),)))
    pre.remove("prod-churn")
    assert pre_prod.live()["churn"].routes == (Route(3, 100.0),)

    pre_prod.remove("churn")
    assert pre_prod.live() == {}
    assert "pre-prod-churn" not in serve.status().applications
    assert (
        httpx.post(
            f"{cluster.url}/pre-prod/churn", json={"instances": ROWS}, timeout=30
        ).status_code
        == 404
    )
    assert post(f"{cluster.url}/churn").status_code == 200, "prod is untouched"
    pre_prod.remove("churn")  # nothing left: nothing happens

    # A second environment on the default prefix would take prod's route: refused.
    with pytest.raises(UsageError, match="route_prefix"):
        ray_target(cluster, env="qa").apply(ModelState("churn", (Route(1, 100.0),)))
    assert "qa-churn" not in serve.status().applications

    # An application deleted behind seaway's back is not live any more.
    serve.delete("prod-churn")
    assert prod.live() == {}


def test_unknown_version_is_refused_before_ray_is_asked(cluster: Cluster) -> None:
    from seaway.errors import NotFound

    target = ray_target(cluster, env="qa", prefix="/qa/{model}")
    with pytest.raises(NotFound):
        target.apply(ModelState("churn", (Route(99, 100.0),)))
    assert target.live() == {}
