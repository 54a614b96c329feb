"""Live quality: how right a version's answers were, once their true labels came back.

Feedback labels (`seaway.monitor.feedback`) are stored against the logged answer they
judge, so each label meets the version's own prediction:

    live_quality(project, "churn-classifier", 7, since=an_hour_ago).metrics
    # {"labels": 812, "accuracy": 0.91, "auc": 0.95}

The figures (`quality_metrics`):

- `accuracy`: the share of rows whose predicted label (the answer's `predict` output, or
  its first output holding labels) equals the true one, compared as text when the types
  differ, so 1, 1.0, "1" and true are one class;
- `auc`: the area under the ROC curve, for a binary classifier whose answer carries
  `predict_proba` (the positive class is its second column), when both classes appear;
  rank-based, ties averaged, as scikit-learn computes it;
- `mae` and `rmse`: mean absolute and root mean squared error, when answers and labels are
  numbers and the model gives no probabilities (a regressor);
- `labels`: how many rows were judged.

`score_quality(project, model)` is the monitor's half: it reads the labels posted since
its cursor (`quality:MODEL@N`, one per version), groups them into windows of
`monitoring.MODEL.window` (`rows` counts labels; `duration` spans time, closing once it
has passed), scores each window on `on_quality_drop.metric` (accuracy unless set) and
marks it breached when the score falls under `on_quality_drop.below` (for `mae` and
`rmse`, lower is better, so when it rises above it). Windows are stored with the cursor in
one transaction, with a `monitor.window` event each and a `monitor.quality_drop` event for
each breach; a window not yet full waits for more labels, so nothing is scored twice.
Labels younger than `window.settle` (30 s on PostgreSQL, none on SQLite) wait for a later
call, so labels several gateways commit out of order are never skipped
(`seaway.monitor.windows.settle_for`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from seaway._util import as_utc, isoformat, utcnow
from seaway.monitor.logread import prediction_columns
from seaway.monitor.windows import (
    MonitorWindow,
    get_cursor,
    set_cursor,
    settle_for,
    store_window,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from seaway.project import Project

__all__ = [
    "LOWER_IS_BETTER",
    "QUALITY_METRICS",
    "QualityFigures",
    "answer_predictions",
    "breaches",
    "live_quality",
    "quality_metrics",
    "score_quality",
]

QUALITY_METRICS = ("accuracy", "auc", "mae", "rmse")
LOWER_IS_BETTER = frozenset({"mae", "rmse"})
DEFAULT_WINDOW_ROWS = 1000
_PAGE = 5000  # feedback rows read at a time, so a backlog is scored in bounded memory


# -- the figures --------------------------------------------------------------------------


def _as_class(value: Any) -> str:
    """A label as text, so that 1, 1.0, "1" and True compare equal."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    text = str(value).strip()
    low = text.lower()
    if low in ("true", "false"):
        return "1" if low == "true" else "0"
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else repr(number)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _positive_class(truth: list[str], predicted: list[str], scores: list[float]) -> str | None:
    """Which class the scores are the probability of: the one predicted where a score is
    over one half; else the class other than the one predicted under it; else 1."""
    above = {p for p, s in zip(predicted, scores, strict=True) if s > 0.5}
    if len(above) == 1:
        return above.pop()
    below = {p for p, s in zip(predicted, scores, strict=True) if s < 0.5}
    classes = set(truth) | set(predicted)
    if len(below) == 1 and len(classes) == 2:
        return (classes - below).pop()
    if classes <= {"0", "1"}:
        return "1"
    return None


