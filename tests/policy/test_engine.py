"""Compiling policies (errors with positions) and evaluating them against requests."""

from __future__ import annotations

import copy
import sys
from datetime import UTC, datetime
from typing import Any

import pytest

from seaway.errors import SpecError
from seaway.policy import (
    CelUnavailable,
    PolicyError,
    PolicyRequest,
    compile_policies,
    evaluate,
)
from seaway.spec.models import PolicySpec


def policy(name: str = "p", when: str = "true", require: str = "true", **kw: Any) -> PolicySpec:
    return PolicySpec(name=name, when=when, require=require, **kw)


def compile_error(*specs: PolicySpec) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        compile_policies(specs)
    return info.value


# --- Compiling --------------------------------------------------------------------------------


def test_syntax_error_names_policy_field_and_position() -> None:
    err = compile_error(policy("prod-gate", when='environment == "prod" &&'))
    [problem] = err.details
    assert (problem.policy, problem.field) == ("prod-gate", "when")
    assert (problem.line, problem.column) == (1, 25)
    assert "ends too early" in problem.message
    assert err.exit_code == 2
    text = str(err)
    assert "policy 'prod-gate', `when` at 1:25" in text
    # The caret sits under column 25, just past `&&` (each line is indented by 6).
    assert '      environment == "prod" &&\n' + " " * (6 + 24) + "^" in text


def test_syntax_error_on_a_later_line() -> None:
    err = compile_error(policy(require='version.signed &&\n  gates.passed ) "x"'))
    [problem] = err.details
    assert (problem.field, problem.line, problem.column) == ("require", 2, 16)
    assert "unexpected ')'" in problem.message


def test_unclosed_string() -> None:
    [problem] = compile_error(policy(require='actor == "bob')).details
    assert (problem.line, problem.column) == (1, 10)
    assert "closing quote" in problem.message


@pytest.mark.parametrize(
    ("expression", "column", "words"),
    [
        ('enviroment == "prod"', 1, ["unknown name 'enviroment'", "did you mean 'environment'"]),
        ("version.signd", 9, ["no field 'signd'", "did you mean 'signed'"]),
        ('approvals.role == "x"', 11, ["on a list", "exists("]),
        ("gates.results.all(g, g.stat == 'ok')", 24, ["no field 'stat'", "'status'"]),
        ('environment.name == "x"', 13, ["a string, which has no fields"]),
        ("frobnicate(version)", 1, ["unknown function 'frobnicate()'"]),
        ('actor.startWith("a")', 7, ["unknown method '.startWith()'", "'startsWith'"]),
        ("approvals.exists(1, true)", 11, ["first argument of .exists() must be a variable"]),
        ("approvals.all(a)", 11, [".all() takes 2 arguments"]),
        ("a.role == 'x'", 1, ["unknown name 'a'"]),
        ("   ", 1, ["empty"]),
    ],
)
def test_static_checks(expression: str, column: int, words: list[str]) -> None:
    [problem] = compile_error(policy(require=expression)).details
    assert (problem.line, problem.column) == (1, column)
    for word in words:
        assert word in problem.message


def test_every_problem_of_every_policy_is_reported() -> None:
    err = compile_error(
        policy("a", when="nope"),
        policy("b", require="version.signed"),
        policy("c", when="(", require="foo()"),
    )
    assert [(p.policy, p.field) for p in err.details] == [
        ("a", "when"),
        ("c", "when"),
        ("c", "require"),
    ]
    assert err.message == "2 policies in seaway.yaml do not compile"


def test_valid_expressions_compile() -> None:
    compile_policies(
        [
            policy(
                require='has(version.metrics.auc) && version.metrics["auc"] >= 0.8 '
                '&& "champion" in version.aliases && size(approvals) >= 2 '
                '&& gates.results.filter(g, g.required).all(g, g.status == "passed") '
                '&& version.lineage.run != "" && roles.exists(r, r.startsWith("ml-")) '
                "&& version.metrics.exists(k, k == 'auc') && int(version.age_hours) < 48 "
                "&& approvals.map(a, a.actor).exists_one(x, x == actor) == false "
                '&& type(version.number) == int && version.scan in ["safe", "suspicious"]'
            )
        ]
    )


def test_missing_cel_library_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "celpy", None)
    with pytest.raises(CelUnavailable) as info:
        compile_policies([policy(require="version.number == 424242")])
    assert "pip install 'seaway[policy]'" in str(info.value)


# --- The DESIGN example -----------------------------------------------------------------------


def decide(spec: PolicySpec, request: dict[str, Any]) -> Any:
    return evaluate(compile_policies([spec]), request)


def test_design_policy_allows_a_proper_prod_promotion(
    design_policy: PolicySpec, good_request: dict[str, Any]
) -> None:
    decision = decide(design_policy, good_request)
    assert decision.allowed
    [outcome] = decision.outcomes
    assert (outcome.applies, outcome.passed, outcome.message, outcome.error) == (
        True,
        True,
        None,
        None,
    )


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda r: r["version"].update(signed=False), id="unsigned"),
        pytest.param(lambda r: r["version"].pop("signed"), id="signature-unknown"),
        pytest.param(lambda r: r["gates"].update(passed=False), id="gates-failed"),
        pytest.param(lambda r: r.pop("gates"), id="no-gate-report"),
        pytest.param(lambda r: r["approvals"][0].update(actor="alice"), id="self-approval"),
        pytest.param(lambda r: r["approvals"][0].update(role="ml-engineer"), id="wrong-role"),
        pytest.param(lambda r: r.update(approvals=[]), id="no-approval"),
    ],
)
def test_design_policy_blocks(
    design_policy: PolicySpec, good_request: dict[str, Any], change: Any
) -> None:
    request = copy.deepcopy(good_request)
    change(request)
    decision = decide(design_policy, request)
    assert not decision.allowed
    assert decision.blocked_by == ["prod-needs-approval"]
    [outcome] = decision.outcomes
    assert outcome.applies and outcome.passed is False and outcome.error is None
    assert outcome.message == design_policy.message


