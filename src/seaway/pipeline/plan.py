"""A pipeline as the engine needs it: plain dataclasses, cached so a run skips pydantic.

Validating seaway.yaml costs about 0.2 s, more than a fully cached `seaway run` may take in
all. After a successful validation the pipelines are written to `.seaway/pipelines.json`
with the BLAKE3 of seaway.yaml's bytes and seaway's version; while both match, a run reads
that file instead (the same scheme as `seaway.settings`). Any edit to seaway.yaml changes
the hash, so the next run validates it again and reports its errors.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seaway import __version__
from seaway.errors import NotFound

if TYPE_CHECKING:
    from seaway.project import Project
    from seaway.spec.pipeline import PipelineSpec

CACHE_FILE = "pipelines.json"
_FORMAT = 1


@dataclass(frozen=True)
class DatasetInput:
    """`dataset:NAME` (version None: the latest) or `dataset:NAME@VERSION`."""

    name: str
    version: str | None


@dataclass(frozen=True)
class StepInput:
    """`STEP.OUTPUT`."""

    step: str
    output: str


def parse_ref(text: str) -> DatasetInput | StepInput:
    """An input reference of a validated spec (seaway.spec.types holds the full rules;
    importing it would import pydantic)."""
    if text.startswith("dataset:"):
        name, _, version = text[len("dataset:") :].partition("@")
        return DatasetInput(name, version or None)
    step, _, output = text.partition(".")
    return StepInput(step, output)


@dataclass(frozen=True)
class StepPlan:
    """One step of a pipeline, as declared."""

    name: str
    run: str | None = None
    cmd: str | None = None
    inputs: dict[str, str] = field(default_factory=dict)
    params: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    needs: list[str] = field(default_factory=list)

    @property
    def action(self) -> str:
        return self.run if self.run is not None else f"$ {self.cmd}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "run": self.run,
            "cmd": self.cmd,
            "inputs": dict(self.inputs),
            "params": list(self.params),
            "outputs": list(self.outputs),
            "metrics": list(self.metrics),
            "env": list(self.env),
            "needs": list(self.needs),
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> StepPlan:
        return cls(**doc)


@dataclass(frozen=True)
class RegisterPlan:
    model: str
    from_step: str
    from_output: str
    flavor: str | None = None


@dataclass(frozen=True)
class PipelinePlan:
    """A pipeline: its steps in declaration order, param defaults and what it registers.

    `typed` names the params declared with a type, range or choices; overriding any param
    loads the full spec to check the value (see seaway.pipeline.params)."""

    name: str
    steps: dict[str, StepPlan]
    defaults: dict[str, Any]
    declared: list[str]
    required: list[str]
    register: RegisterPlan | None = None

    def to_dict(self) -> dict[str, Any]:
        reg = self.register
        return {
            "name": self.name,
            "steps": [s.to_dict() for s in self.steps.values()],
            "defaults": self.defaults,
            "declared": self.declared,
            "required": self.required,
            "register": None
            if reg is None
            else {
                "model": reg.model,
                "from_step": reg.from_step,
                "from_output": reg.from_output,
                "flavor": reg.flavor,
            },
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> PipelinePlan:
        reg = doc.get("register")
        return cls(
            name=doc["name"],
            steps={s["name"]: StepPlan.from_dict(s) for s in doc["steps"]},
            defaults=doc["defaults"],
            declared=doc["declared"],
            required=doc["required"],
            register=RegisterPlan(**reg) if reg else None,
        )

    @classmethod
    def from_spec(cls, name: str, spec: PipelineSpec) -> PipelinePlan:
        steps = {
            step_name: StepPlan(
                name=step_name,
                run=s.run,
                cmd=s.cmd,
                inputs=dict(s.inputs),
                params=list(s.params),
                outputs=list(s.outputs),
                metrics=list(s.metrics),
                env=list(s.env),
                needs=list(s.needs),
            )
            for step_name, s in spec.steps.items()
        }
        register = None
        if spec.register_ is not None:
            step, _, output = spec.register_.from_.partition(".")
            register = RegisterPlan(spec.register_.model, step, output, spec.register_.flavor)
        required = [p for p in spec.params if (ps := spec.param_spec(p)) and ps.required]
        return cls(
            name=name,
            steps=steps,
            defaults=spec.defaults(),
            declared=list(spec.params),
            required=required,
            register=register,
        )


def _key(spec_bytes: bytes) -> str:
    from blake3 import blake3

    return blake3(spec_bytes + b"\0" + __version__.encode()).hexdigest()


def load_pipelines(project: Project) -> dict[str, PipelinePlan]:
    """Every pipeline of the project, from the cache while seaway.yaml is unchanged."""
    raw = project.spec_path.read_bytes()
    key = _key(raw)
    cache = project.state_dir / CACHE_FILE
    try:
        doc = json.loads(cache.read_bytes())
        if doc.get("format") == _FORMAT and doc.get("key") == key:
            return {n: PipelinePlan.from_dict(p) for n, p in doc["pipelines"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    spec = project.spec
    plans = {name: PipelinePlan.from_spec(name, p) for name, p in spec.pipelines.items()}
    doc = {"format": _FORMAT, "key": key, "pipelines": {n: p.to_dict() for n, p in plans.items()}}
    _write(cache, doc)
    return plans


def load_pipeline(project: Project, name: str) -> PipelinePlan:
    """The pipeline `name`, or NotFound naming the pipelines there are."""
    plans = load_pipelines(project)
    plan = plans.get(name)
    if plan is not None:
        return plan
    from seaway.spec.crossref import did_you_mean

    if not plans:
        raise NotFound(
            f"no pipeline '{name}': seaway.yaml declares no pipelines",
            hint="declare one under `pipelines:` in seaway.yaml",
        )
    known = ", ".join(sorted(plans))
    raise NotFound(
        f"no pipeline '{name}' in seaway.yaml{did_you_mean(name, plans)}",
        hint=f"the pipelines are: {known}",
    )


def _write(path: Path, doc: dict[str, Any]) -> None:
    """Best effort: a read-only state folder only costs the next validation."""
    import uuid

    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A value JSON cannot hold (a YAML date) raises here: such specs are not cached.
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError):
        with contextlib.suppress(OSError):
            tmp.unlink()
