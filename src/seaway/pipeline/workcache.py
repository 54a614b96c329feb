"""The content-addressed work cache: inputs as local folders, under `.seaway/workcache/`.

`WORK/<tree hash>/` holds the files of one tree (a dataset version or a step output) and
exists only when complete: it is written under a `.tmp-*` name and renamed into place, so
an interrupted materialisation is never taken for a complete one. Files in it are made
read-only, since they are shared by every step (and run) that reads that content.
A single-file tree is passed to a step as `WORK/<tree hash>/<file name>`, a folder tree as
`WORK/<tree hash>`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from seaway.pipeline.task import InputSpec

if TYPE_CHECKING:
    from seaway.store.blobs import BlobStore

TMP_PREFIX = ".tmp-"
_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
_STALE_SECONDS = 3600


def entry_path(work_dir: Path, tree_hash: str, kind: str, file_name: str | None) -> Path:
    base = work_dir / tree_hash
    return base / file_name if kind == "file" and file_name else base


def ensure_local(blobs: BlobStore, work_dir: Path, spec: InputSpec) -> Path:
    """A local path holding the input's content, materialised from the blob store if needed."""
    if spec.path and os.path.exists(spec.path):
        return Path(spec.path)
    if not (work_dir / spec.tree_hash).is_dir():
        materialise(blobs, work_dir, spec.tree_hash, spec.manifest_hash)
    return entry_path(work_dir, spec.tree_hash, spec.kind, spec.file_name)


def materialise(blobs: BlobStore, work_dir: Path, tree_hash: str, manifest_hash: str) -> Path:
    from seaway.data.tree import decode_manifest

    entries = decode_manifest(blobs.get_bytes(manifest_hash))
    work_dir.mkdir(parents=True, exist_ok=True)
    tmp = work_dir / f"{TMP_PREFIX}{uuid.uuid4().hex}"
    tmp.mkdir()
    try:

        def fetch(path: str, digest: str) -> None:
            target = tmp / path
            blobs.get_file(digest, target)
            os.chmod(target, _READ_ONLY)

        if len(entries) > 8:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(lambda e: fetch(e.path, e.digest), entries))
        else:
            for e in entries:
                fetch(e.path, e.digest)
        return _commit(tmp, work_dir / tree_hash)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def adopt(produced: Path, work_dir: Path, tree_hash: str, kind: str, name: str) -> Path:
    """Move a step's freshly snapshotted output into the cache (no copy); its path there."""
    final = work_dir / tree_hash
    if final.is_dir():
        return entry_path(work_dir, tree_hash, kind, name)
    _make_read_only(produced)
    if kind == "dir":
        staged = produced
    else:
        staged = work_dir / f"{TMP_PREFIX}{uuid.uuid4().hex}"
        staged.mkdir(parents=True)
        os.rename(produced, staged / name)
    try:
        _commit(staged, final)
    except BaseException:
        if kind != "dir":
            shutil.rmtree(staged, ignore_errors=True)
        raise
    return entry_path(work_dir, tree_hash, kind, name)


def _commit(staged: Path, final: Path) -> Path:
    try:
        os.rename(staged, final)
    except OSError as exc:
        # Another step or run completed the same content first: keep theirs.
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not final.is_dir():
            raise
        shutil.rmtree(staged, ignore_errors=True)
    return final


def _make_read_only(path: Path) -> None:
    if path.is_file():
        os.chmod(path, _READ_ONLY)
        return
    for folder, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                os.chmod(os.path.join(folder, f), _READ_ONLY)


def clean_stale(work_dir: Path) -> None:
    """Remove temporary folders left by killed runs (older than an hour)."""
    cutoff = time.time() - _STALE_SECONDS
    for parent in (work_dir, work_dir / "tmp"):
        try:
            entries = list(os.scandir(parent))
        except OSError:
            continue
        for entry in entries:
            if parent == work_dir and not entry.name.startswith(TMP_PREFIX):
                continue
            with contextlib.suppress(OSError):
                if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    shutil.rmtree(entry.path, ignore_errors=True)
