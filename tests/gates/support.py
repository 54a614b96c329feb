"""Helpers for the gate tests: seeded customer data, real scikit-learn models, real versions.

Two ways in. Unit tests build a `GateContext` by hand around a fitted scikit-learn pipeline
(through the sklearn flavor's own predictor) and Arrow tables, so each gate's statuses are
checked without a database. Project tests register real versions with
`seaway.registry.register_model` and real dataset versions with `seaway.data.datasets.add`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from seaway.project import Project

INPUTS = ["tenure", "charges", "region"]
REGIONS = ["north", "south", "east", "west"]


def customers(
    rows: int = 2000, seed: int = 0, *, shift: float = 0.0, south_noise: float = 0.0
) -> pa.Table:
    """Seeded customers: tenure (int), charges (float), region, segment, churned (0/1).

    `shift` moves charges by that many standard deviations (drift). `south_noise` makes the
    label of southern customers that much noise, so a model is worse on them (a fairness gap).
    """
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 72, rows)
    charges = rng.normal(65 + 20 * shift, 20, rows)
    region = rng.choice(REGIONS, rows)
    logit = -2.0 + -0.06 * (tenure - 24) + 0.08 * (charges - 65)
    churned = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    if south_noise:
        flip = (region == "south") & (rng.random(rows) < south_noise)
        churned = np.where(flip, rng.integers(0, 2, rows), churned)
    # A tiny segment: too few rows for the fairness gate to judge.
    segment = np.where(np.arange(rows) < 10, "tiny", "main")
    return pa.table(
        {
            "tenure": pa.array(tenure, pa.int64()),
            "charges": pa.array(charges, pa.float64()),
            "region": pa.array(region, pa.string()),
            "segment": pa.array(segment, pa.string()),
            "churned": pa.array(churned, pa.int64()),
        }
    )


def fit(table: pa.Table, inputs: list[str] | None = None) -> Any:
    """A scikit-learn Pipeline (scaling, one-hot, logistic regression) on named columns."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    inputs = inputs or INPUTS
    frame = table.to_pandas()
    numeric = [c for c in inputs if c != "region"]
    steps: list[tuple[str, Any, list[str]]] = [("num", StandardScaler(), numeric)]
    if "region" in inputs:
        steps.append(("cat", OneHotEncoder(handle_unknown="ignore"), ["region"]))
    model = Pipeline(
        [("prep", ColumnTransformer(steps)), ("clf", LogisticRegression(max_iter=500))]
    )
    model.fit(frame[inputs], frame["churned"])
    return model


def save(model: Any, path: Path) -> Path:
    import skops.io as sio

    path.parent.mkdir(parents=True, exist_ok=True)
    sio.dump(model, path)
    return path


def predictor(model: Any) -> Any:
    from seaway.registry.flavors.sklearn import predictor_for

    return predictor_for(model)


def version(**overrides: Any) -> Any:
    """A ModelVersion record for gates that read only the record (metrics, scan)."""
    from seaway.registry import ModelVersion

    fields: dict[str, Any] = {
        "model_id": 1,
        "model": "churn",
        "number": 2,
        "digest": "0" * 64,
        "manifest_hash": "0" * 64,
        "flavor": "sklearn",
        "size": 1,
        "n_files": 1,
        "io_schema": None,
        "metrics": {"auc": 0.8},
        "lineage": {},
        "run_id": None,
        "author": "tester",
        "created_at": datetime.now(UTC),
        "scan_verdict": "safe",
        "scan_report": None,
        "meta": {},
    }
    fields.update(overrides)
    return ModelVersion(**fields)


def model_spec(gates: list[dict[str, Any]], **extra: Any) -> Any:
    """A validated ModelSpec, built from what a user would write in seaway.yaml."""
    from seaway.spec.models import ModelSpec

    return ModelSpec.model_validate({"gates": gates, **extra})


def write_spec(root: Path, models: dict[str, Any], datasets: dict[str, Any] | None = None) -> None:
    doc: dict[str, Any] = {"name": "demo", "models": models}
    if datasets:
        doc["datasets"] = datasets
    (root / "seaway.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


@dataclass
class Setup:
    project: Project
    root: Path

    def add_data(self, name: str, table: pa.Table, file: str | None = None) -> str:
        from seaway.data.datasets import add

        path = self.root / "data" / (file or f"{name}.parquet")
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        result = add(self.project, name, [path], checks=False)
        return result.version.ref

    def register(self, name: str, model: Any, **kwargs: Any) -> Any:
        from seaway.registry import register_model

        folder = self.root / "models" / f"{name}-{len(list((self.root / 'models').glob('*')))}"
        path = save(model, folder / "model.skops")
        return register_model(self.project, name, path, flavor="sklearn", **kwargs).version

    def reload(self) -> None:
        """Read seaway.yaml again after it changed (the spec is parsed once per Project)."""
        self.project.__dict__.pop("spec", None)
        self.project.__dict__.pop("settings", None)


DEFAULT_GATES: list[dict[str, Any]] = [
    {"metric": "auc", "min": 0.7},
    {"no_regression": {"metric": "auc", "against": "champion", "tolerance": 0.01}},
    {"drift": {"train": "dataset:customers@1", "reference": "dataset:recent"}},
    {"robustness": {"noise": 0.05, "max_flip_rate": 0.1}},
    {"fairness": {"slice": "region", "metric": "auc", "max_gap": 0.25}},
    {"latency": {"batch": 1, "p99_ms": 5000}},
    {"scan": True},
]


def build(project: Project) -> Setup:
    """churn@1 registered with DEFAULT_GATES; datasets customers@1, recent, holdout."""
    root = project.root
    (root / "models").mkdir(exist_ok=True)
    write_spec(
        root,
        {
            "churn": {
                "evaluation": {"data": "dataset:holdout", "target": "churned", "rows": 1500},
                "gates": DEFAULT_GATES,
            }
        },
    )
    setup = Setup(project, root)
    setup.reload()
    train = customers(3000, seed=1)
    setup.add_data("customers", train)
    setup.add_data("recent", customers(3000, seed=2))
    setup.add_data("holdout", customers(2000, seed=3))
    setup.register("churn", fit(train), metrics={"auc": 0.8})
    return setup
