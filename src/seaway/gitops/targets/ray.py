"""The `ray` target: each model of an environment is a Ray Serve application.

The application of model M in environment E is named `E-M` and served under
`ray.route_prefix` (default `/{model}`; `{environment}` may be used too, and must be where
two environments share a Ray cluster). It holds a deployment `vN` per served version, which
loads the version from the project's registry (`load_version`, checking its signature where
the environment requires one), and a router ingress that splits requests by weight, sticky
on `x-seaway-key`, and mirrors shadows (see `_ray_app`).

What is live is what Ray runs: `live()` lists the applications of this environment in
`serve.status()` and asks each router for the configuration it routes by, so an application
deleted by hand, or one whose versions are gone, is not reported. `apply` compares that
configuration with the wanted one and does nothing when they are equal; otherwise it
deploys in up to three steps, each waiting until Ray reports the application running, so
that traffic never points at a version that is not up: start the new versions, then move
the split, then stop the versions that left it. Replicas of an unchanged version are kept
(their code version is pinned to a hash of what they were built from; where a Ray release
does not allow pinning, Ray replaces them instead, which is slower but equally correct).

Scale: `min`/`max` become the version deployments' autoscaling bounds (`min: 0` scales to
zero after `idle_timeout`, Ray's `downscale_delay_s`); one replica is started at deploy time
either way, so a version that cannot load fails `apply` rather than its first request.
Batching: each version replica batches with the gateway's batcher (`max_batch` rows).

Ray workers need the project: its root path travels as an init argument (a cluster must
see the project at that path), and so do `SEAWAY_METADATA_URL` and `SEAWAY_ARTIFACTS_URL`
when set here, because a replica is a fresh process that cannot see this one's environment.

With `ray.address` unset, the target joins the Ray this process is connected to, or starts
one bound to 127.0.0.1 (dashboard off, Serve's HTTP proxy on 127.0.0.1); that Ray lives as
long as this process, which suits `seaway controller`. With an address it connects there.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from typing import TYPE_CHECKING, Any, ClassVar

from seaway._ray import LOOPBACK, connect, import_ray
from seaway.errors import UsageError
from seaway.gitops.targets.base import ModelState, Route

if TYPE_CHECKING:
    from seaway.project import Project
    from seaway.spec.environment import EnvironmentSpec, ScaleSpec

log = logging.getLogger("seaway.gitops")

STORE_ENV = ("SEAWAY_METADATA_URL", "SEAWAY_ARTIFACTS_URL")
DESCRIBE_TIMEOUT_S = 30.0
# Application states in which a router may be asked what it serves.
_SERVING = {"RUNNING", "DEPLOYING", "UNHEALTHY"}


def _scale_dict(scale: ScaleSpec | None) -> dict[str, Any] | None:
    if scale is None:
        return None
    idle = scale.idle_timeout
    return {"min": scale.min, "max": scale.max, "idle_timeout": str(idle) if idle else None}


def _pin(deployment: Any, parts: dict[str, Any]) -> Any:
    """`deployment` with its code version fixed to a hash of `parts`.

    Ray Serve keeps replicas whose code version is unchanged and applies configuration
    changes to them; without a version it draws a random one at every deploy and replaces
    every replica. Pinning goes through an option Ray keeps for its own use, so a release
    that refuses it gets the unpinned deployment.
    """
    import seaway

    text = json.dumps({"seaway": seaway.__version__, **parts}, sort_keys=True, default=str)
    version = hashlib.blake2b(text.encode(), digest_size=12).hexdigest()
    try:
        return deployment.options(version=version, _internal=True)
    except (TypeError, ValueError):
        return deployment


class RayTarget:
    kind: ClassVar[str] = "ray"

    def __init__(self, project: Project, environment: str, spec: EnvironmentSpec) -> None:
        self.project = project
        self.environment = environment
        self.spec = spec
        self.settings = spec.ray
        self._connected = False

    # --- names ------------------------------------------------------------------------

    def app_name(self, model: str) -> str:
        return f"{self.environment}-{model}"

    def route_prefix(self, model: str) -> str:
        template = self.settings.route_prefix
        try:
            prefix = template.format(model=model, environment=self.environment)
        except (KeyError, IndexError, ValueError) as exc:
            raise UsageError(
                f"ray.route_prefix {template!r} cannot be filled in: {exc}",
                hint="use only the placeholders {model} and {environment}",
            ) from None
        return prefix if prefix.startswith("/") else f"/{prefix}"

    # --- connection -------------------------------------------------------------------

    def _serve(self) -> Any:
        address = self.settings.address
        ray = import_ray(
            local=address is None,
            missing="the ray target needs Ray Serve",
            hint="pip install 'seaway[ray-serve]', or use another target",
            serve=True,
        )
        from ray import serve

        if self._connected:
            return serve
        connect(
            ray,
            address,
            hint="check ray.address in the environment file (host:port of the head node's "
            "GCS, or 'auto')",
            address="local",
        )
        # Serve already running (started by the cluster's operator, or a test) is used as
        # it is; one started here listens on loopback only.
        serve.start(http_options={"host": LOOPBACK} if address is None else None)
        self._connected = True
        return serve

    # --- reading ----------------------------------------------------------------------

    def _running(self) -> dict[str, Any]:
        """This environment's applications, by name, as `serve.status()` reports them."""
        serve = self._serve()
        prefix = f"{self.environment}-"
        return {
            name: app
            for name, app in serve.status().applications.items()
            if name.startswith(prefix) and str(getattr(app.status, "value", app.status)) in _SERVING
        }

    def _describe(self, name: str) -> dict[str, Any] | None:
        serve = self._serve()
        try:
            handle = serve.get_app_handle(name)
            described: dict[str, Any] = handle.describe.remote().result(
                timeout_s=DESCRIBE_TIMEOUT_S
            )
        except Exception as exc:  # gone meanwhile, or its router does not answer
            log.info("Ray application %s did not describe itself: %s", name, exc)
            return None
        return described

    def _live_config(
        self, name: str, app: Any, described: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """The configuration the application's router runs by, when it is this
        environment's and every version it routes to has its deployment."""
        if described is None:
            return None
        config = described.get("config") or {}
        if config.get("environment") != self.environment or config.get("app") != name:
            return None  # another environment's application whose name shares our prefix
        from seaway.gitops.targets._ray_app import version_deployment_name

        present = set(app.deployments)
        wanted = {version_deployment_name(int(r["version"])) for r in config.get("routes", [])}
        if not wanted <= present:
            return None
        return config

    def live(self) -> dict[str, ModelState]:
        out: dict[str, ModelState] = {}
        for name, app in sorted(self._running().items()):
            config = self._live_config(name, app, self._describe(name))
            if config is None:
                continue
            state = _state_from_config(config)
            out[state.model] = ModelState(
                model=state.model,
                routes=state.routes,
                scale=state.scale,
                batching=state.batching,
                require_signature=state.require_signature,
                details={
                    "application": name,
                    "route_prefix": str(config.get("route_prefix", "")),
                    "status": str(getattr(app.status, "value", app.status)),
                },
            )
        return out

    # --- writing ----------------------------------------------------------------------

    def _config(self, state: ModelState, digests: dict[int, str]) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "model": state.model,
            "app": self.app_name(state.model),
            "route_prefix": self.route_prefix(state.model),
            "root": str(self.project.root),
            "routes": [
                {"version": r.number, "weight": float(r.weight), "shadow": float(r.shadow)}
                for r in state.routes
            ],
            "digests": {str(n): d for n, d in sorted(digests.items())},
            "scale": _scale_dict(state.scale),
            "batching": (
                {"max_batch": state.batching.max_batch, "max_wait_us": state.batching.max_wait_us}
                if state.batching is not None
                else None
            ),
            "require_signature": bool(state.require_signature),
        }

    def apply(self, state: ModelState, reason: dict[str, Any] | None = None) -> None:
        if not any(r.weight > 0 for r in state.routes):
            raise UsageError(
                f"{state.model} has no version taking traffic",
                hint="a model served on Ray needs at least one version with a weight above 0",
            )
        name = self.app_name(state.model)
        app = self._running().get(name)
        described = self._describe(name) if app is not None else None
        owner = _owner(described)
        if owner is not None and owner != self.environment:
            raise UsageError(
                f"the Ray application {name} serves environment {owner!r}, not "
                f"{self.environment!r}",
                hint="environment and model names joined by '-' collide; rename one of them",
            )
        live = self._live_config(name, app, described)
        digests = self._digests(state, live)
        wanted = self._config(state, digests)
        if live is not None and _comparable(live) == wanted:
            return
        wanted["reason"] = reason or {}
        new_versions = [r.number for r in state.routes]
        if live is None:
            self._deploy(wanted, new_versions)
            return
        old_versions = [int(r["version"]) for r in live["routes"]]
        union = old_versions + [n for n in new_versions if n not in old_versions]
        if set(new_versions) - set(old_versions):
            # The new versions come up first, while the live split still routes around them.
            self._deploy({**live, **_settings_of(wanted), "routes": live["routes"]}, union)
        if set(old_versions) - set(new_versions):
            self._deploy(wanted, union)  # move traffic off the leaving versions...
        self._deploy(wanted, new_versions)  # ...before they are stopped

    def _digests(self, state: ModelState, live: dict[str, Any] | None) -> dict[int, str]:
        """The digest of every routed version, checking that each exists before Ray is
        asked to load it; a version's digest never changes, so known ones are reused."""
        from seaway.registry.versions import get_version

        known = {int(n): str(d) for n, d in (live or {}).get("digests", {}).items()}
        out: dict[int, str] = {}
        for route in state.routes:
            if route.number in known:
                out[route.number] = known[route.number]
            else:
                out[route.number] = get_version(
                    self.project, f"{state.model}@{route.number}"
                ).digest
        return out

    def _deploy(self, config: dict[str, Any], versions: list[int]) -> None:
        from seaway.gitops.targets._ray_app import (
            ROUTER,
            SplitRouter,
            VersionServer,
            version_deployment_name,
        )

        serve = self._serve()
        # `@serve.deployment` turned the classes into Deployments; type checkers see classes.
        versions_cls: Any = VersionServer
        router_cls: Any = SplitRouter
        model = str(config["model"])
        store_env = {k: os.environ[k] for k in STORE_ENV if os.environ.get(k)}
        bound: dict[str, Any] = {}
        for number in versions:
            args = {
                "root": config["root"],
                "model": model,
                "number": number,
                "require_signature": bool(config["require_signature"]),
                "store_env": store_env,
            }
            deployment = versions_cls.options(
                name=version_deployment_name(number),
                user_config={"batching": config["batching"]},
                **_replicas(config["scale"]),
            )
            deployment = _pin(deployment, {"class": "VersionServer", **args})
            bound[str(number)] = deployment.bind(**args)
        router = router_cls.options(name=ROUTER, user_config=config)
        router = _pin(router, {"class": "SplitRouter", "app": config["app"]})
        try:
            serve.run(
                router.bind(versions=bound),
                name=str(config["app"]),
                route_prefix=str(config["route_prefix"]),
            )
        except Exception as exc:
            raise UsageError(
                f"Ray Serve could not deploy {config['app']} "
                f"({', '.join(f'{model}@{n}' for n in versions)}): {exc}",
                hint="check the Ray Serve logs of the application; give each environment "
                "its own ray.route_prefix (for example /{environment}/{model})",
            ) from exc

    def remove(self, model: str) -> None:
        name = self.app_name(model)
        serve = self._serve()
        if name not in serve.status().applications:
            return
        if _owner(self._describe(name)) not in (None, self.environment):
            return  # another environment's application that happens to share the name
        serve.delete(name)


