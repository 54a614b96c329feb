"""Artifacts of runs: putting files and folders into the blob store, and reading them back
as a list of files (for exports and checkouts)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from seaway.errors import InputError
from seaway.tracking.records import ArtifactRecord

if TYPE_CHECKING:
    from seaway.project import Project


class ArtifactFile(NamedTuple):
    path: str  # inside the artifact: "" for a single-file artifact
    digest: str
    size: int


def store_artifact(project: Project, path: Path, name: str | None = None) -> ArtifactRecord:
    """Put a file (one blob) or a folder (its files and a manifest blob, as dataset versions
    are stored) into the project's blob store; the record to log for it."""
    from seaway.store.hashing import LARGE_FILE, hash_file, read_and_hash

    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputError(f"artifact path {path} does not exist") from None
    blobs = project.blobs
    artifact_name = name or path.resolve().name
    if path.is_dir():
        from seaway.data.scan import Source, hash_files, walk
        from seaway.data.tree import encode_manifest

        source = Source(path.resolve(), str(path), "dir", "")
        scanned = hash_files(walk([source]), {}, store=blobs)
        digest = blobs.put_bytes(encode_manifest(scanned.entries))
        return ArtifactRecord(artifact_name, digest, sum(e.size for e in scanned.entries), "dir")
    if not path.is_file():
        raise InputError(f"artifact path {path} is neither a file nor a folder")
    if st.st_size < LARGE_FILE:
        data, digest = read_and_hash(path)
        blobs.put_bytes(data, digest)
    else:
        digest = hash_file(path, st.st_size)
        blobs.put_file(path, digest)
    return ArtifactRecord(artifact_name, digest, st.st_size, "file")


def artifact_files(project: Project, artifact: ArtifactRecord) -> list[ArtifactFile]:
    """The files of an artifact: one for a file, the manifest's entries for a folder.

    A `model` may be either; a manifest's own size never equals the total size recorded for
    the files it lists (in practice), while a single blob's size always does."""
    from seaway.data.tree import decode_manifest

    is_folder = artifact.kind == "dir" or (
        artifact.kind == "model" and project.blobs.size(artifact.digest) != artifact.size
    )
    if not is_folder:
        return [ArtifactFile("", artifact.digest, artifact.size)]
    entries = decode_manifest(project.blobs.get_bytes(artifact.digest))
    return [ArtifactFile(e.path, e.digest, e.size) for e in entries]
