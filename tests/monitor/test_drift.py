"""Live drift: the window accumulator against `compare_profile`, and logged traffic scored into
windows on SQLite and PostgreSQL, down to one run through a real gateway."""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from seaway.errors import InputError
from seaway.monitor.drift import WindowAccumulator, _EdgeIndex, score_drift
from seaway.monitor.windows import list_windows
from seaway.project import Project
from seaway.stats.profile import Profile, compare_profile

FEATURES = ["tenure", "monthly_charges", "support_calls", "region", "contract"]
NUMERIC = ["tenure", "monthly_charges", "support_calls"]
SHIFTED = {"tenure", "monthly_charges"}
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


# --------------------------------------------------------------------------- helpers


def customers(rows: int, seed: int) -> pa.Table:
    """The churn example's customers, as the model's inputs (numbers as floats)."""
    from seaway.example import data_module, example_dir

    raw = data_module(example_dir()).customers_table(rows, seed=seed)
    columns = {n: raw[n].cast(pa.float64()) for n in NUMERIC}
    columns.update({n: raw[n] for n in ("region", "contract")})
    columns["churned"] = raw["churned"]
    return pa.table(columns)


def shifted(table: pa.Table) -> pa.Table:
    """Longer tenures and higher charges; every other column as it was."""
    tenure = np.minimum(72.0, table["tenure"].to_numpy() * 2 + 12)
    charges = table["monthly_charges"].to_numpy() + 35.0
    table = table.set_column(table.schema.get_field_index("tenure"), "tenure", pa.array(tenure))
    return table.set_column(
        table.schema.get_field_index("monthly_charges"), "monthly_charges", pa.array(charges)
    )


def save_churn_model(path: Path, table: pa.Table, *, C: float = 1.0) -> Path:
    """Scaling, one-hot encoding and a logistic regression, as the example's train step."""
    import skops.io as sio
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame = table.to_pandas()
    prep = ColumnTransformer(
        [
            ("numeric", StandardScaler(), NUMERIC),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), ["region", "contract"]),
        ]
    )
    model = Pipeline([("prep", prep), ("model", LogisticRegression(C=C, max_iter=1000))])
    model.fit(frame[FEATURES], frame["churned"])
    path.parent.mkdir(parents=True, exist_ok=True)
    sio.dump(model, path)
    return path


def register_churn(project: Project, tmp_path: Path, *, C: float = 1.0) -> int:
    """A churn model registered from its file, with no training data in its lineage."""
    from seaway.registry import register_model

    train = customers(4000, seed=0)
    path = save_churn_model(tmp_path / f"churn-{C}" / "model.skops", train, C=C)
    return register_model(project, "churn", path, sample=train.select(FEATURES)).version.number


def with_reference(project: Project, tmp_path: Path) -> int:
    from seaway.monitor.reference import build_reference

    number = register_churn(project, tmp_path)
    build_reference(project, f"churn@{number}", customers(4000, seed=0))
    return number


def with_evaluation_data(project: Project, rows: int) -> None:
    """The churn model's evaluation data: a `customers` dataset of `rows`, added."""
    import pyarrow.parquet as pq

    from seaway.data.datasets import add

    (project.root / "data").mkdir()
    pq.write_table(customers(rows, seed=0), project.root / "data" / "customers.parquet")
    write_spec(
        project,
        "datasets:\n  customers: {path: data/customers.parquet}\n"
        "models:\n  churn:\n    evaluation: {data: 'dataset:customers', target: churned}\n",
    )
    add(project, "customers")


def log_traffic(project: Project, table: pa.Table, **how: Any) -> None:
    """`traffic_rows` written to the request log."""
    from seaway.store.schema import request_log

    rows = traffic_rows(project, table, **how)
    project.metadata.run_write(lambda conn: conn.execute(request_log.insert(), rows))


