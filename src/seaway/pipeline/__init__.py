"""Pipelines: the DAG of steps, step cache keys, executors and run records.

    from seaway.pipeline import run_pipeline
    record = run_pipeline(project, "train", params={"C": 0.5})

Names are exported lazily: `seaway run` of a fully cached pipeline must not import what
only running steps needs.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "run_pipeline": "seaway.pipeline.runner",
    "RunEvent": "seaway.pipeline.runner",
    "execute_step": "seaway.pipeline.worker",
    "StepTask": "seaway.pipeline.task",
    "StepOutcome": "seaway.pipeline.task",
    "InputSpec": "seaway.pipeline.task",
    "OutputRecord": "seaway.pipeline.task",
    "Executor": "seaway.pipeline.executors",
    "create_executor": "seaway.pipeline.executors",
    "load_pipeline": "seaway.pipeline.plan",
    "build_dag": "seaway.pipeline.dag",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'seaway.pipeline' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
