"""The Ray Serve deployments behind the `ray` target (imported only where Ray Serve runs).

An application holds one `VersionServer` deployment per served version, named `vN`, and a
`SplitRouter` ingress named `router`. Everything that changes during a rollout (the split,
the shadow shares, which versions exist, scale, batching) is deployment *configuration*:
the router's `user_config` and the versions' replica counts. The target pins each
deployment's code version to a hash of what its replicas were built from, so Ray applies
such a change to the running replicas (`reconfigure`) instead of replacing them; a new
split therefore neither reloads a model nor drops a request.

The router mirrors the gateway (`seaway.serving.router`): a request with an `x-seaway-key`
header lands on the version that key's bucket falls in (the same buckets the gateway uses,
so a key keeps its version across targets), others follow a smooth weighted round-robin,
and `shadow`% of requests are copied to each shadow without waiting for its answer. It
answers KServe v1 (`{"instances": [...]}` -> `{"predictions": [...]}`) and names the version
that answered in `x-seaway-version`. The router runs one replica so the unkeyed split is
exact; it does no model work.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray import serve

if TYPE_CHECKING:
    from ray.serve.handle import DeploymentHandle
    from starlette.requests import Request
    from starlette.responses import Response

    from seaway.serving.protocol import ModelInput
    from seaway.serving.router import ModelRoutes

KEY_HEADER = "x-seaway-key"
VERSION_HEADER = "x-seaway-version"
ROUTER = "router"


def version_deployment_name(number: int) -> str:
    return f"v{number}"


def _error(status: int, message: str, hint: str | None = None) -> tuple[int, bytes]:
    import json

    body: dict[str, Any] = {"error": message}
    if hint:
        body["hint"] = hint
    return status, json.dumps(body).encode()


@serve.deployment(max_ongoing_requests=64)
class VersionServer:
    """One registered version, loaded from the project's registry, predicting v1 requests."""

    def __init__(
        self,
        root: str,
        model: str,
        number: int,
        require_signature: bool,
        store_env: dict[str, str],
    ) -> None:
        # The store may be named only by the controller's environment (a PostgreSQL URL);
        # a replica is a fresh process and gets it here.
        os.environ.update(store_env)
        from seaway.project import Project
        from seaway.registry.loading import load_version
        from seaway.registry.versions import get_version
        from seaway.serving.app import limit_native_threads

        project = Project(Path(root))
        try:
            version = get_version(project, f"{model}@{number}")
            self.predictor = load_version(project, version, require_signature=require_signature)
        finally:
            project.close()
        self.ref = version.ref
        self.pool = ThreadPoolExecutor(max_workers=4, initializer=limit_native_threads)
        self.batcher: Any = None

    def reconfigure(self, config: dict[str, Any]) -> None:
        from seaway.serving.batching import Batcher

        batching = config.get("batching")
        if not batching:
            # Requests already queued in a batcher still run: its task drains the queue.
            self.batcher = None
        elif self.batcher is not None:
            self.batcher.max_batch = int(batching["max_batch"])
            self.batcher.max_wait_s = int(batching["max_wait_us"]) / 1e6
        else:
            self.batcher = Batcher(
                self._predict,
                self.pool,
                max_batch=int(batching["max_batch"]),
                max_wait_us=int(batching["max_wait_us"]),
            )

    def describe(self) -> dict[str, Any]:
        """Which version this replica serves, and its process (a restart changes it)."""
        return {"ref": self.ref, "pid": os.getpid()}

    def _predict(self, data: ModelInput) -> dict[str, Any]:
        import numpy as np

        return {"predict": np.asarray(self.predictor.predict(data.data))}

    async def predict(self, body: bytes) -> tuple[int, bytes]:
        from seaway.errors import SeawayError
        from seaway.serving import protocol

        try:
            data = protocol.decode_v1(body)
            if self.batcher is not None:
                outputs = await self.batcher.submit(data)
            else:
                loop = asyncio.get_running_loop()
                outputs = await loop.run_in_executor(self.pool, self._predict, data)
            return 200, protocol.encode_v1(outputs)
        except SeawayError as exc:
            return _error(exc.http_status, exc.message, exc.hint)
        except (ValueError, TypeError, KeyError) as exc:
            return _error(400, f"{self.ref} cannot use this input: {exc}")
        except Exception as exc:
            return _error(500, f"{self.ref} failed to predict: {type(exc).__name__}: {exc}")


@serve.deployment(max_ongoing_requests=256, ray_actor_options={"num_cpus": 0})
class SplitRouter:
    """The ingress: picks the version for each request and copies it to the shadows."""

    def __init__(self, versions: dict[str, DeploymentHandle]) -> None:
        # The bound versions anchor them in the application; versions added later by a
        # reconfiguration are looked up by name.
        self.handles: dict[int, DeploymentHandle] = {int(n): h for n, h in versions.items()}
        self.config: dict[str, Any] = {}
        self.routes: ModelRoutes | None = None
        self.answered: Counter[int] = Counter()
        self.mirrored: Counter[int] = Counter()
        self.pending: set[asyncio.Task[None]] = set()

    def reconfigure(self, config: dict[str, Any]) -> None:
        from seaway.serving.router import Router
        from seaway.serving.routes import Deployment, RoutingTable

        model = str(config["model"])
        table = RoutingTable(
            0,
            tuple(
                Deployment(model, int(r["version"]), float(r["weight"]), float(r["shadow"]))
                for r in config["routes"]
            ),
        )
        self.routes = Router(table).get(model)
        self.config = config

    def describe(self) -> dict[str, Any]:
        """The configuration this replica routes by, and what it has routed."""
        return {
            "config": self.config,
            "answered": {str(n): c for n, c in sorted(self.answered.items())},
            "mirrored": {str(n): c for n, c in sorted(self.mirrored.items())},
        }

    def _handle(self, number: int) -> DeploymentHandle:
        handle = self.handles.get(number)
        if handle is None:
            handle = serve.get_deployment_handle(version_deployment_name(number))
            self.handles[number] = handle
        return handle

    async def __call__(self, request: Request) -> Response:
        import json

        from starlette.responses import Response

        if request.method == "GET":
            return Response(json.dumps(self.describe()), media_type="application/json")
        model = str(self.config.get("model", ""))
        routes = self.routes
        picked = routes.pick(request.headers.get(KEY_HEADER)) if routes is not None else None
        if routes is None or picked is None:
            status, payload = _error(503, f"no version of {model!r} takes traffic")
            return Response(payload, status_code=status, media_type="application/json")
        body = await request.body()
        status, payload = await self._handle(picked.number).predict.remote(body)
        self.answered[picked.number] += 1
        if status == 200:
            for shadow in routes.mirrors(picked.number):
                task = asyncio.get_running_loop().create_task(self._mirror(shadow.number, body))
                self.pending.add(task)
                task.add_done_callback(self.pending.discard)
        return Response(
            payload,
            status_code=status,
            media_type="application/json",
            headers={VERSION_HEADER: f"{model}@{picked.number}"},
        )

    async def _mirror(self, number: int, body: bytes) -> None:
        # Nobody waits for a shadow's answer; a failing shadow must not disturb the caller.
        try:
            await self._handle(number).predict.remote(body)
            self.mirrored[number] += 1
        except Exception:
            return


__all__ = ["ROUTER", "SplitRouter", "VersionServer", "version_deployment_name"]
