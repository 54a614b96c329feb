"""Model versions as records: reading them back and resolving references.

A reference is `NAME` (the newest version), `NAME@N` (version N) or `NAME@ALIAS` (the
version an alias points at now). Aliases are lower-case names that start with a letter, so
`@3` is always a number and `@champion` always an alias.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from seaway._util import as_utc, isoformat
from seaway.errors import NotFound, UsageError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from seaway.data.tree import FileEntry
    from seaway.project import Project

MODEL_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
ALIAS_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
# `latest` always means the newest version, so it cannot be an alias someone moves.
RESERVED_ALIASES = frozenset({"latest"})


@dataclass
class ModelVersion:
    model_id: int
    model: str
    number: int
    digest: str
    manifest_hash: str
    flavor: str
    size: int
    n_files: int
    io_schema: dict[str, Any] | None
    metrics: dict[str, float]
    lineage: dict[str, Any]
    run_id: str | None
    author: str
    created_at: datetime
    scan_verdict: str
    scan_report: dict[str, Any] | None
    meta: dict[str, Any]
    source_digest: str | None = None
    description: str | None = None
    aliases: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.number}"

    @property
    def subject(self) -> str:
        """The audit-log subject of this version."""
        return f"model:{self.ref}"

    def files(self, project: Project) -> list[FileEntry]:
        from seaway.data.tree import decode_manifest

        return decode_manifest(project.blobs.get_bytes(self.manifest_hash))

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.number,
            "ref": self.ref,
            "digest": self.digest,
            "flavor": self.flavor,
            "size": self.size,
            "files": self.n_files,
            "schema": self.io_schema,
            "metrics": self.metrics,
            "lineage": self.lineage,
            "run": self.run_id,
            "author": self.author,
            "created_at": isoformat(self.created_at),
            "scan": self.scan_verdict,
            "aliases": self.aliases,
            "description": self.description,
            "meta": self.meta,
        }


@dataclass
class ModelSummary:
    name: str
    versions: int
    latest: int
    aliases: dict[str, int]
    created_at: datetime
    updated_at: datetime
    description: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "versions": self.versions,
            "latest": self.latest,
            "aliases": self.aliases,
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
            "description": self.description,
        }


def check_model_name(name: str) -> str:
    if not MODEL_NAME_RE.match(name):
        raise UsageError(
            f"{name!r} is not a model name",
            hint="use lower-case letters, digits, '-' and '_', starting with a letter or digit",
        )
    return name


def check_alias(alias: str) -> str:
    if not ALIAS_RE.match(alias):
        raise UsageError(
            f"{alias!r} is not an alias",
            hint="an alias is a lower-case name starting with a letter (champion, challenger)",
        )
    if alias in RESERVED_ALIASES:
        raise UsageError(f"{alias!r} is reserved: it always means the newest version")
    return alias


def parse_ref(ref: str) -> tuple[str, str | None]:
    """`NAME[@N|@ALIAS]` -> (name, selector or None)."""
    name, sep, selector = ref.strip().partition("@")
    check_model_name(name)
    if sep and not selector:
        raise UsageError(f"{ref!r}: nothing after '@'", hint="write NAME@N or NAME@ALIAS")
    if selector and not (selector.isdigit() or ALIAS_RE.match(selector)):
        raise UsageError(
            f"{ref!r}: {selector!r} is neither a version number nor an alias",
            hint="write NAME@N (churn@3) or NAME@ALIAS (churn@champion)",
        )
    return name, selector or None


def version_from_row(row: Any, model: str, aliases: list[str]) -> ModelVersion:
    return ModelVersion(
        model_id=row.model_id,
        model=model,
        number=row.number,
        digest=row.digest,
        manifest_hash=row.manifest_hash,
        flavor=row.flavor,
        size=row.size,
        n_files=row.n_files,
        io_schema=row.io_schema,
        metrics=dict(row.metrics or {}),
        lineage=dict(row.lineage or {}),
        run_id=row.run_id,
        author=row.author,
        created_at=as_utc(row.created_at),
        scan_verdict=row.scan_verdict,
        scan_report=row.scan_report,
        meta=dict(row.meta or {}),
        source_digest=row.source_digest,
        description=row.description,
        aliases=aliases,
    )


def model_row(conn: Connection, name: str) -> Any:
    """The `models` row of `name`, or NotFound naming the models there are."""
    from sqlalchemy import select

    from seaway.store.schema import models

    row = conn.execute(select(models).where(models.c.name == name)).first()
    if row is None:
        known = [r.name for r in conn.execute(select(models.c.name).order_by(models.c.name))]
        raise NotFound(
            f"no model named {name!r}",
            hint=(
                f"registered models: {', '.join(known)}"
                if known
                else "no model is registered yet; see `seaway register --help`"
            ),
        )
    return row


def aliases_of(conn: Connection, model_id: int) -> dict[int, list[str]]:
    """Version number -> its aliases, for one model."""
    from sqlalchemy import select

    from seaway.store.schema import model_aliases

    out: dict[int, list[str]] = {}
    rows = conn.execute(
        select(model_aliases.c.alias, model_aliases.c.number)
        .where(model_aliases.c.model_id == model_id)
        .order_by(model_aliases.c.alias)
    )
    for alias, number in rows:
        out.setdefault(number, []).append(alias)
    return out


def fetch_version(conn: Connection, ref: str) -> ModelVersion:
    """Resolve a reference inside an open transaction."""
    from sqlalchemy import func, select

    from seaway.store.schema import model_aliases, model_versions

    name, selector = parse_ref(ref)
    model = model_row(conn, name)
    mv = model_versions
    if selector is None or selector == "latest":
        number = conn.execute(
            select(func.max(mv.c.number)).where(mv.c.model_id == model.id)
        ).scalar()
        if number is None:
            raise NotFound(f"model {name!r} has no versions yet")
    elif selector.isdigit():
        number = int(selector)
    else:
        number = conn.execute(
            select(model_aliases.c.number).where(
                model_aliases.c.model_id == model.id, model_aliases.c.alias == selector
            )
        ).scalar()
        if number is None:
            held = sorted({a for names in aliases_of(conn, model.id).values() for a in names})
            raise NotFound(
                f"model {name!r} has no alias {selector!r}",
                hint=(
                    f"its aliases: {', '.join(held)}"
                    if held
                    else f"set one with `seaway models alias {name}@N {selector}`"
                ),
            )
    row = conn.execute(select(mv).where(mv.c.model_id == model.id, mv.c.number == number)).first()
    if row is None:
        latest = conn.execute(
            select(func.max(mv.c.number)).where(mv.c.model_id == model.id)
        ).scalar()
        raise NotFound(
            f"model {name!r} has no version {number}",
            hint=f"its versions are 1 to {latest}" if latest else "it has no versions yet",
        )
    return version_from_row(row, name, aliases_of(conn, model.id).get(number, []))


def get_version(project: Project, ref: str) -> ModelVersion:
    """The version `ref` names: `NAME` (newest), `NAME@N` or `NAME@ALIAS`."""
    with project.metadata.read() as conn:
        return fetch_version(conn, ref)


def list_versions(project: Project, name: str) -> list[ModelVersion]:
    """Every version of a model, newest first."""
    from sqlalchemy import select

    from seaway.store.schema import model_versions as mv

    with project.metadata.read() as conn:
        model = model_row(conn, check_model_name(name))
        aliases = aliases_of(conn, model.id)
        rows = conn.execute(
            select(mv).where(mv.c.model_id == model.id).order_by(mv.c.number.desc())
        )
        return [version_from_row(r, name, aliases.get(r.number, [])) for r in rows]


@dataclass(frozen=True)
class VersionIndex:
    """A model's version numbers and aliases, without the version records."""

    numbers: frozenset[int]
    aliases: dict[str, int]


