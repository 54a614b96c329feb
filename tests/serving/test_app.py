"""The ASGI app in-process (httpx.ASGITransport): batching, single-flight loads, the memory
budget, following the routing table. Real models, real store, real telemetry."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from seaway.project import Project
from seaway.serving import routes
from seaway.serving.app import Gateway, create_app
from tests.serving.conftest import (
    metric_samples,
    python_model,
    register,
    save_classifier,
    training_data,
    v2_rows,
)

ROWS = training_data()[0][:3]


@pytest.fixture
def models(project_dir: Path, tmp_path: Path) -> Iterator[Project]:
    project = Project(project_dir)
    path = save_classifier(tmp_path / "m.skops")
    for name in ("a", "b", "c"):
        register(project, name, path)
    yield project
    project.close()


@contextlib.asynccontextmanager
async def _client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    await gateway.startup()
    transport = httpx.ASGITransport(app=gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        yield client
    await gateway.shutdown()


def make_gateway(project: Project, **kwargs: Any) -> Gateway:
    from prometheus_client import CollectorRegistry

    from seaway.serving.telemetry import Telemetry

    telemetry = Telemetry(project, gateway_id="test", registry=CollectorRegistry())
    return create_app(project, telemetry=telemetry, poll_interval_s=0.05, **kwargs)


def metric(gateway: Gateway, name: str, **labels: str) -> float:
    text = gateway.telemetry.metrics_text()[0].decode()
    return sum(
        s.value
        for s in metric_samples(text, name)
        if all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_concurrent_first_requests_share_one_load_and_batches_form(models: Project) -> None:
    async def scenario() -> None:
        routes.deploy(models, "a@1", batching={"max_batch": 16, "max_wait_us": 2000})
        gateway = make_gateway(models)
        async with _client(gateway) as client:
            answers = await asyncio.gather(
                *(
                    client.post("/v2/models/a/infer", json=v2_rows(ROWS[i % 3 : i % 3 + 1]))
                    for i in range(48)
                )
            )
            assert all(r.status_code == 200 for r in answers)
            assert metric(gateway, "seaway_model_loads_total", model="a") == 1
            # Each request got its own row's answer back out of the batch.
            for i, r in enumerate(answers):
                single = await client.post(
                    "/v2/models/a/infer", json=v2_rows(ROWS[i % 3 : i % 3 + 1])
                )
                got, want = r.json()["outputs"], single.json()["outputs"]
                assert got[0] == want[0]
                assert np.allclose(got[1]["data"], want[1]["data"], atol=1e-12)
            batches = metric(gateway, "seaway_batch_size_count", model="a")
            rows = metric(gateway, "seaway_batch_size_sum", model="a")
            assert rows >= 48 and batches < rows  # some requests shared a predict

    asyncio.run(scenario())


def test_the_memory_budget_unloads_the_least_recently_used(models: Project) -> None:
    async def scenario() -> None:
        from seaway.registry import get_version
        from seaway.serving.manager import MEMORY_FACTOR

        for name in ("a", "b", "c"):
            routes.deploy(models, f"{name}@1")
        size = int(get_version(models, "a@1").size * MEMORY_FACTOR)
        gateway = make_gateway(models, memory_budget_bytes=int(size * 2.5))
        async with _client(gateway) as client:
            for name in ("a", "b", "a", "c"):
                assert (
                    await client.post(f"/v2/models/{name}/infer", json=v2_rows(ROWS))
                ).status_code == 200
            # b was used least recently when c needed room.
            assert sorted(k[0] for k in gateway.manager.loaded) == ["a", "c"]
            assert metric(gateway, "seaway_model_unloads_total", model="b", reason="memory") == 1

    asyncio.run(scenario())


def test_the_table_is_followed_live_and_undeployed_versions_unload(models: Project) -> None:
    async def scenario() -> None:
        routes.deploy(models, "a@1")
        gateway = make_gateway(models)
        async with _client(gateway) as client:
            assert (await client.post("/v2/models/a/infer", json=v2_rows(ROWS))).status_code == 200
            assert (await client.post("/v2/models/b/infer", json=v2_rows(ROWS))).status_code == 404
            routes.deploy(models, "b@1")
            routes.undeploy(models, "a")
            for _ in range(100):
                await asyncio.sleep(0.05)
                if gateway.table.revision == routes.read_revision(models):
                    break
            assert (await client.post("/v2/models/b/infer", json=v2_rows(ROWS))).status_code == 200
            assert (await client.post("/v2/models/a/infer", json=v2_rows(ROWS))).status_code == 404
            assert ("a", 1) not in gateway.manager.loaded
            assert (
                metric(gateway, "seaway_model_unloads_total", model="a", reason="undeployed") == 1
            )

    asyncio.run(scenario())


def test_datatypes_and_requested_outputs(models: Project) -> None:
    async def scenario() -> None:
        routes.deploy(models, "a@1")
        gateway = make_gateway(models)
        async with _client(gateway) as client:
            body = v2_rows(ROWS)
            body["inputs"][0]["datatype"] = "FP32"
            body["outputs"] = [{"name": "predict"}]
            r = await client.post("/v2/models/a/infer", json=body)
            assert r.status_code == 200, r.text
            outputs = r.json()["outputs"]
            assert [o["name"] for o in outputs] == ["predict"] and outputs[0]["datatype"] == "INT64"
            ints = {
                "inputs": [
                    {"name": "x", "shape": [1, 4], "datatype": "INT32", "data": [1.5, 2, 3, 4]}
                ]
            }
            r = await client.post("/v2/models/a/infer", json=ints)
            assert r.status_code == 400 and "INT32 does not match" in r.json()["error"]
            bools = {
                "inputs": [{"name": "x", "shape": [4], "datatype": "BOOL", "data": [1, 0, 1, 0]}]
            }
            r = await client.post("/v2/models/a/infer", json=bools)
            assert r.status_code == 400 and "BOOL" in r.json()["error"]
            r = await client.get("/v2/models/a/infer")
            assert r.status_code == 405
            assert metric(gateway, "seaway_requests_total", model="a", code="200") == 1
            assert metric(gateway, "seaway_requests_total", model="a", code="400") == 2
            assert metric(gateway, "seaway_model_loads_total") == 1

    asyncio.run(scenario())


THREAD_MODEL = """
import threading
import time

