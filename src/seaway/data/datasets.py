"""Dataset versions: add, look up, list, log and diff.

A dataset version is a content-addressed snapshot: its files' blobs and a manifest blob
live in the blob store, and one row in the metadata database names it `NAME@N`. The order
of `add` is what keeps an interrupted run harmless: blobs first, then the manifest, then
the row (one transaction), then the workspace index. Killed at any point, the store holds
at most some unreferenced blobs (removed by `data gc`), and the next `add` completes,
skipping the blobs that already arrived.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seaway._util import actor, isoformat, utcnow
from seaway.data.index import StatEntry, WorkspaceIndex, WorkspaceRecord, make_snapshot
from seaway.data.scan import (
    Source,
    WorkFile,
    hash_files,
    resolve_sources,
    sources_from_records,
    walk,
)
from seaway.data.tree import FileEntry, decode_manifest, encode_manifest, tree_hash
from seaway.errors import InputError, NotFound, UsageError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from seaway.data.checks import CheckReport
    from seaway.data.sqlite_lane import SqliteLane
    from seaway.project import Project
    from seaway.settings import DatasetSettings

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")
_HASH_PREFIX_MIN = 4


def index_for(project: Project, *, readonly: bool = False) -> WorkspaceIndex:
    return WorkspaceIndex(project.state_dir / "index.db", readonly=readonly)


@dataclass
class DatasetVersion:
    dataset: str
    number: int
    tree_hash: str
    manifest_hash: str
    n_files: int
    size: int
    sources: list[dict[str, str]]
    created_at: datetime
    author: str
    message: str | None
    check_status: str
    check_report: dict[str, Any] | None = None

    @property
    def ref(self) -> str:
        return f"{self.dataset}@{self.number}"

    def to_dict(self, *, with_checks: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "dataset": self.dataset,
            "version": self.number,
            "ref": self.ref,
            "tree_hash": self.tree_hash,
            "files": self.n_files,
            "size": self.size,
            "sources": self.sources,
            "created_at": isoformat(self.created_at),
            "author": self.author,
            "message": self.message,
            "checks": self.check_status,
        }
        if with_checks:
            out["check_report"] = self.check_report
        return out


def validate_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise UsageError(
            f"invalid dataset name {name!r}",
            hint="use letters, digits, '_', '-' and '.', starting with a letter or digit",
        )
    return name


def _row_to_version(name: str, row: Any) -> DatasetVersion:
    return DatasetVersion(
        dataset=name,
        number=row.number,
        tree_hash=row.tree_hash,
        manifest_hash=row.manifest_hash,
        n_files=row.n_files,
        size=row.size,
        sources=row.sources,
        created_at=row.created_at,
        author=row.author,
        message=row.message,
        check_status=row.check_status,
        check_report=row.check_report,
    )


def _version_query(name: str) -> Any:
    from sqlalchemy import select

    from seaway.store.schema import dataset_versions as dv
    from seaway.store.schema import datasets as ds

    return (
        select(dv)
        .join(ds, ds.c.id == dv.c.dataset_id)
        .where(ds.c.name == name)
        .order_by(dv.c.number.desc())
    )


def _dataset_exists(conn: Connection, name: str) -> bool:
    from sqlalchemy import select

    from seaway.store.schema import datasets as ds

    return conn.execute(select(ds.c.id).where(ds.c.name == name)).first() is not None


def _unknown_dataset(conn: Connection, name: str) -> NotFound:
    import difflib

    from sqlalchemy import select

    from seaway.store.schema import datasets as ds

    names = list(conn.execute(select(ds.c.name)).scalars())
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean '{close[0]}'?" if close else "`seaway data list` shows the datasets"
    return NotFound(f"unknown dataset '{name}'", hint=hint)


def parse_ref(ref: str) -> tuple[str, str | None]:
    """`NAME`, `NAME@N`, `NAME@latest` or `NAME@HASHPREFIX` → (name, version part)."""
    name, sep, version = ref.partition("@")
    if not name or (sep and not version):
        raise UsageError(
            f"bad dataset reference {ref!r}", hint="write NAME, NAME@N, NAME@latest or NAME@HASH"
        )
    return name, (version or None)


def get_version(project: Project, ref: str) -> DatasetVersion:
    name, version = parse_ref(ref)
    with project.metadata.read() as conn:
        return lookup_version(conn, name, version)


def lookup_version(conn: Connection, name: str, version: str | None) -> DatasetVersion:
    from seaway.store.schema import dataset_versions as dv

    query = _version_query(name)
    if version is None or version == "latest":
        row = conn.execute(query.limit(1)).first()
        if row is None:
            if not _dataset_exists(conn, name):
                raise _unknown_dataset(conn, name)
            raise NotFound(f"dataset '{name}' has no versions yet")
        return _row_to_version(name, row)
    if version.isdigit() and len(version) < _HASH_PREFIX_MIN + 2:
        row = conn.execute(query.where(dv.c.number == int(version))).first()
        if row is not None:
            return _row_to_version(name, row)
    elif re.fullmatch(r"[0-9a-f]+", version) and len(version) >= _HASH_PREFIX_MIN:
        rows = conn.execute(query.where(dv.c.tree_hash.startswith(version)).limit(2)).all()
        if len(rows) == 1:
            return _row_to_version(name, rows[0])
        if len(rows) > 1:
            raise UsageError(
                f"hash prefix {version!r} matches several versions of '{name}'",
                hint="give more characters of the hash",
            )
    else:
        raise UsageError(
            f"bad version {version!r} for dataset '{name}'",
            hint="a version is a number, 'latest', or at least 4 hex characters of its hash",
        )
    if not _dataset_exists(conn, name):
        raise _unknown_dataset(conn, name)
    latest = conn.execute(query.limit(1)).first()
    known = f"versions 1..{latest.number}" if latest else "no versions"
    raise NotFound(f"dataset '{name}' has no version {version} ({known})")


def read_manifest(project: Project, version: DatasetVersion) -> list[FileEntry]:
    return decode_manifest(project.blobs.get_bytes(version.manifest_hash))


# -- add --------------------------------------------------------------------------


@dataclass
class AddResult:
    version: DatasetVersion
    created: bool
    files: int
    hashed: int
    hashed_bytes: int
    stored: int
    stored_bytes: int
    duration_s: float
    check_report: CheckReport | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.version.to_dict(),
            "created": self.created,
            "hashed_files": self.hashed,
            "hashed_bytes": self.hashed_bytes,
            "stored_blobs": self.stored,
            "stored_bytes": self.stored_bytes,
            "duration_s": round(self.duration_s, 4),
            "check_report": self.check_report.to_dict() if self.check_report else None,
        }


def _declared(project: Project, name: str) -> DatasetSettings | None:
    """The dataset's declaration in seaway.yaml, or None for an ad-hoc dataset."""
    return project.settings.datasets.get(name) if project.spec_path.is_file() else None


