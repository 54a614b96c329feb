"""The gateway's telemetry: Prometheus metrics, per-version live figures, the request log.

`Telemetry.request()` runs once for every answered request (and every shadow call), so it
does only O(1) work in memory under one lock: no I/O, no prometheus-client lookups, no
allocation beyond a small tuple. Everything else happens elsewhere:

- **Prometheus** (`metrics_text()`, a private `CollectorRegistry` per instance). Request
  metrics come from a custom collector that reads the in-memory counters at scrape time, so
  the request path never pays for prometheus-client's per-child locks and `labels()`
  lookups: `seaway_requests_total` and `seaway_request_errors_total` {model, version,
  route, code}, and `seaway_request_latency_seconds` {model, version, route} with buckets
  from 100 µs to 10 s. Rarer events use ordinary metrics with their labelled children
  cached: `seaway_model_loads_total` {model, version, cold_start},
  `seaway_model_unloads_total` {model, version, reason}, `seaway_cold_start_seconds`
  {model}, `seaway_batch_size` {model, version}, `seaway_abuse_flags_total` {model, reason}
  (clients flagged by `seaway.serving.abuse`), `seaway_shadow_comparisons_total` {model,
  primary, shadow, agreed}, `seaway_models_loaded`, `seaway_feedback_labels_total` {model,
  outcome: accepted, unknown, rejected, duplicate} (items posted to /v1/feedback, each one
  request's labels); and the telemetry's own health:
  `seaway_telemetry_flush_errors_total`, `seaway_request_log_dropped_total`.
  An error is an answer with status 500 or more: a 4xx is the client's mistake, not the
  version's, and would make a rollout's error rate depend on its callers.
- **Live figures** per (model, version, route), in windows of `flush_interval_s`: counts,
  errors, status codes, latency quantiles from a fixed logarithmic histogram (stored too,
  so windows merge later), a sketch of each prediction output, and shadow agreement (on
  the shadow version's row). See `seaway.serving._obs_sketch` for the sketches and
  `seaway.serving.live` for reading them back.
- **Request log**: a request is sampled when the CRC-32 of its request id falls under
  `sample_rate`, so every gateway samples the same ids (a primary answer and its shadow are
  logged together) and at most `sample_cap` samples are kept per window, so a burst cannot
  flood the store. Inputs and outputs are turned into JSON at flush time, off the request
  path; one larger than 64 KiB is stored as a note of its size.

A background thread flushes every `flush_interval_s`: the window's rows into `live_stats`
and the samples into `request_log`, one transaction per flush. A store error is logged and
the batch kept for the next flush (at most `max_pending` batches; older ones are dropped
and counted); it never reaches a request. `stop()` flushes what is left.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from seaway._periodic import Periodic
from seaway._util import utcnow
from seaway.serving._obs_sketch import (
    LATENCY_BUCKETS,
    LATENCY_SCHEME,
    OutputTrack,
    latency_index,
    latency_quantile,
    output_values,
    sparse,
)

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric
    from sqlalchemy.engine import Connection

    from seaway.project import Project

log = logging.getLogger("seaway.serving.telemetry")

LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
COLD_START_BUCKETS_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
MAX_SAMPLE_BYTES = 64 * 1024
ROUTES = ("primary", "shadow")


class _Window:
    """What one series saw since the last flush."""

    __slots__ = ("codes", "errors", "lat", "lat_max", "lat_sum", "requests", "shadow")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.codes: dict[int, int] = {}
        self.lat = [0] * LATENCY_BUCKETS
        self.lat_sum = 0.0
        self.lat_max = 0.0
        self.shadow: dict[int, list[int]] = {}
        """primary version -> [agreed, disagreed]"""


class _Series:
    """One (model, version, route): lifetime counters for Prometheus, the current window."""

    __slots__ = ("buckets", "codes", "lat_sum", "model", "number", "outputs", "route", "window")

    def __init__(self, model: str, number: int | None, route: str) -> None:
        self.model = model
        self.number = number
        self.route = route
        self.codes: dict[int, int] = {}
        self.buckets = [0] * (len(LATENCY_BUCKETS_S) + 1)
        self.lat_sum = 0.0
        self.window = _Window()
        self.outputs: dict[str, OutputTrack] = {}


def sampled(request_id: str, sample_rate: float) -> bool:
    """Whether a request id falls in the sample: the same answer in every process."""
    return zlib.crc32(request_id.encode()) < int(sample_rate * 4294967296.0)


class Telemetry:
    """Metrics, live figures and the sampled request log of one gateway process."""

    def __init__(
        self,
        project: Project,
        *,
        gateway_id: str,
        sample_rate: float = 0.01,
        flush_interval_s: float = 5.0,
        registry: CollectorRegistry | None = None,
        sample_cap: int = 1000,
        max_pending: int = 120,
    ) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be within [0, 1], not {sample_rate}")
        if flush_interval_s <= 0:
            raise ValueError(f"flush_interval_s must be positive, not {flush_interval_s}")
        self.project = project
        self.gateway_id = gateway_id[:64]
        self.sample_rate = sample_rate
        self.sample_cap = sample_cap
        self.flush_interval_s = flush_interval_s
        self.max_pending = max_pending
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._threshold = int(sample_rate * 4294967296.0)
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._series: dict[tuple[str, int | None, str], _Series] = {}
        self._samples: list[tuple[Any, ...]] = []
        self._window_start = utcnow()
        self._pending: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]] = []
        self._loop = Periodic(
            f"seaway-telemetry-{self.gateway_id}", flush_interval_s, self.flush, log=log
        )
        self._loaded: set[tuple[str, int]] = set()
        self._children: dict[tuple[Any, ...], Any] = {}

        reg = self.registry
        reg.register(_RequestCollector(self))
        self._loads = Counter(
            "seaway_model_loads",
            "Model versions loaded",
            ["model", "version", "cold_start"],
            registry=reg,
        )
        self._unloads = Counter(
            "seaway_model_unloads",
            "Model versions unloaded, by reason",
            ["model", "version", "reason"],
            registry=reg,
        )
        self._cold = Histogram(
            "seaway_cold_start_seconds",
            "Time a request waited for its version to load",
            ["model"],
            buckets=COLD_START_BUCKETS_S,
            registry=reg,
        )
        self._batch = Histogram(
            "seaway_batch_size",
            "Rows per adaptive micro-batch",
            ["model", "version"],
            buckets=BATCH_SIZE_BUCKETS,
            registry=reg,
        )
        self._shadow = Counter(
            "seaway_shadow_comparisons",
            "Shadow answers compared with the primary's",
            ["model", "primary", "shadow", "agreed"],
            registry=reg,
        )
        self._models_loaded = Gauge(
            "seaway_models_loaded", "Model versions loaded now", registry=reg
        )
        self._feedback = Counter(
            "seaway_feedback_labels",
            "Feedback items (one request's true labels) posted, by outcome",
            ["model", "outcome"],
            registry=reg,
        )
        self._abuse = Counter(
            "seaway_abuse_flags",
            "Clients flagged for abuse or model extraction, by reason",
            ["model", "reason"],
            registry=reg,
        )
        self._flush_errors = Counter(
            "seaway_telemetry_flush_errors",
            "Flushes of live figures and the request log that failed (retried)",
            registry=reg,
        )
        self._dropped = Counter(
            "seaway_request_log_dropped",
            "Sampled requests not logged: over the per-window cap, or lost to store errors",
            registry=reg,
        )
        self._dropped_pending = 0

    # -- the request path ---------------------------------------------------------

    def request(
        self,
        model: str,
        number: int | None,
        route: str,
        *,
        status: int,
        latency_s: float,
        request_id: str,
        key: str | None = None,
        inputs: Any = None,
        outputs: Any = None,
    ) -> None:
        """Count one answered request. O(1) and in memory; never raises for bad outputs."""
        values = None
        if outputs is not None and status < 400 and number is not None:
            try:
                values = output_values(outputs)
            except Exception:  # a sketch is not worth failing a request over
                values = None
        sample = (
            number is not None
            and self._threshold
            and zlib.crc32(request_id.encode()) < self._threshold
        )
        with self._lock:
            s = self._series.get((model, number, route))
            if s is None:
                s = self._series[(model, number, route)] = _Series(model, number, route)
            s.codes[status] = s.codes.get(status, 0) + 1
            s.buckets[bisect_left(LATENCY_BUCKETS_S, latency_s)] += 1
            s.lat_sum += latency_s
            w = s.window
            w.requests += 1
            if status >= 500:
                w.errors += 1
            w.codes[status] = w.codes.get(status, 0) + 1
            w.lat[latency_index(latency_s)] += 1
            w.lat_sum += latency_s
            if latency_s > w.lat_max:
                w.lat_max = latency_s
            if values:
                for name, vals in values.items():
                    track = s.outputs.get(name)
                    if track is None:
                        if len(s.outputs) >= 16:  # bounded: a model with many outputs
                            continue
                        track = s.outputs[name] = OutputTrack()
                    track.add(vals)
            if sample:
                if len(self._samples) < self.sample_cap:
                    self._samples.append(
                        (
                            time.time(),
                            request_id,
                            model,
                            number,
                            route,
                            key,
                            inputs,
                            outputs,
                            latency_s,
                            status,
                        )
                    )
                else:
                    self._dropped_pending += 1

    # -- model lifecycle and routing events -------------------------------------------

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def load(self, model: str, number: int, seconds: float, *, cold_start: bool) -> None:
        """A version was loaded, taking `seconds`; `cold_start` when a request waited on it."""
        self._child(self._loads, model, str(number), "true" if cold_start else "false").inc()
        if cold_start:
            self._child(self._cold, model).observe(seconds)
        with self._lock:
            self._loaded.add((model, number))
            self._models_loaded.set(len(self._loaded))

    def unload(self, model: str, number: int, reason: str) -> None:
        """A version was unloaded (`idle`, `memory`, `undeployed`, ...)."""
        self._child(self._unloads, model, str(number), reason).inc()
        with self._lock:
            self._loaded.discard((model, number))
            self._models_loaded.set(len(self._loaded))

    def batch(self, model: str, number: int, size: int) -> None:
        """A micro-batch of `size` rows went to the model."""
        self._child(self._batch, model, str(number)).observe(size)

    def shadow_compare(self, model: str, primary: int, shadow: int, *, agreed: bool) -> None:
        """A shadow version's answer was compared with the primary's."""
        self._child(
            self._shadow, model, str(primary), str(shadow), "true" if agreed else "false"
        ).inc()
        with self._lock:
            s = self._series.get((model, shadow, "shadow"))
            if s is None:
                s = self._series[(model, shadow, "shadow")] = _Series(model, shadow, "shadow")
            pair = s.window.shadow.get(primary)
            if pair is None:
                pair = s.window.shadow[primary] = [0, 0]
            pair[0 if agreed else 1] += 1

    def feedback(self, model: str, outcome: str, count: int = 1) -> None:
        """`count` feedback items for `model` ended as `outcome` (accepted, unknown, ...)."""
        if count:
            self._child(self._feedback, model, outcome).inc(count)

    def abuse_flagged(self, model: str, reasons: Iterable[str]) -> None:
        """A client was flagged on `model` for `reasons` (see seaway.serving.abuse)."""
        for reason in reasons:
            self._child(self._abuse, model, reason).inc()

    def metrics_text(self) -> tuple[bytes, str]:
        """The body and content type for GET /metrics."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    # -- flushing -------------------------------------------------------------------

    def start(self) -> None:
        """Start the background flush thread (idempotent)."""
        self._loop.start()

    def stop(self) -> None:
        """Stop the flush thread and flush what is left (errors are logged, not raised)."""
        self._loop.stop()
        self.flush()

    def flush(self) -> bool:
        """Close the current window and write it, with any batch a failed flush left.
        True when everything pending reached the store."""
        with self._flush_lock:
            batch = self._close_window()
            if batch[0] or batch[1]:
                self._pending.append(batch)
            if len(self._pending) > self.max_pending:
                lost = self._pending[: -self.max_pending]
                del self._pending[: -self.max_pending]
                dropped = sum(len(samples) for _, samples in lost)
                self._dropped.inc(dropped)
                log.warning(
                    "telemetry: dropped %d windows of live figures the store did not take",
                    len(lost),
                )
            if not self._pending:
                return True
            pending = list(self._pending)
            try:
                self.project.metadata.run_write(lambda conn: _write(conn, pending))
            except Exception as exc:
                self._flush_errors.inc()
                log.warning(
                    "telemetry: could not write live figures to the store (will retry): %s",
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                )
                return False
            del self._pending[: len(pending)]
            return True

    def _close_window(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        end = utcnow()
        closed: list[tuple[_Series, _Window, dict[str, Any]]] = []
        with self._lock:
            start, self._window_start = self._window_start, end
            samples, self._samples = self._samples, []
            dropped, self._dropped_pending = self._dropped_pending, 0
            for s in self._series.values():
                w = s.window
                if s.number is None or (not w.requests and not w.shadow):
                    continue
                s.window = _Window()
                sketches = {}
                for name, track in s.outputs.items():
                    taken = track.take()
                    if taken is not None:
                        sketches[name] = taken
                closed.append((s, w, sketches))
        if dropped:
            self._dropped.inc(dropped)
        rows = [_figures_row(self.gateway_id, s, w, o, start, end) for s, w, o in closed]
        return rows, [_sample_row(x) for x in samples]

    def series(self) -> Iterator[tuple[str, int | None, str, dict[int, int], list[int], float]]:
        """A consistent snapshot of the lifetime request counters (for the collector)."""
        with self._lock:
            snap = [
                (s.model, s.number, s.route, dict(s.codes), list(s.buckets), s.lat_sum)
                for s in self._series.values()
                if s.codes
            ]
        yield from snap


def _figures_row(
    gateway: str,
    s: _Series,
    w: _Window,
    outputs: dict[str, Any],
    start: datetime,
    end: datetime,
) -> dict[str, Any]:
    lat = {i: c for i, c in enumerate(w.lat) if c}
    figures: dict[str, Any] = {
        "latency_s": {
            "p50": latency_quantile(lat, 0.50),
            "p90": latency_quantile(lat, 0.90),
            "p99": latency_quantile(lat, 0.99),
            "mean": w.lat_sum / w.requests if w.requests else None,
            "max": w.lat_max if w.requests else None,
        },
        "latency_histogram": {"scheme": LATENCY_SCHEME, "counts": sparse(w.lat)},
        "codes": {str(k): v for k, v in sorted(w.codes.items())},
        "outputs": outputs,
    }
    if w.shadow:
        figures["shadow"] = {
            str(p): {"agreed": a, "disagreed": d} for p, (a, d) in sorted(w.shadow.items())
        }
    return {
        "gateway": gateway,
        "model": s.model,
        "number": s.number,
        "route": s.route,
        "window_start": start,
        "window_end": end,
        "requests": w.requests,
        "errors": w.errors,
        "figures": figures,
    }


def _json_default(value: Any) -> Any:
    for attr in ("to_pylist", "tolist"):
        if hasattr(value, attr):
            return getattr(value, attr)()
    if hasattr(value, "to_pydict"):
        return value.to_pydict()
    if hasattr(value, "to_dict"):
        try:
            return value.to_dict(orient="list")
        except TypeError:
            return value.to_dict()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"bytes": len(value)}
    return str(value)


