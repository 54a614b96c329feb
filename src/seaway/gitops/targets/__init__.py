"""Where an environment serves: one module per target kind, behind `Target`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from seaway.gitops.targets.base import ModelState, Target

if TYPE_CHECKING:
    from seaway.project import Project
    from seaway.spec.environment import EnvironmentSpec, TargetKind


def make_target(kind: TargetKind, project: Project, name: str, spec: EnvironmentSpec) -> Target:
    """The target of `kind` for environment `name`."""
    if kind == "local":
        from seaway.gitops.targets.local import LocalTarget

        return LocalTarget(project, name, spec)
    if kind == "kubernetes":
        from seaway.gitops.targets.kubernetes import KubernetesTarget

        return KubernetesTarget(project, name, spec)
    from seaway.gitops.targets.ray import RayTarget

    return RayTarget(project, name, spec)


__all__ = ["ModelState", "Target", "make_target"]
