"""Fixtures of the store tests: an S3 endpoint on 127.0.0.1."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

S3_BUCKET = "seaway-test"


@pytest.fixture(scope="session")
def s3_bucket() -> Iterator[tuple[str, dict[str, Any]]]:
    """An empty S3 bucket's URL and the fsspec storage options that reach it.

    S3 is served by moto because no cloud account exists here: the same s3fs code talks to
    it over HTTP as it would to AWS, on 127.0.0.1 only.
    """
    import s3fs
    from moto.server import ThreadedMotoServer

    # One log line per request would bury any failure report.
    werkzeug_log = logging.getLogger("werkzeug")
    old_level = werkzeug_log.level
    werkzeug_log.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        options: dict[str, Any] = {
            "endpoint_url": f"http://{host}:{port}",
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"region_name": "eu-west-1"},
            # Each test gets a filesystem of its own, so no listing cached by one test is
            # seen by the next.
            "skip_instance_cache": True,
        }
        s3fs.S3FileSystem(**options).mkdir(S3_BUCKET)
        yield f"s3://{S3_BUCKET}", options
    finally:
        server.stop()
        werkzeug_log.setLevel(old_level)
