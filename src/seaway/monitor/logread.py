"""Rows of the gateway's request log as columns the monitor can score.

The gateway logs what it was sent as it arrived (see `seaway.serving.telemetry`):

- an Open Inference Protocol v2 request as its list of tensors
  (`[{"name", "shape", "datatype", "data"}, ...]`): one tensor per column of shape [N] or
  [N, 1], or one tensor of shape [N, F] holding whole rows;
- a KServe v1 request as columns (`{name: [values]}`) or rows (`[[...], ...]`).

Whole rows have no column names on the wire; they take the names of the version's input
schema when it has as many, else `x0`, `x1`, … . Outputs become one value per row and output
with `seaway.serving._obs_sketch.output_values` (the positive-class probability of a binary
`predict_proba`, the class index of a wider one), the same reduction the live sketches use, so
reference and live predictions are comparable.

A logged value that is not a request (too large, so stored as a note of its size) is skipped
and counted, never an error: the monitor works with what was logged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from seaway.serving._obs_sketch import output_values

__all__ = ["LogColumns", "input_columns", "log_columns", "prediction_columns"]


def _rows_to_columns(rows: Sequence[Any], names: Sequence[str] | None) -> dict[str, list[Any]]:
    if not rows or not isinstance(rows[0], (list, tuple)):
        return {}
    width = len(rows[0])
    cols = list(names) if names is not None and len(names) == width else None
    cols = cols or [f"x{i}" for i in range(width)]
    out: dict[str, list[Any]] = {c: [] for c in cols}
    for row in rows:
        if not isinstance(row, (list, tuple)) or len(row) != width:
            return {}
        for c, v in zip(cols, row, strict=True):
            out[c].append(v)
    return out


def _tensor_columns(tensors: Sequence[Any], names: Sequence[str] | None) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for t in tensors:
        if not isinstance(t, Mapping) or "data" not in t:
            return {}
        data = t["data"]
        shape = t.get("shape")
        flat = data if isinstance(data, list) else [data]
        if flat and isinstance(flat[0], list):
            flat = [v for row in flat for v in (row if isinstance(row, list) else [row])]
        width = int(shape[1]) if isinstance(shape, list) and len(shape) == 2 else 1
        if width > 1:
            if len(tensors) != 1:
                return {}
            rows = [flat[i : i + width] for i in range(0, len(flat), width)]
            return _rows_to_columns(rows, names)
        out[str(t.get("name", f"x{len(out)}"))] = list(flat)
    return out


def input_columns(inputs: Any, names: Sequence[str] | None = None) -> dict[str, list[Any]]:
    """The logged inputs of one request as {column: values}; {} when they cannot be read."""
    if isinstance(inputs, list):
        if inputs and isinstance(inputs[0], Mapping):
            return _tensor_columns(inputs, names)
        return _rows_to_columns(inputs, names)
    if isinstance(inputs, Mapping):
        if "truncated" in inputs or "unserializable" in inputs:
            return {}
        cols = {str(k): (v if isinstance(v, list) else [v]) for k, v in inputs.items()}
        lengths = {len(v) for v in cols.values()}
        return cols if len(lengths) == 1 else {}
    return {}


def prediction_columns(outputs: Any) -> dict[str, list[Any]]:
    """One value per row for each output of one answer; {} when they cannot be read."""
    if outputs is None or (
        isinstance(outputs, Mapping) and ("truncated" in outputs or "unserializable" in outputs)
    ):
        return {}
    try:
        return output_values(outputs)
    except Exception:  # a malformed logged answer is skipped, not fatal
        return {}


@dataclass
class LogColumns:
    """Logged requests gathered into columns (rows of every request, in log order)."""

    features: dict[str, list[Any]] = field(default_factory=dict)
    predictions: dict[str, list[Any]] = field(default_factory=dict)
    rows: int = 0
    requests: int = 0
    skipped: int = 0
    """Requests whose inputs could not be read (too large when logged, or malformed)."""

    def add(self, inputs: Any, outputs: Any, names: Sequence[str] | None = None) -> None:
        cols = input_columns(inputs, names)
        n = len(next(iter(cols.values()))) if cols else 0
        if n == 0:
            self.skipped += 1
            return
        self.requests += 1
        for name, values in cols.items():
            self.features.setdefault(name, [None] * self.rows).extend(values)
        for name, feature in self.features.items():
            if name not in cols:
                feature.extend([None] * n)
        preds = prediction_columns(outputs)
        for name, values in preds.items():
            if len(values) != n:
                continue
            self.predictions.setdefault(name, [None] * self.rows).extend(values)
        for pred in self.predictions.values():
            if len(pred) < self.rows + n:
                pred.extend([None] * (self.rows + n - len(pred)))
        self.rows += n


def log_columns(
    records: Iterable[tuple[Any, Any]], names: Sequence[str] | None = None
) -> LogColumns:
    """Columns of the (inputs, outputs) pairs of logged requests."""
    out = LogColumns()
    for inputs, outputs in records:
        out.add(inputs, outputs, names)
    return out