def _auc(positive: list[bool], scores: list[float]) -> float | None:
    import numpy as np
    from scipy.stats import rankdata

    n_pos = sum(positive)
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(np.asarray(scores, dtype=float))
    pos_ranks = float(ranks[np.asarray(positive, dtype=bool)].sum())
    return (pos_ranks - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def quality_metrics(
    labels: Sequence[Any],
    predicted: Sequence[Any],
    scores: Sequence[Any] | None = None,
) -> dict[str, float]:
    """Accuracy, AUC, MAE and RMSE of `predicted` against the true `labels` (see the module
    docstring), each only where it can be computed, and `labels`, the rows judged. A row
    with no prediction (None) is left out; `scores` are positive-class probabilities."""
    if len(labels) != len(predicted) or (scores is not None and len(scores) != len(labels)):
        raise ValueError("labels, predictions and scores must have one value per row")
    keep = [i for i, p in enumerate(predicted) if p is not None and labels[i] is not None]
    out: dict[str, float] = {"labels": float(len(keep))}
    if not keep:
        return out
    truth = [labels[i] for i in keep]
    preds = [predicted[i] for i in keep]
    nums = [(_number(t), _number(p)) for t, p in zip(truth, preds, strict=True)]
    numeric = all(t is not None and p is not None for t, p in nums)
    # Numbers that are not all whole are a regressor's answers: accuracy means nothing there.
    regression = numeric and scores is None and any(not (p or 0.0).is_integer() for _, p in nums)
    if not regression:
        truth_c = [_as_class(t) for t in truth]
        preds_c = [_as_class(p) for p in preds]
        hits = sum(t == p for t, p in zip(truth_c, preds_c, strict=True))
        out["accuracy"] = hits / len(keep)
        if scores is not None:
            scored = [(i, _number(scores[k])) for i, k in enumerate(keep)]
            rows = [(i, s) for i, s in scored if s is not None]
            if rows:
                t_rows = [truth_c[i] for i, _ in rows]
                s_rows = [s for _, s in rows]
                positive = _positive_class(t_rows, [preds_c[i] for i, _ in rows], s_rows)
                if positive is not None:
                    auc = _auc([t == positive for t in t_rows], s_rows)
                    if auc is not None:
                        out["auc"] = auc
    if numeric and scores is None:
        errors = [abs((t or 0.0) - (p or 0.0)) for t, p in nums]
        out["mae"] = sum(errors) / len(errors)
        out["rmse"] = math.sqrt(sum(e * e for e in errors) / len(errors))
    return out


def _binary_proba(outputs: Any) -> bool:
    """Whether the logged answer's `predict_proba` has two columns (so column 1 is the
    positive-class probability, not the arg-max class index of a wider one)."""
    if not isinstance(outputs, Mapping):
        return False
    raw = outputs.get("predict_proba")
    if isinstance(raw, list):
        return bool(raw) and isinstance(raw[0], list) and len(raw[0]) == 2
    tensors = outputs.get("outputs")
    if isinstance(tensors, list):
        for t in tensors:
            if isinstance(t, Mapping) and t.get("name") == "predict_proba":
                shape = t.get("shape")
                return isinstance(shape, list) and len(shape) == 2 and shape[1] == 2
    return False


def _is_label_column(values: list[Any]) -> bool:
    return any(not isinstance(v, float) for v in values if v is not None)


def answer_predictions(outputs: Any) -> tuple[list[Any] | None, list[Any] | None]:
    """(predicted labels or values, positive-class scores or None) of one logged answer;
    (None, None) when it cannot be read."""
    cols = prediction_columns(outputs)
    if not cols:
        return None, None
    predicted = cols.get("predict")
    if predicted is None:
        labelled = [v for k, v in cols.items() if k != "predict_proba" and _is_label_column(v)]
        others = [v for k, v in cols.items() if k != "predict_proba"]
        predicted = labelled[0] if labelled else (others[0] if others else None)
    scores = cols.get("predict_proba") if _binary_proba(outputs) else None
    return predicted, scores


class _Judged:
    """Labels and the answers they judge, gathered row by row."""

    __slots__ = (
        "first_id",
        "first_ts",
        "has_scores",
        "labels",
        "last_id",
        "last_ts",
        "predicted",
        "requests",
        "scores",
    )

    def __init__(self) -> None:
        self.labels: list[Any] = []
        self.predicted: list[Any] = []
        self.scores: list[Any] = []
        self.has_scores = True
        self.requests = 0
        self.first_id = 0
        self.last_id = 0
        self.first_ts: datetime | None = None
        self.last_ts: datetime | None = None

    def add(self, row_id: int, ts: datetime, labels: Any, outputs: Any) -> None:
        if self.requests == 0:
            self.first_id, self.first_ts = row_id, ts
        self.last_id, self.last_ts = row_id, ts
        self.requests += 1
        predicted, scores = answer_predictions(outputs)
        values = list(labels) if isinstance(labels, list) else [labels]
        if predicted is None or len(predicted) != len(values):
            return  # checked when the label was posted; an unreadable answer judges nothing
        self.labels.extend(values)
        self.predicted.extend(predicted)
        if scores is None or len(scores) != len(values):
            self.has_scores = False
        else:
            self.scores.extend(scores)

    def metrics(self) -> dict[str, float]:
        scores = self.scores if self.has_scores and self.scores else None
        return quality_metrics(self.labels, self.predicted, scores)


# -- live quality of a version --------------------------------------------------------


@dataclass(frozen=True)
class QualityFigures:
    """A version's quality on labelled requests answered after `since`."""

    model: str
    number: int
    route: str | None
    since: datetime
    requests: int = 0
    """Labelled requests (feedback rows)."""
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def labels(self) -> int:
        """Rows judged."""
        return int(self.metrics.get("labels", 0))

    def metric(self, name: str) -> float | None:
        value = self.metrics.get(name)
        return None if value is None or math.isnan(value) else float(value)

    @property
    def accuracy(self) -> float | None:
        return self.metric("accuracy")

    @property
    def auc(self) -> float | None:
        return self.metric("auc")

    @property
    def mae(self) -> float | None:
        return self.metric("mae")

    @property
    def rmse(self) -> float | None:
        return self.metric("rmse")

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.number,
            "route": self.route,
            "since": isoformat(self.since),
            "requests": self.requests,
            "labels": self.labels,
            "metrics": dict(self.metrics),
        }


