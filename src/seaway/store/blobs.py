"""Content-addressed blob storage.

A blob's address is the BLAKE3 digest of its bytes; it lives at `ROOT/ab/cdef…` (two hex
characters of fan-out). Writes are atomic: the bytes go to a temporary file that is renamed
into place (local), or are uploaded as one object (object stores, where a PUT is already
all-or-nothing). Every read re-hashes and refuses content that does not match its address.

Blobs are not packed: each is one file. On a local filesystem 10,000 small files cost less
than the bookkeeping of packs, and object stores are better served by parallel PUTs; a
pack format can be added behind this interface when a remote needs it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from seaway.errors import IntegrityError, NotFound, StoreError, UsageError
from seaway.store.hashing import LARGE_FILE, hash_bytes, hash_file, is_digest

LINK_MODES = ("auto", "copy", "reflink", "hardlink")
_TMP_DIR = "tmp"
_TMP_PREFIX = ".tmp-"
_BLOB_MODE = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
_STALE_TMP_SECONDS = 3600


class BlobStore(Protocol):
    url: str

    def has(self, digest: str) -> bool: ...
    def put_bytes(self, data: bytes, digest: str | None = None) -> str: ...
    def put_file(self, src: Path, digest: str, *, link: str = "auto") -> bool: ...
    def get_bytes(self, digest: str) -> bytes: ...
    def get_file(self, digest: str, dest: Path) -> None: ...
    def iter_digests(self) -> Iterator[str]: ...
    def delete(self, digest: str) -> None: ...
    def check(self, digest: str) -> str: ...
    def size(self, digest: str) -> int: ...
    def clean_temp(self) -> int: ...


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create `path` (which must not exist) with `mode` and write all of `data`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _corrupt(digest: str, actual: str, where: str) -> IntegrityError:
    return IntegrityError(
        f"blob {digest[:12]} at {where} is corrupt: expected BLAKE3 {digest}, got {actual}",
        hint="run `seaway data verify` to list damaged blobs; re-add the data to repair",
    )


def _checked(digest: str) -> str:
    # A digest becomes a path: anything but 64 hex characters could point outside the
    # store ("../..") and make delete() remove a file it does not own.
    if not is_digest(digest):
        raise UsageError(
            f"not a BLAKE3 digest: {digest!r}", hint="a digest is 64 lowercase hex characters"
        )
    return digest


def _missing(digest: str, where: str) -> NotFound:
    return NotFound(
        f"blob {digest[:12]} is missing from {where}",
        hint="run `seaway data verify`; re-add the data or restore the store from a copy",
    )


class LocalBlobStore:
    """Blobs in a local directory, written with temp file + rename."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.url = str(self.root)
        self._tmp = self.root / _TMP_DIR
        self._made_dirs: set[str] = set()
        self._reflink_ok: bool | None = None

    def path(self, digest: str) -> Path:
        _checked(digest)
        return self.root / digest[:2] / digest[2:]

    def _ensure_dir(self, prefix: str) -> None:
        if prefix not in self._made_dirs:
            try:
                (self.root / prefix).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the blob store directory {self.root / prefix}: {exc}",
                    hint="check permissions, or set store.artifacts / SEAWAY_ARTIFACTS_URL",
                ) from exc
            self._made_dirs.add(prefix)

    def _tmp_path(self, digest: str) -> Path:
        # In the blob's own folder: on ext4, renaming across folders and chmod-ing a freshly
        # written file each cost several times the write of a 100 KiB blob.
        return self.root / digest[:2] / f"{_TMP_PREFIX}{uuid.uuid4().hex}"

    def _commit(self, tmp: Path, digest: str) -> None:
        os.replace(tmp, self.path(digest))

    def has(self, digest: str) -> bool:
        return os.path.exists(self.path(digest))

    def touch(self, digest: str) -> bool:
        """Mark an existing blob as just used, so a concurrent `gc` (which spares recent
        blobs) cannot delete it before the version that now references it is recorded.
        Returns False when the blob does not exist."""
        try:
            os.utime(self.path(digest))
            return True
        except FileNotFoundError:
            return False

    def put_bytes(self, data: bytes, digest: str | None = None) -> str:
        digest = digest or hash_bytes(data)
        if self.has(digest):
            return digest
        self._ensure_dir(digest[:2])
        tmp = self._tmp_path(digest)
        try:
            # Created read-only: the mode applies to later opens, not to this descriptor.
            _write_new(tmp, data, _BLOB_MODE)
            self._commit(tmp, digest)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return digest

    def put_file(self, src: Path, digest: str, *, link: str = "auto") -> bool:
        """Store the file `src` whose digest the caller computed; True if it was new."""
        if self.has(digest):
            return False
        self._ensure_dir(digest[:2])
        if link == "hardlink":
            # Share the inode with the workspace; the file becomes read-only so an
            # in-place edit fails instead of silently changing stored content.
            try:
                os.link(src, self.path(digest))
            except FileExistsError:
                pass
            except OSError as exc:
                raise StoreError(
                    f"cannot hardlink {src} into the blob store {self.root}: {exc.strerror or exc}",
                    hint="hardlinks need the workspace and the store on one filesystem; "
                    "use link: auto or copy",
                ) from exc
            os.chmod(src, stat.S_IMODE(os.stat(src).st_mode) & ~0o222)
            return True
        tmp = self._tmp_path(digest)
        try:
            if not (link in ("auto", "reflink") and self._reflink(src, tmp)):
                if link == "reflink":
                    raise StoreError(
                        f"the filesystem of {self.root} cannot reflink {src}",
                        hint="use link: auto or copy in the store settings",
                    )
                shutil.copyfile(src, tmp)
            os.chmod(tmp, _BLOB_MODE)
            self._commit(tmp, digest)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return True

    def _reflink(self, src: Path, dest: Path) -> bool:
        if self._reflink_ok is False:
            return False
        try:
            import fcntl

            ficlone = 0x40049409  # FICLONE from linux/fs.h
            with open(src, "rb") as s, open(dest, "wb") as d:
                fcntl.ioctl(d.fileno(), ficlone, s.fileno())
            self._reflink_ok = True
            return True
        except (OSError, ImportError) as exc:
            with contextlib.suppress(OSError):
                dest.unlink()
            if isinstance(exc, OSError) and exc.errno not in (
                errno.EOPNOTSUPP,
                errno.ENOTTY,
                errno.EXDEV,
                errno.EINVAL,
                errno.ENOSYS,
            ):
                raise
            # EXDEV says only that this destination is on another filesystem (a get_file
            # elsewhere); the store's own filesystem may still clone.
            if not (isinstance(exc, OSError) and exc.errno == errno.EXDEV):
                self._reflink_ok = False
            return False

    def get_bytes(self, digest: str) -> bytes:
        path = self.path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise _missing(digest, self.url) from None
        actual = hash_bytes(data)
        if actual != digest:
            raise _corrupt(digest, actual, str(path))
        return data

    def get_file(self, digest: str, dest: Path) -> None:
        path = self.path(digest)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise _missing(digest, self.url) from None
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            if size < LARGE_FILE:
                data = path.read_bytes()
                actual = hash_bytes(data)
                if actual != digest:
                    raise _corrupt(digest, actual, str(path))
                _write_new(tmp, data, 0o666)
            else:
                actual = hash_file(path, size)
                if actual != digest:
                    raise _corrupt(digest, actual, str(path))
                if not self._reflink(path, tmp):
                    shutil.copyfile(path, tmp)
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def iter_digests(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for prefix in os.scandir(self.root):
            if len(prefix.name) != 2 or not prefix.is_dir():
                continue
            for entry in os.scandir(prefix.path):
                digest = prefix.name + entry.name
                if is_digest(digest):
                    yield digest

    def delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(digest).unlink()

    def check(self, digest: str) -> str:
        """'ok', 'missing' or 'corrupt' after re-hashing the stored bytes."""
        path = self.path(digest)
        try:
            actual = hash_file(path)
        except FileNotFoundError:
            return "missing"
        return "ok" if actual == digest else "corrupt"

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise _missing(digest, self.url) from None

    def clean_temp(self) -> int:
        """Remove temporary files left by interrupted writes (older than an hour)."""
        removed = 0
        if not self.root.is_dir():
            return 0
        cutoff = time.time() - _STALE_TMP_SECONDS
        folders = [e.path for e in os.scandir(self.root) if e.is_dir() and len(e.name) == 2]
        if self._tmp.is_dir():
            folders.append(str(self._tmp))  # where earlier versions put them
        for folder in folders:
            for entry in os.scandir(folder):
                if folder != str(self._tmp) and not entry.name.startswith(_TMP_PREFIX):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
                        removed += 1
        return removed


class FsspecBlobStore:
    """Blobs on any fsspec filesystem (s3://, gs://, memory://, …)."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        """`storage_options` go to the fsspec filesystem (for s3: endpoint_url, key, …)."""
        try:
            from fsspec.core import url_to_fs
        except ImportError as exc:  # pragma: no cover - fsspec is a core dependency
            raise StoreError(f"fsspec is needed for {url}") from exc
        try:
            self.fs, self.prefix = url_to_fs(url, **(storage_options or {}))
        except (ImportError, ValueError) as exc:
            scheme = url.split("://", 1)[0]
            raise StoreError(
                f"cannot open the blob store {url}: {exc}",
                hint=f"install the filesystem for {scheme}:// (for s3: pip install 'seaway[s3]')",
            ) from exc
        self.prefix = self.prefix.rstrip("/")
        self.url = url
        # Object stores make a single PUT visible all at once; others need tmp + move.
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        self._atomic_put = bool({"s3", "s3a", "gs", "gcs", "az", "abfs"} & set(protocols))

    def path(self, digest: str) -> str:
        _checked(digest)
        return f"{self.prefix}/{digest[:2]}/{digest[2:]}"

    def has(self, digest: str) -> bool:
        return bool(self.fs.exists(self.path(digest)))

    def _put(self, data: bytes, digest: str) -> None:
        target = self.path(digest)
        if self._atomic_put:
            self.fs.pipe_file(target, data)
            return
        tmp = f"{self.prefix}/{_TMP_DIR}/{uuid.uuid4().hex}.tmp"
        self.fs.makedirs(f"{self.prefix}/{_TMP_DIR}", exist_ok=True)
        self.fs.makedirs(f"{self.prefix}/{digest[:2]}", exist_ok=True)
        self.fs.pipe_file(tmp, data)
        self.fs.mv(tmp, target)

    def put_bytes(self, data: bytes, digest: str | None = None) -> str:
        digest = digest or hash_bytes(data)
        if not self.has(digest):
            self._put(data, digest)
        return digest

    def put_file(self, src: Path, digest: str, *, link: str = "auto") -> bool:
        if self.has(digest):
            return False
        if self._atomic_put:
            self.fs.put_file(str(src), self.path(digest))
        else:
            self._put(Path(src).read_bytes(), digest)
        return True

    def get_bytes(self, digest: str) -> bytes:
        try:
            data = self.fs.cat_file(self.path(digest))
        except FileNotFoundError:
            raise _missing(digest, self.url) from None
        actual = hash_bytes(data)
        if actual != digest:
            raise _corrupt(digest, actual, self.path(digest))
        return bytes(data)

    def get_file(self, digest: str, dest: Path) -> None:
        data = self.get_bytes(digest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            tmp.write_bytes(data)
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def iter_digests(self) -> Iterator[str]:
        try:
            paths = self.fs.find(self.prefix)
        except FileNotFoundError:
            return
        for p in paths:
            parts = p.rstrip("/").split("/")
            if len(parts) >= 2 and len(parts[-2]) == 2:
                digest = parts[-2] + parts[-1]
                if is_digest(digest):
                    yield digest

    def delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self.path(digest))

    def check(self, digest: str) -> str:
        try:
            data = self.fs.cat_file(self.path(digest))
        except FileNotFoundError:
            return "missing"
        return "ok" if hash_bytes(data) == digest else "corrupt"

    def size(self, digest: str) -> int:
        try:
            return int(self.fs.size(self.path(digest)))
        except FileNotFoundError:
            raise _missing(digest, self.url) from None

    def clean_temp(self) -> int:
        """Remove temporary files left by interrupted writes (older than an hour).

        A younger one may belong to a write in progress in another process.
        """
        tmp_dir = f"{self.prefix}/{_TMP_DIR}"
        try:
            entries = self.fs.ls(tmp_dir, detail=False)
        except FileNotFoundError:
            return 0
        cutoff = time.time() - _STALE_TMP_SECONDS
        removed = 0
        for path in entries:
            try:
                modified = self.fs.modified(path).timestamp()
            except NotImplementedError:
                continue  # no way to tell its age: leave it rather than break a writer
            except FileNotFoundError:
                continue
            if modified < cutoff:
                with contextlib.suppress(FileNotFoundError):
                    self.fs.rm_file(path)
                    removed += 1
        return removed


def open_blob_store(url: str, **storage_options: Any) -> BlobStore:
    """The blob store at `url`: a local directory, or any fsspec URL (s3://, memory://).

    `storage_options` are passed to fsspec (ignored for a local directory).
    """
    if "://" not in url or url.startswith("file://"):
        return LocalBlobStore(url.removeprefix("file://"))
    return FsspecBlobStore(url, storage_options)
