"""The fluent tracking API: `seaway.start_run`, `seaway.log_metric`, … with a write buffer.

Logging a metric appends to memory and returns (about a microsecond); a daemon thread
writes what accumulated every `FLUSH_INTERVAL_S` seconds, or sooner when `FLUSH_AT`
entries wait, in one transaction per run. A run's end writes what is left together with
its final status, and `flush()`, `atexit` and the end of a `with` block flush too. So a
crash (SIGKILL, power loss) loses at most the last half second or so, and the run stays
`running`: the listing shows it as `running?` once its process is gone.

Which run a call logs to: the innermost `start_run` of this process; else the run named by
`SEAWAY_RUN_ID` (a pipeline step in a worker process reports into the pipeline's run; the
project is `SEAWAY_PROJECT` or the working directory's); else a run started on the spot,
ended `succeeded` at exit (`failed` when the program dies of an exception), like MLflow.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
import time
import warnings
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from seaway.errors import SeawayError, StoreError, UsageError
from seaway.tracking.records import TAG_PARENT, ArtifactRecord, RunRecord
from seaway.tracking.store import Metric, RunStore, check_key, check_metric, encode_param

if TYPE_CHECKING:
    from seaway.project import Project

FLUSH_INTERVAL_S = 0.5
FLUSH_AT = 20_000
ENV_RUN_ID = "SEAWAY_RUN_ID"
ENV_PROJECT = "SEAWAY_PROJECT"

# One lock guards the run stack and every run's pending data; it is held only to append
# or to swap lists, never during a database write.
_lock = threading.RLock()
_auto_lock = threading.Lock()
_stack: list[ActiveRun] = []
_attached: dict[str, ActiveRun] = {}
_stores: dict[tuple[str, str], RunStore] = {}
_places: dict[tuple[str | None, ...], RunStore] = {}
_uncaught: list[BaseException] = []
_hooks_installed = False


class _Pending:
    __slots__ = ("metrics", "n", "params", "tags")

    def __init__(self) -> None:
        self.metrics: list[Metric] = []
        self.params: dict[str, str] = {}
        self.tags: dict[str, str] = {}
        self.n = 0  # entries logged into it, counted toward FLUSH_AT

    def __bool__(self) -> bool:
        return bool(self.metrics or self.params or self.tags)

    def put_back(self, older: _Pending) -> None:
        """Return an unwritten batch in front of what arrived since."""
        self.metrics[:0] = older.metrics
        self.params = {**older.params, **self.params}
        self.tags = {**older.tags, **self.tags}
        self.n += older.n


class _Writer:
    """The background flusher shared by every run of the process."""

    def __init__(self) -> None:
        self.wake = threading.Event()
        self.write_lock = threading.Lock()  # one batch in flight at a time
        self.queued: dict[ActiveRun, None] = {}  # runs with pending data, in order
        self.count = 0
        self.thread: threading.Thread | None = None

    def ensure_running(self) -> None:
        thread = self.thread
        if thread is None or not thread.is_alive():
            thread = threading.Thread(target=self._loop, name="seaway-tracking", daemon=True)
            self.thread = thread
            thread.start()

    def _loop(self) -> None:
        while True:
            self.wake.wait(FLUSH_INTERVAL_S)
            self.wake.clear()
            # Never let the flusher die: write errors are kept on each run.
            with contextlib.suppress(BaseException):
                self.flush()

    def flush(self, only: ActiveRun | None = None) -> None:
        with self.write_lock:
            with _lock:
                runs = [only] if only is not None else list(self.queued)
                batches = [(run, run._take()) for run in runs]
            for run, batch in batches:
                if batch:
                    run._write(batch)


_writer = _Writer()


def _reset_after_fork() -> None:
    """In a forked child: fresh locks, no thread, no buffered data of the parent's (the
    parent writes its own). Runs of the parent stay reachable but are not ended here."""
    global _lock, _auto_lock, _writer
    _lock = threading.RLock()
    _auto_lock = threading.Lock()
    _writer = _Writer()
    for run in [*_stack, *_attached.values()]:
        run._pending = _Pending()
        run.owned = False
    for store in _stores.values():
        engine = getattr(store.project.metadata, "_engine", None)
        if engine is not None:
            engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


# -- runs ---------------------------------------------------------------------------------


class ActiveRun:
    """A run this process logs to; a context manager that ends it (when it owns it)."""

    def __init__(self, store: RunStore, record: RunRecord, *, owned: bool) -> None:
        self.store = store
        self.id = record.id
        self.seq = record.seq
        self.name = record.name
        self.pipeline = record.pipeline
        self.started_at: datetime = record.started_at
        self.owned = owned
        self.status = record.status
        self._pending = _Pending()
        self._params = {k: encode_param(v) for k, v in record.params.items()}
        self._error: BaseException | None = None
        self._warned = False
        self._ended = False

    def __repr__(self) -> str:
        return f"ActiveRun(#{self.seq} {self.id[:8]}, {self.status})"

    @property
    def ref(self) -> str:
        return f"#{self.seq}"

    @property
    def project(self) -> Project:
        return self.store.project

    # -- context manager ----------------------------------------------------------------

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with _lock:
            if self in _stack:
                _stack.remove(self)
        if not self.owned:
            self._flush_quietly(raise_errors=exc is None)
            return
        if exc is None:
            self.end("succeeded")
        elif isinstance(exc, KeyboardInterrupt):
            self._end_quietly("cancelled", "interrupted (KeyboardInterrupt)")
        else:
            self._end_quietly("failed", _describe(exc))

    def _end_quietly(self, status: str, error: str) -> None:
        # The block's own exception is what the user must see; a recording problem is a
        # warning beside it.
        try:
            self.end(status, error)
        except Exception as problem:
            warnings.warn(f"seaway: could not end run {self.ref}: {problem}", stacklevel=3)

    def _flush_quietly(self, *, raise_errors: bool) -> None:
        try:
            self.flush()
        except Exception as problem:
            if raise_errors:
                raise
            warnings.warn(f"seaway: could not record run {self.ref}: {problem}", stacklevel=3)

    # -- logging ------------------------------------------------------------------------

    def _queue(self, added: int) -> None:
        # Called with _lock held.
        if self._ended:
            raise UsageError(f"run {self.ref} has ended", hint="start a new run to log more")
        _writer.queued[self] = None
        self._pending.n += added
        _writer.count += added
        if _writer.count >= FLUSH_AT:
            _writer.wake.set()

    def _take(self) -> _Pending:
        # Called with _lock held: hand the pending data to a writer.
        batch, self._pending = self._pending, _Pending()
        _writer.queued.pop(self, None)
        _writer.count -= batch.n
        return batch

    def log_metric(
        self, key: str, value: float, step: int | None = 0, *, timestamp: float | None = None
    ) -> None:
        k, v, s = check_metric(key, value, step)
        ts = time.time() if timestamp is None else float(timestamp)
        with _lock:
            self._queue(1)
            self._pending.metrics.append((k, v, s, ts))
        if _writer.thread is None:
            _writer.ensure_running()

    def log_metrics(
        self, metrics: Mapping[str, float], step: int = 0, *, timestamp: float | None = None
    ) -> None:
        ts = time.time() if timestamp is None else float(timestamp)
        rows = [(*check_metric(k, v, step), ts) for k, v in metrics.items()]
        with _lock:
            self._queue(len(rows))
            self._pending.metrics.extend(rows)
        if _writer.thread is None:
            _writer.ensure_running()

    def log_params(self, params: Mapping[str, Any]) -> None:
        encoded = {check_key(k, "param"): encode_param(v) for k, v in params.items()}
        with _lock:
            for k, text in encoded.items():
                old = self._params.get(k)
                if old is not None and old != text:
                    raise UsageError(
                        f"param {k!r} of run {self.ref} is already {old}; cannot change it to "
                        f"{text}",
                        hint="params are fixed once logged; log the new value under another "
                        "name or start a new run",
                    )
            self._queue(len(encoded))
            self._params.update(encoded)
            self._pending.params.update(encoded)
        if _writer.thread is None:
            _writer.ensure_running()

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        cleaned = {check_key(k, "tag"): str(v) for k, v in tags.items()}
        with _lock:
            self._queue(len(cleaned))
            self._pending.tags.update(cleaned)
        if _writer.thread is None:
            _writer.ensure_running()

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def log_artifact(self, path: str | os.PathLike[str], name: str | None = None) -> ArtifactRecord:
        """Store a file (one blob) or a folder (its files and a manifest) with the run."""
        from seaway.tracking.artifacts import store_artifact

        artifact = store_artifact(self.store.project, Path(path), name)
        self.store.log_artifact(
            self.id, artifact.name, artifact.digest, artifact.size, artifact.kind
        )
        return artifact

    # -- writing ------------------------------------------------------------------------

    def _write(self, batch: _Pending) -> None:
        try:
            self.store.log_batch(
                self.id, params=batch.params, metrics=batch.metrics, tags=batch.tags
            )
        except Exception as exc:
            if isinstance(exc, SeawayError) and not isinstance(exc, StoreError):
                # Refused for good (a param changed its value, the run is gone): drop the
                # batch and report at the next flush or end.
                self._error = self._error or exc
            else:
                # Possibly passing (database locked or unreachable): keep the data for the
                # next flush, which reports the problem if it persists at the run's end.
                with _lock:
                    self._pending.put_back(batch)
                    _writer.queued[self] = None
                    _writer.count += batch.n
            if not self._warned:
                self._warned = True
                warnings.warn(
                    f"seaway: could not record data of run {self.ref}: {exc}", stacklevel=2
                )

    def _raise_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error

    def flush(self) -> None:
        """Write everything logged so far; raise a problem a background write met."""
        _writer.flush(self)
        self._raise_error()

    def end(self, status: str = "succeeded", error: str | None = None) -> None:
        """Write what is pending and the run's end in one transaction."""
        if not self.owned:
            self.flush()
            return
        with _writer.write_lock:
            with _lock:
                if self._ended:
                    return
                self._ended = True
                batch = self._take()
                if self in _stack:
                    _stack.remove(self)
            try:
                self.store.log_batch(
                    self.id,
                    params=batch.params,
                    metrics=batch.metrics,
                    tags=batch.tags,
                    status=status,
                    error=error,
                    started_at=self.started_at,
                )
            except SeawayError as exc:
                # The data could not be written (a param conflict): still end the run.
                self.store.finish(self.id, status, error)
                self._error = self._error or exc
        self.status = status
        self._raise_error()

    def record(self) -> RunRecord:
        """The run as stored, after writing what is pending."""
        self.flush()
        return self.store.get(self.id)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# -- projects and stores --------------------------------------------------------------------


