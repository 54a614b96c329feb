"""The gateway as users meet it: `seaway serve` in its own process on 127.0.0.1, real
registered scikit-learn and python models, real HTTP."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from seaway.project import Project
from seaway.serving import routes
from tests.serving.conftest import (
    BROKEN_PREDICT,
    NAMED,
    make_project,
    metric_samples,
    python_model,
    register,
    running_server,
    save_classifier,
    training_data,
    v2_rows,
    wait_for,
)


@dataclass
class Served:
    url: str
    project: Project
    root: Path
    client: httpx.Client


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, isolated_env: None) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("gateway") / "repo"
    project = make_project(root)
    models = root.parent / "models"
    plain = save_classifier(models / "plain.skops")
    other = save_classifier(models / "other.skops", C=0.01)
    flipped = save_classifier(models / "flipped.skops", flip=True)
    named = save_classifier(models / "named.skops", named=True)
    import pandas as pd

    X, _ = training_data()
    for name in ("clf", "split", "shadowed", "late", "idle"):
        register(project, name, plain)
    register(project, "split", other)
    register(project, "shadowed", flipped)
    register(project, "named", named, sample=pd.DataFrame(X[:50], columns=NAMED))
    # Unsigned, but deployed with a signature required: it cannot load.
    register(project, "broken-load", plain)
    register(
        project, "broken-predict", python_model(models / "bp", BROKEN_PREDICT), flavor="python"
    )

    routes.deploy(project, "clf@1")
    routes.deploy(project, "split@1")
    routes.deploy(project, "split@2", weight=10)
    routes.deploy(project, "shadowed@1")
    routes.deploy(project, "shadowed@2", shadow=50)
    routes.deploy(project, "named@1")
    routes.deploy(project, "broken-load@1", require_signature=True)
    routes.deploy(project, "broken-predict@1")
    routes.deploy(project, "idle@1", scale={"idle_timeout_s": 0.5})
    with (
        running_server(root, "--poll-interval", "0.2") as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        yield Served(url, project, root, client)
    project.close()


def expected(model: str, rows: Any, *, flip: bool = False, C: float = 1.0) -> list[int]:
    from sklearn.linear_model import LogisticRegression

    X, y = training_data()
    if flip:
        y = 1 - y
    return LogisticRegression(C=C, max_iter=500).fit(X, y).predict(np.asarray(rows)).tolist()


ROWS = training_data()[0][:5]


def test_v2_infer_answers_with_predictions_probabilities_and_version(served: Served) -> None:
    r = served.client.post(
        "/v2/models/clf/infer", json={"id": "abc", **v2_rows(ROWS)}, headers={"x-request-id": "r-1"}
    )
    assert r.status_code == 200, r.text
    assert r.headers["x-seaway-version"] == "clf@1"
    assert r.headers["x-request-id"] == "r-1"
    body = r.json()
    assert body["model_name"] == "clf" and body["model_version"] == "1" and body["id"] == "abc"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["predict"]["data"] == expected("clf", ROWS)
    assert outputs["predict"]["shape"] == [5]
    assert outputs["predict_proba"]["shape"] == [5, 2]
    assert outputs["predict_proba"]["datatype"] == "FP64"
    proba = np.asarray(outputs["predict_proba"]["data"]).reshape(5, 2)
    assert np.allclose(proba.sum(axis=1), 1.0)


def test_v1_predict_takes_rows_as_lists_and_as_objects(served: Served) -> None:
    r = served.client.post("/v1/models/clf:predict", json={"instances": ROWS.tolist()})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": expected("clf", ROWS)}
    assert r.headers["x-seaway-version"] == "clf@1"
    rows = [dict(zip(NAMED, row, strict=True)) for row in ROWS.tolist()]
    r = served.client.post("/v1/models/named:predict", json={"instances": rows})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == expected("named", ROWS)


def test_v2_named_inputs_become_columns(served: Served) -> None:
    inputs = [
        {"name": n, "shape": [5], "datatype": "FP64", "data": ROWS[:, i].tolist()}
        for i, n in enumerate(NAMED)
    ]
    r = served.client.post("/v2/models/named/infer", json={"inputs": inputs[::-1]})
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == expected("named", ROWS)
    meta = served.client.get("/v2/models/named").json()
    assert meta["name"] == "named" and meta["versions"] == ["1"] and meta["platform"] == "sklearn"
    assert [i["name"] for i in meta["inputs"]] == NAMED
    assert served.client.get("/v2/models/named/ready").json() == {"name": "named", "ready": True}


def test_weighted_split_matches_the_weights(served: Served) -> None:
    n = 2000
    seen = Counter(
        served.client.post("/v2/models/split/infer", json=v2_rows(ROWS[:1])).headers[
            "x-seaway-version"
        ]
        for _ in range(n)
    )
    sigma = math.sqrt(n * 0.1 * 0.9)
    assert abs(seen["split@2"] - n * 0.1) <= 4 * sigma, seen
    assert seen["split@1"] + seen["split@2"] == n


def test_a_request_key_sticks_to_one_version(served: Served) -> None:
    first = {}
    for i in range(300):
        r = served.client.post(
            "/v2/models/split/infer", json=v2_rows(ROWS[:1]), headers={"x-seaway-key": f"user-{i}"}
        )
        first[i] = r.headers["x-seaway-version"]
    for i in range(0, 300, 3):
        r = served.client.post(
            "/v1/models/split:predict",
            json={"instances": ROWS[:1].tolist()},
            headers={"x-seaway-key": f"user-{i}"},
        )
        assert r.headers["x-seaway-version"] == first[i]
    share = sum(v == "split@2" for v in first.values()) / len(first)
    assert 0.03 < share < 0.2  # 10% of keys, within sampling noise


def test_shadow_answers_never_reach_the_client_and_disagreements_are_counted(
    served: Served,
) -> None:
    for _ in range(40):
        r = served.client.post("/v2/models/shadowed/infer", json=v2_rows(ROWS))
        assert r.status_code == 200
        assert r.headers["x-seaway-version"] == "shadowed@1"
        assert r.json()["outputs"][0]["data"] == expected("shadowed", ROWS)

    def compared() -> float:
        samples = metric_samples(
            served.client.get("/metrics").text, "seaway_shadow_comparisons_total"
        )
        return sum(s.value for s in samples if s.labels.get("model") == "shadowed")

    assert wait_for(lambda: compared() >= 20) and compared() == 20
    samples = metric_samples(served.client.get("/metrics").text, "seaway_shadow_comparisons_total")
    disagreed = [
        s for s in samples if s.labels.get("model") == "shadowed" and s.labels["agreed"] == "false"
    ]
    assert disagreed and disagreed[0].value == 20  # the flipped model disagrees on every row set


def test_a_broken_model_fails_alone(served: Served) -> None:
    r = served.client.post("/v2/models/broken-load/infer", json=v2_rows(ROWS))
    assert r.status_code == 503
    assert "broken-load@1 could not be loaded" in r.json()["error"]
    assert "is not signed" in r.json()["error"]
    r = served.client.post("/v2/models/broken-predict/infer", json=v2_rows(ROWS))
    assert r.status_code == 500
    assert "ZeroDivisionError" in r.json()["error"] and "Traceback" not in r.text
    assert served.client.post("/v2/models/clf/infer", json=v2_rows(ROWS)).status_code == 200
    assert served.client.get("/v2/models/broken-load/ready").status_code == 503


def test_a_deploy_is_picked_up_without_restart(served: Served) -> None:
    assert served.client.post("/v2/models/late/infer", json=v2_rows(ROWS)).status_code == 404
    routes.deploy(served.project, "late@1")
    r = wait_for(
        lambda: (
            resp
            if (resp := served.client.post("/v2/models/late/infer", json=v2_rows(ROWS))).status_code
            == 200
            else None
        )
    )
    assert r.headers["x-seaway-version"] == "late@1"
    routes.undeploy(served.project, "late")
    wait_for(
        lambda: served.client.post("/v2/models/late/infer", json=v2_rows(ROWS)).status_code == 404
    )


def test_an_idle_version_is_unloaded_and_reloads(served: Served) -> None:
    def loads() -> float:
        text = served.client.get("/metrics").text
        return sum(
            s.value
            for s in metric_samples(text, "seaway_model_loads_total")
            if s.labels["model"] == "idle"
        )

    def unloads() -> float:
        text = served.client.get("/metrics").text
        return sum(
            s.value
            for s in metric_samples(text, "seaway_model_unloads_total")
            if s.labels["model"] == "idle" and s.labels["reason"] == "idle"
        )

    assert served.client.post("/v2/models/idle/infer", json=v2_rows(ROWS)).status_code == 200
    assert loads() == 1
    wait_for(lambda: unloads() >= 1)
    r = served.client.post("/v2/models/idle/infer", json=v2_rows(ROWS))
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == expected("idle", ROWS)
    assert loads() == 2


@pytest.mark.parametrize(
    ("path", "payload", "status", "words"),
    [
        ("/v2/models/clf/infer", b"{not json", 400, "not valid JSON"),
        ("/v2/models/clf/infer", b'{"inputs": []}', 400, "no `inputs`"),
        (
            "/v2/models/clf/infer",
            b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3]}]}',
            400,
            "shape [1, 4] holds 4 values but data has 3",
        ),
        (
            "/v2/models/clf/infer",
            b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", '
            b'"data": ["a", "b", "c", "d"]}]}',
            400,
            "datatype FP64 does not match",
        ),
        (
            "/v2/models/clf/infer",
            b'{"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}',
            400,
            "expects 4",
        ),
        (
            "/v2/models/named/infer",
            b'{"inputs": [{"name": "tenure", "shape": [1], "datatype": "FP64", "data": [1]}]}',
            400,
            "missing inputs 'charges'",
        ),
        ("/v2/models/nope/infer", b'{"inputs": []}', 404, "'nope' is not deployed"),
        ("/v2/models/clf/versions/9/infer", b'{"inputs": []}', 404, "version 9 of 'clf'"),
        ("/v1/models/clf:predict", b'{"instances": [[1, 2], [1]]}', 400, "differ in length"),
        ("/v2/nothing", b"", 404, "no endpoint"),
    ],
)
def test_bad_requests_get_clear_json_errors(
    served: Served, path: str, payload: bytes, status: int, words: str
) -> None:
    r = served.client.post(path, content=payload, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert words in r.json()["error"], r.json()
    assert "Traceback" not in r.text


def test_an_oversized_body_is_refused(served: Served) -> None:
    r = served.client.post("/v2/models/clf/infer", content=b" " * (11 * 1024 * 1024))
    assert r.status_code == 413
    assert "limit" in r.json()["error"]


def test_a_pinned_version_and_metrics(served: Served) -> None:
    r = served.client.post("/v2/models/split/versions/2/infer", json=v2_rows(ROWS))
    assert r.status_code == 200 and r.headers["x-seaway-version"] == "split@2"
    assert r.json()["outputs"][0]["data"] == expected("split", ROWS, C=0.01)
    text = served.client.get("/metrics").text
    assert metric_samples(text, "seaway_model_loads_total")
    assert served.client.get("/v2/health/live").json() == {"live": True}
    listed = served.client.get("/v2/models").json()["models"]
    assert {m["name"] for m in listed} >= {"clf", "split", "named"}


def test_two_workers_serve(served: Served) -> None:
    with running_server(served.root, "--workers", "2") as url, httpx.Client(base_url=url) as client:
        for _ in range(20):
            r = client.post("/v2/models/clf/infer", json=v2_rows(ROWS))
            assert r.status_code == 200
            assert r.json()["outputs"][0]["data"] == expected("clf", ROWS)