def traffic_rows(
    project: Project,
    table: pa.Table,
    *,
    model: str = "churn",
    number: int = 1,
    per_request: int = 20,
    start: datetime = T0,
    every: timedelta = timedelta(seconds=1),
) -> list[dict[str, Any]]:
    """Request log rows as the gateway writes them: v2 tensors in, the outputs dict out."""
    from seaway.registry import load_model
    from seaway.serving.telemetry import jsonable

    predictor: Any = load_model(f"{model}@{number}", project=project)
    rows = []
    for i, first in enumerate(range(0, table.num_rows, per_request)):
        part = table.slice(first, per_request).select(FEATURES)
        proba = predictor.predict_proba(part)
        inputs = [
            {
                "name": name,
                "shape": [part.num_rows],
                "datatype": "FP64" if name in NUMERIC else "BYTES",
                "data": part[name].to_pylist(),
            }
            for name in FEATURES
        ]
        rows.append(
            {
                "ts": start + i * every,
                "request_id": uuid.uuid4().hex[:16],
                "model": model,
                "number": number,
                "route": "primary",
                "key": None,
                "inputs": inputs,
                "outputs": jsonable({"predict": proba.argmax(axis=1), "predict_proba": proba}),
                "latency_ms": 1.0,
                "status": 200,
            }
        )
    return rows


def events(project: Project, kind: str) -> list[Any]:
    from sqlalchemy import select

    from seaway.store.schema import events as t

    with project.metadata.read() as conn:
        return list(conn.execute(select(t).where(t.c.kind == kind).order_by(t.c.seq)).all())


def write_spec(project: Project, text: str) -> None:
    project.spec_path.write_text("name: demo\n" + text)
    project.__dict__.pop("spec", None)  # read again on next use


# --------------------------------------------------------------------------- accumulator


def _random_columns(rng: np.random.Generator, n: int, shift: float) -> dict[str, Any]:
    normal = rng.normal(shift, 1.0, n)
    normal[rng.random(n) < 0.05] = np.nan
    region = rng.choice(["north", "south", "east", "west", "mars"], n, p=[0.3, 0.3, 0.2, 0.1, 0.1])
    mixed = np.array(rng.choice(["a", "b", "c"], n), dtype=object)
    mixed[rng.random(n) < 0.1] = None
    return {
        "normal": normal,
        "ints": rng.poisson(3 + shift, n),
        "zeros": np.where(rng.random(n) < 0.4, 0.0, rng.exponential(1 + shift, n)),
        "skewed": rng.lognormal(shift, 2.5, n),
        "region": region,
        "mixed": mixed,
        "flag": rng.random(n) < 0.3 + shift / 10,
    }


def _chunks(columns: dict[str, Any], sizes: list[int]) -> Iterator[dict[str, Any]]:
    start = 0
    for size in sizes:
        yield {k: v[start : start + size] for k, v in columns.items()}
        start += size