def _declared_paths(project: Project, name: str, decl: DatasetSettings | None) -> list[Path]:
    if decl is None or not decl.paths:
        raise UsageError(
            f"no paths given and dataset '{name}' declares no path in seaway.yaml",
            hint=f"seaway data add {name} PATH..., or set datasets.{name}.path",
        )
    paths: list[Path] = []
    for pattern in decl.paths:
        if any(c in pattern for c in "*?["):
            matches = sorted(project.root.glob(pattern))
            if not matches:
                raise InputError(
                    f"datasets.{name}.path '{pattern}' in seaway.yaml matches no file",
                    hint="check the pattern; it is relative to the project root",
                )
            paths.extend(matches)
        else:
            paths.append(project.root / pattern)
    return paths


def add(
    project: Project,
    name: str,
    paths: list[Path] | None = None,
    *,
    message: str | None = None,
    link: str | None = None,
    checks: bool = True,
    workers: int | None = None,
    on_total: Callable[[int], None] | None = None,
    advance: Callable[[int], None] | None = None,
) -> AddResult:
    """Snapshot `paths` (or the dataset's declared path) as a new version of `name`."""
    started = time.perf_counter()
    validate_name(name)
    decl = _declared(project, name)
    if not paths:
        paths = _declared_paths(project, name, decl)
    sources = resolve_sources([Path(p) for p in paths], project.root)
    files = walk(sources)
    if on_total is not None:
        on_total(len(files))
    index = index_for(project)
    try:
        cache, present = _known_stats(index, name, sources, files, project.blobs.url)
        link_mode = link or (project.settings.link if project.spec_path.is_file() else "auto")
        scan = hash_files(
            files,
            cache,
            store=project.blobs,
            link=link_mode,
            workers=workers,
            advance=advance,
            present=present,
        )
        entries = scan.entries
        root_hash = tree_hash(entries)
        manifest = encode_manifest(entries)
        manifest_hash = project.blobs.put_bytes(manifest)
        source_records = [s.to_dict() for s in sources]

        lane = _open_lane(project)
        try:
            existing = _latest_if_same(project, name, root_hash, lane)
            report = None
            if existing is None and checks and decl is not None and decl.has_checks:
                report = _run_checks(project.spec.datasets[name], files)
            if existing is not None:
                version, created = existing, False
            else:
                version, created = _record_version(
                    project,
                    name,
                    root_hash=root_hash,
                    manifest_hash=manifest_hash,
                    entries=entries,
                    sources=source_records,
                    message=message,
                    report=report,
                    lane=lane,
                )
        finally:
            if lane is not None:
                lane.close()
        digests = {e.path: e.digest for e in entries}
        snapshot = make_snapshot(
            [(f.tree_path, f.size, f.mtime_ns, f.inode, digests[f.tree_path]) for f in files]
        )
        index.set_workspace(
            WorkspaceRecord(
                name,
                version.number,
                root_hash,
                manifest_hash,
                source_records,
                snapshot,
                project.blobs.url,
            )
        )
        index.update_stats({p: scan.stats[p] for p in scan.hashed_paths})
    finally:
        index.close()
    return AddResult(
        version=version,
        created=created,
        files=len(entries),
        hashed=scan.hashed,
        hashed_bytes=scan.hashed_bytes,
        stored=scan.stored,
        stored_bytes=scan.stored_bytes,
        duration_s=time.perf_counter() - started,
        check_report=report,
    )


