"""What abuse detection costs the gateway: per request, per judging pass, end to end.

Run from the repository root with the project's virtualenv:

    .venv/bin/python bench/abuse.py [--repeats N] [--quick] [--json FILE] [--http]

1. The request path, in process: `AbuseDetector.admit` (nothing throttled, and another
   client throttled) and `observe` for a one-row request as a matrix and as four named
   columns, and for a 64-row request, each averaged over 200,000 calls after a client's
   first 256 requests (so one in four is sampled, as in steady traffic).
2. One judging pass (`tick`) over 1,000 clients that each hold a full ring of 512 rows of
   4 features (a pass judges at most 200 of them), and over 10,000 clients without rows.
3. The gateway in process: one-row KServe v1 requests straight into the ASGI app (no HTTP)
   for two deployments of the same LogisticRegression on 4 features, one watched (the
   default, `on_flag: record`) and one with `abuse: {enabled: false}`, in alternating
   rounds of 2,000; CPU time per request, so other processes on the machine matter less.
4. With `--http`, end to end: two `seaway serve` processes (one worker each), one per
   setting; wrk (one thread, 32 connections) posts the same body to each in alternating
   rounds. On a small, shared machine the difference is within the noise of a run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import harness
import numpy as np

import serving as bench_serving

SETUP = """
import sys
from pathlib import Path
import numpy as np
import skops.io as sio
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from seaway.project import Project
from seaway.registry import register_model
from seaway.serving.routes import deploy
X, y = make_classification(n_samples=2000, n_features=4, random_state=0)
path = Path.cwd() / "clf.skops"
sio.dump(LogisticRegression(max_iter=500).fit(X, y), path)
project = Project(Path.cwd())
for name in sys.argv[1:]:
    register_model(project, name, path, flavor="sklearn")
    deploy(project, name + "@1")
