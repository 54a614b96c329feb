"""Abuse and model-extraction detection in the gateway.

Someone who can query a model can copy it: send inputs that sweep the input space (a grid,
or uniform random points), then probe around the decision boundary with near-identical
inputs, and train a copy on the answers. The gateway watches every client for that, per
model, and for plain overuse:

```yaml
monitoring:
  churn-classifier:
    abuse: {max_rate: 600, on_flag: throttle, throttle_rate: 60, flag_for: 10m, min_requests: 200}
```

A client is the name of the API token it presented, or its address without one
(`token:NAME`, `ip:ADDRESS`). Without an `abuse:` section detection runs with the defaults
(no `max_rate`: the rate alone is not judged, since a busy backend is no attacker;
`on_flag: record`); `enabled: false` turns it off for the model.

What a request costs: a counter bump and, for every request until a client has sent 256 and
one in four after that, a copy of up to 8 of its numeric rows into that client's ring of
recent rows. Memory is bounded: at most 10,000 clients are tracked (the least recently seen
is forgotten first), at most 1,000 of them keep rows, each ring holds at most 512 rows and
16,384 values, and only the first 64 numeric features are kept.

Every few seconds a background thread judges each client that has sent `min_requests`:

- **rate**: its requests in the last minute, against `max_rate` when one is set;
- **uniform inputs**: the share of its numeric features that look swept rather than
  sampled (at least half): a flat histogram over the range the client covers (normalised
  entropy of 10 bins at least 0.95, where real data is peaked), or a grid (most values on
  a few evenly spaced levels, visited about equally often; on round numbers, which counts
  and codes are, only a flat visit counts). With the served version's reference profile
  (`seaway.monitor.reference`) a feature whose training data is flat over that range does
  not count as flat, nor one that only takes a few values as a grid;
- **near-duplicates**: the share of rows (at least 20%) with another row, not an identical
  one, far closer than usual: under 1/20 of the distance that 90% of the client's rows have
  to their nearest neighbour, or under 1/20 of the row's own distance to its 10th nearest;
  features are scaled by the training data's standard deviation (the client's own without
  a reference). Bisecting towards a decision boundary, or jittering seed points, makes
  many; ordinary traffic few, and a client resending one request none;
- **coverage**: over pairs of features, the share of an 8 x 8 grid of cells (over the range
  the client covers) that it visits, relative to what as many uniform rows would visit: at
  least 0.95, and with a reference also 0.05 above what rows drawn independently from the
  training marginals would visit (which overstates real traffic, whose features go
  together).

Each probing signal over its threshold adds 0.5 to a score, up to 1.0 when it is far over
(three quarters of the features swept, or half the rows near-duplicates), so one signal
alone rarely flags; a rate over `max_rate` adds 1.0. A score of 1.0 flags the client: an
`abuse.flagged` event (subject `model:NAME`; data: the client, the version, the reasons, the
figures, the action and until when), `seaway_abuse_flags_total{model, reason}` on /metrics,
and with `on_flag: throttle` the client's requests to that model beyond `throttle_rate` a
minute are answered 429 with `Retry-After` and the reason until `flag_for` has passed. A
flagged client is not judged again until its flag ends.

Events are written from the background thread, never on the request path; a store error is
logged and the event retried on the next pass. Each gateway process judges the traffic it
sees: behind several workers a client's rate is split among them.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from seaway._periodic import Periodic
from seaway.serving.security import HttpError

if TYPE_CHECKING:
    from numpy.typing import NDArray
    from sqlalchemy.engine import Connection

    from seaway.project import Project
    from seaway.spec.models import AbuseSpec
    from seaway.stats.profile import NumericProfile

log = logging.getLogger("seaway.serving.abuse")

__all__ = [
    "REASONS",
    "AbuseDetector",
    "Flag",
    "Policy",
    "client_key",
    "probe_figures",
    "score_client",
]

REASONS = ("rate", "uniform_inputs", "near_duplicates", "coverage")

MAX_CLIENTS = 10_000
MAX_SAMPLED = 1_000
RING_ROWS = 512
RING_VALUES = 16_384
MAX_FEATURES = 64
ROWS_PER_REQUEST = 8
SAMPLE_ALL = 256
SAMPLE_EVERY = 4
INTERVAL_S = 5.0

MIN_ROWS = 64
RATE_WINDOW_S = 60.0

HIST_BINS = 10
FLAT_ENTROPY = 0.95
REFERENCE_FLAT = 0.92
GRID_MAX_LEVELS = 32
GRID_MIN_SHARE = 0.3
GRID_MAX_SPREAD = 0.5
GRID_ROUND_SPREAD = 0.25
UNIFORM_SHARE = 0.5
UNIFORM_STRONG = 0.75
NEAR_FACTOR = 0.05
NEAR_K = 10
NEAR_SHARE = 0.2
NEAR_STRONG = 0.5
COVERAGE_BINS = 8
COVERAGE_PAIRS_OF = 5
COVERAGE = 0.95
COVERAGE_ABOVE_BASELINE = 0.05
FLAG_SCORE = 1.0
# Judging a client's rows takes a few milliseconds: a pass judges at most this many, and
# the others (their rows kept) in the passes after.
MAX_JUDGED = 200
MAX_PENDING_EVENTS = 100


@dataclass(frozen=True)
class Policy:
    """A model's `abuse:` settings; the defaults are those of `seaway.spec.models.AbuseSpec`
    (kept here so a gateway without the section never loads the spec format)."""

    enabled: bool = True
    max_rate: float | None = None
    on_flag: str = "record"
    throttle_rate: float = 60.0
    flag_for_s: float = 600.0
    min_requests: int = 200

    @classmethod
    def of(cls, spec: AbuseSpec) -> Policy:
        return cls(
            enabled=spec.enabled,
            max_rate=spec.max_rate,
            on_flag=spec.on_flag,
            throttle_rate=spec.throttle_rate,
            flag_for_s=spec.flag_for.seconds,
            min_requests=spec.min_requests,
        )


DEFAULT_POLICY = Policy()


def client_key(identity: str | None, address: str) -> str:
    """Who a request came from: its token's name, else its address."""
    return f"token:{identity}" if identity else f"ip:{address or 'unknown'}"


