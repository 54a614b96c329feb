"""Running one step: `execute_step(task) -> StepOutcome`.

This is a plain function over a picklable task, so a local process pool and a remote
executor (a Ray task) run the very same code. It never raises for a failing step: the
outcome says `failed` and why, and the step's output, including tracebacks, is in its log.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seaway.pipeline.capture import capture_output, tail
from seaway.pipeline.task import OutputRecord, StepOutcome, StepTask
from seaway.pipeline.workcache import adopt, ensure_local

if TYPE_CHECKING:
    from seaway.store.blobs import BlobStore


_MAX_METRIC_NAME = 250  # seaway.tracking.store.MAX_KEY


class StepFailure(Exception):
    """A step failed for a reason that needs no traceback (the message says it all)."""


_blob_stores: dict[str, BlobStore] = {}


def _blobs(url: str) -> BlobStore:
    store = _blob_stores.get(url)
    if store is None:
        from seaway.store.blobs import open_blob_store

        store = _blob_stores[url] = open_blob_store(url)
    return store


def execute_step(task: StepTask) -> StepOutcome:
    """Run the step of `task` in this process and snapshot what it wrote.

    The process environment is put back afterwards: a warm worker runs many steps, and one
    step's variables (its run id, its extra `env`) must not reach the next one, nor the
    caller when a step runs in-process."""
    saved = dict(os.environ)
    try:
        return _execute_step(task)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _execute_step(task: StepTask) -> StepOutcome:
    started = time.time()
    t0 = time.perf_counter()
    blobs = _blobs(task.artifacts_url)
    work_dir = Path(task.work_dir)
    step_dir = work_dir / "tmp" / f"{task.run_id}-{task.step}-{uuid.uuid4().hex[:8]}"
    out_dir = step_dir / "out"
    out_dir.mkdir(parents=True)
    log_path = step_dir / "log"
    out_paths = {name: out_dir / name for name in task.outputs}
    outcome = StepOutcome(task.step, "failed", started, 0.0, worker=str(os.getpid()))
    metrics: dict[str, float] = {}
    error: str | None = None
    try:
        _set_environment(task)
        with capture_output(log_path):
            try:
                inputs = _materialise(blobs, work_dir, task)
                if task.spec.get("run"):
                    metrics = _run_python(task, inputs, out_paths, out_dir)
                else:
                    metrics = _run_shell(task, inputs, out_paths, out_dir, step_dir)
                _flush_tracking()
            except StepFailure as exc:
                error = str(exc)
                sys.stderr.write(f"seaway: step {task.step} failed: {error}\n")
            except BaseException as exc:  # the step's own exception, SystemExit included
                _print_user_traceback(exc)
                error = _describe(exc)
        if error is None:
            error = _check_declared(task, out_paths, metrics, started)
        if error is None:
            outcome.outputs = {
                name: _snapshot(blobs, work_dir, name, path) for name, path in out_paths.items()
            }
            outcome.metrics = metrics
            outcome.status = "ran"
    except Exception as exc:  # seaway's own machinery failed (store, disk)
        error = f"seaway could not run the step: {_describe(exc)}"
    finally:
        outcome.error = error
        if log_path.exists():
            with contextlib.suppress(Exception):
                outcome.log_size = log_path.stat().st_size
                outcome.log_tail = tail(log_path)
                from seaway.store.hashing import hash_file

                digest = hash_file(log_path)
                blobs.put_file(log_path, digest)
                outcome.log_digest = digest
        shutil.rmtree(step_dir, ignore_errors=True)
        outcome.duration_s = time.perf_counter() - t0
    return outcome


def _materialise(blobs: BlobStore, work_dir: Path, task: StepTask) -> dict[str, Path]:
    from seaway.errors import SeawayError

    out: dict[str, Path] = {}
    for name, spec in task.inputs.items():
        try:
            out[name] = ensure_local(blobs, work_dir, spec)
        except SeawayError as exc:
            if spec.ref.startswith("dataset:"):
                fix = f"add the dataset again (seaway data add {spec.ref[8:].partition('@')[0]})"
            else:
                fix = f"rerun the step that made it: seaway run {task.pipeline} --force "
                fix += spec.ref.partition(".")[0]
            raise StepFailure(
                f"input '{name}' ({spec.ref}) could not be read from the blob store: "
                f"{exc.message}; {fix}"
            ) from None
    return out


def _print_user_traceback(exc: BaseException) -> None:
    """The traceback from the step's own frames on: seaway's frames above them are noise."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb or exc.__traceback__)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"the step called sys.exit({exc.code!r})"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _set_environment(task: StepTask) -> None:
    # The fluent tracking API (seaway.log_metric …) attaches to the pipeline's run through
    # these; the store URLs make it use the same stores as the run.
    os.environ.update(
        {
            "SEAWAY_RUN_ID": task.run_id,
            "SEAWAY_PROJECT": task.project_root,
            "SEAWAY_STEP": task.step,
            "SEAWAY_PIPELINE": task.pipeline,
            "SEAWAY_METADATA_URL": task.metadata_url,
            "SEAWAY_ARTIFACTS_URL": task.artifacts_url,
            **task.env,
        }
    )


