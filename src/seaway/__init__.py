"""seaway: GitOps-native continuous delivery for machine-learning models.

The package root stays import-light: the CLI's start-up time depends on it. Public
functions are re-exported lazily (PEP 562) so `import seaway` costs almost nothing.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Project": "seaway.project",
    "SeawayError": "seaway.errors",
    "start_run": "seaway.tracking.fluent",
    "end_run": "seaway.tracking.fluent",
    "active_run": "seaway.tracking.fluent",
    "log_metric": "seaway.tracking.fluent",
    "log_metrics": "seaway.tracking.fluent",
    "log_param": "seaway.tracking.fluent",
    "log_params": "seaway.tracking.fluent",
    "log_artifact": "seaway.tracking.fluent",
    "set_tag": "seaway.tracking.fluent",
    "set_tags": "seaway.tracking.fluent",
    "flush": "seaway.tracking.fluent",
    "search_runs": "seaway.tracking.search",
    "RunStore": "seaway.tracking.store",
    "run_pipeline": "seaway.pipeline.runner",
    "load_model": "seaway.registry.loading",
    "register_model": "seaway.registry.register",
    "get_version": "seaway.registry.versions",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'seaway' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    # Cached as a module global: `seaway.log_metric` in a hot loop then skips this hook.
    globals()[name] = value
    return value
