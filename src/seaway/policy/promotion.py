"""The promotion request of a registered version, and the policies' decision on it.

`build_request(project, "churn@7", "prod", identity=…)` gathers the facts the policies see
(the table in `seaway.policy`) from the stores:

- `version.*`: the version record (`seaway.registry.get_version`): number, author,
  metrics, scan verdict, lineage, aliases; `age_hours` from its `created_at`;
- `version.signed`: `seaway.registry.signing.signature_status` (a signature is attached);
- `gates`: the newest full gate report (`seaway.gates.latest_report`); with none yet,
  `passed` is false and there are no results;
- `approvals`: the version's approvals for that environment (`seaway.policy.approvals`);
- `actor`, `roles`: the identity asking (`seaway.policy.identity`).

Every fact that cannot be had counts against the request, as in `PolicyRequest`: a scan
verdict outside the known words reads `unscanned`, no gate report reads "gates not passed".

`evaluate_promotion` compiles the spec's policies, evaluates them on that request and,
when `record` is true, appends a `policy.decision` event (subject `model:NAME@N`, actor the
identity) with the environment, the verdict and every policy's outcome, so the log shows
why a promotion went through or not. `seaway policy eval NAME@V --env ENV` is a what-if and
does not record; the promotion itself does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, get_args

from seaway._util import utcnow

if TYPE_CHECKING:
    from seaway.policy.engine import PolicyDecision
    from seaway.policy.identity import Identity
    from seaway.policy.request import GateFacts, PolicyRequest, ScanVerdict
    from seaway.project import Project
    from seaway.registry import ModelVersion


def _gate_facts(project: Project, version: ModelVersion) -> GateFacts:
    from seaway.gates import latest_report
    from seaway.policy.request import GateFacts, GateResultFacts

    report = latest_report(project, version)
    if report is None:
        return GateFacts(passed=False, results=[])
    return GateFacts(
        passed=bool(report.passed),
        results=[
            GateResultFacts(
                name=r.name, kind=r.kind, status=str(r.status), required=bool(r.required)
            )
            for r in report.results
        ],
    )


def _scan(verdict: str | None) -> ScanVerdict:
    from seaway.policy.request import ScanVerdict

    known: tuple[ScanVerdict, ...] = get_args(ScanVerdict)
    return next((v for v in known if v == verdict), "unscanned")


def build_request(
    project: Project,
    ref: str | ModelVersion,
    environment: str,
    *,
    identity: Identity | None = None,
) -> PolicyRequest:
    """The request to promote `ref` into `environment`, asked by `identity` (default: the
    current identity)."""
    from seaway.policy.approvals import check_environment, list_approvals
    from seaway.policy.identity import current_identity
    from seaway.policy.request import PolicyRequest, VersionFacts
    from seaway.registry import get_version
    from seaway.registry.signing import signature_status

    check_environment(project, environment)
    who = identity if identity is not None else current_identity(project)
    version = get_version(project, ref) if isinstance(ref, str) else ref
    age_hours = max((utcnow() - version.created_at).total_seconds() / 3600.0, 0.0)
    facts = VersionFacts(
        number=version.number,
        author=version.author,
        metrics=dict(version.metrics),
        signed=bool(signature_status(project, version)),
        scan=_scan(version.scan_verdict),
        lineage=dict(version.lineage),
        age_hours=age_hours,
        aliases=list(version.aliases),
    )
    return PolicyRequest(
        environment=environment,
        model=version.model,
        version=facts,
        gates=_gate_facts(project, version),
        approvals=[a.to_policy() for a in list_approvals(project, version, environment)],
        actor=who.name,
        roles=list(who.roles),
    )


def evaluate_request(
    project: Project, request: PolicyRequest, *, actor: str | None = None, record: bool = True
) -> PolicyDecision:
    """The decision of the spec's policies on `request`; recorded as an event when asked."""
    from seaway.policy.engine import compile_policies, evaluate

    decision = evaluate(compile_policies(project.spec.policies), request)
    if record:
        _record(project, request, decision, actor or request.actor or None)
    return decision


def evaluate_promotion(
    project: Project,
    ref: str | ModelVersion,
    environment: str,
    *,
    identity: Identity | None = None,
    record: bool = True,
) -> PolicyDecision:
    """Build the request for `ref` → `environment` and evaluate the policies on it."""
    from seaway.policy.identity import current_identity

    who = identity if identity is not None else current_identity(project)
    request = build_request(project, ref, environment, identity=who)
    return evaluate_request(project, request, actor=who.name, record=record)


def _record(
    project: Project, request: PolicyRequest, decision: PolicyDecision, actor: str | None
) -> None:
    from seaway.store.events import record_event

    data = {
        "environment": request.environment,
        "allowed": decision.allowed,
        "blocked_by": decision.blocked_by,
        "policies": [o.to_dict() for o in decision.outcomes],
    }
    subject = f"model:{request.model}@{request.version.number}"
    project.metadata.run_write(
        lambda conn: record_event(conn, "policy.decision", subject, data, actor=actor)
    )
