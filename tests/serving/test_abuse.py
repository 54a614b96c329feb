"""Abuse and model-extraction detection: a real gateway on 127.0.0.1 flags and throttles a
client that sweeps the input space and probes the decision boundary, while a client replaying
training data at the same pace is left alone; flags are recorded as events (SQLite and
PostgreSQL) and counted on /metrics; memory stays bounded however many clients call."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from seaway.audit.log import list_events
from seaway.policy import Identity, create_token
from seaway.project import Project
from seaway.serving import routes
from seaway.serving.abuse import (
    DEFAULT_POLICY,
    RING_ROWS,
    AbuseDetector,
    Policy,
    probe_figures,
    score_client,
)
from seaway.serving.app import Gateway, create_app
from seaway.serving.protocol import ModelInput
from tests.policy.identity_support import clean_identity_env
from tests.serving.conftest import NAMED, free_port, metric_samples, register, wait_for

ATTACKER_SPEC = """\
name: shop
roles:
  admin: [admin]
  client: [infer]
monitoring:
  clf:
    abuse: {max_rate: 100000, on_flag: throttle, throttle_rate: 60, flag_for: 10m}
"""


def dataset(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    return make_classification(n_samples=3000, n_features=4, random_state=seed)


def save_model(path: Path, *, named: bool = False) -> Path:
    """A LogisticRegression fitted on the first 2,000 rows; the rest is live traffic."""
    import pandas as pd
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    X, y = dataset()
    data: Any = pd.DataFrame(X[:2000], columns=NAMED) if named else X[:2000]
    sio.dump(LogisticRegression(max_iter=500).fit(data, y[:2000]), path)
    return path


def normal_rows(n: int) -> np.ndarray:
    """Unseen rows from the training distribution, in a random order."""
    X, _ = dataset()
    rng = np.random.default_rng(7)
    return X[2000:][rng.permutation(1000)[:n]]


def extraction(ask: Callable[[np.ndarray], int], n: int, seed: int = 3) -> Iterator[np.ndarray]:
    """What a model thief sends: ten points of a 5-level grid over the input space, then ten
    steps of bisection between two grid points the model labels differently (asking it
    each time) to pin the decision boundary down, and again. Yields each row it asked."""
    X, _ = dataset()
    rng = np.random.default_rng(seed)
    lo, hi = np.quantile(X, 0.01, axis=0), np.quantile(X, 0.99, axis=0)
    levels = np.linspace(lo, hi, 5)
    seen: dict[int, list[np.ndarray]] = {0: [], 1: []}
    sent = 0
    while True:
        for _ in range(10):
            point = levels[rng.integers(0, 5, size=4), np.arange(4)]
            seen[ask(point)].append(point)
            yield point
            sent += 1
            if sent == n:
                return
        if not (seen[0] and seen[1]):
            continue
        a = seen[0][rng.integers(len(seen[0]))]
        b = seen[1][rng.integers(len(seen[1]))]
        for _ in range(10):
            mid = (a + b) / 2
            if ask(mid) == 0:
                a = mid
            else:
                b = mid
            yield mid
            sent += 1
            if sent == n:
                return


@contextlib.contextmanager
def serving(app: Gateway) -> Iterator[str]:
    """The gateway under uvicorn in a thread, on a free port of 127.0.0.1."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def flagged(project: Project) -> list[Any]:
    return list_events(project, kind="abuse.flagged", limit=None)


def flag_count(text: str, **labels: str) -> float:
    return sum(
        s.value
        for s in metric_samples(text, "seaway_abuse_flags_total")
        if all(s.labels.get(k) == v for k, v in labels.items())
    )


# -- through a real gateway -------------------------------------------------------------------


