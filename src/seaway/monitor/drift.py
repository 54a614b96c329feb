"""Live drift: logged requests, window by window, compared with the version's training data.

    windows = score_drift(project, "churn-classifier")      # score what was logged since
    status = drift_status(project, "churn-classifier")      # the newest window per version

The gateway logs a sample of its requests (`seaway serve --sample-rate`). For every version
of a model, `score_drift` reads the primary-route rows logged after where it last stopped,
in pages, and cuts them into windows: a window closes after `monitoring.MODEL.window.rows`
prediction rows (1,000 when the model has no `monitoring` entry), or, with
`window.duration`, once a request arrives after the window's first request plus the
duration (or the duration has passed by the time of the call). Each closed window is
compared with the version's reference profile (`seaway.monitor.reference`): the watched
features (`monitoring.MODEL.features`, all inputs when omitted) and the predictions, each
with PSI, KS, JS and chi-square. Its score is the largest PSI; it is breached when the score
is above `on_drift.psi_above` (0.2 when not set), and the columns whose PSI is above it are
listed as drifted.

Each window is stored (`monitor_windows`) and the reader's cursor (`drift:MODEL@N`) moved
past it in one transaction, so an interrupted monitor never scores a request twice, and two
monitors running at once never score it twice either (the second finds the cursor moved and
stops). A window that is not complete yet is not stored; the next call reads it again.
Requests younger than `window.settle` (30 s on PostgreSQL, none on SQLite; see
`settle_for`) wait for a later call, so rows that several gateways commit out of order are
never skipped. A
logged request whose inputs cannot be read (too large when it was logged) is counted in
`skipped` and as one row towards the window's size, so unreadable traffic still moves the
cursor. Every stored window is a `monitor.window` event, and a breached one also a
`monitor.drift` event, which the retraining triggers and alerts follow.

A window keeps counts, never values: per numeric column the counts in the reference's bins
and fine CDF boundaries plus two running sums, per categorical column the counts of the
profiled categories and of everything else. Memory does not grow with traffic, and the
statistics equal `seaway.stats.compare_profile` on all the window's rows at once
(`WindowAccumulator`).

Window figures (`MonitorWindow.figures`) hold `features` and `predictions`, each mapping a
column to its `kind`, `psi`, `ks`, `ks_p`, `js`, `chi2`, `chi2_p`, `drifted` and the counts
to plot (numeric: `edges`, `reference`, `current`; categorical: `labels`, `reference`,
`current`), plus `drifted` (names over the threshold), `threshold`, `requests` and
`skipped` (logged requests whose inputs could not be read).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from seaway.errors import InputError, NotFound, UsageError
from seaway.monitor.windows import MonitorWindow, settle_for
from seaway.stats import _categorical, _numeric
from seaway.stats._columns import categorical_array
from seaway.stats.drift import (
    Method,
    Thresholds,
    categorical_statistics,
    check_method,
    finish,
    numeric_statistics,
)
from seaway.stats.measures import ks_from_counts, ks_pvalue
from seaway.stats.profile import CategoricalProfile, NumericProfile, Profile
from seaway.stats.report import ColumnDrift, DriftReport

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from seaway.monitor.reference import ReferenceProfile
    from seaway.project import Project
    from seaway.registry.versions import ModelVersion
    from seaway.spec.models import MonitorSpec

__all__ = [
    "DEFAULT_PSI_ABOVE",
    "DEFAULT_WINDOW_ROWS",
    "DriftStatus",
    "VersionDrift",
    "WindowAccumulator",
    "drift_status",
    "score_drift",
]

log = logging.getLogger("seaway.monitor.drift")

DEFAULT_WINDOW_ROWS = 1000
DEFAULT_PSI_ABOVE = 0.2
PAGE_REQUESTS = 2000


# --------------------------------------------------------------------------- accumulating


def _plain(value: float) -> float | None:
    # JSON (and PostgreSQL's JSON type) has no NaN.
    return float(value) if math.isfinite(value) else None


def _as_floats(values: Any) -> NDArray[np.float64]:
    """Values as float64, None and anything not a number as NaN (it counts as missing)."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iuf":
        return values if values.dtype == np.float64 else values.astype(np.float64)
    if isinstance(values, pa.Array | pa.ChunkedArray):
        values = values.to_numpy(zero_copy_only=False)
        if values.dtype.kind in "iuf":
            return values.astype(np.float64, copy=False)
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        out = np.empty(len(values), dtype=np.float64)
        for i, v in enumerate(values):
            ok = isinstance(v, int | float | np.number) and not isinstance(v, bool)
            out[i] = float(v) if ok else math.nan
        return out


