"""The hand-written baseline: a minimal FastAPI endpoint around one scikit-learn model.

    BENCH_MODEL=lr.pkl uvicorn fastapi_app:app --host 127.0.0.1 --port 8000 --no-access-log

What a team writes in ten lines when it serves a model itself: the model is unpickled once at
import, the body is validated by a pydantic model (KServe v1 shape, `{"instances": [[...]]}`),
and `predict_proba` runs in the event loop (an `async def` handler: no hop to the thread pool,
the faster of FastAPI's two handler kinds for a sub-millisecond model). Nothing else: no
routing, no metrics, no logging, no auth. Runs in its own virtualenv (fastapi, uvicorn[standard]
and the same scikit-learn as the project), one uvicorn worker.
"""

from __future__ import annotations

import os
import pickle
from typing import Any

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

with open(os.environ["BENCH_MODEL"], "rb") as fh:
    model = pickle.load(fh)

app = FastAPI()


class V1Request(BaseModel):
    instances: list[list[float]]


@app.post("/v1/models/model:predict")
async def predict(body: V1Request) -> dict[str, Any]:
    return {"predictions": model.predict_proba(np.asarray(body.instances)).tolist()}
