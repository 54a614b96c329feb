"""Capturing a step's output at the file-descriptor level.

Redirecting `sys.stdout` would miss what C extensions print and what child processes
write; pointing descriptors 1 and 2 at the log file catches all of it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

TAIL_LINES = 20
_TAIL_BYTES = 16 * 1024


def _flush_all() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    # C stdio buffers (printf from an extension) would otherwise spill into the next step.
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None).fflush(None)


@contextlib.contextmanager
def capture_output(log_path: Path) -> Iterator[None]:
    """Send everything written to fds 1 and 2 to `log_path` while the block runs."""
    _flush_all()
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
    saved = (os.dup(1), os.dup(2))
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield
    finally:
        _flush_all()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (*saved, fd):
            os.close(f)


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last `lines` lines of a log file."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - _TAIL_BYTES))
            data = fh.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])
