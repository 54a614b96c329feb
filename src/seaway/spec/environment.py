"""`environments/NAME.yaml`: which model versions serve in an environment, and how they roll out.

target: local
self_heal: true
deployments:
  churn-classifier:
    version: 7                      # or an alias, resolved when promoting
    strategy:
      canary:
        steps: [{weight: 10, pause: 2m}, {weight: 50, pause: 5m}, {weight: 100}]
        analysis: {max_error_rate: 0.01, max_p99_ms: 50, min_requests: 200}
    scale: {min: 0, max: 4, idle_timeout: 15m}
    batching: {max_batch: 32, max_wait_us: 500}
"""

from __future__ import annotations

import itertools
import re
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, PlainValidator, WithJsonSchema, model_validator

from seaway.spec.types import NAME_PATTERN, Duration, Name, StrictModel, describe, invalid

TargetKind = Literal["local", "kubernetes", "ray"]
StrategyKind = Literal["direct", "canary", "blue_green", "shadow"]

_ALIAS_RE = re.compile(r"^[a-z][a-z0-9_-]*$")


def _version(value: Any) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise invalid(f"a version number starts at 1, got {value}")
        return value
    if isinstance(value, str):
        if value.isdigit():
            return _version(int(value))
        if _ALIAS_RE.match(value):
            return value
    raise invalid(f"expected a version number (7) or an alias (champion), got {describe(value)}")


VersionRef = Annotated[
    int | str,
    PlainValidator(_version),
    WithJsonSchema(
        {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": NAME_PATTERN}]}
    ),
]


class AnalysisSpec(StrictModel):
    """Limits the candidate must respect on live traffic, checked every `interval`."""

    max_error_rate: float | None = Field(
        default=None, ge=0, le=1, description="Largest share of failed requests."
    )
    max_p50_ms: float | None = Field(default=None, gt=0, description="Median latency limit.")
    max_p99_ms: float | None = Field(
        default=None, gt=0, description="99th percentile latency limit."
    )
    max_prediction_psi: float | None = Field(
        default=None, ge=0, description="Largest drift of candidate predictions from stable ones."
    )
    min_requests: int = Field(
        default=100, ge=0, description="Requests needed before the figures are judged."
    )
    interval: Duration = Field(
        default=Duration("30s"), description="How often the figures are checked."
    )
    failure_limit: int = Field(
        default=1, ge=1, description="Failed checks in a row that abort the rollout."
    )
    max_class_flip_rate: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Largest share of mirrored requests where the candidate's answer differs "
        "from stable's (shadow and blue-green previews).",
    )
    inconclusive_limit: Duration = Field(
        default=Duration("10m"),
        description="How long too little traffic may leave a check undecided.",
    )
    on_inconclusive: Literal["fail", "pass"] = Field(
        default="fail",
        description="What an analysis still undecided after `inconclusive_limit` counts as.",
    )
    error_limit: int = Field(
        default=3,
        ge=1,
        description="Checks in a row that could not measure (store or gateway unreachable) "
        "before the rollout is Degraded.",
    )
    min_accuracy: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Least accuracy of the candidate on requests whose true labels were "
        "posted (seaway feedback).",
    )
    min_auc: float | None = Field(
        default=None, ge=0, le=1, description="Least AUC of the candidate on labelled requests."
    )
    max_mae: float | None = Field(
        default=None, ge=0, description="Largest mean absolute error on labelled requests."
    )
    max_quality_drop: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Largest fall of the candidate's accuracy (AUC when both versions give "
        "probabilities) below stable's, on labelled requests of the same period.",
    )
    min_labels: int = Field(
        default=30,
        ge=1,
        description="Labelled rows needed before the quality limits are judged.",
    )

    @property
    def judges_quality(self) -> bool:
        """Whether any limit needs feedback labels."""
        limits = (self.min_accuracy, self.min_auc, self.max_mae, self.max_quality_drop)
        return any(v is not None for v in limits)


