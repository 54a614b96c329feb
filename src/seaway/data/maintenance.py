"""Store upkeep: `data verify` re-hashes every referenced blob, `data gc` removes blobs no
version references.

References come from every dataset version (its manifest blob and the files it lists).
Parts of seaway that later store their own blobs must add them in `referenced_blobs`,
or `gc` would delete them.

`gc` spares blobs modified within a grace period: a concurrent `data add` stores (or, for
blobs that already exist, touches) its blobs before it records the version that
references them, so a blob younger than the grace period may be about to be referenced.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from seaway.data.scan import default_workers
from seaway.data.tree import decode_manifest
from seaway.errors import IntegrityError, NotFound
from seaway.store.blobs import LocalBlobStore

if TYPE_CHECKING:
    from collections.abc import Callable

    from seaway.project import Project

GC_GRACE_SECONDS = 3600


@dataclass
class BlobProblem:
    digest: str
    state: str  # missing | corrupt
    used_by: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"digest": self.digest, "state": self.state, "used_by": self.used_by}


@dataclass
class VerifyReport:
    checked: int
    problems: list[BlobProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "problems": [p.to_dict() for p in self.problems],
        }


def _all_versions(project: Project) -> list[tuple[str, str]]:
    """(ref, manifest_hash) of every dataset version."""
    from sqlalchemy import select

    from seaway.store.schema import dataset_versions as dv
    from seaway.store.schema import datasets as ds

    with project.metadata.read() as conn:
        rows = conn.execute(
            select(ds.c.name, dv.c.number, dv.c.manifest_hash).join(ds, ds.c.id == dv.c.dataset_id)
        ).all()
    return [(f"{r.name}@{r.number}", r.manifest_hash) for r in rows]


def referenced_blobs(
    project: Project, problems: list[BlobProblem] | None = None
) -> dict[str, list[str]]:
    """digest → the versions that use it. Unreadable manifests go to `problems`."""
    used: dict[str, list[str]] = {}
    from seaway.pipeline.refs import pipeline_references

    manifests = list(_all_versions(project))
    for ref, digest, is_manifest in pipeline_references(project):
        if is_manifest:
            manifests.append((ref, digest))
        else:
            used.setdefault(digest, []).append(ref)
    for ref, manifest_hash in manifests:
        used.setdefault(manifest_hash, []).append(ref)
        try:
            entries = decode_manifest(project.blobs.get_bytes(manifest_hash))
        except (NotFound, IntegrityError) as exc:
            if problems is not None:
                state = "missing" if isinstance(exc, NotFound) else "corrupt"
                problems.append(BlobProblem(manifest_hash, state, [f"{ref} (manifest)"]))
            continue
        for e in entries:
            users = used.setdefault(e.digest, [])
            if not users or users[-1] != ref:
                users.append(ref)
    return used


def verify(
    project: Project,
    *,
    on_total: Callable[[int], None] | None = None,
    advance: Callable[[int], None] | None = None,
) -> VerifyReport:
    problems: list[BlobProblem] = []
    used = referenced_blobs(project, problems)
    broken_manifests = {p.digest for p in problems}
    blobs = project.blobs

    def check(digest: str) -> tuple[str, str]:
        state = blobs.check(digest)
        if advance is not None:
            advance(1)
        return digest, state

    todo = [d for d in used if d not in broken_manifests]
    if on_total is not None:
        on_total(len(todo))
    with ThreadPoolExecutor(max_workers=default_workers()) as pool:
        for digest, state in pool.map(check, todo):
            if state != "ok":
                problems.append(BlobProblem(digest, state, used[digest]))
    problems.sort(key=lambda p: (p.state, p.digest))
    return VerifyReport(checked=len(used), problems=problems)


@dataclass
class GcReport:
    dry_run: bool
    removed: int
    removed_bytes: int
    kept: int
    spared_recent: int
    temp_removed: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "removed": self.removed,
            "removed_bytes": self.removed_bytes,
            "kept": self.kept,
            "spared_recent": self.spared_recent,
            "temp_removed": self.temp_removed,
        }


def gc(
    project: Project, *, dry_run: bool = False, grace_seconds: float = GC_GRACE_SECONDS
) -> GcReport:
    used = referenced_blobs(project)
    blobs = project.blobs
    cutoff = time.time() - grace_seconds
    removed = removed_bytes = kept = spared = 0
    for digest in list(blobs.iter_digests()):
        if digest in used:
            kept += 1
            continue
        if isinstance(blobs, LocalBlobStore):
            try:
                st = os.stat(blobs.path(digest))
            except FileNotFoundError:
                continue
            if st.st_mtime > cutoff:
                spared += 1
                continue
            size = st.st_size
        else:
            size = blobs.size(digest)
        removed += 1
        removed_bytes += size
        if not dry_run:
            blobs.delete(digest)
    temp = 0 if dry_run else blobs.clean_temp()
    return GcReport(dry_run, removed, removed_bytes, kept, spared, temp)
