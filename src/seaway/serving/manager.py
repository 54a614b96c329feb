"""Model versions in memory: loaded on first request, unloaded when idle or over budget.

The manager lives on the gateway's event loop; only `prefetch` (reading version metadata
from the store) runs on the poller's thread. Its rules:

- **Load on first request, once.** The first request for a version starts one load task
  (`seaway.registry.load_version` in a worker thread, never on the event loop); concurrent
  first requests await the same task (single flight). The time is reported as a cold start.
  Signatures are verified when the deployment asks (`require_signature`) or the model's
  spec does.
- **Failure is per version.** A version that fails to load answers 503 with the reason, for
  that version only, and is tried again after `retry_after_s` or when the routing table
  changes; every other model keeps serving.
- **Scale to zero.** `sweep` unloads versions idle longer than their deployment's
  `scale.idle_timeout_s` (the gateway's default otherwise); `scale.min: 1` keeps one loaded
  and loads it as soon as it is deployed.
- **Memory budget.** A loaded version is charged its files' size times `MEMORY_FACTOR` (an
  estimate: measuring RSS growth is unreliable while other loads run at the same time);
  when the total passes the budget, the least recently used other versions are unloaded.
  Requests already holding a predictor finish with it; the next one reloads.

Predictions run through `predict_outputs`, which returns `predict` and, for models that
have it, `predict_proba`; for scikit-learn classifiers whose `predict` is the arg-max of
`predict_proba` it computes the probabilities once and derives the labels from them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from seaway.errors import SeawayError

if TYPE_CHECKING:
    import numpy

    from seaway.project import Project
    from seaway.registry import ModelVersion
    from seaway.registry.flavors import Predictor
    from seaway.serving.protocol import ModelInput
    from seaway.serving.routes import Deployment, RoutingTable

log = logging.getLogger("seaway.serving")

MEMORY_FACTOR = 3.0
"""A loaded model takes about this many times its files' size in memory."""

# Classifiers whose predict() is classes_[argmax(predict_proba())], so one call gives both.
_ARGMAX_CLASSIFIERS = frozenset(
    {
        "LogisticRegression",
        "HistGradientBoostingClassifier",
        "GradientBoostingClassifier",
        "RandomForestClassifier",
        "ExtraTreesClassifier",
        "DecisionTreeClassifier",
        "ExtraTreeClassifier",
        "KNeighborsClassifier",
        "GaussianNB",
        "MultinomialNB",
        "BernoulliNB",
    }
)


class ModelUnavailable(SeawayError):
    """A deployed version cannot be loaded (HTTP 503); other versions are unaffected."""

    http_status = 503


@dataclass
class Loaded:
    """A version in memory."""

    deployment: Deployment
    version: ModelVersion
    predictor: Predictor
    size: int
    load_seconds: float
    last_used: float
    argmax_classes: Any = None
    estimator: Any = None
    # seaway.serving.fast_trees.CompiledForest for small requests, where it applies.
    compiled: Any = None
    # Smoothed predict time, seconds; None until the first predict has been timed.
    predict_s: float | None = None

    @property
    def has_proba(self) -> bool:
        return bool(getattr(self.predictor, "has_proba", False))


def _argmax_plan(predictor: Any) -> tuple[Any, Any]:
    """(estimator, classes) when labels can be derived from probabilities, else (None, None)."""
    if getattr(predictor, "flavor", None) != "sklearn" or not getattr(
        predictor, "has_proba", False
    ):
        return None, None
    estimator = getattr(predictor, "estimator", None)
    final = estimator
    steps = getattr(estimator, "steps", None)
    if steps:
        final = steps[-1][1]
    classes = getattr(estimator, "classes_", None)
    if type(final).__name__ not in _ARGMAX_CLASSIFIERS or classes is None:
        return None, None
    if getattr(classes, "ndim", 1) != 1:
        return None, None
    return estimator, classes


COMPILED_MAX_ROWS = 16
"""Requests up to this many rows use a compiled forest; larger ones are faster in
scikit-learn, whose cost per tree is paid once per call (measured crossover about 30)."""


def predict_outputs(entry: Loaded, data: ModelInput) -> dict[str, numpy.ndarray]:
    """`predict` (and `predict_proba` where the model has it) for `data`; runs in a worker."""
    import numpy as np

    predictor: Any = entry.predictor
    if entry.estimator is not None:
        inputs = predictor.inputs(data.data)
        model = entry.estimator
        if entry.compiled is not None and len(inputs) <= COMPILED_MAX_ROWS:
            model = entry.compiled
        proba = np.asarray(model.predict_proba(inputs))
        return {"predict": entry.argmax_classes[proba.argmax(axis=1)], "predict_proba": proba}
    out = {"predict": np.asarray(predictor.predict(data.data))}
    if entry.has_proba:
        out["predict_proba"] = np.asarray(predictor.predict_proba(data.data))
    return out


