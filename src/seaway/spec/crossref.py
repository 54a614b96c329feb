"""Checks that span several fields of seaway.yaml, which pydantic's per-field rules cannot see.

Each finding carries the path of the offending value, so the loader positions it at a
file:line like any other problem.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from seaway.spec.models import PipelineSpec, ProjectSpec
from seaway.spec.problems import Severity
from seaway.spec.types import DatasetRef, StepOutputRef, parse_input_ref, parse_step_ref
from seaway.spec.yamlio import Path


@dataclass(frozen=True)
class Finding:
    path: Path
    message: str
    severity: Severity = "error"
    key: bool = False


def did_you_mean(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def check_project(spec: ProjectSpec) -> list[Finding]:
    findings: list[Finding] = []
    for name, pipeline in spec.pipelines.items():
        findings += _check_pipeline(spec, name, pipeline)
    findings += _check_monitoring(spec)
    findings += _check_policies(spec)
    return findings


def _check_pipeline(spec: ProjectSpec, name: str, pipeline: PipelineSpec) -> list[Finding]:
    findings: list[Finding] = []
    steps = pipeline.steps
    depends: dict[str, list[str]] = {s: [] for s in steps}
    for step_name, step in steps.items():
        at = ("pipelines", name, "steps", step_name)
        for arg, text in step.inputs.items():
            ref = parse_input_ref(text)
            if isinstance(ref, DatasetRef) and ref.name not in spec.datasets:
                findings.append(
                    Finding(
                        (*at, "inputs", arg),
                        f"dataset '{ref.name}' is not declared under datasets"
                        + did_you_mean(ref.name, spec.datasets),
                    )
                )
            elif isinstance(ref, StepOutputRef):
                problem = _output_problem(ref, pipeline, name)
                if problem:
                    findings.append(Finding((*at, "inputs", arg), problem))
                if ref.step in steps:
                    depends[step_name].append(ref.step)
        for i, param in enumerate(step.params):
            if param not in pipeline.params:
                findings.append(
                    Finding(
                        (*at, "params", i),
                        f"param '{param}' is not declared in pipelines.{name}.params"
                        + did_you_mean(param, pipeline.params),
                    )
                )
        for i, need in enumerate(step.needs):
            if need == step_name:
                findings.append(Finding((*at, "needs", i), "a step cannot need itself"))
            elif need not in steps:
                findings.append(
                    Finding(
                        (*at, "needs", i),
                        f"no step '{need}' in pipeline '{name}'" + did_you_mean(need, steps),
                    )
                )
            else:
                depends[step_name].append(need)
    cycle = find_cycle(depends)
    if cycle:
        findings.append(
            Finding(
                ("pipelines", name, "steps", cycle[0]),
                "steps depend on each other in a cycle: " + " → ".join(cycle),
                key=True,
            )
        )
    if pipeline.register_ is not None:
        findings += _check_register(spec, name, pipeline)
    return findings


def _output_problem(ref: StepOutputRef, pipeline: PipelineSpec, name: str) -> str | None:
    step = pipeline.steps.get(ref.step)
    if step is None:
        return f"no step '{ref.step}' in pipeline '{name}'" + did_you_mean(ref.step, pipeline.steps)
    if ref.output in step.outputs:
        return None
    if not step.outputs:
        return f"step '{ref.step}' declares no outputs; add '{ref.output}' to its outputs"
    return f"step '{ref.step}' has no output '{ref.output}'" + (
        did_you_mean(ref.output, step.outputs) or f"; its outputs: {', '.join(step.outputs)}"
    )


def _check_register(spec: ProjectSpec, name: str, pipeline: PipelineSpec) -> list[Finding]:
    assert pipeline.register_ is not None
    at = ("pipelines", name, "register")
    findings: list[Finding] = []
    ref = parse_step_ref(pipeline.register_.from_)
    if ref is not None:
        problem = _output_problem(ref, pipeline, name)
        if problem:
            findings.append(Finding((*at, "from"), problem))
    model = spec.models.get(pipeline.register_.model)
    flavor = pipeline.register_.flavor
    if model is not None and model.flavor and flavor and model.flavor != flavor:
        findings.append(
            Finding(
                (*at, "flavor"),
                f"flavor '{flavor}' differs from models.{pipeline.register_.model}.flavor "
                f"'{model.flavor}'",
            )
        )
    return findings


def find_cycle(depends: dict[str, list[str]]) -> list[str] | None:
    """A dependency cycle as [a, b, …, a], or None. Deterministic: follows declaration order."""
    done: set[str] = set()
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in on_stack:
            return [*stack[stack.index(node) :], node]
        if node in done:
            return None
        stack.append(node)
        on_stack.add(node)
        for dep in depends.get(node, []):
            cycle = visit(dep)
            if cycle:
                return cycle
        stack.pop()
        on_stack.discard(node)
        done.add(node)
        return None

    for node in depends:
        cycle = visit(node)
        if cycle:
            return cycle
    return None


def _check_monitoring(spec: ProjectSpec) -> list[Finding]:
    findings: list[Finding] = []
    known = spec.registered_models()
    for model, monitor in spec.monitoring.items():
        if model not in known:
            findings.append(
                Finding(
                    ("monitoring", model),
                    f"model '{model}' is not declared under models and no pipeline registers it"
                    + did_you_mean(model, known),
                    severity="warning",
                    key=True,
                )
            )
        for trigger_name in ("on_drift", "on_quality_drop"):
            trigger = getattr(monitor, trigger_name)
            if trigger is not None and trigger.retrain and trigger.retrain not in spec.pipelines:
                findings.append(
                    Finding(
                        ("monitoring", model, trigger_name, "retrain"),
                        f"no pipeline '{trigger.retrain}'"
                        + did_you_mean(trigger.retrain, spec.pipelines),
                    )
                )
            elif trigger is not None and trigger.retrain:
                registers = spec.pipelines[trigger.retrain].register_
                if registers is None or registers.model != model:
                    what = f"registers '{registers.model}'" if registers else "registers no model"
                    findings.append(
                        Finding(
                            ("monitoring", model, trigger_name, "retrain"),
                            f"pipeline '{trigger.retrain}' {what}, so retraining could not "
                            f"produce a new version of '{model}'; name a pipeline whose "
                            f"`register.model` is '{model}'",
                        )
                    )
    return findings


def _check_policies(spec: ProjectSpec) -> list[Finding]:
    findings: list[Finding] = []
    seen: dict[str, int] = {}
    for i, policy in enumerate(spec.policies):
        for field in ("when", "require"):
            if not getattr(policy, field).strip():
                findings.append(
                    Finding(
                        ("policies", i, field),
                        f"`{field}` is empty; write a CEL expression (`true` always holds)",
                    )
                )
        if policy.name in seen:
            findings.append(
                Finding(
                    ("policies", i, "name"),
                    f"policy name '{policy.name}' is already used by policies[{seen[policy.name]}]",
                )
            )
        else:
            seen[policy.name] = i
    return findings