def json_text(value: Any) -> str | None:
    """A value as the JSON text the store holds (NaN and infinities as null), or the text
    of a note of its size when it is too large; None for None."""
    import orjson

    if value is None:
        return None
    try:
        raw = orjson.dumps(
            value,
            default=_json_default,
            option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS,
        )
    except (TypeError, orjson.JSONEncodeError) as exc:
        note: dict[str, Any] = {"unserializable": type(value).__name__, "reason": str(exc)[:200]}
        return orjson.dumps(note).decode()
    if len(raw) > MAX_SAMPLE_BYTES:
        return orjson.dumps({"truncated": True, "bytes": len(raw)}).decode()
    return raw.decode()


def jsonable(value: Any) -> Any:
    """A value as JSON the store can hold, or a note of its size when it is too large."""
    import orjson

    text = json_text(value)
    return None if text is None else orjson.loads(text)


def _sample_row(sample: tuple[Any, ...]) -> dict[str, Any]:
    ts, request_id, model, number, route, key, inputs, outputs, latency_s, status = sample
    return {
        "ts": datetime.fromtimestamp(ts, UTC),
        "request_id": str(request_id)[:64],
        "model": model,
        "number": number,
        "route": route,
        "key": None if key is None else str(key)[:200],
        # Serialised once here and bound as text (`_insert_samples`): the writer thread shares
        # the interpreter with the request loop, and a second pass through the stdlib's
        # JSON encoder was a third of its time at full load.
        "inputs_json": json_text(inputs),
        "outputs_json": json_text(outputs),
        "latency_ms": latency_s * 1000.0,
        "status": status,
    }


