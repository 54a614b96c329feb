"""The `kubernetes` target: manifests in a folder that Argo CD or Flux syncs.

seaway talks to no cluster. It renders one file per model, `MODEL.yaml` (several YAML
documents), into `kubernetes.dir` (default `deploy/ENVIRONMENT/`, relative to the project
root) and a GitOps agent applies the folder. Rendering is deterministic: the same state and
settings give byte-identical files (fixed key order, no timestamps), a write goes to a
temporary file renamed over the old one, and a file whose content would not change is not
written at all, so its modification time and the agent's diff stay quiet.

Reading back is exact because seaway keeps its own facts in `seaway.dev/...` annotations
rather than reverse-engineering the Kubernetes fields: the environment, the split
(`seaway.dev/routes`, in order, with weights and shadow shares), each version's digest and
flavor, scale, batching, the signature requirement and the reason of the last change. A
manifest edited by hand no longer matches what seaway renders from its own annotations, so
`live()` does not count it as served and the next sync writes it again; a change of the
target's settings (namespace, image, storage URI) is picked up the same way.

`kind: kserve` renders one `serving.kserve.io/v1beta1` InferenceService per model:

- The predictor runs one version: `model.modelFormat.name` is the version's flavor (`sklearn`
  or `onnx`; other flavors have no KServe runtime and are refused) and `storageUri` is
  `kubernetes.storage_uri` with `{model}`, `{version}` and `{digest}` filled in.
- A canary is KServe's own: `canaryTrafficPercent: P` sends P% to the revision this spec
  creates and the rest to the previous revision KServe rolled out. seaway's stable version
  is that previous revision, so with two primaries the manifest names the candidate and
  `seaway.dev/stable` records which version KServe keeps. The stable one is the version the
  file last served fully (or the older one when there is no such file); KServe cannot split
  three ways, and such a split is refused. The percent is rounded to a whole number and kept
  within 1-99 so both revisions stay live; the exact weights are in the annotations.
- Scale: `minReplicas`/`maxReplicas` from the environment's scale (`min: 0` is KServe's
  scale to zero); batching: the predictor's `batcher` (`maxLatency` in whole milliseconds).
- Shadows: KServe has no request mirroring. Shadow versions are recorded in
  `seaway.dev/shadows` (and in the split) but nothing mirrors to them on the cluster.

`kind: deployment` renders, per served version, an `apps/v1` Deployment running
`seaway serve` from `kubernetes.image`, pinned to its version with `SEAWAY_SERVE_MODEL=NAME@N`
(store settings come from the optional Secret `seaway-store`), a Service selecting that
version's pods and an `autoscaling/v2` HorizontalPodAutoscaler; plus one Service per model
selecting the pods of every primary version. Plain Kubernetes cannot split by weight: the
model Service spreads requests over ready pods, so the split is whatever the replica counts
make it. The weights are therefore not turned into replica ratios; they are written on the
model Service (`seaway.dev/routes`) and each version's Service (`seaway.dev/weight`,
`seaway.dev/shadow`) for a service mesh or a Gateway API route to apply over the per-version
Services. An HPA cannot scale to zero (`minReplicas` is at least 1): with `min: 0` the
Deployment is rendered with `replicas: 0`, and Kubernetes leaves an HPA whose target has no
replicas alone until something (a person, KEDA) scales it up. Otherwise `replicas` is left
out so that the HPA owns it.

Object names are DNS labels: `_` becomes `-`, a name starting with a digit gets an `m-`
prefix, and a name longer than 63 characters is shortened with a hash. Two environments
rendering one model into the same namespace would collide; give each its own namespace.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from seaway.errors import UsageError
from seaway.gitops.targets.base import ModelState, Route

if TYPE_CHECKING:
    from seaway.project import Project
    from seaway.spec.environment import (
        BatchingSpec,
        EnvironmentSpec,
        KubernetesTargetSpec,
        ScaleSpec,
    )

log = logging.getLogger("seaway.gitops")

PREFIX = "seaway.dev/"
MANAGED_BY = "app.kubernetes.io/managed-by"
PORT = 8080
STORE_SECRET = "seaway-store"
KSERVE_FORMATS = {"sklearn": "sklearn", "onnx": "onnx"}
"""seaway flavor -> KServe model format (a ClusterServingRuntime serves each)."""

# An HPA needs CPU requests to compute utilisation; the environment file has no field for
# them yet, so a small request keeps the HPA working without reserving much.
CPU_REQUEST = "250m"
MEMORY_REQUEST = "256Mi"
CPU_TARGET_PERCENT = 80


@dataclass(frozen=True)
class VersionFacts:
    """What rendering needs to know about a version; immutable once registered."""

    digest: str
    flavor: str


@dataclass(frozen=True)
class _Manifest:
    """One parsed `MODEL.yaml`: the state it records and what rendering it again needs."""

    environment: str
    state: ModelState
    versions: dict[int, VersionFacts]
    reason: dict[str, Any] | None
    stable: int | None


# --- names and small values ----------------------------------------------------------------


def object_name(*parts: str) -> str:
    """A DNS-1035 label (Service and InferenceService names are checked against it)."""
    name = "-".join(parts).replace("_", "-").strip("-")
    if not name or not name[0].isalpha():
        name = f"m-{name}"
    if len(name) > 63:
        digest = hashlib.blake2b(name.encode(), digest_size=4).hexdigest()
        name = f"{name[:54].rstrip('-')}-{digest}"
    return name


def _label_value(value: str) -> str:
    # Label values must start and end with an alphanumeric character.
    return value.strip("-_.")[:63].strip("-_.")


def _number(value: float) -> float | int:
    """A weight as YAML shows it: 90 rather than 90.0 where it is whole."""
    return int(value) if float(value).is_integer() else float(value)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _scale_dict(scale: ScaleSpec) -> dict[str, Any]:
    return {
        "min": scale.min,
        "max": scale.max,
        "idle_timeout": str(scale.idle_timeout) if scale.idle_timeout is not None else None,
    }


def _batching_dict(batching: BatchingSpec) -> dict[str, int]:
    return {"max_batch": batching.max_batch, "max_wait_us": batching.max_wait_us}


# --- rendering ----------------------------------------------------------------------------


class _Renderer:
    """Turns one model's state into Kubernetes objects for one environment's settings."""

    def __init__(self, environment: str, settings: KubernetesTargetSpec) -> None:
        self.environment = environment
        self.settings = settings

    def render(
        self,
        state: ModelState,
        versions: dict[int, VersionFacts],
        reason: dict[str, Any] | None,
        previous_stable: int | None,
    ) -> str:
        import yaml

        if not any(r.weight > 0 for r in state.routes):
            raise UsageError(
                f"{state.model} has no version taking traffic in the split "
                f"{_json(_routes_json(state.routes))}",
                hint="a rendered model needs at least one version with a weight above 0",
            )
        if self.settings.kind == "kserve":
            docs, stable = self._kserve(state, versions, previous_stable)
        else:
            docs, stable = self._deployments(state, versions), None
        annotations = self._annotations(state, versions, reason, stable)
        docs[0]["metadata"]["annotations"] = annotations
        header = (
            f"# Rendered by seaway for environment {self.environment!r}: the next sync "
            "rewrites this file.\n"
        )
        body = yaml.dump_all(
            docs,
            Dumper=_dumper(),
            sort_keys=False,
            default_flow_style=False,
            width=1 << 16,
            explicit_start=True,
        )
        return header + body

    def _annotations(
        self,
        state: ModelState,
        versions: dict[int, VersionFacts],
        reason: dict[str, Any] | None,
        stable: int | None,
    ) -> dict[str, str]:
        shadows = state.shadows()
        out = {
            PREFIX + "environment": self.environment,
            PREFIX + "model": state.model,
            PREFIX + "routes": _json(_routes_json(state.routes)),
            PREFIX + "versions": _json(
                {
                    str(r.number): {
                        "digest": versions[r.number].digest,
                        "flavor": versions[r.number].flavor,
                    }
                    for r in state.routes
                }
            ),
            PREFIX + "require-signature": "true" if state.require_signature else "false",
        }
        if shadows:
            out[PREFIX + "shadows"] = _json({str(n): _number(p) for n, p in shadows.items()})
        if stable is not None:
            out[PREFIX + "stable"] = str(stable)
        if state.scale is not None:
            out[PREFIX + "scale"] = _json(_scale_dict(state.scale))
        if state.batching is not None:
            out[PREFIX + "batching"] = _json(_batching_dict(state.batching))
        if reason:
            out[PREFIX + "reason"] = _json(reason)
        return out

    def _metadata(self, name: str, labels: dict[str, str]) -> dict[str, Any]:
        return {
            "name": name,
            "namespace": self.settings.namespace,
            "labels": {MANAGED_BY: "seaway", **labels},
        }

    def _model_labels(self, model: str) -> dict[str, str]:
        return {
            "app.kubernetes.io/name": _label_value(object_name(model)),
            PREFIX + "environment": _label_value(self.environment),
        }

    # kserve ---------------------------------------------------------------------------

    def _kserve(
        self,
        state: ModelState,
        versions: dict[int, VersionFacts],
        previous_stable: int | None,
    ) -> tuple[list[dict[str, Any]], int]:
        primaries = [r for r in state.routes if r.weight > 0]
        if len(primaries) > 2:
            listed = ", ".join(f"{state.model}@{r.number}" for r in primaries)
            raise UsageError(
                f"KServe splits traffic between two revisions, and {state.model} would send "
                f"traffic to {len(primaries)}: {listed}",
                hint="use a canary between the stable version and one candidate, or "
                "`kubernetes.kind: deployment` with a service mesh",
            )
        canary: int | None = None
        if len(primaries) == 1:
            served = stable = primaries[0].number
        else:
            numbers = {r.number for r in primaries}
            stable = previous_stable if previous_stable in numbers else min(numbers)
            candidate = next(r for r in primaries if r.number != stable)
            served = candidate.number
            canary = min(99, max(1, round(candidate.weight)))
        facts = versions[served]
        fmt = KSERVE_FORMATS.get(facts.flavor)
        if fmt is None:
            raise UsageError(
                f"{state.model}@{served} has the flavor {facts.flavor!r}, which KServe has no "
                "model format for",
                hint="KServe serves sklearn and onnx versions; use `kubernetes.kind: "
                "deployment` to run `seaway serve` for other flavors",
            )
        predictor: dict[str, Any] = {}
        if state.scale is not None:
            predictor["minReplicas"] = state.scale.min
            predictor["maxReplicas"] = state.scale.max
        if canary is not None:
            predictor["canaryTrafficPercent"] = canary
        if state.batching is not None:
            predictor["batcher"] = {
                "maxBatchSize": state.batching.max_batch,
                "maxLatency": max(1, math.ceil(state.batching.max_wait_us / 1000)),
            }
        predictor["model"] = {
            "modelFormat": {"name": fmt},
            "storageUri": self._storage_uri(state.model, served, facts.digest),
        }
        doc = {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": self._metadata(object_name(state.model), self._model_labels(state.model)),
            "spec": {"predictor": predictor},
        }
        return [doc], stable

    def _storage_uri(self, model: str, number: int, digest: str) -> str:
        template = self.settings.storage_uri
        try:
            return template.format(model=model, version=number, digest=digest)
        except (KeyError, IndexError, ValueError) as exc:
            raise UsageError(
                f"kubernetes.storage_uri {template!r} cannot be filled in: {exc}",
                hint="use only the placeholders {model}, {version} and {digest}",
            ) from None

    # deployment -------------------------------------------------------------------------

    def _deployments(
        self, state: ModelState, versions: dict[int, VersionFacts]
    ) -> list[dict[str, Any]]:
        model_name = object_name(state.model)
        base = self._model_labels(state.model)
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": self._metadata(model_name, base),
            "spec": {
                "selector": {**base, PREFIX + "role": "primary"},
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
            },
        }
        docs: list[dict[str, Any]] = [service]
        for route in state.routes:
            docs.extend(self._version_objects(state, route, versions[route.number]))
        return docs

    def _version_objects(
        self, state: ModelState, route: Route, facts: VersionFacts
    ) -> list[dict[str, Any]]:
        name = object_name(state.model, f"v{route.number}")
        selector = {**self._model_labels(state.model), PREFIX + "version": str(route.number)}
        role = "primary" if route.weight > 0 else "shadow" if route.shadow > 0 else "pinned"
        env = [{"name": "SEAWAY_SERVE_MODEL", "value": f"{state.model}@{route.number}"}]
        if state.scale is not None and state.scale.idle_timeout is not None:
            env.append(
                {
                    "name": "SEAWAY_SERVE_IDLE_TIMEOUT",
                    "value": f"{state.scale.idle_timeout.seconds:g}",
                }
            )
        container = {
            "name": "seaway",
            "image": self.settings.image,
            "command": ["seaway"],
            "args": ["serve", "--host", "0.0.0.0", "--port", str(PORT)],
            "env": env,
            "envFrom": [{"secretRef": {"name": STORE_SECRET, "optional": True}}],
            "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
            "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": "http"}},
            "resources": {"requests": {"cpu": CPU_REQUEST, "memory": MEMORY_REQUEST}},
        }
        spec: dict[str, Any] = {}
        if state.scale is None:
            spec["replicas"] = 1
        elif state.scale.min == 0:
            spec["replicas"] = 0
        spec["selector"] = {"matchLabels": selector}
        spec["template"] = {
            "metadata": {
                "labels": {MANAGED_BY: "seaway", **selector, PREFIX + "role": role},
                "annotations": {PREFIX + "digest": facts.digest},
            },
            "spec": {"containers": [container]},
        }
        deployment = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": self._metadata(name, selector),
            "spec": spec,
        }
        service_meta = self._metadata(name, selector)
        service_meta["annotations"] = {
            PREFIX + "weight": f"{_number(route.weight)}",
            PREFIX + "shadow": f"{_number(route.shadow)}",
        }
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": service_meta,
            "spec": {
                "selector": selector,
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
            },
        }
        docs = [deployment, service]
        if state.scale is not None:
            docs.append(
                {
                    "apiVersion": "autoscaling/v2",
                    "kind": "HorizontalPodAutoscaler",
                    "metadata": self._metadata(name, selector),
                    "spec": {
                        "scaleTargetRef": {
                            "apiVersion": "apps/v1",
                            "kind": "Deployment",
                            "name": name,
                        },
                        "minReplicas": max(1, state.scale.min),
                        "maxReplicas": state.scale.max,
                        "metrics": [
                            {
                                "type": "Resource",
                                "resource": {
                                    "name": "cpu",
                                    "target": {
                                        "type": "Utilization",
                                        "averageUtilization": CPU_TARGET_PERCENT,
                                    },
                                },
                            }
                        ],
                    },
                }
            )
        return docs


def _routes_json(routes: tuple[Route, ...]) -> list[dict[str, Any]]:
    return [
        {"version": r.number, "weight": float(r.weight), "shadow": float(r.shadow)} for r in routes
    ]


def _dumper() -> Any:
    import yaml

    return getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _loader() -> Any:
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# --- reading back -------------------------------------------------------------------------


def parse_manifest(text: str, path: Path | None = None) -> _Manifest | None:
    """The state a rendered file records, or None when it is not one of seaway's files."""
    import yaml

    try:
        docs = [d for d in yaml.load_all(text, Loader=_loader()) if d is not None]
    except yaml.YAMLError as exc:
        log.warning("%s is not valid YAML, skipped: %s", path, exc)
        return None
    if not docs or not isinstance(docs[0], dict):
        return None
    meta = docs[0].get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    if not isinstance(annotations, dict) or PREFIX + "routes" not in annotations:
        return None
    try:
        return _from_annotations(annotations)
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("%s has unreadable seaway.dev annotations, skipped: %s", path, exc)
        return None


