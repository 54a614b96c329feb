"""One competing process of the metadata concurrency tests (run as a script, not collected).

    python metadata_worker.py MODE URL WORKER COUNT GO_FILE

It prints "ready" once its imports are done, waits for GO_FILE to appear so that all
workers start their race at the same moment, does its part, and prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from seaway._util import utcnow
from seaway.store.events import record_event
from seaway.store.metadata import MetadataStore
from seaway.store.schema import dataset_versions, datasets

DATASET = "shared"


def insert_events(store: MetadataStore, worker: int, count: int) -> dict[str, Any]:
    ids = []
    for i in range(count):

        def one(conn: sa.Connection, i: int = i) -> int:
            return record_event(conn, "test.event", f"w{worker}-{i}", actor=f"w{worker}")

        ids.append(store.run_write(one))
    return {"ids": ids}


def dataset_id(conn: sa.Connection) -> int:
    found = conn.execute(sa.select(datasets.c.id).where(datasets.c.name == DATASET)).scalar()
    if found is not None:
        return int(found)
    # Two processes may both get here; the loser's insert violates the unique name and
    # run_write retries, finding the winner's row.
    inserted = conn.execute(
        datasets.insert().values(name=DATASET, created_at=utcnow()).returning(datasets.c.id)
    )
    return int(inserted.scalar_one())


def append_version(conn: sa.Connection, ds: int) -> int:
    # Lock the dataset row so PostgreSQL serialises the read-max-then-insert; on SQLite the
    # transaction already holds the database's write lock (BEGIN IMMEDIATE).
    conn.execute(sa.select(datasets.c.id).where(datasets.c.id == ds).with_for_update()).one()
    last = conn.execute(
        sa.select(sa.func.max(dataset_versions.c.number)).where(dataset_versions.c.dataset_id == ds)
    ).scalar()
    number = (last or 0) + 1
    conn.execute(
        dataset_versions.insert().values(
            dataset_id=ds,
            number=number,
            tree_hash="0" * 64,
            manifest_hash="0" * 64,
            n_files=1,
            size=1,
            sources=["x"],
            created_at=utcnow(),
            author="test",
            check_status="none",
        )
    )
    return number


def append_versions(store: MetadataStore, count: int) -> dict[str, Any]:
    ds = store.run_write(dataset_id)
    numbers = [store.run_write(lambda conn: append_version(conn, ds)) for _ in range(count)]
    return {"dataset_id": ds, "numbers": numbers}


def main() -> None:
    mode, url, worker, count, go = sys.argv[1:6]
    store = MetadataStore(url)
    if mode != "migrate":
        store.engine  # noqa: B018 - connect (and migrate) before the race starts
    print("ready", flush=True)
    deadline = time.monotonic() + 60
    while not Path(go).exists():
        if time.monotonic() > deadline:
            raise SystemExit("the test never started the race")
        time.sleep(0.001)
    if mode == "events":
        result = insert_events(store, int(worker), int(count))
    elif mode == "versions":
        result = append_versions(store, int(count))
    elif mode == "migrate":
        store.engine  # noqa: B018
        result = {}
    else:
        raise SystemExit(f"unknown mode {mode}")
    store.close()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