class CanaryStep(StrictModel):
    weight: int = Field(gt=0, le=100, description="Percent of traffic sent to the candidate.")
    pause: Duration | None = Field(
        default=None, description="How long to hold this weight while the analysis runs."
    )
    analysis: AnalysisSpec | None = Field(
        default=None,
        description="An analysis that must pass before the next step, instead of a pause.",
    )

    @model_validator(mode="after")
    def _one(self) -> CanaryStep:
        # The final {weight: 100} is where the rollout completes: nothing to wait for.
        if self.weight == 100 and self.pause is None and self.analysis is None:
            return self
        if (self.pause is None) == (self.analysis is None):
            raise invalid("a canary step needs exactly one of `pause` or `analysis`")
        return self


class DirectStrategy(StrictModel):
    """Switch all traffic at once."""


class CanaryStrategy(StrictModel):
    """Move traffic to the candidate in steps, aborting when the analysis fails."""

    steps: list[CanaryStep] = Field(min_length=1, description="Increasing traffic weights.")
    analysis: AnalysisSpec | None = Field(default=None, description="Checked during every step.")

    @model_validator(mode="after")
    def _increasing(self) -> CanaryStrategy:
        weights = [s.weight for s in self.steps]
        if any(b <= a for a, b in itertools.pairwise(weights)):
            raise invalid(f"canary step weights must increase, got {weights}")
        if weights[-1] != 100:
            raise invalid(
                f"canary step weights must end at 100, got {weights}: "
                "add {weight: 100} as the last step"
            )
        return self


class BlueGreenStrategy(StrictModel):
    """Run the candidate beside stable on a preview route, then switch all traffic."""

    preview: Duration | None = Field(
        default=None, description="How long the preview runs before the switch."
    )
    analysis: AnalysisSpec | None = Field(default=None, description="Checked during the preview.")
    auto_promote: bool = Field(
        default=True, description="Switch when the analysis passes; otherwise wait for a person."
    )


class ShadowStrategy(StrictModel):
    """Mirror requests to the candidate without answering from it."""

    percent: float = Field(default=100.0, gt=0, le=100, description="Share of requests mirrored.")
    duration: Duration = Field(description="How long to mirror before deciding.")
    analysis: AnalysisSpec | None = Field(default=None, description="Checked while mirroring.")


_BARE_KINDS = ("direct", "blue_green")
"""Strategy kinds that work with their defaults, so `strategy: direct` may name them."""


def _strategy_schema(schema: dict[str, Any]) -> None:
    # One of the kinds as a mapping, or a bare kind name that needs no settings.
    as_mapping = {**schema, "minProperties": 1, "maxProperties": 1}
    description = schema.get("description")
    schema.clear()
    schema["anyOf"] = [as_mapping, {"enum": list(_BARE_KINDS)}]
    if description:
        schema["description"] = description


class StrategySpec(StrictModel):
    """Exactly one of direct, canary, blue_green or shadow."""

    model_config = ConfigDict(json_schema_extra=_strategy_schema)

    direct: DirectStrategy | None = None
    canary: CanaryStrategy | None = None
    blue_green: BlueGreenStrategy | None = None
    shadow: ShadowStrategy | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_keys(cls, data: Any) -> Any:
        # `strategy: direct` names a kind with no settings; `direct:` with nothing after it
        # is YAML for `direct: null`. Both mean that kind with its defaults.
        if isinstance(data, str) and data in _BARE_KINDS:
            return {data: {}}
        if isinstance(data, dict):
            return {
                k: {} if v is None and k in ("direct", "blue_green") else v for k, v in data.items()
            }
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> StrategySpec:
        chosen = [k for k in _STRATEGY_KEYS if k in self.model_fields_set]
        if not chosen:
            raise invalid("a strategy needs one of: " + ", ".join(_STRATEGY_KEYS))
        if len(chosen) > 1:
            raise invalid(f"a strategy has exactly one kind, got {' and '.join(chosen)}")
        if getattr(self, chosen[0]) is None:
            raise invalid(f"`{chosen[0]}` needs its settings")
        return self

    @property
    def kind(self) -> StrategyKind:
        if self.canary is not None:
            return "canary"
        if self.blue_green is not None:
            return "blue_green"
        if self.shadow is not None:
            return "shadow"
        return "direct"


_STRATEGY_KEYS = ("direct", "canary", "blue_green", "shadow")


