"""Materialising a dataset version into a folder."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seaway.data.datasets import get_version, read_manifest
from seaway.data.scan import default_workers
from seaway.data.tree import FileEntry
from seaway.errors import UsageError
from seaway.store.hashing import hash_file

if TYPE_CHECKING:
    from collections.abc import Callable

    from seaway.project import Project


@dataclass
class CheckoutResult:
    ref: str
    dest: Path
    written: int
    unchanged: int
    bytes_written: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "dest": str(self.dest),
            "written": self.written,
            "unchanged": self.unchanged,
            "bytes_written": self.bytes_written,
        }


def checkout(
    project: Project,
    ref: str,
    dest: Path,
    *,
    force: bool = False,
    on_total: Callable[[int], None] | None = None,
    advance: Callable[[int], None] | None = None,
) -> CheckoutResult:
    """Write the files of `ref` under `dest`. Files already there with the right content
    are left alone; a file with other content is an error unless `force`. Every file is
    verified against its digest and written atomically."""
    version = get_version(project, ref)
    entries = read_manifest(project, version)
    dest = dest.resolve()
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"destination {dest} exists and is not a folder")

    conflicts: list[str] = []
    todo: list[FileEntry] = []
    unchanged = 0
    for e in entries:
        target = dest / e.path
        if target.exists():
            if (
                target.is_file()
                and target.stat().st_size == e.size
                and hash_file(target) == e.digest
            ):
                unchanged += 1
                continue
            if not force:
                conflicts.append(e.path)
                continue
        todo.append(e)
    if conflicts:
        shown = ", ".join(conflicts[:5]) + (" …" if len(conflicts) > 5 else "")
        raise UsageError(
            f"{len(conflicts)} file(s) in {dest} differ from {version.ref}: {shown}",
            hint="check out into an empty folder, or pass --force to overwrite them",
        )

    blobs = project.blobs
    if on_total is not None:
        on_total(len(todo))

    def write(e: FileEntry) -> int:
        target = dest / e.path
        if target.is_dir():
            raise UsageError(f"{target} is a folder but {version.ref} has a file there")
        blobs.get_file(e.digest, target)
        if advance is not None:
            advance(1)
        return e.size

    os.makedirs(dest, exist_ok=True)
    with ThreadPoolExecutor(max_workers=default_workers()) as pool:
        sizes = list(pool.map(write, todo))
    return CheckoutResult(version.ref, dest, len(todo), unchanged, sum(sizes))
