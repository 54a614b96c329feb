"""The kubernetes target: rendered manifests that validate, read back exactly and stay put."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from seaway.errors import NotFound, UsageError
from seaway.gitops.targets import make_target
from seaway.gitops.targets.base import ModelState, Route
from seaway.gitops.targets.kubernetes import KubernetesTarget, VersionFacts, object_name
from seaway.project import Project
from seaway.spec.environment import BatchingSpec, EnvironmentSpec, ScaleSpec
from seaway.spec.types import Duration

DATA = Path(__file__).parent / "data"
K8S_VERSIONS = ("1.28.0", "1.37.0")

FACTS = {
    6: VersionFacts(digest="d6" * 32, flavor="sklearn"),
    7: VersionFacts(digest="d7" * 32, flavor="sklearn"),
    8: VersionFacts(digest="d8" * 32, flavor="sklearn"),
    9: VersionFacts(digest="d9" * 32, flavor="onnx"),
}

DIRECT = ModelState("churn", (Route(7, 100.0, 0.0),), scale=ScaleSpec(min=1, max=3))
CANARY = ModelState(
    "churn",
    (Route(7, 90.0, 0.0), Route(8, 10.0, 0.0)),
    scale=ScaleSpec(min=1, max=4),
    batching=BatchingSpec(max_batch=16, max_wait_us=2500),
)
SHADOW = ModelState("churn", (Route(7, 100.0, 0.0), Route(9, 0.0, 25.0)), require_signature=True)
TO_ZERO = ModelState(
    "churn",
    (Route(9, 100.0, 0.0),),
    scale=ScaleSpec(min=0, max=2, idle_timeout=Duration("15m")),
)
STATES = {"direct": DIRECT, "canary": CANARY, "shadow": SHADOW, "scale-to-zero": TO_ZERO}


def env_spec(kind: str = "kserve", **settings: Any) -> EnvironmentSpec:
    return EnvironmentSpec.model_validate(
        {
            "target": "kubernetes",
            "kubernetes": {
                "kind": kind,
                "namespace": "ml-prod",
                "storage_uri": "s3://models/{model}/{version}?sha={digest}",
                **settings,
            },
        }
    )


@pytest.fixture
def bare(tmp_path: Path) -> Project:
    """A project whose store is never opened: these tests give the version facts."""
    root = tmp_path / "proj"
    root.mkdir()
    (root / "seaway.yaml").write_text("name: demo\n")
    return Project(root)


def target(project: Project, kind: str = "kserve", env: str = "prod", **settings: Any):
    t = make_target("kubernetes", project, env, env_spec(kind, **settings))
    assert isinstance(t, KubernetesTarget)
    return t


def docs_of(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


def kserve_validator() -> Any:
    import jsonschema

    schema = json.loads((DATA / "kserve_v1beta1_schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


# --- kserve --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(STATES))
def test_kserve_manifests_validate_against_the_crd_schema(bare: Project, name: str) -> None:
    text = target(bare).render(STATES[name], versions=FACTS)
    docs = docs_of(text)
    assert len(docs) == 1
    isvc = docs[0]
    errors = [e.message for e in kserve_validator().iter_errors(isvc)]
    assert errors == []
    meta = isvc["metadata"]
    assert meta["name"] == "churn" and meta["namespace"] == "ml-prod"
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "seaway"
    assert meta["annotations"]["seaway.dev/environment"] == "prod"


def test_kserve_maps_the_split_scale_and_batching(bare: Project) -> None:
    t = target(bare)
    direct = docs_of(t.render(DIRECT, versions=FACTS))[0]["spec"]["predictor"]
    assert direct == {
        "minReplicas": 1,
        "maxReplicas": 3,
        "model": {
            "modelFormat": {"name": "sklearn"},
            "storageUri": f"s3://models/churn/7?sha={'d7' * 32}",
        },
    }

    canary_doc = docs_of(t.render(CANARY, versions=FACTS))[0]
    canary = canary_doc["spec"]["predictor"]
    # The spec names the candidate; KServe keeps the previous revision (7) for the rest.
    assert canary["canaryTrafficPercent"] == 10
    assert canary["model"]["storageUri"].startswith("s3://models/churn/8?")
    assert canary["batcher"] == {"maxBatchSize": 16, "maxLatency": 3}
    assert canary_doc["metadata"]["annotations"]["seaway.dev/stable"] == "7"

    zero = docs_of(t.render(TO_ZERO, versions=FACTS))[0]["spec"]["predictor"]
    assert zero["minReplicas"] == 0 and zero["maxReplicas"] == 2
    assert zero["model"]["modelFormat"] == {"name": "onnx"}

    shadow_doc = docs_of(t.render(SHADOW, versions=FACTS))[0]
    # KServe cannot mirror: the shadow is recorded, the predictor serves only version 7.
    assert json.loads(shadow_doc["metadata"]["annotations"]["seaway.dev/shadows"]) == {"9": 25}
    assert "canaryTrafficPercent" not in shadow_doc["spec"]["predictor"]
    assert shadow_doc["spec"]["predictor"]["model"]["storageUri"].startswith("s3://models/churn/7?")


def test_kserve_canary_keeps_the_version_kserve_already_runs_as_stable(bare: Project) -> None:
    """Rolling back by canary to an older version: 7 was fully served, 6 is the candidate."""
    state = ModelState("churn", (Route(7, 80.0, 0.0), Route(6, 20.0, 0.0)))
    t = target(bare)
    predictor = docs_of(t.render(state, versions=FACTS, previous_stable=7))[0]["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 20
    assert predictor["model"]["storageUri"].startswith("s3://models/churn/6?")
    # With no previous file the older version counts as stable.
    fresh = docs_of(t.render(state, versions=FACTS))[0]["spec"]["predictor"]
    assert fresh["canaryTrafficPercent"] == 80
    assert fresh["model"]["storageUri"].startswith("s3://models/churn/7?")


def test_kserve_refuses_what_it_cannot_express(bare: Project) -> None:
    t = target(bare)
    three = ModelState("churn", (Route(6, 50.0), Route(7, 30.0), Route(8, 20.0)))
    with pytest.raises(UsageError, match="two revisions"):
        t.render(three, versions=FACTS)
    python = ModelState("churn", (Route(5, 100.0),))
    with pytest.raises(UsageError, match="flavor 'python'"):
        t.render(python, versions={5: VersionFacts("d5" * 32, "python")})
    with pytest.raises(UsageError, match="storage_uri"):
        target(bare, storage_uri="s3://m/{bucket}/{model}").render(DIRECT, versions=FACTS)


# --- deployment ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(STATES))
def test_deployment_manifests_validate_against_kubernetes_schemas(bare: Project, name: str) -> None:
    import kubernetes_validate

    text = target(bare, "deployment").render(STATES[name], versions=FACTS)
    docs = docs_of(text)
    for doc in docs:
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)
        assert doc["metadata"]["namespace"] == "ml-prod"
        assert doc["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "seaway"
    kinds = [d["kind"] for d in docs]
    versions = len(STATES[name].routes)
    hpas = versions if STATES[name].scale is not None else 0
    assert kinds.count("Deployment") == versions
    assert kinds.count("Service") == versions + 1
    assert kinds.count("HorizontalPodAutoscaler") == hpas


def by_kind_name(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def test_deployment_kind_splits_through_services_and_scales_with_hpas(bare: Project) -> None:
    t = target(bare, "deployment", image="registry.example/churn:1.2")
    objs = by_kind_name(docs_of(t.render(CANARY, versions=FACTS)))
    model_svc = objs[("Service", "churn")]
    assert model_svc["spec"]["selector"]["seaway.dev/role"] == "primary"
    assert [
        r["weight"] for r in json.loads(model_svc["metadata"]["annotations"]["seaway.dev/routes"])
    ] == [90, 10]
    v8_svc = objs[("Service", "churn-v8")]
    assert v8_svc["metadata"]["annotations"]["seaway.dev/weight"] == "10"
    assert v8_svc["spec"]["selector"]["seaway.dev/version"] == "8"
    dep = objs[("Deployment", "churn-v8")]
    pod = dep["spec"]["template"]
    assert set(dep["spec"]["selector"]["matchLabels"].items()) <= set(
        pod["metadata"]["labels"].items()
    )
    container = pod["spec"]["containers"][0]
    assert container["image"] == "registry.example/churn:1.2"
    assert {"name": "SEAWAY_SERVE_MODEL", "value": "churn@8"} in container["env"]
    assert "replicas" not in dep["spec"], "the HPA owns the replica count"
    hpa = objs[("HorizontalPodAutoscaler", "churn-v8")]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 4)
    assert hpa["spec"]["scaleTargetRef"]["name"] == "churn-v8"

    shadow = by_kind_name(docs_of(t.render(SHADOW, versions=FACTS)))
    labels = shadow[("Deployment", "churn-v9")]["spec"]["template"]["metadata"]["labels"]
    assert labels["seaway.dev/role"] == "shadow", "the model Service must not send it traffic"

    zero = by_kind_name(docs_of(t.render(TO_ZERO, versions=FACTS)))
    assert zero[("Deployment", "churn-v9")]["spec"]["replicas"] == 0
    assert zero[("HorizontalPodAutoscaler", "churn-v9")]["spec"]["minReplicas"] == 1
    env = zero[("Deployment", "churn-v9")]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "SEAWAY_SERVE_IDLE_TIMEOUT", "value": "900"} in env


def test_object_names_are_dns_labels() -> None:
    assert object_name("churn_classifier", "v7") == "churn-classifier-v7"
    assert object_name("7up") == "m-7up"
    long = object_name("a" * 70, "v12")
    assert len(long) <= 63 and long == object_name("a" * 70, "v12")
    assert long != object_name("a" * 71, "v12")


# --- determinism, round trip, idempotence (the real registry) --------------------------------


@pytest.mark.parametrize("kind", ["kserve", "deployment"])
def test_rendering_is_deterministic(bare: Project, kind: str) -> None:
    one = target(bare, kind).render(CANARY, {"revision": "abc", "rollout": 3}, versions=FACTS)
    two = target(bare, kind).render(CANARY, {"rollout": 3, "revision": "abc"}, versions=FACTS)
    assert one.encode() == two.encode()


@pytest.fixture
def registered(project: Project) -> Project:
    """Versions 1-3 of `churn`, real sklearn models in the project's store."""
    from tests.serving.conftest import register, save_classifier

    models = project.root / "models"
    for i, c in enumerate((1.0, 0.5, 0.25), start=1):
        assert register(project, "churn", save_classifier(models / f"m{i}.skops", C=c)) == i
    return project