def _write(
    conn: Connection, pending: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]]
) -> None:
    from seaway.store.schema import live_stats, request_log

    rows = [r for batch in pending for r in batch[0]]
    samples = [x for batch in pending for x in batch[1]]
    if rows:
        conn.execute(live_stats.insert(), rows)
    if samples:
        _insert_samples(conn, request_log, samples)


LOG_STATEMENT_BYTES = 16 * 1024 * 1024
"""About how much sample text one INSERT into the request log carries: a flush at the cap
of large samples stays far under the databases' limits on one value (1 GB)."""

# The request log's columns and their PostgreSQL types, for json_to_recordset.
_LOG_COLUMNS = {
    "ts": "timestamptz",
    "request_id": "text",
    "model": "text",
    "number": "integer",
    "route": "text",
    "key": "text",
    "inputs": "text",
    "outputs": "text",
    "latency_ms": "double precision",
    "status": "integer",
}


def _insert_samples(conn: Connection, table: Any, samples: list[dict[str, Any]]) -> None:
    """Write samples to the request log, one statement over a JSON array per
    `LOG_STATEMENT_BYTES` of samples.

    A row-by-row `executemany` gives up the GIL around every row, and the writer thread then
    waits for the busy request loop to hand it back each time: next to a busy thread a flush
    of 10,000 samples took 3.5 s instead of 0.4 s on SQLite (1.7 s instead of 0.8 s on
    PostgreSQL), windows grew past the sample cap and samples were dropped. One statement
    gives it up once."""
    chunk: list[dict[str, Any]] = []
    size = 0
    for x in samples:
        chunk.append(x)
        size += 200 + len(x["inputs_json"] or "") + len(x["outputs_json"] or "")
        if size >= LOG_STATEMENT_BYTES:
            _insert_json_rows(conn, table.name, chunk)
            chunk, size = [], 0
    if chunk:
        _insert_json_rows(conn, table.name, chunk)


