"""The spec: `seaway.yaml` and `environments/NAME.yaml`, loaded and validated.

    from seaway.spec import load_project, load_environments
    spec = load_project(Path("seaway.yaml"))          # ProjectSpec, or SpecError (exit 2)
    envs = load_environments(Path("."))               # {"prod": EnvironmentSpec, …}

Problems are reported as `FILE:LINE:COL: PATH: message`. This module is imported whenever a
project's spec is needed, so it imports pydantic and PyYAML only when a function is called.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from seaway.spec.environment import EnvironmentSpec
    from seaway.spec.loader import ValidationReport
    from seaway.spec.models import ProjectSpec
    from seaway.spec.problems import InvalidSpec, Problem

__all__ = [
    "EnvironmentSpec",
    "InvalidSpec",
    "Problem",
    "ProjectSpec",
    "ValidationReport",
    "environment_json_schema",
    "inspect_project",
    "load_environment",
    "load_environments",
    "load_project",
    "project_json_schema",
    "validate_project",
]


def load_project(path: Path) -> ProjectSpec:
    """Load and check seaway.yaml (`path` is the file, or the directory holding it)."""
    from seaway.spec import loader

    spec: ProjectSpec = loader.load_project(path)
    return spec


def load_environment(path: Path, *, root: Path | None = None) -> EnvironmentSpec:
    """Load and check one environment file; `root` makes file names in errors relative."""
    from seaway.spec import loader

    spec: EnvironmentSpec = loader.load_environment(path, root=root)
    return spec


def load_environments(root: Path) -> dict[str, EnvironmentSpec]:
    """Every `environments/*.yaml` under the project root, by file stem; {} when none."""
    from seaway.spec import loader

    envs: dict[str, EnvironmentSpec] = loader.load_environments(root)
    return envs


def inspect_project(root: Path) -> ValidationReport:
    """Errors and warnings of seaway.yaml, the environment files, and between them."""
    from seaway.spec import loader

    return loader.inspect_project(root)


def validate_project(root: Path) -> list[str]:
    """Every error of the project's spec files as `FILE:LINE:COL: PATH: message`; [] if valid."""
    from seaway.spec import loader

    return loader.validate_project(root)


def project_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of seaway.yaml."""
    from seaway.spec.schema import project_json_schema as build

    return build()


def environment_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of an environment file."""
    from seaway.spec.schema import environment_json_schema as build

    return build()


def __getattr__(name: str) -> Any:
    # Model and problem classes, imported on first use: `from seaway.spec import ProjectSpec`.
    homes = {
        "ProjectSpec": "seaway.spec.models",
        "EnvironmentSpec": "seaway.spec.environment",
        "ValidationReport": "seaway.spec.loader",
        "InvalidSpec": "seaway.spec.problems",
        "Problem": "seaway.spec.problems",
    }
    if name not in homes:
        raise AttributeError(f"module 'seaway.spec' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(homes[name]), name)
