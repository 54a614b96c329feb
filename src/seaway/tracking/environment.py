"""What a run records about where it ran: git state, Python, and the packages that matter.

Both are cached: the interpreter and its packages do not change within a process, and the
git state is re-read at most every `GIT_TTL_S` seconds, so creating a thousand runs in a
loop costs one `git status`, not a thousand (each is a few milliseconds).

Reading package versions means importing `importlib.metadata` and parsing metadata files,
50-100 ms: more than a fully cached `seaway run` may take in all. So `environment(cache_dir)`
also keeps the answer on disk (`environment.json` in the project's state folder), keyed by
the interpreter and by every `sys.path` entry with its modification time. Installing,
upgrading or removing a distribution adds or removes a `*.dist-info` folder, which changes
the modification time of the folder holding it, so none of them is missed (editing a
metadata file in place would be, and no installer does that).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

# Distribution names whose versions change what a model does or how it is read back.
PACKAGES = (
    "seaway",
    "numpy",
    "pandas",
    "polars",
    "pyarrow",
    "scipy",
    "scikit-learn",
    "skops",
    "xgboost",
    "lightgbm",
    "catboost",
    "torch",
    "tensorflow",
    "keras",
    "jax",
    "transformers",
    "onnx",
    "onnxruntime",
)
GIT_TTL_S = 2.0
ENVIRONMENT_CACHE = "environment.json"
_CACHE_FORMAT = 1
_CACHE_ENTRIES = 4

_lock = threading.Lock()
_environment: dict[str, Any] | None = None
_git: dict[str, tuple[float, str | None, bool | None]] = {}


def environment(cache_dir: Path | None = None) -> dict[str, Any]:
    """Python and package versions of this process (computed once); with `cache_dir`, read
    from and kept in a file there while the installed distributions stay the same."""
    global _environment
    with _lock:
        if _environment is None and cache_dir is not None:
            _environment = _read_cached(cache_dir)
        if _environment is None:
            from importlib.metadata import PackageNotFoundError, version

            packages: dict[str, str] = {}
            for name in PACKAGES:
                try:
                    packages[name] = version(name)
                except PackageNotFoundError:
                    continue
            _environment = {
                "python": platform.python_version(),
                "implementation": platform.python_implementation(),
                "platform": f"{sys.platform}-{platform.machine()}",
                "packages": packages,
            }
            if cache_dir is not None:
                _write_cached(cache_dir, _environment)
        return dict(_environment)


def _cache_key() -> list[Any]:
    """What the answer depends on: the interpreter, and each place distributions are found
    with its modification time (None where it does not exist)."""
    entries: list[Any] = []
    for entry in sys.path:
        try:
            mtime: int | None = os.stat(entry or ".").st_mtime_ns
        except OSError:
            mtime = None
        entries.append([entry, os.path.abspath(entry or "."), mtime])
    return [_CACHE_FORMAT, sys.executable, sys.version, entries]


def _read_cached(cache_dir: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads((cache_dir / ENVIRONMENT_CACHE).read_bytes())
        found = doc["entries"].get(json.dumps(_cache_key()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return found if isinstance(found, dict) else None


def _write_cached(cache_dir: Path, env: dict[str, Any]) -> None:
    """Best effort (a read-only state folder only costs the next look-up). A few entries are
    kept: `seaway` and `python -m seaway` differ in sys.path[0]."""
    path = cache_dir / ENVIRONMENT_CACHE
    try:
        entries = json.loads(path.read_bytes()).get("entries", {})
        if not isinstance(entries, dict):
            entries = {}
    except (OSError, ValueError, AttributeError):
        entries = {}
    entries.pop(key := json.dumps(_cache_key()), None)
    entries[key] = env
    doc = {"entries": dict(list(entries.items())[-_CACHE_ENTRIES:])}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()


def git_state(root: Path) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the work tree holding `root`; (None, None) outside git or before
    the first commit. Dirty means tracked files differ from the commit: untracked files are
    not counted (build outputs and data would make every run dirty)."""
    key = str(root)
    now = time.monotonic()
    with _lock:
        cached = _git.get(key)
        if cached is not None and now - cached[0] < GIT_TTL_S:
            return cached[1], cached[2]
    commit, dirty = _read_git(root)
    with _lock:
        _git[key] = (now, commit, dirty)
    return commit, dirty


def _read_git(root: Path) -> tuple[str | None, bool | None]:
    # One call gives both the commit (branch.oid) and the changed tracked files. Optional
    # locks off: a status must not take index.lock and fail a concurrent `git commit`.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        done = subprocess.run(
            ["git", "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None, None
    if done.returncode != 0:
        return None, None
    commit: str | None = None
    dirty = False
    for line in done.stdout.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split(" ", 2)[2].strip()
            commit = oid if oid != "(initial)" else None
        elif line and not line.startswith("#"):
            dirty = True
    if commit is None:
        return None, None
    return commit, dirty


def reset_cache() -> None:
    """Forget the cached git state (tests change the work tree between runs)."""
    with _lock:
        _git.clear()
