"""A new database is built from the table definitions instead of replaying migrations; both
ways must give the same schema, or upgraded databases would differ from new ones."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect

from seaway.store.metadata import MetadataStore
from seaway.store.schema import SCHEMA_REVISION
from tests.conftest import private_pg_database


def _describe(url: str) -> dict[str, Any]:
    engine = create_engine(url)
    try:
        insp = inspect(engine)
        out: dict[str, Any] = {}
        for table in sorted(insp.get_table_names()):
            cols = {
                c["name"]: (str(c["type"]).split("(")[0], bool(c["nullable"]))
                for c in insp.get_columns(table)
            }
            indexes = sorted(
                (tuple(i["column_names"]), bool(i["unique"])) for i in insp.get_indexes(table)
            )
            uniques = sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(table))
            pk = tuple(insp.get_pk_constraint(table)["constrained_columns"])
            fks = sorted(
                (tuple(f["constrained_columns"]), f["referred_table"])
                for f in insp.get_foreign_keys(table)
            )
            out[table] = {
                "columns": cols,
                "indexes": indexes,
                "unique": uniques,
                "pk": pk,
                "fk": fks,
            }
        return out
    finally:
        engine.dispose()


@pytest.fixture
def second_url(metadata_url: str, request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if metadata_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'second.db'}"
    return str(request.getfixturevalue("pg_url_second"))


@pytest.fixture
def pg_url_second(pg_server: str) -> Iterator[str]:
    with private_pg_database() as url:
        yield url


def test_fresh_database_equals_the_migrated_one(metadata_url: str, second_url: str) -> None:
    fresh = MetadataStore(metadata_url)
    _ = fresh.engine  # an empty database: built from the definitions
    fresh.close()

    migrated = MetadataStore(second_url)
    engine = migrated._create_engine()
    with migrated._migration_lock(engine) as conn:
        migrated._upgrade(conn)  # the path an existing database takes
    engine.dispose()

    assert _describe(metadata_url) == _describe(second_url)
    for url in (metadata_url, second_url):
        store = MetadataStore(url)
        with store.read() as conn:
            assert store._current_revision(conn) == SCHEMA_REVISION
        store.close()


def test_a_new_database_does_not_import_alembic(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess

    code = (
        "import sys; from seaway.store.metadata import MetadataStore\n"
        f"s = MetadataStore('sqlite:///{tmp_path / 'x.db'}'); s.engine\n"
        "print('alembic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
