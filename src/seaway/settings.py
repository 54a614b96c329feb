"""The few settings that fast commands need, cached so they skip validating the spec.

Validating seaway.yaml means building pydantic models for the whole format, which costs
about 0.2 s on the target machines: more than `data status` may take in all. After a
successful validation, the store settings and the dataset declarations are written to
`.seaway/settings.json` together with the BLAKE3 of seaway.yaml's bytes and seaway's
version; while both match, commands read that file instead. Any edit to seaway.yaml
changes the hash, so the next command validates it again (and reports its errors).
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seaway import __version__

if TYPE_CHECKING:
    from seaway.spec.models import ProjectSpec

CACHE_FILE = "settings.json"
_FORMAT = 1


@dataclass(frozen=True)
class DatasetSettings:
    paths: list[str]
    format: str
    has_checks: bool


@dataclass(frozen=True)
class ProjectSettings:
    name: str
    metadata: str | None
    artifacts: str | None
    link: str
    datasets: dict[str, DatasetSettings] = field(default_factory=dict)

    @classmethod
    def from_spec(cls, spec: ProjectSpec) -> ProjectSettings:
        datasets = {}
        for name, ds in spec.datasets.items():
            paths = [ds.path] if isinstance(ds.path, str) else list(ds.path or [])
            datasets[name] = DatasetSettings(paths, ds.format, bool(ds.checks))
        return cls(spec.name, spec.store.metadata, spec.store.artifacts, spec.store.link, datasets)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ProjectSettings:
        datasets = {k: DatasetSettings(**v) for k, v in doc["datasets"].items()}
        return cls(doc["name"], doc["metadata"], doc["artifacts"], doc["link"], datasets)


def _key(spec_bytes: bytes) -> str:
    from blake3 import blake3

    return blake3(spec_bytes + b"\0" + __version__.encode()).hexdigest()


def load_settings(spec_path: Path, state_dir: Path, validate: Any) -> ProjectSettings:
    """Settings for the project whose seaway.yaml is `spec_path`.

    `validate()` returns the validated ProjectSpec; it is called only on a cache miss."""
    raw = spec_path.read_bytes()
    key = _key(raw)
    cache = state_dir / CACHE_FILE
    try:
        doc = json.loads(cache.read_bytes())
        if doc.get("format") == _FORMAT and doc.get("key") == key:
            return ProjectSettings.from_dict(doc["settings"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    settings = ProjectSettings.from_spec(validate())
    _write(cache, {"format": _FORMAT, "key": key, "settings": asdict(settings)})
    return settings


def _write(path: Path, doc: dict[str, Any]) -> None:
    """Best effort: a read-only or missing state folder only costs the next validation."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
