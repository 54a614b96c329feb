"""Feedback labels: parsing, joining to the request log (SQLite and PostgreSQL), the real
gateway on 127.0.0.1 answering and then taking labels, and `seaway feedback`."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from seaway.errors import InputError, NotFound
from seaway.monitor.feedback import (
    FeedbackItem,
    parse_feedback,
    read_feedback,
    record_feedback,
)
from seaway.monitor.quality import live_quality
from seaway.project import Project
from seaway.serving.app import Gateway, create_app
from seaway.serving.telemetry import Telemetry
from seaway.store.schema import feedback as feedback_table
from tests.rollout import T0, register_versions
from tests.serving.conftest import (
    free_port,
    metric_samples,
    register,
    save_classifier,
    training_data,
    v2_rows,
    wait_for,
)

# -- parsing ------------------------------------------------------------------------------


def test_parse_accepts_ids_keys_and_row_labels_and_a_bare_list() -> None:
    model, items = parse_feedback(
        {
            "model": "churn",
            "feedback": [
                {"id": "req-1", "label": 1},
                {"id": "req-2", "labels": [0, "yes", True, 2.5]},
                {"key": "cust-42", "label": 0},
            ],
        }
    )
    assert model == "churn"
    assert items == [
        FeedbackItem("req-1", None, [1]),
        FeedbackItem("req-2", None, [0, "yes", True, 2.5]),
        FeedbackItem(None, "cust-42", [0]),
    ]
    assert parse_feedback([{"id": 7, "label": "a"}]) == (None, [FeedbackItem("7", None, ["a"])])


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"feedback": [{"id": "a", "label": 1}, {"label": 1}]}, 'feedback[1]: needs "id" or "key"'),
        (
            [{"id": "a", "label": 1}, {"id": "b", "label": {"x": 1}}],
            "feedback[1].label: expected a number, string or boolean, got dict",
        ),
        ([{"id": "a", "label": None}], "feedback[0].label: expected a number, string or boolean"),
        ([{"id": "a", "labels": [1, [2]]}], "feedback[0].labels[1]: expected a number"),
        ([{"id": "a", "labels": []}], "feedback[0].labels: expected a non-empty list"),
        ([{"id": "a"}], 'feedback[0]: needs "label" or "labels"'),
        ([{"id": "a", "label": 1, "labels": [1]}], 'has both "label" and "labels"'),
        ([{"id": "a", "key": "k", "label": 1}], 'feedback[0]: has both "id" and "key"'),
        ([{"id": "a", "lable": 1}], 'feedback[0]: unknown field "lable"'),
        ([{"id": "", "label": 1}], "feedback[0].id: is empty"),
        (["req-1"], "feedback[0]: expected an object, got str"),
        ({"items": []}, 'unknown field "items"'),
        ({"model": "m"}, 'needs a "feedback" list'),
        ({"feedback": "x"}, '"feedback": expected a list of items, got str'),
        ([{"id": "a", "label": float("nan")}], "a label must be a finite number"),
    ],
)
def test_parse_names_the_bad_item_and_field(payload: Any, message: str) -> None:
    with pytest.raises(InputError) as err:
        parse_feedback(payload)
    assert message in err.value.message


def test_parse_refuses_more_than_ten_thousand_items() -> None:
    items = [{"id": str(i), "label": 1} for i in range(10_001)]
    with pytest.raises(InputError, match="10001 feedback items in one body; at most 10000"):
        parse_feedback(items)
    assert len(parse_feedback(items[:10_000])[1]) == 10_000


def test_files_read_as_json_lines_documents_or_csv() -> None:
    lines = '{"id": "a", "label": 1}\n\n{"key": "k", "labels": [0, 1]}\n'
    assert read_feedback(lines, "labels.jsonl")[1] == [
        FeedbackItem("a", None, [1]),
        FeedbackItem(None, "k", [0, 1]),
    ]
    document = json.dumps({"model": "churn", "feedback": [{"id": "a", "label": "x"}]})
    assert read_feedback(document, "labels.json") == ("churn", [FeedbackItem("a", None, ["x"])])
    table = "id,label\nreq-1,1\nreq-2,no\nreq-3,0.25\n"
    assert read_feedback(table, "labels.csv")[1] == [
        FeedbackItem("req-1", None, [1]),
        FeedbackItem("req-2", None, ["no"]),
        FeedbackItem("req-3", None, [0.25]),
    ]
    assert read_feedback("key,label\ncust-1,1\n", "-")[1] == [FeedbackItem(None, "cust-1", [1])]
    with pytest.raises(InputError, match=r"labels\.jsonl:2: not JSON"):
        read_feedback('{"id": "a", "label": 1}\n{"id": \n', "labels.jsonl")
    with pytest.raises(InputError, match=r"labels\.csv:3\.label: expected a number"):
        read_feedback("id,label\na,1\nb,\n", "labels.csv")
    with pytest.raises(InputError, match="needs a column `id` or `key` and a column `label`"):
        read_feedback("request,truth\na,1\n", "labels.csv")


# -- joining to the request log -------------------------------------------------------------


def _answer(predict: list[Any], proba: list[float] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"predict": np.asarray(predict)}
    if proba is not None:
        p = np.asarray(proba, dtype=float)
        out["predict_proba"] = np.column_stack([1 - p, p])
    return out


def log_answers(project: Project, answers: list[dict[str, Any]]) -> None:
    """Answers logged as a gateway logs them: through Telemetry with every request sampled."""
    t = Telemetry(project, gateway_id="test", sample_rate=1.0)
    for a in answers:
        t.request(
            a.get("model", "churn"),
            a.get("number", 1),
            a.get("route", "primary"),
            status=a.get("status", 200),
            latency_s=0.001,
            request_id=a["id"],
            key=a.get("key"),
            inputs=[[0.0, 1.0]] * len(a["predict"]),
            outputs=_answer(a["predict"], a.get("proba")) if a.get("status", 200) < 400 else None,
        )
    assert t.flush()


def stored(project: Project) -> list[Any]:
    with project.metadata.read() as conn:
        return list(conn.execute(select(feedback_table).order_by(feedback_table.c.id)).all())


def test_labels_join_primary_and_shadow_answers_by_id_and_key(project: Project) -> None:
    register_versions(project, 2)
    log_answers(
        project,
        [
            {"id": "r1", "predict": [1], "proba": [0.9], "key": "cust-1"},
            {"id": "r1", "number": 2, "route": "shadow", "predict": [0], "proba": [0.2]},
            {"id": "r2", "predict": [0, 1], "proba": [0.1, 0.8]},
            {"id": "r3", "predict": [1], "key": "cust-7"},
            {"id": "r4", "predict": [0], "key": "cust-7"},  # newer: the key names this one
            {"id": "r5", "predict": [1], "status": 500},
        ],
    )
    items = [
        FeedbackItem("r1", None, [1]),
        FeedbackItem("r2", None, [0, 0]),
        FeedbackItem(None, "cust-7", [1]),
        FeedbackItem("nope", None, [1]),
        FeedbackItem(None, "cust-unknown", [1]),
        FeedbackItem("r2", None, [1]),  # one label for two rows
        FeedbackItem("r5", None, [1]),  # the request failed
    ]
    result = record_feedback(project, items, model="churn", actor="ana")
    assert result.accepted == 3
    assert (result.unknown, result.unknown_count) == (["nope", "key:cust-unknown"], 2)
    assert [r["index"] for r in result.rejected] == [5, 6]
    assert "1 label(s) for request r2, which had 2 row(s)" in result.rejected[0]["reason"]
    assert "failed (status 500)" in result.rejected[1]["reason"]
    assert result.duplicates == 0 and result.rows == 4 and not result.ok
    assert result.models == {"churn": {"accepted": 3, "unknown": 2, "rejected": 2}}

    rows = stored(project)
    by = {(r.request_id, r.number, r.route): r for r in rows}
    assert set(by) == {("r1", 1, "primary"), ("r1", 2, "shadow"), ("r2", 1, "primary"),
                       ("r4", 1, "primary")}  # fmt: skip
    assert by[("r4", 1, "primary")].key == "cust-7"
    assert by[("r2", 1, "primary")].labels == [0, 0]
    assert {r.actor for r in rows} == {"ana"}

    again = record_feedback(project, items[:3], model="churn")
    assert (again.accepted, again.duplicates, again.rows) == (0, 3, 0)
    assert again.ok
    assert len(stored(project)) == 4

    # The label judged both versions: v1 said 1 (right), v2 said 0 (wrong).
    v1 = live_quality(project, "churn", 1, since=T0.replace(year=2000))
    v2 = live_quality(project, "churn", 2, since=T0.replace(year=2000))
    assert v1.metric("accuracy") == pytest.approx(2 / 4)  # r1 right, r2 1 of 2, r4 wrong
    assert v2.metric("accuracy") == 0.0 and v2.labels == 1


def test_a_model_narrows_the_lookup_and_an_unknown_model_is_not_found(project: Project) -> None:
    register_versions(project, 1)
    register_versions(project, 1, model="other")
    log_answers(project, [{"id": "same", "predict": [1]}, {"id": "x", "predict": [1]}])
    log_answers(project, [{"id": "same", "model": "other", "predict": [0]}])
    result = record_feedback(project, [FeedbackItem("same", None, [0])], model="other")
    assert result.accepted == 1
    assert [(r.model, r.labels) for r in stored(project)] == [("other", [0])]
    assert record_feedback(project, [FeedbackItem("x", None, [0])], model="other").unknown == ["x"]
    with pytest.raises(NotFound, match="no model named 'ghost'"):
        record_feedback(project, [FeedbackItem("x", None, [0])], model="ghost")
    assert len(stored(project)) == 1


# -- the gateway ----------------------------------------------------------------------------


@contextlib.contextmanager
def serving(gateway: Gateway) -> Iterator[httpx.Client]:
    """The gateway under uvicorn on 127.0.0.1, in a thread of this process."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(
        gateway, host="127.0.0.1", port=port, lifespan="on", log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout=30)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(30)


