"""The churn pipeline's steps. Each receives local paths and params by name, writes its
declared outputs where seaway says, and returns its metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

NUMERIC = ("tenure", "monthly_charges", "support_calls")
CATEGORICAL = {
    "region": ("north", "south", "east", "west"),
    "contract": ("monthly", "yearly", "two-year"),
}


def prepare(raw: str, split: str, seed: int, test_share: float) -> dict[str, float]:
    """Drop unusable rows and split customers into train and test, stably by id."""
    table = pq.read_table(raw)
    table = table.filter(pc.is_valid(table["churned"]))
    ids = table["customer_id"].to_numpy()
    # A hash of (seed, id) decides the side, so a customer stays on it as data grows.
    rng_keys = (ids * 2654435761 + seed * 97) % 1000
    is_test = rng_keys < int(test_share * 1000)
    out = Path(split)
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.filter(pa.array(~is_test)), out / "train.parquet")
    pq.write_table(table.filter(pa.array(is_test)), out / "test.parquet")
    return {"rows": float(table.num_rows), "test_rows": float(is_test.sum())}


def _features(table: pa.Table, scale: dict[str, tuple[float, float]]) -> np.ndarray:
    cols = []
    for name in NUMERIC:
        mean, std = scale[name]
        cols.append((table[name].to_numpy().astype(float) - mean) / std)
    for name, values in CATEGORICAL.items():
        column = table[name].to_numpy(zero_copy_only=False)
        cols.extend((column == v).astype(float) for v in values)
    return np.column_stack(cols)


def featurize(split: str, features: str) -> None:
    """Scale numeric columns (with train statistics) and one-hot the categorical ones."""
    train = pq.read_table(Path(split) / "train.parquet")
    test = pq.read_table(Path(split) / "test.parquet")
    scale = {}
    for name in NUMERIC:
        values = train[name].to_numpy().astype(float)
        scale[name] = (float(values.mean()), float(values.std() or 1.0))
    out = Path(features)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(
        out / "data.npz",
        x_train=_features(train, scale),
        y_train=train["churned"].to_numpy(),
        x_test=_features(test, scale),
        y_test=test["churned"].to_numpy(),
    )
    (out / "scale.json").write_text(json.dumps(scale, indent=2))


def train(features: str, model: str, C: float, seed: int) -> dict[str, float]:
    """Fit a logistic regression; the model is saved with skops (no pickle)."""
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    data = np.load(Path(features) / "data.npz")
    clf = LogisticRegression(C=C, random_state=seed, max_iter=1000)
    clf.fit(data["x_train"], data["y_train"])
    sio.dump(clf, model)
    return {"train_accuracy": float(clf.score(data["x_train"], data["y_train"]))}


def evaluate(model: str, features: str) -> dict[str, Any]:
    """AUC and accuracy on the held-out customers."""
    import skops.io as sio
    from sklearn.metrics import accuracy_score, roc_auc_score

    clf = sio.load(model)  # refuses any type outside skops' trusted set
    data = np.load(Path(features) / "data.npz")
    scores = clf.predict_proba(data["x_test"])[:, 1]
    return {
        "auc": float(roc_auc_score(data["y_test"], scores)),
        "accuracy": float(accuracy_score(data["y_test"], scores >= 0.5)),
    }