def _same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == pytest.approx(b, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(
    "sizes",
    [[3000], [1000, 1000, 1000], [1, 2, 0, 997, 1500, 500], [7] * 428 + [4]],
    ids=["one", "even", "uneven", "tiny"],
)
@pytest.mark.parametrize("shift", [0.0, 0.4])
def test_the_accumulator_gives_what_compare_profile_gives(sizes: list[int], shift: float) -> None:
    rng = np.random.default_rng(7)
    reference = _random_columns(rng, 20_000, 0.0)
    reference["region"] = rng.choice(["north", "south", "east", "west"], 20_000)
    profile = Profile.from_columns(reference, categorical=["flag"])
    current = _random_columns(rng, sum(sizes), shift)

    expected = compare_profile(profile, current)
    acc = WindowAccumulator(profile)
    for chunk in _chunks(current, sizes):
        acc.add(chunk)
    got = acc.report()

    assert acc.rows == sum(sizes)
    assert list(got.columns) == list(expected.columns)
    for name, want in expected.columns.items():
        have = got[name]
        assert (have.n_cur, have.missing_cur) == (want.n_cur, want.missing_cur), name
        assert set(have.statistics) == set(want.statistics), name
        for key, value in want.statistics.items():
            assert _same(have.statistics[key], value), (name, key, have.statistics[key], value)
        assert (have.drifted, have.reason) == (want.drifted, want.reason), name
    assert got.drifted_columns == expected.drifted_columns
    if shift:
        assert {"normal", "ints", "zeros", "skewed"} <= set(got.drifted_columns)
    else:
        assert got.drifted_columns == ["region"]  # a tenth of it is "mars", new to it


def test_the_accumulator_keeps_counts_not_values() -> None:
    rng = np.random.default_rng(1)
    profile = Profile.from_columns(_random_columns(rng, 10_000, 0.0))
    acc = WindowAccumulator(profile)

    def held() -> int:
        total = 0
        for state in acc._states.values():
            for slot in type(state).__slots__:
                value = getattr(state, slot)
                if isinstance(value, np.ndarray) and slot != "profile":
                    total += value.nbytes
        return total

    acc.add(_random_columns(rng, 1000, 0.0))
    after_one = held()
    for _ in range(30):
        acc.add(_random_columns(rng, 5000, 0.0))
    assert held() == after_one
    assert acc.rows == 151_000


def test_figures_hold_the_statistics_and_the_counts_to_plot() -> None:
    rng = np.random.default_rng(3)
    reference = _random_columns(rng, 10_000, 0.0)
    reference["region"] = rng.choice(["north", "south", "east", "west"], 10_000)
    profile = Profile.from_columns(reference)
    acc = WindowAccumulator(profile, ["normal", "region"])
    current = _random_columns(rng, 2000, 1.0)
    acc.add(current)
    figures = acc.figures()

    assert list(figures) == ["normal", "region"]
    normal, region = figures["normal"], figures["region"]
    for entry in (normal, region):
        assert {"kind", "psi", "ks", "ks_p", "js", "chi2", "chi2_p", "drifted"} <= set(entry)
        assert entry["drifted"] is True and entry["psi"] > 0.1
    assert normal["kind"] == "numeric"
    assert len(normal["reference"]) == len(normal["current"]) == len(normal["edges"]) + 1
    assert sum(normal["current"]) == 2000 - int(np.isnan(current["normal"]).sum())
    assert region["kind"] == "categorical" and region["ks"] is None
    # "mars" was never in the reference: it is counted with the others.
    assert region["labels"][-1] == "other" and region["current"][-1] > 0
    assert sum(region["current"]) == 2000


def test_values_of_the_wrong_type_are_missing_or_other_never_an_error() -> None:
    profile = Profile.from_columns({"x": np.arange(100.0), "c": np.array(["a", "b"] * 50)})
    acc = WindowAccumulator(profile)
    acc.add({"x": [1.0, "oops", None, 3], "c": [1, 2.5, "a", None], "new": [1, 2, 3, 4]})
    acc.add({"x": [5.0, 6.0]})  # "c" absent: its rows count as missing
    report = acc.report()
    assert (report["x"].n_cur, report["x"].missing_cur) == (6, 2)
    assert (report["c"].n_cur, report["c"].missing_cur) == (6, 3)
    assert report.skipped == {"new": "only in the current data"}
    assert acc.figures()["c"]["current"] == [1, 0, 2]  # a, b, other

    never = WindowAccumulator(profile)
    never.add({"x": [1.0]})
    assert never.report().skipped == {"c": "only in the reference data"}
    with pytest.raises(InputError, match="not in the reference profile: y"):
        WindowAccumulator(profile, ["x", "y"])


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(0).normal(size=50_000),
        np.random.default_rng(0).integers(0, 73, 50_000).astype(float),
        np.where(np.random.default_rng(0).random(50_000) < 0.4, 0.0, 1.5),
        np.random.default_rng(0).lognormal(0, 3, 50_000),
        np.random.default_rng(0).choice([1.0, 1.0 + 1e-12, 2.0, 3.0], 50_000),
        np.random.default_rng(0).normal(1e12, 1.0, 50_000),
        np.full(50_000, 5.0),
    ],
    ids=["normal", "ints", "two-values", "lognormal", "clustered", "offset", "constant"],
)
def test_the_edge_lookup_is_exactly_a_binary_search(values: np.ndarray) -> None:
    edges = Profile.from_columns({"v": values}).columns["v"].edges
    index = _EdgeIndex(edges)
    rng = np.random.default_rng(1)
    probes = np.concatenate(
        [
            values,
            rng.permutation(values) * 1.001,
            edges,
            np.nextafter(edges, np.inf),
            np.nextafter(edges, -np.inf),
            [np.nan, np.inf, -np.inf, 0.0],
        ]
    )
    counts = np.zeros(edges.size + 1, dtype=np.int64)
    index.count(probes, counts, True)
    want = np.bincount(np.searchsorted(edges, probes, side="right"), minlength=edges.size + 1)
    assert counts.tolist() == want.tolist()


