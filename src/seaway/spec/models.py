"""The models of `seaway.yaml` (ProjectSpec) and, re-exported, of environment files.

Every model forbids unknown keys, so a typo is an error that names the key and the line
instead of a setting silently ignored. Pipelines, gates and environments have modules of
their own; this one holds the top level and the smaller sections.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, WithJsonSchema, field_validator, model_validator

from seaway.spec.checks import Check
from seaway.spec.environment import DeploymentSpec, EnvironmentSpec, StrategySpec
from seaway.spec.gates import GATE_KINDS, AnyGate, Gate, gate_kind
from seaway.spec.pipeline import Flavor, ParamSpec, PipelineSpec, RegisterSpec, StepSpec
from seaway.spec.types import Duration, MetricName, Name, StrictModel, describe, invalid

LinkMode = Literal["auto", "copy", "reflink", "hardlink"]
DataFormat = Literal["auto", "parquet", "csv"]
ColumnKind = Literal["int", "float", "string", "bool", "date", "timestamp", "binary", "tensor"]


class StoreSpec(StrictModel):
    metadata: str = Field(
        default="sqlite:///.seaway/seaway.db",
        description="SQLAlchemy URL of the metadata database (sqlite:/// or postgresql+psycopg://).",
    )
    artifacts: str = Field(
        default=".seaway/objects",
        description="Where blobs live: a directory (relative to the project) or s3://bucket/prefix.",
    )
    link: LinkMode = Field(
        default="auto",
        description="How `data add` puts files into a local store: auto reflinks where the "
        "filesystem can and copies otherwise; hardlink shares the file and makes it read-only.",
    )


class DatasetSpec(StrictModel):
    path: str | list[str] | None = Field(
        default=None,
        description="File, directory or glob (or several) relative to the project root.",
    )
    format: DataFormat = Field(default="auto", description="auto: from the file extension.")
    description: str | None = Field(default=None, description="What the data is.")
    checks: list[Check] = Field(
        default_factory=list, description="Data-quality checks run on every new version."
    )

    @field_validator("path")
    @classmethod
    def _not_empty(cls, value: str | list[str] | None) -> str | list[str] | None:
        if value == "" or value == []:
            raise invalid("path is empty; leave it out to give the path to `seaway data add`")
        return value

    @property
    def paths(self) -> list[str]:
        if self.path is None:
            return []
        return [self.path] if isinstance(self.path, str) else list(self.path)


class ColumnSchema(StrictModel):
    name: str = Field(description="Column or tensor name.")
    type: ColumnKind = Field(description="Value type.")
    shape: list[int] | None = Field(default=None, description="Tensor shape; -1 for any size.")
    nullable: bool = Field(default=False, description="Whether nulls are allowed.")


class ModelSchemaSpec(StrictModel):
    inputs: list[ColumnSchema] = Field(min_length=1, description="What predict() receives.")
    outputs: list[ColumnSchema] = Field(
        default_factory=list, description="What predict() returns; inferred when omitted."
    )


_STEP_DATA_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.[A-Za-z0-9_][A-Za-z0-9_-]*(/.+)?$")


class EvaluationSpec(StrictModel):
    """Labelled data the gates that predict (robustness, fairness, latency) run the model on."""

    data: str = Field(
        description="dataset:NAME[@V], or STEP.OUTPUT[/file] of the run that registered the "
        "version (train.split/test.parquet)."
    )
    target: str = Field(description="The column holding the true label.")
    rows: int | None = Field(
        default=10_000, ge=1, description="Rows sampled (seeded) from the data; all when null."
    )

    @field_validator("data")
    @classmethod
    def _data(cls, value: str) -> str:
        if value.startswith("dataset:"):
            name = value.removeprefix("dataset:")
            if not name or name.startswith("@"):
                raise invalid(f"{describe(value)}: expected dataset:NAME or dataset:NAME@V")
            return value
        if not _STEP_DATA_RE.match(value):
            raise invalid(f"{describe(value)} is neither dataset:NAME[@V] nor STEP.OUTPUT[/file]")
        return value


class ModelSpec(StrictModel):
    description: str | None = Field(default=None, description="What the model predicts.")
    flavor: Flavor | None = Field(
        default=None, description="How versions are loaded; detected from the files when omitted."
    )
    require_signature: bool = Field(
        default=False, description="Refuse to serve versions that are not signed."
    )
    schema_: ModelSchemaSpec | None = Field(
        default=None,
        alias="schema",
        description="Input and output schema; inferred from the training data when omitted.",
    )
    gates: list[Gate] = Field(
        default_factory=list, description="Checks a version must pass before promotion."
    )
    evaluation: EvaluationSpec | None = Field(
        default=None,
        description="Labelled data for the gates that run the model (robustness, fairness, "
        "latency).",
    )
    trusted_keys: list[str] = Field(
        default_factory=list,
        description="Public keys (paths relative to the project) whose signatures are "
        "trusted for this model.",
    )


class WindowSpec(StrictModel):
    rows: int | None = Field(default=None, ge=1, description="Compare every N requests.")
    duration: Duration | None = Field(default=None, description="Compare every period (1h).")
    settle: Duration | None = Field(
        default=None,
        description=(
            "How old a logged request must be before it is scored, so that requests several "
            "gateways commit out of order are not skipped (30s on PostgreSQL, 0 on SQLite)."
        ),
    )

    @model_validator(mode="after")
    def _one(self) -> WindowSpec:
        if (self.rows is None) == (self.duration is None):
            raise invalid("a window needs exactly one of `rows` or `duration`")
        return self


class _Trigger(StrictModel):
    windows: int = Field(default=1, ge=1, description="Consecutive breached windows needed.")
    cooldown: Duration | None = Field(default=None, description="Least time between two triggers.")
    retrain: Name | None = Field(default=None, description="The pipeline to run.")
    promote_to: Name | None = Field(
        default=None, description="Environment the new version is proposed for after its gates."
    )

    @model_validator(mode="after")
    def _promote_needs_retrain(self) -> _Trigger:
        if self.promote_to is not None and self.retrain is None:
            raise invalid("promote_to needs `retrain`: only a retrained version can be promoted")
        return self


class DriftTrigger(_Trigger):
    psi_above: float = Field(ge=0, description="Feature or prediction PSI that counts as drift.")


class QualityTrigger(_Trigger):
    metric: MetricName = Field(description="A metric computed from feedback labels.")
    below: float = Field(description="Value under which the window counts as breached.")


EVENT_KIND_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"
_EVENT_KIND_RE = re.compile(EVENT_KIND_PATTERN)


def _event_kind(value: str) -> str:
    if not _EVENT_KIND_RE.match(value):
        raise invalid(
            f"{describe(value)} is not an event kind: write one like rollout.failed, or a "
            "part of one (trigger, failed)"
        )
    return value


EventKind = Annotated[
    str,
    AfterValidator(_event_kind),
    WithJsonSchema({"type": "string", "pattern": EVENT_KIND_PATTERN}),
]


class AlertSpec(StrictModel):
    url: str = Field(description="Webhook called with a JSON body; ${VAR} reads the environment.")
    events: list[EventKind] = Field(
        default_factory=list,
        description="Event kinds to send (rollout.failed), or a part of them: trigger sends "
        "every trigger.* event, failed every *.failed one; all alertable events when empty.",
    )

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://", "${")):
            raise invalid(f"expected an http(s):// URL or ${{VAR}}, got {describe(value)}")
        return value


class AbuseSpec(StrictModel):
    enabled: bool = Field(default=True, description="false turns detection off for the model.")
    max_rate: float | None = Field(
        default=None,
        gt=0,
        description="Requests a minute from one client that count as abuse; the rate is not "
        "judged when omitted (a busy backend is not an attacker).",
    )
    on_flag: Literal["record", "throttle"] = Field(
        default="record",
        description="What a flag does: record (an abuse.flagged event and a metric), or "
        "throttle (also answer 429 over throttle_rate until flag_for passes).",
    )
    throttle_rate: float = Field(
        default=60.0, gt=0, description="Requests a minute a flagged client may still make."
    )
    flag_for: Duration = Field(
        default=Duration("10m"), description="How long a flag (and its throttle) lasts."
    )
    min_requests: int = Field(
        default=200, ge=1, description="Requests from a client before it can be flagged."
    )


class MonitorSpec(StrictModel):
    window: WindowSpec = Field(
        default_factory=lambda: WindowSpec(rows=1000), description="How live data is batched."
    )
    features: list[str] | None = Field(
        default=None, description="Features watched for drift; all when omitted."
    )
    on_drift: DriftTrigger | None = Field(default=None, description="When inputs drift.")
    on_quality_drop: QualityTrigger | None = Field(
        default=None, description="When live quality (from feedback labels) falls."
    )
    alerts: list[AlertSpec] = Field(default_factory=list, description="Webhooks to notify.")
    abuse: AbuseSpec | None = Field(
        default=None,
        description="Abuse and model-extraction detection in the gateway; when omitted it "
        "runs with the defaults and only records.",
    )


class PolicySpec(StrictModel):
    name: Name = Field(description="Shown when the policy blocks a promotion.")
    when: str = Field(description="CEL: the requests the policy applies to.")
    require: str = Field(description="CEL: what those requests must satisfy.")
    message: str | None = Field(default=None, description="Told to the user when it blocks.")


PERMISSION_PATTERN = r"^(\*|[a-z][a-z_-]*(:([a-z0-9][a-z0-9_-]*|\*))?)$"
_PERMISSION_RE = re.compile(PERMISSION_PATTERN)


def _permission(value: str) -> str:
    if not _PERMISSION_RE.match(value):
        raise invalid(
            f"{describe(value)} is not a permission: write a verb (approve) or "
            "verb:environment (promote:prod)"
        )
    return value


Permission = Annotated[
    str,
    AfterValidator(_permission),
    WithJsonSchema({"type": "string", "pattern": PERMISSION_PATTERN}),
]


class ProjectSpec(StrictModel):
    """seaway.yaml"""

    name: Name = Field(description="The project's name.")
    description: str | None = Field(default=None, description="What the project is.")
    store: StoreSpec = Field(
        default_factory=StoreSpec, description="Where metadata and blobs are kept."
    )
    datasets: dict[Name, DatasetSpec] = Field(
        default_factory=dict, description="Versioned datasets and their quality checks."
    )
    pipelines: dict[Name, PipelineSpec] = Field(
        default_factory=dict, description="DAGs of cached steps."
    )
    models: dict[Name, ModelSpec] = Field(
        default_factory=dict, description="Registered models: signature, schema and gates."
    )
    monitoring: dict[Name, MonitorSpec] = Field(
        default_factory=dict, description="Live drift and quality watch, by model."
    )
    policies: list[PolicySpec] = Field(
        default_factory=list, description="CEL rules over promotion requests."
    )
    roles: dict[Name, list[Permission]] = Field(
        default_factory=dict,
        description="Role -> permissions: run, register, approve, alias, promote:ENV, …",
    )

    def registered_models(self) -> set[str]:
        """Models the spec knows: declared under `models:` or registered by a pipeline."""
        known = set(self.models)
        known.update(p.register_.model for p in self.pipelines.values() if p.register_)
        return known


__all__ = [
    "GATE_KINDS",
    "AbuseSpec",
    "AlertSpec",
    "AnyGate",
    "ColumnSchema",
    "DatasetSpec",
    "DeploymentSpec",
    "DriftTrigger",
    "EnvironmentSpec",
    "EvaluationSpec",
    "Gate",
    "ModelSchemaSpec",
    "ModelSpec",
    "MonitorSpec",
    "ParamSpec",
    "PipelineSpec",
    "PolicySpec",
    "ProjectSpec",
    "QualityTrigger",
    "RegisterSpec",
    "StepSpec",
    "StoreSpec",
    "StrategySpec",
    "WindowSpec",
    "gate_kind",
]