class ScaleSpec(StrictModel):
    min: int = Field(default=0, ge=0, description="Replicas kept loaded; 0 scales to zero.")
    max: int = Field(default=1, ge=1, description="Most replicas.")
    idle_timeout: Duration | None = Field(
        default=None, description="Unload after this long without requests (when min is 0)."
    )

    @model_validator(mode="after")
    def _range(self) -> ScaleSpec:
        if self.min > self.max:
            raise invalid(f"min ({self.min}) is greater than max ({self.max})")
        return self


class BatchingSpec(StrictModel):
    max_batch: int = Field(default=32, ge=1, description="Most requests merged into one call.")
    max_wait_us: int = Field(
        default=1000,
        ge=0,
        description="Longest a request waits for a batch to fill (microseconds).",
    )


class DeploymentSpec(StrictModel):
    version: VersionRef = Field(
        description="A version number, or an alias resolved to a number when promoting."
    )
    strategy: StrategySpec = Field(
        default_factory=lambda: StrategySpec(direct=DirectStrategy()),
        description="How traffic moves to a new version.",
    )
    scale: ScaleSpec = Field(default_factory=ScaleSpec, description="Replicas and scale to zero.")
    batching: BatchingSpec | None = Field(
        default=None, description="Adaptive batching; off when omitted."
    )


class RequiresSpec(StrictModel):
    signature: bool = Field(default=False, description="Only signed versions may deploy here.")
    approval: bool = Field(
        default=False, description="A promotion here needs an approval (see roles and policies)."
    )


class KubernetesTargetSpec(StrictModel):
    """How the `kubernetes` target renders manifests for Argo CD or Flux to sync."""

    dir: str | None = Field(
        default=None,
        description="Folder the manifests are written to, relative to the project root "
        "(default deploy/ENVIRONMENT).",
    )
    kind: Literal["kserve", "deployment"] = Field(
        default="kserve",
        description="KServe InferenceService, or Deployment + Service + HorizontalPodAutoscaler.",
    )
    namespace: str = Field(default="default", description="Namespace of every manifest.")
    image: str = Field(
        default="seaway:latest",
        description="Container image running `seaway serve` (the `deployment` kind).",
    )
    storage_uri: str = Field(
        default="s3://models/{model}/{version}",
        description="Where KServe finds a version's files; {model}, {version} and {digest} "
        "are filled in.",
    )


class RayTargetSpec(StrictModel):
    """How the `ray` target runs Ray Serve applications."""

    address: str | None = Field(
        default=None,
        description="Ray cluster address (default: start or join a local Ray on 127.0.0.1).",
    )
    route_prefix: str = Field(
        default="/{model}", description="HTTP route of each model's application."
    )


class EnvironmentSpec(StrictModel):
    description: str | None = Field(default=None, description="What the environment is for.")
    target: TargetKind | list[TargetKind] = Field(
        default="local",
        description="Where it runs: the local gateway, rendered Kubernetes manifests, Ray Serve.",
    )
    self_heal: bool = Field(
        default=False, description="Undo live changes that differ from git, not only report them."
    )
    requires: RequiresSpec = Field(
        default_factory=RequiresSpec, description="Conditions every promotion here must meet."
    )
    deployments: dict[Name, DeploymentSpec] = Field(
        default_factory=dict, description="Model name -> the version serving and its rollout."
    )
    kubernetes: KubernetesTargetSpec = Field(
        default_factory=KubernetesTargetSpec,
        description="Settings of the kubernetes target.",
    )
    ray: RayTargetSpec = Field(
        default_factory=RayTargetSpec, description="Settings of the ray target."
    )
    promote_alias: str | None = Field(
        default="champion",
        pattern=NAME_PATTERN,
        description="Alias moved to a candidate when its rollout succeeds; null to move none.",
    )
    rollback_commit: bool = Field(
        default=False,
        description="When a rollout fails, also write a commit restoring the previous version.",
    )

    @property
    def targets(self) -> list[TargetKind]:
        return [self.target] if isinstance(self.target, str) else list(self.target)


__all__ = [
    "AnalysisSpec",
    "BatchingSpec",
    "BlueGreenStrategy",
    "CanaryStep",
    "CanaryStrategy",
    "DeploymentSpec",
    "DirectStrategy",
    "EnvironmentSpec",
    "KubernetesTargetSpec",
    "RayTargetSpec",
    "RequiresSpec",
    "ScaleSpec",
    "ShadowStrategy",
    "StrategySpec",
]
