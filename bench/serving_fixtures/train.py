"""Train the serving benchmark's models and write its request bodies (run once, untimed).

    python train.py OUT_DIR

Runs in the project's virtualenv (scikit-learn and skops). Writes into OUT_DIR:

- `<name>.pkl` (pickle, for the competitors, whose virtualenvs pin the same scikit-learn)
  and `<name>.skops` (for seaway's registry) for each model below;
- `one.json` (one row) and `batch64.json` (64 rows): KServe v1 bodies
  `{"instances": [[20 floats], ...]}`, and `one-v2.json`, the same row as an Open Inference
  Protocol v2 tensor;
- `rows.npy`: the rows the bodies hold, for the in-process floor.

Every model is fitted on `make_classification(n_samples=20000, n_features=20,
random_state=0)`, as the issue's workload says. `-v2`/`-v3` variants differ in one
hyperparameter only, so that seaway registers them as distinct versions of one model for the
split and shadow scenario; they cost the same to evaluate.
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path


def main(out: Path) -> None:
    import numpy as np
    import skops.io as sio
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    out.mkdir(parents=True, exist_ok=True)
    X, y = make_classification(n_samples=20000, n_features=20, random_state=0)
    models = {
        "lr": LogisticRegression(max_iter=1000),
        "lr-v2": LogisticRegression(C=0.5, max_iter=1000),
        "lr-v3": LogisticRegression(C=2.0, max_iter=1000),
        "hgb": HistGradientBoostingClassifier(random_state=0),
        "hgb-v2": HistGradientBoostingClassifier(random_state=1),
        "hgb-v3": HistGradientBoostingClassifier(random_state=2),
    }
    for name, model in models.items():
        model.fit(X, y)
        with open(out / f"{name}.pkl", "wb") as fh:
            pickle.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)
        sio.dump(model, out / f"{name}.skops")
    # Rows from the end of the data set, as float64 JSON numbers with full precision.
    rows = X[-64:].astype("float64")
    np.save(out / "rows.npy", rows)
    (out / "one.json").write_text(json.dumps({"instances": rows[:1].tolist()}))
    (out / "batch64.json").write_text(json.dumps({"instances": rows.tolist()}))
    v2 = {
        "inputs": [
            {"name": "input-0", "shape": [1, 20], "datatype": "FP64", "data": rows[0].tolist()}
        ]
    }
    (out / "one-v2.json").write_text(json.dumps(v2))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
