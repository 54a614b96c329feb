"""What a run records about where it ran: git state, Python, and the packages that matter.

Both are cached: the interpreter and its packages do not change within a process, and the
git state is re-read at most every `GIT_TTL_S` seconds, so creating a thousand runs in a
loop costs one `git status`, not a thousand (each is a few milliseconds).
"""

from __future__ import annotations

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

_lock = threading.Lock()
_environment: dict[str, Any] | None = None
_git: dict[str, tuple[float, str | None, bool | None]] = {}


def environment() -> dict[str, Any]:
    """Python and package versions of this process (computed once)."""
    global _environment
    with _lock:
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
        return dict(_environment)


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
