"""Bounded, mergeable sketches shared by the gateway's telemetry and the live figures.

Two kinds, both pure Python so the request path never imports numpy:

- **Latency**: a fixed logarithmic histogram, eight buckets per doubling from 1 µs (bucket 0
  holds everything up to 1 µs, the last one everything above about 2 minutes). The scheme
  is the same in every gateway and every window, so windows merge by adding counts, and a
  quantile read from it is within about 4.4% (half a bucket) of the exact one.
- **Prediction outputs**: per output, a numeric histogram or a label count. The kind and,
  for numbers, the bin edges are chosen from the first values an output produces (the
  *seed*): labels (bool, int, str) are counted per value, top-K bounded with the rest in
  `other`; numbers all within [0, 1] (probabilities) use 20 equal bins over [0, 1]; other
  numbers use the deciles of the seed as edges. Both numeric forms keep a bin below the
  first edge and one above the last, so no value is lost. Edges stay fixed for the life of a
  gateway, so its windows merge exactly; sketches with different edges (two gateways, a
  restart) merge by re-binning one onto the other's edges, spreading each bin's count
  uniformly over its width.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Literal

# -- latency -------------------------------------------------------------------

LATENCY_MIN_S = 1e-6
LATENCY_PER_DOUBLING = 8
LATENCY_BUCKETS = LATENCY_PER_DOUBLING * 27 + 1  # up to 1 µs * 2**27, about 134 s
LATENCY_SCHEME = "log2/8 from 1us"
_LOG2 = math.log2


def latency_index(seconds: float) -> int:
    """The bucket of a latency: bucket i > 0 holds (2**((i-1)/8), 2**(i/8)] microseconds."""
    if seconds <= LATENCY_MIN_S:
        return 0
    i = int(_LOG2(seconds * 1e6) * LATENCY_PER_DOUBLING) + 1
    return i if i < LATENCY_BUCKETS else LATENCY_BUCKETS - 1


def latency_value(index: int) -> float:
    """The representative latency of a bucket: its geometric midpoint."""
    if index <= 0:
        return LATENCY_MIN_S
    return LATENCY_MIN_S * 2.0 ** ((index - 0.5) / LATENCY_PER_DOUBLING)


def latency_quantile(counts: Mapping[int, float], q: float) -> float | None:
    """The q-quantile (0..1) of a sparse latency histogram {bucket: count}; None if empty."""
    total = sum(counts.values())
    if total <= 0:
        return None
    rank = max(1.0, math.ceil(q * total))
    seen = 0.0
    for index in sorted(counts):
        seen += counts[index]
        if seen >= rank:
            return latency_value(index)
    return latency_value(max(counts))


def sparse(counts: Iterable[int]) -> dict[str, int]:
    """A dense bucket list as the sparse JSON form {"index": count}."""
    return {str(i): c for i, c in enumerate(counts) if c}


# -- prediction outputs -----------------------------------------------------------

SEED_VALUES = 64
UNIT_BINS = 20
QUANTILE_BINS = 10
TOP_K = 50
_LABEL_CHARS = 100
UNIT_EDGES: tuple[float, ...] = tuple(i / UNIT_BINS for i in range(UNIT_BINS + 1))

Kind = Literal["numeric", "labels"]


def numeric_bin(edges: list[float] | tuple[float, ...], value: float) -> int:
    """0 below the first edge, len(edges) above the last; the last inner bin is closed so
    that a probability of exactly 1.0 stays inside [0, 1]."""
    i = bisect_right(edges, value)
    if i == len(edges) and value == edges[-1] and i > 1:
        return i - 1
    return i


def seed_edges(values: list[float]) -> list[float]:
    """Bin edges for a numeric output, from its first values."""
    if all(0.0 <= v <= 1.0 for v in values):
        return list(UNIT_EDGES)
    ordered = sorted(values)
    n = len(ordered)
    edges = sorted({ordered[min(n - 1, round(j * (n - 1) / QUANTILE_BINS))] for j in range(11)})
    if len(edges) == 1:
        v = edges[0]
        edges.append(v + max(abs(v), 1.0))
    return edges


class OutputTrack:
    """One output of one version in one gateway: the seed, then the current window's counts.

    Memory is bounded whatever the traffic: at most SEED_VALUES seed values, len(edges)+1
    numeric counts, or 2*TOP_K labels (pruned back to the TOP_K most frequent, the rest
    added to `other`)."""

    __slots__ = ("counts", "edges", "kind", "labels", "other", "seed", "skipped")

    def __init__(self) -> None:
        self.kind: Kind | None = None
        self.seed: list[float] = []
        self.edges: list[float] = []
        self.counts: list[int] = []
        self.labels: dict[Any, int] = {}
        self.other = 0
        self.skipped = 0

    def add(self, values: list[Any]) -> None:
        kind = self.kind
        if kind is None:
            first = values[0] if values else None
            if first is None:
                return
            if isinstance(first, float):
                self._seed(values)
                return
            kind = self.kind = "labels"
        if kind == "labels":
            labels = self.labels
            for v in values:
                if isinstance(v, str) and len(v) > _LABEL_CHARS:
                    v = v[:_LABEL_CHARS]
                elif isinstance(v, (list, dict)):
                    v = str(v)[:_LABEL_CHARS]
                labels[v] = labels.get(v, 0) + 1
            if len(labels) > 2 * TOP_K:
                self._prune()
            return
        edges, counts = self.edges, self.counts
        for v in values:
            if isinstance(v, (int, float)) and v == v:
                counts[numeric_bin(edges, v)] += 1
            else:
                self.skipped += 1

    def _seed(self, values: list[Any]) -> None:
        for v in values:
            if isinstance(v, (int, float)) and v == v:
                self.seed.append(float(v))
            else:
                self.skipped += 1
        if len(self.seed) >= SEED_VALUES:
            self.finish_seed()

    def finish_seed(self) -> None:
        if self.kind is not None or not self.seed:
            return
        self.edges = seed_edges(self.seed)
        self.counts = [0] * (len(self.edges) + 1)
        self.kind = "numeric"
        seed, self.seed = self.seed, []
        for v in seed:
            self.counts[numeric_bin(self.edges, v)] += 1

    def _prune(self) -> None:
        ranked = sorted(self.labels.items(), key=lambda kv: kv[1], reverse=True)
        self.other += sum(c for _, c in ranked[TOP_K:])
        self.labels = dict(ranked[:TOP_K])

    def take(self) -> dict[str, Any] | None:
        """The window's sketch as JSON, resetting the counts (the edges stay)."""
        self.finish_seed()
        if self.kind == "numeric":
            if not any(self.counts) and not self.skipped:
                return None
            out: dict[str, Any] = {
                "kind": "numeric",
                "edges": list(self.edges),
                "counts": self.counts,
            }
            if self.skipped:
                out["skipped"] = self.skipped
            self.counts = [0] * (len(self.edges) + 1)
            self.skipped = 0
            return out
        if self.kind == "labels":
            if not self.labels and not self.other:
                return None
            if len(self.labels) > TOP_K:
                self._prune()
            out = {
                "kind": "labels",
                "counts": {str(k): c for k, c in self.labels.items()},
                "other": self.other,
            }
            self.labels, self.other = {}, 0
            return out
        return None


