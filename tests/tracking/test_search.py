"""Finding runs by pipeline, status, metric and param, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from seaway.errors import UsageError
from seaway.project import Project
from seaway.tracking import RunStore
from seaway.tracking.search import param_texts, parse_where, search_runs


@pytest.fixture
def runs(store: RunStore) -> list[str]:
    """Six runs: auc 0.5..1.0 (run 6 has no auc), C alternating 1.0 / 0.5, two pipelines."""
    ids = []
    for i in range(6):
        run = store.create_run(
            name=f"r{i}",
            pipeline="train" if i % 2 == 0 else "tune",
            params={"C": 1.0 if i % 2 == 0 else 0.5, "seed": i, "solver": "lbfgs"},
        )
        metrics = [("loss", 1.0 - i / 10, 0, 1.0)]
        if i < 5:
            metrics.append(("auc", 0.5 + i / 10, 0, 1.0))
        store.log_metrics(run.id, metrics)
        store.finish(run.id, "failed" if i == 3 else "succeeded")
        ids.append(run.id)
    return ids


def _seqs(project: Project, **kwargs: object) -> list[int]:
    return [r.seq for r in search_runs(project, **kwargs)]  # type: ignore[arg-type]


def test_newest_first_with_metrics_and_params(project: Project, runs: list[str]) -> None:
    found = search_runs(project)
    assert [r.seq for r in found] == [6, 5, 4, 3, 2, 1]
    assert found[-1].metrics == {"auc": 0.5, "loss": 1.0}
    assert found[-1].params == {"C": 1.0, "seed": 0, "solver": "lbfgs"}


def test_metric_filters(project: Project, runs: list[str]) -> None:
    assert _seqs(project, where=["auc>0.8"]) == [5]
    assert _seqs(project, where=["metrics.auc>=0.8"]) == [5, 4]
    assert _seqs(project, where=["auc<=0.6", "loss < 0.95"]) == [2]
    assert _seqs(project, where=["auc=0.7"]) == [3]
    assert _seqs(project, where=["auc!=0.7"]) == [5, 4, 2, 1]  # run 6 has no auc


def test_param_filters_match_numbers_however_written(project: Project, runs: list[str]) -> None:
    assert _seqs(project, where=["params.C=1.0"]) == [5, 3, 1]
    assert _seqs(project, where=["params.C=1"]) == [5, 3, 1]
    assert _seqs(project, params={"C": 0.5}) == [6, 4, 2]
    assert _seqs(project, params={"C": "0.5", "seed": "3"}) == [4]
    assert _seqs(project, where=["params.solver=lbfgs"]) == [6, 5, 4, 3, 2, 1]
    assert _seqs(project, where=["params.solver='lbfgs'"]) == [6, 5, 4, 3, 2, 1]
    assert _seqs(project, where=["params.solver!=lbfgs"]) == []
    assert _seqs(project, where=["params.seed>=4"]) == [6, 5]
    # A string param never passes a numeric comparison.
    assert _seqs(project, where=["params.solver>0"]) == []


def test_pipeline_status_and_limit(project: Project, runs: list[str]) -> None:
    assert _seqs(project, pipeline="tune") == [6, 4, 2]
    assert _seqs(project, status="failed") == [4]
    assert _seqs(project, pipeline="train", where=["auc>0.5"], limit=1) == [5]
    assert len(search_runs(project, limit=None)) == 6


def test_sorting(project: Project, runs: list[str]) -> None:
    assert _seqs(project, sort="-auc") == [5, 4, 3, 2, 1, 6]  # no auc: last either way
    assert _seqs(project, sort="auc") == [1, 2, 3, 4, 5, 6]
    assert _seqs(project, sort="started") == [1, 2, 3, 4, 5, 6]
    assert _seqs(project, sort="-metrics.loss", limit=2) == [1, 2]


@pytest.mark.parametrize(
    "expr",
    ["auc", "auc>", ">0.8", "auc>high", "auc>>0.8", "params.solver>lbfgs", "tags.x=1", "params.=1"],
)
def test_bad_expressions_name_themselves_and_the_forms(expr: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_where(expr)
    assert repr(expr) in str(err.value) or expr in str(err.value)
    assert "auc>0.8" in str(err.value)


def test_bad_options(project: Project) -> None:
    with pytest.raises(UsageError, match="run status"):
        search_runs(project, status="done")
    with pytest.raises(UsageError, match="sort"):
        search_runs(project, sort="params.C")
    with pytest.raises(UsageError, match="limit"):
        search_runs(project, limit=0)


def test_param_texts() -> None:
    assert param_texts("1.0") == {'"1.0"', "1.0", "1"}
    assert param_texts("lbfgs") == {'"lbfgs"'}
    assert param_texts(2) == {"2", "2.0", '"2"'}
    assert param_texts(True) == {"true"}


@pytest.mark.parametrize(
    ("kwargs", "index"),
    [
        ({"where": ["auc>0.8"]}, "ix_run_latest_metrics_key_value"),
        ({"where": ["params.C=1.0"]}, "ix_run_params_key_value"),
        ({"pipeline": "train", "where": ["auc>0.8"]}, "ix_runs_pipeline_started"),
    ],
)
def test_filters_use_the_indexes(
    project: Project, runs: list[str], kwargs: dict[str, object], index: str
) -> None:
    """Filtering never scans a whole table: each condition reads its index."""
    if not project.metadata.is_sqlite:
        pytest.skip("reads SQLite's EXPLAIN QUERY PLAN")
    from sqlalchemy.dialects import sqlite

    from seaway.tracking.search import runs_query

    query = runs_query(limit=20, values_for="sqlite", **kwargs)  # type: ignore[arg-type]
    sql = str(query.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    with project.metadata.read() as conn:
        plan = [row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
    assert any(index in step for step in plan), plan
    assert not any(step.startswith("SCAN") and "INDEX" not in step for step in plan), plan


def test_listed_values_are_exactly_the_stored_ones(store: RunStore, project: Project) -> None:
    """Listings build params and metrics in SQL: every value must come back as logged."""
    tricky = store.create_run(
        name="tricky",
        params={"lr": 0.1 + 0.2, "grid": [1, "a", None], "note": 'say "hé"\n', "flag": False},
        tags={"ключ": "значение"},
    )
    store.log_metrics(
        tricky.id,
        [
            ("precise", 0.1 + 0.2, 0, 1.0),
            ("tiny", 5e-324, 0, 1.0),
            ("huge", 1.7976931348623157e308, 0, 1.0),
            ("up", float("inf"), 0, 1.0),
            ("down", float("-inf"), 0, 1.0),
            ("négatif", -2.5e-7, 0, 1.0),
        ],
    )
    empty = store.create_run(name="empty")
    listed = {r.id: r for r in search_runs(project, limit=None)}
    for run_id in (tricky.id, empty.id):
        stored = store.get(run_id)
        assert listed[run_id].params == stored.params
        assert listed[run_id].metrics == stored.metrics
        assert listed[run_id].tags == stored.tags
    assert listed[tricky.id].metrics["precise"] == 0.1 + 0.2
    assert listed[empty.id].metrics == {} and listed[empty.id].params == {}
