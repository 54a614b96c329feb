"""Running a dataset's declared checks against a stored version (`seaway data check`)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from seaway.data.datasets import DatasetVersion, get_version, parse_ref, read_manifest
from seaway.errors import UsageError

if TYPE_CHECKING:
    from seaway.data.checks import CheckReport
    from seaway.project import Project

# The suffixes seaway.data.checks reads (kept here so listing them does not import duckdb).
TABULAR_SUFFIXES = (".parquet", ".pq", ".csv", ".csv.gz", ".tsv", ".tsv.gz")


def check_version(
    project: Project, ref: str, *, record: bool = True
) -> tuple[DatasetVersion, CheckReport]:
    """Run the checks seaway.yaml declares for the dataset over version `ref`'s files.

    The result is stored with the version (replacing the one from `data add`), so the
    version's check status always reflects the checks as they are declared now."""
    from seaway.data.checks import run_checks

    name, _ = parse_ref(ref)
    decl = project.spec.datasets.get(name)
    if decl is None or not decl.checks:
        raise UsageError(
            f"dataset '{name}' declares no checks in seaway.yaml",
            hint=f"add checks under datasets.{name}.checks",
        )
    version = get_version(project, ref)
    entries = [
        e for e in read_manifest(project, version) if e.path.lower().endswith(TABULAR_SUFFIXES)
    ]
    with tempfile.TemporaryDirectory(prefix="seaway-check-") as tmp:
        files = []
        for e in entries:
            target = Path(tmp) / e.path
            project.blobs.get_file(e.digest, target)
            files.append(target)
        report = run_checks(decl.checks, files, fmt=decl.format)
    if record:
        _store_report(project, version, report)
    version.check_status = report.status
    version.check_report = report.to_dict()
    return version, report


def _store_report(project: Project, version: DatasetVersion, report: CheckReport) -> None:
    from sqlalchemy import select, update
    from sqlalchemy.engine import Connection

    from seaway.store.events import record_event
    from seaway.store.schema import dataset_versions as dv
    from seaway.store.schema import datasets as ds

    def txn(conn: Connection) -> None:
        dataset_id = select(ds.c.id).where(ds.c.name == version.dataset).scalar_subquery()
        conn.execute(
            update(dv)
            .where(dv.c.dataset_id == dataset_id, dv.c.number == version.number)
            .values(check_status=report.status, check_report=report.to_dict())
        )
        record_event(
            conn, "dataset.version.checked", f"dataset:{version.ref}", {"checks": report.status}
        )

    project.metadata.run_write(txn)
