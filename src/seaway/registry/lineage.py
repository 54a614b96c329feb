"""A version's lineage as a tree: the version, the run that made it, the steps that led to
the registered output, and the dataset versions at the leaves.

The tree is built from what registration recorded (`ModelVersion.lineage`): the run's steps
with their inputs, so it shows how the version was made even after seaway.yaml changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from seaway._util import human_size

if TYPE_CHECKING:
    from seaway.project import Project
    from seaway.registry.versions import ModelVersion


@dataclass
class LineageNode:
    kind: str  # version | run | step | dataset | source
    label: str
    detail: dict[str, Any] = field(default_factory=dict)
    children: list[LineageNode] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "label": self.label,
            "detail": self.detail,
            "children": [c.to_dict() for c in self.children],
        }


def _dataset_node(text: str, datasets: dict[str, dict[str, Any]]) -> LineageNode:
    name = text.removeprefix("dataset:").split("@", 1)[0]
    recorded = datasets.get(name, {})
    ref = recorded.get("ref") or text.removeprefix("dataset:")
    detail: dict[str, Any] = {k: recorded[k] for k in ("version", "tree_hash") if k in recorded}
    return LineageNode("dataset", f"dataset {ref}", detail)


def _step_node(
    step: str,
    output: str | None,
    steps: dict[str, dict[str, Any]],
    datasets: dict[str, dict[str, Any]],
    seen: frozenset[str],
) -> LineageNode:
    record = steps.get(step, {})
    label = f"{step}.{output}" if output else step
    detail = {k: record[k] for k in ("status", "cache_key") if record.get(k) is not None}
    node = LineageNode("step", label, detail)
    if step in seen:  # a cycle cannot be recorded, but a damaged record must not loop
        return node
    for arg, source in sorted((record.get("inputs") or {}).items()):
        if source.startswith("dataset:"):
            child = _dataset_node(source, datasets)
        else:
            parent, _, out = source.partition(".")
            child = _step_node(parent, out, steps, datasets, seen | {step})
        child.detail = {"as": arg, **child.detail}
        node.children.append(child)
    return node


def lineage_tree(project: Project, version: ModelVersion) -> LineageNode:
    """The version's lineage, the version at the root."""
    lin = version.lineage
    root = LineageNode(
        "version",
        version.ref,
        {
            "flavor": version.flavor,
            "size": human_size(version.size),
            "digest": version.digest,
            "author": version.author,
        },
    )
    datasets = {
        d["name"]: d for d in lin.get("datasets", []) if isinstance(d, dict) and "name" in d
    }
    git = lin.get("git") or {}
    if lin.get("run"):
        run = LineageNode(
            "run",
            f"run {lin.get('run_seq', '?')} ({lin['run']})",
            {
                "pipeline": lin.get("pipeline"),
                "git_commit": git.get("commit"),
                "git_dirty": git.get("dirty"),
            },
        )
        root.children.append(run)
        steps = {s["step"]: s for s in lin.get("steps", []) if isinstance(s, dict) and "step" in s}
        origin = lin.get("from")
        if origin and "." in origin:
            step, _, output = origin.partition(".")
            run.children.append(_step_node(step, output, steps, datasets, frozenset()))
        else:
            run.children.extend(_dataset_node(f"dataset:{n}", datasets) for n in sorted(datasets))
    else:
        root.children.append(
            LineageNode(
                "source",
                f"registered from {lin.get('source', '?')}",
                {"git_commit": git.get("commit"), "git_dirty": git.get("dirty")},
            )
        )
    return root