def version_index(project: Project, names: Iterable[str]) -> dict[str, VersionIndex]:
    """Numbers and aliases of many models in two queries (the reconciler's plan over
    thousands of deployments); models not registered are absent from the answer."""
    from sqlalchemy import select

    from seaway.store.schema import model_aliases, model_versions, models

    wanted = sorted(set(names))
    if not wanted:
        return {}
    numbers: dict[str, set[int]] = {}
    aliases: dict[str, dict[str, int]] = {}
    with project.metadata.read() as conn:
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            rows = conn.execute(
                select(models.c.name, model_versions.c.number)
                .join(model_versions, model_versions.c.model_id == models.c.id)
                .where(models.c.name.in_(chunk))
            )
            for name, number in rows:
                numbers.setdefault(name, set()).add(int(number))
            held = conn.execute(
                select(models.c.name, model_aliases.c.alias, model_aliases.c.number)
                .join(model_aliases, model_aliases.c.model_id == models.c.id)
                .where(models.c.name.in_(chunk))
            )
            for name, alias, number in held:
                aliases.setdefault(name, {})[alias] = int(number)
    return {
        name: VersionIndex(frozenset(found), aliases.get(name, {}))
        for name, found in numbers.items()
    }


def list_models(project: Project) -> list[ModelSummary]:
    """Every registered model with its version count, newest number and aliases."""
    from sqlalchemy import func, select

    from seaway.store.schema import model_aliases, model_versions, models

    mv = model_versions
    with project.metadata.read() as conn:
        stats = {
            r.model_id: r
            for r in conn.execute(
                select(
                    mv.c.model_id,
                    func.count().label("n"),
                    func.max(mv.c.number).label("latest"),
                    func.max(mv.c.created_at).label("updated"),
                ).group_by(mv.c.model_id)
            )
        }
        aliases: dict[int, dict[str, int]] = {}
        for r in conn.execute(select(model_aliases).order_by(model_aliases.c.alias)):
            aliases.setdefault(r.model_id, {})[r.alias] = r.number
        out = []
        for m in conn.execute(select(models).order_by(models.c.name)):
            s = stats.get(m.id)
            out.append(
                ModelSummary(
                    name=m.name,
                    versions=s.n if s else 0,
                    latest=s.latest if s else 0,
                    aliases=aliases.get(m.id, {}),
                    created_at=as_utc(m.created_at),
                    updated_at=as_utc(s.updated if s else m.created_at),
                    description=m.description,
                )
            )
        return out
