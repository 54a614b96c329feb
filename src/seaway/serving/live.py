"""Live figures of a served version, merged from the windows gateways flushed to the store.

Every gateway writes one `live_stats` row per (model, version, route) and window (see
`seaway.serving.telemetry`). `live_figures(project, "churn", 7, since=...)` merges the rows
of every gateway whose window ended after `since`: request and error counts, status codes,
latency quantiles from the merged logarithmic histogram (not an average of per-window
quantiles, which would be wrong), the merged sketch of each prediction output, and, for a
shadow version, how often it agreed with each primary. Rollout analysis reads this.

`prediction_psi(a, b)` compares two versions' output sketches with the population
stability index of `seaway.stats.measures`: numeric sketches over one set of bin edges
(the first's; the second is re-binned when they differ), label counts over the union of
labels (values outside either's top K pooled as "other").

An error is an answer with status 500 or more; `error_rate` is NaN without requests, so an
analysis cannot mistake "no traffic" for "no errors".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from seaway._util import as_utc, isoformat
from seaway.serving._obs_sketch import OutputSketch, latency_quantile

if TYPE_CHECKING:
    from seaway.project import Project

__all__ = ["LiveFigures", "OutputSketch", "ShadowAgreement", "live_figures", "prediction_psi"]


@dataclass(frozen=True)
class ShadowAgreement:
    """How a shadow version's answers compared with one primary's."""

    agreed: int = 0
    disagreed: int = 0

    @property
    def compared(self) -> int:
        return self.agreed + self.disagreed

    @property
    def rate(self) -> float:
        """The share that agreed; NaN before any comparison."""
        return self.agreed / self.compared if self.compared else math.nan


@dataclass(frozen=True)
class LiveFigures:
    """A version's live figures since a time, over every gateway (and route unless named)."""

    model: str
    number: int
    route: str | None
    since: datetime
    until: datetime | None
    """The end of the newest window merged; None when there was none."""
    windows: int
    requests: int
    errors: int
    codes: Mapping[int, int] = field(default_factory=dict)
    latency_histogram: Mapping[int, int] = field(default_factory=dict)
    """Sparse {bucket: count} in the fixed scheme of seaway.serving._obs_sketch."""
    outputs: Mapping[str, OutputSketch] = field(default_factory=dict)
    shadow: Mapping[int, ShadowAgreement] = field(default_factory=dict)
    """Primary version -> agreement, on a shadow version."""

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else math.nan

    def quantile(self, q: float) -> float | None:
        """A latency quantile in seconds (within about 4.4%); None without requests."""
        return latency_quantile(self.latency_histogram, q)

    @property
    def p50(self) -> float | None:
        return self.quantile(0.50)

    @property
    def p90(self) -> float | None:
        return self.quantile(0.90)

    @property
    def p99(self) -> float | None:
        return self.quantile(0.99)

    @property
    def shadow_agreement(self) -> ShadowAgreement:
        """Agreement with every primary together."""
        return ShadowAgreement(
            sum(s.agreed for s in self.shadow.values()),
            sum(s.disagreed for s in self.shadow.values()),
        )

    def to_dict(self) -> dict[str, Any]:
        agreement = self.shadow_agreement
        return {
            "model": self.model,
            "version": self.number,
            "route": self.route,
            "since": isoformat(self.since),
            "until": isoformat(self.until),
            "windows": self.windows,
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": None if math.isnan(self.error_rate) else self.error_rate,
            "latency_s": {"p50": self.p50, "p90": self.p90, "p99": self.p99},
            "codes": {str(k): v for k, v in sorted(self.codes.items())},
            "outputs": {k: v.to_dict() for k, v in self.outputs.items()},
            "shadow": {
                str(p): {"agreed": s.agreed, "disagreed": s.disagreed}
                for p, s in sorted(self.shadow.items())
            }
            | (
                {"all": {"agreed": agreement.agreed, "disagreed": agreement.disagreed}}
                if self.shadow
                else {}
            ),
        }