@pytest.fixture
def shop(
    project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Project, dict[str, str]]]:
    (project_dir / "seaway.yaml").write_text(ATTACKER_SPEC)
    clean_identity_env(monkeypatch)
    monkeypatch.setenv("SEAWAY_ACTOR", "alice")
    monkeypatch.setenv("SEAWAY_SERVE_ABUSE_INTERVAL", "0.2")
    project = Project(project_dir)
    register(project, "clf", save_model(tmp_path / "clf.skops"))
    routes.deploy(project, "clf@1")
    _, root = create_token(project, "root", ["admin"])
    admin = Identity("root", ("admin",), "token")
    secrets = {"root": root}
    for name in ("scraper", "storefront"):
        secrets[name] = create_token(project, name, ["client"], identity=admin)[1]
    yield project, secrets
    project.close()


class Refused(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.text)
        self.response = response


def test_an_extraction_attack_is_flagged_and_throttled_and_replayed_traffic_is_not(
    shop: tuple[Project, dict[str, str]],
) -> None:
    project, secrets = shop
    gateway = create_app(project, poll_interval_s=0.2)

    def bearer(name: str) -> dict[str, str]:
        return {"authorization": f"Bearer {secrets[name]}"}

    with (
        serving(gateway) as url,
        httpx.Client(base_url=url, headers=bearer("scraper")) as thief,
        httpx.Client(base_url=url, headers=bearer("storefront")) as storefront,
    ):

        def ask(row: np.ndarray) -> int:
            r = thief.post("/v1/models/clf:predict", json={"instances": [row.tolist()]})
            if r.status_code != 200:
                raise Refused(r)
            return int(r.json()["predictions"][0])

        # The two clients take turns, so they send at the same pace, until the thief is cut off.
        attack = extraction(ask, 600)
        refused: httpx.Response | None = None
        stolen = 0
        for normal in normal_rows(600):
            r = storefront.post("/v1/models/clf:predict", json={"instances": [normal.tolist()]})
            assert r.status_code == 200, r.text
            if refused is None:
                try:
                    next(attack)
                    stolen += 1
                except Refused as exc:
                    refused = exc.response
        assert refused is not None and refused.status_code == 429
        assert 200 <= stolen < 600  # judged once it had sent min_requests

        # The throttle starts as the flag is raised; its event follows from the same pass.
        (event,) = wait_for(lambda: flagged(project))
        assert event.subject == "model:clf"
        assert event.data["client"] == "token:scraper"
        assert event.data["action"] == "throttle"
        assert event.data["version"] == 1
        assert {"uniform_inputs", "near_duplicates"} <= set(event.data["reasons"])
        assert "rate" not in event.data["reasons"]
        assert event.data["figures"]["requests"] >= 200

        # Over 60 requests a minute the thief is refused before the model runs, and told why.
        assert int(refused.headers["retry-after"]) >= 1
        message = refused.json()["error"]
        assert "token:scraper is throttled" in message and "model extraction" in message
        answers = [
            thief.post("/v1/models/clf:predict", json={"instances": [[0.0, 0.0, 0.0, 0.0]]})
            for _ in range(5)
        ]
        assert sum(r.status_code == 429 for r in answers) >= 4

        # The storefront replayed unseen training data at the same pace: still served.
        for normal in normal_rows(20):
            r = storefront.post("/v1/models/clf:predict", json={"instances": [normal.tolist()]})
            assert r.status_code == 200
        metrics = httpx.get(f"{url}/metrics").text
        for reason in event.data["reasons"]:
            assert flag_count(metrics, model="clf", reason=reason) == 1

    assert [e.data["client"] for e in flagged(project)] == ["token:scraper"]


# -- in process, on both stores ---------------------------------------------------------------


@contextlib.asynccontextmanager
async def clients(gateway: Gateway, *addresses: str) -> Any:
    await gateway.startup()
    opened = [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=gateway, client=(address, 40000)),
            base_url="http://gw",
        )
        for address in addresses
    ]
    try:
        yield opened
    finally:
        for c in opened:
            await c.aclose()
        await gateway.shutdown()