def test_a_second_approval_from_a_release_manager_suffices(
    design_policy: PolicySpec, good_request: dict[str, Any]
) -> None:
    request = copy.deepcopy(good_request)
    request["approvals"] = [
        {"actor": "alice", "role": "release-manager"},
        {"actor": "carol", "role": "release-manager"},
    ]
    assert decide(design_policy, request).allowed


def test_design_policy_leaves_other_environments_alone(design_policy: PolicySpec) -> None:
    request = {"environment": "staging", "model": "churn-classifier"}
    decision = decide(design_policy, request)
    assert decision.allowed
    [outcome] = decision.outcomes
    assert (outcome.applies, outcome.passed) == (False, None)


# --- Runtime errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "expression", "words"),
    [
        ("require", "version.metrics.auc >= 0.8", ["no key 'auc'", "has(", "at 1:1"]),
        ("require", 'version.signed && version.number + "a" == 1', ["'+'", "(int, string)"]),
        ("require", "version.number", ["gave int 7, not true or false"]),
        ("when", 'version.lineage.run == "r1"', ["when:", "'run'"]),
    ],
)
def test_evaluation_errors_block_with_the_error(
    good_request: dict[str, Any], field: str, expression: str, words: list[str]
) -> None:
    request = copy.deepcopy(good_request)
    request["version"]["metrics"] = {}
    spec = policy("guard", message="needs auc", **{field: expression})
    decision = decide(spec, request)
    assert not decision.allowed
    [outcome] = decision.outcomes
    assert outcome.applies and outcome.passed is False and outcome.blocking
    assert outcome.message == "needs auc"
    assert outcome.error is not None
    for word in words:
        assert word in outcome.error
    assert decision.errors == [outcome]


def test_guarded_optional_key_does_not_error(good_request: dict[str, Any]) -> None:
    spec = policy(require="!has(version.metrics.latency) || version.metrics.latency < 20")
    assert decide(spec, good_request).allowed


def test_compiled_policies_evaluate_many_requests(
    design_policy: PolicySpec, good_request: dict[str, Any]
) -> None:
    [compiled] = compile_policies([design_policy])
    results = []
    for signed in (True, False, True):
        request = copy.deepcopy(good_request)
        request["version"]["signed"] = signed
        results.append(compiled.evaluate(request).passed)
    assert results == [True, False, True]


def test_several_policies_and_the_decision_json(
    design_policy: PolicySpec, good_request: dict[str, Any]
) -> None:
    fresh = policy("fresh", require="version.age_hours < 1", message="too old")
    scanned = policy("scanned", require='version.scan == "safe"')
    decision = evaluate(compile_policies([design_policy, fresh, scanned]), good_request)
    assert decision.blocked_by == ["fresh"]
    data = decision.to_dict()
    assert data["allowed"] is False
    assert [p["policy"] for p in data["policies"]] == ["prod-needs-approval", "fresh", "scanned"]
    assert data["policies"][1] == {
        "policy": "fresh",
        "applies": True,
        "passed": False,
        "blocking": True,
        "message": "too old",
        "error": None,
    }
    no_message = evaluate(compile_policies([policy("x", require="false")]), good_request)
    assert no_message.outcomes[0].message == "policy 'x' requires false"


def test_evaluate_accepts_specs_and_no_policies(
    design_policy: PolicySpec, good_request: dict[str, Any]
) -> None:
    assert evaluate([design_policy], good_request).allowed
    assert evaluate([], good_request).allowed


# --- The request ------------------------------------------------------------------------------


def test_request_defaults_count_against_it() -> None:
    request = PolicyRequest.from_dict({"environment": "prod", "model": "m"})
    assert request.version.signed is False
    assert request.gates.passed is False
    assert request.version.scan == "unscanned"
    assert request.approvals == []


def test_request_to_cel_types(good_request: dict[str, Any]) -> None:
    import celpy

    good_request["approvals"][0]["at"] = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    request = PolicyRequest.from_dict(good_request)
    assert request.approvals[0].at == "2026-01-02T03:04:00+00:00"
    cel = request.to_cel()
    assert isinstance(cel["version"]["age_hours"], celpy.celtypes.DoubleType)
    assert isinstance(cel["version"]["number"], celpy.celtypes.IntType)
    assert isinstance(cel["version"]["signed"], celpy.celtypes.BoolType)
    assert isinstance(cel["version"]["metrics"]["auc"], celpy.celtypes.DoubleType)
    assert isinstance(cel["approvals"], celpy.celtypes.ListType)
    assert request.to_dict()["version"]["age_hours"] == 5.0


def test_bad_request_lists_its_problems() -> None:
    with pytest.raises(SpecError) as info:
        PolicyRequest.from_dict(
            {"environment": "prod", "version": {"signed": "yes", "numbr": 3}, "extra": 1}
        )
    problems = "\n".join(info.value.problems)
    assert "model: Field required" in problems
    assert "version.signed:" in problems
    assert "version.numbr: unknown field" in problems
    assert "extra: unknown field" in problems