def _project(project: Project | str | os.PathLike[str] | None) -> Project:
    from seaway.project import Project

    if isinstance(project, Project):
        return project
    if project is not None:
        return Project.find(Path(project))
    env_root = os.environ.get(ENV_PROJECT)
    return Project.find(Path(env_root)) if env_root else Project.find()


def _store(project: Project | str | os.PathLike[str] | None) -> RunStore:
    from seaway.project import Project

    # Finding the project and reading its store settings costs more than a small run's
    # writes: remember the answer for this working directory and environment.
    place: tuple[str | None, ...] | None = None
    if not isinstance(project, Project):
        place = (
            os.getcwd(),
            None if project is None else os.fspath(project),
            os.environ.get(ENV_PROJECT),
            os.environ.get("SEAWAY_METADATA_URL"),
            os.environ.get("SEAWAY_ARTIFACTS_URL"),
        )
        with _lock:
            known = _places.get(place)
        if known is not None:
            return known
    found = _project(project)
    key = (str(found.root), found.metadata_url)
    with _lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = RunStore(found)
        if place is not None:
            _places[place] = store
        return store


# -- module functions ---------------------------------------------------------------------------


def _install_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    previous = sys.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        _uncaught.append(exc)
        previous(exc_type, exc, tb)

    sys.excepthook = hook
    atexit.register(_at_exit)
    if "multiprocessing" in sys.modules:
        # A multiprocessing worker leaves through os._exit, which skips atexit; its own
        # exit hook runs finalizers, so the last half second of a step is written too.
        from multiprocessing import util

        util.Finalize(None, _at_exit, exitpriority=10)


