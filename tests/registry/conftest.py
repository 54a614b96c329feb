"""Fixtures: real scikit-learn models saved with skops, and sample data for them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

NUMERIC = ["tenure", "charges"]
CATEGORICAL = ["region"]


def customer_frame(rows: int = 400, seed: int = 0) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(0, 72, rows).astype(float),
            "charges": rng.normal(65, 20, rows),
            "region": rng.choice(["north", "south", "east", "west"], rows),
        }
    )
    logit = -0.05 * frame["tenure"] + 0.03 * (frame["charges"] - 65) + (frame["region"] == "south")
    frame["churned"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def fit_pipeline(frame: Any, C: float = 1.0) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )
    model = Pipeline([("prep", prep), ("clf", LogisticRegression(C=C, max_iter=500))])
    model.fit(frame[NUMERIC + CATEGORICAL], frame["churned"])
    return model


def save_skops(model: Any, path: Path) -> Path:
    import skops.io as sio

    path.parent.mkdir(parents=True, exist_ok=True)
    sio.dump(model, path)
    return path


@pytest.fixture
def frame() -> Any:
    return customer_frame()


@pytest.fixture
def skops_model(tmp_path: Path, frame: Any) -> tuple[Path, Any]:
    """(path of a .skops file, the fitted estimator) of a Pipeline on raw columns."""
    model = fit_pipeline(frame)
    return save_skops(model, tmp_path / "models" / "model.skops"), model
