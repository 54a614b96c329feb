"""The drift report: one HTML file showing how a served model's live data moved.

    path = render_report(project, "churn", Path("churn-drift.html"))
    render_report(project, "churn", out, number=7, since=last_week, top=8)

The file stands alone: its charts are inline SVG and its styles inline CSS, with no script,
font, image or link to anything outside it, so it can be mailed, attached to an incident or
archived as it is and still opens years later. It reads only the monitor's stored windows
(`seaway.monitor.windows`), never the request log or the training data, so drawing it costs
the same whatever the traffic was.

What it shows, top to bottom:

- the model, the versions the windows cover, the period, how many windows there are and how
  many breached their threshold;
- drift over time: the largest PSI of each window (the figure a drift trigger compares),
  then one small chart per watched feature and prediction output, with the PSI threshold as
  a dashed line, the windows where that column drifted marked in red and time (UTC) along the
  x axis; drifted columns come first;
- the newest window: PSI, KS statistic and p-value, Jensen-Shannon distance and chi-square
  with its p-value for every column, drifted ones first;
- for the `top` most drifted features of the newest window, and for each prediction output,
  the reference's share of every bin or category beside the current window's;
- live quality over time (accuracy, AUC or MAE from feedback labels), when quality windows
  exist;
- the newest windows as a list.

PSI compares the share of rows in each bin: under 0.1 is usually noise, above 0.25 a large
move. A column is marked drifted in a window when its PSI is above the window's threshold
(`monitoring.MODEL.on_drift.psi_above`, 0.2 by default; see `seaway.monitor.drift`).

With no window to show, the report says so and why: no reference profile to compare with, no
logged request, or logged requests that are not scored yet.
"""

from __future__ import annotations

import html
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seaway._util import as_utc, utcnow
from seaway.errors import InputError, UsageError
from seaway.monitor.windows import MonitorWindow, list_windows

if TYPE_CHECKING:
    from seaway.project import Project

__all__ = ["render_report", "report_html"]

# The newest windows drawn when no `since` narrows them: at one window a few seconds a busy
# model has tens of thousands a day, more than a chart can show or a browser wants to lay out.
MAX_WINDOWS = 1000
# Windows listed at the end of the report, newest first.
LISTED_WINDOWS = 20
# Points drawn as dots (with a tooltip) up to this many windows; beyond, only the line and
# the marked windows, which keeps a long history's file small.
DOTS_UP_TO = 150
# Bars per distribution chart; rarer categories are left out, and the chart says so.
MAX_BARS = 30

DASH = "\u2013"  # an en dash: a missing figure, or a range of values
BLUE = "#2563eb"
RED = "#dc2626"
GREY = "#64748b"
REFERENCE = "#94a3b8"
CURRENT = "#f97316"

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
  color: #0f172a; background: #fff; margin: 0 auto; padding: 24px; max-width: 1180px;
  line-height: 1.45; font-size: 14px; }
