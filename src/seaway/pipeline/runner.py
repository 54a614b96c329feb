"""Running a pipeline: plan the steps, skip what the cache knows, execute the rest, record.

    record = run_pipeline(project, "train", params={"C": 0.5}, jobs=4)

Order of work, chosen so that a fully cached run is cheap: the pipeline comes from the plan
cache (no pydantic), dataset versions and the step cache are read with one query each where
the metadata store allows it, keys are computed from file hashes, and no worker process is
started unless a step has to run. Steps whose inputs come from a step that runs get their
keys once that step finishes: an output identical to the cached one keeps them cached. A run
in which every step is cached, on a SQLite store, is recorded by seaway.pipeline.sqlite_lane
with the standard library (the same rows, without importing SQLAlchemy); the run store is
opened only when the runner records the run itself.

A failing step marks its descendants `skipped` while independent branches go on; the run
ends `failed` with the step's error and the tail of its log. Ctrl-C (or SIGTERM) stops the
workers and every process they started, marks running steps `cancelled` and the run
`cancelled`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from seaway.errors import NotFound, UsageError
from seaway.pipeline.dag import Dag, build_dag
from seaway.pipeline.inputs import ResolvedDataset, resolve_dataset
from seaway.pipeline.keys import KeyContext
from seaway.pipeline.plan import (
    DatasetInput,
    PipelinePlan,
    StepInput,
    StepPlan,
    load_pipeline,
    parse_ref,
)
from seaway.pipeline.stepcache import CacheEntry, StepCache
from seaway.pipeline.task import InputSpec, OutputRecord, StepOutcome, StepTask

if TYPE_CHECKING:
    from concurrent.futures import Future

    from seaway.pipeline.executors import Executor
    from seaway.project import Project
    from seaway.tracking.records import RunRecord
    from seaway.tracking.store import RunStore

DONE = ("ran", "cached")
_ERROR_TAIL_LINES = 20


@dataclass(frozen=True)
class RunEvent:
    """What `on_event` receives: the run starting, a step changing status, the run ending."""

    kind: str  # "started" | "step" | "finished"
    run_id: str
    seq: int
    step: str | None = None
    status: str | None = None
    duration_s: float | None = None
    cache_key: str | None = None
    error: str | None = None
    steps: tuple[str, ...] = ()  # on "started": every step, in order


@dataclass
class StepState:
    plan: StepPlan
    forced: bool = False
    status: str = "pending"
    key: str | None = None
    inputs: dict[str, InputSpec] = field(default_factory=dict)
    outputs: dict[str, OutputRecord] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    log_tail: str = ""
    log_digest: str | None = None
    started_at: datetime | None = None
    duration_s: float | None = None
    suspect: bool = False  # was in flight when a worker died; reruns alone

    @property
    def name(self) -> str:
        return self.plan.name


def run_pipeline(
    project: Project,
    name: str | None,
    *,
    params: dict[str, Any] | None = None,
    force: Iterable[str] = (),
    jobs: int | None = None,
    executor: str = "local",
    executor_options: dict[str, Any] | None = None,
    resume: str | None = None,
    on_event: Callable[[RunEvent], None] | None = None,
) -> RunRecord:
    """Run pipeline `name` of `project` and return its run record.

    `params` override the spec's defaults (checked against their declarations); `force`
    names steps to rerun, with their descendants, whatever the cache holds; `resume` names
    an earlier run whose pipeline, params and dataset versions are reused (only steps that
    did not succeed then run now, the others come from the cache). `executor_options` go to
    the executor (for ray: `address`). A run stopped by Ctrl-C returns its record with status
    `cancelled`."""
    cache = StepCache(project)
    store: RunStore | None = None
    run: _Run | None = None
    try:
        pinned: dict[str, str] = {}
        resumed_from = None
        given = dict(params or {})
        if resume is not None:
            from seaway.tracking.store import RunStore

            store = RunStore(project)
            name, given, pinned, resumed_from = _resume(store, resume, name, given)
        if not name:
            raise UsageError("no pipeline given", hint="seaway run PIPELINE")
        plan = load_pipeline(project, name)
        from seaway.pipeline.params import resolve_params

        values = resolve_params(project, plan, given)
        run = _Run(project, plan, build_dag(plan), values, store, cache, on_event)
        run.force(list(force))
        run.prepare(pinned)
        run.executor_options = dict(executor_options or {})
        if resume is None and executor == "local":
            # Every step cached on a SQLite store: recorded without SQLAlchemy, or None.
            from seaway.pipeline.sqlite_lane import record_cached_run

            record = record_cached_run(run)
            if record is not None:
                return record
        return run.execute(executor, jobs, resumed_from)
    finally:
        cache.close()
        if run is not None:
            run.close()
        elif store is not None:
            store.close()


def _resume(
    store: RunStore, ref: str, name: str | None, given: dict[str, Any]
) -> tuple[str, dict[str, Any], dict[str, str], str]:
    old = store.get(ref)
    if not old.pipeline:
        raise UsageError(f"run {ref} did not run a pipeline; there is nothing to resume")
    if name and name != old.pipeline:
        raise UsageError(
            f"run {ref} ran pipeline '{old.pipeline}', not '{name}'",
            hint=f"seaway run --resume {ref} (the pipeline comes from the run)",
        )
    if given:
        raise UsageError(
            "--resume reuses the params of the earlier run; it cannot be combined with params",
            hint=f"start a new run instead: seaway run {old.pipeline} --param …",
        )
    pinned = {
        str(d["name"]): str(d["version"])
        for d in old.lineage.get("datasets", [])
        if isinstance(d, dict) and "name" in d and "version" in d
    }
    return old.pipeline, dict(old.params), pinned, old.id


class _Run:
    # Replaced (never mutated) by run_pipeline before the run starts.
    executor_options: dict[str, Any] = {}

    def __init__(
        self,
        project: Project,
        plan: PipelinePlan,
        dag: Dag,
        params: dict[str, Any],
        store: RunStore | None,
        cache: StepCache,
        on_event: Callable[[RunEvent], None] | None,
    ) -> None:
        self.project = project
        self.plan = plan
        self.dag = dag
        self.params = params
        self._store = store
        self.cache = cache
        self.on_event = on_event
        self.steps = {n: StepState(plan.steps[n]) for n in dag.order}
        self.keys = KeyContext(project.root)
        self.datasets: dict[str, ResolvedDataset] = {}
        self.known: dict[str, CacheEntry] = {}
        self.run_id = ""
        self.seq = 0
        self.work_dir = project.state_dir / "workcache"
        self._executor: Executor | None = None

    @property
    def store(self) -> RunStore:
        # Opened on first use: a run the SQLite lane records never needs it (nor SQLAlchemy).
        if self._store is None:
            from seaway.tracking.store import RunStore

            self._store = RunStore(self.project)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    # -- planning ---------------------------------------------------------------------

    def force(self, names: list[str]) -> None:
        for name in names:
            if name not in self.steps:
                from seaway.spec.crossref import did_you_mean

                raise UsageError(
                    f"--force {name}: pipeline '{self.plan.name}' has no step '{name}'"
                    + did_you_mean(name, self.steps),
                    hint="its steps are: " + ", ".join(self.dag.order),
                )
            for step in (name, *self.dag.descendants(name)):
                self.steps[step].forced = True

    def prepare(self, pinned: dict[str, str]) -> None:
        lane = self.cache.lane
        for state in self.steps.values():
            for arg, text in state.plan.inputs.items():
                ref = parse_ref(text)
                if isinstance(ref, DatasetInput) and text not in self.datasets:
                    version = ref.version or pinned.get(ref.name)
                    try:
                        found = resolve_dataset(self.project, ref.name, version, lane)
                    except NotFound as exc:
                        raise NotFound(
                            f"step '{state.name}' reads {text} (input '{arg}'): {exc.message}",
                            hint=exc.hint or f"seaway data add {ref.name} PATH",
                        ) from None
                    self.datasets[text] = found
        if not all(s.forced for s in self.steps.values()):
            self.known.update(self.cache.recent(self.plan.name))
        self._settle()  # recorded once the run exists

    def _parents_done(self, state: StepState) -> bool:
        return all(self.steps[p].status in DONE for p in self.dag.parents[state.name])

    def _inputs_of(self, state: StepState) -> dict[str, InputSpec]:
        out: dict[str, InputSpec] = {}
        for arg, text in state.plan.inputs.items():
            ref = parse_ref(text)
            if isinstance(ref, StepInput):
                out[arg] = self.steps[ref.step].outputs[ref.output].as_input(text)
            else:
                out[arg] = self.datasets[text].as_input(text)
        return out

    def _compute_key(self, state: StepState) -> None:
        state.inputs = self._inputs_of(state)
        hashes = {arg: spec.tree_hash for arg, spec in state.inputs.items()}
        # A `needs` dependency carries no data, but the step may use what it did: its key
        # takes the key of each step it needs.
        for need in state.plan.needs:
            hashes[f"needs:{need}"] = self.steps[need].key or ""
        state.key, _ = self.keys.key(state.plan, self.params, hashes)

    def _settle(self) -> list[StepState]:
        """Key every pending step whose parents are done and mark the cache hits `cached`;
        returns those. Repeats until nothing changes, so a chain of hits resolves at once.

        One pass in topological order keys a step right after its parents became hits
        from entries already known, so an unchanged chain resolves in one pass (not one
        pass per step); keys not known yet are looked up together at the end of a pass."""
        cached: list[StepState] = []
        while True:
            fresh: list[StepState] = []
            hits = 0
            for name in self.dag.order:
                state = self.steps[name]
                if state.status == "pending" and state.key is None and self._parents_done(state):
                    self._compute_key(state)
                    if self._take_cached(state):
                        cached.append(state)
                        hits += 1
                    else:
                        fresh.append(state)
            unknown = [s.key for s in fresh if s.key and not s.forced and s.key not in self.known]
            if unknown:
                self.known.update(self.cache.lookup(unknown))
                for state in fresh:
                    if self._take_cached(state):
                        cached.append(state)
                        hits += 1
            if not hits:
                return cached

    def _take_cached(self, state: StepState) -> bool:
        """Mark `state` cached when the cache knows its key with every declared output."""
        entry = self.known.get(state.key or "")
        if state.forced or entry is None:
            return False
        if any(o not in entry.outputs for o in state.plan.outputs):
            return False
        state.status = "cached"
        state.outputs = {o: entry.outputs[o] for o in state.plan.outputs}
        state.metrics = dict(entry.metrics)
        return True

    # -- recording ----------------------------------------------------------------------

    def _lineage(self) -> dict[str, Any]:
        lineage: dict[str, Any] = {
            "pipeline": self.plan.name,
            "datasets": [d.lineage() for d in self._distinct_datasets()],
            "cache_keys": {n: s.key for n, s in self.steps.items() if s.key},
        }
        reg = self.plan.register
        if reg is not None:
            lineage["register"] = {
                "model": reg.model,
                "from": f"{reg.from_step}.{reg.from_output}",
                "flavor": reg.flavor,
            }
        return lineage

    def _distinct_datasets(self) -> list[ResolvedDataset]:
        seen: dict[tuple[str, int], ResolvedDataset] = {}
        for d in self.datasets.values():
            seen.setdefault((d.name, d.version), d)
        return list(seen.values())

    def _step_record(self, state: StepState) -> Any:
        from seaway.tracking.records import StepRecord

        return StepRecord(
            step=state.name,
            status=state.status,
            cache_key=state.key,
            started_at=state.started_at,
            duration_s=state.duration_s,
            error=state.error,
            log_digest=state.log_digest,
            outputs={name: rec.to_dict() for name, rec in state.outputs.items()},
            metrics=dict(state.metrics),
        )

    def _record(self, state: StepState) -> None:
        self.store.record_step(self.run_id, self._step_record(state))
        self._emit("step", state)

    def _record_cached(self, states: list[StepState]) -> None:
        """Cached steps in few writes: their records, then their metrics into the run."""
        if not states:
            return
        self._record_many(states)
        metrics = [m for s in states for m in self._metric_points(s)]
        if metrics:
            self.store.log_metrics(self.run_id, metrics)

    def _record_many(self, states: list[StepState]) -> None:
        batch = getattr(self.store, "record_steps", None)
        if callable(batch):
            batch(self.run_id, [self._step_record(s) for s in states])
        else:
            for s in states:
                self.store.record_step(self.run_id, self._step_record(s))
        for s in states:
            self._emit("step", s)

    def _emit(self, kind: str, state: StepState | None = None, **extra: Any) -> None:
        if self.on_event is None:
            return
        if state is not None:
            extra.update(
                step=state.name,
                status=state.status,
                duration_s=state.duration_s,
                cache_key=state.key,
                error=state.error,
            )
        self.on_event(RunEvent(kind, self.run_id, self.seq, **extra))

    # -- execution ----------------------------------------------------------------------

    def execute(self, executor_name: str, jobs: int | None, resumed_from: str | None) -> RunRecord:
        from seaway.pipeline.executors import EXECUTORS

        if executor_name not in EXECUTORS:
            from seaway.pipeline.executors import create_executor

            create_executor(executor_name, project=self.project)  # raises with the names
        run = self.store.create_run(
            pipeline=self.plan.name,
            params=self.params,
            lineage=self._lineage(),
            executor=executor_name,
            resumed_from=resumed_from,
        )
        self.run_id, self.seq = run.id, run.seq
        status, error = "succeeded", None
        try:
            with _cancel_on_signals():
                self._emit("started", steps=tuple(self.dag.order))
                self._record_cached([s for s in self.steps.values() if s.status == "cached"])
                self._loop(executor_name, jobs)
            failed = [s for s in self.steps.values() if s.status == "failed"]
            if failed:
                status, error = "failed", self._failure_text(failed)
        except KeyboardInterrupt as exc:
            with _ignoring_signals():
                self._stop_executor(cancel=True)
                self._cancel_rest()
            how = "terminated (SIGTERM)" if isinstance(exc, _Terminated) else "interrupted (Ctrl-C)"
            status, error = "cancelled", f"cancelled: {how}"
        except BaseException as exc:
            with _ignoring_signals():
                self._stop_executor(cancel=True)
                self._cancel_rest()
                with contextlib.suppress(Exception):
                    self.store.finish(self.run_id, "failed", f"seaway failed: {exc}")
            raise
        finally:
            self._stop_executor(cancel=False)
        if status == "succeeded":
            error = self._register()
            if error is not None:
                status = "failed"
        self.store.finish(self.run_id, status, error)
        record = self.store.get(self.run_id)
        self._emit("finished", status=status, error=error)
        return record

    def _stop_executor(self, *, cancel: bool) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(cancel=cancel)

    def _loop(self, executor_name: str, jobs: int | None) -> None:
        # Imported here: a fully cached run never waits on a future.
        from concurrent.futures import FIRST_COMPLETED, wait

        limit = max(1, jobs or os.cpu_count() or 1)
        running: dict[Future[StepOutcome], tuple[StepState, Executor]] = {}
        while True:
            _INTERRUPTS.check()
            self._record_cached(self._settle())
            for state in self._ready(bool(running)):
                if len(running) >= limit:
                    break
                if self._executor is None:
                    self._executor = self._start_executor(executor_name, limit)
                running[self._submit(state)] = (state, self._executor)
                state.status = "running"
                state.started_at = datetime.now(UTC)
                self._record(state)
            if not running:
                break
            _INTERRUPTS.check()
            done, _ = wait(list(running), timeout=0.2, return_when=FIRST_COMPLETED)
            _INTERRUPTS.check()
            for future in done:
                state, executor = running.pop(future)
                self._complete(state, future, executor)
        for state in self.steps.values():
            if state.status == "pending":  # unreachable once a parent failed
                state.status = "skipped"
                self._record(state)

    def _submit(self, state: StepState) -> Future[StepOutcome]:
        """The step's future. A pool whose worker died a moment ago (a step just submitted
        crashed it) refuses new tasks: that refusal is the step's outcome, handled like a
        step in flight on the broken pool (it reruns alone on a fresh one)."""
        from concurrent.futures import Future

        assert self._executor is not None
        try:
            return self._executor.submit(self._task(state))
        except Exception as exc:
            if not _pool_broke(exc):
                raise
            refused: Future[StepOutcome] = Future()
            refused.set_exception(exc)
            return refused

    def _ready(self, busy: bool) -> list[StepState]:
        """Steps that can start now, in order. A suspect (see _complete) starts only when
        nothing runs, and nothing starts beside it."""
        ready = [
            s
            for s in (self.steps[n] for n in self.dag.order)
            if s.status == "pending" and s.key is not None and self._parents_done(s)
        ]
        if any(s.status == "running" and s.suspect for s in self.steps.values()):
            return []
        suspects = [s for s in ready if s.suspect]
        if suspects:
            return [] if busy else suspects[:1]
        return ready

    def _start_executor(self, name: str, jobs: int) -> Executor:
        from seaway.pipeline.executors import create_executor
        from seaway.pipeline.workcache import clean_stale

        clean_stale(self.work_dir)
        return create_executor(name, project=self.project, jobs=jobs, **self.executor_options)

    def _task(self, state: StepState) -> StepTask:
        plan = state.plan
        return StepTask(
            project_root=str(self.project.root),
            metadata_url=self.project.metadata_url,
            artifacts_url=self.project.artifacts_url,
            work_dir=str(self.work_dir),
            run_id=self.run_id,
            pipeline=self.plan.name,
            step=state.name,
            spec=plan.to_dict(),
            inputs=state.inputs,
            params={p: self.params[p] for p in plan.params},
            outputs=list(plan.outputs),
            cache_key=state.key or "",
        )

    def _complete(self, state: StepState, future: Future[StepOutcome], executor: Executor) -> None:
        try:
            outcome = future.result()
        except Exception as exc:
            # A broken pool takes no more tasks: the next submit starts a fresh one.
            if executor is self._executor:
                self._stop_executor(cancel=True)
            if _pool_broke(exc) and not state.suspect:
                # Every step in flight on a broken pool fails alike, and the pool cannot
                # say whose worker died: each one reruns alone, so the culprit is the
                # step whose worker dies again, and only that one fails.
                state.suspect = True
                state.status = "pending"
                return
            outcome = StepOutcome(
                state.name,
                "failed",
                state.started_at.timestamp() if state.started_at else time.time(),
                0.0,
                error=_executor_failure(exc),
            )
        state.started_at = datetime.fromtimestamp(outcome.started_at, UTC)
        state.duration_s = outcome.duration_s
        state.log_digest = outcome.log_digest
        state.log_tail = outcome.log_tail
        if outcome.status == "ran":
            state.status = "ran"
            state.outputs = outcome.outputs
            state.metrics = outcome.metrics
            self.cache.put(
                state.key or "",
                self.plan.name,
                state.name,
                outcome.outputs,
                outcome.metrics,
                self.run_id,
            )
            points = self._metric_points(state)
            if points:
                self.store.log_metrics(self.run_id, points)
            self._record(state)
            return
        state.status = "failed"
        state.error = outcome.error or "failed"
        self._record(state)
        for name in self.dag.descendants(state.name):
            child = self.steps[name]
            if child.status == "pending":
                child.status = "skipped"
                child.error = f"not run: step '{state.name}' failed"
                self._record(child)

    def _metric_points(self, state: StepState) -> list[tuple[str, float, int, float]]:
        ts = time.time()
        return [(k, v, 0, ts) for k, v in state.metrics.items()]

    def _cancel_rest(self) -> None:
        # The stopped steps' scratch folders; a later run would only find them stale.
        import shutil

        for scratch in (self.work_dir / "tmp").glob(f"{self.run_id}-*"):
            shutil.rmtree(scratch, ignore_errors=True)
        now = datetime.now(UTC)
        for state in self.steps.values():
            if state.status in ("running", "pending"):
                if state.status == "running" and state.started_at is not None:
                    state.duration_s = (now - state.started_at).total_seconds()
                state.status = "cancelled"
                state.error = "cancelled"
                with contextlib.suppress(Exception):
                    self._record(state)

    def _failure_text(self, failed: list[StepState]) -> str:
        first = failed[0]
        text = f"step '{first.name}' failed: {first.error}"
        if len(failed) > 1:
            others = ", ".join(f"'{s.name}'" for s in failed[1:])
            text += f" (also failed: {others})"
        # The log ends with the error itself when seaway wrote it there; no need to repeat it.
        tail = "\n".join(
            line for line in first.log_tail.splitlines() if (first.error or "") not in line
        ).strip("\n")
        if tail:
            text += f"\nlast lines of its log:\n{tail}"
        return text

    def _register(self) -> str | None:
        """Register the pipeline's model output as a version; the error text if that failed.

        The output is recorded as the run's model artifact first, so a refused registration
        still shows what the run produced."""
        reg = self.plan.register
        if reg is None:
            return None
        state = self.steps.get(reg.from_step)
        if state is None or state.status not in DONE:
            return None
        out = state.outputs.get(reg.from_output)
        if out is None:
            return None
        digest = out.digest if out.kind == "file" and out.digest else out.manifest_hash
        self.store.log_artifact(self.run_id, reg.model, digest, out.size, "model")
        from seaway.errors import SeawayError
        from seaway.pipeline.workcache import ensure_local
        from seaway.registry.register import register_model

        try:
            local = ensure_local(
                self.project.blobs,
                self.work_dir,
                out.as_input(f"{reg.from_step}.{reg.from_output}"),
            )
            result = register_model(
                self.project,
                reg.model,
                local,
                flavor=reg.flavor,
                run_id=self.run_id,
                source_digest=digest,
                from_output=f"{reg.from_step}.{reg.from_output}",
            )
        except SeawayError as exc:
            return f"registering {reg.model} from {reg.from_step}.{reg.from_output} failed: {exc}"
        self.store.set_tags(self.run_id, {"seaway.registered": result.version.ref})
        return None


def _pool_broke(exc: BaseException) -> bool:
    from concurrent.futures.process import BrokenProcessPool

    return isinstance(exc, BrokenProcessPool)


def _executor_failure(exc: BaseException) -> str:
    if _pool_broke(exc):
        return (
            "its worker process died (killed by the system, perhaps for memory, or a crash "
            "in native code)"
        )
    return f"the executor failed: {type(exc).__name__}: {exc}"


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C."""


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class _Interrupts:
    """Ctrl-C and SIGTERM, noted when they arrive and acted on at a safe point.

    Raising KeyboardInterrupt wherever the main thread happens to be can land inside the
    process pool's own bookkeeping (while a worker is being started), which then hangs
    the shutdown that cancelling needs; so the handler only records the signal and the
    scheduling loop, which wakes up several times a second, raises it between steps."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def note(self, signum: int, _frame: Any) -> None:
        self.signum = signum

    def check(self) -> None:
        if self.signum == signal.SIGTERM:
            raise _Terminated
        if self.signum is not None:
            raise KeyboardInterrupt


_INTERRUPTS = _Interrupts()


@contextlib.contextmanager
def _cancel_on_signals() -> Iterator[None]:
    """SIGTERM cancels like Ctrl-C: the workers are in process groups of their own, so a
    terminated parent would otherwise leave them running."""
    if not _in_main_thread():
        yield
        return
    _INTERRUPTS.signum = None
    previous = {s: signal.signal(s, _INTERRUPTS.note) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
        _INTERRUPTS.check()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def _ignoring_signals() -> Iterator[None]:
    """A second Ctrl-C while the workers stop must not leave them half-stopped."""
    if not _in_main_thread():
        yield
        return
    saved = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


__all__ = ["RunEvent", "StepState", "run_pipeline"]