def make_gateway(project: Project, **kwargs: Any) -> Gateway:
    from prometheus_client import CollectorRegistry

    # Every request logged, and no flush on a timer: labels posted right after their answers
    # only find them because the gateway flushes before looking again.
    telemetry = Telemetry(
        project,
        gateway_id="test",
        sample_rate=1.0,
        flush_interval_s=3600,
        registry=CollectorRegistry(),
    )
    return create_app(project, telemetry=telemetry, poll_interval_s=0.05, **kwargs)


@pytest.fixture
def churn(project: Project, tmp_path: Path) -> Project:
    from seaway.serving import routes

    register(project, "churn", save_classifier(tmp_path / "good.skops"))
    register(project, "churn", save_classifier(tmp_path / "flipped.skops", flip=True))
    routes.deploy(project, "churn@1")
    routes.deploy(project, "churn@2", shadow=100)
    return project


def _metric(client: httpx.Client, **labels: str) -> float:
    text = client.get("/metrics").text
    return sum(
        s.value
        for s in metric_samples(text, "seaway_feedback_labels_total")
        if all(s.labels.get(k) == v for k, v in labels.items())
    )


def _requests_total(client: httpx.Client, route: str) -> float:
    text = client.get("/metrics").text
    return sum(
        s.value
        for s in metric_samples(text, "seaway_requests_total")
        if s.labels.get("route") == route
    )


