"""The `local` target: the gateway's routing table in the metadata store.

Every gateway reading this store serves the table, so the local target has one namespace
of model names: two environments with the local target cannot both serve one model (the
reconciler refuses that plan). `live` reports every model in the table; which of them an
environment owns is the reconciler's business (what its file names, and what it managed
at the last sync).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from seaway.gitops.targets.base import ModelState
from seaway.serving import routes as routing

if TYPE_CHECKING:
    from seaway.project import Project
    from seaway.spec.environment import BatchingSpec, EnvironmentSpec, ScaleSpec


def serving_scale(scale: ScaleSpec | None) -> routing.ScaleSpec | None:
    """The environment file's scale as the gateway's: min above 0 keeps the version loaded."""
    if scale is None:
        return None
    idle = scale.idle_timeout.seconds if scale.idle_timeout is not None else None
    return routing.ScaleSpec(idle_timeout_s=idle, min=1 if scale.min > 0 else 0)


def serving_batching(batching: BatchingSpec | None) -> routing.BatchingSpec | None:
    if batching is None:
        return None
    return routing.BatchingSpec(max_batch=batching.max_batch, max_wait_us=batching.max_wait_us)


def _spec_scale(value: routing.ScaleSpec | None) -> ScaleSpec | None:
    from seaway.spec.environment import ScaleSpec
    from seaway.spec.types import Duration

    if value is None:
        return None
    idle = Duration(f"{value.idle_timeout_s:g}s") if value.idle_timeout_s is not None else None
    return ScaleSpec(min=value.min, max=max(1, value.min), idle_timeout=idle)


def _spec_batching(value: routing.BatchingSpec | None) -> BatchingSpec | None:
    from seaway.spec.environment import BatchingSpec

    if value is None:
        return None
    return BatchingSpec(max_batch=value.max_batch, max_wait_us=value.max_wait_us)


class LocalTarget:
    kind: ClassVar[str] = "local"

    def __init__(self, project: Project, environment: str, spec: EnvironmentSpec) -> None:
        self.project = project
        self.environment = environment
        self.spec = spec

    def live(self, models: Iterable[str] | None = None) -> dict[str, ModelState]:
        """What the routing table serves: every model, or those in `models` (the
        reconciler's plan reads only the environments it must judge again)."""
        table = routing.load_table(self.project, models)
        by_model: dict[str, list[routing.Deployment]] = {}
        # One pass: asking the table per model would cost N^2 over thousands of models.
        for d in table.deployments:
            by_model.setdefault(d.model, []).append(d)
        out: dict[str, ModelState] = {}
        for model, deps in by_model.items():
            first = deps[0]
            out[model] = ModelState(
                model=model,
                routes=tuple(routing.Route(d.number, d.weight, d.shadow) for d in deps),
                scale=_spec_scale(first.scale),
                batching=_spec_batching(first.batching),
                require_signature=any(d.require_signature for d in deps),
                details={"revision": str(table.revision)},
            )
        return out

    def apply(self, state: ModelState, reason: dict[str, Any] | None = None) -> None:
        routing.set_routes(
            self.project,
            state.model,
            list(state.routes),
            batching=serving_batching(state.batching),
            scale=serving_scale(state.scale),
            require_signature=state.require_signature,
            reason={"environment": self.environment, **(reason or {})},
        )

    def remove(self, model: str) -> None:
        if model in {d.model for d in routing.load_table(self.project).deployments}:
            routing.set_routes(self.project, model, [], reason={"environment": self.environment})


__all__ = ["LocalTarget", "serving_batching", "serving_scale"]
