"""The routing table in the store (SQLite and PostgreSQL) and its CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from seaway.errors import NotFound, UsageError
from seaway.project import Project
from seaway.serving import routes
from tests.serving.conftest import register, save_classifier


@pytest.fixture
def deployed(project: Project, tmp_path: Path) -> Project:
    for i in range(3):
        register(project, "churn", save_classifier(tmp_path / f"m{i}.skops", C=10.0**-i))
    return project


def weights(table: routes.RoutingTable) -> dict[str, tuple[float, float]]:
    return {d.ref: (round(d.weight, 6), d.shadow) for d in table.deployments}


def test_deploy_alone_takes_all_traffic_and_replaces_other_primaries(deployed: Project) -> None:
    assert routes.read_revision(deployed) == 0
    routes.deploy(deployed, "churn@1")
    table = routes.deploy(deployed, "churn@2", shadow=20)
    assert weights(table) == {"churn@1": (100, 0), "churn@2": (0, 20)}
    table = routes.deploy(deployed, "churn@3")
    # The shadow stays; the old primary goes.
    assert weights(table) == {"churn@2": (0, 20), "churn@3": (100, 0)}
    assert table.revision == 3 == routes.read_revision(deployed)
    assert routes.load_table(deployed) == table


def test_a_weight_rescales_the_other_primaries(deployed: Project) -> None:
    routes.deploy(deployed, "churn@1")
    table = routes.deploy(deployed, "churn@2", weight=10)
    assert weights(table) == {"churn@1": (90, 0), "churn@2": (10, 0)}
    table = routes.deploy(deployed, "churn@3", weight=50)
    assert weights(table) == {"churn@1": (45, 0), "churn@2": (5, 0), "churn@3": (50, 0)}
    table = routes.undeploy(deployed, "churn", 3)
    assert weights(table) == {"churn@1": (90, 0), "churn@2": (10, 0)}
    table = routes.undeploy(deployed, "churn")
    assert table.deployments == ()
    assert table.revision == 5


def test_changes_are_audit_events(deployed: Project) -> None:
    from seaway.audit.log import list_events

    routes.deploy(deployed, "churn@1", batching={"max_batch": 8, "max_wait_us": 200})
    routes.deploy(deployed, "churn@2", weight=25)
    routes.undeploy(deployed, "churn", 2)
    events = [(e.kind, e.subject) for e in reversed(list_events(deployed, kind="deployment."))]
    assert events == [
        ("deployment.set", "model:churn@1"),
        ("deployment.set", "model:churn@2"),
        ("deployment.set", "model:churn@1"),
        ("deployment.removed", "model:churn@2"),
        ("deployment.set", "model:churn@1"),
    ]
    assert routes.load_table(deployed).deployments[0].batching == routes.BatchingSpec(8, 200)


def test_bad_deployments_are_refused(deployed: Project) -> None:
    with pytest.raises(NotFound):
        routes.deploy(deployed, "churn@9")
    with pytest.raises(UsageError, match="from 0 to 100"):
        routes.deploy(deployed, "churn@1", weight=120)
    with pytest.raises(UsageError, match="no other primary"):
        routes.deploy(deployed, "churn@1", weight=30)
    with pytest.raises(NotFound, match="not deployed"):
        routes.undeploy(deployed, "churn", 1)
    assert routes.read_revision(deployed) == 0


def test_alias_is_stored_as_its_number(deployed: Project) -> None:
    from seaway.registry import set_alias

    set_alias(deployed, "churn@2", "champion")
    table = routes.deploy(deployed, "churn@champion")
    assert [d.ref for d in table.deployments] == ["churn@2"]


def test_cli_deploy_undeploy_deployments(cli: Any, deployed: Project) -> None:
    r = cli("deploy", "churn@1", "--max-batch", "16", "--json")
    assert r.exit_code == 0, r.stderr
    r = cli("deploy", "churn@2", "--weight", "20", "--keep-loaded", "--json")
    assert r.exit_code == 0, r.stderr
    table = json.loads(r.stdout)
    assert table["revision"] == 2
    by_ref = {d["ref"]: d for d in table["deployments"]}
    assert by_ref["churn@1"]["weight"] == 80 and by_ref["churn@1"]["batching"]["max_batch"] == 16
    assert by_ref["churn@2"]["scale"] == {"idle_timeout_s": None, "min": 1}
    r = cli("deployments")
    assert r.exit_code == 0 and "churn@2" in r.stdout and "20%" in r.stdout
    r = cli("undeploy", "churn@2", "--json")
    assert [d["ref"] for d in json.loads(r.stdout)["deployments"]] == ["churn@1"]
    r = cli("undeploy", "churn@7")
    assert r.exit_code == 2 and "not deployed" in r.stderr
    r = cli("deploy", "churn@1", "--shadow", "150")
    assert r.exit_code == 2 and "from 0 to 100" in r.stderr


def test_set_routes_makes_the_split_exact_in_one_revision(deployed: Project) -> None:
    from seaway.audit.log import list_events

    routes.deploy(deployed, "churn@1")
    routes.deploy(deployed, "churn@3", shadow=5)
    split = [routes.Route(1, weight=90), routes.Route(2, weight=10)]
    table = routes.set_routes(deployed, "churn", split, reason={"environment": "prod"})
    # churn@3 was not in the split: gone, and all of it in one revision.
    assert weights(table) == {"churn@1": (90, 0), "churn@2": (10, 0)}
    assert table.revision == 3
    again = routes.set_routes(deployed, "churn", split, reason={"environment": "prod"})
    assert again.revision == 3, "an unchanged split must not bump the revision"
    kinds = [(e.kind, e.subject, (e.data or {}).get("environment")) for e in list_events(deployed)]
    assert ("deployment.removed", "model:churn@3", "prod") in kinds
    assert ("deployment.set", "model:churn@2", "prod") in kinds
    assert routes.set_routes(deployed, "churn", []).deployments == ()


@pytest.mark.parametrize(
    ("split", "message"),
    [
        ([routes.Route(1, weight=60), routes.Route(2, weight=30)], "sum to 90, not 100"),
        ([routes.Route(1, weight=100), routes.Route(1, weight=0, shadow=5)], "listed twice"),
        ([routes.Route(1, weight=100, shadow=5)], "both a primary and a shadow"),
        ([routes.Route(2, shadow=50)], "sum to 0, not 100"),
    ],
)
def test_set_routes_refuses_a_split_that_cannot_serve(
    deployed: Project, split: list[routes.Route], message: str
) -> None:
    routes.deploy(deployed, "churn@1")
    with pytest.raises(UsageError, match=message):
        routes.set_routes(deployed, "churn", split)
    assert weights(routes.load_table(deployed)) == {"churn@1": (100, 0)}
