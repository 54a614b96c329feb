"""Finding a project and the stores it uses.

A project is a directory holding `seaway.yaml`. It is found like git finds a repository:
walking up from the working directory, or given explicitly (`-C DIR`). The spec is parsed
only when something needs it, so fast commands (status) never pay for pydantic.
"""

from __future__ import annotations

import os
import re
import threading
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from seaway.errors import ProjectNotFound

if TYPE_CHECKING:
    from seaway.settings import ProjectSettings
    from seaway.spec.models import ProjectSpec
    from seaway.store.blobs import BlobStore
    from seaway.store.metadata import MetadataStore

SPEC_FILE = "seaway.yaml"
STATE_DIR = ".seaway"
DEFAULT_METADATA = "sqlite:///.seaway/seaway.db"
DEFAULT_ARTIFACTS = ".seaway/objects"


def find_root(start: Path | None = None) -> Path:
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / SPEC_FILE).is_file():
            return candidate
    raise ProjectNotFound(
        f"no {SPEC_FILE} in {here} or any parent directory",
        hint="run `seaway init` to create a project, or pass -C DIR",
    )


class Project:
    """A seaway project on disk: its root, spec and stores."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.spec_path = self.root / SPEC_FILE
        self.state_dir = self.root / STATE_DIR
        self._metadata_lock = threading.Lock()

    @classmethod
    def find(cls, start: Path | str | None = None) -> Project:
        if start is not None:
            start = Path(start)
            if not start.exists():
                raise ProjectNotFound(
                    f"directory {start} does not exist", hint="check the path given with -C"
                )
        return cls(find_root(start))

    def __repr__(self) -> str:
        return f"Project({str(self.root)!r})"

    @cached_property
    def spec(self) -> ProjectSpec:
        from seaway.spec import load_project

        return load_project(self.spec_path)

    @cached_property
    def settings(self) -> ProjectSettings:
        """Store settings and dataset declarations, from a cache while seaway.yaml is
        unchanged (see seaway.settings); validating the full spec is much slower."""
        from seaway.settings import load_settings

        return load_settings(self.spec_path, self.state_dir, lambda: self.spec)

    def _store_setting(self, env: str, field: str, default: str) -> str:
        value = os.environ.get(env)
        if value:
            return value
        if self.spec_path.is_file():
            configured = getattr(self.settings, field, None)
            if configured:
                return str(configured)
        return default

    @cached_property
    def metadata_url(self) -> str:
        url = self._store_setting("SEAWAY_METADATA_URL", "metadata", DEFAULT_METADATA)
        return resolve_sqlite_url(url, self.root)

    @cached_property
    def artifacts_url(self) -> str:
        url = self._store_setting("SEAWAY_ARTIFACTS_URL", "artifacts", DEFAULT_ARTIFACTS)
        if "://" in url:
            return url
        path = Path(url).expanduser()
        return str(path if path.is_absolute() else self.root / path)

    @property
    def metadata(self) -> MetadataStore:
        # One store per project even when threads (a controller's loop, an alert worker)
        # ask for it at once: cached_property stopped locking in Python 3.12.
        store = self.__dict__.get("_metadata")
        if store is None:
            with self._metadata_lock:
                store = self.__dict__.get("_metadata")
                if store is None:
                    from seaway.store.metadata import MetadataStore

                    store = self.__dict__["_metadata"] = MetadataStore(self.metadata_url)
        return store

    @cached_property
    def blobs(self) -> BlobStore:
        from seaway.store.blobs import open_blob_store

        return open_blob_store(self.artifacts_url)

    def relpath(self, path: Path) -> str:
        """A path as stored in records: relative to the root when inside the project."""
        resolved = path.resolve()
        try:
            return resolved.relative_to(self.root).as_posix()
        except ValueError:
            return resolved.as_posix()

    def close(self) -> None:
        if "_metadata" in self.__dict__:
            self.metadata.close()


def resolve_sqlite_url(url: str, root: Path) -> str:
    """Make a relative `sqlite:///x.db` path relative to the project root, not the cwd."""
    # A driver may be named too (sqlite+pysqlite:///x.db); it must resolve the same way.
    match = re.match(r"sqlite(\+\w+)?:///", url)
    if match:
        prefix, rest = url[: match.end()], url[match.end() :]
        if rest and not rest.startswith(("/", ":memory:", "file:")):
            return prefix + str(root / rest)
    return url
