"""Param values of a run: the spec's defaults, then a params file, then `--param k=v`.

Values given on the command line are YAML scalars (`1.0`, `true`, `abc`). Every given value
is checked against its declaration (`ParamSpec.check`); a param declared by a plain default
takes the default's type. A run with no overrides uses the defaults, which were checked when
the spec was loaded, so it never needs the full spec (and pydantic).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from seaway.errors import InputError, UsageError

if TYPE_CHECKING:
    from seaway.pipeline.plan import PipelinePlan
    from seaway.project import Project


def parse_assignments(pairs: list[str]) -> dict[str, Any]:
    """`["C=1.0", "name=abc"]` → `{"C": 1.0, "name": "abc"}` (values read as YAML)."""
    out: dict[str, Any] = {}
    if not pairs:
        return out
    import yaml

    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(
                f"--param {pair!r} is not KEY=VALUE", hint="write for example --param C=0.5"
            )
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        out[key] = value
    return out


def read_params_file(path: Path) -> dict[str, Any]:
    """A YAML or JSON file holding a mapping of param values."""
    import yaml

    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError(f"params file {path} does not exist") from None
    except OSError as exc:
        raise InputError(f"cannot read params file {path}: {exc.strerror or exc}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"params file {path} is not valid YAML or JSON: {exc}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict) or not all(isinstance(k, str) for k in doc):
        raise UsageError(
            f"params file {path} must hold a mapping of param names to values",
            hint="for example: {C: 0.5, seed: 1}",
        )
    return doc


def resolve_params(project: Project, plan: PipelinePlan, given: dict[str, Any]) -> dict[str, Any]:
    """The full param values of a run of `plan`, with `given` overriding the defaults."""
    unknown = [k for k in given if k not in plan.declared]
    if unknown:
        from seaway.spec.crossref import did_you_mean

        name = unknown[0]
        known = ", ".join(plan.declared) or "none"
        raise UsageError(
            f"pipeline '{plan.name}' has no param '{name}'{did_you_mean(name, plan.declared)}",
            hint=f"its params are: {known}",
        )
    values = {**plan.defaults, **given}
    missing = [p for p in plan.required if p not in values]
    if missing:
        raise UsageError(
            f"pipeline '{plan.name}' needs a value for param '{missing[0]}' (it has no default)",
            hint=f"pass --param {missing[0]}=VALUE",
        )
    if given:
        _check(project, plan, given, values)
    return values


def _check(
    project: Project, plan: PipelinePlan, given: dict[str, Any], values: dict[str, Any]
) -> None:
    from seaway.spec.pipeline import ParamSpec

    spec = project.spec.pipelines[plan.name]
    for key, value in given.items():
        param = spec.param_spec(key) or ParamSpec(default=spec.params[key])
        problem = param.check(value)
        if problem:
            raise UsageError(
                f"pipeline '{plan.name}': param '{key}' expects {_expected(param)}; {problem}",
                hint=f"pass a value of the declared type, e.g. --param {key}=…",
            )
        # 1 given for a float param stays a float: the step and the cache key see 1.0.
        if param.kind == "float" and isinstance(value, int) and not isinstance(value, bool):
            values[key] = float(value)


def _expected(param: Any) -> str:
    parts = [param.kind or "any value"]
    if param.min is not None:
        parts.append(f">= {param.min}")
    if param.max is not None:
        parts.append(f"<= {param.max}")
    if param.choices is not None:
        parts.append(f"one of {param.choices}")
    return " ".join(parts)