def _column(rows: list[Any]) -> list[Any]:
    """One value per row of a 2-D output: the positive-class probability of two columns,
    the only column of one, the arg-max class index of more."""
    first = rows[0]
    width = len(first)
    if width == 2:
        return [r[1] for r in rows]
    if width == 1:
        return [r[0] for r in rows]
    if width == 0:
        return []
    return [max(range(len(r)), key=r.__getitem__) for r in rows]


def _flat(value: Any) -> list[Any]:
    if hasattr(value, "tolist"):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        return [value]
    if value and isinstance(value[0], (list, tuple)):
        return _column(list(value))
    return list(value)


def output_values(outputs: Any) -> dict[str, list[Any]]:
    """The values to sketch, by output name, from what a gateway answered with: an array or
    list (named "output"), a mapping of names to arrays, a v2 response
    ({"outputs": [{"name", "shape", "data"}]}) or a v1 one ({"predictions": [...]})."""
    if isinstance(outputs, Mapping):
        tensors = outputs.get("outputs")
        if isinstance(tensors, list):
            found: dict[str, list[Any]] = {}
            for t in tensors:
                if not isinstance(t, Mapping):
                    continue
                data = _flat(t.get("data", []))
                shape = t.get("shape")
                if isinstance(shape, list) and len(shape) == 2 and shape[1] and data:
                    width = int(shape[1])
                    data = _column([data[i : i + width] for i in range(0, len(data), width)])
                found[str(t.get("name", "output"))] = data
            return found
        if "predictions" in outputs:
            return {"predictions": _flat(outputs["predictions"])}
        return {str(k): _flat(v) for k, v in outputs.items()}
    return {"output": _flat(outputs)}