class _EdgeIndex:
    """`np.searchsorted(edges, x, side="right")`, three to five times faster.

    A binary search costs about 50 ns a value. Here a lookup table of 8,192 equal cells over
    the edges' range (plus one cell below it and one above) gives each value a cell whose
    first edge index is known, and two comparisons with the (at most two) edges inside that
    cell finish the job: a few vectorised passes. Cells holding more edges, which only
    heavily clustered edges make, fall back to the binary search for their values, so the
    answer is always exact. NaN values are not handled here (the caller sets them).
    """

    CELLS = 1 << 13

    def __init__(self, edges: NDArray[np.float64]) -> None:
        self.edges = edges
        self.size = edges.size
        self.fast = False
        if edges.size < 2 or not np.all(np.isfinite(edges[[0, -1]])):
            return
        lo, hi = float(edges[0]), float(edges[-1])
        if not hi > lo:
            return
        g = self.CELLS
        self.lo, self.scale = lo, g / (hi - lo)
        # Cell j (1..g) is [lo + (j-1)/scale, lo + j/scale); cell 0 is below lo, g+1 at or
        # above hi. A value's cell can be off by rounding; widening every cell by a margin
        # far above that error keeps the value's answer among those its cell allows.
        margin = 1e-6 / self.scale + 8 * np.finfo(np.float64).eps * max(abs(lo), abs(hi))
        starts = np.concatenate(([-np.inf], lo + np.arange(g + 1) / self.scale))
        ends = np.concatenate((starts[1:], [np.inf]))
        starts[-1] = hi
        base = np.searchsorted(edges, starts - margin, side="right")
        inside = np.searchsorted(edges, ends + margin, side="left") - base
        # NaN where a cell has no such edge: no value compares >= NaN, not even infinity.
        padded = np.append(edges, [np.nan, np.nan])
        self.base = base.astype(np.intp)
        self.first = padded[base]
        self.second = np.where(inside >= 2, padded[base + 1], np.nan)
        self.crowded = inside > 2
        self.any_crowded = bool(self.crowded.any())
        self.fast = True

    def count(self, x: NDArray[np.float64], counts: NDArray[np.int64], has_nan: bool) -> None:
        """Add the cells of the values of `x` (NaN in the last) to `counts`."""
        if not self.fast:
            found = np.searchsorted(self.edges, x, side="right")
            counts += np.bincount(found, minlength=counts.size)
            return
        scratch, cells, picked, ge = _numeric.scratch("edges", _EDGE_BUFFERS)
        top = float(self.CELLS + 1)
        offset = 1.0 - self.lo * self.scale
        # Cache-sized chunks: the dozen passes over each value run about twice as fast.
        for start in range(0, x.size, _CHUNK):
            part = x[start : start + _CHUNK]
            k = part.size
            y, idx, out, cmp = scratch[:k], cells[:k], picked[:k], ge[:k]
            np.multiply(part, self.scale, out=y)
            y += offset
            if has_nan:
                # fmax/fmin send NaN to a bound (clip would keep it); it is set apart below.
                np.fmax(y, 0.0, out=y)
                np.fmin(y, top, out=y)
            else:
                np.clip(y, 0.0, top, out=y)
            np.copyto(idx, y, casting="unsafe")
            np.take(self.base, idx, out=out)
            np.take(self.first, idx, out=y)
            np.greater_equal(part, y, out=cmp)
            out += cmp
            np.take(self.second, idx, out=y)
            np.greater_equal(part, y, out=cmp)
            out += cmp
            if self.any_crowded:
                crowded = self.crowded[idx]
                if crowded.any():
                    out[crowded] = np.searchsorted(self.edges, part[crowded], side="right")
            if has_nan:
                out[np.isnan(part)] = self.size  # where searchsorted puts NaN
            counts += np.bincount(out, minlength=counts.size)