project.close()
"""


def per_call_ns(fn: object, calls: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(calls):
        fn()  # type: ignore[operator]
    return (time.perf_counter_ns() - start) / calls


def request_path(calls: int) -> dict[str, float]:
    from seaway.serving.abuse import AbuseDetector, Flag, _Throttle
    from seaway.serving.protocol import ModelInput

    detector = AbuseDetector(Path(tempfile.mkdtemp()))  # type: ignore[arg-type]
    one = ModelInput("matrix", np.random.default_rng(0).normal(size=(1, 4)), 1)
    named = ModelInput("columns", {n: np.array([float(i)]) for i, n in enumerate("abcd")}, 1)
    batch = ModelInput("matrix", np.random.default_rng(0).normal(size=(64, 4)), 64)
    out: dict[str, float] = {}
    out["admit, nothing throttled"] = per_call_ns(lambda: detector.admit("m", "ip:a"), calls)
    for name, data in (("1 row", one), ("1 row, 4 columns", named), ("64 rows", batch)):
        client = f"ip:{name}"
        for _ in range(300):
            detector.observe("m", 1, client, data)
        out[f"observe, {name}"] = per_call_ns(
            lambda data=data, client=client: detector.observe("m", 1, client, data), calls
        )
    flag = Flag("m", "ip:other", 1, ("coverage",), 1.0, {}, "throttle", time.time() + 600)
    detector._throttled = {("m", "ip:other"): _Throttle(flag, 60, time.monotonic() + 600)}
    out["admit, another client throttled"] = per_call_ns(lambda: detector.admit("m", "ip:a"), calls)
    return out


def judging(clients: int, with_rows: bool) -> float:
    from seaway.serving.abuse import AbuseDetector
    from seaway.serving.protocol import ModelInput

    root = Path(tempfile.mkdtemp())
    (root / "seaway.yaml").write_text("name: bench\n")

    class _Project:  # the pass reads the spec and, for a flag, the store: neither here
        spec_path = root / "seaway.yaml"

    detector = AbuseDetector(_Project(), max_clients=clients)  # type: ignore[arg-type]
    rng = np.random.default_rng(1)
    rows = rng.normal(size=(8, 4))
    for c in range(clients):
        data = ModelInput("matrix", rows + c, 8) if with_rows else ModelInput("tensor", rows, 8)
        for _ in range(256 if with_rows else 1):
            detector.observe("m", None, f"ip:{c}", data)
    for entry in detector._clients.values():
        # Every client has sent min_requests, over an hour: none is over max_rate.
        entry.requests = 10_000
        entry.first -= 3600
    start = time.perf_counter()
    detector.tick()
    return time.perf_counter() - start


def in_process(rounds: int) -> dict[str, list[float]]:
    import asyncio
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    root = Path(tempfile.mkdtemp(prefix="seaway-abuse-bench-"))
    harness.run_command(["git", "init", "-q"], cwd=root)
    (root / "seaway.yaml").write_text(
        "name: bench-abuse\nmonitoring:\n  ignored:\n    abuse: {enabled: false}\n"
    )
    os.environ["SEAWAY_METADATA_URL"] = f"sqlite:///{root / 'meta.db'}"
    harness.run_command(
        [harness.project_bin() / "python", "-c", SETUP, "watched", "ignored"], cwd=root
    )
    from seaway.project import Project
    from seaway.serving.app import create_app

    project = Project(root)
    app = create_app(project)
    body = json.dumps({"instances": [[0.1, -0.4, 1.2, 0.3]]}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200, message

    async def requests(name: str, n: int) -> None:
        scope = {
            "type": "http",
            "method": "POST",
            "path": f"/v1/models/{name}:predict",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
        }
        for _ in range(n):
            await app(scope, receive, send)  # type: ignore[arg-type]

    results: dict[str, list[float]] = {"watched": [], "ignored": []}

    async def run() -> None:
        await app.startup()
        for name in results:
            await requests(name, 500)
        for r in range(rounds):
            for name in ("watched", "ignored") if r % 2 == 0 else ("ignored", "watched"):
                start = time.process_time()
                await requests(name, 2000)
                results[name].append((time.process_time() - start) / 2000 * 1e6)
        await app.shutdown()

    asyncio.run(run())
    project.close()
    return results


def end_to_end(rounds: int, seconds: float) -> dict[str, list[float]]:
    import shutil

    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: it is the load generator (apt-get install wrk)")
    work = Path(tempfile.mkdtemp(prefix="seaway-abuse-bench-"))
    servers: dict[str, bench_serving.Server] = {}
    body = work / "body.json"
    body.write_text(json.dumps({"instances": [[0.1, -0.4, 1.2, 0.3]]}))
    specs = {
        "detection on": "name: bench-abuse\n",
        "detection off": "name: bench-abuse\nmonitoring:\n  clf:\n    abuse: {enabled: false}\n",
    }
    results: dict[str, list[float]] = {name: [] for name in specs}
    try:
        for name, spec in specs.items():
            root = work / name.replace(" ", "-")
            root.mkdir()
            harness.run_command(["git", "init", "-q"], cwd=root)
            (root / "seaway.yaml").write_text(spec)
            env = bench_serving.quiet_env({})
            harness.run_command(
                [harness.project_bin() / "python", "-c", SETUP, "clf"], cwd=root, env=env
            )
            port = bench_serving.free_port()
            argv = [str(harness.project_bin() / "seaway"), "serve", "--port", str(port)]
            server = bench_serving.Server(name, argv, root, env, port, work / f"{port}.log")
            server.start("/v1/models/clf:predict", body.read_bytes())
            if server.failure:
                raise SystemExit(f"{name}: {server.failure}")
            servers[name] = server
        script = work / "post.lua"
        script.write_text(bench_serving.WRK_SCRIPT)
        order = list(servers)
        for r in range(rounds):
            for name in order if r % 2 == 0 else reversed(order):
                url = servers[name].url("/v1/models/clf:predict")
                bench_serving.run_wrk(script, url, body, 32, 1)  # warm-up
                result = bench_serving.run_wrk(script, url, body, 32, seconds)
                results[name].append(result.rps)
                harness.log(f"round {r + 1}: {name}: {result.rps:,.0f} req/s")
    finally:
        for server in servers.values():
            server.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=None, help="alternating rounds (4)")
    parser.add_argument("--quick", action="store_true", help="fewer calls and rounds")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="write JSON")
    parser.add_argument("--seconds", type=float, default=8.0, help="wrk seconds per run")
    parser.add_argument("--http", action="store_true", help="also measure over HTTP with wrk")
    args = parser.parse_args()
    rounds = args.repeats or (2 if args.quick else 4)
    calls = 20_000 if args.quick else 200_000
    figures: dict[str, object] = {"machine": harness.machine_info()}

    path = request_path(calls)
    figures["request_path_ns"] = path
    print("request path (ns per call):")
    for name, ns in path.items():
        print(f"  {name:<36} {ns:8.0f}")
    passes = {
        "1,000 clients with rows": judging(1000, True),
        "10,000 clients": judging(10_000, False),
    }
    figures["judging_pass_s"] = passes
    print("judging pass:")
    print(
        f"  1,000 clients with 512 rows each   {passes['1,000 clients with rows'] * 1000:8.0f} ms"
    )
    print(f"  10,000 clients, rate only          {passes['10,000 clients'] * 1000:8.0f} ms")
    gateway = in_process(rounds * 4)
    figures["in_process_cpu_us"] = gateway
    print("gateway in process (CPU microseconds per one-row request; median, best round):")
    for name, values in gateway.items():
        print(f"  {name:<14} {statistics.median(values):8.1f} {min(values):8.1f}")
    if args.http:
        results = end_to_end(rounds, args.seconds)
        figures["http_rps"] = results
        on = statistics.median(results["detection on"])
        off = statistics.median(results["detection off"])
        print("end to end (wrk -t1 -c32, one-row v1 requests, median req/s):")
        for name, values in results.items():
            spread = ", ".join(f"{v:,.0f}" for v in values)
            print(f"  {name:<14} {statistics.median(values):10,.0f}   ({spread})")
        print(f"  overhead: {(off - on) / off * 100:+.1f}% of throughput")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        harness.log(f"wrote {args.json}")


if __name__ == "__main__":
    main()
