"""The blob store contract, on a local directory, fsspec's memory filesystem and S3 (moto)."""

from __future__ import annotations

import errno
import os
import random
import stat
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from seaway.errors import IntegrityError, NotFound, StoreError, UsageError
from seaway.store.blobs import BlobStore, FsspecBlobStore, LocalBlobStore, open_blob_store
from seaway.store.hashing import LARGE_FILE, hash_bytes, hash_file

MiB = 1024 * 1024


@pytest.fixture(params=["local", "memory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "local":
        yield LocalBlobStore(tmp_path / "objects")
        return
    prefix = f"seaway-{uuid.uuid4().hex[:12]}"
    if request.param == "memory":
        memory = FsspecBlobStore(f"memory://{prefix}")
        yield memory
        # The memory filesystem is one global dict: leave nothing for the next test.
        if memory.fs.exists(memory.prefix):
            memory.fs.rm(memory.prefix, recursive=True)
        return
    bucket, options = request.getfixturevalue("s3_bucket")
    # Through open_blob_store, which is how a project opens it, so that the storage
    # options are shown to reach s3fs.
    s3 = open_blob_store(f"{bucket}/{prefix}", **options)
    assert isinstance(s3, FsspecBlobStore)
    yield s3


def corrupt(store: BlobStore, digest: str, offset: int = 0) -> bytes:
    """Flip one bit of the stored bytes, as a failing disk would; return the new bytes."""
    if isinstance(store, LocalBlobStore):
        path = store.path(digest)
        os.chmod(path, 0o644)  # blobs are stored read-only
        with open(path, "r+b") as fh:
            fh.seek(offset)
            byte = fh.read(1)
            fh.seek(offset)
            fh.write(bytes([byte[0] ^ 0x01]))
        return path.read_bytes()
    assert isinstance(store, FsspecBlobStore)
    data = bytearray(store.fs.cat_file(store.path(digest)))
    data[offset] ^= 0x01
    store.fs.pipe_file(store.path(digest), bytes(data))
    return bytes(data)


def sparse_file(path: Path, size: int, seed: int = 0) -> bytes:
    """A file of `size` bytes: zeros with seeded random 64 KiB islands, so it is cheap to
    build yet no two MiB of it are alike."""
    rng = random.Random(seed)
    data = bytearray(size)
    for start in range(0, size, MiB):
        island = rng.randbytes(64 * 1024)
        at = start + rng.randrange(0, MiB - len(island))
        data[at : at + len(island)] = island[: max(0, min(len(island), size - at))]
    path.write_bytes(bytes(data))
    return bytes(data)


# -- the contract, on every store ---------------------------------------------------------


def test_put_bytes_then_get_bytes_round_trips(store: BlobStore) -> None:
    data = b"churn,tenure\n1,12\n"
    digest = store.put_bytes(data)
    assert digest == hash_bytes(data)
    assert store.has(digest)
    assert store.get_bytes(digest) == data
    assert store.size(digest) == len(data)
    assert store.check(digest) == "ok"


def test_empty_blob_round_trips(store: BlobStore) -> None:
    digest = store.put_bytes(b"")
    assert store.get_bytes(digest) == b""
    assert store.size(digest) == 0


def test_put_file_then_get_file_round_trips(store: BlobStore, tmp_path: Path) -> None:
    src = tmp_path / "model.bin"
    src.write_bytes(b"\x00weights\xff" * 1000)
    digest = hash_file(src)
    assert store.put_file(src, digest) is True
    dest = tmp_path / "out" / "deep" / "model.bin"
    store.get_file(digest, dest)
    assert dest.read_bytes() == src.read_bytes()
    # A checked-out file belongs to the user: it must be writable, unlike the blob.
    assert os.stat(dest).st_mode & stat.S_IWUSR


def test_puts_are_idempotent(store: BlobStore, tmp_path: Path) -> None:
    data = b"same bytes"
    first = store.put_bytes(data)
    assert store.put_bytes(data) == first
    src = tmp_path / "same"
    src.write_bytes(data)
    assert store.put_file(src, first) is False, "an existing blob is not new"
    assert list(store.iter_digests()) == [first]
    assert store.get_bytes(first) == data


def test_has_is_false_for_an_unknown_digest(store: BlobStore) -> None:
    assert not store.has(hash_bytes(b"never stored"))


def test_iter_digests_lists_every_blob_and_nothing_else(store: BlobStore) -> None:
    assert list(store.iter_digests()) == []
    digests = {store.put_bytes(f"blob {i}".encode()) for i in range(5)}
    assert set(store.iter_digests()) == digests
    assert len(list(store.iter_digests())) == 5


def test_delete_removes_the_blob_and_tolerates_a_missing_one(store: BlobStore) -> None:
    keep = store.put_bytes(b"keep")
    gone = store.put_bytes(b"gone")
    store.delete(gone)
    assert not store.has(gone)
    assert store.has(keep)
    assert set(store.iter_digests()) == {keep}
    with pytest.raises(NotFound):
        store.get_bytes(gone)
    store.delete(gone)  # deleting twice is not an error: gc may race with another gc


def test_missing_blob_is_not_found_naming_the_digest(store: BlobStore, tmp_path: Path) -> None:
    digest = hash_bytes(b"absent")
    with pytest.raises(NotFound) as err:
        store.get_bytes(digest)
    assert digest[:12] in str(err.value)
    assert err.value.hint
    with pytest.raises(NotFound, match=digest[:12]):
        store.size(digest)
    dest = tmp_path / "dest"
    with pytest.raises(NotFound, match=digest[:12]):
        store.get_file(digest, dest)
    assert not dest.exists()
    assert store.check(digest) == "missing"


def test_corrupt_blob_is_refused_naming_both_digests(store: BlobStore, tmp_path: Path) -> None:
    digest = store.put_bytes(b"the real content of a blob")
    bad = corrupt(store, digest, offset=3)
    actual = hash_bytes(bad)
    with pytest.raises(IntegrityError) as err:
        store.get_bytes(digest)
    assert digest in str(err.value)
    assert actual in str(err.value)
    assert store.check(digest) == "corrupt"

    dest = tmp_path / "workspace" / "dest.bin"
    with pytest.raises(IntegrityError):
        store.get_file(digest, dest)
    assert not dest.exists(), "a corrupt blob must not reach the workspace"
    leftovers = list(dest.parent.iterdir()) if dest.parent.exists() else []
    assert leftovers == [], "no temporary file may be left behind"


def test_failed_get_file_keeps_the_previous_file(store: BlobStore, tmp_path: Path) -> None:
    digest = store.put_bytes(b"new content")
    corrupt(store, digest)
    dest = tmp_path / "data.csv"
    dest.write_bytes(b"old content")
    with pytest.raises(IntegrityError):
        store.get_file(digest, dest)
    assert dest.read_bytes() == b"old content"


def test_large_file_round_trips(store: BlobStore, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    data = sparse_file(src, 20 * MiB + 123, seed=7)
    assert src.stat().st_size > LARGE_FILE  # so the mmap hashing path is the one used
    digest = hash_file(src)
    assert digest == hash_bytes(data)
    assert store.put_file(src, digest) is True
    assert store.size(digest) == len(data)
    dest = tmp_path / "back.bin"
    store.get_file(digest, dest)
    assert hash_file(dest) == digest
    assert store.check(digest) == "ok"


def test_malformed_digest_is_refused(store: BlobStore, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("not a blob")
    sneaky = "../" * 10 + str(victim).lstrip("/")
    with pytest.raises(UsageError, match="not a BLAKE3 digest"):
        store.delete(sneaky)
    assert victim.exists()
    with pytest.raises(UsageError):
        store.has("ABC")


# -- local directory ------------------------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "objects")


def can_reflink(directory: Path) -> bool:
    import fcntl

    src, dest = directory / "probe-src", directory / "probe-dest"
    src.write_bytes(b"probe")
    try:
        with open(src, "rb") as s, open(dest, "wb") as d:
            fcntl.ioctl(d.fileno(), 0x40049409, s.fileno())  # FICLONE
        return True
    except OSError:
        return False
    finally:
        src.unlink()
        dest.unlink(missing_ok=True)


def test_local_layout_and_read_only_blobs(local: LocalBlobStore) -> None:
    digest = local.put_bytes(b"x")
    path = local.root / digest[:2] / digest[2:]
    assert path.read_bytes() == b"x"
    assert os.stat(path).st_mode & 0o222 == 0, "a stored blob must be read-only"


def test_local_put_leaves_no_temp_files(local: LocalBlobStore, tmp_path: Path) -> None:
    local.put_bytes(b"one")
    src = tmp_path / "two"
    src.write_bytes(b"two")
    local.put_file(src, hash_file(src))
    with pytest.raises(FileNotFoundError):
        local.put_file(tmp_path / "vanished", hash_bytes(b"vanished"))
    assert temp_files(local) == []


def temp_files(local: LocalBlobStore) -> list[Path]:
    """Temporary files of unfinished writes, wherever the store keeps them."""
    return sorted(p for p in local.root.rglob("*") if p.is_file() and p.name.startswith(".tmp-"))


def test_local_clean_temp_removes_only_stale_files(local: LocalBlobStore) -> None:
    digest = local.put_bytes(b"stored")
    folder = local.path(digest).parent
    stale, fresh = folder / ".tmp-stale", folder / ".tmp-fresh"
    stale.write_bytes(b"left by a killed writer")
    fresh.write_bytes(b"a write in progress")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    assert local.clean_temp() == 1
    assert not stale.exists()
    assert fresh.exists()
    assert local.get_bytes(digest) == b"stored"
    assert local.clean_temp() == 0


def test_local_hardlink_shares_the_inode_and_locks_the_source(
    local: LocalBlobStore, tmp_path: Path
) -> None:
    src = tmp_path / "data.parquet"
    src.write_bytes(b"columns")
    digest = hash_file(src)
    assert local.put_file(src, digest, link="hardlink") is True
    assert os.stat(src).st_ino == os.stat(local.path(digest)).st_ino
    assert os.stat(src).st_mode & 0o222 == 0, "an in-place edit would change the stored blob"
    assert local.get_bytes(digest) == b"columns"


def test_local_hardlink_across_filesystems_is_a_store_error(
    local: LocalBlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cross_device(*_args: Any) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    src = tmp_path / "f"
    src.write_bytes(b"f")
    with pytest.raises(StoreError, match="hardlink") as err:
        local.put_file(src, hash_file(src), link="hardlink")
    assert err.value.hint and "copy" in err.value.hint
    assert os.stat(src).st_mode & stat.S_IWUSR, "a failed link must not lock the source"


def test_local_auto_link_stores_an_independent_copy(local: LocalBlobStore, tmp_path: Path) -> None:
    src = tmp_path / "features.bin"
    src.write_bytes(b"feature bytes" * 500)
    digest = hash_file(src)
    assert local.put_file(src, digest, link="auto") is True
    assert local.get_bytes(digest) == src.read_bytes()
    assert os.stat(src).st_ino != os.stat(local.path(digest)).st_ino
    # A copy or a clone is independent of the workspace file: editing it afterwards must
    # not touch the stored blob.
    src.write_bytes(b"edited")
    assert local.check(digest) == "ok"
    assert os.stat(src).st_mode & stat.S_IWUSR, "copy mode leaves the source writable"


def test_local_explicit_reflink_follows_the_filesystem(
    local: LocalBlobStore, tmp_path: Path
) -> None:
    src = tmp_path / "f.bin"
    src.write_bytes(b"clone me" * 100)
    digest = hash_file(src)
    if can_reflink(tmp_path):
        assert local.put_file(src, digest, link="reflink") is True
        assert local.get_bytes(digest) == src.read_bytes()
    else:
        with pytest.raises(StoreError, match="cannot reflink"):
            local.put_file(src, digest, link="reflink")
        assert not local.has(digest)
        assert temp_files(local) == []
        # Having learnt that cloning fails here, auto mode copies straight away.
        assert local.put_file(src, digest, link="auto") is True
        assert local.get_bytes(digest) == src.read_bytes()


def test_local_large_corrupt_blob_never_reaches_dest(local: LocalBlobStore, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    sparse_file(src, 20 * MiB, seed=3)
    digest = hash_file(src)
    local.put_file(src, digest)
    corrupt(local, digest, offset=17 * MiB + 5)
    dest = tmp_path / "out" / "big.bin"
    with pytest.raises(IntegrityError, match=digest):
        local.get_file(digest, dest)
    assert list(dest.parent.iterdir()) == []
    assert local.check(digest) == "corrupt"


def test_local_store_in_an_unusable_place_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    store = LocalBlobStore(blocker / "objects")
    with pytest.raises(StoreError, match="cannot create the blob store directory"):
        store.put_bytes(b"x")


def test_local_iter_digests_of_a_new_store_is_empty(tmp_path: Path) -> None:
    assert list(LocalBlobStore(tmp_path / "never-created").iter_digests()) == []


# -- fsspec ---------------------------------------------------------------------------------


@pytest.fixture
def memory() -> Iterator[FsspecBlobStore]:
    store = FsspecBlobStore(f"memory://seaway-{uuid.uuid4().hex[:12]}")
    yield store
    if store.fs.exists(store.prefix):
        store.fs.rm(store.prefix, recursive=True)


def test_fsspec_clean_temp_removes_only_stale_files(memory: FsspecBlobStore) -> None:
    digest = memory.put_bytes(b"stored")
    tmp = f"{memory.prefix}/tmp"
    memory.fs.pipe_file(f"{tmp}/stale.tmp", b"left by a killed writer")
    memory.fs.pipe_file(f"{tmp}/fresh.tmp", b"a write in progress")
    # The memory filesystem has no utime: age the file the way it records time.
    memory.fs.store[f"{tmp}/stale.tmp"].modified = datetime.now(UTC) - timedelta(hours=2)
    assert memory.clean_temp() == 1
    assert not memory.fs.exists(f"{tmp}/stale.tmp")
    assert memory.fs.exists(f"{tmp}/fresh.tmp")
    assert memory.get_bytes(digest) == b"stored"


def test_fsspec_put_leaves_no_temp_files(memory: FsspecBlobStore) -> None:
    for i in range(3):
        memory.put_bytes(f"{i}".encode())
    tmp = f"{memory.prefix}/tmp"
    assert not memory.fs.exists(tmp) or memory.fs.ls(tmp) == []


def test_open_blob_store_picks_the_implementation(tmp_path: Path) -> None:
    assert isinstance(open_blob_store(str(tmp_path / "objects")), LocalBlobStore)
    via_file_url = open_blob_store(f"file://{tmp_path / 'objects'}")
    assert isinstance(via_file_url, LocalBlobStore)
    assert via_file_url.root == tmp_path / "objects"
    assert isinstance(open_blob_store("memory://seaway-pick"), FsspecBlobStore)


def test_unknown_blob_store_scheme_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot open the blob store nosuchfs://x"):
        open_blob_store("nosuchfs://x")