_CHUNK = _numeric.CHUNK
_EDGE_BUFFERS = (np.float64, np.intp, np.intp, np.bool_)


class _Numeric:
    """Counts in the profile's edges (len(edges) + 1 cells) and the moments of the values."""

    __slots__ = ("center", "counts", "index", "missing", "profile", "rows", "s1", "s2")

    def __init__(self, profile: NumericProfile) -> None:
        self.profile = profile
        self.index = _EdgeIndex(profile.edges)
        # Moments are summed around the reference mean, as the profile comparison does.
        self.center = profile.mean if math.isfinite(profile.mean) else 0.0
        self.counts = np.zeros(profile.edges.size + 1, dtype=np.int64)
        self.rows = self.missing = 0
        self.s1 = self.s2 = 0.0

    def add(self, values: Any) -> None:
        x = _as_floats(values)
        if x.ndim != 1:
            raise InputError(f"a column holds {x.ndim}-dimensional values, not one per row")
        if x.size == 0:
            return
        y = x - self.center
        s1 = float(y.sum())
        missing = 0
        if math.isnan(s1):
            holes = np.isnan(y)
            missing = int(np.count_nonzero(holes))
            y = y[~holes]
            s1 = float(y.sum())
        self.s1 += s1
        np.multiply(y, y, out=y)
        self.s2 += float(y.sum())
        self.index.count(x, self.counts, missing > 0)
        # NaN counted in the last cell comes out again: missing values are apart.
        self.counts[-1] -= missing
        self.rows += x.size
        self.missing += missing

    def pad(self, n: int) -> None:
        self.rows += n
        self.missing += n

    def tally(self) -> _numeric.Tally:
        return _numeric.Tally(
            self.counts, self.rows, self.missing, 1.0, -self.center, self.s1, self.s2
        )

    def bins(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        # Edge i starts cell i + 1 of the explicit grid.
        boundaries = (self.profile.bins + 1).astype(np.intp)
        return (
            _numeric.group(self.profile.counts, boundaries),
            _numeric.group(self.counts, boundaries),
        )

    def column(self, name: str, method: str, t: Thresholds) -> ColumnDrift:
        prof = self.profile
        cur = self.tally()
        ref_bins, cur_bins = self.bins()
        n, m = prof.rows - prof.missing, cur.valid
        d = ks_from_counts(prof.counts, self.counts)
        s = numeric_statistics(
            ref_bins, cur_bins, (d, ks_pvalue(d, n, m)), cur, prof.mean, prof.std
        )
        return finish(
            name, "numeric", s, (prof.rows, cur.rows), (prof.missing, cur.missing), method, t
        )

    def plot(self) -> dict[str, Any]:
        ref_bins, cur_bins = self.bins()
        return {
            "edges": [float(e) for e in self.profile.edges[self.profile.bins]],
            "reference": [int(c) for c in ref_bins],
            "current": [int(c) for c in cur_bins],
        }


class _Categorical:
    """Counts of the profiled categories, and of every other value (one last bucket)."""

    __slots__ = ("buckets", "missing", "profile", "rows")

    def __init__(self, profile: CategoricalProfile) -> None:
        self.profile = profile
        self.buckets = np.zeros(len(profile.values) + 1, dtype=np.int64)
        self.rows = self.missing = 0

    def add(self, values: Any, name: str) -> None:
        kept = len(self.profile.values)
        try:
            array = categorical_array(values, name)
            cur = _categorical.count(array)
            where = _categorical.positions(cur.values, self.profile.values, name)
        except (InputError, pa.ArrowException):
            # Mixed types, or another type than the reference's: compared as text, and
            # values that still match no profiled category count as "other".
            array = pa.array([None if v is None else str(v) for v in values], pa.string())
            cur = _categorical.count(array)
            try:
                where = _categorical.positions(cur.values, self.profile.values, name)
            except (InputError, pa.ArrowException):
                where = np.full(len(cur.values), -1, dtype=np.int64)
        where = np.where(where < 0, kept, where)
        self.buckets += np.bincount(where, weights=cur.counts, minlength=kept + 1).astype(np.int64)
        self.rows += cur.rows
        self.missing += cur.missing

    def pad(self, n: int) -> None:
        self.rows += n
        self.missing += n

    def column(self, name: str, method: str, t: Thresholds) -> ColumnDrift:
        prof = self.profile
        kept = len(prof.values)
        ref_buckets = np.append(prof.counts, prof.other)
        s = categorical_statistics(ref_buckets, self.buckets, np.zeros(0, dtype=np.int64))
        valid_cur = self.rows - self.missing
        s["unseen"] = self.buckets[kept] / valid_cur if valid_cur else math.nan
        return finish(
            name,
            "categorical",
            s,
            (prof.rows, self.rows),
            (prof.missing, self.missing),
            method,
            t,
        )

    def plot(self) -> dict[str, Any]:
        values = self.profile.values.to_pylist()
        return {
            "labels": [v.hex() if isinstance(v, bytes) else str(v) for v in values] + ["other"],
            "reference": [int(c) for c in self.profile.counts] + [int(self.profile.other)],
            "current": [int(c) for c in self.buckets],
        }


def _chunk_length(columns: Mapping[str, Any]) -> int:
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{k}: {v}" for k, v in lengths.items())
        raise InputError(
            f"the columns of a chunk differ in length ({shown})",
            hint="add rows as columns of equal length",
        )
    return next(iter(lengths.values()), 0)


class WindowAccumulator:
    """Live rows compared with a reference `Profile`, chunk by chunk, in bounded memory.

        acc = WindowAccumulator(reference.features)
        acc.add({"tenure": [3, 40], "region": ["north", "south"]})
        acc.report()        # the same as compare_profile(reference.features, all rows added)

    `columns` restricts the comparison to those profiled columns. A column missing from a
    chunk counts as missing values for that chunk's rows; columns the profile lacks are
    ignored (the report lists them as skipped).
    """

    def __init__(self, reference: Profile, columns: Sequence[str] | None = None) -> None:
        names = list(reference.columns) if columns is None else list(dict.fromkeys(columns))
        absent = [c for c in names if c not in reference.columns]
        if absent:
            raise InputError(
                "columns not in the reference profile: " + ", ".join(absent),
                hint="watch columns the version was trained on, or leave `columns` out",
            )
        self.reference = reference
        self._states: dict[str, _Numeric | _Categorical] = {}
        for name in names:
            prof = reference.columns[name]
            if isinstance(prof, NumericProfile):
                self._states[name] = _Numeric(prof)
            else:
                self._states[name] = _Categorical(prof)
        self._seen: set[str] = set()
        self._extra: dict[str, None] = {}
        self.rows = 0

    @property
    def columns(self) -> list[str]:
        return list(self._states)

    def add(self, columns: Mapping[str, Sequence[Any] | np.ndarray]) -> None:
        """Add one chunk of rows, given as {column: values} of equal lengths."""
        n = _chunk_length(columns)
        if n == 0:
            return
        for name, state in self._states.items():
            values = columns.get(name)
            if values is None:
                state.pad(n)
            elif isinstance(state, _Numeric):
                state.add(values)
                self._seen.add(name)
            else:
                state.add(values, name)
                self._seen.add(name)
        for name in columns:
            if name not in self._states and name not in self.reference.columns:
                self._extra[str(name)] = None
        self.rows += n

    def report(
        self, thresholds: Thresholds | None = None, *, method: Method = "auto"
    ) -> DriftReport:
        """Every watched column's statistics and decision, as `compare_profile` gives them."""
        check_method(method)
        t = thresholds or Thresholds()
        results = {
            name: state.column(name, method, t)
            for name, state in self._states.items()
            if name in self._seen
        }
        skipped = {n: "only in the reference data" for n in self._states if n not in self._seen}
        skipped.update({n: "only in the current data" for n in self._extra})
        return DriftReport(
            columns=results,
            method=method,
            thresholds=t.to_dict(),
            skipped=skipped,
            source="profile",
        )

    def figures(
        self, thresholds: Thresholds | None = None, *, method: Method = "auto"
    ) -> dict[str, Any]:
        """Per column: the statistics and the counts to plot, ready for JSON."""
        report = self.report(thresholds, method=method)
        out: dict[str, Any] = {}
        for name, col in report.columns.items():
            s = col.statistics
            entry: dict[str, Any] = {
                "kind": col.kind,
                "psi": _plain(s["psi"]),
                "ks": _plain(s.get("ks_d", math.nan)),
                "ks_p": _plain(s.get("ks_p", math.nan)),
                "js": _plain(s["js"]),
                "chi2": _plain(s["chi2"]),
                "chi2_p": _plain(s["chi2_p"]),
                "drifted": col.drifted,
                "reason": col.reason,
                "rows": col.n_cur,
                "missing": col.missing_cur,
            }
            entry.update(self._states[name].plot())
            out[name] = entry
        return out


# --------------------------------------------------------------------------- scoring


def _monitor_spec(project: Project, model: str) -> MonitorSpec:
    from seaway.spec.models import MonitorSpec

    found = project.spec.monitoring.get(model) if project.spec_path.is_file() else None
    return found if found is not None else MonitorSpec()


def _threshold(spec: MonitorSpec) -> float:
    return spec.on_drift.psi_above if spec.on_drift is not None else DEFAULT_PSI_ABOVE


def cursor_name(model: str, number: int) -> str:
    return f"drift:{model}@{number}"


_unbuildable: set[tuple[str, str, int]] = set()


def _reference(project: Project, version: ModelVersion) -> ReferenceProfile | None:
    """The version's reference, built once when it has none; None when it cannot be."""
    from seaway.monitor.reference import build_reference, load_reference

    found = load_reference(project, version.model, version.number)
    if found is not None:
        return found
    key = (project.metadata_url, version.model, version.number)
    if key in _unbuildable:
        return None
    try:
        return build_reference(project, version.ref)
    except Exception as exc:  # one version without a reference never stops the others
        _unbuildable.add(key)
        log.warning(
            "drift of %s not scored: no reference profile (%s); build one with "
            "`seaway monitor reference %s --data FILE`",
            version.ref,
            str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            version.ref,
        )
        return None


class _Raced(Exception):
    """Another monitor moved the cursor first: what this one read is scored already."""


@dataclass
class _Window:
    """The window being filled: its accumulators and where it started."""

    features: WindowAccumulator
    predictions: WindowAccumulator | None
    first_id: int = 0
    last_id: int = 0
    start: datetime | None = None
    end: datetime | None = None
    rows: int = 0
    requests: int = 0
    skipped: int = 0


class _Scorer:
    """Reads one version's logged rows and stores its windows."""

    def __init__(
        self,
        project: Project,
        version: ModelVersion,
        reference: ReferenceProfile,
        spec: MonitorSpec,
        now: datetime,
    ) -> None:
        from seaway.serving.protocol import input_names

        self.project = project
        self.version = version
        self.reference = reference
        self.names = input_names(version.io_schema)
        self.rows_limit = spec.window.rows
        self.duration = (
            timedelta(seconds=spec.window.duration.seconds)
            if spec.window.duration is not None
            else None
        )
        if self.rows_limit is None and self.duration is None:
            self.rows_limit = DEFAULT_WINDOW_ROWS
        self.threshold = _threshold(spec)
        self.settle = settle_for(project, spec.window)
        watched = list(reference.features.columns)
        if spec.features:
            unknown = [f for f in spec.features if f not in reference.features.columns]
            if unknown:
                log.warning(
                    "monitoring.%s.features: %s not among the inputs of %s; ignored",
                    version.model,
                    ", ".join(unknown),
                    version.ref,
                )
            watched = [f for f in spec.features if f in reference.features.columns]
        self.watched = watched
        self.now = now
        self.position = 0
        self.stored: list[MonitorWindow] = []

    def _fresh(self) -> _Window:
        preds = self.reference.predictions
        return _Window(
            features=WindowAccumulator(self.reference.features, self.watched),
            predictions=WindowAccumulator(preds) if preds is not None else None,
        )

    def run(self, position: int) -> list[MonitorWindow]:
        self.position = position
        try:
            self._read(position)
        except _Raced:
            log.info("drift of %s: another monitor scored it meanwhile", self.version.ref)
        return self.stored

    def _read(self, position: int) -> None:
        from seaway._util import as_utc
        from seaway.monitor.logread import LogColumns

        window = self._fresh()
        buffer = LogColumns()
        after = position
        horizon = self.now - self.settle
        settling = False
        while True:
            page = self._page(after)
            for row in page:
                ts = as_utc(row.ts)
                if self.settle and ts > horizon:
                    # Rows logged this recently may still have gaps below them (see
                    # `settle_for`): stop before them, so the cursor never passes a gap.
                    settling = True
                    break
                if (
                    self.duration is not None
                    and window.start is not None
                    and ts >= window.start + self.duration
                ):
                    self._flush(window, buffer)
                    buffer = LogColumns()
                    self._close(window, window.start + self.duration)
                    window = self._fresh()
                if window.start is None:
                    window.start = ts
                    window.first_id = int(row.id)
                window.last_id = int(row.id)
                window.end = ts if window.end is None else max(window.end, ts)
                buffer.add(row.inputs, row.outputs, self.names)
                # An unreadable request counts as one row, so that a log of them still
                # fills windows and moves the cursor instead of being read again forever.
                filled = window.rows + buffer.rows + window.skipped + buffer.skipped
                if self.rows_limit is not None and filled >= self.rows_limit:
                    self._flush(window, buffer)
                    buffer = LogColumns()
                    self._close(window, window.end)
                    window = self._fresh()
            if page:
                after = int(page[-1].id)
                # Rows are added page by page, so memory holds at most one page of values.
                self._flush(window, buffer)
                buffer = LogColumns()
            if settling or len(page) < PAGE_REQUESTS:
                break
        if (
            self.duration is not None
            and window.start is not None
            and horizon >= window.start + self.duration
        ):
            self._close(window, window.start + self.duration)

    def _page(self, after: int) -> list[Any]:
        from sqlalchemy import select

        from seaway.store.schema import request_log as t

        query = (
            select(t.c.id, t.c.ts, t.c.inputs, t.c.outputs)
            .where(
                t.c.model == self.version.model,
                t.c.number == self.version.number,
                t.c.route == "primary",
                t.c.id > after,
            )
            .order_by(t.c.id)
            .limit(PAGE_REQUESTS)
        )
        with self.project.metadata.read() as conn:
            return list(conn.execute(query).all())

    @staticmethod
    def _flush(window: _Window, buffer: Any) -> None:
        window.requests += buffer.requests
        window.skipped += buffer.skipped
        if not buffer.rows:
            return
        window.rows += buffer.rows
        window.features.add(buffer.features)
        if window.predictions is not None and buffer.predictions:
            window.predictions.add(buffer.predictions)

    def _close(self, window: _Window, end: datetime | None) -> None:
        if window.start is None:
            return
        t = Thresholds(psi=self.threshold)
        features = window.features.figures(t, method="psi") if window.rows else {}
        predictions: dict[str, Any] = {}
        if window.predictions is not None and window.predictions.rows:
            predictions = window.predictions.figures(t, method="psi")
        psis = [
            c["psi"]
            for c in (*features.values(), *predictions.values())
            if c.get("psi") is not None
        ]
        score = max(psis) if psis else None
        breached = score is not None and score > self.threshold
        drifted: list[str] = []
        for group in (features, predictions):
            for name, col in group.items():
                over = col["psi"] is not None and col["psi"] > self.threshold
                col["drifted"] = over
                if over and name not in drifted:
                    drifted.append(name)
        figures = {
            "features": features,
            "predictions": predictions,
            "drifted": drifted,
            "threshold": self.threshold,
            "requests": window.requests,
            "skipped": window.skipped,
            "reference_rows": self.reference.rows,
        }
        self.stored.append(
            self._store(window, end or window.start, score, breached, figures, drifted)
        )

    def _store(
        self,
        window: _Window,
        end: datetime,
        score: float | None,
        breached: bool,
        figures: dict[str, Any],
        drifted: list[str],
    ) -> MonitorWindow:
        from sqlalchemy import text

        from seaway.monitor.windows import get_cursor, set_cursor, store_window
        from seaway.store.events import record_event

        v = self.version
        assert window.start is not None

        name = cursor_name(v.model, v.number)

        def write(conn: Connection) -> MonitorWindow:
            if conn.dialect.name == "postgresql":
                # Two monitors scoring the same version take turns here; SQLite write
                # transactions are serialised already.
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:n))"), {"n": name})
            if get_cursor(conn, name)[0] != self.position:
                raise _Raced
            stored = store_window(
                conn,
                model=v.model,
                number=v.number,
                kind="drift",
                window_start=window.start or end,
                window_end=end,
                first_id=window.first_id,
                last_id=window.last_id,
                rows=window.rows,
                score=score,
                breached=breached,
                figures=figures,
            )
            set_cursor(conn, name, window.last_id)
            data = {
                "kind": "drift",
                "window": stored.id,
                "score": score,
                "breached": breached,
                "rows": window.rows,
                "drifted": drifted,
            }
            record_event(conn, "monitor.window", v.subject, data)
            if breached:
                record_event(conn, "monitor.drift", v.subject, data)
            return stored

        stored = self.project.metadata.run_write(write)
        self.position = window.last_id
        return stored