# -- the analysis (pure functions of rows) ---------------------------------------------------


def _reference_cdf(ref: NumericProfile) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Points and cumulative shares of a profiled column, for interpolation."""
    total = float(ref.counts.sum())
    cum = np.cumsum(ref.counts[:-1]) / total
    xs = np.concatenate([[ref.minimum], ref.edges, [ref.maximum]])
    cdf = np.concatenate([[0.0], cum, [1.0]])
    return np.maximum.accumulate(xs), cdf


def _usable(ref: NumericProfile | None) -> bool:
    return (
        ref is not None
        and ref.counts.sum() > 0
        and ref.edges.size >= 2
        and math.isfinite(ref.minimum)
        and math.isfinite(ref.maximum)
        and math.isfinite(ref.std)
        and ref.std > 0
    )


def _entropy(counts: NDArray[Any]) -> float:
    """Normalised entropy of a histogram: 1.0 when flat."""
    total = float(counts.sum())
    if total <= 0 or counts.size < 2:
        return 0.0
    p = counts[counts > 0] / total
    return float(-(p * np.log(p)).sum() / math.log(counts.size))


def _grid_like(x: NDArray[np.float64], discrete: bool | None) -> bool:
    """Most values on a few evenly spaced levels, each visited about as often: a sweep, not
    a sample. `discrete` says whether the training data holds a few values only (None
    without a reference): then a few levels are what the feature has."""
    if discrete:
        return False
    values, counts = np.unique(x, return_counts=True)
    top = int(counts.max())
    if top < 3:
        return False
    major = counts >= max(3, top / 4)
    levels, hits = values[major], counts[major]
    if not 3 <= levels.size <= GRID_MAX_LEVELS or hits.sum() < GRID_MIN_SHARE * x.size:
        return False
    gaps = np.diff(levels)
    step = float(gaps.min())
    ratio = gaps / step
    if ratio.max() > 4 or np.abs(ratio - np.round(ratio)).max() > 0.02:
        return False
    spread = float(hits.std() / hits.mean())
    if discrete is None and _round(levels, step):
        # Round numbers (counts, codes, rounded measurements): only a flat visit looks swept.
        return spread <= GRID_ROUND_SPREAD
    return spread <= GRID_MAX_SPREAD


def _round(levels: NDArray[np.float64], step: float) -> bool:
    """Whether levels are multiples of a round step (1, 2 or 5 times a power of ten)."""
    power = 10.0 ** math.floor(math.log10(step))
    mantissa = step / power
    if min(abs(mantissa - m) for m in (1.0, 2.0, 5.0, 10.0)) > 1e-6 * mantissa:
        return False
    units = levels / step
    return bool(np.abs(units - np.round(units)).max() <= 1e-6 * max(1.0, np.abs(units).max()))


def _discrete(ref: NumericProfile) -> bool:
    """Whether a profiled column holds a few values only (its quantiles repeat)."""
    return np.unique(ref.edges).size <= ref.edges.size // 2


def _near_share(z: NDArray[np.float64]) -> float:
    """Share of distinct rows with another row far closer than usual. Identical rows count
    once: a client resending one request is not probing."""
    from scipy.spatial import cKDTree

    rows = np.unique(z, axis=0)
    n = rows.shape[0]
    if n < MIN_ROWS // 2:
        return 0.0
    k = min(NEAR_K, n - 1)
    # The first neighbour of each row is itself.
    dist, _ = cKDTree(rows).query(rows, k=k + 1)
    first, kth = dist[:, 1], dist[:, k]
    usual = float(np.quantile(first, 0.9))
    near = (first < NEAR_FACTOR * usual) | (first < NEAR_FACTOR * kth)
    return float(near.mean())


def _bins(x: NDArray[np.float64], lo: float, hi: float, k: int) -> NDArray[np.intp]:
    if hi <= lo:
        return np.zeros(x.size, dtype=np.intp)
    return np.clip(((x - lo) / (hi - lo) * k).astype(np.intp), 0, k - 1)


def _masses(
    ref: NumericProfile, lo: float, hi: float, k: int, *, tails: bool
) -> NDArray[np.float64]:
    """The reference's share in each of k equal bins over [lo, hi]: with `tails` the end
    bins take what lies beyond, without them the shares are of what lies within."""
    xs, cdf = _reference_cdf(ref)
    if tails:
        inner = np.interp(np.linspace(lo, hi, k + 1)[1:-1], xs, cdf)
        return np.diff(np.concatenate([[0.0], inner, [1.0]]))
    masses = np.diff(np.interp(np.linspace(lo, hi, k + 1), xs, cdf))
    total = float(masses.sum())
    return masses / total if total > 0 else masses


def _expected_cells(masses: NDArray[np.float64], n: int) -> float:
    return float((1.0 - (1.0 - masses) ** n).sum())


def probe_figures(
    rows: NDArray[Any],
    references: Sequence[NumericProfile | None] | None = None,
    names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The probing figures of one client's rows (n x F numbers): `uniform_share`,
    `near_duplicates`, `coverage` (and `baseline_coverage` with references), plus which
    features looked swept (by `names`, else x0, x1, ...). `references` are the training
    profiles of the F features, in order (None where unknown)."""
    data = np.asarray(rows, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"rows must be a 2-D array, not of shape {data.shape}")
    data = data[np.isfinite(data).all(axis=1)]
    n, width = data.shape
    refs: list[NumericProfile | None] = (
        list(references) if references is not None else [None] * width
    )
    if len(refs) != width:
        raise ValueError(f"{len(refs)} reference profiles for {width} features")
    labels = list(names) if names is not None and len(names) == width else None
    figures: dict[str, Any] = {
        "rows": n,
        "features": width,
        "reference": any(_usable(r) for r in refs),
        "uniform_share": 0.0,
        "swept_features": [],
        "near_duplicates": 0.0,
        "coverage": 0.0,
        "baseline_coverage": None,
    }
    if n < MIN_ROWS:
        return figures
    varying = [j for j in range(width) if data[:, j].max() > data[:, j].min()]
    if not varying:
        return figures

    # Histograms and grids span the range the client itself covers (its outermost rows
    # aside), and the training data is judged over that same range.
    swept: list[str] = []
    ranges: dict[int, tuple[float, float]] = {}
    for j in varying:
        x = data[:, j]
        ref = refs[j] if _usable(refs[j]) else None
        lo, hi = (float(v) for v in np.quantile(x, [0.005, 0.995]))
        if hi <= lo:
            lo, hi = float(x.min()), float(x.max())
        ranges[j] = (lo, hi)
        inside = x[(x >= lo) & (x <= hi)]
        flat = (
            inside.size >= MIN_ROWS // 2
            and _entropy(np.bincount(_bins(inside, lo, hi, HIST_BINS), minlength=HIST_BINS))
            >= FLAT_ENTROPY
        )
        # A flat histogram is no sign where the training data is flat too.
        normal_flat = (
            ref is not None
            and _entropy(_masses(ref, lo, hi, HIST_BINS, tails=False)) >= REFERENCE_FLAT
        )
        if (flat and not normal_flat) or _grid_like(x, None if ref is None else _discrete(ref)):
            swept.append(labels[j] if labels else f"x{j}")
    figures["uniform_share"] = len(swept) / len(varying)
    figures["swept_features"] = swept

    if len(varying) >= 2:
        cols = data[:, varying]
        centre = np.empty(len(varying))
        scale = np.empty(len(varying))
        for i, j in enumerate(varying):
            ref = refs[j]
            if ref is not None and _usable(ref):
                centre[i], scale[i] = ref.mean, ref.std
            else:
                centre[i], scale[i] = cols[:, i].mean(), cols[:, i].std()
        scale[scale <= 0] = 1.0
        figures["near_duplicates"] = _near_share((cols - centre) / scale)

    chosen = varying[:COVERAGE_PAIRS_OF]
    pairs: list[tuple[int, int | None]] = [
        (a, b) for i, a in enumerate(chosen) for b in chosen[i + 1 :]
    ] or [(chosen[0], None)]
    shares: list[float] = []
    baselines: list[float] = []
    for a, b in pairs:
        share, baseline = _coverage(data, ranges, refs, a, b)
        shares.append(share)
        if baseline is not None:
            baselines.append(baseline)
    figures["coverage"] = float(np.mean(shares))
    if baselines:
        figures["baseline_coverage"] = float(np.mean(baselines))
    return figures