# --------------------------------------------------------------------------- scoring


def test_calm_traffic_passes_and_shifted_traffic_names_the_shifted_features(
    project: Project, tmp_path: Path
) -> None:
    with_reference(project, tmp_path)
    log_traffic(project, customers(2000, seed=11))
    log_traffic(project, shifted(customers(2000, seed=12)), start=T0 + timedelta(hours=1))

    windows = score_drift(project, "churn")

    assert [w.rows for w in windows] == [1000] * 4
    assert [w.breached for w in windows] == [False, False, True, True]
    for w in windows[:2]:
        assert w.drifted == [] and w.score is not None and w.score < 0.2
    for w in windows[2:]:
        assert SHIFTED <= set(w.drifted) <= SHIFTED | {"predict_proba"}
        assert w.score is not None and w.score > 0.2
        features = w.figures["features"]
        assert list(features) == FEATURES
        assert all(not features[n]["drifted"] for n in ("support_calls", "region", "contract"))
        assert w.figures["threshold"] == 0.2 and w.figures["requests"] == 50
        assert list(w.figures["predictions"]) == ["predict_proba"]
    # One window follows the other, request by request.
    assert [w.first_id for w in windows[1:]] == [w.last_id + 1 for w in windows[:-1]]
    assert windows[0].window_start == T0 and windows[-1].window_end > windows[-1].window_start

    stored = list_windows(project, "churn")
    assert [w.id for w in stored] == [w.id for w in windows]
    assert [e.data["window"] for e in events(project, "monitor.window")] == [w.id for w in windows]
    drift_events = events(project, "monitor.drift")
    assert [e.data["window"] for e in drift_events] == [w.id for w in windows[2:]]
    assert drift_events[0].subject == "model:churn@1"
    assert set(drift_events[0].data) == {"kind", "window", "score", "breached", "rows", "drifted"}


def test_the_cursor_resumes_without_scoring_twice(project: Project, tmp_path: Path) -> None:
    from seaway.monitor.windows import get_cursor

    with_reference(project, tmp_path)
    log_traffic(project, customers(1500, seed=3))

    first = score_drift(project, "churn")
    assert [w.rows for w in first] == [1000]
    # The 500 rows of the incomplete window are not stored; asking again changes nothing.
    assert score_drift(project, "churn") == []
    with project.metadata.read() as conn:
        assert get_cursor(conn, "drift:churn@1")[0] == first[0].last_id

    log_traffic(project, customers(600, seed=4), start=T0 + timedelta(hours=1))
    second = score_drift(project, "churn")
    assert [w.rows for w in second] == [1000]
    assert second[0].first_id == first[0].last_id + 1
    assert second[0].window_start == T0 + timedelta(seconds=50)  # request 51 of the first batch
    assert score_drift(project, "churn") == []
    assert len(list_windows(project, "churn")) == 2
    assert len(events(project, "monitor.window")) == 2


def test_unreadable_requests_fill_windows_and_move_the_cursor(
    project: Project, tmp_path: Path
) -> None:
    from seaway.store.schema import request_log

    write_spec(project, "monitoring:\n  churn:\n    window: {rows: 100}\n")
    with_reference(project, tmp_path)
    too_large = {
        "ts": T0,
        "model": "churn",
        "number": 1,
        "route": "primary",
        "inputs": {"truncated": True, "bytes": 70000},
        "outputs": None,
        "latency_ms": 1.0,
        "status": 200,
    }
    project.metadata.run_write(
        lambda conn: conn.execute(
            request_log.insert(), [{**too_large, "request_id": f"r{i}"} for i in range(150)]
        )
    )
    log_traffic(project, customers(100, seed=1), start=T0 + timedelta(minutes=1))

    windows = score_drift(project, "churn")
    assert [(w.rows, w.figures["skipped"], w.figures["requests"]) for w in windows] == [
        (0, 100, 0),
        (60, 50, 3),
    ]
    assert windows[0].score is None and not windows[0].breached
    assert windows[0].figures["features"] == {}
    assert windows[1].figures["features"]["tenure"]["rows"] == 60


