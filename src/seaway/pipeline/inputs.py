"""Dataset inputs of a run: `dataset:NAME` (the latest version) or `dataset:NAME@V`.

Versions are resolved once per run, before any step starts, so every step of a run sees the
same version even if someone adds a new one meanwhile. Only the version row is read (its
tree hash, manifest hash and sources): a step that is cached never needs the files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from seaway.pipeline.task import InputSpec

if TYPE_CHECKING:
    from seaway.data.sqlite_lane import SqliteLane
    from seaway.project import Project


@dataclass(frozen=True)
class ResolvedDataset:
    name: str
    version: int
    tree_hash: str
    manifest_hash: str
    kind: str  # "file" when the version is a single file added as such
    file_name: str | None

    def as_input(self, ref: str) -> InputSpec:
        return InputSpec(ref, self.tree_hash, self.manifest_hash, self.kind, self.file_name)

    def lineage(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "ref": f"{self.name}@{self.version}",
            "tree_hash": self.tree_hash,
        }


def _shape(sources: Any) -> tuple[str, str | None]:
    """("file", name) for a version made of one file added by itself, else ("dir", None)."""
    if isinstance(sources, str):
        sources = json.loads(sources)
    if isinstance(sources, list) and len(sources) == 1 and sources[0].get("kind") == "file":
        return "file", sources[0].get("prefix") or None
    return "dir", None


def resolve_dataset(
    project: Project, name: str, version: str | None, lane: SqliteLane | None
) -> ResolvedDataset:
    row = _lane_lookup(lane, name, version) if lane is not None else None
    if row is not None:
        number, tree, manifest, sources = row
    else:
        from seaway.data.datasets import get_version

        found = get_version(project, f"{name}@{version}" if version else name)
        number, tree, manifest, sources = (
            found.number,
            found.tree_hash,
            found.manifest_hash,
            found.sources,
        )
    kind, file_name = _shape(sources)
    if kind == "file" and not file_name:
        kind = "dir"
    return ResolvedDataset(name, int(number), tree, manifest, kind, file_name)


def _lane_lookup(lane: SqliteLane, name: str, version: str | None) -> tuple[Any, ...] | None:
    """The common forms (latest, a number) through the standard library; anything else,
    and every miss, goes to seaway.data.datasets for its full rules and messages."""
    base = (
        "SELECT number, tree_hash, manifest_hash, sources FROM dataset_versions WHERE "
        "dataset_id = (SELECT id FROM datasets WHERE name = ?)"
    )
    if version is None or version == "latest":
        row = lane.conn.execute(base + " ORDER BY number DESC LIMIT 1", (name,)).fetchone()
    elif version.isdigit() and len(version) < 6:
        row = lane.conn.execute(base + " AND number = ?", (name, int(version))).fetchone()
    else:
        return None
    return tuple(row) if row is not None else None
