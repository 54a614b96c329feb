"""The churn pipeline's steps. Each receives local paths and params by name, writes its
declared outputs where seaway says, and returns its metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


FEATURES = (*NUMERIC, *CATEGORICAL)
TARGET = "churned"


def featurize(split: str, features: str) -> None:
    """Keep the model's input columns and the label, with the types serving will send."""
    out = Path(features)
    out.mkdir(parents=True, exist_ok=True)
    for part in ("train", "test"):
        table = pq.read_table(Path(split) / f"{part}.parquet")
        columns = {name: table[name].cast(pa.float64()) for name in NUMERIC}
        columns.update({name: table[name].cast(pa.string()) for name in CATEGORICAL})
        columns[TARGET] = table[TARGET].cast(pa.int64())
        pq.write_table(pa.table(columns), out / f"{part}.parquet")


def _frame(features: str, part: str) -> Any:
    return pq.read_table(Path(features) / f"{part}.parquet").to_pandas()


def train(features: str, model: str, C: float, seed: int) -> dict[str, float]:
    """Fit scaling, one-hot encoding and a logistic regression as one scikit-learn
    Pipeline, so the registered model takes the raw columns; saved with skops (no pickle)."""
    import skops.io as sio
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    data = _frame(features, "train")
    prep = ColumnTransformer(
        [
            ("numeric", StandardScaler(), list(NUMERIC)),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL)),
        ]
    )
    clf = Pipeline(
        [("prep", prep), ("model", LogisticRegression(C=C, random_state=seed, max_iter=1000))]
    )
    clf.fit(data[list(FEATURES)], data[TARGET])
    sio.dump(clf, model)
    return {"train_accuracy": float(clf.score(data[list(FEATURES)], data[TARGET]))}


def evaluate(model: str, features: str) -> dict[str, Any]:
    """AUC and accuracy on the held-out customers."""
    import skops.io as sio
    from sklearn.metrics import accuracy_score, roc_auc_score

    clf = sio.load(model)  # refuses any type outside skops' trusted set
    data = _frame(features, "test")
    scores = clf.predict_proba(data[list(FEATURES)])[:, 1]
    return {
        "auc": float(roc_auc_score(data[TARGET], scores)),
        "accuracy": float(accuracy_score(data[TARGET], scores >= 0.5)),
    }
