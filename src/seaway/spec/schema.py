"""JSON Schemas of seaway.yaml and environment files, for editors and `seaway schema`.

Editors (VS Code's YAML extension, JetBrains) complete keys and flag typos from these.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def project_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of seaway.yaml."""
    return copy.deepcopy(cached_schema("project"))


def environment_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of environments/NAME.yaml."""
    return copy.deepcopy(cached_schema("environment"))


@cache
def cached_schema(kind: str) -> dict[str, Any]:
    """Shared, not to be modified: the loader reads it to suggest keys."""
    from seaway.spec.models import EnvironmentSpec, ProjectSpec

    if kind == "project":
        model: Any = ProjectSpec
        title = "seaway.yaml"
        about = "A seaway project: datasets, pipelines, models, gates, monitoring, policies."
    else:
        model = EnvironmentSpec
        title = "seaway environment"
        about = "environments/NAME.yaml: the model versions serving there and their rollout."
    body = _tidy(model.model_json_schema(by_alias=True, mode="validation"))
    body.pop("title", None)
    body.pop("description", None)
    return {"$schema": DRAFT, "title": title, "description": about, **body}


def _tidy(node: Any) -> Any:
    if isinstance(node, list):
        return [_tidy(v) for v in node]
    if not isinstance(node, dict):
        return node
    # pydantic writes tagged unions as oneOf. Our members are closed objects told apart by a
    # required key, so anyOf accepts the same documents and also holds for the param union,
    # where a typed param ({type, default}) is also a valid plain value.
    out = {("anyOf" if k == "oneOf" else k): _tidy(v) for k, v in node.items()}
    # Maps keyed by names get patternProperties; without this, a badly formed name would
    # pass the schema although the loader refuses it.
    if "patternProperties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out
