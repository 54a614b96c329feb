"""Choosing the version that answers a request, and the shadows that see a copy of it.

A `Router` is built once per routing-table revision and holds, per model, everything a
request needs precomputed, so the request path does a dictionary lookup and a few integer
operations:

- **Sticky split.** A request carrying the `x-seaway-key` header is hashed (BLAKE2b, so every
  worker process and every gateway agrees) into one of 10,000 buckets, and the buckets are
  cut by cumulative weight: the same key lands on the same version while the weights stand,
  and moving 10% of traffic moves only the keys of that 10%.
- **Unkeyed split.** Smooth weighted round-robin (as nginx does it): each pick adds every
  version's weight to its credit, takes the version with the most credit and charges it the
  total. Over any run of requests the split is exact to within one request, with versions
  interleaved rather than bunched.
- **Shadows.** Each shadow keeps a credit that grows by its percentage per request and fires
  when it reaches 100, so exactly `shadow`% of a model's requests are mirrored, spread evenly.

Routers are per process and not shared between threads: the ASGI app uses them from its
event loop only.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from seaway.serving.routes import Deployment, RoutingTable

BUCKETS = 10_000


def key_bucket(key: str) -> int:
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


@dataclass
class _Shadow:
    deployment: Deployment
    credit: float = 0.0


@dataclass
class ModelRoutes:
    """Every deployment of one model, with the split precomputed."""

    model: str
    primaries: list[Deployment]
    shadows: list[_Shadow]
    by_number: dict[int, Deployment]
    _bounds: list[int] = field(default_factory=list)
    _credit: list[float] = field(default_factory=list)
    _total: float = 0.0

    def __post_init__(self) -> None:
        self._total = sum(d.weight for d in self.primaries)
        self._credit = [0.0] * len(self.primaries)
        bounds: list[int] = []
        running = 0.0
        for d in self.primaries:
            running += d.weight
            bounds.append(round(running / self._total * BUCKETS) if self._total > 0 else 0)
        if bounds:
            bounds[-1] = BUCKETS
        self._bounds = bounds

    @property
    def serving(self) -> bool:
        """Whether unversioned requests have a version to go to."""
        return self._total > 0

    def pick(self, key: str | None) -> Deployment | None:
        primaries = self.primaries
        if self._total <= 0:
            return None
        if len(primaries) == 1:
            return primaries[0]
        if key is not None:
            return primaries[bisect_right(self._bounds, key_bucket(key))]
        credit = self._credit
        best = 0
        for i, d in enumerate(primaries):
            credit[i] += d.weight
            if credit[i] > credit[best]:
                best = i
        credit[best] -= self._total
        return primaries[best]

    def mirrors(self, answered: int) -> list[Deployment]:
        """The shadows that get a copy of this request (never the version that answered)."""
        if not self.shadows:
            return []
        out = []
        for s in self.shadows:
            s.credit += s.deployment.shadow
            if s.credit >= 100.0:
                s.credit -= 100.0
                if s.deployment.number != answered:
                    out.append(s.deployment)
        return out


class Router:
    """The routes of every model of one routing table."""

    def __init__(self, table: RoutingTable) -> None:
        self.table = table
        self.models: dict[str, ModelRoutes] = {}
        for model in table.models():
            deps = table.for_model(model)
            self.models[model] = ModelRoutes(
                model=model,
                # Weight-0 primaries take only version-pinned requests.
                primaries=[d for d in deps if not d.is_shadow and d.weight > 0],
                shadows=[_Shadow(d) for d in deps if d.is_shadow],
                by_number={d.number: d for d in deps},
            )

    def get(self, model: str) -> ModelRoutes | None:
        return self.models.get(model)


__all__ = ["BUCKETS", "ModelRoutes", "Router", "key_bucket"]
