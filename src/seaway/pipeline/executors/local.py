"""The local executor: a pool of warm worker processes on this machine.

Workers outlive a single step, so a chain of small steps pays for an interpreter start
once per worker, not once per step; the pool starts workers only as tasks arrive (not at
all when every step is cached). Workers come from a fork server that has already imported
seaway's step runner (`forkserver` start method): a new worker is a fork of that warm
process. `fork` itself is avoided: the parent holds threads and database connections that a
forked child must not inherit.

Cancelling stops each worker's whole process group (the worker made itself a group
leader), so processes a step started go with it: SIGTERM first, SIGKILL after a grace
period.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

from seaway.pipeline.worker import execute_step, init_worker

if TYPE_CHECKING:
    from seaway.pipeline.task import StepOutcome, StepTask
    from seaway.project import Project

START_METHOD = os.environ.get("SEAWAY_START_METHOD", "forkserver")
_PRELOAD = ["seaway.pipeline.executors.local"]
_GRACE_S = 3.0


def default_jobs() -> int:
    return os.cpu_count() or 1


class LocalExecutor:
    name = "local"

    def __init__(self, *, project: Project, jobs: int | None = None) -> None:
        self.root = str(project.root)
        self.jobs = max(1, jobs or default_jobs())
        self._pool: ProcessPoolExecutor | None = None

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            ctx = multiprocessing.get_context(START_METHOD)
            if START_METHOD == "forkserver":
                ctx.set_forkserver_preload(_PRELOAD)
            self._pool = ProcessPoolExecutor(
                max_workers=self.jobs,
                mp_context=ctx,
                initializer=init_worker,
                initargs=(self.root, os.getpid()),
            )
        return self._pool

    def submit(self, task: StepTask) -> Future[StepOutcome]:
        return self._ensure_pool().submit(_run, task, dict(os.environ))

    def shutdown(self, cancel: bool = False) -> None:
        pool = self._pool
        if pool is None:
            return
        self._pool = None
        if not cancel:
            pool.shutdown(wait=True)
            return
        procs: list[Any] = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        _stop(procs)
        with contextlib.suppress(Exception):
            pool.shutdown(wait=True)


def _run(task: StepTask, environ: dict[str, str]) -> StepOutcome:
    """execute_step with the submitting process's environment of the moment.

    Workers are forked from the fork server, whose environment is the one the parent had
    when the server started; a long-lived caller (a notebook, a test session) may have
    changed its own since."""
    if environ != os.environ:
        os.environ.clear()
        os.environ.update(environ)
    return execute_step(task)


def _stop(procs: list[Any]) -> None:
    """Stop workers and everything they started: TERM, a grace period, then KILL.

    KILL goes to every group, even of workers that exited: a step's child that ignored
    TERM is still in its worker's group."""
    pids = [p.pid for p in procs if p.pid is not None]
    for pid in pids:
        _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + _GRACE_S
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    for pid in pids:
        _signal_group(pid, signal.SIGKILL)
    for p in procs:
        p.join(5.0)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return
    except PermissionError:
        # Not a group leader after all (setpgid failed): signal the worker alone.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