def _flush_tracking() -> None:
    """Write what the step logged through the fluent API (seaway.log_metric …) before the
    step counts as done. A step that never used it did not import it: nothing to do."""
    fluent = sys.modules.get("seaway.tracking.fluent")
    if fluent is not None:
        fluent.flush()


def _fluent_metrics(since: float) -> set[str]:
    """Metric keys the step logged to the run through the fluent API since `since`."""
    fluent = sys.modules.get("seaway.tracking.fluent")
    if fluent is None:
        return set()
    run = fluent.active_run()
    if run is None:
        return set()
    return {p.key for p in run.store.metric_history(run.id) if p.ts >= since - 1.0}


# -- Python steps ------------------------------------------------------------------


def _search_path(root: Path) -> None:
    for entry in (root / "src", root):
        text = str(entry)
        if entry.is_dir() and text not in sys.path:
            sys.path.insert(0, text)


def load_callable(ref: str, root: Path) -> Callable[..., Any]:
    """`package.module:function` (or `module:Class.method`) from the project."""
    import importlib

    module_name, _, attr = ref.partition(":")
    _search_path(root)
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:
        rel = Path(*module_name.split("."))
        tried = ", ".join(
            str(base / candidate)
            for base in (root, root / "src")
            for candidate in (rel.with_suffix(".py"), rel / "__init__.py")
        )
        if isinstance(exc, ModuleNotFoundError) and exc.name and module_name.startswith(exc.name):
            raise StepFailure(
                f"cannot import {ref}: no module '{module_name}' (looked for {tried})"
            ) from None
        _print_user_traceback(exc)
        raise StepFailure(
            f"cannot import {ref}: importing module '{module_name}' raised {_describe(exc)}"
        ) from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            where = getattr(sys.modules.get(module_name), "__file__", module_name)
            raise StepFailure(
                f"cannot import {ref}: {module_name} ({where}) has no attribute '{attr}'"
            ) from None
    if not callable(obj):
        raise StepFailure(f"{ref} is not callable (it is a {type(obj).__name__})")
    fn: Callable[..., Any] = obj
    return fn


def _run_python(
    task: StepTask, inputs: dict[str, Path], outputs: dict[str, Path], out_dir: Path
) -> dict[str, float]:
    import inspect

    root = Path(task.project_root)
    ref = task.spec["run"]
    fn = load_callable(ref, root)
    available: dict[str, Any] = {name: str(path) for name, path in inputs.items()}
    available.update(task.params)
    available.update({name: str(path) for name, path in outputs.items()})
    kwargs: dict[str, Any] = {}
    missing: list[str] = []
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    var_kw = False
    for name, p in params.items():
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind is p.VAR_POSITIONAL:
            continue
        elif name in available:
            kwargs[name] = available[name]
        elif name == "output_dir":
            kwargs[name] = str(out_dir)
        elif p.default is p.empty:
            missing.append(name)
    if missing:
        raise StepFailure(
            f"{ref}() needs {', '.join(repr(m) for m in missing)}, which step '{task.step}' "
            f"does not provide (its inputs: {_names(inputs)}; params: {_names(task.params)}; "
            f"outputs: {_names(outputs)})"
        )
    if var_kw:
        kwargs.update({k: v for k, v in available.items() if k not in kwargs})
    os.chdir(root)
    result = fn(**kwargs)
    return _metrics_from(result, f"{ref}() returned")