def _has_rows_after(project: Project, model: str, number: int, after: int) -> bool:
    from sqlalchemy import select

    from seaway.store.schema import request_log as t

    with project.metadata.read() as conn:
        found = conn.execute(
            select(t.c.id)
            .where(
                t.c.model == model,
                t.c.number == number,
                t.c.route == "primary",
                t.c.id > after,
            )
            .limit(1)
        ).first()
    return found is not None


def _position(project: Project, model: str, number: int) -> int:
    from seaway.monitor.windows import get_cursor

    with project.metadata.read() as conn:
        position, _ = get_cursor(conn, cursor_name(model, number))
    return position


def score_drift(
    project: Project, model: str, *, now: datetime | None = None
) -> list[MonitorWindow]:
    """Score the windows of `model` completed since the last call; the new windows, in order.

    `now` (default: the current time) closes a duration window whose time is up even when no
    later request has arrived yet. A model without registered versions has nothing to score.
    """
    from seaway._util import as_utc, utcnow
    from seaway.registry.versions import list_versions

    when = as_utc(now) if now is not None else utcnow()
    spec = _monitor_spec(project, model)
    try:
        versions = list_versions(project, model)
    except NotFound:
        return []  # monitored before its first version: nothing to score yet
    out: list[MonitorWindow] = []
    for version in reversed(versions):
        position = _position(project, model, version.number)
        if not _has_rows_after(project, model, version.number, position):
            continue
        reference = _reference(project, version)
        if reference is None:
            continue
        out.extend(_Scorer(project, version, reference, spec, when).run(position))
    return out