@dataclass(frozen=True)
class OutputSketch:
    """A merged sketch of one prediction output: numeric bins or label counts."""

    kind: Kind
    edges: tuple[float, ...] = ()
    """Numeric: the bin edges; counts has one more entry (below the first, above the last)."""
    counts: tuple[float, ...] = ()
    labels: Mapping[str, float] = field(default_factory=dict)
    other: float = 0.0
    """Labels: the count of values outside the top K."""

    @property
    def total(self) -> float:
        if self.kind == "numeric":
            return float(sum(self.counts))
        return float(sum(self.labels.values()) + self.other)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OutputSketch:
        if data.get("kind") == "labels":
            return cls(
                "labels",
                labels={str(k): float(v) for k, v in dict(data.get("counts", {})).items()},
                other=float(data.get("other", 0)),
            )
        return cls(
            "numeric",
            edges=tuple(float(e) for e in data.get("edges", ())),
            counts=tuple(float(c) for c in data.get("counts", ())),
        )

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "labels":
            return {"kind": "labels", "counts": dict(self.labels), "other": self.other}
        return {"kind": "numeric", "edges": list(self.edges), "counts": list(self.counts)}

    def rebin(self, edges: tuple[float, ...]) -> tuple[float, ...]:
        """This numeric sketch's counts over other edges (uniform within each bin; the open
        bins below and above sit at the first and last edge)."""
        if self.edges == edges:
            return self.counts
        out = [0.0] * (len(edges) + 1)
        src = self.edges
        if not src:
            return tuple(out)
        out[bisect_left(edges, src[0])] += self.counts[0]
        out[bisect_right(edges, src[-1])] += self.counts[-1]
        for j in range(1, len(src)):
            c = self.counts[j]
            if not c:
                continue
            lo, hi = src[j - 1], src[j]
            width = hi - lo
            if width <= 0:
                out[numeric_bin(edges, lo)] += c
                continue
            # Pieces of [lo, hi) cut by the target edges, each taking its share of c.
            cuts = [lo, *(e for e in edges if lo < e < hi), hi]
            for a, b in pairwise(cuts):
                out[numeric_bin(edges, (a + b) / 2)] += c * (b - a) / width
        return tuple(out)

    def merge(self, other: OutputSketch) -> OutputSketch:
        if self.kind != other.kind:
            # An output that changed kind between versions of a gateway: keep the larger.
            return self if self.total >= other.total else other
        if self.kind == "labels":
            counts: dict[str, float] = dict(self.labels)
            for k, v in other.labels.items():
                counts[k] = counts.get(k, 0.0) + v
            ranked = sorted(counts.items(), key=lambda kv: kv[1], reverse=True)
            rest = sum(v for _, v in ranked[TOP_K:])
            return OutputSketch(
                "labels", labels=dict(ranked[:TOP_K]), other=self.other + other.other + rest
            )
        base, extra = (self, other) if self.total >= other.total else (other, self)
        if not base.edges:
            return extra
        moved = extra.rebin(base.edges)
        return OutputSketch(
            "numeric",
            edges=base.edges,
            counts=tuple(a + b for a, b in zip(base.counts, moved, strict=True)),
        )
