"""Errors of the policy engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from seaway.errors import SeawayError, SpecError


@dataclass(frozen=True)
class ExpressionProblem:
    """Why one CEL expression of one policy does not compile."""

    policy: str
    field: str
    """`when` or `require`."""
    line: int | None
    column: int | None
    """1-based, within the expression."""
    message: str
    expression: str

    def __str__(self) -> str:
        where = f"{self.line}:{self.column}" if self.line is not None else "?"
        return f"policy '{self.policy}', `{self.field}` at {where}: {self.message}"

    def pointer(self) -> list[str]:
        """The expression's line with a caret under the column, for terminals."""
        if self.line is None:
            return []
        lines = self.expression.splitlines() or [""]
        text = lines[min(self.line, len(lines)) - 1]
        return [f"    {text}", "    " + " " * max((self.column or 1) - 1, 0) + "^"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "field": self.field,
            "line": self.line,
            "column": self.column,
            "message": self.message,
            "expression": self.expression,
        }


class PolicyError(SpecError):
    """A policy in seaway.yaml does not compile (exit 2); `details` has each problem."""

    def __init__(self, message: str, details: list[ExpressionProblem], *, hint: str | None = None):
        problems: list[str] = []
        for d in details:
            problems.append(str(d))
            problems.extend(d.pointer())
        super().__init__(message, problems=problems, hint=hint)
        self.details = details


class PermissionDenied(SeawayError):
    """The actor's roles do not grant the action."""

    exit_code = 1
    http_status = 403


class CelUnavailable(SeawayError):
    """The CEL library is not installed."""

    def __init__(self) -> None:
        super().__init__(
            "policies need the CEL library `cel-python`, which is not installed",
            hint="pip install 'seaway[policy]'",
        )