def _insert_json_rows(conn: Connection, table: str, samples: list[dict[str, Any]]) -> None:
    import orjson

    names = list(_LOG_COLUMNS)
    # Inputs and outputs go in as JSON strings holding their JSON text: SQLite's json_extract
    # returns such a string unquoted, as the column stores it, and PostgreSQL casts the text.
    if conn.dialect.name == "postgresql":
        rows: list[Any] = [
            {
                **{c: x[c] for c in names if c not in ("ts", "inputs", "outputs")},
                "ts": x["ts"].isoformat(),
                "inputs": x["inputs_json"],
                "outputs": x["outputs_json"],
            }
            for x in samples
        ]
        picks = ", ".join(f"x.{c}::json" if c in ("inputs", "outputs") else f"x.{c}" for c in names)
        shape = ", ".join(f"{c} {kind}" for c, kind in _LOG_COLUMNS.items())
        # WITH ORDINALITY: ids are given in the order the samples were taken.
        source = (
            f"ROWS FROM (json_to_recordset(CAST(%(rows)s AS json)) AS ({shape})) "
            f"WITH ORDINALITY AS x({', '.join(names)}, n)"
        )
        sql = f"INSERT INTO {table} ({', '.join(names)}) SELECT {picks} FROM {source} ORDER BY x.n"
        conn.exec_driver_sql(sql, {"rows": orjson.dumps(rows).decode()})
        return
    # SQLite: each row an array; times in the text format SQLAlchemy's SQLite DateTime
    # stores and reads back (the UTC wall time).
    arrays = [
        [
            x["ts"].strftime("%Y-%m-%d %H:%M:%S.%f"),
            *(x[c] for c in names[1:6]),
            x["inputs_json"],
            x["outputs_json"],
            x["latency_ms"],
            x["status"],
        ]
        for x in samples
    ]
    picks = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(names)))
    sql = f"INSERT INTO {table} ({', '.join(names)}) SELECT {picks} FROM json_each(?) ORDER BY key"
    conn.exec_driver_sql(sql, (orjson.dumps(arrays).decode(),))


