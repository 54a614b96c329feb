"""Promotion policies (CEL), roles and permissions.

Policies live in `seaway.yaml`:

    policies:
      - name: prod-needs-approval
        when: 'environment == "prod"'
        require: 'version.signed && gates.passed && approvals.exists(a,
                  a.role == "release-manager" && a.actor != version.author)'
        message: "prod needs a signed, gated version and a release manager's approval"

`compile_policies(spec.policies)` compiles them once (a `PolicyError`, exit 2, names the
policy, the expression, the line:column within it and what is wrong); `evaluate(policies,
request)` returns a `PolicyDecision`: per policy whether it applies (`when`), whether it
passed (`require`), its message when it blocks, and an evaluation error, if any (such a
policy blocks); `allowed` overall.

The request context: the CEL variables a policy can use (built by `PolicyRequest`; the
registry builds it from a model version, tests and `seaway policy eval` from YAML/JSON):

| variable | CEL type | meaning |
| --- | --- | --- |
| `environment` | string | the target environment (`prod`) |
| `model` | string | the model's name |
| `version.number` | int | the candidate version (7 for churn@7) |
| `version.author` | string | who registered it |
| `version.metrics` | map(string, double) | metric name -> value (`version.metrics.auc`) |
| `version.signed` | bool | a valid signature is attached |
| `version.scan` | string | file scan verdict: safe, suspicious, dangerous, error, unscanned |
| `version.lineage` | map(string, dyn) | run, datasets, code revision (free-form) |
| `version.age_hours` | double | hours since it was registered |
| `version.aliases` | list(string) | aliases on the version (champion, …) |
| `gates.passed` | bool | every required gate passed |
| `gates.results` | list(map) | per gate: `name`, `kind`, `status`, `required` (bool) |
| `approvals` | list(map) | one per approval: `actor`, `role`, `comment`, `at` (ISO 8601 text) |
| `actor` | string | who asks for the promotion |
| `roles` | list(string) | the actor's roles |

Facts left out of a request count against it: unsigned, gates not passed, scan
`unscanned`, no approvals. Reading a key that is not there (`version.metrics.auc` for a
version without that metric) is an evaluation error, which blocks; guard optional keys with
`has(version.metrics.auc)` or `"auc" in version.metrics`.

Roles and permissions are in `seaway.policy.roles` (`permits`); policy tests kept in the
repository (`policies/tests/*.yaml`) in `seaway.policy.suite` (`run_policy_tests`).
Who is acting and whether they may: `seaway.policy.identity` (`current_identity`,
`authorize`) over API tokens (`seaway.policy.tokens`); approvals in
`seaway.policy.approvals`; the request of a registered version and the decision on it in
`seaway.policy.promotion` (`build_request`, `evaluate_promotion`). The CEL
library is `cel-python` (the `policy` extra); without it, compiling a policy raises an error
that says how to install it.
"""

from __future__ import annotations

from seaway.policy.approvals import ApprovalRecord, approve, list_approvals
from seaway.policy.engine import (
    CompiledPolicy,
    PolicyDecision,
    PolicyOutcome,
    compile_policies,
    compile_policy,
    evaluate,
)
from seaway.policy.errors import CelUnavailable, ExpressionProblem, PermissionDenied, PolicyError
from seaway.policy.identity import (
    Identity,
    authorize,
    current_identity,
    is_permitted,
    local_identity,
)
from seaway.policy.promotion import build_request, evaluate_promotion, evaluate_request
from seaway.policy.request import (
    Approval,
    GateFacts,
    GateResultFacts,
    PolicyRequest,
    VersionFacts,
    load_request,
)
from seaway.policy.roles import covers, permissions_of, permits, require_permission, roles_granting
from seaway.policy.suite import (
    Expectation,
    PolicyTestCase,
    TestOutcome,
    load_policy_tests,
    run_policy_tests,
)
from seaway.policy.tokens import (
    InvalidToken,
    TokenInfo,
    authenticate,
    create_token,
    has_active_tokens,
    list_tokens,
    revoke_token,
)

__all__ = [
    "Approval",
    "ApprovalRecord",
    "CelUnavailable",
    "CompiledPolicy",
    "Expectation",
    "ExpressionProblem",
    "GateFacts",
    "GateResultFacts",
    "Identity",
    "InvalidToken",
    "PermissionDenied",
    "PolicyDecision",
    "PolicyError",
    "PolicyOutcome",
    "PolicyRequest",
    "PolicyTestCase",
    "TestOutcome",
    "TokenInfo",
    "VersionFacts",
    "approve",
    "authenticate",
    "authorize",
    "build_request",
    "compile_policies",
    "compile_policy",
    "covers",
    "create_token",
    "current_identity",
    "evaluate",
    "evaluate_promotion",
    "evaluate_request",
    "has_active_tokens",
    "is_permitted",
    "list_approvals",
    "list_tokens",
    "load_policy_tests",
    "load_request",
    "local_identity",
    "permissions_of",
    "permits",
    "require_permission",
    "revoke_token",
    "roles_granting",
    "run_policy_tests",
]
