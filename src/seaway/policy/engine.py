"""Compile the project's policies once, evaluate them against many requests.

A policy applies to a request when its `when` holds; it then passes when its `require`
holds. A request is allowed when no applicable policy fails. Evaluation never raises for a
request: an expression that cannot be evaluated (a missing metric, a type error) makes its
policy block, with the error, since "could not tell" must not let a promotion through. A
failing `when` counts as applying, for the same reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from seaway.policy.cel import CompiledExpression, EvaluationError, SyntaxProblem, compile_expression
from seaway.policy.errors import ExpressionProblem, PolicyError
from seaway.policy.request import PolicyRequest
from seaway.spec.models import PolicySpec


@lru_cache(maxsize=512)
def _compile(source: str) -> CompiledExpression | tuple[SyntaxProblem, ...]:
    result = compile_expression(source)
    return result if isinstance(result, CompiledExpression) else tuple(result)


@dataclass(frozen=True)
class PolicyOutcome:
    """One policy's verdict on one request."""

    policy: str
    applies: bool
    passed: bool | None
    """None when the policy does not apply."""
    message: str | None
    """Why it blocks (the policy's `message`), when it blocks."""
    error: str | None = None
    """Why it could not be evaluated; such a policy blocks."""

    @property
    def blocking(self) -> bool:
        return self.applies and self.passed is not True

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "applies": self.applies,
            "passed": self.passed,
            "blocking": self.blocking,
            "message": self.message,
            "error": self.error,
        }


@dataclass(frozen=True)
class PolicyDecision:
    """Every policy's outcome for one request, and whether the request is allowed."""

    outcomes: list[PolicyOutcome]

    @property
    def allowed(self) -> bool:
        return not any(o.blocking for o in self.outcomes)

    @property
    def blocked_by(self) -> list[str]:
        return [o.policy for o in self.outcomes if o.blocking]

    @property
    def errors(self) -> list[PolicyOutcome]:
        return [o for o in self.outcomes if o.error]

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "blocked_by": self.blocked_by,
            "policies": [o.to_dict() for o in self.outcomes],
        }


@dataclass(frozen=True)
class CompiledPolicy:
    """A policy whose expressions compiled."""

    spec: PolicySpec
    when: CompiledExpression
    require: CompiledExpression

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def message(self) -> str:
        return self.spec.message or f"policy '{self.spec.name}' requires {self.spec.require}"

    def evaluate(self, request: PolicyRequest | Mapping[str, Any]) -> PolicyOutcome:
        activation = _activation(request)
        try:
            applies = self.when.evaluate(activation)
        except EvaluationError as exc:
            return PolicyOutcome(self.name, True, False, self.message, f"when: {exc}")
        if not applies:
            return PolicyOutcome(self.name, False, None, None)
        try:
            passed = self.require.evaluate(activation)
        except EvaluationError as exc:
            return PolicyOutcome(self.name, True, False, self.message, f"require: {exc}")
        return PolicyOutcome(self.name, True, passed, None if passed else self.message)


def compile_policy(spec: PolicySpec) -> CompiledPolicy:
    return compile_policies([spec])[0]


def compile_policies(specs: Iterable[PolicySpec]) -> list[CompiledPolicy]:
    """Compile every policy; a PolicyError lists each expression that does not compile."""
    compiled: list[CompiledPolicy] = []
    problems: list[ExpressionProblem] = []
    for spec in specs:
        parts: dict[str, CompiledExpression] = {}
        for field in ("when", "require"):
            source: str = getattr(spec, field)
            result = _compile(source)
            if isinstance(result, CompiledExpression):
                parts[field] = result
            else:
                problems.extend(
                    ExpressionProblem(spec.name, field, p.line, p.column, p.message, source)
                    for p in result
                )
        if len(parts) == 2:
            compiled.append(CompiledPolicy(spec, parts["when"], parts["require"]))
    if problems:
        names = sorted({p.policy for p in problems})
        which = f"policy '{names[0]}'" if len(names) == 1 else f"{len(names)} policies"
        raise PolicyError(
            f"{which} in seaway.yaml {'does' if len(names) == 1 else 'do'} not compile",
            problems,
            hint="fix the CEL under `policies:`; a request has environment, model, version, "
            "gates, approvals, actor and roles",
        )
    return compiled


def evaluate(
    policies: Sequence[CompiledPolicy | PolicySpec],
    request: PolicyRequest | Mapping[str, Any],
) -> PolicyDecision:
    """Evaluate every policy against one request."""
    compiled = [p if isinstance(p, CompiledPolicy) else compile_policy(p) for p in policies]
    activation = _activation(request)
    return PolicyDecision([p.evaluate(activation) for p in compiled])


class _Activation(dict[str, Any]):
    """A request already converted to CEL values, so several policies share one conversion."""


def _activation(request: PolicyRequest | Mapping[str, Any]) -> _Activation:
    if isinstance(request, _Activation):
        return request
    if not isinstance(request, PolicyRequest):
        request = PolicyRequest.from_dict(dict(request))
    return _Activation(request.to_cel())
