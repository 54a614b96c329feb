"""Executors run step tasks somewhere: a local process pool, a Ray cluster, …

An executor is small on purpose. The runner decides what runs and when (the DAG, the
cache, failures, `--jobs`); an executor only takes a `StepTask`, runs
`seaway.pipeline.worker.execute_step` on it somewhere, and hands back a future. It never
raises for a failing step (the outcome says `failed`); a future that raises means the
executor itself broke (a worker was killed, the cluster went away).

    executor = create_executor("local", project=project, jobs=4)
    future = executor.submit(task)          # Future[StepOutcome]
    executor.shutdown(cancel=True)          # stop running steps and their processes

Writing one for another machine (Ray): the task is picklable and self-contained. On a node
that does not share the project's disk, replace `task.work_dir` with a node-local folder
(`dataclasses.replace`) and make the project's code importable there (Ray's runtime_env
working_dir); inputs whose `path` does not exist on the node are materialised from the
blob store, so `artifacts_url` must name a store the node can reach (s3://…), as must
`metadata_url` for steps that log through the fluent API. Outcomes carry output records,
not files: their blobs are already in the store when the future resolves. `shutdown(cancel=
True)` must stop running steps (Ctrl-C on `seaway run` relies on it).
"""

from __future__ import annotations

import importlib
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from seaway.errors import UsageError

if TYPE_CHECKING:
    from seaway.pipeline.task import StepOutcome, StepTask
    from seaway.project import Project


@runtime_checkable
class Executor(Protocol):
    name: str

    def submit(self, task: StepTask) -> Future[StepOutcome]:
        """Start running `task`; the future resolves to its outcome."""
        ...

    def shutdown(self, cancel: bool = False) -> None:
        """Release the executor's resources. With `cancel`, stop steps that are running
        (and every process they started) instead of waiting for them."""
        ...


# name -> "module:Class"; the class is built as Class(project=…, jobs=…).
EXECUTORS: dict[str, str] = {
    "local": "seaway.pipeline.executors.local:LocalExecutor",
    "ray": "seaway.pipeline.executors.ray:RayExecutor",
}


def create_executor(
    name: str, *, project: Project, jobs: int | None = None, **options: Any
) -> Executor:
    """Build executor `name`; `options` are its own settings (ray: `address`)."""
    target = EXECUTORS.get(name)
    if target is None:
        from seaway.spec.crossref import did_you_mean

        raise UsageError(
            f"unknown executor '{name}'{did_you_mean(name, EXECUTORS)}",
            hint="use one of: " + ", ".join(EXECUTORS),
        )
    module_name, _, cls_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(
            f"executor '{name}' is not available: {exc}",
            hint="install its extra (for ray: pip install 'seaway[ray]'), or use --executor local",
        ) from exc
    try:
        executor: Executor = getattr(module, cls_name)(project=project, jobs=jobs, **options)
    except TypeError as exc:
        raise UsageError(f"executor '{name}' does not take those options: {exc}") from exc
    return executor


__all__ = ["EXECUTORS", "Executor", "create_executor"]
