"""Data drift: the data the model was trained on against recent data it will meet.

The comparison is `seaway.stats.compare` with the training dataset as the reference side and
the gate's `reference` dataset (recent data) as the current side. The decision per column is
stats' rule: with the default method "auto" a column drifts only when its change is both
larger than an effect-size floor and statistically significant, so a large sample does not
flag every column for differences too small to matter, and a small one does not flag noise.
`max_psi` sets the limit on the statistic the method decides by (`Thresholds.for_limit`).

Without `columns`, the model's input columns (from its schema) are compared where both
datasets have them: an id or the label column drifting says nothing about the inputs the
model will see. A model without a schema gets every shared column compared.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from seaway.gates.base import DataUnavailable, GateResult, GateStatus, outcome

if TYPE_CHECKING:
    import pyarrow as pa

    from seaway.gates.context import GateContext
    from seaway.spec.gates import DriftGate
    from seaway.stats import ColumnDrift

KIND = "drift"

# The statistics shown for a column: the one each method decides by, and PSI for all.
_SHOWN = ("psi", "ks_d", "cramers_v", "js", "chi2_p", "mean_shift", "unseen")


def _short(ref_text: str) -> str:
    return ref_text.removeprefix("dataset:")


def label(gate: DriftGate) -> str:
    spec = gate.drift
    return f"drift({_short(spec.train)} vs {_short(spec.reference)})"


def _columns(gate: DriftGate, ctx: GateContext, train: pa.Table, recent: pa.Table) -> list[str]:
    spec = gate.drift
    if spec.columns is not None:
        absent = []
        for column in spec.columns:
            sides = [
                _short(text)
                for text, table in ((spec.train, train), (spec.reference, recent))
                if column not in table.column_names
            ]
            if sides:
                absent.append(f"{column} (not in {' or '.join(sides)})")
        if absent:
            raise DataUnavailable(
                "drift columns not found: " + ", ".join(absent),
                hint="check the names in the gate's `columns`, or leave it out to compare "
                "the model's inputs",
            )
        return list(spec.columns)
    shared = [c for c in train.column_names if c in set(recent.column_names)]
    inputs = ctx.input_names() or []
    picked = [c for c in inputs if c in shared]
    return picked or shared


def _column_figures(col: ColumnDrift) -> dict[str, Any]:
    stats = col.to_dict()["statistics"]
    shown = {k: stats[k] for k in _SHOWN if k in stats and stats[k] is not None}
    return {"kind": col.kind, "drifted": col.drifted, "reason": col.reason, **shown}


def evaluate(gate: DriftGate, ctx: GateContext) -> GateResult:
    from seaway.stats import Thresholds, compare

    spec = gate.drift
    name = label(gate)
    train = ctx.dataset(spec.train)
    recent = ctx.dataset(spec.reference)
    columns = _columns(gate, ctx, train, recent)
    if not columns:
        raise DataUnavailable(
            f"{_short(spec.train)} and {_short(spec.reference)} share no column to compare",
            hint="compare datasets with the same columns, or list them in the gate's `columns`",
        )
    thresholds = Thresholds().for_limit(spec.method, spec.max_psi)
    report = compare(train, recent, method=spec.method, thresholds=thresholds, columns=columns)
    drifted = report.drifted_columns
    figures: dict[str, Any] = {
        "method": spec.method,
        "limit": spec.max_psi,
        "rows": {"train": train.num_rows, "reference": recent.num_rows},
        "columns": len(report.columns),
        "drifted": drifted,
        "per_column": {n: _column_figures(c) for n, c in report.columns.items()},
    }
    status = GateStatus.FAILED if drifted else GateStatus.PASSED
    return outcome(KIND, name, gate, status, report.summary(), figures)
