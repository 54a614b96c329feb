"""Turning a registered version back into files on disk and a predictor in memory.

`materialize` keeps one read-only copy of each version's files under
`.seaway/models/<digest>/`, built from the blob store (which re-hashes every blob it hands
out). Each later use re-hashes the copy against the version's manifest first: model files
are small next to the cost of loading them, and a copy edited on disk is then rebuilt
instead of being loaded. Where a signature is required, `load_model` verifies it before
anything is loaded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from seaway.registry.versions import ModelVersion, get_version

if TYPE_CHECKING:
    from seaway.data.tree import FileEntry
    from seaway.project import Project
    from seaway.registry.flavors import Predictor

CACHE_DIR = "models"


def _intact(directory: Path, entries: list[FileEntry]) -> bool:
    from seaway.store.hashing import hash_file

    present = sorted(
        p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()
    )
    if present != sorted(e.path for e in entries):
        return False
    for entry in entries:
        path = directory / entry.path
        try:
            size = path.stat().st_size
        except OSError:
            return False
        if size != entry.size or hash_file(path, size) != entry.digest:
            return False
    return True


def _make_writable(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        with contextlib.suppress(OSError):
            os.chmod(path, stat.S_IMODE(path.stat().st_mode) | stat.S_IWUSR)


def _remove(directory: Path) -> None:
    if directory.exists():
        _make_writable(directory)
        shutil.rmtree(directory, ignore_errors=True)


def materialize(project: Project, version: ModelVersion) -> Path:
    """A directory holding exactly the version's files (read-only); built once, checked on
    every call."""
    entries = version.files(project)
    root = project.state_dir / CACHE_DIR
    target = root / version.digest
    if target.is_dir() and _intact(target, entries):
        return target
    root.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".{version.digest[:12]}-", dir=root))
    try:
        for entry in entries:
            dest = build / entry.path
            dest.parent.mkdir(parents=True, exist_ok=True)
            project.blobs.get_file(entry.digest, dest)
            os.chmod(dest, 0o444)
        _remove(target)
        # A concurrent builder may win the rename; its copy is as good as ours.
        try:
            build.rename(target)
        except OSError:
            if not (target.is_dir() and _intact(target, entries)):
                raise
    finally:
        _remove(build)
    return target


def signature_required(project: Project, version: ModelVersion) -> bool:
    if not project.spec_path.is_file():
        return False
    spec = project.spec.models.get(version.model)
    return bool(spec and spec.require_signature)


def load_version(
    project: Project, version: ModelVersion, *, require_signature: bool | None = None
) -> Predictor:
    """Load a version already resolved; verify its signature first where one is required."""
    from seaway.registry.flavors import get_flavor

    required = (
        signature_required(project, version) if require_signature is None else require_signature
    )
    directory = materialize(project, version)
    if required:
        from seaway.registry.signing import require_verified

        # The very copy that is loaded next is the one checked against the signature.
        require_verified(project, version, directory=directory)
    return get_flavor(version.flavor).load(directory, version.meta)


def load_model(
    ref: str,
    *,
    project: Project | None = None,
    require_signature: bool | None = None,
) -> Predictor:
    """`seaway.load_model("churn@champion")`: the version's predictor, with `predict()` and,
    where the flavor has it, `predict_proba()`.

    `require_signature` overrides the model's `require_signature` in seaway.yaml; when a
    signature is required, a missing or invalid one refuses the load (SignatureError)."""
    from seaway.project import Project

    project = project or Project.find()
    return load_version(project, get_version(project, ref), require_signature=require_signature)