def test_two_monitors_at_once_never_score_a_request_twice(project: Project, tmp_path: Path) -> None:
    write_spec(project, "monitoring:\n  churn:\n    window: {rows: 200}\n")
    with_reference(project, tmp_path)
    log_traffic(project, customers(2000, seed=2))

    found: list[list[Any]] = []
    errors: list[BaseException] = []

    def monitor() -> None:
        try:
            found.append(score_drift(project, "churn"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=monitor) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    stored = list_windows(project, "churn")
    assert sorted(w.id for ws in found for w in ws) == [w.id for w in stored]
    assert [(w.first_id, w.rows) for w in stored] == [
        (stored[0].first_id + 10 * i, 200) for i in range(10)
    ]


def test_windows_by_duration_close_on_a_later_request_or_when_time_is_up(
    project: Project, tmp_path: Path
) -> None:
    write_spec(project, "monitoring:\n  churn:\n    window: {duration: 1m}\n")
    with_reference(project, tmp_path)
    # One request of 20 rows every 5 seconds for 150 seconds.
    log_traffic(project, customers(600, seed=5), every=timedelta(seconds=5))

    windows = score_drift(project, "churn", now=T0 + timedelta(seconds=150))
    assert [(w.window_start, w.window_end) for w in windows] == [
        (T0, T0 + timedelta(minutes=1)),
        (T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)),
    ]
    assert [w.rows for w in windows] == [240, 240]
    # The last window's minute is not over at 170 s; at four minutes it is, even after
    # PostgreSQL's 30 s of settling.
    assert score_drift(project, "churn", now=T0 + timedelta(seconds=170)) == []
    last = score_drift(project, "churn", now=T0 + timedelta(minutes=4))
    assert [(w.window_start, w.rows) for w in last] == [(T0 + timedelta(minutes=2), 120)]
    assert not any(w.breached for w in windows + last)


@pytest.mark.postgres
@pytest.mark.parametrize("settle", ["", ", settle: 0s"], ids=["default", "none"])
def test_requests_committed_out_of_order_are_not_skipped(
    project_dir: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, settle: str
) -> None:
    """Two gateways on PostgreSQL: the one that took the lower ids commits last."""
    import sqlalchemy as sa

    from seaway._util import utcnow
    from seaway.store.schema import request_log

    monkeypatch.setenv("SEAWAY_METADATA_URL", pg_url)
    project = Project(project_dir)
    slow = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        write_spec(project, f"monitoring:\n  churn:\n    window: {{rows: 20{settle}}}\n")
        with_reference(project, tmp_path)
        now = utcnow()
        calm = customers(20, seed=8)
        with slow.connect() as conn:
            # The slow gateway takes its id and has not committed yet ...
            conn.execute(request_log.insert(), traffic_rows(project, calm, start=now))
            # ... while the other one logs a later request and commits.
            log_traffic(project, calm, start=now + timedelta(seconds=1))
            early = score_drift(project, "churn", now=now + timedelta(seconds=2))
            conn.commit()
        later = score_drift(project, "churn", now=now + timedelta(minutes=1))
    finally:
        slow.dispose()
        project.close()
    if settle:  # scored at once: the cursor passed the slow gateway's request for good
        assert [w.first_id for w in early] == [2] and later == []
    else:  # both waited for the settle time, and both were scored
        assert early == [] and [w.first_id for w in later] == [1, 2]


def test_watched_features_and_threshold_come_from_the_spec(
    project: Project, tmp_path: Path
) -> None:
    write_spec(
        project,
        "monitoring:\n  churn:\n    window: {rows: 500}\n    features: [tenure, region]\n"
        "    on_drift: {psi_above: 5.0}\n",
    )
    with_reference(project, tmp_path)
    log_traffic(project, shifted(customers(1000, seed=6)))

    windows = score_drift(project, "churn")
    assert [w.rows for w in windows] == [500, 500]
    for w in windows:
        assert list(w.figures["features"]) == ["tenure", "region"]
        assert w.figures["threshold"] == 5.0
        assert not w.breached and w.drifted == []  # a PSI of about 1 is under 5
        assert w.score is not None and 0.2 < w.score < 5.0