def _known_stats(
    index: WorkspaceIndex, name: str, sources: list[Source], files: list[WorkFile], store: str
) -> tuple[dict[str, StatEntry], set[str]]:
    """Stats this workspace already hashed, and the digests known to be stored.

    The dataset's snapshot comes first: its digests belong to a recorded version, so
    their blobs are in the store. Files it does not cover are looked up in the stat cache.
    """
    cache: dict[str, StatEntry] = {}
    present: set[str] = set()
    record = index.workspace(name)
    same_sources = record is not None and record.sources == [s.to_dict() for s in sources]
    if record is not None and record.snapshot and same_sources:
        snap = record.snapshot
        for f in files:
            hit = snap.get(f.tree_path)
            if hit is not None:
                cache[f.abspath] = StatEntry._make(hit)
        if record.store == store:
            present = {v[3] for v in snap.values()}
    if len(cache) < len(files):
        cache = {**index.stat_entries(str(s.path) for s in sources), **cache}
    return cache, present


def _open_lane(project: Project) -> SqliteLane | None:
    """The standard-library path to a local SQLite metadata file, when it applies."""
    if os.environ.get("SEAWAY_SQLALCHEMY_ONLY"):
        return None
    from seaway.data.sqlite_lane import SqliteLane, lane_path

    path = lane_path(project.metadata_url)
    if path is None:
        return None
    lane = SqliteLane(path)
    if not lane.usable:
        lane.close()
        return None
    return lane


def _latest_if_same(
    project: Project, name: str, root_hash: str, lane: SqliteLane | None
) -> DatasetVersion | None:
    if lane is not None:
        found = lane.latest(name)
        if found is not None and found["tree_hash"] == root_hash:
            return DatasetVersion(dataset=name, **found)
        return None
    with project.metadata.read() as conn:
        row = conn.execute(_version_query(name).limit(1)).first()
    if row is not None and row.tree_hash == root_hash:
        return _row_to_version(name, row)
    return None


def _run_checks(decl: Any, files: list[Any]) -> CheckReport:
    from seaway.data.checks import run_checks

    return run_checks(decl.checks, [Path(f.abspath) for f in files], fmt=decl.format)


def _record_version(
    project: Project,
    name: str,
    *,
    root_hash: str,
    manifest_hash: str,
    entries: list[FileEntry],
    sources: list[dict[str, str]],
    message: str | None,
    report: CheckReport | None,
    lane: SqliteLane | None = None,
) -> tuple[DatasetVersion, bool]:
    """Record the next version of `name`; returns it and whether it was created (False when
    another process recorded the same content first)."""
    author = actor()
    check_status = report.status if report is not None else "none"
    check_dict = report.to_dict() if report is not None else None
    event = {"tree_hash": root_hash, "files": len(entries), "checks": check_status}
    values: dict[str, Any] = {
        "tree_hash": root_hash,
        "manifest_hash": manifest_hash,
        "n_files": len(entries),
        "size": sum(e.size for e in entries),
        "sources": sources,
        "message": message,
        "check_status": check_status,
        "check_report": check_dict,
    }
    if lane is not None:
        fields, created = lane.record(name, values, "dataset.version.created", event, author)
        return DatasetVersion(dataset=name, **fields), created
    return _record_version_sqlalchemy(project, name, values, event, author)


