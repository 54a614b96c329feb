"""Real models for the flavor tests: a scikit-learn churn pipeline on a table with numeric and
categorical columns, array-fitted estimators, and their ONNX conversions (skl2onnx)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest


def churn_frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Customers with the label and an id next to the model's columns, as a dataset has them."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 72, n)
    charges = rng.normal(60, 15, n).round(2)
    region = rng.choice(["north", "south", "east", "west"], n)
    contract = rng.choice(["monthly", "yearly"], n)
    score = -0.05 * tenure + 0.03 * charges + (region == "south") * 0.8 + (contract == "monthly")
    churned = (score + rng.normal(0, 0.5, n) > 0.6).astype(int)
    return pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "tenure": tenure,
            "monthly_charges": charges,
            "region": region,
            "contract": contract,
            "churned": churned,
        }
    )


FEATURES = ["tenure", "monthly_charges", "region", "contract"]


@pytest.fixture(scope="session")
def churn_data() -> pd.DataFrame:
    return churn_frame()


@pytest.fixture(scope="session")
def churn_pipeline(churn_data: pd.DataFrame) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), ["tenure", "monthly_charges"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["region", "contract"]),
        ]
    )
    pipe = Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=1000))])
    return pipe.fit(churn_data[FEATURES], churn_data["churned"])


@pytest.fixture
def churn_skops(tmp_path: Path, churn_pipeline: Any) -> Path:
    import skops.io as sio

    path = tmp_path / "src" / "churn.skops"
    path.parent.mkdir()
    sio.dump(churn_pipeline, path)
    return path


@pytest.fixture(scope="session")
def array_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X, a class label and a continuous target, without column names."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    label = (x[:, 0] + 0.5 * x[:, 2] > 0).astype(int)
    target = (2 * x[:, 1] - x[:, 3] + 0.1).astype(np.float32)
    return x, label, target


@pytest.fixture(scope="session")
def array_classifier(array_data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Any:
    from sklearn.linear_model import LogisticRegression

    x, label, _ = array_data
    return LogisticRegression().fit(x, label)


@pytest.fixture(scope="session")
def array_regressor(array_data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Any:
    from sklearn.linear_model import LinearRegression

    x, _, target = array_data
    return LinearRegression().fit(x, target)


def to_onnx_file(model: Any, x: np.ndarray, path: Path, *, zipmap: bool | None = None) -> Path:
    from skl2onnx import to_onnx

    options = {id(model): {"zipmap": zipmap}} if zipmap is not None else None
    onx = to_onnx(model, x[:1], options=options, target_opset=17)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(onx.SerializeToString())
    return path
