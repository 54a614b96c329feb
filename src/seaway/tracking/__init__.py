"""Experiment tracking: runs with params, metrics, artifacts, steps and lineage.

`RunStore` is the store the pipeline engine and the CLI use; `seaway.start_run`,
`seaway.log_metric`, … (seaway.tracking.fluent) are the buffered API for training code;
`search_runs` finds runs by metric and param in SQL.
"""

from __future__ import annotations

from seaway.tracking.records import (
    ArtifactRecord,
    MetricPoint,
    RunRecord,
    RunSummary,
    StepRecord,
)
from seaway.tracking.store import RunStore

__all__ = [
    "ArtifactRecord",
    "MetricPoint",
    "RunRecord",
    "RunStore",
    "RunSummary",
    "StepRecord",
]