def _record_version_sqlalchemy(
    project: Project, name: str, values: dict[str, Any], event: dict[str, Any], author: str
) -> tuple[DatasetVersion, bool]:
    from sqlalchemy import func, select

    from seaway.store.events import record_event
    from seaway.store.schema import dataset_versions as dv
    from seaway.store.schema import datasets as ds

    def txn(conn: Connection) -> tuple[DatasetVersion, bool]:
        row = conn.execute(select(ds.c.id).where(ds.c.name == name).with_for_update()).first()
        if row is None:
            dataset_id = conn.execute(
                ds.insert().values(name=name, created_at=utcnow())
            ).inserted_primary_key[0]  # type: ignore[index]
        else:
            dataset_id = row.id
        latest = conn.execute(
            select(dv).where(dv.c.dataset_id == dataset_id).order_by(dv.c.number.desc()).limit(1)
        ).first()
        if latest is not None and latest.tree_hash == values["tree_hash"]:
            # Another process recorded the same content a moment ago.
            return _row_to_version(name, latest), False
        number = (
            conn.execute(
                select(func.max(dv.c.number)).where(dv.c.dataset_id == dataset_id)
            ).scalar()
            or 0
        ) + 1
        created_at = utcnow()
        conn.execute(
            dv.insert().values(
                dataset_id=dataset_id,
                number=number,
                created_at=created_at,
                author=author,
                **values,
            )
        )
        record_event(
            conn, "dataset.version.created", f"dataset:{name}@{number}", event, actor=author
        )
        version = DatasetVersion(
            dataset=name, number=number, created_at=created_at, author=author, **values
        )
        return version, True

    return project.metadata.run_write(txn)


# -- list, log ----------------------------------------------------------------


@dataclass
class DatasetSummary:
    name: str
    versions: int
    latest: DatasetVersion | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "versions": self.versions,
            "latest": self.latest.to_dict() if self.latest else None,
        }


def list_datasets(project: Project) -> list[DatasetSummary]:
    from sqlalchemy import func, select

    from seaway.store.schema import dataset_versions as dv
    from seaway.store.schema import datasets as ds

    with project.metadata.read() as conn:
        counts: dict[str, int] = dict(
            conn.execute(
                select(ds.c.name, func.count(dv.c.id))
                .select_from(ds.outerjoin(dv, dv.c.dataset_id == ds.c.id))
                .group_by(ds.c.name)
            ).all()
        )
        latest_numbers = (
            select(dv.c.dataset_id, func.max(dv.c.number).label("n"))
            .group_by(dv.c.dataset_id)
            .subquery()
        )
        rows = conn.execute(
            select(ds.c.name, dv)
            .join(dv, dv.c.dataset_id == ds.c.id)
            .join(
                latest_numbers,
                (latest_numbers.c.dataset_id == dv.c.dataset_id)
                & (latest_numbers.c.n == dv.c.number),
            )
        ).all()
    latest = {r.name: _row_to_version(r.name, r) for r in rows}
    return [DatasetSummary(n, int(counts[n]), latest.get(n)) for n in sorted(counts)]


def log(project: Project, name: str, *, limit: int | None = None) -> list[DatasetVersion]:
    with project.metadata.read() as conn:
        query = _version_query(name)
        if limit:
            query = query.limit(limit)
        rows = conn.execute(query).all()
        if not rows and not _dataset_exists(conn, name):
            raise _unknown_dataset(conn, name)
    return [_row_to_version(name, r) for r in rows]


# -- diff ---------------------------------------------------------------------


@dataclass
class FileChange:
    path: str
    change: str  # added | removed | modified
    old_size: int | None
    new_size: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "change": self.change,
            "old_size": self.old_size,
            "new_size": self.new_size,
        }