class ModelManager:
    """Loads, caches and unloads the versions of one gateway process."""

    def __init__(
        self,
        project: Project,
        *,
        telemetry: Any,
        load_pool: Executor,
        idle_timeout_s: float,
        memory_budget_bytes: int | None = None,
        retry_after_s: float = 30.0,
    ) -> None:
        self.project = project
        self.telemetry = telemetry
        self.load_pool = load_pool
        self.idle_timeout_s = idle_timeout_s
        self.memory_budget_bytes = memory_budget_bytes
        self.retry_after_s = retry_after_s
        self.loaded: dict[tuple[str, int], Loaded] = {}
        self._loading: dict[tuple[str, int], asyncio.Task[Loaded]] = {}
        self._failed: dict[tuple[str, int], tuple[ModelUnavailable, float]] = {}
        self._versions: dict[tuple[str, int], ModelVersion] = {}

    # -- metadata (poller thread) ------------------------------------------------

    def prefetch(self, table: RoutingTable) -> None:
        """Read the metadata of every deployed version not yet known (blocking: a thread)."""
        from seaway.registry import get_version

        for dep in table.deployments:
            key = (dep.model, dep.number)
            if key in self._versions:
                continue
            try:
                self._versions[key] = get_version(self.project, dep.ref)
            except SeawayError as exc:
                log.warning("cannot read %s from the registry: %s", dep.ref, exc.message)

    def version(self, model: str, number: int) -> ModelVersion | None:
        return self._versions.get((model, number))

    # -- loading (event loop) -----------------------------------------------------

    def failure(self, model: str, number: int) -> ModelUnavailable | None:
        failed = self._failed.get((model, number))
        return failed[0] if failed else None

    async def get(self, dep: Deployment, *, cold_start: bool = True) -> Loaded:
        key = (dep.model, dep.number)
        entry = self.loaded.get(key)
        if entry is not None:
            entry.last_used = time.monotonic()
            return entry
        task = self._loading.get(key)
        if task is None:
            failed = self._failed.get(key)
            if failed is not None and time.monotonic() - failed[1] < self.retry_after_s:
                raise failed[0]
            task = asyncio.ensure_future(self._load(dep, cold_start))
            self._loading[key] = task
        # Shielded: a client that hangs up must not cancel the load others wait for.
        return await asyncio.shield(task)

    async def _load(self, dep: Deployment, cold_start: bool) -> Loaded:
        key = (dep.model, dep.number)
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        try:
            version, predictor = await loop.run_in_executor(self.load_pool, self._load_sync, dep)
        except BaseException as exc:
            error = self._unavailable(dep, exc)
            self._failed[key] = (error, time.monotonic())
            log.warning("%s", error.message)
            raise error from None
        finally:
            self._loading.pop(key, None)
        seconds = time.perf_counter() - start
        estimator, classes = _argmax_plan(predictor)
        compiled = None
        if estimator is not None:
            from seaway.serving.fast_trees import compile_forest

            compiled = await loop.run_in_executor(self.load_pool, compile_forest, estimator)
        entry = Loaded(
            deployment=dep,
            version=version,
            predictor=predictor,
            size=int(version.size * MEMORY_FACTOR),
            load_seconds=seconds,
            last_used=time.monotonic(),
            argmax_classes=classes,
            estimator=estimator,
            compiled=compiled,
        )
        self.loaded[key] = entry
        self._failed.pop(key, None)
        self.telemetry.load(dep.model, dep.number, seconds, cold_start=cold_start)
        self._enforce_budget(keep=key)
        return entry

    def _load_sync(self, dep: Deployment) -> tuple[ModelVersion, Predictor]:
        from seaway.registry import get_version, load_version

        key = (dep.model, dep.number)
        version = self._versions.get(key)
        if version is None:
            version = get_version(self.project, dep.ref)
            self._versions[key] = version
        # None lets the model's spec decide; a deployment can only tighten it.
        required = True if dep.require_signature else None
        return version, load_version(self.project, version, require_signature=required)

    @staticmethod
    def _unavailable(dep: Deployment, exc: BaseException) -> ModelUnavailable:
        if isinstance(exc, SeawayError):
            reason = exc.message
        else:
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return ModelUnavailable(
            f"{dep.ref} could not be loaded: {reason}"[:1000],
            hint="fix or undeploy the version; other models keep serving",
        )

    # -- unloading ------------------------------------------------------------------

    def unload(self, model: str, number: int, reason: str) -> bool:
        entry = self.loaded.pop((model, number), None)
        if entry is None:
            return False
        self.telemetry.unload(model, number, reason)
        log.info("unloaded %s@%s (%s)", model, number, reason)
        return True

    def _enforce_budget(self, keep: tuple[str, int]) -> None:
        budget = self.memory_budget_bytes
        if budget is None:
            return
        total = sum(e.size for e in self.loaded.values())
        while total > budget:
            candidates = [
                (e.last_used, k)
                for k, e in self.loaded.items()
                if k != keep and not (e.deployment.scale and e.deployment.scale.min >= 1)
            ]
            if not candidates:
                break
            _, victim = min(candidates)
            total -= self.loaded[victim].size
            self.unload(victim[0], victim[1], "memory")

    def apply(self, table: RoutingTable) -> list[Deployment]:
        """Follow a new table: unload what is no longer deployed, forget old failures.
        Returns the deployments to load now (`scale.min: 1`)."""
        deployed = {(d.model, d.number): d for d in table.deployments}
        for key in list(self.loaded):
            if key not in deployed:
                self.unload(key[0], key[1], "undeployed")
            else:
                self.loaded[key].deployment = deployed[key]
        self._failed.clear()
        for key in list(self._versions):
            if key not in deployed:
                del self._versions[key]
        return [
            d
            for key, d in deployed.items()
            if d.scale is not None and d.scale.min >= 1 and key not in self.loaded
        ]

    def sweep(self, table: RoutingTable) -> None:
        """Unload versions idle past their timeout."""
        now = time.monotonic()
        for key, entry in list(self.loaded.items()):
            dep = table.get(*key) or entry.deployment
            scale = dep.scale
            if scale is not None and scale.min >= 1:
                continue
            timeout = (
                scale.idle_timeout_s
                if scale is not None and scale.idle_timeout_s is not None
                else self.idle_timeout_s
            )
            if now - entry.last_used > timeout:
                self.unload(key[0], key[1], "idle")

    def memory_used(self) -> int:
        return sum(e.size for e in self.loaded.values())


__all__ = ["MEMORY_FACTOR", "Loaded", "ModelManager", "ModelUnavailable", "predict_outputs"]
