"""The JSON Schemas: well-formed draft 2020-12, accept the valid corpus, catch typos."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from seaway.spec import environment_json_schema, project_json_schema

TESTDATA = Path(__file__).parent / "testdata"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def is_environment(path: Path) -> bool:
    return path.name.startswith("valid-env-")


def test_schemas_declare_draft_and_title() -> None:
    project = project_json_schema()
    env = environment_json_schema()
    assert project["$schema"] == DRAFT and env["$schema"] == DRAFT
    assert project["title"] == "seaway.yaml"
    assert env["title"] == "seaway environment"
    assert project["required"] == ["name"]
    assert set(project["properties"]) == {
        "name",
        "description",
        "store",
        "datasets",
        "pipelines",
        "models",
        "monitoring",
        "policies",
        "roles",
    }
    assert project["additionalProperties"] is False


def test_fields_carry_descriptions_for_editors() -> None:
    schema = project_json_schema()
    step = schema["$defs"]["StepSpec"]["properties"]
    assert "package.module:function" in step["run"]["description"]
    assert all("description" in field for field in schema["properties"].values())


def test_register_from_appears_under_its_yaml_key() -> None:
    register = project_json_schema()["$defs"]["RegisterSpec"]
    assert "from" in register["properties"] and "from_" not in register["properties"]


def test_callers_get_their_own_copy() -> None:
    project_json_schema()["title"] = "changed"
    assert project_json_schema()["title"] == "seaway.yaml"


@pytest.mark.parametrize("path", sorted(TESTDATA.glob("valid-*.yaml")), ids=lambda p: p.name)
def test_schema_accepts_the_valid_corpus(path: Path) -> None:
    schema = environment_json_schema() if is_environment(path) else project_json_schema()
    document = yaml.safe_load(path.read_text())
    validator(schema).validate(document)


@pytest.mark.parametrize(
    "document",
    [
        {"name": "d", "datasets": {"a": {"checks": [{"colum": "x", "min": 0}]}}},
        {"name": "d", "datasets": {"Bad Name": {}}},
        {"name": "d", "store": {"link": "symlink"}},
        {"name": "d", "monitoring": {"m": {"on_drift": {"psi_above": 0.1, "cooldown": "60"}}}},
        {"name": "d", "models": {"m": {"gates": [{"no_regresion": {"metric": "auc"}}]}}},
        {"description": "no name"},
    ],
)
def test_schema_rejects_what_the_loader_rejects(document: dict[str, Any]) -> None:
    assert not validator(project_json_schema()).is_valid(document)


@pytest.mark.parametrize(
    "document",
    [
        {"target": "k8s"},
        {"deployments": {"m": {"strategy": {"direct": {}}}}},
        {
            "deployments": {
                "m": {"version": 1, "strategy": {"direct": {}, "shadow": {"duration": "1h"}}}
            }
        },
        {"deployments": {"m": {"version": 0}}},
    ],
)
def test_environment_schema_rejects(document: dict[str, Any]) -> None:
    assert not validator(environment_json_schema()).is_valid(document)