def _names(items: Any) -> str:
    return ", ".join(items) or "none"


def _metrics_from(value: Any, what: str) -> dict[str, float]:
    """Metrics as the run store accepts them: named, numeric, not NaN."""
    import math

    if value is None:
        return {}
    if not isinstance(value, dict):
        raise StepFailure(f"{what} {type(value).__name__}; return a dict of metrics or None")
    out: dict[str, float] = {}
    for key, v in value.items():
        if not isinstance(key, str) or not key or len(key) > _MAX_METRIC_NAME:
            raise StepFailure(
                f"{what} a metric named {key!r}; names are strings of 1 to "
                f"{_MAX_METRIC_NAME} characters"
            )
        number = None
        if not isinstance(v, str | bytes | dict | list):
            with contextlib.suppress(TypeError, ValueError):
                number = float(v)
        if number is None:
            raise StepFailure(f"{what} metric {key!r} = {v!r}, which is not a number")
        if math.isnan(number):
            raise StepFailure(
                f"{what} metric {key!r} = NaN (training diverged?); report a finite number"
            )
        out[key] = number
    return out


# -- shell steps ---------------------------------------------------------------------

_PLACEHOLDER = r"\{(inputs|outputs|params)\.([A-Za-z_][A-Za-z0-9_]*)\}"


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        import json

        return json.dumps(value)
    return str(value)


def render_command(
    cmd: str, inputs: dict[str, str], outputs: dict[str, str], params: dict[str, Any]
) -> str:
    """`cmd` with `{inputs.X}`, `{outputs.X}` and `{params.X}` replaced, shell-quoted."""
    import re
    import shlex

    tables: dict[str, dict[str, Any]] = {"inputs": inputs, "outputs": outputs, "params": params}

    def replace(match: re.Match[str]) -> str:
        kind, name = match.group(1), match.group(2)
        table = tables[kind]
        if name not in table:
            raise StepFailure(
                f"the command uses {{{kind}.{name}}}, but the step declares no such "
                f"{kind[:-1]} (its {kind}: {_names(table)})"
            )
        return shlex.quote(_as_text(table[name]))

    return re.sub(_PLACEHOLDER, replace, cmd)


def _run_shell(
    task: StepTask,
    inputs: dict[str, Path],
    outputs: dict[str, Path],
    out_dir: Path,
    step_dir: Path,
) -> dict[str, float]:
    import json
    import subprocess

    in_text = {k: str(v) for k, v in inputs.items()}
    out_text = {k: str(v) for k, v in outputs.items()}
    cmd = render_command(task.spec["cmd"], in_text, out_text, task.params)
    metrics_path = step_dir / "metrics.json"
    env = dict(os.environ)
    env.update({f"SEAWAY_INPUT_{k.upper()}": v for k, v in in_text.items()})
    env.update({f"SEAWAY_OUTPUT_{k.upper()}": v for k, v in out_text.items()})
    env.update({f"SEAWAY_PARAM_{k.upper()}": _as_text(v) for k, v in task.params.items()})
    env["SEAWAY_METRICS"] = str(metrics_path)
    env["SEAWAY_OUTPUT_DIR"] = str(out_dir)
    # stdout and stderr are inherited: they already point at the step's log.
    proc = subprocess.run(
        ["bash", "-c", cmd], cwd=task.project_root, env=env, stdin=subprocess.DEVNULL
    )
    if proc.returncode < 0:
        import signal

        name = signal.Signals(-proc.returncode).name
        raise StepFailure(f"the command was killed by {name}")
    if proc.returncode != 0:
        raise StepFailure(f"the command exited with status {proc.returncode}")
    if not metrics_path.is_file() or metrics_path.stat().st_size == 0:
        return {}
    try:
        doc = json.loads(metrics_path.read_text())
    except ValueError as exc:
        raise StepFailure(f"$SEAWAY_METRICS does not hold JSON: {exc}") from None
    return _metrics_from(doc, "$SEAWAY_METRICS holds")


