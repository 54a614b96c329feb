"""Walking workspace paths and hashing their files.

Small files are read once, hashed and (when adding) written to the blob store by the same
worker, so their bytes are read a single time; large files are hashed with BLAKE3's own
threads over a memory map and then copied or reflinked. Files whose size, mtime and inode
match the stat cache are not read at all.
"""

from __future__ import annotations

import os
import stat as stat_mod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from seaway.data.index import StatEntry
from seaway.data.tree import FileEntry
from seaway.errors import InputError, UsageError

if TYPE_CHECKING:
    from seaway.store.blobs import BlobStore

# Hashing and storing import blake3, the blob store and a thread pool inside the functions
# that use them: `data status` of an unchanged workspace needs none of them, and it must
# answer in a small fraction of a second.

# Folders that are never part of a dataset.
SKIP_DIRS = frozenset({".git", ".seaway", ".dvc", "__pycache__"})


@dataclass(frozen=True)
class Source:
    """One path given to `data add`, and where its files go in the dataset tree."""

    path: Path  # absolute
    stored: str  # as recorded: relative to the project root when inside it
    kind: str  # "file" | "dir"
    prefix: str  # prefix of its files in the tree ("" for a single folder)

    def to_dict(self) -> dict[str, str]:
        return {"path": self.stored, "kind": self.kind, "prefix": self.prefix}


class WorkFile(NamedTuple):
    abspath: str
    tree_path: str
    size: int
    mtime_ns: int
    inode: int


@dataclass
class ScanResult:
    entries: list[FileEntry]
    stats: dict[str, StatEntry]
    hashed: int = 0  # files read because the stat cache could not vouch for them
    hashed_bytes: int = 0
    stored: int = 0  # blobs newly written
    stored_bytes: int = 0
    hashed_paths: list[str] = field(default_factory=list)


def resolve_sources(paths: list[Path], root: Path, base: Path | None = None) -> list[Source]:
    """Check the paths exist and decide the tree layout (like `cp -r A B DEST`).

    Relative paths are taken from `base` (the working directory); they are recorded
    relative to the project `root` when inside it."""
    base = base or Path.cwd()
    if not paths:
        raise UsageError("no paths given", hint="seaway data add NAME PATH...")
    resolved: list[tuple[Path, str, str]] = []
    for raw in paths:
        path = (base / raw) if not raw.is_absolute() else raw
        try:
            st = path.stat()
        except FileNotFoundError:
            raise InputError(
                f"path {raw} does not exist",
                hint="check the spelling; paths are relative to the current directory",
            ) from None
        except PermissionError:
            raise InputError(f"path {raw} is not readable (permission denied)") from None
        if stat_mod.S_ISDIR(st.st_mode):
            kind = "dir"
        elif stat_mod.S_ISREG(st.st_mode):
            kind = "file"
        else:
            raise InputError(f"path {raw} is neither a regular file nor a folder")
        absolute = Path(os.path.abspath(path))
        try:
            stored = absolute.relative_to(root).as_posix()
        except ValueError:
            stored = absolute.as_posix()
        resolved.append((absolute, stored, kind))
    if len(resolved) == 1 and resolved[0][2] == "dir":
        absolute, stored, kind = resolved[0]
        return [Source(absolute, stored, kind, "")]
    sources: list[Source] = []
    seen: dict[str, Path] = {}
    for absolute, stored, kind in resolved:
        name = absolute.name
        if name in seen:
            raise UsageError(
                f"{seen[name]} and {absolute} would both be stored as '{name}' in the dataset",
                hint="add the common parent folder instead, or rename one of them",
            )
        seen[name] = absolute
        sources.append(Source(absolute, stored, kind, name))
    return sources


def sources_from_records(records: list[dict[str, str]], root: Path) -> list[Source]:
    out = []
    for r in records:
        path = Path(r["path"])
        absolute = path if path.is_absolute() else root / path
        out.append(Source(absolute, r["path"], r["kind"], r["prefix"]))
    return out


def walk(sources: list[Source], *, missing_ok: bool = False) -> list[WorkFile]:
    """Every regular file under the sources, with its stat. Symlinked files are followed."""
    files: list[WorkFile] = []
    for src in sources:
        if src.kind == "file":
            try:
                st = os.stat(src.path)
            except FileNotFoundError:
                if missing_ok:
                    continue
                raise InputError(f"path {src.stored} does not exist") from None
            files.append(WorkFile(str(src.path), src.prefix, st.st_size, st.st_mtime_ns, st.st_ino))
            continue
        if not src.path.is_dir():
            if missing_ok:
                continue
            raise InputError(f"folder {src.stored} does not exist")
        base = str(src.path)
        cut = len(base) + 1
        prefix = f"{src.prefix}/" if src.prefix else ""
        slash = os.sep == "/"
        append = files.append
        stack = [base]
        while stack:
            current = stack.pop()
            try:
                it = os.scandir(current)
            except PermissionError:
                raise InputError(f"folder {current} is not readable (permission denied)") from None
            with it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False):
                        if entry.name not in SKIP_DIRS:
                            stack.append(entry.path)
                        continue
                    if not entry.is_file():
                        continue
                    st = entry.stat()
                    path = entry.path
                    rel = path[cut:] if slash else path[cut:].replace(os.sep, "/")
                    append(WorkFile(path, prefix + rel, st.st_size, st.st_mtime_ns, st.st_ino))
    return files


