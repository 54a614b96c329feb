"""Policy tests kept in the repository, and the `seaway policy` commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from seaway.errors import SpecError
from seaway.policy import compile_policies, run_policy_tests
from seaway.spec.models import PolicySpec

from .conftest import DESIGN_POLICY

SPEC = {
    "name": "churn",
    "policies": [
        DESIGN_POLICY,
        {
            "name": "scanned",
            "when": "true",
            "require": 'version.scan == "safe"',
            "message": "the model files must scan as safe",
        },
    ],
    "roles": {
        "ml-engineer": ["run", "register", "promote:staging"],
        "release-manager": ["approve", "promote:prod", "alias"],
    },
}


def write_case(root: Path, name: str, case: dict[str, Any]) -> Path:
    folder = root / "policies" / "tests"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(case, sort_keys=False))
    return path


def case(request: dict[str, Any], allowed: bool, blocked_by: list[str] | None = None) -> Any:
    expect: dict[str, Any] = {"allowed": allowed}
    if blocked_by is not None:
        expect["blocked_by"] = blocked_by
    return {"request": request, "expect": expect}


@pytest.fixture
def project(project_dir: Path, good_request: dict[str, Any]) -> Path:
    (project_dir / "seaway.yaml").write_text(yaml.safe_dump(SPEC, sort_keys=False))
    write_case(project_dir, "prod-approved", {"name": "prod, approved", **case(good_request, True)})
    self_approved = json.loads(json.dumps(good_request))
    self_approved["approvals"][0]["actor"] = "alice"
    write_case(project_dir, "self-approval", case(self_approved, False, ["prod-needs-approval"]))
    staging = {"environment": "staging", "model": "churn-classifier", "version": {"scan": "safe"}}
    write_case(project_dir, "staging", case(staging, True, []))
    return project_dir


def specs() -> list[PolicySpec]:
    return [PolicySpec.model_validate(p) for p in SPEC["policies"]]  # type: ignore[attr-defined]


def test_runner_passes_matching_expectations(project: Path) -> None:
    outcomes = run_policy_tests(project, compile_policies(specs()))
    assert [(o.name, o.file, o.passed) for o in outcomes] == [
        ("prod, approved", "policies/tests/prod-approved.yaml", True),
        ("self-approval", "policies/tests/self-approval.yaml", True),
        ("staging", "policies/tests/staging.yaml", True),
    ]
    assert outcomes[1].decision.blocked_by == ["prod-needs-approval"]


def test_runner_reports_expected_versus_actual(project: Path, good_request: dict[str, Any]) -> None:
    unscanned = json.loads(json.dumps(good_request))
    unscanned["version"]["scan"] = "unscanned"
    write_case(project, "wrong", case(unscanned, True))
    write_case(project, "wrong-set", case(unscanned, False, ["prod-needs-approval", "typo"]))
    outcomes = {o.name: o for o in run_policy_tests(project, specs())}
    wrong = outcomes["wrong"]
    assert not wrong.passed
    assert wrong.failures == ["expected allowed, got blocked"]
    data = wrong.to_dict()
    assert data["expected"] == {"allowed": True, "blocked_by": None}
    assert data["actual"] == {"allowed": False, "blocked_by": ["scanned"]}
    assert outcomes["wrong-set"].failures == [
        "expected blocked by [prod-needs-approval, typo], got [scanned]",
        "no policy is named typo",
    ]


def test_invalid_test_files_are_reported_with_their_lines(project: Path) -> None:
    folder = project / "policies" / "tests"
    (folder / "bad.yaml").write_text(
        "request:\n  environment: prod\n  model: m\n  version: {signed: maybe}\nexpect:\n"
        "  allowed: true\n  blocked_by: [scanned]\n"
    )
    (folder / "broken.yml").write_text("request: [\n")
    with pytest.raises(SpecError) as info:
        run_policy_tests(project, specs())
    problems = "\n".join(info.value.problems)
    assert "policies/tests/bad.yaml:4:" in problems
    assert "signed" in problems
    assert "an allowed request is blocked by nothing" in problems
    assert "policies/tests/broken.yml: not valid YAML" in problems


def test_no_tests_folder(tmp_path: Path) -> None:
    assert run_policy_tests(tmp_path, specs()) == []


# --- The CLI ----------------------------------------------------------------------------------


def test_cli_policy_test(project: Path, cli: Any, good_request: dict[str, Any]) -> None:
    result = cli("policy", "test")
    assert result.exit_code == 0, result.stderr
    assert "PASS  prod, approved  (policies/tests/prod-approved.yaml)" in result.stdout
    assert "3 of 3 policy tests hold" in result.stdout

    write_case(project, "wrong", case({**good_request, "environment": "prod"}, False))
    result = cli("policy", "test")
    assert result.exit_code == 1
    assert "FAIL  wrong" in result.stdout
    assert "expected: blocked" in result.stdout
    assert "actual:   allowed" in result.stdout

    result = cli("policy", "test", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert (data["passed"], data["total"], data["failed"]) == (False, 4, 1)
    assert data["tests"][3]["actual"] == {"allowed": True, "blocked_by": []}


def test_cli_policy_test_without_tests(project_dir: Path, cli: Any) -> None:
    result = cli("policy", "test")
    assert result.exit_code == 0
    assert "no policy tests" in result.stdout


def test_cli_policy_that_does_not_compile(project: Path, cli: Any) -> None:
    spec = json.loads(json.dumps(SPEC))
    spec["policies"][1]["require"] = 'version.scan == "safe" &&'
    (project / "seaway.yaml").write_text(yaml.safe_dump(spec))
    for command in (["policy", "test"], ["policy", "eval", "--request", "x.yaml"]):
        result = cli(*command)
        assert result.exit_code == 2
        assert "policy 'scanned' in seaway.yaml does not compile" in result.stderr
        assert "`require` at 1:26" in result.stderr


def test_cli_policy_eval(project: Path, cli: Any, good_request: dict[str, Any]) -> None:
    request = project / "request.yaml"
    request.write_text(yaml.safe_dump(good_request))
    result = cli("policy", "eval", "--request", request)
    assert result.exit_code == 0, result.stderr
    assert "churn-classifier@7 → prod" in result.stdout
    assert result.stdout.strip().endswith("allowed")

    unsigned = {**good_request, "version": {**good_request["version"], "signed": False}}
    request.write_text(json.dumps(unsigned))
    result = cli("policy", "eval", "--request", request, "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["blocked_by"] == ["prod-needs-approval"]
    assert data["request"]["version"]["signed"] is False

    # A policy test file is a request too.
    result = cli("policy", "eval", "-r", "policies/tests/self-approval.yaml")
    assert result.exit_code == 1
    assert "blocked by prod-needs-approval" in result.stdout


def test_cli_policy_eval_bad_input(project: Path, cli: Any) -> None:
    result = cli("policy", "eval")
    assert result.exit_code == 2
    assert "--request" in result.stderr
    result = cli("policy", "eval", "--request", "missing.yaml")
    assert result.exit_code == 2
    assert "cannot read missing.yaml" in result.stderr
    (project / "bad.yaml").write_text("environment: prod\nmodel: m\nversion:\n  number: seven\n")
    result = cli("policy", "eval", "--request", "bad.yaml")
    assert result.exit_code == 2
    assert "bad.yaml:4:" in result.stderr