def test_a_version_without_reference_data_is_skipped_with_a_warning(
    project: Project, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    one = with_reference(project, tmp_path)
    two = register_churn(project, tmp_path, C=0.1)  # no data anywhere to profile
    assert two == one + 1
    log_traffic(project, customers(1000, seed=7), number=one)
    log_traffic(project, customers(1000, seed=8), number=two)

    with caplog.at_level(logging.WARNING, logger="seaway.monitor.drift"):
        windows = score_drift(project, "churn")
    assert [w.number for w in windows] == [one]
    assert any(f"churn@{two}" in r.getMessage() for r in caplog.records)
    assert "seaway monitor reference" in caplog.text


def test_a_missing_reference_is_built_from_the_evaluation_data(
    project: Project, tmp_path: Path
) -> None:
    from seaway.store.schema import reference_profiles

    with_evaluation_data(project, 3000)
    number = register_churn(project, tmp_path)
    assert len(events(project, "model.profiled")) == 1  # built at registration
    project.metadata.run_write(lambda conn: conn.execute(reference_profiles.delete()))
    log_traffic(project, customers(1000, seed=9), number=number)

    windows = score_drift(project, "churn")
    assert [w.rows for w in windows] == [1000] and not windows[0].breached
    profiled = events(project, "model.profiled")
    assert len(profiled) == 2 and profiled[-1].data["source"] == "dataset:customers"


# --------------------------------------------------------------------------- a real gateway


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    """The bundled example, trained by its pipeline (which registers churn-classifier@1)."""
    from seaway.data.datasets import add
    from seaway.init import init_project
    from seaway.pipeline import run_pipeline

    monkeypatch.delenv("SEAWAY_METADATA_URL", raising=False)
    monkeypatch.delenv("SEAWAY_ARTIFACTS_URL", raising=False)
    init = init_project(tmp_path / "churn", name="churn", example_data=True)
    monkeypatch.chdir(init.root)
    project = Project(init.root)
    add(project, "customers")
    assert run_pipeline(project, "train").status == "succeeded"
    yield project
    project.close()


def _v2(table: pa.Table) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "name": name,
                "shape": [table.num_rows],
                "datatype": "FP64" if name in NUMERIC else "BYTES",
                "data": table[name].to_pylist(),
            }
            for name in FEATURES
        ]
    }


@pytest.mark.slow
def test_traffic_through_a_real_gateway_is_scored_against_the_training_data(
    example: Project,
) -> None:
    import httpx
    import uvicorn
    from prometheus_client import CollectorRegistry

    from seaway.serving.app import create_app
    from seaway.serving.routes import deploy
    from seaway.serving.telemetry import Telemetry
    from tests.serving.conftest import free_port

    deploy(example, "churn-classifier@1")
    telemetry = Telemetry(
        example, gateway_id="drift-test", sample_rate=1.0, registry=CollectorRegistry()
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(example, telemetry=telemetry),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        url = f"http://127.0.0.1:{port}/v2/models/churn-classifier/infer"
        with httpx.Client(timeout=30) as client:
            for table in (customers(1000, seed=21), shifted(customers(1000, seed=22))):
                for first in range(0, table.num_rows, 25):
                    answer = client.post(url, json=_v2(table.slice(first, 25)))
                    assert answer.status_code == 200, answer.text
    finally:
        server.should_exit = True
        thread.join(30)  # the gateway's shutdown flushes the request log

    # The example watches windows of 500 rows, drifted above a PSI of 0.25.
    windows = score_drift(example, "churn-classifier")
    assert [(w.number, w.rows, w.figures["requests"]) for w in windows] == [(1, 500, 20)] * 4
    assert [w.breached for w in windows] == [False, False, True, True]
    for w in windows:
        assert w.figures["threshold"] == 0.25 and w.figures["skipped"] == 0
        assert list(w.figures["features"]) == FEATURES
    assert windows[0].drifted == windows[1].drifted == []
    for w in windows[2:]:
        assert SHIFTED <= set(w.drifted) <= SHIFTED | {"predict_proba"}