def _at_exit() -> None:
    """End the runs left open (succeeded, or failed/cancelled when the program died of an
    exception) and write whatever is still buffered."""
    status, error = "succeeded", None
    if _uncaught:
        exc = _uncaught[-1]
        if isinstance(exc, KeyboardInterrupt):
            status, error = "cancelled", "interrupted (KeyboardInterrupt)"
        else:
            status, error = "failed", _describe(exc)
    for run in reversed(list(_stack)):
        try:
            if run.owned:
                run.end(status, error)
            else:
                run.flush()
        except Exception as problem:
            sys.stderr.write(f"seaway: could not end run {run.ref}: {problem}\n")
    try:
        _writer.flush()
    except Exception as problem:
        sys.stderr.write(f"seaway: could not write buffered tracking data: {problem}\n")


def _attach(run_id: str, project: Project | str | os.PathLike[str] | None = None) -> ActiveRun:
    with _lock:
        run = _attached.get(run_id)
    if run is not None:
        return run
    store = _store(project)
    record = store.get(run_id)
    run = ActiveRun(store, record, owned=False)
    with _lock:
        run = _attached.setdefault(record.id, run)
        _attached.setdefault(run_id, run)
    _install_hooks()
    return run


def start_run(
    name: str | None = None,
    *,
    pipeline: str | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    lineage: dict[str, Any] | None = None,
    project: Project | str | os.PathLike[str] | None = None,
    nested: bool = False,
) -> ActiveRun:
    """Start a run (use it in a `with` block: it ends `succeeded`, `failed` when the block
    raises, `cancelled` on KeyboardInterrupt).

    Under `SEAWAY_RUN_ID` (a pipeline step) it attaches to that run instead: params and
    tags go there, and leaving the block only flushes. Starting a run while another is
    active needs `nested=True`; the new run is tagged with its parent's id."""
    env_run = os.environ.get(ENV_RUN_ID)
    if env_run and not nested:
        run = _attach(env_run, project)
        with _lock:
            _stack.append(run)
        if params:
            run.log_params(params)
        if tags:
            run.set_tags(tags)
        return run
    with _lock:
        parent = _stack[-1] if _stack else None
    if parent is not None and not nested:
        raise UsageError(
            f"run {parent.ref} is already active",
            hint="end it first (leave its `with` block or call seaway.end_run()), or pass "
            "nested=True to start a child run",
        )
    if parent is None and env_run:
        parent = _attach(env_run, project)
    all_tags = dict(tags or {})
    if parent is not None:
        all_tags[TAG_PARENT] = parent.id
    store = _store(project)
    record = store.create_run(
        name=name, pipeline=pipeline, params=dict(params or {}), tags=all_tags, lineage=lineage
    )
    run = ActiveRun(store, record, owned=True)
    _install_hooks()
    with _lock:
        _stack.append(run)
    return run


