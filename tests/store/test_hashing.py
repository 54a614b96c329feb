"""BLAKE3 hashing: the small-file and the mmap path agree, and digests are real BLAKE3."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from seaway.store.hashing import (
    LARGE_FILE,
    check_digest,
    hash_bytes,
    hash_file,
    is_digest,
    read_and_hash,
)

EMPTY_BLAKE3 = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"


def seeded_bytes(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def test_empty_input_matches_the_published_test_vector(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert hash_bytes(b"") == EMPTY_BLAKE3
    assert hash_file(empty) == EMPTY_BLAKE3


@pytest.mark.parametrize(
    "size",
    [1, 4096, LARGE_FILE - 1, LARGE_FILE, LARGE_FILE + 4 * 1024 * 1024 + 17],
    ids=["1B", "4KiB", "just-below-large", "exactly-large", "large"],
)
def test_hash_file_equals_hash_of_its_bytes(tmp_path: Path, size: int) -> None:
    data = seeded_bytes(size, seed=size)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert hash_file(path) == hash_bytes(data)


def test_size_hint_picks_the_path_but_not_the_result(tmp_path: Path) -> None:
    # Callers pass the size from a stat they already did; a stale hint must not change the
    # digest, only which reader is used.
    data = seeded_bytes(100_000)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert hash_file(path, size=LARGE_FILE) == hash_bytes(data)
    assert hash_file(path, size=0) == hash_bytes(data)


def test_different_content_gives_different_digests() -> None:
    assert hash_bytes(b"a") != hash_bytes(b"b")
    assert hash_bytes(bytearray(b"abc")) == hash_bytes(memoryview(b"abc")) == hash_bytes(b"abc")


def test_read_and_hash_returns_content_and_digest(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"hello")
    data, digest = read_and_hash(path)
    assert data == b"hello"
    assert digest == hash_bytes(b"hello")


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (EMPTY_BLAKE3, True),
        (EMPTY_BLAKE3.upper(), False),
        (EMPTY_BLAKE3[:-1], False),
        (EMPTY_BLAKE3 + "0", False),
        (EMPTY_BLAKE3 + "\n", False),
        ("../" + EMPTY_BLAKE3[3:], False),
        ("", False),
    ],
)
def test_is_digest(value: str, ok: bool) -> None:
    assert is_digest(value) is ok
    if ok:
        assert check_digest(value) == value
    else:
        with pytest.raises(ValueError, match="not a BLAKE3 hex digest"):
            check_digest(value)
