"""The Ray executor: each step is a Ray task.

Workers share nothing with the driver but the stores: a `StepTask` carries its inputs as
manifests, `execute_step` materialises them from the blob store and snapshots its outputs
back into it, so a run gives the same outputs on Ray as on the local executor.

With no address, seaway starts a Ray instance on this machine for the run and stops it
afterwards. Left to its defaults, Ray advertises the machine's network address for the
traffic between its own processes (it swaps 127.0.0.1 for a "reachable" address). A Ray
that seaway starts is kept on loopback: `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` makes Ray
resolve its node address to 127.0.0.1 (the single-machine mode it uses on laptops), and
`_node_ip_address` says the same explicitly; the dashboard and usage reporting are off.
The variables are read when Ray is imported, so they are set before the import (and the
flag Ray derived from them is set too, in case Ray was imported earlier); they also reach
the processes Ray starts.
"""

from __future__ import annotations

import os
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from seaway._ray import connect, import_ray

if TYPE_CHECKING:
    from seaway.pipeline.task import StepOutcome, StepTask
    from seaway.project import Project


def _ray_step(task: StepTask) -> StepOutcome:
    from seaway.pipeline.worker import execute_step

    return execute_step(task)


class RayExecutor:
    name = "ray"

    def __init__(
        self, *, project: Project, jobs: int | None = None, address: str | None = None
    ) -> None:
        address = address or os.environ.get("SEAWAY_RAY_ADDRESS") or None
        self.ray = import_ray(
            local=address is None,
            missing="the ray executor needs Ray",
            hint="pip install 'seaway[ray]', or use --executor local",
        )
        # A caller (a notebook, a test) may already have connected this process.
        self.started = connect(
            self.ray,
            address,
            hint="check --ray-address (host:port of the head node's GCS, or 'auto')",
            num_cpus=jobs or os.cpu_count() or 1,
        )
        # One CPU per step; no retries: a step that failed is a result, not a glitch.
        self._remote = self.ray.remote(_ray_step).options(num_cpus=1, max_retries=0)
        self._refs: list[Any] = []

    def submit(self, task: StepTask) -> Future[StepOutcome]:
        ref = self._remote.remote(task)
        self._refs.append(ref)
        future: Future[StepOutcome] = ref.future()
        return future

    def shutdown(self, cancel: bool = False) -> None:
        if cancel:
            for ref in self._refs:
                try:
                    self.ray.cancel(ref, force=True)
                except Exception:  # a finished task cannot be cancelled
                    continue
        self._refs.clear()
        if self.started:
            self.ray.shutdown()
            self.started = False


def node_addresses() -> list[str]:
    """The addresses the connected Ray cluster reports for its nodes."""
    import ray

    return [str(node["NodeManagerAddress"]) for node in ray.nodes() if node.get("Alive")]
