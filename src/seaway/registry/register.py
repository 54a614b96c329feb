"""Registering a model version: scan, prepare with its flavor, store, record.

The order matters for "nothing is half-registered": everything that can refuse the files
(the scan, the flavor's own checks, loading them, the schema) happens on a private staging
copy before anything is stored; blobs go in next (content-addressed, so an interrupted
registration leaves at most unreferenced blobs that `seaway gc` collects); the version row
and its `model.registered` event are written last, in one transaction.

A version is content-addressed: registering the same files again (or the same step output,
recognised by `source_digest` without reading it) returns the existing version instead of
making a new number.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seaway._util import utcnow
from seaway.errors import CheckFailed, InputError
from seaway.registry.versions import ModelVersion, check_model_name, fetch_version

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from seaway.data.tree import FileEntry
    from seaway.project import Project


class UnsafeModelFile(CheckFailed):
    """The scan found code that would run on load; the files were not stored."""


@dataclass
class RegisterResult:
    version: ModelVersion
    created: bool  # False: the same content was already registered as `version`

    def to_dict(self) -> dict[str, Any]:
        return {"created": self.created, **self.version.to_dict()}


def _files_of(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file())


def _entries(root: Path) -> list[tuple[FileEntry, Path]]:
    from seaway.data.tree import FileEntry
    from seaway.store.hashing import hash_file

    out = []
    for path in _files_of(root):
        rel = path.name if root.is_file() else path.relative_to(root).as_posix()
        size = path.stat().st_size
        out.append((FileEntry(rel, hash_file(path, size), size), path))
    return out


def source_digest_of(path: Path) -> str:
    """The digest registration records for what it was handed: a file's own digest, or the
    Merkle root of a folder's files."""
    from seaway.data.tree import tree_hash

    entries = _entries(path)
    if path.is_file():
        return entries[0][0].digest
    return tree_hash([e for e, _ in entries])


def _find_existing(conn: Connection, name: str, *, source: str | None, digest: str | None) -> Any:
    from sqlalchemy import or_, select

    from seaway.store.schema import model_versions as mv
    from seaway.store.schema import models

    conditions = []
    if source is not None:
        conditions.append(mv.c.source_digest == source)
    if digest is not None:
        conditions.append(mv.c.digest == digest)
    if not conditions:
        return None
    return conn.execute(
        select(mv.c.number)
        .join(models, models.c.id == mv.c.model_id)
        .where(models.c.name == name, or_(*conditions))
        .order_by(mv.c.number)
        .limit(1)
    ).scalar()


def _refuse_unsafe(report: Any, path: Path, trust_pickle: bool) -> None:
    verdict = report.verdict.value
    if verdict == "safe":
        return
    bad = [f for f in report.findings if f.verdict.value != "safe"]
    details = "; ".join(f"{f.file}: {f.verdict.value} ({f.reason})" for f in bad[:5])
    if verdict == "suspicious" and trust_pickle:
        return
    if verdict == "dangerous":
        raise UnsafeModelFile(
            f"{path} holds code that would run when it is loaded: {details}",
            hint="the files were not stored and never loaded; re-save the model with skops "
            "or ONNX from a source you trust",
        )
    if verdict == "error":
        raise UnsafeModelFile(
            f"{path} cannot be read as its format, so it cannot be checked: {details}",
            hint="the file may be truncated or corrupt; export it again",
        )
    raise UnsafeModelFile(
        f"{path} imports code the scan does not know: {details}",
        hint="if you trust where this file comes from, register it again with --trust-pickle",
    )


def _read_sample(sample: Any) -> Any:
    if sample is None or not isinstance(sample, (str, Path)):
        return sample
    path = Path(sample)
    if not path.is_file():
        raise InputError(f"sample {path}: no such file", hint="give a Parquet or CSV file")
    if path.suffix.lower() == ".csv":
        import pyarrow.csv as pcsv

        return pcsv.read_csv(path)
    import pyarrow.parquet as pq

    return pq.read_table(path)


def _declared_schema(project: Project, name: str) -> dict[str, Any] | None:
    if not project.spec_path.is_file():
        return None
    spec = project.spec.models.get(name)
    if spec is None or spec.schema_ is None:
        return None
    return spec.schema_.model_dump(mode="json", exclude_none=True)


