"""The contract every target keeps: report what it serves, make one model's split so.

A target knows nothing of rollouts or git: the reconciler and the rollout engine decide the
split (which versions, with which weights and shadow shares) and a target only makes it
real and reads it back. `apply` is idempotent: applying what is already live changes
nothing, so a reconcile loop can call it every time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from seaway.serving.routes import Route

if TYPE_CHECKING:
    from seaway.spec.environment import BatchingSpec, ScaleSpec


@dataclass(frozen=True)
class ModelState:
    """One model's serving state in an environment: its split and its settings."""

    model: str
    routes: tuple[Route, ...]
    scale: ScaleSpec | None = None
    batching: BatchingSpec | None = None
    require_signature: bool = False
    details: dict[str, str] = field(default_factory=dict, compare=False)
    """Target-specific facts for `seaway status` (a manifest path, an application name)."""

    def weights(self) -> dict[int, float]:
        """Version -> primary weight, primaries only."""
        return {r.number: r.weight for r in self.routes if r.weight > 0}

    def shadows(self) -> dict[int, float]:
        """Version -> mirrored percent, shadows only."""
        return {r.number: r.shadow for r in self.routes if r.shadow > 0}


class Target(Protocol):
    kind: ClassVar[str]

    def live(self) -> dict[str, ModelState]:
        """Every model this target serves for the environment, by name."""
        ...

    def apply(self, state: ModelState, reason: dict[str, Any] | None = None) -> None:
        """Serve `state.model` exactly as `state` says (idempotent). `reason` (the rollout,
        the git revision) goes into the events or annotations the target records."""
        ...

    def remove(self, model: str) -> None:
        """Stop serving `model` in the environment (nothing when it is not served)."""
        ...


__all__ = ["ModelState", "Route", "Target"]
