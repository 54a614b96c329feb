"""Policy tests: example requests kept in the repository, with the decision they expect.

Each file `policies/tests/*.yaml` (or `.yml`) under the project root is one YAML document:

    name: release manager approves a signed version      # optional; default: the file name
    description: the happy path to prod                  # optional
    request:                                              # a PolicyRequest (see seaway.policy)
      environment: prod
      model: churn-classifier
      actor: alice
      roles: [ml-engineer]
      version: {number: 7, author: alice, signed: true, metrics: {auc: 0.91}}
      gates: {passed: true}
      approvals:
        - {actor: bob, role: release-manager, comment: looks good}
    expect:
      allowed: true
      blocked_by: []        # optional: the exact set of policies that block

`blocked_by` is compared as a set; leave it out to check only `allowed`. A test passes when
the decision matches. Files that are not valid are reported together, with file:line, as a
SpecError (exit 2), so a typo in a test is never mistaken for a policy failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from seaway.errors import SpecError
from seaway.policy.engine import CompiledPolicy, PolicyDecision, compile_policies, evaluate
from seaway.policy.request import PolicyRequest
from seaway.spec.models import PolicySpec
from seaway.spec.types import StrictModel, invalid

TESTS_DIR = Path("policies") / "tests"


class Expectation(StrictModel):
    allowed: bool = Field(description="Whether the request must be allowed.")
    blocked_by: list[str] | None = Field(
        default=None, description="The exact policies that must block (any order)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Expectation:
        if self.allowed and self.blocked_by:
            raise invalid("an allowed request is blocked by nothing: drop `blocked_by`")
        if not self.allowed and self.blocked_by == []:
            raise invalid("a blocked request is blocked by at least one policy")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"allowed": self.allowed, "blocked_by": self.blocked_by}


class PolicyTestCase(StrictModel):
    name: str | None = Field(default=None, description="Shown in reports; default: file name.")
    description: str | None = Field(default=None, description="What the case is about.")
    request: PolicyRequest = Field(description="The promotion request.")
    expect: Expectation = Field(description="The decision the policies must reach.")


@dataclass
class TestOutcome:
    """One policy test: what it expected, what the policies decided."""

    __test__ = False  # not a pytest test class, despite its name

    name: str
    file: str
    expected: Expectation
    decision: PolicyDecision
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": self.file,
            "passed": self.passed,
            "expected": self.expected.to_dict(),
            "actual": {
                "allowed": self.decision.allowed,
                "blocked_by": self.decision.blocked_by,
            },
            "failures": list(self.failures),
            "policies": [o.to_dict() for o in self.decision.outcomes],
        }


def policy_test_files(project_root: Path) -> list[Path]:
    folder = project_root / TESTS_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def load_policy_tests(project_root: Path) -> list[tuple[str, PolicyTestCase]]:
    """Read every test file: (file label, case) pairs; a SpecError lists all bad files."""
    from seaway.spec.problems import from_validation_error
    from seaway.spec.yamlio import parse

    cases: list[tuple[str, PolicyTestCase]] = []
    problems: list[str] = []
    schema: dict[str, Any] | None = None
    for path in policy_test_files(project_root):
        label = path.relative_to(project_root).as_posix()
        try:
            doc = parse(path.read_text(encoding="utf-8"))
        except OSError as exc:
            problems.append(f"{label}: cannot read: {exc.strerror or exc}")
            continue
        except Exception as exc:
            # A YAML syntax error; its text carries the line and column.
            problems.append(f"{label}: not valid YAML: {' '.join(str(exc).split())}")
            continue
        try:
            case = PolicyTestCase.model_validate(doc.data)
        except ValidationError as exc:
            schema = schema or PolicyTestCase.model_json_schema()
            problems.extend(str(p) for p in from_validation_error(exc, doc, label, schema))
            continue
        cases.append((label, case))
    if problems:
        raise SpecError(
            "some policy tests are not valid",
            problems=problems,
            hint=f"each file in {TESTS_DIR.as_posix()}/ holds name, request and expect "
            "(see seaway.policy.suite)",
        )
    return cases


def run_policy_tests(
    project_root: Path, policies: Sequence[CompiledPolicy | PolicySpec]
) -> list[TestOutcome]:
    """Evaluate every test file's request and compare with its expectation."""
    fresh = iter(compile_policies(p for p in policies if isinstance(p, PolicySpec)))
    compiled = [p if isinstance(p, CompiledPolicy) else next(fresh) for p in policies]
    known = {p.name for p in compiled}
    outcomes: list[TestOutcome] = []
    for label, case in load_policy_tests(project_root):
        decision = evaluate(compiled, case.request)
        name = case.name or Path(label).stem
        outcomes.append(
            TestOutcome(name, label, case.expect, decision, _compare(case.expect, decision, known))
        )
    return outcomes


def _compare(expect: Expectation, decision: PolicyDecision, known: set[str]) -> list[str]:
    failures: list[str] = []
    if expect.allowed != decision.allowed:
        failures.append(f"expected {_said(expect.allowed)}, got {_said(decision.allowed)}")
    if expect.blocked_by is not None:
        want, got = set(expect.blocked_by), set(decision.blocked_by)
        if want != got:
            failures.append(
                f"expected blocked by [{', '.join(sorted(want))}], got [{', '.join(sorted(got))}]"
            )
        unknown = sorted(want - known)
        if unknown:
            failures.append(f"no policy is named {', '.join(unknown)}")
    return failures


def _said(allowed: bool) -> str:
    return "allowed" if allowed else "blocked"