def _evaluation_sample(project: Project, name: str, run_id: str | None) -> Any:
    """A few rows of the model's evaluation data (seaway.yaml), without the label, to infer
    the schema from when no sample was given; None when there is none to read."""
    from seaway.errors import SeawayError

    spec = project.spec.models.get(name) if project.spec_path.is_file() else None
    if spec is None or spec.evaluation is None:
        return None
    from seaway.gates.data import resolve_table

    try:
        table = resolve_table(project, spec.evaluation.data, run_id=run_id)
    except SeawayError:
        return None
    if spec.evaluation.target in table.column_names:
        table = table.drop_columns([spec.evaluation.target])
    return table.slice(0, 100)


def _run_lineage(
    project: Project, run_ref: str, from_output: str | None
) -> tuple[dict[str, Any], dict[str, float], str]:
    from seaway.tracking.store import RunStore

    store = RunStore(project)
    try:
        run = store.get(run_ref)
    finally:
        store.close()
    steps: list[dict[str, Any]] = []
    plan_steps = _plan_steps(project, run.pipeline)
    for record in run.steps:
        step: dict[str, Any] = {
            "step": record.step,
            "status": record.status,
            "cache_key": record.cache_key,
            "outputs": sorted(record.outputs),
        }
        if record.step in plan_steps:
            step["inputs"] = plan_steps[record.step]
        steps.append(step)
    lineage = {
        "run": run.id,
        "run_seq": run.seq,
        "pipeline": run.pipeline,
        "datasets": run.lineage.get("datasets", []),
        "git": {"commit": run.git_commit, "dirty": run.git_dirty},
        "from": from_output or (run.lineage.get("register") or {}).get("from"),
        "steps": steps,
    }
    return lineage, dict(run.metrics), run.id


def _plan_steps(project: Project, pipeline: str | None) -> dict[str, dict[str, str]]:
    """Step -> its inputs (argument -> `dataset:…` or `STEP.OUTPUT`), from the spec."""
    if not pipeline or not project.spec_path.is_file():
        return {}
    spec = project.spec.pipelines.get(pipeline)
    if spec is None:
        return {}
    return {name: dict(step.inputs) for name, step in spec.steps.items()}


def _local_lineage(project: Project, path: Path) -> dict[str, Any]:
    from seaway.tracking.environment import git_state

    commit, dirty = git_state(project.root)
    return {"source": project.relpath(path), "git": {"commit": commit, "dirty": dirty}}


def register_model(
    project: Project,
    name: str,
    path: str | Path,
    *,
    flavor: str | None = None,
    run_id: str | None = None,
    trust_pickle: bool = False,
    metrics: Mapping[str, float] | None = None,
    sample: Any = None,
    description: str | None = None,
    source_digest: str | None = None,
    from_output: str | None = None,
) -> RegisterResult:
    """Register the model file or folder at `path` as the next version of `name`.

    `flavor` defaults to the model's flavor in seaway.yaml, then to what the files look
    like. `run_id` links the version to a run (its datasets, steps, git commit, and its
    metrics, which `metrics` may add to). `sample` (a table, or a Parquet/CSV path) lets the
    flavor infer the input/output schema; a schema declared in seaway.yaml wins.
    `source_digest` is what the caller already knows the input's digest to be (a step
    output), to skip re-reading it when it was registered before.
    """
    from seaway.policy.identity import authorize
    from seaway.registry.flavors import detect_flavor, get_flavor
    from seaway.registry.scan import scan_path

    check_model_name(name)
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder", hint="give the model file to register")
    identity = authorize(project, "register")
    spec = project.spec.models.get(name) if project.spec_path.is_file() else None
    flavor_name = flavor or (spec.flavor if spec else None) or detect_flavor(path)
    flav = get_flavor(flavor_name)

    source = source_digest or source_digest_of(path)
    with project.metadata.read() as conn:
        existing = _find_existing(conn, name, source=source, digest=None)
        if existing is not None:
            return RegisterResult(fetch_version(conn, f"{name}@{existing}"), created=False)

    _refuse_unsafe(scan_path(path), path, trust_pickle)

    tmp_root = project.state_dir / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="register-", dir=tmp_root))
    try:
        meta = flav.prepare(path, staging, trust_pickle=trust_pickle)
        staged_scan = scan_path(staging)
        staged_scan.path = "."  # the version's own files, not where they were staged
        lineage: dict[str, Any]
        run_metrics: dict[str, float] = {}
        resolved_run: str | None = None
        if run_id is not None:
            lineage, run_metrics, resolved_run = _run_lineage(project, run_id, from_output)
        else:
            lineage = _local_lineage(project, path)
        predictor = flav.load(staging, meta)
        if sample is None:
            sample = _evaluation_sample(project, name, resolved_run)
        schema = _declared_schema(project, name) or flav.infer_schema(
            predictor, _read_sample(sample)
        )
        entries = _entries(staging)
        if not entries:
            raise InputError(f"{path}: the {flavor_name} flavor stored no files")
        all_metrics = {**run_metrics, **{k: float(v) for k, v in (metrics or {}).items()}}
        version = _store(
            project,
            name,
            entries,
            flavor=flavor_name,
            meta=meta,
            schema=schema,
            metrics=all_metrics,
            lineage=lineage,
            run_id=resolved_run,
            scan=staged_scan,
            source=source,
            author=identity.name,
            description=description,
        )
        if version.created:
            _profile_new_version(project, version.version, predictor)
        return version
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _profile_new_version(project: Project, version: ModelVersion, predictor: Any) -> None:
    """The monitor's reference profile of a new version; a failure is a warning only."""
    import logging

    try:
        from seaway.monitor.reference import build_reference, has_reference_data

        if has_reference_data(project, version):
            build_reference(project, version.ref, predictor=predictor)
    except Exception as exc:  # the version is registered; its profile can be built later
        logging.getLogger("seaway.registry").warning(
            "%s: no reference profile for drift monitoring (%s); build one with "
            "`seaway monitor reference %s --data FILE`",
            version.ref,
            str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            version.ref,
        )