def columns(rows: np.ndarray) -> dict[str, Any]:
    """A v2 request with one input per named column."""
    return {
        "inputs": [
            {"name": name, "shape": [len(rows)], "datatype": "FP64", "data": rows[:, i].tolist()}
            for i, name in enumerate(NAMED)
        ]
    }


def test_a_sweep_is_judged_against_the_reference_and_by_default_only_recorded(
    project: Project, tmp_path: Path
) -> None:
    import pandas as pd
    import pyarrow as pa

    from seaway.monitor.reference import build_reference

    # Only the rate is set: on_flag stays at its default, record.
    (project.root / "seaway.yaml").write_text(
        "name: demo\nmonitoring:\n  clf:\n    abuse: {max_rate: 100000}\n"
    )
    X, _ = dataset()
    register(
        project,
        "clf",
        save_model(tmp_path / "named.skops", named=True),
        sample=pd.DataFrame(X[:50], columns=NAMED),
    )
    build_reference(project, "clf@1", pa.table({n: X[:2000, i] for i, n in enumerate(NAMED)}))
    routes.deploy(project, "clf@1")
    detector = AbuseDetector(project, interval_s=60)
    gateway = create_app(project, abuse=detector, poll_interval_s=0.05)
    rng = np.random.default_rng(5)
    lo, hi = X.min(axis=0), X.max(axis=0)  # a thief sweeps each feature's whole range

    async def scenario() -> None:
        async with clients(gateway, "10.0.0.1", "10.0.0.2") as (sweeper, regular):
            for normal in normal_rows(300):
                sweep = rng.uniform(lo, hi)[None, :]
                r = await sweeper.post("/v2/models/clf/infer", json=columns(sweep))
                assert r.status_code == 200, r.text
                r = await regular.post("/v2/models/clf/infer", json=columns(normal[None, :]))
                assert r.status_code == 200, r.text
            flags = await asyncio.get_running_loop().run_in_executor(None, detector.tick)
            assert [f.client for f in flags] == ["ip:10.0.0.1"]
            # Recorded only: the sweeper is still answered.
            r = await sweeper.post("/v2/models/clf/infer", json=columns(X[:1]))
            assert r.status_code == 200

    asyncio.run(scenario())
    (event,) = flagged(project)
    assert event.data["action"] == "record"
    figures = event.data["figures"]
    assert figures["reference"] is True
    assert "uniform_inputs" in event.data["reasons"] and "coverage" in event.data["reasons"]
    assert set(figures["swept_features"]) <= set(NAMED) and figures["swept_features"]
    assert figures["coverage"] > figures["baseline_coverage"]
    # Flagged once: the client is not judged again while its flag lasts.
    assert detector.tick() == []
    assert len(flagged(project)) == 1


def test_a_rate_over_max_rate_is_flagged_and_detection_can_be_turned_off(
    project: Project, tmp_path: Path
) -> None:
    (project.root / "seaway.yaml").write_text(
        "name: demo\nmonitoring:\n"
        "  busy:\n    abuse: {max_rate: 30, min_requests: 50}\n"
        "  quiet:\n    abuse: {enabled: false}\n"
    )
    path = save_model(tmp_path / "m.skops")
    for name in ("busy", "quiet"):
        register(project, name, path)
        routes.deploy(project, f"{name}@1")
    detector = AbuseDetector(project, interval_s=60)
    gateway = create_app(project, abuse=detector, poll_interval_s=0.05)

    async def scenario() -> None:
        async with clients(gateway, "10.0.0.3") as (client,):
            detector.tick()  # reads the spec now, not in a background pass
            for normal in normal_rows(60):
                for name in ("busy", "quiet"):
                    r = await client.post(
                        f"/v1/models/{name}:predict", json={"instances": [normal.tolist()]}
                    )
                    assert r.status_code == 200

    asyncio.run(scenario())
    (flag,) = detector.tick()
    assert (flag.model, flag.client, flag.reasons) == ("busy", "ip:10.0.0.3", ("rate",))
    assert flag.figures["rate_per_min"] > 30
    assert detector.tracked == 1  # `quiet` is not even counted
    (event,) = flagged(project)
    assert event.subject == "model:busy" and event.data["reasons"] == ["rate"]