def _coverage(
    data: NDArray[np.float64],
    ranges: dict[int, tuple[float, float]],
    refs: list[NumericProfile | None],
    a: int,
    b: int | None,
) -> tuple[float, float | None]:
    """Cells of a grid over features a and b (a finer line over a alone) that the rows
    visit, relative to what as many uniform rows visit; and the same for data drawn from
    the training marginals, when both have a reference."""
    n = data.shape[0]
    k = COVERAGE_BINS if b is not None else COVERAGE_BINS * COVERAGE_BINS
    cells = _bins(data[:, a], *ranges[a], k)
    if b is not None:
        cells = cells * k + _bins(data[:, b], *ranges[b], k)
    total = k * k if b is not None else k
    uniform = _expected_cells(np.full(total, 1.0 / total), n)
    share = np.unique(cells).size / uniform
    ref_a = refs[a]
    ref_b = refs[b] if b is not None else ref_a
    if ref_a is None or ref_b is None or not (_usable(ref_a) and _usable(ref_b)):
        return share, None
    masses = _masses(ref_a, *ranges[a], k, tails=True)
    if b is not None:
        masses = np.outer(masses, _masses(ref_b, *ranges[b], k, tails=True)).ravel()
    return share, _expected_cells(masses, n) / uniform


def _strength(value: float, threshold: float, strong: float) -> float:
    """0 under the threshold, 1 at it, rising to 2 at `strong`."""
    if value < threshold:
        return 0.0
    if strong <= threshold:
        return 1.0
    return 1.0 + min(1.0, (value - threshold) / (strong - threshold))