def _store(
    project: Project,
    name: str,
    entries: list[tuple[FileEntry, Path]],
    *,
    flavor: str,
    meta: dict[str, Any],
    schema: dict[str, Any] | None,
    metrics: dict[str, float],
    lineage: dict[str, Any],
    run_id: str | None,
    scan: Any,
    source: str,
    author: str,
    description: str | None,
) -> RegisterResult:
    from sqlalchemy import func, select

    from seaway.data.tree import encode_manifest, tree_hash
    from seaway.store.events import record_event
    from seaway.store.schema import model_versions, models

    blobs = project.blobs
    for entry, file in entries:
        blobs.put_file(file, entry.digest, link="copy")
    files = [e for e, _ in entries]
    manifest_hash = blobs.put_bytes(encode_manifest(files))
    digest = tree_hash(files)
    size = sum(e.size for e in files)

    def write(conn: Connection) -> RegisterResult:
        existing = _find_existing(conn, name, source=None, digest=digest)
        if existing is not None:
            return RegisterResult(fetch_version(conn, f"{name}@{existing}"), created=False)
        now = utcnow()
        model_id = conn.execute(select(models.c.id).where(models.c.name == name)).scalar()
        if model_id is None:
            pk = conn.execute(
                models.insert().values(name=name, created_at=now, description=None)
            ).inserted_primary_key
            assert pk is not None
            model_id = int(pk[0])
            record_event(conn, "model.created", f"model:{name}", None, actor=author)
        number = (
            conn.execute(
                select(func.max(model_versions.c.number)).where(
                    model_versions.c.model_id == model_id
                )
            ).scalar()
            or 0
        ) + 1
        conn.execute(
            model_versions.insert().values(
                model_id=model_id,
                number=number,
                digest=digest,
                manifest_hash=manifest_hash,
                source_digest=source,
                flavor=flavor,
                size=size,
                n_files=len(files),
                io_schema=schema,
                metrics=metrics,
                lineage=lineage,
                run_id=run_id,
                author=author,
                created_at=now,
                scan_verdict=scan.verdict.value,
                scan_report=scan.to_dict(),
                meta=meta,
                description=description,
            )
        )
        record_event(
            conn,
            "model.registered",
            f"model:{name}@{number}",
            {
                "digest": digest,
                "flavor": flavor,
                "size": size,
                "run": run_id,
                "scan": scan.verdict.value,
                "metrics": metrics,
            },
            actor=author,
        )
        return RegisterResult(fetch_version(conn, f"{name}@{number}"), created=True)

    return project.metadata.run_write(write)
