"""Dataset trees: a flat manifest of files and the Merkle root that names it.

A manifest lists `(path, digest, size)` for every file, sorted by path, with `/` as the
separator. The tree hash is a Merkle root over the directory structure: each directory's
hash is the BLAKE3 of its sorted entries (`d|f <digest> <size> <name>` lines), so two
trees with the same content have the same hash whatever order the files were found in,
and a sub-folder that did not change keeps its hash.

The manifest is stored as one blob (JSON) rather than one blob per directory: a dataset
version is read whole by every command that uses it, and one object is one round trip on
an object store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

MANIFEST_FORMAT = 1


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str
    digest: str
    size: int


def tree_hash(entries: list[FileEntry]) -> str:
    """The Merkle root of `entries` (which need not be sorted)."""
    # children[dir] = list of (name, kind, digest, size)
    children: dict[str, list[tuple[str, str, str, int]]] = {"": []}
    for e in entries:
        parent, _, name = e.path.rpartition("/")
        if parent not in children:
            # Register the folder and its missing ancestors: each must be hashed.
            folder = parent
            while folder not in children:
                children[folder] = []
                folder = folder.rpartition("/")[0]
        children[parent].append((name, "f", e.digest, e.size))
    # Process deepest directories first so each parent sees its children's hashes.
    for directory in sorted(children, key=lambda d: d.count("/") + (1 if d else 0), reverse=True):
        if not directory:
            continue
        items = children[directory]
        digest, size = _dir_hash(items)
        parent, _, name = directory.rpartition("/")
        children.setdefault(parent, []).append((name, "d", digest, size))
    return _dir_hash(children[""])[0]


def _dir_hash(items: list[tuple[str, str, str, int]]) -> tuple[str, int]:
    from seaway.store.hashing import hash_bytes

    items.sort()
    body = "".join(f"{kind} {digest} {size} {name}\n" for name, kind, digest, size in items)
    return hash_bytes(body.encode()), sum(size for _, _, _, size in items)


def encode_manifest(entries: list[FileEntry]) -> bytes:
    ordered = sorted(entries, key=lambda e: e.path)
    doc = {
        "format": MANIFEST_FORMAT,
        "files": [[e.path, e.digest, e.size] for e in ordered],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def decode_manifest(data: bytes) -> list[FileEntry]:
    doc = json.loads(data)
    if doc.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"unknown manifest format {doc.get('format')!r}")
    return [FileEntry(p, d, s) for p, d, s in doc["files"]]
