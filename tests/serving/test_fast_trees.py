"""The compiled HistGradientBoosting predict: the same probabilities as scikit-learn, or
not used at all."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier

from seaway.project import Project
from seaway.serving import routes
from seaway.serving.fast_trees import compile_forest
from tests.serving.conftest import register, v2_rows
from tests.serving.test_app import _client, make_gateway


def fitted(n_classes: int = 2, *, missing: bool = False, **kwargs: object) -> tuple:
    X, y = make_classification(
        1500, 8, n_informative=5, n_classes=n_classes, random_state=n_classes
    )
    if missing:
        X[np.random.default_rng(0).random(X.shape) < 0.1] = np.nan
    return HistGradientBoostingClassifier(max_iter=40, random_state=0, **kwargs).fit(X, y), X


@pytest.mark.parametrize(("n_classes", "missing"), [(2, False), (2, True), (3, True)])
def test_compiled_probabilities_match_scikit_learn(n_classes: int, missing: bool) -> None:
    model, X = fitted(n_classes, missing=missing)
    forest = compile_forest(model)
    assert forest is not None
    for rows in (X[:1], X[:7], X):
        np.testing.assert_allclose(
            forest.predict_proba(rows), model.predict_proba(rows), rtol=1e-9, atol=1e-12
        )


def test_what_it_cannot_serve_exactly_is_left_to_scikit_learn() -> None:
    import pandas as pd

    X, y = make_classification(500, 4, random_state=0)
    X[:, 0] = np.round(np.abs(X[:, 0]) * 3) % 4
    categorical = HistGradientBoostingClassifier(max_iter=10, categorical_features=[0]).fit(X, y)
    assert compile_forest(categorical) is None
    named = HistGradientBoostingClassifier(max_iter=10).fit(
        pd.DataFrame(X, columns=list("abcd")), y
    )
    assert compile_forest(named) is None
    assert compile_forest(object()) is None


def test_the_gateway_answers_with_the_compiled_forest(project_dir: Path, tmp_path: Path) -> None:
    import skops.io as sio

    model, X = fitted(2)
    path = tmp_path / "hgb.skops"
    sio.dump(model, path)
    project = Project(project_dir)
    register(project, "hgb", path)
    routes.deploy(project, "hgb@1")

    async def scenario() -> None:
        gateway = make_gateway(project)
        async with _client(gateway) as client:
            for rows in (X[:1], X[:40]):  # 40 rows: over the compiled path's limit
                answer = await client.post("/v2/models/hgb/infer", json=v2_rows(rows))
                assert answer.status_code == 200
                proba = answer.json()["outputs"][1]["data"]
                np.testing.assert_allclose(
                    np.asarray(proba).reshape(-1, 2), model.predict_proba(rows), atol=1e-12
                )
            assert gateway.manager.loaded[("hgb", 1)].compiled is not None

    try:
        asyncio.run(scenario())
    finally:
        project.close()
