"""Helpers for the rollout tests: registered versions, constructed live figures, a figures
source to inject, and reading the routing table back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from seaway.project import Project
from seaway.serving._obs_sketch import OutputTrack, latency_index
from seaway.serving.live import LiveFigures, merge_rows
from seaway.spec.environment import EnvironmentSpec, StrategySpec

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
MODEL = "churn"
ENV = "prod"

# Probabilities a healthy version answers with, and those of a version whose scores moved
# up although every answer is an HTTP 200.
STABLE_SCORES = [((i * 37) % 100) / 100 for i in range(400)]
SHIFTED_SCORES = [min(1.0, 0.45 + s * 0.55) for s in STABLE_SCORES]

PREDICTOR = """\
# version {n}
class Model:
    def load(self):
        pass

    def predict(self, data):
        return [0 for _ in data]
"""


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def register_versions(project: Project, count: int, model: str = MODEL) -> None:
    """Versions 1..count of `model` (tiny Python predictors, distinct by a comment)."""
    from seaway.registry import register_model

    for n in range(1, count + 1):
        folder = project.root / "models" / f"{model}-{n}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "predictor.py").write_text(PREDICTOR.format(n=n))
        (folder / "seaway-model.yaml").write_text("class: predictor:Model\ninput: array\n")
        assert register_model(project, model, Path(folder)).version.number == n


def make_figures(
    number: int,
    *,
    requests: int,
    errors: int = 0,
    latency_s: float = 0.004,
    scores: list[float] | None = None,
    agreed: int = 0,
    disagreed: int = 0,
    model: str = MODEL,
) -> LiveFigures:
    """One version's live figures as a gateway would have flushed them, merged the way
    `live_figures` merges stored windows."""
    outputs: dict[str, Any] = {}
    if scores:
        track = OutputTrack()
        track.add(list(scores))
        sketch = track.take()
        assert sketch is not None
        outputs["proba"] = sketch
    figures: dict[str, Any] = {
        "codes": {"200": requests - errors, **({"500": errors} if errors else {})},
        "latency_histogram": {"counts": {str(latency_index(latency_s)): requests}},
        "outputs": outputs,
    }
    if agreed or disagreed:
        figures["shadow"] = {"1": {"agreed": agreed, "disagreed": disagreed}}
    row = SimpleNamespace(
        requests=requests, errors=errors, window_end=T0 + timedelta(minutes=1), figures=figures
    )
    return merge_rows(model, number, None, T0, [row])


def healthy(number: int, requests: int = 500) -> LiveFigures:
    return make_figures(number, requests=requests, scores=STABLE_SCORES[: min(requests, 400)])


@dataclass
class FakeFigures:
    """A figures source for `tick`: what each version shows, or an exception to raise;
    remembers every read as (number, since)."""

    by_version: dict[int, LiveFigures | Exception] = field(default_factory=dict)
    reads: list[tuple[int, datetime]] = field(default_factory=list)

    def __call__(self, project: Project, model: str, number: int, *, since: datetime) -> Any:
        self.reads.append((number, since))
        value = self.by_version.get(number)
        if isinstance(value, Exception):
            raise value
        if value is None:
            return make_figures(number, requests=0, model=model)
        return value


def environment(strategy: dict[str, Any], **extra: Any) -> EnvironmentSpec:
    return EnvironmentSpec.model_validate(
        {"deployments": {MODEL: {"version": 2, "strategy": strategy}}, **extra}
    )


def strategy(data: dict[str, Any]) -> StrategySpec:
    return StrategySpec.model_validate(data)


def split(project: Project, model: str = MODEL) -> dict[int, tuple[float, float]]:
    """The routing table for `model`: version -> (weight, shadow)."""
    from seaway.serving.routes import load_table

    return {
        d.number: (round(d.weight, 6), round(d.shadow, 6))
        for d in load_table(project).for_model(model)
    }


def events(project: Project, kind: str) -> list[Any]:
    """Events of `kind` (a prefix), oldest first."""
    from seaway.audit.log import list_events

    return list(reversed(list_events(project, kind=kind, limit=None)))


def canary_rollout(started: datetime = T0) -> Any:
    """A one-step canary of churn@2 over churn@1 in prod, progressing since `started`."""
    from seaway.rollout.records import Rollout

    return Rollout(
        id=1,
        environment=ENV,
        model=MODEL,
        stable=1,
        candidate=2,
        kind="canary",
        strategy=strategy({"canary": {"steps": [{"weight": 100}]}}),
        phase="Progressing",
        step=0,
        step_started_at=started,
        started_at=started,
        updated_at=started,
        finished_at=None,
        git_revision=None,
        message=None,
    )
