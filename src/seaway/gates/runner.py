"""Running a version's gates, and the stored reports.

    report = run_gates(project, "churn@7")     # runs, stores, returns the GateReport
    latest_report(project, version)            # what promotion policies read

`run_gates` looks the version up, builds one `GateContext` for all its gates (so the model
and the evaluation set are loaded at most once), runs the gates declared under
`models.NAME.gates` in order, and stores the report in `gate_reports` together with a
`model.gate` audit event, in one transaction.

A gate never takes the run down with it: an error the gate raises (data that cannot be had, a
model that does not load, a bug) becomes that gate's `error` result with the exception's
text, and the next gate runs. A stored report therefore always covers every gate that was
asked for.
"""

from __future__ import annotations

import importlib
import time
from typing import TYPE_CHECKING, Any

from seaway._util import as_utc
from seaway.errors import SeawayError, UsageError
from seaway.gates.base import GateReport, GateResult, GateStatus, every_required_passed

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy.engine import Connection

    from seaway.gates.context import GateContext
    from seaway.project import Project
    from seaway.registry import ModelVersion
    from seaway.spec.gates import AnyGate

# Gate kind -> the module that evaluates it (imported when a gate of that kind runs).
MODULES = {
    "metric": "seaway.gates.metric",
    "no_regression": "seaway.gates.regression",
    "drift": "seaway.gates.drift",
    "robustness": "seaway.gates.robustness",
    "fairness": "seaway.gates.fairness",
    "latency": "seaway.gates.latency",
    "scan": "seaway.gates.scan",
    "signature": "seaway.gates.signature",
}


def _module(kind: str) -> Any:
    return importlib.import_module(MODULES[kind])


def gate_name(gate: AnyGate) -> str:
    """How a gate is shown: `auc>=0.7`, `no_regression(auc vs champion)`, `latency(batch 1)`."""
    from seaway.spec.gates import gate_kind

    return str(_module(gate_kind(gate)).label(gate))


def evaluate_gate(gate: AnyGate, ctx: GateContext) -> GateResult:
    """One gate's result; whatever goes wrong inside becomes an `error` result."""
    from seaway.spec.gates import gate_kind

    kind = gate_kind(gate)
    module = _module(kind)
    started = time.perf_counter()
    try:
        result: GateResult = module.evaluate(gate, ctx)
    except SeawayError as exc:
        result = _errored(gate, kind, module, exc.message, exc.hint)
    except Exception as exc:
        # A bug or a model that blew up: the user sees what was raised, not a traceback,
        # and the other gates still run.
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        result = _errored(gate, kind, module, message, "run with -v to see the traceback")
        result.figures["exception"] = type(exc).__name__
        _remember_traceback(result)
    result.duration_s = time.perf_counter() - started
    return result


def _remember_traceback(result: GateResult) -> None:
    import os
    import traceback

    if os.environ.get("SEAWAY_DEBUG") or _cli_verbose():
        result.figures["traceback"] = traceback.format_exc()


def _cli_verbose() -> bool:
    import sys

    state = sys.modules.get("seaway.cli.state")
    return bool(state is not None and getattr(getattr(state, "STATE", None), "verbose", False))


def _errored(gate: AnyGate, kind: str, module: Any, message: str, hint: str | None) -> GateResult:
    try:
        name = str(module.label(gate))
    except Exception:
        name = kind
    return GateResult(
        name=name,
        kind=kind,
        status=GateStatus.ERROR,
        required=bool(getattr(gate, "required", True)),
        message=message,
        hint=hint,
    )


def evaluate_gates(gates: Iterable[AnyGate], ctx: GateContext) -> list[GateResult]:
    """Every gate's result, in order; stores nothing."""
    return [evaluate_gate(gate, ctx) for gate in gates]