# --------------------------------------------------------------------------- status


@dataclass
class VersionDrift:
    """The newest drift window of one version, or why there is none."""

    number: int
    window: MonitorWindow | None
    reason: str | None = None
    pending_requests: int = 0
    """Requests logged after the newest window (not scored yet)."""

    def columns(self) -> list[dict[str, Any]]:
        """One entry per watched feature, then per prediction output."""
        if self.window is None:
            return []
        out = []
        for role in ("features", "predictions"):
            for name, col in (self.window.figures.get(role) or {}).items():
                out.append(
                    {
                        "name": name,
                        "role": "feature" if role == "features" else "prediction",
                        "kind": col.get("kind"),
                        "psi": col.get("psi"),
                        "ks": col.get("ks"),
                        "js": col.get("js"),
                        "chi2_p": col.get("chi2_p"),
                        "drifted": bool(col.get("drifted")),
                    }
                )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.number,
            "window": self.window.to_dict() if self.window is not None else None,
            "reason": self.reason,
            "pending_requests": self.pending_requests,
            "columns": self.columns(),
        }


@dataclass
class DriftStatus:
    """Per served version of a model: its newest drift window."""

    model: str
    environment: str | None
    threshold: float
    window_rows: int | None
    window_duration: str | None
    versions: list[VersionDrift] = field(default_factory=list)

    @property
    def breached(self) -> bool:
        return any(v.window is not None and v.window.breached for v in self.versions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "environment": self.environment,
            "threshold": self.threshold,
            "window": {"rows": self.window_rows, "duration": self.window_duration},
            "breached": self.breached,
            "versions": [v.to_dict() for v in self.versions],
        }


