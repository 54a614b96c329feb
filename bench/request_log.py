"""The gateway's request-log writer: one flush of sampled requests into the store.

Run from the repository root with the project's virtualenv:

    .venv/bin/python bench/request_log.py [--samples 10000] [--repeats 5] [--json FILE]

A gateway at `--sample-rate 1` hands its writer thread thousands of samples per flush, and
that thread shares the interpreter with the request loop. Each case writes `--samples`
one-row KServe v1 samples (20 features in, `predict_proba` out) per flush, in a fresh
project, and times `Telemetry.flush`:

- **one statement**: what the gateway does, one INSERT over a JSON array per flush;
- **executemany**: the same rows through SQLAlchemy's row-by-row `executemany` with the
  column types' own JSON encoding, which is how the writer worked before.

Each runs alone and next to a busy Python thread (a stand-in for a loaded request loop), on
SQLite and, when one answers on 127.0.0.1:5432, on PostgreSQL (a private database, dropped
afterwards). Medians of `--repeats` flushes, after one untimed flush.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import harness
import numpy as np

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


@contextmanager
def busy_thread(on: bool) -> Iterator[None]:
    """A thread that keeps the interpreter busy, as a request loop under load does."""
    stop = threading.Event()

    def spin() -> None:
        x = 0
        while not stop.is_set():
            for i in range(1000):
                x += i

    thread = threading.Thread(target=spin, daemon=True)
    if on:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        if on:
            thread.join()


def executemany_write(conn: Any, pending: list[tuple[list[Any], list[dict[str, Any]]]]) -> None:
    """The writer before: Python objects for the JSON columns, one executemany."""
    import orjson

    from seaway.store.schema import request_log

    rows = []
    for _, samples in pending:
        for x in samples:
            row = {k: v for k, v in x.items() if not k.endswith("_json")}
            for name in ("inputs", "outputs"):
                text = x[f"{name}_json"]
                row[name] = None if text is None else orjson.loads(text)
            rows.append(row)
    conn.execute(request_log.insert(), rows)


def flush_times(url: str | None, samples: int, repeats: int, how: str, busy: bool) -> list[float]:
    """Flush times of one case; `url` None is the project's own SQLite file."""
    import os

    from prometheus_client import CollectorRegistry

    import seaway.serving.telemetry as telemetry
    from seaway.project import Project

    if url is None:
        os.environ.pop("SEAWAY_METADATA_URL", None)
    else:
        os.environ["SEAWAY_METADATA_URL"] = url
    root = Path(tempfile.mkdtemp(prefix="seaway-bench-log-"))
    (root / "seaway.yaml").write_text("name: bench\n")
    project = Project(root)
    original: Callable[..., None] = telemetry._write
    if how == "executemany":
        telemetry._write = executemany_write  # type: ignore[assignment]
    try:
        t = telemetry.Telemetry(
            project, gateway_id="bench", sample_rate=1.0, sample_cap=10**9,
            registry=CollectorRegistry(),
        )  # fmt: skip
        rng = np.random.default_rng(0)
        inputs = {"instances": rng.normal(size=(1, 20)).tolist()}
        outputs = {"predict": np.array([1]), "predict_proba": np.array([[0.3, 0.7]])}
        times = []
        with busy_thread(busy):
            for r in range(repeats + 1):
                for i in range(samples):
                    t.request(
                        "lr", 1, "primary", status=200, latency_s=0.002,
                        request_id=f"{r}-{i}", inputs=inputs, outputs=outputs,
                    )  # fmt: skip
                t0 = time.perf_counter()
                assert t.flush(), "the flush did not reach the store"
                if r:
                    times.append(time.perf_counter() - t0)
        return times
    finally:
        telemetry._write = original  # type: ignore[assignment]
        project.close()
        harness.remove(root)


@contextmanager
def stores() -> Iterator[list[tuple[str, str | None]]]:
    found: list[tuple[str, str | None]] = [("SQLite", None)]
    name = None
    try:
        import psycopg

        name = f"seaway_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        found.append(("PostgreSQL", f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"))
    except Exception as exc:
        harness.log(f"PostgreSQL: NOT MEASURED ({str(exc).splitlines()[0] if str(exc) else exc})")
        name = None
    try:
        yield found
    finally:
        if name is not None:
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000, help="samples per flush")
    parser.add_argument("--repeats", type=int, default=5, help="timed flushes per case")
    parser.add_argument("--json", type=Path, default=None, help="write JSON")
    args = parser.parse_args(argv)

    results: dict[str, Any] = {}
    lines = [
        f"Request-log flush of {args.samples:,} samples, median of {args.repeats} "
        "(one statement = the gateway's writer; executemany = the writer before)",
        f"{'store':<11} {'next to':<12} {'one statement':>14} {'executemany':>12} {'ratio':>6}",
    ]
    with stores() as found:
        for label, url in found:
            for busy in (False, True):
                got = {}
                for how in ("one statement", "executemany"):
                    times = flush_times(url, args.samples, args.repeats, how, busy)
                    got[how] = statistics.median(times)
                ratio = got["executemany"] / got["one statement"]
                where = "busy thread" if busy else "nothing"
                lines.append(
                    f"{label:<11} {where:<12} {got['one statement']:>12.3f} s "
                    f"{got['executemany']:>10.3f} s {ratio:>5.1f}x"
                )
                results[f"{label}/{where}"] = {**got, "ratio": ratio}
    print("\n".join(lines))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