def _select(name: str, gates: list[AnyGate], only: list[str] | None) -> list[AnyGate]:
    from seaway.spec.gates import GATE_KINDS, gate_kind

    if only is None:
        return gates
    unknown = [k for k in only if k not in GATE_KINDS]
    if unknown:
        raise UsageError(
            f"unknown gate kind {', '.join(repr(k) for k in unknown)}",
            hint=f"use one of: {', '.join(GATE_KINDS)}",
        )
    declared = {gate_kind(g) for g in gates}
    absent = [k for k in only if k not in declared]
    if absent:
        raise UsageError(
            f"model '{name}' declares no {', '.join(absent)} gate "
            f"(its gates: {', '.join(sorted(declared))})",
            hint="leave --only out to run every gate",
        )
    return [g for g in gates if gate_kind(g) in set(only)]


def run_gates(
    project: Project,
    ref: str,
    *,
    actor: str | None = None,
    only: list[str] | None = None,
    store: bool = True,
) -> GateReport:
    """Run the gates of the version `ref` (NAME, NAME@N, NAME@ALIAS) and store the report.

    `only` limits the run to some gate kinds; such a partial report is stored but
    `latest_report` skips it. Raises NotFound for an unknown version and UsageError when the
    model declares no gates.
    """
    from seaway._util import utcnow
    from seaway.gates.context import GateContext
    from seaway.policy.identity import current_identity
    from seaway.registry import get_version

    version = get_version(project, ref)
    spec = project.spec.models.get(version.model)
    if spec is None or not spec.gates:
        raise UsageError(
            f"model '{version.model}' declares no gates",
            hint=f"add them to seaway.yaml under models.{version.model}.gates, for example "
            "- {metric: auc, min: 0.8}",
        )
    gates = _select(version.model, list(spec.gates), only)
    # Who ran the gates, as every other event names its actor (a token's name, or the user).
    who = actor or current_identity(project).name
    created = utcnow()
    started = time.perf_counter()
    ctx = GateContext(version, spec, project)
    results = evaluate_gates(gates, ctx)
    report = GateReport(
        model=version.model,
        number=version.number,
        results=results,
        passed=every_required_passed(results),
        created_at=created,
        duration_s=time.perf_counter() - started,
        actor=who,
        only=sorted(set(only)) if only is not None else None,
    )
    if store:
        store_report(project, version, report)
    return report


def store_report(project: Project, version: ModelVersion, report: GateReport) -> None:
    """Save `report` with the version, and its audit event, in one transaction."""
    from seaway.store.events import record_event
    from seaway.store.schema import gate_reports

    who = report.actor
    doc = report.to_dict()
    event = {
        "passed": report.passed,
        "partial": report.partial,
        "gates": [
            {"name": r.name, "kind": r.kind, "status": r.status.value, "required": r.required}
            for r in report.results
        ],
    }

    def write(conn: Connection) -> None:
        conn.execute(
            gate_reports.insert().values(
                model_id=version.model_id,
                number=version.number,
                created_at=report.created_at,
                actor=who or "unknown",
                passed=report.passed,
                report=doc,
            )
        )
        record_event(conn, "model.gate", f"model:{version.ref}", event, actor=who)

    project.metadata.run_write(write)


def reports(project: Project, version: ModelVersion) -> list[GateReport]:
    """Every stored report of `version`, newest first."""
    from sqlalchemy import select

    from seaway.store.schema import gate_reports as gr

    with project.metadata.read() as conn:
        rows = conn.execute(
            select(gr.c.report, gr.c.created_at)
            .where(gr.c.model_id == version.model_id, gr.c.number == version.number)
            .order_by(gr.c.created_at.desc(), gr.c.id.desc())
        ).all()
    out = []
    for doc, created_at in rows:
        report = GateReport.from_dict(doc)
        report.created_at = as_utc(created_at)
        out.append(report)
    return out


def latest_report(
    project: Project, version: ModelVersion, *, include_partial: bool = False
) -> GateReport | None:
    """The newest report covering all the version's gates (any report with
    `include_partial`), or None when its gates never ran."""
    for report in reports(project, version):
        if include_partial or not report.partial:
            return report
    return None