def registered_states() -> dict[str, ModelState]:
    return {
        "direct": ModelState("churn", (Route(1, 100.0),), scale=ScaleSpec(min=1, max=3)),
        "canary": ModelState(
            "churn",
            (Route(1, 90.0), Route(2, 10.0)),
            scale=ScaleSpec(min=1, max=4),
            batching=BatchingSpec(max_batch=8, max_wait_us=500),
        ),
        "shadow": ModelState(
            "churn", (Route(2, 100.0), Route(3, 0.0, 20.0)), require_signature=True
        ),
        "scale-to-zero": ModelState(
            "churn", (Route(3, 100.0),), scale=ScaleSpec(min=0, max=2, idle_timeout=Duration("15m"))
        ),
    }


@pytest.mark.parametrize("kind", ["kserve", "deployment"])
def test_apply_then_live_round_trips_and_apply_is_idempotent(
    registered: Project, kind: str
) -> None:
    from seaway.registry.versions import get_version

    t = target(registered, kind)
    path = registered.root / "deploy" / "prod" / "churn.yaml"
    for name, state in registered_states().items():
        t.apply(state, reason={"revision": f"rev-{name}"})
        live = t.live()
        assert live == {"churn": state}, name
        assert live["churn"].details["manifest"] == "deploy/prod/churn.yaml"
        first = path.stat().st_mtime_ns
        text = path.read_text()
        # Same state again, even for another git revision: the file is left alone.
        t.apply(state, reason={"revision": "something-else"})
        t.apply(state)
        assert path.stat().st_mtime_ns == first, name
        assert path.read_text() == text
    annotations = docs_of(path.read_text())[0]["metadata"]["annotations"]
    digest = get_version(registered, "churn@3").digest
    assert json.loads(annotations["seaway.dev/versions"])["3"] == {
        "digest": digest,
        "flavor": "sklearn",
    }
    assert json.loads(annotations["seaway.dev/reason"]) == {"revision": "rev-scale-to-zero"}
    # Nothing but the manifest is left in the folder (the temporary file was renamed).
    assert [p.name for p in path.parent.iterdir()] == ["churn.yaml"]


