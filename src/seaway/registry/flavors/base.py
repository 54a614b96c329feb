"""The flavor interface, the predictor interface, and what the built-in flavors share.

A flavor is the one place that knows a kind of model file: whether a path looks like one
(`detect`), what a registered version stores and how it is checked first (`prepare`), how the
stored files become something that predicts (`load`), and what goes in and comes out
(`infer_schema`). The registry calls these four verbs and nothing else, so a plugin that
implements them is served, gated and monitored like a built-in one.

`prepare` is where trust is decided. It runs on the registering machine, before anything is
stored, and refuses files that could run code on load (`UnsafeModel`) unless the user asked for
exactly that and the scan agrees. What it writes into `staging` is what every later `load`
sees, so it converts where it can (a pickle becomes skops) and later loads never meet the
risky format again.

Predictors are plain objects: `predict(data)` returns a numpy array and `predict_proba` exists
only on predictors whose model has it, with `has_proba` saying so up front. They take whatever
`seaway.registry.flavors.frames` accepts (pyarrow and pandas tables, a dict of columns, a list
of row dicts, a 2-D array) so callers need not know the flavor.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from seaway.errors import CheckFailed, InputError, UsageError

if TYPE_CHECKING:
    import numpy


class UnsafeModel(CheckFailed):
    """A model file refused because loading it could run code nobody vouched for."""


@runtime_checkable
class Predictor(Protocol):
    """A loaded model version.

    `predict_proba(data) -> numpy.ndarray` of shape (n, n_classes) is present only when the
    model has it; `has_proba` says so without `hasattr`.
    """

    flavor: str
    input_names: list[str] | None
    has_proba: bool

    def predict(self, data: Any) -> numpy.ndarray: ...


@runtime_checkable
class Flavor(Protocol):
    """How one kind of model is stored, checked, loaded and described."""

    name: str

    def detect(self, path: Path) -> bool:
        """Whether this file or folder could be a model of this flavor (cheap; no loading)."""
        ...

    def prepare(self, source: Path, staging: Path, *, trust_pickle: bool = False) -> dict[str, Any]:
        """Write what must be stored into the empty folder `staging`, check that it loads,
        and return the flavor's meta (JSON-able)."""
        ...

    def load(self, directory: Path, meta: dict[str, Any]) -> Predictor:
        """Turn a folder written by `prepare` (and its meta) into a predictor."""
        ...

    def infer_schema(self, predictor: Predictor, sample: Any | None) -> dict[str, Any] | None:
        """{"inputs": [...], "outputs": [...]} in `ColumnSchema` terms, or None when unknown."""
        ...


# --- Helpers for flavors (built-in and plugins) -------------------------------------------------

PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".jbl")
SKOPS_SUFFIX = ".skops"
ONNX_SUFFIX = ".onnx"


def require_source(source: Path) -> Path:
    if not source.exists():
        raise InputError(
            f"{source}: no such file or folder", hint="check the path of the model to register"
        )
    return source


def empty_staging(staging: Path) -> Path:
    """The staging folder, created if needed; it must be empty, since all of it is stored."""
    staging.mkdir(parents=True, exist_ok=True)
    if any(staging.iterdir()):
        raise UsageError(
            f"{staging}: the staging folder is not empty",
            hint="prepare a model into a fresh, empty folder",
        )
    return staging


def visible_files(folder: Path) -> list[Path]:
    """Regular files directly in `folder`, without hidden ones (.DS_Store, .gitignore)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def is_skops_file(path: Path) -> bool:
    """A skops file is a zip archive with a `schema.json`, whatever its name."""
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as archive:
            return "schema.json" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def is_pickle_file(path: Path) -> bool:
    """A pickle by name, or by its protocol 2+ header (PROTO opcode, then the protocol)."""
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return True
    try:
        with path.open("rb") as fh:
            head = fh.read(2)
    except OSError:
        return False
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def is_onnx_file(path: Path) -> bool:
    """An ONNX model by name, or by content: a ModelProto starts with its ir_version field
    (tag 0x08), which the scanner's light protobuf walk then confirms."""
    if path.suffix.lower() == ONNX_SUFFIX:
        return True
    try:
        with path.open("rb") as fh:
            if fh.read(1) != b"\x08":
                return False
    except OSError:
        return False
    from seaway.registry.scan import scan_file

    return scan_file(path).format == "onnx"


def single_file(source: Path, matches: Any, what: str, flavor: str) -> Path:
    """The model file itself, or the one model file in a folder; InputError otherwise."""
    if source.is_file():
        return source
    found = [p for p in visible_files(source) if matches(p)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise InputError(
            f"{source}: the folder holds no {what}",
            hint=f"point at the model file itself, or pick another flavor than {flavor}",
        )
    names = ", ".join(p.name for p in found)
    raise InputError(
        f"{source}: the folder holds several {what}s ({names}); a {flavor} version has one",
        hint="point at the model file to register",
    )


def copy_file(source: Path, target: Path) -> None:
    # copyfile, not copy2: the stored file's mode and times are no part of the version.
    shutil.copyfile(source, target)


def drop_pycache(folder: Path) -> None:
    """Remove bytecode caches a check may have left; they are no part of a version."""
    for cache in sorted(folder.rglob("__pycache__"), reverse=True):
        shutil.rmtree(cache, ignore_errors=True)


__all__ = [
    "ONNX_SUFFIX",
    "PICKLE_SUFFIXES",
    "SKOPS_SUFFIX",
    "Flavor",
    "Predictor",
    "UnsafeModel",
    "copy_file",
    "drop_pycache",
    "empty_staging",
    "is_onnx_file",
    "is_pickle_file",
    "is_skops_file",
    "require_source",
    "single_file",
    "visible_files",
]