def default_workers() -> int:
    return max(2, min(8, (os.cpu_count() or 2) * 2))


def hash_files(
    files: list[WorkFile],
    cache: dict[str, StatEntry],
    *,
    store: BlobStore | None = None,
    link: str = "auto",
    workers: int | None = None,
    advance: Callable[[int], None] | None = None,
    present: frozenset[str] | set[str] = frozenset(),
) -> ScanResult:
    """Digest every file (from the cache when its stat matches); store blobs when asked.

    `present` holds digests known to be in the store already (those of a recorded
    version), which spares checking each of them."""
    from concurrent.futures import ThreadPoolExecutor

    from seaway.store.blobs import LocalBlobStore
    from seaway.store.hashing import LARGE_FILE, hash_bytes, hash_file

    entries: list[FileEntry] = []
    stats: dict[str, StatEntry] = {}
    todo: list[WorkFile] = []
    for f in files:
        cached = cache.get(f.abspath)
        if (
            cached is not None
            and cached.size == f.size
            and cached.mtime_ns == f.mtime_ns
            and cached.inode == f.inode
        ):
            entries.append(FileEntry(f.tree_path, cached.digest, f.size))
            stats[f.abspath] = cached
        else:
            todo.append(f)
    result = ScanResult(entries, stats)
    if advance is not None and entries:
        advance(len(entries))
    if store is not None and entries:
        unverified = [e for e in entries if e.digest not in present]
        if unverified:
            _ensure_stored(unverified, files, store, link, result)
    if not todo:
        return result

    local = store if isinstance(store, LocalBlobStore) else None

    def work(f: WorkFile) -> tuple[WorkFile, str, bool]:
        new = False
        try:
            if f.size < LARGE_FILE and link != "hardlink":
                with open(f.abspath, "rb") as fh:
                    data = fh.read()
                digest = hash_bytes(data)
                if local is not None:
                    if not local.touch(digest):
                        local.put_bytes(data, digest)
                        new = True
                elif store is not None and not store.has(digest):
                    store.put_bytes(data, digest)
                    new = True
            else:
                digest = hash_file(f.abspath, f.size)
                # Hard links are made afterwards on one thread: linking is cheap, and
                # several threads linking into the same folders only contend in the kernel.
                if store is not None and link != "hardlink":
                    new = store.put_file(Path(f.abspath), digest, link=link)
                    if not new and local is not None:
                        local.touch(digest)
        except FileNotFoundError:
            raise InputError(
                f"{f.abspath} disappeared while it was being read",
                hint="run the command again once the files stop changing",
            ) from None
        except PermissionError:
            raise InputError(f"{f.abspath} is not readable (permission denied)") from None
        if advance is not None:
            advance(1)
        return f, digest, new

    n_workers = workers or default_workers()
    if len(todo) == 1 or n_workers == 1:
        outcomes = [work(f) for f in todo]
    else:
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            outcomes = list(pool.map(work, todo))
    if store is not None and link == "hardlink":
        outcomes = [(f, d, _link(store, f, d)) for f, d, _ in outcomes]
    for f, digest, new in outcomes:
        entries.append(FileEntry(f.tree_path, digest, f.size))
        stats[f.abspath] = StatEntry(f.size, f.mtime_ns, f.inode, digest)
        result.hashed_paths.append(f.abspath)
        result.hashed += 1
        result.hashed_bytes += f.size
        if new:
            result.stored += 1
            result.stored_bytes += f.size
    return result


def _link(store: BlobStore, f: WorkFile, digest: str) -> bool:
    from seaway.store.blobs import LocalBlobStore

    new = store.put_file(Path(f.abspath), digest, link="hardlink")
    if not new and isinstance(store, LocalBlobStore):
        store.touch(digest)
    return new


def _ensure_stored(
    entries: list[FileEntry],
    files: list[WorkFile],
    store: BlobStore,
    link: str,
    result: ScanResult,
) -> None:
    """Files vouched for by the stat cache may still be missing from the store (after a gc,
    or with a different store): store those, and refresh the others against gc."""
    from seaway.store.blobs import LocalBlobStore

    by_tree = {f.tree_path: f for f in files}
    local = store if isinstance(store, LocalBlobStore) else None
    for e in entries:
        if local is not None:
            if local.touch(e.digest):
                continue
        elif store.has(e.digest):
            continue
        f = by_tree[e.path]
        store.put_file(Path(f.abspath), e.digest, link=link)
        result.stored += 1
        result.stored_bytes += e.size