def test_remove_deletes_the_models_file(registered: Project) -> None:
    t = target(registered)
    state = registered_states()["direct"]
    t.apply(state)
    other = ModelState("fraud", (Route(1, 100.0),))
    (t.directory / "README.md").write_text("not a manifest\n")
    t.remove("fraud")  # not served: nothing happens
    t.remove("churn")
    assert not t.path("churn").exists()
    assert t.live() == {}
    assert (t.directory / "README.md").exists()
    with pytest.raises(NotFound, match="fraud"):
        t.apply(other)  # an unknown model is not rendered
    assert not t.path("fraud").exists()


def test_edited_or_foreign_files_are_not_live(registered: Project) -> None:
    t = target(registered)
    state = registered_states()["canary"]
    t.apply(state)
    path = t.path("churn")
    path.write_text(
        path.read_text().replace("canaryTrafficPercent: 10", "canaryTrafficPercent: 50")
    )
    assert t.live() == {}, "a hand edit is drift: the file no longer says what seaway rendered"
    t.apply(state)
    assert t.live() == {"churn": state}
    # Settings changed in the environment file: every manifest is rendered again.
    moved = target(registered, namespace="ml-other")
    assert moved.live() == {}
    moved.apply(state)
    assert docs_of(path.read_text())[0]["metadata"]["namespace"] == "ml-other"
    # Another environment's target reads the same folder but does not claim the model...
    staging = target(registered, env="staging", dir="deploy/prod")
    assert staging.live() == {}
    staging.remove("churn")
    assert path.exists()
    # ...and refuses to overwrite it.
    with pytest.raises(UsageError, match="belongs to environment 'prod'"):
        staging.apply(state)


def test_refused_split_writes_nothing(registered: Project) -> None:
    t = target(registered)
    t.apply(registered_states()["direct"])
    before = t.path("churn").read_bytes()
    with pytest.raises(UsageError):
        t.apply(ModelState("churn", (Route(1, 50.0), Route(2, 30.0), Route(3, 20.0))))
    assert t.path("churn").read_bytes() == before