def _environment_versions(project: Project, model: str, environment: str) -> list[int]:
    from seaway.registry import get_version
    from seaway.spec import load_environment

    path = project.root / "environments" / f"{environment}.yaml"
    if not path.is_file():
        alt = path.with_suffix(".yml")
        if not alt.is_file():
            raise NotFound(
                f"no environment {environment!r} (environments/{environment}.yaml)",
                hint="name an environment that has a file under environments/",
            )
        path = alt
    spec = load_environment(path, root=project.root)
    dep = spec.deployments.get(model)
    if dep is None:
        raise UsageError(
            f"environments/{path.name} does not deploy {model}",
            hint=f"it deploys: {', '.join(spec.deployments) or 'nothing'}",
        )
    number = dep.version
    if isinstance(number, str):
        number = get_version(project, f"{model}@{number}").number
    return [int(number)]


def _served_versions(project: Project, model: str, numbers: Iterable[int]) -> list[int]:
    """Versions in the routing table, with windows, or with logged traffic; newest first."""
    from sqlalchemy import select

    from seaway.serving.routes import load_table
    from seaway.store.schema import monitor_windows as w

    found = {d.number for d in load_table(project, [model]).for_model(model)}
    with project.metadata.read() as conn:
        found.update(
            int(n)
            for (n,) in conn.execute(
                select(w.c.number).where(w.c.model == model, w.c.kind == "drift").distinct()
            )
        )
    for number in numbers:
        if number not in found and _has_rows_after(project, model, number, 0):
            found.add(number)
    return sorted(found, reverse=True)