def merge_rows(
    model: str, number: int, route: str | None, since: datetime, rows: list[Any]
) -> LiveFigures:
    """Merge live_stats rows (objects with requests, errors, window_end, figures)."""
    requests = errors = 0
    until: datetime | None = None
    codes: dict[int, int] = {}
    lat: dict[int, int] = {}
    outputs: dict[str, OutputSketch] = {}
    shadow: dict[int, list[int]] = {}
    for row in rows:
        requests += int(row.requests)
        errors += int(row.errors)
        end = as_utc(row.window_end)
        until = end if until is None or end > until else until
        figures = row.figures or {}
        for k, v in dict(figures.get("codes", {})).items():
            codes[int(k)] = codes.get(int(k), 0) + int(v)
        for k, v in dict(figures.get("latency_histogram", {}).get("counts", {})).items():
            lat[int(k)] = lat.get(int(k), 0) + int(v)
        for name, data in dict(figures.get("outputs", {})).items():
            sketch = OutputSketch.from_dict(data)
            outputs[name] = outputs[name].merge(sketch) if name in outputs else sketch
        for p, pair in dict(figures.get("shadow", {})).items():
            acc = shadow.setdefault(int(p), [0, 0])
            acc[0] += int(pair.get("agreed", 0))
            acc[1] += int(pair.get("disagreed", 0))
    return LiveFigures(
        model=model,
        number=number,
        route=route,
        since=since,
        until=until,
        windows=len(rows),
        requests=requests,
        errors=errors,
        codes=codes,
        latency_histogram=lat,
        outputs=outputs,
        shadow={p: ShadowAgreement(a, d) for p, (a, d) in shadow.items()},
    )


def live_figures(
    project: Project, model: str, number: int, *, since: datetime, route: str | None = None
) -> LiveFigures:
    """The version's figures from every window that ended after `since` (a timezone-aware
    time; a naive one is taken as UTC), on one route or all of them. No windows is not an
    error: the figures then have no requests."""
    from sqlalchemy import select

    from seaway.store.schema import live_stats

    since = as_utc(since)
    query = select(
        live_stats.c.requests, live_stats.c.errors, live_stats.c.window_end, live_stats.c.figures
    ).where(
        live_stats.c.model == model,
        live_stats.c.number == number,
        live_stats.c.window_end > since,
    )
    if route is not None:
        query = query.where(live_stats.c.route == route)
    with project.metadata.read() as conn:
        rows = conn.execute(query.order_by(live_stats.c.window_end, live_stats.c.id)).all()
    return merge_rows(model, number, route, since, list(rows))


def _psi_pair(a: OutputSketch, b: OutputSketch) -> float:
    from seaway.stats.measures import small_sample_psi

    if a.total <= 0 or b.total <= 0 or a.kind != b.kind:
        return math.nan
    if a.kind == "numeric":
        return small_sample_psi(list(a.counts), list(b.rebin(a.edges)))
    labels = sorted(set(a.labels) | set(b.labels))
    ref = [a.labels.get(k, 0.0) for k in labels] + [a.other]
    cur = [b.labels.get(k, 0.0) for k in labels] + [b.other]
    return small_sample_psi(ref, cur)


def prediction_psi(a: LiveFigures, b: LiveFigures, *, output: str | None = None) -> float:
    """PSI between the prediction sketches of two figures (`a` the reference, usually the
    stable version): of the named output, else the largest over the outputs both have.
    NaN when they share no output with values."""
    names = [output] if output is not None else sorted(set(a.outputs) & set(b.outputs))
    values = [
        _psi_pair(a.outputs[n], b.outputs[n]) for n in names if n in a.outputs and n in b.outputs
    ]
    values = [v for v in values if not math.isnan(v)]
    return max(values) if values else math.nan
