"""What a worker receives and returns: plain, picklable dataclasses.

A StepTask holds everything a worker needs, so the same `execute_step` runs in a local
process pool or as a remote task (Ray) on a machine that shares only the stores: inputs come
with their manifests, so a worker that cannot see `path` materialises them from the blob
store itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

OUTCOME_STATUSES = ("ran", "failed")


@dataclass(frozen=True)
class InputSpec:
    """One input of a step: a dataset version or an upstream output, by content."""

    ref: str  # as written in the spec: dataset:NAME@V or STEP.OUTPUT
    tree_hash: str
    manifest_hash: str
    kind: str  # "file" | "dir"
    file_name: str | None = None  # the file's path in the tree, for kind "file"
    path: str | None = None  # a local copy known to the caller; used when it exists


@dataclass(frozen=True)
class OutputRecord:
    """A snapshotted output: what the step cache, the run record and inputs refer to."""

    tree_hash: str
    manifest_hash: str
    kind: str  # "file" | "dir"
    size: int
    files: int
    file_name: str | None = None
    digest: str | None = None  # the file's blob, for kind "file"
    path: str | None = None  # where the worker left a complete copy (the work cache)

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc.pop("path")
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> OutputRecord:
        known: dict[str, Any] = {k: doc[k] for k in cls.__dataclass_fields__ if k in doc}
        return cls(**known)

    def as_input(self, ref: str) -> InputSpec:
        return InputSpec(
            ref, self.tree_hash, self.manifest_hash, self.kind, self.file_name, self.path
        )


@dataclass(frozen=True)
class StepTask:
    project_root: str
    metadata_url: str
    artifacts_url: str
    work_dir: str  # the content-addressed work cache (…/.seaway/workcache)
    run_id: str
    pipeline: str
    step: str
    spec: dict[str, Any]  # StepPlan.to_dict(): run or cmd, inputs, params, outputs, metrics
    inputs: dict[str, InputSpec]
    params: dict[str, Any]  # only the params the step lists
    outputs: list[str]
    cache_key: str
    env: dict[str, str] = field(default_factory=dict)  # extra environment for the step


@dataclass
class StepOutcome:
    step: str
    status: str  # "ran" | "failed"
    started_at: float  # epoch seconds
    duration_s: float
    error: str | None = None
    log_digest: str | None = None
    log_size: int = 0
    log_tail: str = ""
    outputs: dict[str, OutputRecord] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    worker: str | None = None  # pid (or node) that ran it, for diagnostics
