"""Running the gateway: uvicorn with httptools and uvloop, one or several worker processes.

`serve(...)` is what `seaway serve` calls. Options reach the application through
SEAWAY_SERVE_* environment variables read by the factory `seaway.serving.app:app`, because
with `workers > 1` uvicorn starts fresh processes that import the app by name (they share
one listening socket, so the kernel spreads connections over them). The same variables let
any other ASGI server run the gateway: `gunicorn -k uvicorn.workers.UvicornWorker
'seaway.serving.app:app()'`.

OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS are set to 1 before any worker
starts (unless the user set them): a worker's concurrent requests already use the cores,
and native pools sized to every core oversubscribe them (HistGradientBoosting drops to a
few requests per second under load otherwise). Each predict thread also applies the limit
with threadpoolctl.
"""

from __future__ import annotations

import os
from pathlib import Path

from seaway.errors import UsageError
from seaway.serving.app import ENV_PREFIX

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def serve(
    root: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    poll_interval_s: float = 1.0,
    idle_timeout_s: float | None = None,
    memory_budget_bytes: int | None = None,
    predict_threads: int | None = None,
    sample_rate: float | None = None,
    sample_cap: int | None = None,
    log_level: str = "warning",
    access_log: bool = False,
) -> None:
    """Serve the project at `root` until interrupted."""
    import uvicorn

    if workers < 1:
        raise UsageError(f"--workers must be at least 1, not {workers}")
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be from 0 to 65535, not {port}")
    if sample_rate is not None and not 0.0 <= sample_rate <= 1.0:
        raise UsageError(
            f"--sample-rate must be from 0 to 1, not {sample_rate}",
            hint="1 logs every request for the monitor, 0.01 one in a hundred",
        )
    if sample_cap is not None and sample_cap < 1:
        raise UsageError(f"--sample-cap must be at least 1, not {sample_cap}")
    for name in THREAD_VARS:
        os.environ.setdefault(name, "1")
    settings = {
        "POLL_INTERVAL": poll_interval_s,
        "IDLE_TIMEOUT": idle_timeout_s,
        "MEMORY_BUDGET": memory_budget_bytes,
        "PREDICT_THREADS": predict_threads,
    }
    for key, value in settings.items():
        if value is not None:
            os.environ[ENV_PREFIX + key] = str(value)
        else:
            os.environ.pop(ENV_PREFIX + key, None)
    # The request log's settings, like FLUSH_INTERVAL, may also come from the environment.
    for key, value in (("SAMPLE_RATE", sample_rate), ("SAMPLE_CAP", sample_cap)):
        if value is not None:
            os.environ[ENV_PREFIX + key] = str(value)
    # The factory finds the project from the working directory, in every worker.
    os.chdir(root)
    uvicorn.run(
        "seaway.serving.app:app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_level=log_level,
        access_log=access_log,
        server_header=False,
        date_header=False,
    )


def parse_size(text: str) -> int:
    """Bytes from `512MiB`, `2GB`, `1.5G` or a plain number."""
    units = {
        "": 1, "b": 1,
        "k": 1000, "kb": 1000, "kib": 1024,
        "m": 1000**2, "mb": 1000**2, "mib": 1024**2,
        "g": 1000**3, "gb": 1000**3, "gib": 1024**3,
        "t": 1000**4, "tb": 1000**4, "tib": 1024**4,
    }  # fmt: skip
    raw = text.strip().lower()
    digits = raw.rstrip("abcdefghijklmnopqrstuvwxyz ")
    unit = raw[len(digits) :].strip()
    try:
        value = float(digits)
    except ValueError:
        value = -1.0
    if unit not in units or value <= 0:
        raise UsageError(
            f"{text!r} is not a size", hint="write bytes with a unit, such as 512MiB or 2GB"
        )
    return int(value * units[unit])


__all__ = ["parse_size", "serve"]
