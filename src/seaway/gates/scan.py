"""Scan clean: the static scan made at registration found nothing that runs on load.

The verdict is the one stored with the version (`scan_verdict`, `scan_report`); the files are
not scanned again. `safe` passes and `dangerous` fails. `suspicious` (a type no list knows)
fails unless every such type is named in the gate's `trusted` list, where a team vouches for
its own classes. `error` (a file that could not be read as its format) is the gate's `error`:
the scan could not look.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from seaway.gates.base import GateResult, GateStatus, outcome

if TYPE_CHECKING:
    from seaway.gates.context import GateContext
    from seaway.spec.gates import ScanGate

KIND = "scan"


def label(gate: ScanGate) -> str:
    return "scan"


def _untrusted(report: dict[str, Any] | None) -> tuple[list[str], list[str]]:
    """(names of suspicious types, files judged dangerous) in a stored scan report."""
    suspicious: list[str] = []
    dangerous: list[str] = []
    for finding in (report or {}).get("findings", []):
        verdict = finding.get("verdict")
        if verdict == "dangerous":
            dangerous.append(str(finding.get("file")))
        if verdict not in ("suspicious", "dangerous"):
            continue
        for ref in finding.get("globals", []):
            if ref.get("verdict") == "suspicious":
                suspicious.append(str(ref.get("name")))
        suspicious.extend(str(t) for t in finding.get("untrusted_types") or [])
    return sorted(set(suspicious)), dangerous


def evaluate(gate: ScanGate, ctx: GateContext) -> GateResult:
    version = ctx.version
    verdict = version.scan_verdict
    suspicious, dangerous = _untrusted(version.scan_report)
    figures: dict[str, Any] = {"verdict": verdict}
    if suspicious:
        figures["suspicious_types"] = suspicious
    if dangerous:
        figures["dangerous_files"] = dangerous
    hint = f"`seaway scan` on the model's files shows what was found in {version.ref}"
    if verdict == "safe":
        return outcome(KIND, "scan", gate, GateStatus.PASSED, "every model file is safe", figures)
    if verdict == "error":
        message = "the scan could not read every model file"
        return outcome(KIND, "scan", gate, GateStatus.ERROR, message, figures, hint=hint)
    if verdict == "suspicious" and suspicious:
        untrusted = [t for t in suspicious if t not in set(gate.scan.trusted)]
        figures["untrusted_types"] = untrusted
        if not untrusted:
            message = f"suspicious types, all trusted by the gate: {', '.join(suspicious)}"
            return outcome(KIND, "scan", gate, GateStatus.PASSED, message, figures)
        message = f"unknown types in the model files: {', '.join(untrusted)}"
        return outcome(
            KIND,
            "scan",
            gate,
            GateStatus.FAILED,
            message,
            figures,
            hint="if you trust them, list them under the gate's `trusted`: "
            "{scan: {trusted: [...]}}",
        )
    what = f" in {', '.join(dangerous)}" if dangerous else ""
    message = f"the scan found {verdict} content{what}"
    return outcome(KIND, "scan", gate, GateStatus.FAILED, message, figures, hint=hint)
