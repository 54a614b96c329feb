from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest


def write_random(path: Path, size: int, seed: int) -> bytes:
    data = random.Random(seed).randbytes(size)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def make_tree(root: Path, files: int, size: int = 2048, seed: int = 0) -> dict[str, bytes]:
    """`files` seeded random files in nested folders under root; returns rel path → bytes."""
    out = {}
    for i in range(files):
        rel = f"d{i % 3}/s{i % 5}/f{i}.bin"
        out[rel] = write_random(root / rel, size, seed * 100_000 + i)
    return out


def age(path: Path, seconds: float = 10.0) -> None:
    """Move mtimes into the past so the stat cache trusts them (see index.RACY_WINDOW_NS)."""
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        st = p.stat()
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns - int(seconds * 1e9)))


@pytest.fixture
def tree() -> Callable[..., dict[str, bytes]]:
    return make_tree