# -- after the step ----------------------------------------------------------------


def _check_declared(
    task: StepTask, outputs: dict[str, Path], metrics: dict[str, float], started: float
) -> str | None:
    for name, path in outputs.items():
        if not (path.is_file() or path.is_dir()):
            return (
                f"step {task.step} did not write its output '{name}' "
                f"(expected a file or folder at {path})"
            )
    missing = [m for m in task.spec.get("metrics", []) if m not in metrics]
    if missing:
        logged = _fluent_metrics(started)
        missing = [m for m in missing if m not in logged]
    if missing:
        reported = ", ".join(sorted(metrics)) or "none"
        return (
            f"step {task.step} did not report its declared metric(s) "
            f"{', '.join(repr(m) for m in missing)} (reported: {reported})"
        )
    return None


def _snapshot(blobs: BlobStore, work_dir: Path, name: str, path: Path) -> OutputRecord:
    from seaway.data.scan import Source, WorkFile, hash_files, walk
    from seaway.data.tree import encode_manifest, tree_hash

    if path.is_file():
        st = path.stat()
        files = [WorkFile(str(path), name, st.st_size, st.st_mtime_ns, st.st_ino)]
        kind = "file"
    else:
        files = walk([Source(path, name, "dir", "")])
        kind = "dir"
    scan = hash_files(files, {}, store=blobs, link="auto")
    entries = scan.entries
    root_hash = tree_hash(entries)
    manifest_hash = blobs.put_bytes(encode_manifest(entries))
    local = adopt(path, work_dir, root_hash, kind, name)
    return OutputRecord(
        tree_hash=root_hash,
        manifest_hash=manifest_hash,
        kind=kind,
        size=sum(e.size for e in entries),
        files=len(entries),
        file_name=name if kind == "file" else None,
        digest=entries[0].digest if kind == "file" else None,
        path=str(local),
    )


def init_worker(project_root: str, parent_pid: int | None = None) -> None:
    """Initializer of a pool worker: its own process group, quiet stdin, warm imports, and
    a watch on the parent so that the worker never outlives it."""
    # A process group of its own: the parent can stop the worker and everything the step
    # started with one killpg, and a Ctrl-C on the terminal reaches only the parent, which
    # cancels the run in order.
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    with contextlib.suppress(OSError):
        fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(fd, 0)
        os.close(fd)
    if parent_pid is not None:
        _watch_parent(parent_pid)
    _search_path(Path(project_root))
    preload()


def _watch_parent(pid: int) -> None:
    """Kill this worker's group when `pid` (the `seaway run` process) dies, even by SIGKILL,
    which leaves no chance to cancel: a step must not run on with no one to record it."""
    import signal
    import threading

    def gone() -> None:
        with contextlib.suppress(OSError):
            os.killpg(os.getpgid(0), signal.SIGKILL)
        os._exit(1)

    def wait_pidfd(fd: int) -> None:
        import select

        select.select([fd], [], [])  # readable once the process has exited
        gone()

    def poll() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                gone()
            except OSError:
                pass

    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            gone()
        except OSError:
            pass
        threading.Thread(target=poll, name="seaway-parent-watch", daemon=True).start()
        return
    threading.Thread(target=wait_pidfd, args=(fd,), name="seaway-parent-watch", daemon=True).start()


def preload() -> None:
    """Import what every step needs, so the first step does not pay for it."""
    import inspect  # noqa: F401
    import subprocess  # noqa: F401

    import seaway.data.scan
    import seaway.data.tree
    import seaway.store.blobs
    import seaway.store.hashing  # noqa: F401

    # Not the fluent tracking API: it brings SQLAlchemy, which most steps never need (a
    # step that logs through it imports it on first use).


__all__ = ["StepFailure", "execute_step", "init_worker", "load_callable", "render_command"]