def _pending(project: Project, model: str, number: int, after: int) -> int:
    from sqlalchemy import func, select

    from seaway.store.schema import request_log as t

    with project.metadata.read() as conn:
        count = conn.execute(
            select(func.count())
            .select_from(t)
            .where(
                t.c.model == model,
                t.c.number == number,
                t.c.route == "primary",
                t.c.id > after,
            )
        ).scalar()
    return int(count or 0)


def _why_none(project: Project, model: str, number: int, pending: int, spec: MonitorSpec) -> str:
    from seaway.monitor.reference import load_reference

    if pending == 0:
        return (
            "no traffic logged: the gateway logs a sample of requests "
            "(seaway serve --sample-rate, SEAWAY_SERVE_SAMPLE_RATE)"
        )
    if load_reference(project, model, number) is None:
        return (
            f"no reference profile: build one with `seaway monitor reference {model}@{number}` "
            "(--data FILE when the version has no training data in its lineage)"
        )
    if spec.window.rows is not None:
        size = f"{spec.window.rows} rows"
    elif spec.window.duration is not None:
        size = f"{spec.window.duration}"
    else:
        size = f"{DEFAULT_WINDOW_ROWS} rows"
    return (
        f"{pending} logged requests not scored yet (a window is {size}): "
        f"`seaway monitor check {model}` scores complete windows"
    )


def drift_status(project: Project, model: str, *, environment: str | None = None) -> DriftStatus:
    """The newest drift window of each served version of `model`, or why there is none.

    With `environment`, the version(s) `environments/ENVIRONMENT.yaml` of the working tree
    deploys; otherwise those in the routing table, with windows, or with logged traffic (the
    newest version when there are none).
    """
    from seaway.monitor.windows import list_windows
    from seaway.registry.versions import list_versions

    spec = _monitor_spec(project, model)
    registered = [v.number for v in list_versions(project, model)]
    if environment is not None:
        numbers = _environment_versions(project, model, environment)
    else:
        numbers = _served_versions(project, model, registered) or registered[:1]
    status = DriftStatus(
        model=model,
        environment=environment,
        threshold=_threshold(spec),
        window_rows=spec.window.rows,
        window_duration=str(spec.window.duration) if spec.window.duration else None,
    )
    for number in numbers:
        newest = list_windows(project, model, kind="drift", number=number, limit=1)
        window = newest[0] if newest else None
        pending = _pending(project, model, number, _position(project, model, number))
        reason = None if window is not None else _why_none(project, model, number, pending, spec)
        status.versions.append(VersionDrift(number, window, reason, pending))
    return status
