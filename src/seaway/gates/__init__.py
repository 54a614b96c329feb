"""Validation gates: what a model version must pass before it is promoted.

    from seaway.gates import run_gates, latest_report
    report = run_gates(project, "churn@7")
    report.passed, [(r.name, r.status) for r in report.results]

One module per kind of gate (`metric`, `regression`, `drift`, `robustness`, `fairness`,
`latency`, `scan`, `signature`), each with `label(gate)` and `evaluate(gate, ctx) ->
GateResult`. A result is `passed`, `failed` (measured, and not good enough),
`inconclusive` (measured, but the evidence cannot carry a verdict) or `error` (could not
measure); see `seaway.gates.base`. `GateContext` (`seaway.gates.context`) gives gates the
version, its model, its evaluation set and datasets, each loaded on first use. The metrics
gates compute on data are in `seaway.gates.measures` (NumPy only), and data references are
resolved by `seaway.gates.data`. `seaway.gates.runner` runs a version's gates and stores
the `GateReport` with an audit event.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from seaway.gates.base import DataUnavailable, GateReport, GateResult, GateStatus
    from seaway.gates.context import GateContext
    from seaway.gates.runner import (
        evaluate_gate,
        evaluate_gates,
        gate_name,
        latest_report,
        reports,
        run_gates,
        store_report,
    )

# Exported lazily: a policy reading `latest_report` need not import NumPy and the gates.
_LAZY = {
    "DataUnavailable": "seaway.gates.base",
    "GateReport": "seaway.gates.base",
    "GateResult": "seaway.gates.base",
    "GateStatus": "seaway.gates.base",
    "GateContext": "seaway.gates.context",
    "evaluate_gate": "seaway.gates.runner",
    "evaluate_gates": "seaway.gates.runner",
    "gate_name": "seaway.gates.runner",
    "latest_report": "seaway.gates.runner",
    "reports": "seaway.gates.runner",
    "run_gates": "seaway.gates.runner",
    "store_report": "seaway.gates.runner",
}

__all__ = [
    "DataUnavailable",
    "GateContext",
    "GateReport",
    "GateResult",
    "GateStatus",
    "evaluate_gate",
    "evaluate_gates",
    "gate_name",
    "latest_report",
    "reports",
    "run_gates",
    "store_report",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'seaway.gates' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
