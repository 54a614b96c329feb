"""BentoML 1.4 services around one scikit-learn model, for the serving benchmark.

    BENCH_MODEL=lr.pkl bentoml serve bentoml_service:Classifier --host 127.0.0.1 --port 3000
    BENCH_MODEL=lr.pkl bentoml serve bentoml_service:BatchedClassifier ...

Written the way BentoML 1.4's documentation shows a scikit-learn service: a `@bentoml.service`
class that loads the model once, and an `@bentoml.api` method taking a NumPy array, so the
request body is `{"instances": [[...20 floats]]}`, the same JSON as everyone's KServe v1 body,
on BentoML's own route `POST /predict`. `BatchedClassifier` turns on BentoML's adaptive
batching (`batchable=True`, batch dimension 0) with the same limits as the benchmark gives
seaway: at most 32 rows a batch. BentoML's `max_latency_ms` is a deadline, not a wait (a
request that would exceed it is answered 503), so it is set far above any latency seen here;
BentoML decides itself how long to wait for a batch to fill.

The model is unpickled from the file named by `BENCH_MODEL` (the same pickle as the other
competitors), not imported into BentoML's model store: the store adds nothing at serving time.
One worker each.
"""

from __future__ import annotations

import os
import pickle
from typing import Any

import bentoml
import numpy as np

MAX_BATCH = int(os.environ.get("BENCH_MAX_BATCH", "32"))


def _load() -> Any:
    with open(os.environ["BENCH_MODEL"], "rb") as fh:
        return pickle.load(fh)


@bentoml.service(workers=1)
class Classifier:
    def __init__(self) -> None:
        self.model = _load()

    @bentoml.api
    def predict(self, instances: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(instances)


@bentoml.service(workers=1)
class BatchedClassifier:
    def __init__(self) -> None:
        self.model = _load()

    @bentoml.api(batchable=True, batch_dim=0, max_batch_size=MAX_BATCH, max_latency_ms=60_000)
    def predict(self, instances: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(instances)