def test_the_gateway_takes_labels_right_after_its_answers(churn: Project) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, roc_auc_score

    X_all, y_all = training_data()
    # The served version, fitted again the same way, gives the answers to expect.
    reference = LogisticRegression(max_iter=500).fit(X_all, y_all)
    X, truth = X_all[200:300], [int(v) for v in y_all[200:300]]
    gateway = make_gateway(churn)
    with serving(gateway) as client:
        items: list[dict[str, Any]] = []
        for i in range(30):  # 30 v2 requests of 3 rows, named by their id
            rows = slice(3 * i, 3 * i + 3)
            answer = client.post(
                "/v2/models/churn/infer",
                json=v2_rows(X[rows]),
                headers={"x-request-id": f"req-{i}"},
            )
            assert answer.status_code == 200
            outputs = {o["name"]: o["data"] for o in answer.json()["outputs"]}
            assert outputs["predict"] == reference.predict(X[rows]).tolist()
            items.append({"id": f"req-{i}", "labels": truth[rows]})
        for i in range(90, 100):  # 10 one-row v1 requests, named by their routing key
            answer = client.post(
                "/v1/models/churn:predict",
                json={"instances": X[i : i + 1].tolist()},
                headers={"x-seaway-key": f"cust-{i}"},
            )
            assert answer.status_code == 200
            items.append({"key": f"cust-{i}", "label": truth[i]})
        # Shadow copies run after each answer; once they are counted, their samples wait in
        # memory with the primaries' (nothing flushed yet), and the labels find them all.
        wait_for(lambda: _requests_total(client, "shadow") == 40)

        posted = client.post(
            "/v1/feedback",
            json={"model": "churn", "feedback": [*items, {"id": "never-seen", "label": 1}]},
        )
        assert posted.status_code == 200, posted.text
        body = posted.json()
        assert body["accepted"] == 40 and body["rows"] == 80
        assert body["unknown"] == ["never-seen"] and body["unknown_count"] == 1
        assert body["rejected"] == [] and body["duplicates"] == 0

        again = client.post("/v1/feedback", json=items[:5])
        assert again.status_code == 200 and again.json()["duplicates"] == 5
        assert _metric(client, model="churn", outcome="accepted") == 40
        assert _metric(client, model="churn", outcome="unknown") == 1
        assert _metric(client, model="churn", outcome="duplicate") == 5

    since = T0.replace(year=2000)
    good = live_quality(churn, "churn", 1, since=since)
    assert good.labels == 100 and good.requests == 40
    assert good.metric("accuracy") == pytest.approx(accuracy_score(truth, reference.predict(X)))
    assert good.metric("auc") == pytest.approx(
        roc_auc_score(truth, reference.predict_proba(X)[:, 1])
    )
    # The shadow learned the opposite labels: the same labels judge it too, and badly.
    flipped = live_quality(churn, "churn", 2, since=since, route="shadow")
    assert flipped.labels == 100
    assert flipped.metric("accuracy") == pytest.approx(1 - good.metric("accuracy"))
    assert flipped.metric("auc") == pytest.approx(1 - good.metric("auc"), abs=0.02)