def _from_annotations(a: dict[str, Any]) -> _Manifest:
    from seaway.spec.environment import BatchingSpec, ScaleSpec
    from seaway.spec.types import Duration

    routes = tuple(
        Route(int(r["version"]), float(r["weight"]), float(r["shadow"]))
        for r in json.loads(a[PREFIX + "routes"])
    )
    versions = {
        int(n): VersionFacts(digest=str(v["digest"]), flavor=str(v["flavor"]))
        for n, v in json.loads(a[PREFIX + "versions"]).items()
    }
    scale = None
    if PREFIX + "scale" in a:
        raw = json.loads(a[PREFIX + "scale"])
        idle = raw.get("idle_timeout")
        scale = ScaleSpec(
            min=int(raw["min"]),
            max=int(raw["max"]),
            idle_timeout=Duration(idle) if idle is not None else None,
        )
    batching = None
    if PREFIX + "batching" in a:
        raw = json.loads(a[PREFIX + "batching"])
        batching = BatchingSpec(
            max_batch=int(raw["max_batch"]), max_wait_us=int(raw["max_wait_us"])
        )
    reason = json.loads(a[PREFIX + "reason"]) if PREFIX + "reason" in a else None
    stable = int(a[PREFIX + "stable"]) if PREFIX + "stable" in a else None
    state = ModelState(
        model=str(a[PREFIX + "model"]),
        routes=routes,
        scale=scale,
        batching=batching,
        require_signature=a.get(PREFIX + "require-signature") == "true",
    )
    return _Manifest(
        environment=str(a[PREFIX + "environment"]),
        state=state,
        versions=versions,
        reason=reason,
        stable=stable,
    )


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# --- the target ---------------------------------------------------------------------------