# -- the detector on its own ------------------------------------------------------------------


def matrix(rows: np.ndarray) -> ModelInput:
    return ModelInput("matrix", np.asarray(rows, dtype=float), len(rows))


def test_memory_stays_bounded_however_many_clients_call(project_dir: Path) -> None:
    project = Project(project_dir)
    detector = AbuseDetector(project, max_clients=2_000, max_sampled=300)
    row = matrix(np.ones((1, 4)))
    for i in range(5_000):
        detector.observe("m", 1, f"ip:10.1.{i // 256}.{i % 256}", row)
    assert detector.tracked == 2_000
    assert detector.sampled == 300
    # One client's ring keeps its newest rows only, however much it sends.
    many = matrix(np.arange(64 * 4, dtype=float).reshape(64, 4))
    for _ in range(5_000):
        detector.observe("m", 1, "token:bulk", many)
    assert detector.rows_held("m", "token:bulk") == RING_ROWS
    assert detector.tracked == 2_000 and detector.sampled == 300
    project.close()


def test_a_store_error_is_logged_and_the_flag_written_later(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing listens on port 1: the store is out of reach.
    monkeypatch.setenv("SEAWAY_METADATA_URL", "postgresql+psycopg://postgres@127.0.0.1:1/none")
    down = Project(project_dir)
    detector = AbuseDetector(down)
    rng = np.random.default_rng(1)
    for _ in range(300):
        detector.observe("m", 1, "ip:10.9.9.9", matrix(rng.uniform(-3, 3, size=(1, 4))))
    flags = detector.tick()  # logs, does not raise
    assert [f.client for f in flags] == ["ip:10.9.9.9"]
    assert "could not record 1 flag" in caplog.text

    monkeypatch.setenv("SEAWAY_METADATA_URL", f"sqlite:///{project_dir / 'meta.db'}")
    up = Project(project_dir)
    detector.project = up
    assert detector.tick() == []  # not flagged twice; the pending event is written now
    assert [e.data["client"] for e in flagged(up)] == ["ip:10.9.9.9"]
    up.close()
    down.close()


def test_the_signals_tell_probing_from_ordinary_traffic() -> None:
    from sklearn.linear_model import LogisticRegression

    from seaway.stats.profile import Profile

    X, y = dataset()
    model = LogisticRegression(max_iter=500).fit(X[:2000], y[:2000])
    profile = Profile.from_columns({f"x{i}": X[:2000, i] for i in range(4)})
    refs = [profile.columns[f"x{i}"] for i in range(4)]

    def ask(row: np.ndarray) -> int:
        return int(model.predict(row[None, :])[0])

    attack = np.array(list(extraction(ask, 512)))
    normal = normal_rows(512)
    repeated = np.repeat(normal[:1], 300, axis=0)  # a health check resending one row
    for references in (None, refs):
        got = probe_figures(attack, references)
        score, reasons = score_client(got, 0.0, 600.0)
        assert {"uniform_inputs", "near_duplicates"} <= set(reasons) and score >= 1.0, got
        for ordinary in (normal, normal[:128], repeated):
            got = probe_figures(ordinary, references)
            assert score_client(got, 0.0, 600.0)[0] < 1.0, got
    assert probe_figures(repeated)["near_duplicates"] == 0.0
    assert score_client({}, 900.0, 600.0) == (1.0, ["rate"])


def test_without_an_abuse_section_the_spec_defaults_apply() -> None:
    from seaway.spec.models import AbuseSpec

    assert Policy.of(AbuseSpec()) == DEFAULT_POLICY
