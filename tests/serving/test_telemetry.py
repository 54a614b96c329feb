"""Telemetry: Prometheus text, live_stats rows, the sampled request log, bounded memory and
store errors, on SQLite and PostgreSQL."""

from __future__ import annotations

import tracemalloc
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from seaway._util import as_utc, utcnow
from seaway.project import Project
from seaway.serving.telemetry import Telemetry, sampled
from seaway.store.schema import live_stats, request_log


def _samples(telemetry: Telemetry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, content_type = telemetry.metrics_text()
    assert content_type.startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _rows(project: Project, table: Any) -> list[Any]:
    with project.metadata.read() as conn:
        return list(conn.execute(select(table).order_by(table.c.id)).all())


def test_metrics_text_parses_and_counts_what_happened(project: Project) -> None:
    t = Telemetry(project, gateway_id="g1", sample_rate=0.0)
    for i in range(30):
        t.request("churn", 7, "primary", status=200, latency_s=0.002, request_id=f"a{i}")
    for i in range(5):
        t.request("churn", 7, "primary", status=500, latency_s=0.03, request_id=f"b{i}")
    for i in range(4):
        t.request("churn", 8, "shadow", status=200, latency_s=0.0004, request_id=f"c{i}")
    t.request("nope", None, "primary", status=404, latency_s=0.0001, request_id="d")
    t.load("churn", 7, 0.8, cold_start=True)
    t.load("churn", 8, 0.2, cold_start=False)
    t.unload("churn", 8, "idle")
    t.batch("churn", 7, 16)
    t.batch("churn", 7, 3)
    t.shadow_compare("churn", 7, 8, agreed=True)
    t.shadow_compare("churn", 7, 8, agreed=False)
    t.shadow_compare("churn", 7, 8, agreed=True)

    m = _samples(t)
    v7 = (("model", "churn"), ("route", "primary"), ("version", "7"))
    assert m[("seaway_requests_total", (("code", "200"), *v7))] == 30
    assert m[("seaway_requests_total", (("code", "500"), *v7))] == 5
    assert m[("seaway_request_errors_total", (("code", "500"), *v7))] == 5
    assert ("seaway_request_errors_total", (("code", "200"), *v7)) not in m
    unknown = (("code", "404"), ("model", "nope"), ("route", "primary"), ("version", ""))
    assert m[("seaway_requests_total", unknown)] == 1
    # Histogram buckets are cumulative: 30 answers under 2.5 ms, all 35 under 50 ms.
    assert m[("seaway_request_latency_seconds_bucket", (("le", "0.0025"), *v7))] == 30
    assert m[("seaway_request_latency_seconds_bucket", (("le", "0.05"), *v7))] == 35
    assert m[("seaway_request_latency_seconds_count", v7)] == 35
    assert m[("seaway_request_latency_seconds_sum", v7)] == pytest.approx(30 * 0.002 + 5 * 0.03)
    v8 = (("model", "churn"), ("route", "shadow"), ("version", "8"))
    assert m[("seaway_request_latency_seconds_bucket", (("le", "0.0005"), *v8))] == 4
    assert (
        m[
            (
                "seaway_model_loads_total",
                (("cold_start", "true"), ("model", "churn"), ("version", "7")),
            )
        ]
        == 1
    )
    assert (
        m[
            (
                "seaway_model_unloads_total",
                (("model", "churn"), ("reason", "idle"), ("version", "8")),
            )
        ]
        == 1
    )
    assert m[("seaway_models_loaded", ())] == 1
    assert m[("seaway_cold_start_seconds_count", (("model", "churn"),))] == 1
    assert m[("seaway_batch_size_sum", (("model", "churn"), ("version", "7")))] == 19
    shadow = (("model", "churn"), ("primary", "7"), ("shadow", "8"))
    assert m[("seaway_shadow_comparisons_total", (("agreed", "true"), *shadow))] == 2
    assert m[("seaway_shadow_comparisons_total", (("agreed", "false"), *shadow))] == 1


def test_a_flush_writes_counts_quantiles_and_output_sketches(project: Project) -> None:
    rng = np.random.default_rng(0)
    latencies = rng.lognormal(mean=np.log(0.002), sigma=0.8, size=4000)
    probabilities = rng.beta(2, 5, size=4000)
    t = Telemetry(project, gateway_id="g1", sample_rate=0.0)
    for i, (lat, p) in enumerate(zip(latencies, probabilities, strict=True)):
        status = 500 if i % 100 == 0 else 200
        outputs = None if status == 500 else np.array([[1 - p, p]])
        t.request(
            "churn",
            7,
            "primary",
            status=status,
            latency_s=float(lat),
            request_id=str(i),
            outputs=outputs,
        )
    for label in ["yes"] * 30 + ["no"] * 10:
        t.request(
            "churn",
            8,
            "shadow",
            status=200,
            latency_s=0.001,
            request_id=label,
            outputs=np.array([label]),
        )
    t.shadow_compare("churn", 7, 8, agreed=True)
    assert t.flush()

    rows = {(r.number, r.route): r for r in _rows(project, live_stats)}
    assert set(rows) == {(7, "primary"), (8, "shadow")}
    primary = rows[(7, "primary")]
    assert (primary.requests, primary.errors, primary.gateway) == (4000, 40, "g1")
    assert primary.window_end >= primary.window_start
    figures = primary.figures
    assert figures["codes"] == {"200": 3960, "500": 40}
    for q in (50, 90, 99):
        exact = float(np.percentile(latencies, q))
        # Half a bucket of 2**(1/8), plus a little for the rank.
        assert figures["latency_s"][f"p{q}"] == pytest.approx(exact, rel=0.06)
    assert sum(figures["latency_histogram"]["counts"].values()) == 4000
    sketch = figures["outputs"]["output"]
    assert sketch["kind"] == "numeric" and sketch["edges"][0] == 0.0 and sketch["edges"][-1] == 1.0
    assert sum(sketch["counts"]) == 3960
    expected, _ = np.histogram(probabilities[np.arange(4000) % 100 != 0], bins=sketch["edges"])
    assert sketch["counts"][1:-1] == expected.tolist()
    shadow = rows[(8, "shadow")].figures
    assert shadow["outputs"]["output"] == {
        "kind": "labels",
        "counts": {"yes": 30, "no": 10},
        "other": 0,
    }
    assert shadow["shadow"] == {"7": {"agreed": 1, "disagreed": 0}}

    # An empty window writes nothing; the next window is a new row.
    assert t.flush()
    assert len(_rows(project, live_stats)) == 2
    t.request("churn", 7, "primary", status=200, latency_s=0.001, request_id="x")
    t.stop()
    assert len(_rows(project, live_stats)) == 3


def test_the_request_log_follows_the_sample_rate_and_the_cap(project: Project) -> None:
    ids = [uuid.uuid4().hex for _ in range(3000)]
    t = Telemetry(project, gateway_id="g1", sample_rate=0.1)
    for i in ids:
        t.request(
            "churn",
            7,
            "primary",
            status=200,
            latency_s=0.001,
            request_id=i,
            key="k1",
            inputs={"x": [1.0, 2.0]},
            outputs=np.array([0.25]),
        )
    t.flush()
    logged = _rows(project, request_log)
    # Deterministic by request id: exactly the ids whose hash falls in the sample.
    assert {r.request_id for r in logged} == {i for i in ids if sampled(i, 0.1)}
    assert 200 < len(logged) < 400
    first = logged[0]
    assert (first.model, first.number, first.route, first.key, first.status) == (
        "churn",
        7,
        "primary",
        "k1",
        200,
    )
    assert first.inputs == {"x": [1.0, 2.0]} and first.outputs == [0.25]
    assert first.latency_ms == pytest.approx(1.0)

    capped = Telemetry(project, gateway_id="g2", sample_rate=1.0, sample_cap=50)
    for i in range(500):
        capped.request("churn", 7, "primary", status=200, latency_s=0.001, request_id=f"c{i}")
    capped.flush()
    assert len(_rows(project, request_log)) == len(logged) + 50
    assert _samples(capped)[("seaway_request_log_dropped_total", ())] == 450
    # A large input is noted, not stored.
    capped.request(
        "churn",
        7,
        "primary",
        status=200,
        latency_s=0.001,
        request_id="big",
        inputs=np.zeros((200, 100)),
    )
    capped.flush()
    assert _rows(project, request_log)[-1].inputs["truncated"] is True


def test_logged_values_read_back_as_json_whatever_their_type(project: Project) -> None:
    t = Telemetry(project, gateway_id="g1", sample_rate=1.0)
    tensors = [
        {"name": "x", "shape": [3], "datatype": "FP32", "data": np.array([1.5, np.nan, np.inf])},
        {"name": "city", "shape": [3], "datatype": "BYTES", "data": ["Zürich", "東京", None]},
    ]
    sent = [
        (tensors, {"predict_proba": np.array([[0.25, 0.75]], dtype=np.float32)}),
        ({"n": np.int64(3), 4: True}, None),
        ([[1, 2], [3, 4]], object()),
    ]
    for n, (inputs, outputs) in enumerate(sent):
        t.request(
            "m", 1, "primary", status=200, latency_s=0.001, request_id=f"r{n}",
            inputs=inputs, outputs=outputs,
        )  # fmt: skip
    assert t.flush()
    first, second, third = _rows(project, request_log)
    assert [r.request_id for r in (first, second, third)] == ["r0", "r1", "r2"]
    assert abs(as_utc(first.ts) - utcnow()) < timedelta(minutes=1)  # read back as UTC
    assert (first.status, first.latency_ms) == (200, pytest.approx(1.0))
    assert first.inputs == [
        {"name": "x", "shape": [3], "datatype": "FP32", "data": [1.5, None, None]},
        {"name": "city", "shape": [3], "datatype": "BYTES", "data": ["Zürich", "東京", None]},
    ]
    assert first.outputs == {"predict_proba": [[0.25, 0.75]]}
    assert second.inputs == {"n": 3, "4": True} and second.outputs is None
    assert third.inputs == [[1, 2], [3, 4]]
    assert third.outputs.startswith("<object object at")  # stored as its text, not an error


@pytest.mark.slow
def test_memory_stays_bounded_over_a_million_distinct_requests(project_dir: Path) -> None:
    p = Project(project_dir)
    t = Telemetry(p, gateway_id="g1", sample_rate=1.0, sample_cap=100)
    # Distinct ids (all sampled) and distinct labels: both must stay capped. Memory is
    # traced over the last 100,000 requests only (tracing slows every allocation).
    for i in range(900_000):
        t.request(
            "m",
            1,
            "primary",
            status=200,
            latency_s=0.001,
            request_id=f"r{i}",
            outputs=[f"label-{i}"],
        )
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for i in range(900_000, 1_001_000):
            t.request(
                "m",
                1,
                "primary",
                status=200,
                latency_s=0.001,
                request_id=f"r{i}",
                outputs=[f"label-{i}"],
            )
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 512 * 1024
    t.flush()
    rows = _rows(p, live_stats)
    assert rows[0].requests == 1_001_000
    sketch = rows[0].figures["outputs"]["output"]
    assert len(sketch["counts"]) <= 50
    assert sum(sketch["counts"].values()) + sketch["other"] == 1_001_000
    assert len(_rows(p, request_log)) == 100
    p.close()


def test_a_store_error_is_retried_and_never_reaches_requests(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing listens on port 1: every flush fails until the store is back.
    monkeypatch.setenv("SEAWAY_METADATA_URL", "postgresql+psycopg://postgres@127.0.0.1:1/none")
    down = Project(project_dir)
    t = Telemetry(down, gateway_id="g1", sample_rate=1.0, flush_interval_s=0.05)
    t.start()
    for i in range(10):
        t.request("churn", 7, "primary", status=200, latency_s=0.001, request_id=f"r{i}")
    assert not t.flush()
    assert _samples(t)[("seaway_telemetry_flush_errors_total", ())] >= 1
    t.stop()  # logs, does not raise

    monkeypatch.setenv("SEAWAY_METADATA_URL", f"sqlite:///{project_dir / 'meta.db'}")
    up = Project(project_dir)
    t.project = up
    t.request("churn", 7, "primary", status=200, latency_s=0.001, request_id="late")
    assert t.flush()
    assert sum(r.requests for r in _rows(up, live_stats)) == 11
    assert len(_rows(up, request_log)) == 11
    up.close()
    down.close()


def test_a_large_flush_is_written_in_several_statements_in_order(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    import seaway.serving.telemetry as telemetry

    monkeypatch.setattr(telemetry, "LOG_STATEMENT_BYTES", 4000)  # ~13 samples a statement
    statements: list[int] = []
    one = telemetry._insert_json_rows

    def counted(conn: Any, table: str, chunk: list[dict[str, Any]]) -> None:
        statements.append(len(chunk))
        one(conn, table, chunk)

    monkeypatch.setattr(telemetry, "_insert_json_rows", counted)
    t = Telemetry(project, gateway_id="g1", sample_rate=1.0)
    for i in range(95):
        t.request(
            "m", 1, "primary", status=200, latency_s=0.001, request_id=f"r{i:03d}",
            inputs={"x": [float(i)] * 20}, outputs=[i],
        )  # fmt: skip
    assert t.flush()
    logged = _rows(project, request_log)
    assert [r.request_id for r in logged] == [f"r{i:03d}" for i in range(95)]
    assert [r.outputs for r in logged] == [[i] for i in range(95)]
    assert len(statements) > 5 and sum(statements) == 95