def score_client(
    figures: dict[str, Any], rate_per_min: float, max_rate: float | None
) -> tuple[float, list[str]]:
    """The abuse score of a client and the signals behind it (a flag at 1.0); the rate
    counts only against a `max_rate`."""
    reasons: list[str] = []
    score = 0.0
    if max_rate is not None and rate_per_min > max_rate:
        reasons.append("rate")
        score += 1.0
    uniform = _strength(float(figures.get("uniform_share") or 0.0), UNIFORM_SHARE, UNIFORM_STRONG)
    near = _strength(float(figures.get("near_duplicates") or 0.0), NEAR_SHARE, NEAR_STRONG)
    coverage = float(figures.get("coverage") or 0.0)
    baseline = figures.get("baseline_coverage")
    # The baseline ignores how features go together, so it overstates normal coverage: it
    # only raises the bar where even independent training marginals would fill the grid.
    bar = COVERAGE if baseline is None else max(COVERAGE, float(baseline) + COVERAGE_ABOVE_BASELINE)
    wide = coverage >= bar
    for reason, strength in (
        ("uniform_inputs", uniform),
        ("near_duplicates", near),
        ("coverage", 1.0 if wide else 0.0),
    ):
        if strength:
            reasons.append(reason)
            score += 0.5 * strength
    return round(score, 3), reasons