def _owner(described: dict[str, Any] | None) -> str | None:
    """The environment an application says it serves (None: it did not answer)."""
    if described is None:
        return None
    owner = (described.get("config") or {}).get("environment")
    return str(owner) if owner is not None else None


def _settings_of(config: dict[str, Any]) -> dict[str, Any]:
    """Everything in `config` but the split."""
    return {k: v for k, v in config.items() if k != "routes"}


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k != "reason"}


def _replicas(scale: dict[str, Any] | None) -> dict[str, Any]:
    if scale is None:
        return {"num_replicas": 1}
    low, high = int(scale["min"]), int(scale["max"])
    if low == high:
        return {"num_replicas": low}
    autoscaling: dict[str, Any] = {
        "min_replicas": low,
        "max_replicas": high,
        "initial_replicas": max(1, low),
    }
    if scale.get("idle_timeout"):
        from seaway.spec.types import Duration

        autoscaling["downscale_delay_s"] = Duration(scale["idle_timeout"]).seconds
    return {"autoscaling_config": autoscaling}


def _state_from_config(config: dict[str, Any]) -> ModelState:
    from seaway.spec.environment import BatchingSpec, ScaleSpec
    from seaway.spec.types import Duration

    scale = None
    if config.get("scale"):
        raw = config["scale"]
        idle = raw.get("idle_timeout")
        scale = ScaleSpec(
            min=int(raw["min"]),
            max=int(raw["max"]),
            idle_timeout=Duration(idle) if idle else None,
        )
    batching = None
    if config.get("batching"):
        raw = config["batching"]
        batching = BatchingSpec(
            max_batch=int(raw["max_batch"]), max_wait_us=int(raw["max_wait_us"])
        )
    return ModelState(
        model=str(config["model"]),
        routes=tuple(
            Route(int(r["version"]), float(r["weight"]), float(r["shadow"]))
            for r in config["routes"]
        ),
        scale=scale,
        batching=batching,
        require_signature=bool(config.get("require_signature")),
    )


__all__ = ["RayTarget"]