h1 { font-size: 22px; margin: 0 0 12px; }
h2 { font-size: 18px; margin: 32px 0 8px; border-bottom: 1px solid #e2e8f0; padding-bottom: 4px; }
h3 { font-size: 14px; margin: 0 0 4px; font-weight: 600; }
dl.summary { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
dl.summary dt { color: #475569; }
dl.summary dd { margin: 0; }
.breached { color: #b91c1c; font-weight: 600; }
.ok { color: #15803d; }
.muted { color: #64748b; }
.empty { background: #f8fafc; border: 1px solid #e2e8f0; border-radius: 6px; padding: 12px 16px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 16px; }
figure { margin: 0; border: 1px solid #e2e8f0; border-radius: 6px; padding: 8px 10px; }
figure.wide { margin: 8px 0 16px; }
figure.drifted { border-color: #fca5a5; }
figcaption { font-weight: 600; margin-bottom: 4px; overflow-wrap: anywhere; }
figcaption .tag { font-weight: 400; font-size: 12px; margin-left: 6px; }
svg { display: block; width: 100%; height: auto; }
svg text { font-size: 11px; fill: #475569; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: right; padding: 3px 8px; border-bottom: 1px solid #f1f5f9; }
th { color: #475569; font-weight: 600; border-bottom: 1px solid #cbd5e1; }
th:first-child, td:first-child, .text { text-align: left; overflow-wrap: anywhere; }
tr.drifted td:first-child { color: #b91c1c; font-weight: 600; }
.legend { font-size: 12px; color: #475569; margin: 2px 0 6px; }
.swatch { display: inline-block; width: 10px; height: 10px; margin: 0 4px 0 10px;
  vertical-align: -1px; border-radius: 2px; }
footer { margin-top: 40px; color: #64748b; font-size: 12px; }
"""


# --------------------------------------------------------------------------- small helpers


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any) -> float | None:
    """A finite float from a figure, or None (missing, null, NaN, not a number)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _fmt(value: Any, digits: int = 3) -> str:
    v = _num(value)
    if v is None:
        return DASH
    if v == 0:
        return "0"
    if abs(v) < 10 ** -(digits + 1) or abs(v) >= 10**7:
        return f"{v:.{max(digits - 1, 1)}e}"
    return f"{v:.{digits}g}" if abs(v) < 1000 else f"{v:,.0f}"


def _fmt_p(value: Any) -> str:
    v = _num(value)
    if v is None:
        return DASH
    if v < 1e-16:
        return "<1e-16"
    return f"{v:.2g}"


def _when(ts: datetime) -> str:
    return as_utc(ts).strftime("%Y-%m-%d %H:%M:%S UTC")


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _versions(numbers: Iterable[int]) -> str:
    found = sorted(set(numbers))
    return ", ".join(str(n) for n in found) if found else "none"


# --------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class _Column:
    """One feature or prediction output of one drift window."""

    name: str
    role: str  # "feature" or "prediction"
    stats: Mapping[str, Any]

    @property
    def key(self) -> tuple[str, str]:
        return (self.role, self.name)

    @property
    def label(self) -> str:
        return self.name if self.role == "feature" else f"prediction: {self.name}"

    @property
    def drifted(self) -> bool:
        return bool(self.stats.get("drifted"))

    @property
    def psi(self) -> float | None:
        return _num(self.stats.get("psi"))


def _columns(window: MonitorWindow) -> list[_Column]:
    out: list[_Column] = []
    for role, key in (("feature", "features"), ("prediction", "predictions")):
        block = window.figures.get(key)
        if not isinstance(block, Mapping):
            continue
        for name, stats in block.items():
            if isinstance(stats, Mapping):
                out.append(_Column(str(name), role, stats))
    return out


def _rank(columns: Iterable[_Column]) -> list[_Column]:
    """Drifted first, then by PSI, largest first (columns without one last), then by name."""
    return sorted(
        columns,
        key=lambda c: (not c.drifted, c.psi is None, -(c.psi or 0.0), c.name),
    )


def _threshold(window: MonitorWindow) -> float | None:
    return _num(window.figures.get("threshold"))


# --------------------------------------------------------------------------- SVG charts


def _nice_step(span: float, ticks: int) -> float:
    raw = span / max(ticks, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def _y_ticks(lo: float, hi: float, ticks: int = 4) -> list[float]:
    """Round tick values covering `lo` to `hi`; the first and last are the axis' ends."""
    if hi <= lo:
        hi = lo + (abs(lo) * 0.1 or 1.0)
    step = _nice_step(hi - lo, ticks)
    values = [math.floor(lo / step + 1e-9) * step]
    while values[-1] < hi - 1e-12:
        values.append(round(values[-1] + step, 12))
    return [round(v, 12) for v in values]


@dataclass(frozen=True)
class _Frame:
    """The plotting area of one chart and its scales: x in epoch seconds, y from y0 to y1."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    t0: float
    t1: float
    y0: float
    y1: float

    def x(self, t: float) -> float:
        inner = self.width - self.left - self.right
        if self.t1 <= self.t0:
            return self.left + inner / 2
        return self.left + (t - self.t0) / (self.t1 - self.t0) * inner

    def y(self, v: float) -> float:
        inner = self.height - self.top - self.bottom
        clipped = min(max(v, self.y0), self.y1)
        return self.top + inner - (clipped - self.y0) / (self.y1 - self.y0) * inner


def _time_domain(times: Sequence[datetime]) -> tuple[float, float]:
    stamps = [as_utc(t).timestamp() for t in times]
    lo, hi = min(stamps), max(stamps)
    if hi - lo < 1.0:
        # One window, or several at one instant: a span around it, so the point is centred.
        return lo - 1800.0, hi + 1800.0
    pad = (hi - lo) * 0.02
    return lo - pad, hi + pad


def _time_label(ts: float, span: float) -> str:
    dt = datetime.fromtimestamp(ts, tz=UTC)
    if span <= 2 * 3600:
        return dt.strftime("%H:%M:%S")
    if span <= 3 * 86400:
        return dt.strftime("%m-%d %H:%M")
    return dt.strftime("%Y-%m-%d")


def _axes(frame: _Frame, y_ticks: Sequence[float], y_label: str) -> list[str]:
    parts: list[str] = []
    x0, x1 = frame.left, frame.width - frame.right
    for v in y_ticks:
        y = frame.y(v)
        parts.append(
            f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="#e2e8f0" '
            'stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{x0 - 4}" y="{y + 3.5:.1f}" text-anchor="end">{_e(_fmt(v, 2))}</text>'
        )
    y_base = frame.height - frame.bottom
    parts.append(
        f'<line x1="{x0}" y1="{y_base}" x2="{x1}" y2="{y_base}" stroke="#94a3b8" stroke-width="1"/>'
    )
    span = frame.t1 - frame.t0
    count = 4 if frame.width >= 600 else 3
    for i in range(count):
        t = frame.t0 + span * (i + 0.5) / count
        parts.append(
            f'<text x="{frame.x(t):.1f}" y="{y_base + 14}" text-anchor="middle">'
            f"{_e(_time_label(t, span))}</text>"
        )
    parts.append(f'<text x="{x0}" y="{frame.top - 4}" text-anchor="start">{_e(y_label)}</text>')
    return parts


def _path(points: Sequence[tuple[float, float] | None]) -> str:
    """An SVG path through the points, broken where a point is missing."""
    out: list[str] = []
    pen_up = True
    for p in points:
        if p is None:
            pen_up = True
            continue
        out.append(f"{'M' if pen_up else 'L'}{p[0]:.1f},{p[1]:.1f}")
        pen_up = False
    return " ".join(out)


def line_chart(
    times: Sequence[datetime],
    values: Sequence[float | None],
    *,
    domain: tuple[float, float],
    label: str,
    y_label: str = "PSI",
    thresholds: Sequence[float | None] | None = None,
    marked: Sequence[bool] | None = None,
    tips: Sequence[str] | None = None,
    versions: Sequence[int] | None = None,
    from_zero: bool = True,
    width: int = 420,
    height: int = 150,
) -> str:
    """A line of `values` over `times` as an inline SVG element.

    `thresholds` (one per point) draws a dashed red line, `marked` points are drawn red,
    `tips` become the points' tooltips and `versions` (one per point) marks where the
    version changes. The y axis covers the values and the thresholds, from 0 unless
    `from_zero` is false (a quality metric moving between 0.85 and 0.9 would be a flat line
    otherwise); the x axis spans `domain` (epoch seconds), shared by a report's charts.
    """
    limits = [v for v in (thresholds or []) if v is not None]
    finite = [v for v in values if v is not None]
    if from_zero:
        ticks = _y_ticks(0.0, max([*finite, *(t * 1.25 for t in limits), 0.0]) or 0.1)
    else:
        seen = finite + limits or [0.0]
        pad = (max(seen) - min(seen)) * 0.1 or abs(max(seen)) * 0.05 or 0.1
        ticks = _y_ticks(min(seen) - pad, max(seen) + pad)
    frame = _Frame(width, height, 44, 10, 16, 20, domain[0], domain[1], ticks[0], ticks[-1])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{_e(label)}">',
        *_axes(frame, ticks, y_label),
    ]
    stamps = [as_utc(t).timestamp() for t in times]
    if limits:
        if len(set(limits)) == 1:
            y = frame.y(limits[0])
            parts.append(
                f'<line class="threshold" x1="{frame.left}" y1="{y:.1f}" '
                f'x2="{width - frame.right}" y2="{y:.1f}" stroke="{RED}" stroke-width="1" '
                f'stroke-dasharray="4 3"><title>threshold {_e(_fmt(limits[0]))}</title></line>'
            )
        else:
            steps = [
                None if t is None else (frame.x(s), frame.y(t))
                for s, t in zip(stamps, thresholds or [], strict=False)
            ]
            parts.append(
                f'<path class="threshold" d="{_path(steps)}" fill="none" stroke="{RED}" '
                'stroke-width="1" stroke-dasharray="4 3"><title>threshold</title></path>'
            )
    if versions is not None and len(set(versions)) > 1:
        for i in range(1, len(versions)):
            if versions[i] == versions[i - 1]:
                continue
            x = (frame.x(stamps[i - 1]) + frame.x(stamps[i])) / 2
            parts.append(
                f'<line class="version" x1="{x:.1f}" y1="{frame.top}" x2="{x:.1f}" '
                f'y2="{height - frame.bottom}" stroke="{GREY}" stroke-dasharray="1 3"/>'
                f'<text x="{x + 3:.1f}" y="{frame.top + 9}">v{versions[i]}</text>'
            )
    points = [
        None if v is None else (frame.x(s), frame.y(v)) for s, v in zip(stamps, values, strict=True)
    ]
    parts.append(
        f'<path class="series" d="{_path(points)}" fill="none" stroke="{BLUE}" '
        'stroke-width="1.5" stroke-linejoin="round"/>'
    )
    flags = list(marked or [False] * len(values))
    dots = len(values) <= DOTS_UP_TO
    for i, p in enumerate(points):
        if p is None or not (dots or flags[i]):
            continue
        colour, radius = (RED, 3.5) if flags[i] else (BLUE, 2.2)
        tip = f"<title>{_e(tips[i])}</title>" if tips else ""
        cls = "mark" if flags[i] else "dot"
        parts.append(
            f'<circle class="{cls}" cx="{p[0]:.1f}" cy="{p[1]:.1f}" r="{radius}" '
            f'fill="{colour}">{tip}</circle>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _bin_labels(stats: Mapping[str, Any], bins: int) -> list[str]:
    """Names of a column's bins: its categories, or value ranges from its bin edges."""
    labels = stats.get("labels")
    if isinstance(labels, list) and len(labels) == bins:
        return ["(missing)" if v is None else str(v) for v in labels]
    edges = [_num(v) for v in stats.get("edges") or []]
    if edges and all(v is not None for v in edges):
        e = [float(v) for v in edges if v is not None]
        if bins == len(e) + 1:
            return (
                [f"< {_fmt(e[0])}"]
                + [f"{_fmt(a)} {DASH} {_fmt(b)}" for a, b in pairwise(e)]
                + [f"≥ {_fmt(e[-1])}"]
            )
        if bins == len(e) - 1:
            return [f"{_fmt(a)} {DASH} {_fmt(b)}" for a, b in pairwise(e)]
    return [f"bin {i + 1}" for i in range(bins)]


def _shares(counts: Sequence[Any]) -> list[float]:
    values = [max(_num(c) or 0.0, 0.0) for c in counts]
    total = sum(values)
    return [v / total if total else 0.0 for v in values]


def bar_chart(
    labels: Sequence[str],
    reference: Sequence[float],
    current: Sequence[float],
    *,
    label: str,
    width: int = 400,
    height: int = 200,
) -> str:
    """Reference and current shares side by side per bin or category, as inline SVG."""
    n = len(labels)
    ticks = _y_ticks(0.0, max([*reference, *current, 0.01]))
    y_top = ticks[-1]
    left, right, top, bottom = 40, 8, 22, 58
    inner_w = width - left - right
    inner_h = height - top - bottom
    slot = inner_w / max(n, 1)
    bar = max(min(slot * 0.38, 28.0), 1.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{_e(label)}">'
    ]

    def y(v: float) -> float:
        return top + inner_h - min(v, y_top) / y_top * inner_h

    for v in ticks:
        parts.append(
            f'<line x1="{left}" y1="{y(v):.1f}" x2="{width - right}" y2="{y(v):.1f}" '
            'stroke="#e2e8f0" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{left - 4}" y="{y(v) + 3.5:.1f}" text-anchor="end">'
            f"{_e(f'{v:.0%}' if y_top >= 0.05 else f'{v:.1%}')}</text>"
        )
    parts.append(f'<text x="{left - 34}" y="{top - 10}">share of rows</text>')
    base = top + inner_h
    for i, name in enumerate(labels):
        cx = left + slot * (i + 0.5)
        for offset, share, colour, who in (
            (-bar, reference[i], REFERENCE, "reference"),
            (0.0, current[i], CURRENT, "current"),
        ):
            h = base - y(share)
            parts.append(
                f'<rect class="{who}" x="{cx + offset:.1f}" y="{base - h:.1f}" '
                f'width="{bar:.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{_e(name)}: {_e(who)} {share:.2%}</title></rect>"
            )
        short = name if len(name) <= 16 else name[:15] + "…"
        parts.append(
            f'<text x="{cx:.1f}" y="{base + 10}" text-anchor="end" '
            f'transform="rotate(-40 {cx:.1f} {base + 10})">{_e(short)}</text>'
        )
    parts.append(
        f'<line x1="{left}" y1="{base}" x2="{width - right}" y2="{base}" stroke="#94a3b8"/>'
    )
    parts.append("</svg>")
    return "".join(parts)


# --------------------------------------------------------------------------- sections


def _legend(*items: tuple[str, str]) -> str:
    return (
        '<div class="legend">'
        + "".join(f'<span class="swatch" style="background:{c}"></span>{_e(t)}' for c, t in items)
        + "</div>"
    )


def _summary(
    model: str,
    drift: Sequence[MonitorWindow],
    quality: Sequence[MonitorWindow],
    generated: datetime,
    total: int,
    number: int | None,
    since: datetime | None,
) -> str:
    windows = [*drift, *quality]
    breached = sum(1 for w in windows if w.breached)
    if windows:
        start = min(w.window_start for w in windows)
        end = max(w.window_end for w in windows)
        period = f"{_e(_when(start))} to {_e(_when(end))}"
    else:
        period = "no window yet"
    if since is not None:
        period += f" (windows ending after {_e(_when(since))})"
    shown = f"{_plural(len(drift), 'drift window')}, {_plural(len(quality), 'quality window')}"
    if total > len(windows):
        shown += f" (the newest {len(windows):,} of {total:,})"
    versions = _versions(w.number for w in windows) if windows else "none"
    if number is not None:
        versions = f"{number} (chosen)"
    cls = "breached" if breached else "ok"
    split = ""
    if drift and quality:
        d = sum(1 for w in drift if w.breached)
        q = sum(1 for w in quality if w.breached)
        split = f": {d:,} of {len(drift):,} drift, {q:,} of {len(quality):,} quality"
    return (
        "<header>"
        f'<h1>Drift report: <span class="model">{_e(model)}</span></h1>'
        '<dl class="summary">'
        f"<dt>Model</dt><dd>{_e(model)}</dd>"
        f"<dt>Versions covered</dt><dd>{_e(versions)}</dd>"
        f"<dt>Period</dt><dd>{period}</dd>"
        f"<dt>Windows</dt><dd>{_e(shown)}</dd>"
        f'<dt>Breached</dt><dd class="{cls}">{breached:,} of {len(windows):,}{split}</dd>'
        f"<dt>Generated</dt><dd>{_e(_when(generated))}</dd>"
        "</dl></header>"
    )


def _tip(w: MonitorWindow, value: float | None, what: str) -> str:
    return f"window {w.id} (version {w.number}), ended {_when(w.window_end)}: {what} {_fmt(value)}"


def _drift_over_time(drift: Sequence[MonitorWindow], domain: tuple[float, float]) -> str:
    times = [w.window_end for w in drift]
    thresholds = [_threshold(w) for w in drift]
    overview = line_chart(
        times,
        [_num(w.score) for w in drift],
        domain=domain,
        label="largest PSI per window",
        y_label="largest PSI",
        thresholds=thresholds,
        marked=[w.breached for w in drift],
        tips=[_tip(w, w.score, "largest PSI") for w in drift],
        versions=[w.number for w in drift],
        width=1100,
        height=200,
    )
    parts = [
        '<section id="drift-over-time"><h2>Drift over time</h2>',
        '<figure class="wide overview"><figcaption>Largest PSI per window</figcaption>',
        _legend((BLUE, "largest PSI"), (RED, "breached window / threshold (dashed)")),
        overview,
        "</figure>",
    ]
    # Columns in the order of the newest window (drifted first), then any that only older
    # windows had (a version with other inputs).
    order: list[tuple[str, str]] = []
    labels: dict[tuple[str, str], str] = {}
    for w in reversed(drift):
        for c in _rank(_columns(w)):
            if c.key not in labels:
                order.append(c.key)
                labels[c.key] = c.label
    by_window = [{c.key: c for c in _columns(w)} for w in drift]
    newest = by_window[-1]
    parts.append('<div class="grid">')
    for key in order:
        values: list[float | None] = []
        marked: list[bool] = []
        tips: list[str] = []
        for w, cols in zip(drift, by_window, strict=True):
            col = cols.get(key)
            psi = col.psi if col is not None else None
            values.append(psi)
            marked.append(bool(col is not None and col.drifted))
            tips.append(_tip(w, psi, "PSI") + (", drifted" if marked[-1] else ""))
        now = newest.get(key)
        drifted = now is not None and now.drifted
        tag = '<span class="tag breached">drifted in the newest window</span>' if drifted else ""
        parts.append(
            f'<figure class="column-chart{" drifted" if drifted else ""}" '
            f'data-column="{_e(key[1])}" data-role="{_e(key[0])}">'
            f"<figcaption>{_e(labels[key])}{tag}</figcaption>"
            + line_chart(
                [w.window_end for w in drift],
                values,
                domain=domain,
                label=f"PSI of {labels[key]} per window",
                thresholds=thresholds,
                marked=marked,
                tips=tips,
            )
            + "</figure>"
        )
    parts.append("</div></section>")
    return "".join(parts)


def _statistics_table(window: MonitorWindow) -> str:
    columns = _rank(_columns(window))
    threshold = _threshold(window)
    skipped = window.figures.get("skipped")
    requests = window.figures.get("requests")
    about = [
        f"window {window.id}, version {window.number}",
        f"{_when(window.window_start)} to {_when(window.window_end)}",
        _plural(window.rows, "row"),
    ]
    if isinstance(requests, int):
        about.append(_plural(requests, "request"))
    if isinstance(skipped, int) and skipped:
        about.append(f"{skipped:,} logged requests unreadable and skipped")
    if threshold is not None:
        about.append(f"PSI threshold {_fmt(threshold)}")
    verdict = (
        f'<span class="breached">breached: {_e(", ".join(window.drifted))}</span>'
        if window.breached
        else '<span class="ok">within the threshold</span>'
    )
    rows = []
    for c in columns:
        s = c.stats
        rows.append(
            f'<tr class="{"drifted" if c.drifted else "clean"}">'
            f"<td>{_e(c.label)}</td>"
            f'<td class="text">{_e(s.get("kind", ""))}</td>'
            f"<td>{_e(_fmt(s.get('psi')))}</td>"
            f"<td>{_e(_fmt(s.get('ks')))}</td>"
            f"<td>{_e(_fmt_p(s.get('ks_p')))}</td>"
            f"<td>{_e(_fmt(s.get('js')))}</td>"
            f"<td>{_e(_fmt(s.get('chi2')))}</td>"
            f"<td>{_e(_fmt_p(s.get('chi2_p')))}</td>"
            f'<td class="text">{"yes" if c.drifted else "no"}</td>'
            "</tr>"
        )
    if not rows:
        rows.append('<tr><td colspan="9" class="muted">no column statistics stored</td></tr>')
    return (
        '<section id="newest-window"><h2>Newest window</h2>'
        f"<p>{_e('; '.join(about))}. {verdict}</p>"
        '<table class="statistics"><thead><tr><th>column</th><th class="text">kind</th>'
        "<th>PSI</th><th>KS</th><th>KS p</th><th>JS distance</th><th>chi-square</th>"
        '<th>chi-square p</th><th class="text">drifted</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table></section>"
    )


def _distribution(column: _Column) -> str:
    s = column.stats
    ref, cur = s.get("reference"), s.get("current")
    if not isinstance(ref, list) or not isinstance(cur, list) or len(ref) != len(cur) or not ref:
        return (
            f'<figure class="distribution" data-column="{_e(column.name)}">'
            f"<figcaption>{_e(column.label)}</figcaption>"
            '<p class="muted">no bin counts stored for this column</p></figure>'
        )
    labels = _bin_labels(s, len(ref))
    ref_s, cur_s = _shares(ref), _shares(cur)
    note = ""
    if len(labels) > MAX_BARS:
        keep = sorted(sorted(range(len(labels)), key=lambda i: -max(ref_s[i], cur_s[i]))[:MAX_BARS])
        note = (
            f'<p class="muted">the {MAX_BARS} largest of {len(labels)} bins; '
            f"the others hold {1 - sum(ref_s[i] for i in keep):.1%} of the reference and "
            f"{1 - sum(cur_s[i] for i in keep):.1%} of the window</p>"
        )
        labels = [labels[i] for i in keep]
        ref_s = [ref_s[i] for i in keep]
        cur_s = [cur_s[i] for i in keep]
    tag = ' <span class="tag breached">drifted</span>' if column.drifted else ""
    return (
        f'<figure class="distribution{" drifted" if column.drifted else ""}" '
        f'data-column="{_e(column.name)}" data-role="{_e(column.role)}">'
        f"<figcaption>{_e(column.label)}{tag} "
        f'<span class="tag muted">PSI {_e(_fmt(column.psi))}</span></figcaption>'
        + _legend((REFERENCE, "reference"), (CURRENT, "current window"))
        + bar_chart(labels, ref_s, cur_s, label=f"distribution of {column.label}")
        + note
        + "</figure>"
    )


def _distributions(window: MonitorWindow, top: int) -> str:
    ranked = _rank(_columns(window))
    features = [c for c in ranked if c.role == "feature"][:top]
    predictions = [c for c in ranked if c.role == "prediction"]
    if not features and not predictions:
        return ""
    parts = ['<section id="distributions">']
    if features:
        parts.append(
            f"<h2>Most drifted features of the newest window (top {len(features)})</h2>"
            '<div class="grid">' + "".join(_distribution(c) for c in features) + "</div>"
        )
    if predictions:
        parts.append(
            "<h2>Predictions in the newest window</h2>"
            '<div class="grid">' + "".join(_distribution(c) for c in predictions) + "</div>"
        )
    parts.append("</section>")
    return "".join(parts)


def _quality(quality: Sequence[MonitorWindow], domain: tuple[float, float]) -> str:
    newest = quality[-1]
    metric = str(newest.figures.get("metric") or "metric")
    limits = [_num(w.figures.get("threshold", w.figures.get("below"))) for w in quality]
    chart = line_chart(
        [w.window_end for w in quality],
        [_num(w.score) for w in quality],
        domain=domain,
        label=f"live {metric} per window",
        y_label=metric,
        thresholds=limits,
        marked=[w.breached for w in quality],
        tips=[_tip(w, w.score, metric) for w in quality],
        versions=[w.number for w in quality],
        from_zero=False,
        width=1100,
        height=200,
    )
    cells = [
        ("window", f"{newest.id} (version {newest.number})"),
        ("ended", _when(newest.window_end)),
        ("labels", f"{newest.figures.get('labels', newest.rows)}"),
        (metric, _fmt(newest.score)),
    ]
    for name in ("accuracy", "auc", "mae"):
        if name != metric and _num(newest.figures.get(name)) is not None:
            cells.append((name, _fmt(newest.figures.get(name))))
    cells.append(("breached", "yes" if newest.breached else "no"))
    head = "".join(f"<th>{_e(k)}</th>" for k, _ in cells)
    body = "".join(f"<td>{_e(v)}</td>" for _, v in cells)
    return (
        '<section id="quality"><h2>Live quality over time</h2>'
        '<figure class="wide quality"><figcaption>'
        f"{_e(metric)} per window, from feedback labels</figcaption>"
        + _legend((BLUE, metric), (RED, "breached window / threshold (dashed)"))
        + chart
        + "</figure><h3>Newest quality window</h3>"
        f'<table class="quality"><thead><tr>{head}</tr></thead><tbody><tr>{body}</tr>'
        "</tbody></table></section>"
    )


def _window_list(windows: Sequence[MonitorWindow]) -> str:
    newest = sorted(windows, key=lambda w: (w.window_end, w.id), reverse=True)[:LISTED_WINDOWS]
    rows = []
    for w in newest:
        what = ", ".join(w.drifted) if w.kind == "drift" else str(w.figures.get("metric", ""))
        rows.append(
            f'<tr class="{"drifted" if w.breached else "clean"}">'
            f"<td>{w.id}</td>"
            f'<td class="text">{_e(w.kind)}</td>'
            f"<td>{w.number}</td>"
            f'<td class="text">{_e(_when(w.window_end))}</td>'
            f"<td>{w.rows:,}</td>"
            f"<td>{_e(_fmt(w.score))}</td>"
            f'<td class="text">{"yes" if w.breached else "no"}</td>'
            f'<td class="text">{_e(what)}</td></tr>'
        )
    return (
        f'<section id="windows"><h2>Newest windows ({len(newest)} of {len(windows):,})</h2>'
        '<table class="windows"><thead><tr><th>window</th><th class="text">kind</th>'
        '<th>version</th><th class="text">ended</th><th>rows</th><th>score</th>'
        '<th class="text">breached</th><th class="text">drifted / metric</th></tr></thead>'
        "<tbody>" + "".join(rows) + "</tbody></table></section>"
    )


def report_html(
    model: str,
    drift: Sequence[MonitorWindow],
    quality: Sequence[MonitorWindow] = (),
    *,
    top: int = 5,
    empty_reasons: Sequence[str] = (),
    generated: datetime | None = None,
    total: int | None = None,
    number: int | None = None,
    since: datetime | None = None,
) -> str:
    """The report's HTML for windows already read (oldest first); see `render_report`.

    `empty_reasons` explain, when there is no drift window, why not; `total` is how many
    windows exist when only the newest are passed.
    """
    if top < 0:
        raise UsageError(f"top must be 0 or more, not {top}")
    generated = as_utc(generated) if generated is not None else utcnow()
    drift = sorted(drift, key=lambda w: (w.window_end, w.id))
    quality = sorted(quality, key=lambda w: (w.window_end, w.id))
    windows = [*drift, *quality]
    body = [
        _summary(
            model,
            drift,
            quality,
            generated,
            total if total is not None else len(windows),
            number,
            since,
        )
    ]
    domain = _time_domain([w.window_end for w in windows]) if windows else (0.0, 1.0)
    if drift:
        body.append(_drift_over_time(drift, domain))
        body.append(_statistics_table(drift[-1]))
        body.append(_distributions(drift[-1], top))
    else:
        reasons = "".join(f"<li>{_e(r)}</li>" for r in empty_reasons)
        body.append(
            '<section id="drift-over-time"><h2>Drift over time</h2>'
            '<div class="empty"><p><strong>No drift window to show yet.</strong></p>'
            + (f"<ul>{reasons}</ul>" if reasons else "")
            + "</div></section>"
        )
    if quality:
        body.append(_quality(quality, domain))
    if windows:
        body.append(_window_list(windows))
    body.append(
        "<footer>PSI (population stability index) compares the share of rows in each bin of "
        "the reference with the window's: under 0.1 is usually noise, above 0.25 a large move. "
        "KS is the largest distance between the two cumulative distributions (numeric "
        "columns), JS the Jensen-Shannon distance (0 to 1), chi-square tests the bin counts. "
        "A column is marked drifted in a window when its PSI is above that window's "
        "threshold. Times are UTC.</footer>"
    )
    title = f"Drift report: {model}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head>"
        "<body>" + "".join(body) + "</body></html>\n"
    )


# --------------------------------------------------------------------------- the store


def _check_model(project: Project, model: str, number: int | None) -> None:
    from sqlalchemy import select

    from seaway.store.schema import model_versions, models

    with project.metadata.read() as conn:
        row = conn.execute(select(models.c.id).where(models.c.name == model)).first()
        if row is None:
            known = [r.name for r in conn.execute(select(models.c.name).order_by(models.c.name))]
            raise InputError(
                f"no model named {model!r} to report on",
                hint=(
                    f"registered models: {', '.join(known[:20])}"
                    if known
                    else "register a model first; see `seaway register --help`"
                ),
            )
        if number is None:
            return
        found = conn.execute(
            select(model_versions.c.number).where(
                model_versions.c.model_id == row.id, model_versions.c.number == number
            )
        ).first()
        if found is None:
            raise InputError(
                f"model {model!r} has no version {number}",
                hint=f"leave the version out to report on every version of {model}",
            )


def _empty_reasons(
    project: Project, model: str, number: int | None, since: datetime | None
) -> list[str]:
    """Why a model has no drift window, in the order a user would fix it."""
    from sqlalchemy import func, select

    from seaway.store.schema import monitor_windows, reference_profiles, request_log

    who = model if number is None else f"{model}@{number}"
    reasons: list[str] = []
    with project.metadata.read() as conn:
        ref = select(reference_profiles.c.number).where(reference_profiles.c.model == model)
        logged = select(request_log.c.id).where(request_log.c.model == model)
        older = (
            select(func.count())
            .select_from(monitor_windows)
            .where(monitor_windows.c.model == model, monitor_windows.c.kind == "drift")
        )
        if number is not None:
            ref = ref.where(reference_profiles.c.number == number)
            logged = logged.where(request_log.c.number == number)
            older = older.where(monitor_windows.c.number == number)
        has_reference = conn.execute(ref.limit(1)).first() is not None
        has_requests = conn.execute(logged.limit(1)).first() is not None
        before = int(conn.execute(older).scalar() or 0) if since is not None else 0
    if before and since is not None:
        reasons.append(
            f"no drift window of {who} ended after {_when(since)}"
            f"; {before:,} older ones exist: report from an earlier time to see them"
        )
        return reasons
    if not has_reference:
        target = who if number is not None else f"{model}@N"
        reasons.append(
            f"no reference profile is stored for {who}: the monitor compares live requests "
            "with the profile of the version's training data, so it has nothing to compare "
            f"with yet; build one with `seaway monitor reference {target} --data FILE`"
        )
    if not has_requests:
        reasons.append(
            f"the gateway has logged no request of {who}: deploy it, serve it with a sample "
            "rate above 0 (`seaway serve --sample-rate`) and send it requests"
        )
    if has_reference and has_requests:
        reasons.append(
            f"requests of {who} are logged but not scored into a window yet: a window closes "
            f"once it holds the rows set under `monitoring.{model}.window` in seaway.yaml, "
            f"when the monitor scores them (`seaway monitor check {model}`)"
        )
    return reasons


def _count_windows(project: Project, model: str, number: int | None, since: datetime | None) -> int:
    from sqlalchemy import func, select

    from seaway.store.schema import monitor_windows as t

    query = select(func.count()).select_from(t).where(t.c.model == model)
    if number is not None:
        query = query.where(t.c.number == number)
    if since is not None:
        query = query.where(t.c.window_end > since)
    with project.metadata.read() as conn:
        return int(conn.execute(query).scalar() or 0)


def _write(out: Path, text: str) -> None:
    # Written beside the target and renamed, so a reader never sees half a report.
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".html", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def render_report(
    project: Project,
    model: str,
    out: Path,
    *,
    number: int | None = None,
    since: datetime | None = None,
    top: int = 5,
    max_windows: int = MAX_WINDOWS,
) -> Path:
    """Write the drift report of `model` to `out` and return its path.

    `number` keeps one version's windows, `since` the windows that ended after it, `top`
    how many of the newest window's most drifted features get their distributions drawn,
    and `max_windows` how many of the newest windows of each kind are drawn. When `out` is
    a folder, the file is `<model>-drift-report.html` in it. An unknown model (or version)
    is an InputError; a model without windows gets a report that says why it has none.
    """
    if top < 0:
        raise UsageError(f"--top must be 0 or more, not {top}")
    if max_windows < 1:
        raise UsageError(f"max_windows must be at least 1, not {max_windows}")
    out = Path(out)
    if out.is_dir():
        out = out / f"{model}-drift-report.html"
    since = as_utc(since) if since is not None else None
    _check_model(project, model, number)
    drift = list_windows(
        project, model, kind="drift", number=number, since=since, limit=max_windows
    )
    quality = list_windows(
        project, model, kind="quality", number=number, since=since, limit=max_windows
    )
    total = len(drift) + len(quality)
    if len(drift) == max_windows or len(quality) == max_windows:
        total = _count_windows(project, model, number, since)
    reasons = [] if drift else _empty_reasons(project, model, number, since)
    text = report_html(
        model,
        drift,
        quality,
        top=top,
        empty_reasons=reasons,
        total=total,
        number=number,
        since=since,
    )
    _write(out, text)
    return out
