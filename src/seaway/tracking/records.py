"""What a run is made of, as the library returns it: runs, steps, artifacts, metric points.

`to_dict()` of each record is the JSON the CLI prints (docs/json-output.md, "Runs"), so
Python callers and `--json` readers see the same fields.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from seaway._util import isoformat

RUN_STATUSES = ("running", "succeeded", "failed", "cancelled")
FINAL_STATUSES = ("succeeded", "failed", "cancelled")
STEP_STATUSES = ("pending", "running", "ran", "cached", "failed", "skipped", "cancelled")
ARTIFACT_KINDS = ("file", "dir", "model", "log")

# Tags seaway sets on every run it creates, so that a listing can tell a run whose process
# died (`running?`) from one that is still going.
TAG_HOST = "seaway.host"
TAG_PID = "seaway.pid"
TAG_PARENT = "seaway.parent_run"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


@dataclass
class ArtifactRecord:
    """A file or folder stored with a run. `digest` names one blob for `file`, `log` and a
    single-file `model`; for `dir` (and a folder `model`) it names a manifest blob listing
    the files (see seaway.data.tree). `size` is the total size of the content in bytes."""

    name: str
    digest: str
    size: int
    kind: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "digest": self.digest, "size": self.size, "kind": self.kind}


@dataclass
class StepRecord:
    """One step of a pipeline run, as the engine reports it."""

    step: str
    status: str  # pending | running | ran | cached | failed | skipped | cancelled
    cache_key: str | None = None
    started_at: datetime | None = None
    duration_s: float | None = None
    error: str | None = None
    log_digest: str | None = None  # blob holding the step's captured stdout+stderr
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "status": self.status,
            "cache_key": self.cache_key,
            "started_at": isoformat(self.started_at),
            "duration_s": _round(self.duration_s),
            "error": self.error,
            "log_digest": self.log_digest,
            "outputs": self.outputs,
            "metrics": self.metrics,
        }


class MetricPoint(NamedTuple):
    key: str
    value: float
    step: int
    ts: float  # seconds since the epoch


@dataclass
class RunRecord:
    """A run with everything recorded about it (metrics: the latest value of each key)."""

    id: str
    seq: int
    name: str | None
    pipeline: str | None
    status: str
    started_at: datetime
    ended_at: datetime | None = None
    duration_s: float | None = None
    author: str = ""
    git_commit: str | None = None
    git_dirty: bool | None = None
    executor: str | None = None
    resumed_from: str | None = None
    error: str | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    steps: list[StepRecord] = field(default_factory=list)
    artifacts: list[ArtifactRecord] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"#{self.seq}"

    @property
    def short_id(self) -> str:
        return self.id[:8]

    @property
    def maybe_crashed(self) -> bool:
        return self.status == "running" and process_gone(self.tags)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "seq": self.seq,
            "name": self.name,
            "pipeline": self.pipeline,
            "status": self.status,
            "maybe_crashed": self.maybe_crashed,
            "started_at": isoformat(self.started_at),
            "ended_at": isoformat(self.ended_at),
            "duration_s": _round(self.duration_s),
            "author": self.author,
            "git_commit": self.git_commit,
            "git_dirty": self.git_dirty,
            "executor": self.executor,
            "resumed_from": self.resumed_from,
            "error": self.error,
            "environment": self.environment,
            "lineage": self.lineage,
            "tags": self.tags,
            "params": self.params,
            "metrics": self.metrics,
            "steps": [s.to_dict() for s in self.steps],
            "artifacts": [a.to_dict() for a in self.artifacts],
        }


@dataclass
class RunSummary:
    """A run as listings show it: no steps, artifacts or environment."""

    id: str
    seq: int
    name: str | None
    pipeline: str | None
    status: str
    started_at: datetime
    ended_at: datetime | None
    duration_s: float | None
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"#{self.seq}"

    @property
    def short_id(self) -> str:
        return self.id[:8]

    @property
    def maybe_crashed(self) -> bool:
        return self.status == "running" and process_gone(self.tags)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "seq": self.seq,
            "name": self.name,
            "pipeline": self.pipeline,
            "status": self.status,
            "maybe_crashed": self.maybe_crashed,
            "started_at": isoformat(self.started_at),
            "ended_at": isoformat(self.ended_at),
            "duration_s": _round(self.duration_s),
            "tags": self.tags,
            "params": self.params,
            "metrics": self.metrics,
        }


@functools.cache
def hostname() -> str:
    # On POSIX the kernel's node name is what socket.gethostname() answers; reading it
    # directly spares importing socket, a few ms of a fully cached `seaway run`.
    uname = getattr(os, "uname", None)
    if uname is not None:
        return str(uname().nodename)
    import socket

    return socket.gethostname()


def process_gone(tags: dict[str, str]) -> bool:
    """Whether the process that created a run, on this host, no longer exists.

    Only answerable on the host that ran it; elsewhere (or without the tags) the answer is
    False, so a listing never calls a live run on another machine crashed."""
    if tags.get(TAG_HOST) != hostname():
        return False
    try:
        pid = int(tags.get(TAG_PID, ""))
    except ValueError:
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False