def active_run() -> ActiveRun | None:
    """The run that logging calls would go to now, without starting one."""
    if _stack:
        return _stack[-1]
    env_run = os.environ.get(ENV_RUN_ID)
    return _attach(env_run) if env_run else None


def _current() -> ActiveRun:
    try:
        return _stack[-1]
    except IndexError:  # cheaper than a lock, and right when another thread just popped
        pass
    env_run = os.environ.get(ENV_RUN_ID)
    if env_run:
        return _attach(env_run)
    with _auto_lock:  # two threads logging at once must not start two runs
        if _stack:
            return _stack[-1]
        return start_run()


def end_run(status: str = "succeeded", error: str | None = None) -> None:
    """End the innermost active run (nothing happens when none is active)."""
    with _lock:
        run = _stack[-1] if _stack else None
    if run is None:
        return
    with _lock:
        if run in _stack:
            _stack.remove(run)
    run.end(status, error)


def log_metric(
    key: str, value: float, step: int | None = 0, *, timestamp: float | None = None
) -> None:
    _current().log_metric(key, value, step, timestamp=timestamp)


def log_metrics(
    metrics: Mapping[str, float], step: int = 0, *, timestamp: float | None = None
) -> None:
    _current().log_metrics(metrics, step, timestamp=timestamp)


def log_param(key: str, value: Any) -> None:
    _current().log_params({key: value})


def log_params(params: Mapping[str, Any]) -> None:
    _current().log_params(params)


def set_tag(key: str, value: Any) -> None:
    _current().set_tags({key: value})


def set_tags(tags: Mapping[str, Any]) -> None:
    _current().set_tags(tags)


def log_artifact(path: str | os.PathLike[str], name: str | None = None) -> ArtifactRecord:
    return _current().log_artifact(path, name)


def flush() -> None:
    """Write everything buffered, of every run; raise a problem a background write met."""
    _writer.flush()
    with _lock:
        runs = [*_stack, *_attached.values()]
    for run in runs:
        run._raise_error()


def reset() -> None:
    """Flush, forget every run and close the stores (for tests and long-lived hosts that
    switch projects); runs still open are left as they are in the database."""
    try:
        _writer.flush()
    finally:
        with _lock:
            _stack.clear()
            _attached.clear()
            stores = list(_stores.values())
            _stores.clear()
            _places.clear()
        for store in stores:
            store.close()
            store.project.close()