def live_quality(
    project: Project,
    model: str,
    number: int,
    *,
    since: datetime,
    route: str | None = None,
) -> QualityFigures:
    """The version's quality over the labels of requests it answered after `since` (on one
    route, or all). No labels is not an error: the figures then judge no rows."""
    from sqlalchemy import select

    from seaway.store.schema import feedback as f
    from seaway.store.schema import request_log as r

    since = as_utc(since)
    query = (
        select(f.c.id, r.c.ts, f.c.labels, r.c.outputs)
        .select_from(f.join(r, r.c.id == f.c.log_id))
        .where(f.c.model == model, f.c.number == number, r.c.ts > since)
    )
    if route is not None:
        query = query.where(f.c.route == route)
    judged = _Judged()
    with project.metadata.read() as conn:
        for row in conn.execute(query.order_by(f.c.id)):
            judged.add(int(row.id), as_utc(row.ts), row.labels, row.outputs)
    return QualityFigures(model, number, route, since, judged.requests, judged.metrics())


# -- quality windows ----------------------------------------------------------------------


def breaches(metric: str, score: float | None, threshold: float | None) -> bool:
    """Whether `score` is on the wrong side of `threshold` (above it for error metrics)."""
    if score is None or threshold is None or math.isnan(score):
        return False
    return score > threshold if metric in LOWER_IS_BETTER else score < threshold


@dataclass(frozen=True)
class _Rule:
    rows: int | None
    duration_s: float | None
    metric: str
    threshold: float | None
    settle: timedelta
    """Labels younger than this wait (`settle_for`)."""


def _rule(project: Project, model: str) -> _Rule:
    spec = project.spec.monitoring.get(model)
    if spec is None:
        return _Rule(DEFAULT_WINDOW_ROWS, None, "accuracy", None, settle_for(project, None))
    window = spec.window
    duration = window.duration.seconds if window.duration is not None else None
    rows = window.rows if duration is None else None
    settle = settle_for(project, window)
    trigger = spec.on_quality_drop
    if trigger is None:
        return _Rule(rows, duration, "accuracy", None, settle)
    return _Rule(rows, duration, trigger.metric, trigger.below, settle)


@dataclass
class _Closed:
    judged: _Judged
    start: datetime
    end: datetime