class _RequestCollector:
    """Request metrics read from Telemetry's counters at scrape time."""

    def __init__(self, telemetry: Telemetry) -> None:
        self._telemetry = telemetry

    def describe(self) -> list[Metric]:
        return list(self._families([]))

    def collect(self) -> Iterator[Metric]:
        return self._families(list(self._telemetry.series()))

    def _families(
        self, snap: list[tuple[str, int | None, str, dict[int, int], list[int], float]]
    ) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

        requests = CounterMetricFamily(
            "seaway_requests",
            "Requests answered, by model, version, route and HTTP status",
            labels=["model", "version", "route", "code"],
        )
        errors = CounterMetricFamily(
            "seaway_request_errors",
            "Requests answered with a status of 500 or more",
            labels=["model", "version", "route", "code"],
        )
        latency = HistogramMetricFamily(
            "seaway_request_latency_seconds",
            "Time from request to answer in the gateway",
            labels=["model", "version", "route"],
        )
        bounds = [repr(float(b)) for b in LATENCY_BUCKETS_S]
        for model, number, route, codes, buckets, lat_sum in snap:
            version = "" if number is None else str(number)
            for code, n in sorted(codes.items()):
                requests.add_metric([model, version, route, str(code)], n)
                if code >= 500:
                    errors.add_metric([model, version, route, str(code)], n)
            cumulative: list[tuple[str, float]] = []
            seen = 0
            for bound, n in zip(bounds, buckets, strict=False):
                seen += n
                cumulative.append((bound, seen))
            cumulative.append(("+Inf", seen + buckets[-1]))
            latency.add_metric([model, version, route], cumulative, lat_sum)
        yield requests
        yield errors
        yield latency