def compare_entries(old: list[FileEntry], new: list[FileEntry]) -> list[FileChange]:
    before = {e.path: e for e in old}
    after = {e.path: e for e in new}
    changes: list[FileChange] = []
    for path, e in after.items():
        prior = before.get(path)
        if prior is None:
            changes.append(FileChange(path, "added", None, e.size))
        elif prior.digest != e.digest:
            changes.append(FileChange(path, "modified", prior.size, e.size))
    for path, e in before.items():
        if path not in after:
            changes.append(FileChange(path, "removed", e.size, None))
    changes.sort(key=lambda c: c.path)
    return changes


@dataclass
class DiffResult:
    dataset: str
    old: DatasetVersion
    new: DatasetVersion
    changes: list[FileChange]

    def counts(self) -> dict[str, int]:
        out = {"added": 0, "removed": 0, "modified": 0}
        for c in self.changes:
            out[c.change] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "from": self.old.number,
            "to": self.new.number,
            "summary": self.counts(),
            "size_delta": self.new.size - self.old.size,
            "changes": [c.to_dict() for c in self.changes],
        }


def diff(project: Project, name: str, v1: str | None = None, v2: str | None = None) -> DiffResult:
    """Changes from version v1 (default: the one before v2) to v2 (default: latest)."""
    with project.metadata.read() as conn:
        new = lookup_version(conn, name, v2)
        if v1 is None:
            if new.number == 1:
                raise UsageError(
                    f"{new.ref} is the first version; there is nothing before it to compare",
                    hint=f"seaway data diff {name} V1 V2",
                )
            old = lookup_version(conn, name, str(new.number - 1))
        else:
            old = lookup_version(conn, name, v1)
    changes = (
        []
        if old.tree_hash == new.tree_hash
        else compare_entries(read_manifest(project, old), read_manifest(project, new))
    )
    return DiffResult(name, old, new, changes)


# -- status -------------------------------------------------------------------


@dataclass
class DatasetStatus:
    dataset: str
    version: int
    state: str  # unchanged | modified | missing
    changes: list[FileChange]
    missing_sources: list[str]

    def to_dict(self) -> dict[str, Any]:
        counts = {"added": 0, "removed": 0, "modified": 0}
        for c in self.changes:
            counts[c.change] += 1
        return {
            "dataset": self.dataset,
            "version": self.version,
            "state": self.state,
            "summary": counts,
            "missing_sources": self.missing_sources,
            "changes": [c.to_dict() for c in self.changes],
        }


def status(project: Project, name: str | None = None) -> list[DatasetStatus]:
    """What changed in the workspace since the version it last added. Writes nothing.

    The comparison is against the version recorded in this workspace's index (the one
    `data add` produced here); a dataset this workspace never added is compared with the
    latest version in the metadata database.
    """
    index = index_for(project, readonly=True)
    try:
        if name is not None:
            record = index.workspace(name)
            records = [record if record is not None else _record_from_store(project, name)]
        else:
            records = index.workspaces()
        out = []
        for rec in records:
            sources = sources_from_records(rec.sources, project.root)
            out.append(_status_of(project, index, rec, sources))
        return out
    finally:
        index.close()


def _record_from_store(project: Project, name: str) -> WorkspaceRecord:
    version = get_version(project, name)
    return WorkspaceRecord(
        name, version.number, version.tree_hash, version.manifest_hash, version.sources
    )


def _matches(snap: dict[str, tuple[int, int, int, str]], files: list[WorkFile]) -> bool:
    for f in files:
        hit = snap.get(f.tree_path)
        if hit is None or hit[0] != f.size or hit[1] != f.mtime_ns or hit[2] != f.inode:
            return False
    return True


def _status_of(
    project: Project, index: WorkspaceIndex, rec: WorkspaceRecord, sources: list[Source]
) -> DatasetStatus:
    missing = [s.stored for s in sources if not s.path.exists()]
    files = walk(sources, missing_ok=True)
    snap = rec.snapshot
    if snap is not None and not missing and len(files) == len(snap) and _matches(snap, files):
        return DatasetStatus(rec.dataset, rec.version, "unchanged", [], missing)
    cache = index.stat_entries(str(s.path) for s in sources)
    scan = hash_files(files, cache)
    if tree_hash(scan.entries) == rec.tree_hash:
        return DatasetStatus(rec.dataset, rec.version, "unchanged", [], missing)
    recorded = decode_manifest(project.blobs.get_bytes(rec.manifest_hash))
    changes = compare_entries(recorded, scan.entries)
    state = "missing" if missing and len(missing) == len(sources) else "modified"
    return DatasetStatus(rec.dataset, rec.version, state, changes, missing)