def score_quality(
    project: Project, model: str, *, now: datetime | None = None
) -> list[MonitorWindow]:
    """Score the labels posted since the last call into quality windows, per version (see
    the module docstring); the windows stored, oldest first."""
    from sqlalchemy import select

    from seaway.store.schema import feedback as f

    rule = _rule(project, model)
    at = as_utc(now) if now is not None else utcnow()
    with project.metadata.read() as conn:
        numbers = sorted(
            conn.execute(select(f.c.number).where(f.c.model == model).distinct()).scalars()
        )
    out: list[MonitorWindow] = []
    for number in numbers:
        out.extend(_score_version(project, model, int(number), rule, at))
    return out


def _score_version(
    project: Project, model: str, number: int, rule: _Rule, now: datetime
) -> list[MonitorWindow]:
    from sqlalchemy import select

    from seaway.store.schema import feedback as f
    from seaway.store.schema import request_log as r

    cursor = f"quality:{model}@{number}"
    with project.metadata.read() as conn:
        start, _ = get_cursor(conn, cursor)
    span = timedelta(seconds=rule.duration_s) if rule.duration_s is not None else None
    horizon = now - rule.settle
    closed: list[_Closed] = []
    current = _Judged()
    position = start
    settling = False
    while True:
        query = (
            select(f.c.id, f.c.ts, f.c.labels, r.c.outputs)
            .select_from(f.join(r, r.c.id == f.c.log_id))
            .where(f.c.model == model, f.c.number == number, f.c.id > position)
            .order_by(f.c.id)
            .limit(_PAGE)
        )
        with project.metadata.read() as conn:
            page = conn.execute(query).all()
        for row in page:
            ts = as_utc(row.ts)
            if rule.settle and ts > horizon:
                settling = True  # labels this recent may have gaps below them: next call
                break
            first = current.first_ts
            if span is not None and current.requests and first is not None and ts >= first + span:
                closed.append(_Closed(current, first, first + span))
                current = _Judged()
            current.add(int(row.id), ts, row.labels, row.outputs)
            if rule.rows is not None and len(current.labels) >= rule.rows:
                assert current.first_ts is not None and current.last_ts is not None
                closed.append(_Closed(current, current.first_ts, current.last_ts))
                current = _Judged()
        if settling or len(page) < _PAGE:
            break
        position = int(page[-1].id)
    first = current.first_ts
    if span is not None and current.requests and first is not None and horizon >= first + span:
        closed.append(_Closed(current, first, first + span))
    if not closed:
        return []
    return project.metadata.run_write(
        lambda conn: _store(conn, model, number, cursor, start, closed, rule)
    )


def _store(
    conn: Connection,
    model: str,
    number: int,
    cursor: str,
    start: int,
    closed: list[_Closed],
    rule: _Rule,
) -> list[MonitorWindow]:
    from seaway.store.events import record_event

    moved, _ = get_cursor(conn, cursor)
    if moved != start:
        return []  # another monitor scored these labels first
    subject = f"model:{model}@{number}"
    stored: list[MonitorWindow] = []
    for c in closed:
        metrics = c.judged.metrics()
        score = metrics.get(rule.metric)
        breached = breaches(rule.metric, score, rule.threshold)
        figures: dict[str, Any] = {
            **metrics,
            "metric": rule.metric,
            "threshold": rule.threshold,
            "requests": c.judged.requests,
        }
        window = store_window(
            conn,
            model=model,
            number=number,
            kind="quality",
            window_start=c.start,
            window_end=c.end,
            first_id=c.judged.first_id,
            last_id=c.judged.last_id,
            rows=int(metrics.get("labels", 0)),
            score=score,
            breached=breached,
            figures=figures,
        )
        data = {
            "kind": "quality",
            "window": window.id,
            "score": score,
            "breached": breached,
            "metric": rule.metric,
            "rows": window.rows,
        }
        record_event(conn, "monitor.window", subject, data)
        if breached:
            record_event(
                conn, "monitor.quality_drop", subject, {**data, "threshold": rule.threshold}
            )
        stored.append(window)
    set_cursor(conn, cursor, closed[-1].judged.last_id)
    return stored
