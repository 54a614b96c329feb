"""Gates declared under `models.NAME.gates`: what a version must pass before promotion.

A gate is recognised by the key naming its kind, like a data check:

    - {metric: auc, min: 0.80}
    - {no_regression: {metric: auc, against: champion, tolerance: 0.01}}
    - {drift: {train: "dataset:customers", reference: "dataset:customers-recent", max_psi: 0.2}}
    - {robustness: {noise: 0.05, max_flip_rate: 0.02}}
    - {fairness: {slice: region, metric: auc, max_gap: 0.05}}
    - {latency: {batch: 1, p99_ms: 20}}
    - {scan: true}
    - {signature: true}

`required: false` sits next to the kind key (`{latency: {...}, required: false}`): the gate
still runs and is reported, but its failure does not block promotion.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Discriminator, Field, Tag, field_validator, model_validator

from seaway.spec.types import DatasetRefText, MetricName, Name, StrictModel, invalid


class _Gate(StrictModel):
    required: bool = Field(
        default=True,
        description="When false the gate is reported but its failure does not block promotion.",
    )


class MetricGate(_Gate):
    """A threshold on a metric the run recorded."""

    metric: MetricName = Field(
        description="A metric logged by the pipeline that registered the version."
    )
    min: float | None = Field(default=None, description="The metric must be at least this.")
    max: float | None = Field(default=None, description="The metric must be at most this.")

    @model_validator(mode="after")
    def _bounds(self) -> MetricGate:
        if self.min is None and self.max is None:
            raise invalid("a metric gate needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise invalid(f"min ({self.min}) is greater than max ({self.max})")
        return self


class NoRegression(StrictModel):
    metric: MetricName = Field(description="The metric compared with the reference version.")
    against: Name = Field(
        default="champion", description="The alias of the version to compare with."
    )
    tolerance: float = Field(
        default=0.0, ge=0, description="How much worse the candidate may be and still pass."
    )
    relative: bool = Field(
        default=False, description="Read `tolerance` as a fraction of the reference's value."
    )
    direction: Literal["maximize", "minimize"] = Field(
        default="maximize", description="Whether a higher (auc) or lower (rmse) value is better."
    )


class NoRegressionGate(_Gate):
    """The candidate is not worse than the version holding an alias (the champion)."""

    no_regression: NoRegression


class Drift(StrictModel):
    train: DatasetRefText = Field(description="The data the model was trained on.")
    reference: DatasetRefText = Field(description="Recent data the model will meet in serving.")
    max_psi: float = Field(
        default=0.2,
        ge=0,
        description="Largest allowed drift per feature (PSI, or the statistic chosen by method).",
    )
    method: Literal["auto", "psi", "ks", "js"] = Field(
        default="auto",
        description="auto: an effect size that suits the sample size (PSI, KS distance, "
        "Cramér's V) confirmed by a test; psi: population stability index; ks: "
        "Kolmogorov-Smirnov distance; js: Jensen-Shannon distance.",
    )
    columns: list[str] | None = Field(
        default=None, description="Features to compare; all shared columns when omitted."
    )


class DriftGate(_Gate):
    """Training data and recent data have not drifted apart."""

    drift: Drift


class Robustness(StrictModel):
    noise: float = Field(
        gt=0,
        le=1,
        description="Gaussian noise added to numeric features, as a fraction of their spread.",
    )
    max_flip_rate: float | None = Field(
        default=None, ge=0, le=1, description="Largest share of predictions the noise may change."
    )
    max_metric_drop: float | None = Field(
        default=None, ge=0, description="Largest drop of `metric` under noise."
    )
    metric: MetricName | None = Field(default=None, description="The metric for max_metric_drop.")

    @model_validator(mode="after")
    def _limits(self) -> Robustness:
        if self.max_flip_rate is None and self.max_metric_drop is None:
            raise invalid("a robustness gate needs max_flip_rate, max_metric_drop or both")
        if self.max_metric_drop is not None and self.metric is None:
            raise invalid("max_metric_drop needs `metric` to say which metric may drop")
        return self


class RobustnessGate(_Gate):
    """Predictions stay stable when inputs are slightly perturbed."""

    robustness: Robustness


class Fairness(StrictModel):
    slice: str = Field(description="The column whose values define the slices (region, gender…).")
    metric: MetricName = Field(description="The metric computed on every slice.")
    max_gap: float = Field(ge=0, description="Largest difference between the best and worst slice.")


class FairnessGate(_Gate):
    """The metric does not differ too much between slices of the data."""

    fairness: Fairness


class Latency(StrictModel):
    batch: int = Field(default=1, ge=1, description="Rows per prediction call.")
    p50_ms: float | None = Field(default=None, gt=0, description="Median latency budget.")
    p99_ms: float | None = Field(default=None, gt=0, description="99th percentile latency budget.")

    @model_validator(mode="after")
    def _budget(self) -> Latency:
        if self.p50_ms is None and self.p99_ms is None:
            raise invalid("a latency gate needs p50_ms, p99_ms or both")
        return self


class LatencyGate(_Gate):
    """Prediction latency measured on the candidate stays within budget."""

    latency: Latency


def _enabled(value: Any) -> Any:
    # `scan: true` is the short form of `scan: {}`; `false` would be a gate that checks
    # nothing, which is better written by removing it.
    if value is True:
        return {}
    if value is False:
        raise invalid("to skip this gate, remove it instead of setting it to false")
    return value


def _or_true(schema: dict[str, Any]) -> None:
    # The JSON Schema must admit the `true` short form that `_enabled` expands.
    full = dict(schema)
    description = full.pop("description", None)
    schema.clear()
    schema["anyOf"] = [{"const": True}, full]
    if description:
        schema["description"] = description


class Scan(StrictModel):
    trusted: list[str] = Field(
        default_factory=list,
        description="Extra Python types allowed when loading the model files (skops).",
    )


class ScanGate(_Gate):
    """The model files contain no unsafe code (pickled callables, unknown types)."""

    scan: Scan = Field(description="`true`, or settings for the scan.", json_schema_extra=_or_true)

    @field_validator("scan", mode="before")
    @classmethod
    def _short(cls, value: Any) -> Any:
        return _enabled(value)


class Signature(StrictModel):
    key: str | None = Field(
        default=None, description="Path of a public key; keyless (identity) signing when omitted."
    )
    identity: str | None = Field(default=None, description="Expected signer identity (keyless).")
    issuer: str | None = Field(default=None, description="Expected OIDC issuer (keyless).")


class SignatureGate(_Gate):
    """The version carries a valid signature."""

    signature: Signature = Field(
        description="`true`, or the key or identity to verify with.", json_schema_extra=_or_true
    )

    @field_validator("signature", mode="before")
    @classmethod
    def _short(cls, value: Any) -> Any:
        return _enabled(value)


_BY_KIND: dict[str, type[_Gate]] = {
    "no_regression": NoRegressionGate,
    "drift": DriftGate,
    "robustness": RobustnessGate,
    "fairness": FairnessGate,
    "latency": LatencyGate,
    "scan": ScanGate,
    "signature": SignatureGate,
    # Last: nested gates also have a `metric` key, but only inside their own mapping.
    "metric": MetricGate,
}
GATE_KINDS = tuple(_BY_KIND)


def _gate_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return next((kind for kind in GATE_KINDS if kind in value), None)
    if isinstance(value, BaseModel):
        return next((k for k, cls in _BY_KIND.items() if type(value) is cls), None)
    return None


def gate_kind(gate: AnyGate) -> str:
    """The kind of a validated gate: `metric`, `no_regression`, `drift`, …"""
    kind = _gate_kind(gate)
    assert kind is not None
    return kind


AnyGate = (
    MetricGate
    | NoRegressionGate
    | DriftGate
    | RobustnessGate
    | FairnessGate
    | LatencyGate
    | ScanGate
    | SignatureGate
)

Gate = Annotated[
    Annotated[MetricGate, Tag("metric")]
    | Annotated[NoRegressionGate, Tag("no_regression")]
    | Annotated[DriftGate, Tag("drift")]
    | Annotated[RobustnessGate, Tag("robustness")]
    | Annotated[FairnessGate, Tag("fairness")]
    | Annotated[LatencyGate, Tag("latency")]
    | Annotated[ScanGate, Tag("scan")]
    | Annotated[SignatureGate, Tag("signature")],
    Discriminator(
        _gate_kind,
        custom_error_type="gate_kind",
        custom_error_message="a gate needs one of the keys: " + ", ".join(GATE_KINDS),
    ),
]