class KubernetesTarget:
    kind: ClassVar[str] = "kubernetes"

    def __init__(self, project: Project, environment: str, spec: EnvironmentSpec) -> None:
        self.project = project
        self.environment = environment
        self.spec = spec
        self.settings = spec.kubernetes
        self.directory = project.root / (self.settings.dir or f"deploy/{environment}")
        self._renderer = _Renderer(environment, self.settings)

    def path(self, model: str) -> Path:
        return self.directory / f"{model}.yaml"

    def render(
        self,
        state: ModelState,
        reason: dict[str, Any] | None = None,
        *,
        versions: dict[int, VersionFacts] | None = None,
        previous_stable: int | None = None,
    ) -> str:
        """The text of `state.model`'s file (looks the versions up when not given)."""
        facts = versions if versions is not None else self._facts(state, {})
        return self._renderer.render(state, facts, reason, previous_stable)

    def live(self) -> dict[str, ModelState]:
        out: dict[str, ModelState] = {}
        if not self.directory.is_dir():
            return out
        for path in sorted(self.directory.glob("*.yaml")):
            text = path.read_text(encoding="utf-8")
            manifest = parse_manifest(text, path)
            if manifest is None or manifest.environment != self.environment:
                continue
            if path.stem != manifest.state.model:
                continue
            try:
                again = self._renderer.render(
                    manifest.state, manifest.versions, manifest.reason, manifest.stable
                )
            except (UsageError, KeyError):
                again = None
            if again != text:
                # Edited by hand, or rendered with other settings: not what seaway serves.
                log.info("%s differs from its own annotations; it will be rewritten", path)
                continue
            details = {
                "manifest": self.project.relpath(path),
                "kind": self.settings.kind,
            }
            if manifest.stable is not None:
                details["stable"] = str(manifest.stable)
            out[manifest.state.model] = ModelState(
                model=manifest.state.model,
                routes=manifest.state.routes,
                scale=manifest.state.scale,
                batching=manifest.state.batching,
                require_signature=manifest.state.require_signature,
                details=details,
            )
        return out

    def apply(self, state: ModelState, reason: dict[str, Any] | None = None) -> None:
        path = self.path(state.model)
        old_text = path.read_text(encoding="utf-8") if path.is_file() else None
        old = parse_manifest(old_text, path) if old_text is not None else None
        if old is not None and old.environment != self.environment:
            raise UsageError(
                f"{self.project.relpath(path)} belongs to environment {old.environment!r}, "
                f"not {self.environment!r}",
                hint="give each environment its own `kubernetes.dir`",
            )
        facts = self._facts(state, old.versions if old is not None else {})
        stable = old.stable if old is not None else None
        if old is not None and old_text == self._renderer.render(state, facts, old.reason, stable):
            return  # only the reason would change: leave the file (and the agent) alone
        text = self._renderer.render(state, facts, reason, stable)
        if text != old_text:
            _write_atomic(path, text)

    def remove(self, model: str) -> None:
        path = self.path(model)
        if not path.is_file():
            return
        manifest = parse_manifest(path.read_text(encoding="utf-8"), path)
        if manifest is not None and manifest.environment != self.environment:
            return
        path.unlink()

    def _facts(self, state: ModelState, known: dict[int, VersionFacts]) -> dict[int, VersionFacts]:
        """Digest and flavor of every routed version; a registered version never changes,
        so what the file already records is reused without asking the store."""
        from seaway.registry.versions import get_version

        out: dict[int, VersionFacts] = {}
        for route in state.routes:
            if route.number in known:
                out[route.number] = known[route.number]
                continue
            version = get_version(self.project, f"{state.model}@{route.number}")
            out[route.number] = VersionFacts(digest=version.digest, flavor=version.flavor)
        return out


__all__ = ["KubernetesTarget", "VersionFacts", "object_name", "parse_manifest"]
