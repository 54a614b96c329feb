"""The model registry: versions, aliases, flavors, lineage, signing, and the static scan of
model files.

    from seaway.registry import register_model, get_version, load_model
    result = register_model(project, "churn", "model.skops", flavor="sklearn")
    model = load_model("churn@champion")
    model.predict(rows)

A version is immutable and content-addressed (registering the same files again returns the
existing version). References are `NAME` (newest), `NAME@N` or `NAME@ALIAS`.
"""

from seaway.registry.aliases import AliasMove, alias_history, remove_alias, set_alias
from seaway.registry.lineage import LineageNode, lineage_tree
from seaway.registry.loading import load_model, load_version, materialize
from seaway.registry.register import RegisterResult, UnsafeModelFile, register_model
from seaway.registry.versions import (
    ModelSummary,
    ModelVersion,
    get_version,
    list_models,
    list_versions,
    parse_ref,
)

__all__ = [
    "AliasMove",
    "LineageNode",
    "ModelSummary",
    "ModelVersion",
    "RegisterResult",
    "UnsafeModelFile",
    "alias_history",
    "get_version",
    "lineage_tree",
    "list_models",
    "list_versions",
    "load_model",
    "load_version",
    "materialize",
    "parse_ref",
    "register_model",
    "remove_alias",
    "set_alias",
]