def test_malformed_bodies_unknown_models_and_wrong_methods(churn: Project) -> None:
    with serving(make_gateway(churn)) as client:
        bad_json = client.post("/v1/feedback", content=b'{"feedback": [')
        assert bad_json.status_code == 400
        assert "not JSON" in bad_json.json()["error"]
        bad_item = client.post("/v1/feedback", json={"feedback": [{"label": 1}]})
        assert bad_item.status_code == 400
        assert bad_item.json()["error"] == 'feedback[0]: needs "id" or "key"'
        assert "x-request-id" in bad_item.json()["hint"]
        ghost = client.post("/v1/feedback", json={"model": "ghost", "feedback": []})
        assert ghost.status_code == 404 and "ghost" in ghost.json()["error"]
        assert client.get("/v1/feedback").status_code == 405
        unknown = client.post("/v1/feedback", json=[{"id": "nobody", "label": 0}])
        assert unknown.status_code == 200
        assert unknown.json()["unknown"] == ["nobody"]
        assert _metric(client, model="", outcome="unknown") == 1


TEAM_SPEC = """\
name: demo
roles:
  admin: [admin]
  client: [infer]
"""


def test_feedback_needs_the_same_token_as_predictions(
    project_dir: Path, store_env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from seaway.policy import Identity, create_token
    from seaway.serving import routes
    from seaway.serving.security import Guard
    from tests.policy.identity_support import team_project

    team = team_project(project_dir, monkeypatch, TEAM_SPEC)
    try:
        register(team, "churn", save_classifier(tmp_path / "good.skops"))
        routes.deploy(team, "churn@1")
        create_token(team, "root", ["admin"])
        _, secret = create_token(
            team, "labeller", ["client"], identity=Identity("root", ("admin",), "token")
        )
        with serving(make_gateway(team, guard=Guard(team, require_token=True))) as client:
            auth = {"authorization": f"Bearer {secret}"}
            answer = client.post(
                "/v2/models/churn/infer",
                json=v2_rows(training_data()[0][:1]),
                headers={**auth, "x-request-id": "tok-1"},
            )
            assert answer.status_code == 200
            refused = client.post("/v1/feedback", json=[{"id": "tok-1", "label": 1}])
            assert refused.status_code == 401
            posted = client.post("/v1/feedback", json=[{"id": "tok-1", "label": 1}], headers=auth)
            assert posted.status_code == 200 and posted.json()["accepted"] == 1
        assert {r.actor for r in stored(team)} == {"labeller"}
    finally:
        team.close()


# -- the CLI ------------------------------------------------------------------------------


def test_cli_feedback_from_json_lines_csv_and_stdin(
    project: Project, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    register_versions(project, 1)
    log_answers(
        project,
        [
            {"id": "a", "predict": [1]},
            {"id": "b", "predict": [0]},
            {"id": "c", "predict": [1], "key": "cust-c"},
        ],
    )
    lines = tmp_path / "labels.jsonl"
    lines.write_text('{"id": "a", "label": 1}\n{"id": "b", "label": 1}\n')
    done = cli("feedback", lines, "--model", "churn", "--json")
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["accepted"] == 2

    table = tmp_path / "labels.csv"
    table.write_text("key,label\ncust-c,0\ncust-zz,1\n")
    some_unknown = cli("feedback", table)
    assert some_unknown.exit_code == 1
    assert "2 items: 1 accepted" in some_unknown.stdout
    assert "1 unknown" in some_unknown.stdout and "key:cust-zz" in some_unknown.stdout

    monkeypatch.setattr("sys.stdin", io.StringIO('[{"id": "a", "labels": [1, 0]}]'))
    rejected = cli("feedback", "-")
    assert rejected.exit_code == 1
    assert "feedback[0]: 2 label(s) for request a, which had 1 row(s)" in rejected.stdout

    again = cli("feedback", lines, "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["duplicates"] == 2

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a"}\n')
    refused = cli("feedback", bad)
    assert refused.exit_code == 2
    assert 'bad.jsonl:1: needs "label" or "labels"' in refused.stderr
    assert cli("feedback", tmp_path / "missing.csv").exit_code == 2
    assert cli("feedback", lines, "--model", "ghost").exit_code == 2
    assert len(stored(project)) == 3
