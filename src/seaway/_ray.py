"""Starting or joining Ray, for the pipeline's Ray executor and the `ray` GitOps target.

A Ray started here stays on loopback: its processes talk over 127.0.0.1, the dashboard is
off and usage statistics are not sent.
"""

from __future__ import annotations

import os
from typing import Any

from seaway.errors import UsageError

LOOPBACK = "127.0.0.1"
# Read by Ray when it is imported: keep a Ray started here on loopback and quiet.
_LOCAL_RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def import_ray(*, local: bool, missing: str, hint: str, serve: bool = False) -> Any:
    """The `ray` module (with `ray.serve` importable when `serve`); UsageError `missing`
    with `hint` when it is not installed."""
    if local:
        for key, value in _LOCAL_RAY_ENV.items():
            os.environ.setdefault(key, value)
    try:
        import ray

        if serve:
            import ray.serve
    except ImportError:
        raise UsageError(missing, hint=hint) from None
    if local:
        # Ray read the variable when it was first imported; a caller may have imported it
        # before us (a notebook, a test), so set the flag it was turned into as well.
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False
    return ray


def connect(ray: Any, cluster: str | None, *, hint: str, **local: Any) -> bool:
    """Join the Ray this process is connected to, or the cluster at `cluster`, or start
    one on loopback (`local` are extra `ray.init` options for that case). True when a Ray
    was started here, for the caller to shut down."""
    if ray.is_initialized():
        return False
    if cluster is None:
        ray.init(
            _node_ip_address=LOOPBACK,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            **local,
        )
        return True
    try:
        ray.init(address=cluster, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UsageError(
            f"cannot connect to the Ray cluster at {cluster}: {exc}", hint=hint
        ) from exc
    return False


__all__ = ["LOOPBACK", "connect", "import_ray"]