# -- the detector ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Flag:
    """A client flagged on a model: why, with what figures, and until when (epoch s)."""

    model: str
    client: str
    version: int | None
    reasons: tuple[str, ...]
    score: float
    figures: dict[str, Any]
    action: str
    until: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "client": self.client,
            "version": self.version,
            "reasons": list(self.reasons),
            "score": self.score,
            "figures": self.figures,
            "action": self.action,
            "until": _iso(self.until),
        }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class _Client:
    __slots__ = (
        "analysed",
        "count",
        "first",
        "marks",
        "names",
        "number",
        "requests",
        "ring",
        "width",
    )

    def __init__(self, now: float) -> None:
        self.requests = 0
        self.number: int | None = None
        self.first = now
        self.marks: list[tuple[float, int]] = []
        self.ring: NDArray[np.float32] | None = None
        self.count = 0
        """Rows ever written to the ring (the write position is count % capacity)."""
        self.width = 0
        self.names: tuple[str, ...] | None = None
        self.analysed = -1
        """`count` when the rows were last judged."""


class _Throttle:
    __slots__ = ("at", "flag", "per_s", "tokens", "until")

    def __init__(self, flag: Flag, per_minute: float, until: float) -> None:
        self.flag = flag
        self.per_s = per_minute / 60.0
        self.tokens = self.capacity
        self.at = time.monotonic()
        self.until = until

    @property
    def capacity(self) -> float:
        return max(1.0, self.per_s)


@dataclass
class _Snapshot:
    key: tuple[str, str]
    requests: int
    number: int | None
    first: float
    marks: list[tuple[float, int]]
    rows: NDArray[np.float32] | None = None
    names: tuple[str, ...] | None = None


def _numeric(data: Any) -> tuple[Any, tuple[str, ...] | None, int] | None:
    """Where a decoded request's numbers are: (a matrix, None, width) or (its columns, the
    numeric ones' names, width), at most MAX_FEATURES wide; None for anything else."""
    kind = data.kind
    if kind == "matrix":
        arr = data.data
        if arr.ndim != 2 or arr.dtype.kind not in "biuf" or not arr.shape[1]:
            return None
        return arr, None, min(arr.shape[1], MAX_FEATURES)
    if kind == "columns":
        columns = data.data
        names = tuple(
            n for n, c in columns.items() if getattr(c, "dtype", None) and c.dtype.kind in "biuf"
        )[:MAX_FEATURES]
        return (columns, names, len(names)) if names else None
    return None


