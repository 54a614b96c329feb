"""Blobs the pipeline engine and run tracking reference, so `seaway data gc` keeps them.

Every output of every recorded step (run records and the step cache) is a manifest blob
listing file blobs; every step that ran has a log blob; every run artifact is a blob (a
file, a log) or a manifest (a folder; a model is either, told apart by its size).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from seaway.project import Project


def _outputs(doc: Any) -> dict[str, Any]:
    if isinstance(doc, str):
        doc = json.loads(doc)
    return doc if isinstance(doc, dict) else {}


def pipeline_references(project: Project) -> Iterator[tuple[str, str, bool]]:
    """(who uses it, digest, whether it is a manifest) of every blob pipelines use, each
    digest once: every cached run of a step points at the same outputs."""
    from sqlalchemy import select

    from seaway.store.schema import run_artifacts, run_steps, step_cache

    sc, rs = step_cache.c, run_steps.c
    with project.metadata.read() as conn:
        cache_rows = conn.execute(select(sc.key, sc.pipeline, sc.step, sc.outputs)).all()
        step_rows = conn.execute(select(rs.run_id, rs.step, rs.outputs, rs.log_digest)).all()
        ra = run_artifacts.c
        artifact_rows = conn.execute(select(ra.run_id, ra.name, ra.digest, ra.size, ra.kind)).all()
    found: dict[tuple[str, bool], list[str]] = {}
    for key, pipeline, step, outputs in cache_rows:
        for name, out in _outputs(outputs).items():
            if isinstance(out, dict) and out.get("manifest_hash"):
                label = f"step cache {pipeline}.{step}.{name} ({key[:10]})"
                found.setdefault((out["manifest_hash"], True), []).append(label)
    for run_id, step, outputs, log_digest in step_rows:
        for name, out in _outputs(outputs).items():
            if isinstance(out, dict) and out.get("manifest_hash"):
                label = f"run {run_id[:8]} {step}.{name}"
                found.setdefault((out["manifest_hash"], True), []).append(label)
        if log_digest:
            found.setdefault((log_digest, False), []).append(f"run {run_id[:8]} {step} (log)")
    for run_id, name, digest, size, kind in artifact_rows:
        is_manifest = kind == "dir" or (kind == "model" and _is_manifest(project, digest, size))
        found.setdefault((digest, is_manifest), []).append(f"run {run_id[:8]} artifact {name}")
    for (digest, is_manifest), labels in found.items():
        more = f" (+{len(labels) - 1} more)" if len(labels) > 1 else ""
        yield labels[0] + more, digest, is_manifest


def _is_manifest(project: Project, digest: str, size: int) -> bool:
    """A single-file artifact's blob has the artifact's size; a manifest does not."""
    try:
        return project.blobs.size(digest) != size
    except Exception:  # a missing blob: verify reports it; gc has nothing to keep
        return False
