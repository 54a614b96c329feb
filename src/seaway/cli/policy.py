"""`seaway policy …`: thin commands over `seaway.policy`.

Both commands use the policies of the project's `seaway.yaml`. `eval` takes a registered
version and an environment (`eval churn@7 --env prod`, the request built by
`seaway.policy.promotion.build_request`) or a request file (`eval --request FILE`).

Exit codes: 0 when the request is allowed / every policy test holds, 1 when a request is
blocked / a test fails or the identity's token is refused, 2 when a policy does not
compile, an input file is not valid, or the version or environment is unknown.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from seaway.cli.state import STATE

if TYPE_CHECKING:
    from seaway.policy import PolicyDecision, PolicyRequest, TestOutcome
    from seaway.project import Project

app = typer.Typer(no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON only.")]


@app.command("test")
def test_cmd(as_json: JsonOpt = False) -> None:
    """Check the example requests in policies/tests/ against the policies; exit 1 on a miss."""
    from seaway.cli.output import line, print_json
    from seaway.policy import compile_policies, run_policy_tests
    from seaway.policy.suite import TESTS_DIR

    project = STATE.project()
    policies = compile_policies(project.spec.policies)
    outcomes = run_policy_tests(project.root, policies)
    failed = [o for o in outcomes if not o.passed]
    if as_json:
        print_json(
            {
                "passed": not failed,
                "total": len(outcomes),
                "failed": len(failed),
                "tests": [o.to_dict() for o in outcomes],
            }
        )
    elif not outcomes:
        line(
            f"no policy tests: add YAML files under {TESTS_DIR.as_posix()}/ "
            "(name, request, expect; see seaway.policy.suite)"
        )
    else:
        for outcome in outcomes:
            _print_outcome(outcome)
        line(f"{len(outcomes) - len(failed)} of {len(outcomes)} policy tests hold")
    if failed:
        raise typer.Exit(1)


def _print_outcome(outcome: TestOutcome) -> None:
    from seaway.cli.output import line

    mark = "PASS" if outcome.passed else "FAIL"
    line(f"{mark}  {outcome.name}  ({outcome.file})")
    if outcome.passed:
        return
    expected = outcome.expected
    line(f"      expected: {_verdict(expected.allowed, expected.blocked_by)}")
    line(f"      actual:   {_verdict(outcome.decision.allowed, outcome.decision.blocked_by)}")
    for failure in outcome.failures:
        line(f"      - {failure}")
    for o in outcome.decision.outcomes:
        if o.blocking:
            line(f"      {o.policy}: {o.error or o.message}")


def _verdict(allowed: bool, blocked_by: list[str] | None) -> str:
    if allowed:
        return "allowed"
    if blocked_by is None:
        return "blocked"
    return f"blocked by {', '.join(sorted(blocked_by))}"


@app.command("eval")
def eval_cmd(
    ref: Annotated[
        str | None,
        typer.Argument(
            help="A registered version (NAME@N, NAME@ALIAS); needs --env.", metavar="[NAME@V]"
        ),
    ] = None,
    env: Annotated[
        str | None,
        typer.Option("--env", "-e", help="The environment to promote into.", metavar="ENV"),
    ] = None,
    request: Annotated[
        Path | None,
        typer.Option(
            "--request",
            "-r",
            help="A promotion request as YAML or JSON (a policy test file works too).",
            metavar="FILE",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate the policies on one promotion request; exit 1 when it is blocked.

    The request is either a registered version promoted into --env by the current
    identity (its gate report, signature, scan and approvals read from the store), or a
    file. Evaluating is a what-if: nothing is recorded."""
    from seaway.cli.output import print_json
    from seaway.policy import compile_policies, evaluate

    project = STATE.project()
    policies = compile_policies(project.spec.policies)
    req = _request(project, ref, env, request)
    decision = evaluate(policies, req)
    if as_json:
        print_json({**decision.to_dict(), "request": req.to_dict()})
    else:
        _print_decision(decision, req)
    if not decision.allowed:
        raise typer.Exit(1)


def _request(
    project: Project, ref: str | None, env: str | None, path: Path | None
) -> PolicyRequest:
    """Where the request comes from: a registered version and an environment, or a file."""
    from seaway.errors import UsageError
    from seaway.policy import load_request

    if path is not None:
        if ref is not None or env is not None:
            raise UsageError(
                "give either NAME@V --env ENV or --request FILE, not both",
                hint="a request file already names its model, version and environment",
            )
        return load_request(path)
    if ref is None:
        raise UsageError(
            "no request to evaluate",
            hint="pass NAME@V --env ENV (a registered version) or --request FILE",
        )
    if env is None:
        raise UsageError(
            f"which environment is {ref} to be promoted into?",
            hint=f"pass --env, e.g. seaway policy eval {ref} --env prod",
        )
    from seaway.policy.promotion import build_request

    return build_request(project, ref, env)


def _print_decision(decision: PolicyDecision, request: PolicyRequest) -> None:
    from rich.markup import escape

    from seaway.cli.output import line, table

    subject = f"{request.model}@{request.version.number} → {request.environment}"
    if not decision.outcomes:
        line(f"{subject}: allowed (seaway.yaml declares no policies)")
        return
    rows = []
    for o in decision.outcomes:
        if not o.applies:
            result, detail = "-", "does not apply"
        elif o.passed:
            result, detail = "PASS", ""
        else:
            result, detail = "BLOCK", o.error or o.message or ""
        rows.append((escape(o.policy), "yes" if o.applies else "no", result, escape(detail)))
    table(["policy", "applies", "result", "detail"], rows, title=escape(subject))
    if decision.allowed:
        line("allowed")
    else:
        line(f"blocked by {', '.join(decision.blocked_by)}")