import numpy as np


class Model:
    def load(self):
        self.delay = float((self.model_dir / "delay.txt").read_text())

    def predict(self, data):
        time.sleep(self.delay)
        name = threading.current_thread().name
        return np.array([name == "MainThread"] * len(data))
"""


def test_fast_models_predict_on_the_loop_and_slow_ones_on_threads(
    project_dir: Path, tmp_path: Path
) -> None:
    project = Project(project_dir)
    for name, delay in (("quick", "0"), ("slow", "0.02")):
        folder = python_model(tmp_path / name, THREAD_MODEL)
        (folder / "delay.txt").write_text(delay)
        register(project, name, folder)
        routes.deploy(project, f"{name}@1")

    async def on_loop(client: httpx.AsyncClient, name: str) -> list[bool]:
        seen = []
        for _ in range(4):
            r = await client.post(f"/v2/models/{name}/infer", json=v2_rows(ROWS))
            assert r.status_code == 200, r.text
            seen.append(bool(r.json()["outputs"][0]["data"][0]))
        return seen

    async def scenario() -> None:
        async with _client(make_gateway(project)) as client:
            # The first predict of a version is timed on a predict thread; after that a
            # version this quick runs in the event loop's thread, a slow one never does.
            assert (await on_loop(client, "quick"))[1:] == [True, True, True]
            assert await on_loop(client, "slow") == [False] * 4

    asyncio.run(scenario())
    project.close()


def test_a_pinned_gateway_serves_one_version_whatever_the_table(models: Project) -> None:
    async def scenario() -> None:
        routes.deploy(models, "b@1")
        gateway = make_gateway(models, pinned="a@1")
        async with _client(gateway) as client:
            answer = await client.post("/v2/models/a/infer", json=v2_rows(ROWS))
            assert answer.status_code == 200
            assert answer.headers["x-seaway-version"] == "a@1"
            assert (await client.post("/v2/models/b/infer", json=v2_rows(ROWS))).status_code == 404
            routes.undeploy(models, "b")
            await asyncio.sleep(0.2)
            assert gateway.table.models() == ["a"]

    asyncio.run(scenario())
