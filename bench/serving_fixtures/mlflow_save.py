"""Save a pickled scikit-learn model as an MLflow model folder (run in the MLflow virtualenv).

    python mlflow_save.py MODEL.pkl OUT_DIR

Saved as a pickle (MLflow 3's default, skops, refuses HistGradientBoosting's tree
predictor as an untrusted type). `pyfunc_predict_fn="predict_proba"`: MLflow's pyfunc
answers with class labels by default; every server in the benchmark computes probabilities.
`mlflow models serve -m OUT_DIR --env-manager local` then serves it on `POST /invocations`,
which accepts the KServe v1 body `{"instances": [[...]]}` as it is.
"""

from __future__ import annotations

import pickle
import shutil
import sys
from pathlib import Path


def main(model_path: Path, out: Path) -> None:
    import mlflow.sklearn

    with open(model_path, "rb") as fh:
        model = pickle.load(fh)
    if out.exists():
        shutil.rmtree(out)
    # Pickle, not MLflow 3's default skops: skops refuses HistGradientBoosting's
    # TreePredictor unless told to trust it. The format only matters at load time.
    mlflow.sklearn.save_model(
        model, str(out), serialization_format="pickle", pyfunc_predict_fn="predict_proba"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
