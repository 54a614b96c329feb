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
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'seaway' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