class AbuseDetector:
    """Per-client abuse and extraction detection for one gateway; see the module docstring.

    The gateway calls `admit(model, client)` before reading a request (it raises the 429 of
    a throttled client) and `observe(model, version, client, data)` once the request is
    decoded. `start()`/`stop()` run the background judge; `tick()` is one pass of it.
    """

    def __init__(
        self,
        project: Project,
        *,
        telemetry: Any = None,
        actor: str | None = None,
        interval_s: float = INTERVAL_S,
        max_clients: int = MAX_CLIENTS,
        max_sampled: int = MAX_SAMPLED,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, not {interval_s}")
        if max_clients < 1 or max_sampled < 0:
            raise ValueError("max_clients must be at least 1 and max_sampled at least 0")
        self.project = project
        self.telemetry = telemetry
        self.actor = actor
        self.interval_s = interval_s
        self.max_clients = max_clients
        self.max_sampled = max_sampled
        self._lock = threading.Lock()
        self._clients: OrderedDict[tuple[str, str], _Client] = OrderedDict()
        self._rings: OrderedDict[tuple[str, str], None] = OrderedDict()
        # Replaced, never changed in place, so the request path reads it without the lock.
        self._throttled: dict[tuple[str, str], _Throttle] = {}
        self._off: frozenset[str] = frozenset()
        self._flags: dict[tuple[str, str], Flag] = {}
        self._policies: dict[str, Policy] = {}
        self._spec_stamp: int | None = -1
        self._references: dict[
            tuple[str, int], tuple[float, tuple[Any, list[str] | None] | None]
        ] = {}
        self._pending: list[Flag] = []
        self._loop = Periodic(
            "seaway-abuse", interval_s, self.tick, log=log, first=self._load_policies
        )

    # -- the request path -------------------------------------------------------------------

    @staticmethod
    def client(identity: str | None, address: str) -> str:
        """Who a request came from (see `client_key`)."""
        return client_key(identity, address)

    def admit(self, model: str, client: str) -> None:
        """Raise HttpError 429 when `client` is throttled on `model` and over its rate."""
        throttled = self._throttled
        if not throttled:
            return
        entry = throttled.get((model, client))
        if entry is None:
            return
        now = time.monotonic()
        if now >= entry.until:
            return
        tokens = min(entry.capacity, entry.tokens + (now - entry.at) * entry.per_s)
        entry.at = now
        if tokens >= 1.0:
            entry.tokens = tokens - 1.0
            return
        entry.tokens = tokens
        wait = max(1, math.ceil((1.0 - tokens) / entry.per_s))
        flag = entry.flag
        raise HttpError(
            429,
            f"{client} is throttled on model {model!r} until {_iso(flag.until)}: flagged for "
            f"{_describe(flag.reasons)}; {entry.per_s * 60:g} requests a minute are allowed "
            f"meanwhile; retry in {wait} s",
            {"Retry-After": str(wait)},
        )

    def observe(self, model: str, version: int | None, client: str, data: Any) -> None:
        """Count a decoded request and keep a sample of its rows. O(1); never raises."""
        if model in self._off:
            return
        key = (model, client)
        with self._lock:
            entry = self._clients.get(key)
            if entry is None:
                entry = self._track(key)
            entry.requests += 1
            entry.number = version
            if entry.requests > SAMPLE_ALL and entry.requests % SAMPLE_EVERY:
                return
            # Recency is refreshed on sampled requests only: close enough for forgetting
            # the least recently seen client, and a quarter of the cost.
            self._clients.move_to_end(key)
            try:
                self._sample(key, entry, data)
            except Exception:  # an odd input is not worth failing a request over
                log.debug("abuse: could not sample a request to %s", model, exc_info=True)

    def _track(self, key: tuple[str, str]) -> _Client:
        if len(self._clients) >= self.max_clients:
            old, _ = self._clients.popitem(last=False)
            self._rings.pop(old, None)
        entry = self._clients[key] = _Client(time.monotonic())
        return entry

    def _sample(self, key: tuple[str, str], entry: _Client, data: Any) -> None:
        found = _numeric(data)
        if found is None or self.max_sampled == 0 or not data.rows:
            return
        source, names, width = found
        if entry.ring is None or entry.width != width or entry.names != names:
            entry.ring = self._ring(key, width)
            entry.count = 0
            entry.width = width
            entry.names = names
            entry.analysed = -1
        else:
            self._rings.move_to_end(key)
        ring = entry.ring
        capacity = ring.shape[0]
        pos = entry.count % capacity
        # Rows that would run past the end of the ring are left out, not wrapped: a sample.
        m = min(data.rows, ROWS_PER_REQUEST, capacity - pos)
        if names is None:
            ring[pos : pos + m] = source[:m, :width]
        else:
            for j, name in enumerate(names):
                ring[pos : pos + m, j] = source[name][:m]
        entry.count += m

    def _ring(self, key: tuple[str, str], width: int) -> NDArray[np.float32]:
        self._rings.pop(key, None)
        if len(self._rings) >= self.max_sampled:
            # The least recently sampled client gives its rows up.
            old, _ = self._rings.popitem(last=False)
            previous = self._clients.get(old)
            if previous is not None:
                previous.ring = None
                previous.count = 0
        self._rings[key] = None
        return np.empty((min(RING_ROWS, RING_VALUES // width), width), dtype=np.float32)

    # -- state ------------------------------------------------------------------------------

    @property
    def tracked(self) -> int:
        """Clients tracked now (at most `max_clients`)."""
        return len(self._clients)

    @property
    def sampled(self) -> int:
        """Clients holding sampled rows now (at most `max_sampled`)."""
        return len(self._rings)

    def rows_held(self, model: str, client: str) -> int:
        """Sampled rows kept for `client` on `model` (at most a ring's capacity)."""
        with self._lock:
            entry = self._clients.get((model, client))
            if entry is None or entry.ring is None:
                return 0
            return min(entry.count, entry.ring.shape[0])

    def flags(self) -> list[Flag]:
        """The flags in force, oldest first."""
        now = time.time()
        return [f for f in list(self._flags.values()) if f.until > now]

    # -- the background judge ---------------------------------------------------------------

    def start(self) -> None:
        """Start the background judge (idempotent). Reading seaway.yaml may take a moment:
        it happens in that thread, not on the event loop."""
        self._loop.start()

    def stop(self) -> None:
        """Stop the background judge; flags not yet written get one last try."""
        self._loop.stop()
        self._write()

    def tick(self) -> list[Flag]:
        """One pass: judge the clients, flag and throttle, write the events. The new flags."""
        self._load_policies()
        now = time.monotonic()
        self._expire()
        snaps = self._snapshot(now)
        flagged: list[Flag] = []
        for snap in snaps:
            flag = self._judge(snap, now)
            if flag is not None:
                flagged.append(flag)
        if flagged:
            self._apply(flagged)
        self._write()
        return flagged

    def _policy(self, model: str) -> Policy:
        return self._policies.get(model, DEFAULT_POLICY)

    def _load_policies(self) -> None:
        """Each model's `abuse:` section, read again when seaway.yaml changes."""
        path = self.project.spec_path
        try:
            stamp: int | None = path.stat().st_mtime_ns
        except OSError:
            stamp = None
        if stamp == self._spec_stamp:
            return
        self._spec_stamp = stamp
        policies: dict[str, Policy] = {}
        # Validating seaway.yaml imports the whole spec format (a fraction of a second the
        # gateway otherwise never spends): only done when the file mentions abuse at all.
        if stamp is not None and b"abuse" in path.read_bytes():
            try:
                from seaway.spec import load_project

                spec = load_project(path)
            except Exception as exc:
                log.warning("abuse: cannot read %s (keeping the settings in use): %s", path, exc)
                return
            policies = {
                m: Policy.of(s.abuse) for m, s in spec.monitoring.items() if s.abuse is not None
            }
        self._policies = policies
        self._off = frozenset(m for m, p in policies.items() if not p.enabled)

    def _expire(self) -> None:
        wall = time.time()
        for key in [k for k, f in self._flags.items() if f.until <= wall]:
            del self._flags[key]
        mono = time.monotonic()
        if any(t.until <= mono for t in self._throttled.values()):
            self._throttled = {k: t for k, t in self._throttled.items() if t.until > mono}

    def _snapshot(self, now: float) -> list[_Snapshot]:
        out: list[_Snapshot] = []
        budget = MAX_JUDGED
        with self._lock:
            for key, entry in self._clients.items():
                marks = entry.marks
                if not marks or now - marks[-1][0] >= RATE_WINDOW_S / 4:
                    marks.append((now, entry.requests))
                    if len(marks) > 6:
                        del marks[0]
                if key in self._flags or key[0] in self._off:
                    continue
                if entry.requests < self._policy(key[0]).min_requests:
                    continue
                snap = _Snapshot(key, entry.requests, entry.number, entry.first, list(marks))
                ring = entry.ring
                # Rows are judged again only once a good share of them is new.
                fresh = ring is not None and entry.count - entry.analysed >= ring.shape[0] // 4
                if ring is not None and fresh and budget > 0:
                    budget -= 1
                    snap.rows = ring[: min(entry.count, ring.shape[0])].copy()
                    snap.names = entry.names
                    entry.analysed = entry.count
                out.append(snap)
        return out

    @staticmethod
    def _rate(snap: _Snapshot, now: float) -> float:
        """Requests a minute, over the last minute or a little more (marks are 15 s apart);
        a client seen for less than a minute has all its requests in it, so a burst of 200
        in one second is 200 a minute, not 12,000."""
        base_t, base_n = snap.first, 0
        for t, n in snap.marks:
            if now - t < RATE_WINDOW_S:
                break
            base_t, base_n = t, n
        span = max(now - base_t, RATE_WINDOW_S)
        return (snap.requests - base_n) / span * 60.0

    def _judge(self, snap: _Snapshot, now: float) -> Flag | None:
        model, client = snap.key
        policy = self._policy(model)
        rate = self._rate(snap, now)
        figures: dict[str, Any] = {"rate_per_min": round(rate, 1), "requests": snap.requests}
        if snap.rows is not None and snap.rows.shape[0] >= MIN_ROWS:
            refs, names = self._reference(model, snap.number, snap.names, snap.rows.shape[1])
            figures.update(probe_figures(snap.rows, refs, names))
        score, reasons = score_client(figures, rate, policy.max_rate)
        if score < FLAG_SCORE:
            return None
        figures["score"] = score
        for name in ("uniform_share", "near_duplicates", "coverage", "baseline_coverage"):
            if isinstance(figures.get(name), float):
                figures[name] = round(figures[name], 4)
        return Flag(
            model=model,
            client=client,
            version=snap.number,
            reasons=tuple(reasons),
            score=score,
            figures=figures,
            action="throttle" if policy.on_flag == "throttle" else "record",
            until=time.time() + policy.flag_for_s,
        )

    def _reference(
        self, model: str, number: int | None, names: tuple[str, ...] | None, width: int
    ) -> tuple[list[Any] | None, list[str] | None]:
        """The training profiles of the client's features, in order, and their names."""
        cached = self._load_reference(model, number) if number is not None else None
        profile, inputs = cached if cached is not None else (None, None)
        # Whole rows take the schema's names when it has as many, as the monitor reads them.
        if names is None and inputs and len(inputs) == width:
            names = tuple(inputs)
        if profile is None:
            return None, list(names) if names else None
        cols = list(names) if names else [f"x{i}" for i in range(width)]
        refs: list[Any] = []
        for name in cols:
            column = profile.columns.get(name)
            refs.append(column if column is not None and column.kind == "numeric" else None)
        return refs, cols

    def _load_reference(self, model: str, number: int) -> tuple[Any, list[str] | None] | None:
        """(features profile, input names) of MODEL@NUMBER; a miss is asked again in 5 min."""
        now = time.monotonic()
        cached = self._references.get((model, number))
        if cached is not None and (cached[1] is not None or now - cached[0] < 300):
            return cached[1]
        found: tuple[Any, list[str] | None] | None = None
        try:
            from sqlalchemy import select

            from seaway.store.schema import reference_profiles as t

            # Asked first, so a version without a profile costs no import of the profile
            # reader (and pyarrow behind it).
            with self.project.metadata.read() as conn:
                where = (t.c.model == model) & (t.c.number == number)
                stored = conn.execute(select(t.c.blob).where(where)).first() is not None
            reference = None
            if stored:
                from seaway.monitor.reference import load_reference

                reference = load_reference(self.project, model, number)
            if reference is not None:
                from seaway.registry.versions import get_version
                from seaway.serving.protocol import input_names

                schema = get_version(self.project, f"{model}@{number}").io_schema
                found = (reference.features, input_names(schema))
        except Exception as exc:  # judged without a reference then
            log.debug("abuse: no reference for %s@%s: %s", model, number, exc)
        if len(self._references) >= 256:
            self._references.clear()
        self._references[(model, number)] = (now, found)
        return found

    def _apply(self, flagged: list[Flag]) -> None:
        throttled = dict(self._throttled)
        mono, wall = time.monotonic(), time.time()
        for flag in flagged:
            key = (flag.model, flag.client)
            self._flags[key] = flag
            if flag.action == "throttle":
                policy = self._policy(flag.model)
                throttled[key] = _Throttle(flag, policy.throttle_rate, mono + (flag.until - wall))
            count = getattr(self.telemetry, "abuse_flagged", None)
            if count is not None:
                try:
                    count(flag.model, flag.reasons)
                except Exception:
                    log.debug("abuse: could not count a flag", exc_info=True)
            log.warning(
                "abuse: %s flagged on %s (%s; score %.2f); %s",
                flag.client,
                flag.model,
                ", ".join(flag.reasons),
                flag.score,
                "throttled" if flag.action == "throttle" else "recorded",
            )
        if len(throttled) > self.max_clients:
            keep = sorted(throttled.items(), key=lambda kv: kv[1].until)[-self.max_clients :]
            throttled = dict(keep)
        self._throttled = throttled
        self._pending.extend(flagged)
        del self._pending[:-MAX_PENDING_EVENTS]

    def _write(self) -> None:
        if not self._pending:
            return
        pending = list(self._pending)

        def write(conn: Connection) -> None:
            from seaway.store.events import record_event

            for flag in pending:
                data = flag.to_dict()
                del data["model"]
                record_event(conn, "abuse.flagged", f"model:{flag.model}", data, actor=self.actor)

        try:
            self.project.metadata.run_write(write)
        except Exception as exc:
            log.warning(
                "abuse: could not record %d flag(s) in the store (will retry): %s",
                len(pending),
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            )
            return
        del self._pending[: len(pending)]


def _describe(reasons: Sequence[str]) -> str:
    words = {
        "rate": "its request rate",
        "uniform_inputs": "inputs that sweep the input space",
        "near_duplicates": "many near-duplicate inputs",
        "coverage": "unusually wide coverage of the input space",
    }
    told = [words.get(r, r) for r in reasons]
    probing = any(r != "rate" for r in reasons)
    return ", ".join(told) + (" (probing typical of model extraction)" if probing else "")
