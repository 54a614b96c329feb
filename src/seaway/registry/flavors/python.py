"""The `python` flavor: a model folder with a predictor class, as KServe and MLServer custom
runtimes have it.

The folder holds a descriptor, `seaway-model.yaml`, next to the code and any files the code
reads::

    class: predictor:ChurnModel      # MODULE:CLASS; MODULE is a .py file (or package) here
    requirements: [scikit-learn>=1.4] # optional: checked when loading, never installed
    input: frame                      # what predict() receives: frame (default), array, raw
    schema:                           # optional: the input/output schema, declared
      inputs: [{name: tenure, type: int}, {name: region, type: string}]
      outputs: [{name: prediction, type: int}]

The class is constructed with no arguments; seaway then sets `self.model_dir` (a
`pathlib.Path`, the version's materialized folder) and calls `load(self)` once. The working
directory is not changed (it is process-wide, and a gateway serves many models in one
process), so `load` opens its files as `self.model_dir / "weights.bin"`. `predict(self, data)`
receives a pandas DataFrame (`input: frame`; only the schema's input columns when a schema is
declared), a 2-D numpy array (`input: array`) or the caller's data untouched (`input: raw`),
and returns anything numpy can turn into an array. `predict_proba(self, data)`, when the class
has it, is offered as the predictor's `predict_proba`.

Each load imports the module under a package name of its own (`_seaway_model_<hex>`) whose
path is the version's folder, so two versions of one model, both with a `predictor.py`, never
share a module. Sibling modules are imported relatively (`from .helpers import x`); an
absolute `import helpers` would look on `sys.path` and is not supported. Bytecode is not
written, so a materialized folder keeps exactly the version's files.

`prepare` copies the folder (without `__pycache__`, `.git` and symlinks leading out of it),
checks the descriptor and that the module imports and the class has `load` and `predict`.
Importing runs the module's top-level code; the class is not instantiated and `load` is not
called at registration, so registering needs neither the model's weights in memory nor the
resources `load` may reach for.
"""

from __future__ import annotations

import importlib
import re
import shutil
import sys
import types
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationError

from seaway.errors import InputError, UsageError
from seaway.registry.flavors import frames, schema
from seaway.registry.flavors.base import Predictor, drop_pycache, empty_staging, require_source
from seaway.spec.models import ModelSchemaSpec
from seaway.spec.types import StrictModel

if TYPE_CHECKING:
    import numpy

DESCRIPTOR = "seaway-model.yaml"
PACKAGE_PREFIX = "_seaway_model_"
SKIPPED = frozenset({"__pycache__", ".git", ".ipynb_checkpoints", ".mypy_cache", ".pytest_cache"})

_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"
_TARGET = rf"^{_DOTTED}:{_DOTTED}$"


class PythonModelDescriptor(StrictModel):
    """`seaway-model.yaml`."""

    class_: str = Field(
        alias="class", pattern=_TARGET, description="MODULE:CLASS, the module inside the folder."
    )
    requirements: list[str] = Field(
        default_factory=list, description="PEP 508 requirements; checked on load."
    )
    input: Literal["frame", "array", "raw"] = Field(
        default="frame", description="What predict() receives."
    )
    schema_: ModelSchemaSpec | None = Field(
        default=None, alias="schema", description="The declared input/output schema."
    )


def read_descriptor(folder: Path) -> PythonModelDescriptor:
    """Read and check `seaway-model.yaml` in `folder`."""
    import yaml

    path = folder / DESCRIPTOR
    where = f"{folder.name}/{DESCRIPTOR}"
    if not path.is_file():
        raise InputError(
            f"{folder}: no {DESCRIPTOR} in the folder",
            hint=f"a python model folder names its class in {DESCRIPTOR}: "
            "`class: predictor:MyModel`",
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"{where}{line}: not valid YAML: {problem}", hint="fix the file") from exc
    if not isinstance(data, dict):
        raise InputError(
            f"{where}: expected a mapping with at least `class: MODULE:CLASS`",
            hint="see the python flavor's documentation for the keys",
        )
    return descriptor_from(data, where)


def descriptor_from(data: dict[str, Any], where: str) -> PythonModelDescriptor:
    try:
        descriptor = PythonModelDescriptor.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'top level'}: {e['msg']}" for e in exc.errors()
        )
        raise InputError(
            f"{where}: {problems}",
            hint="keys: class (MODULE:CLASS), requirements (list), input (frame, array or "
            "raw), schema ({inputs, outputs})",
        ) from exc
    for text in descriptor.requirements:
        _parse_requirement(text, where)
    return descriptor


def _parse_requirement(text: str, where: str) -> Any:
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # packaging missing: names are still checked, versions are not
        match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)", text)
        if not match:
            raise InputError(
                f"{where}: requirement {text!r} is not valid", hint="use PEP 508"
            ) from None
        return match.group(1)
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        raise InputError(
            f"{where}: requirement {text!r} is not valid ({exc})",
            hint="write requirements as pip does: name, then an optional version, "
            "e.g. scikit-learn>=1.4",
        ) from exc


def unmet_requirements(requirements: list[str]) -> list[str]:
    """The requirements this environment does not satisfy, each with what is installed."""
    from importlib.metadata import PackageNotFoundError, version

    unmet = []
    for text in requirements:
        req = _parse_requirement(text, "requirements")
        if isinstance(req, str):
            name, specifier = req, None
        else:
            if req.marker is not None and not req.marker.evaluate():
                continue
            name, specifier = req.name, req.specifier
        try:
            installed = version(name)
        except PackageNotFoundError:
            unmet.append(f"{text} (not installed)")
            continue
        if specifier and not specifier.contains(installed, prereleases=True):
            unmet.append(f"{text} (installed: {installed})")
    return unmet


def _forget(package: str) -> None:
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[name]


def import_class(folder: Path, target: str) -> tuple[type, str]:
    """Import `MODULE:CLASS` from `folder` under a package name of its own.

    Returns the class and the package name (to forget the modules on unload).
    """
    module_name, _, attr = target.partition(":")
    package = f"{PACKAGE_PREFIX}{uuid.uuid4().hex[:16]}"
    parent = types.ModuleType(package, f"seaway python model loaded from {folder.name}")
    parent.__path__ = [str(folder)]
    sys.modules[package] = parent
    previous = sys.dont_write_bytecode
    # A materialized folder holds exactly the version's files: no __pycache__ in it.
    sys.dont_write_bytecode = True
    try:
        module = importlib.import_module(f"{package}.{module_name}")
    except ModuleNotFoundError as exc:
        _forget(package)
        if exc.name and exc.name.startswith(package):
            raise InputError(
                f"{folder.name}: no module {module_name!r} in the folder "
                f"(looked for {module_name.replace('.', '/')}.py)",
                hint=f"`class:` in {DESCRIPTOR} names MODULE:CLASS with MODULE a file in the "
                "folder; import sibling modules relatively (from .helpers import x)",
            ) from exc
        raise InputError(
            f"{folder.name}: importing {module_name} needs {exc.name!r}, which is not installed",
            hint=f"install it, and list it under `requirements:` in {DESCRIPTOR}",
        ) from exc
    except Exception as exc:
        _forget(package)
        raise InputError(
            f"{folder.name}: importing {module_name} failed ({type(exc).__name__}: {exc})",
            hint="fix the module; it must import without errors",
        ) from exc
    finally:
        sys.dont_write_bytecode = previous
    found: Any = module
    for part in attr.split("."):
        found = getattr(found, part, None)
        if found is None:
            _forget(package)
            raise InputError(
                f"{folder.name}: module {module_name} has no {attr!r}",
                hint=f"check `class:` in {DESCRIPTOR}",
            )
    if not isinstance(found, type):
        _forget(package)
        raise InputError(
            f"{folder.name}: {target} is a {type(found).__name__}, not a class",
            hint="name a class with load() and predict() methods",
        )
    missing = [m for m in ("load", "predict") if not callable(getattr(found, m, None))]
    if missing:
        _forget(package)
        raise InputError(
            f"{folder.name}: class {target} has no {' and no '.join(m + '()' for m in missing)}",
            hint="a python model class defines load(self) and predict(self, data)",
        )
    return found, package


class PythonPredictor:
    """A user's predictor class behind the predictor interface."""

    flavor = "python"
    has_proba = False

    def __init__(
        self, model: Any, descriptor: PythonModelDescriptor, package: str, directory: Path
    ) -> None:
        self.model = model
        self.descriptor = descriptor
        self.package = package
        self.directory = directory
        declared = descriptor.schema_
        self.input_names: list[str] | None = (
            [c.name for c in declared.inputs]
            if declared is not None and descriptor.input == "frame"
            else None
        )

    def inputs(self, data: Any) -> Any:
        if self.descriptor.input == "frame":
            return frames.to_frame(data, self.input_names)
        if self.descriptor.input == "array":
            return frames.to_matrix(data)
        return data

    def predict(self, data: Any) -> numpy.ndarray:
        import numpy as np

        return np.asarray(self.model.predict(self.inputs(data)))

    def close(self) -> None:
        """Forget the imported modules, so an unloaded version's memory can be freed."""
        unload = getattr(self.model, "unload", None)
        if callable(unload):
            unload()
        _forget(self.package)

    def __repr__(self) -> str:
        return f"<python predictor {self.descriptor.class_}>"


class PythonProbaPredictor(PythonPredictor):
    """A user's class with predict_proba."""

    has_proba = True

    def predict_proba(self, data: Any) -> numpy.ndarray:
        import numpy as np

        return np.asarray(self.model.predict_proba(self.inputs(data)))


def _copy_folder(source: Path, staging: Path) -> None:
    root = source.resolve()
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if any(part in SKIPPED for part in rel.parts) or path.suffix in (".pyc", ".pyo"):
            continue
        if path.is_symlink():
            real = path.resolve()
            if not real.is_relative_to(root):
                raise InputError(
                    f"{source.name}/{rel.as_posix()}: a link to {real}, outside the model folder",
                    hint="copy the file into the folder; a version holds only its own files",
                )
        target = staging / rel
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


class PythonFlavor:
    """A folder with `seaway-model.yaml` naming a predictor class."""

    name = "python"

    def detect(self, path: Path) -> bool:
        return path.is_dir() and (path / DESCRIPTOR).is_file()

    def prepare(self, source: Path, staging: Path, *, trust_pickle: bool = False) -> dict[str, Any]:
        source = require_source(Path(source))
        if not source.is_dir():
            raise InputError(
                f"{source}: a python model is a folder, not a file",
                hint=f"put the module and a {DESCRIPTOR} naming its class in a folder",
            )
        descriptor = read_descriptor(source)
        staging = empty_staging(Path(staging))
        _copy_folder(source, staging)
        try:
            cls, package = import_class(staging.resolve(), descriptor.class_)
        except InputError as exc:
            unmet = unmet_requirements(descriptor.requirements)
            if unmet:
                exc.message += f"; requirements not met here: {', '.join(unmet)}"
            raise
        finally:
            drop_pycache(staging)
        # The import was only a check: the registered version is loaded from its own copy.
        _forget(package)
        return {
            "descriptor": DESCRIPTOR,
            "class": descriptor.class_,
            "requirements": list(descriptor.requirements),
            "input": descriptor.input,
            "schema": (
                descriptor.schema_.model_dump(exclude_none=True) if descriptor.schema_ else None
            ),
            "has_proba": callable(getattr(cls, "predict_proba", None)),
            "input_names": (
                [c.name for c in descriptor.schema_.inputs]
                if descriptor.schema_ is not None and descriptor.input == "frame"
                else None
            ),
        }

    def load(self, directory: Path, meta: dict[str, Any]) -> Predictor:
        directory = Path(directory).resolve()
        if "class" in meta:
            data: dict[str, Any] = {
                k: meta[k] for k in ("class", "requirements", "input", "schema") if k in meta
            }
            if data.get("schema") is None:
                data.pop("schema", None)
            descriptor = descriptor_from(data, f"{directory.name} (meta)")
        else:
            descriptor = read_descriptor(directory)
        unmet = unmet_requirements(descriptor.requirements)
        if unmet:
            raise InputError(
                f"python model {descriptor.class_}: requirements not met here: {', '.join(unmet)}",
                hint="install them in the environment that loads the model: pip install "
                + " ".join(f"'{r}'" for r in descriptor.requirements),
            )
        cls, package = import_class(directory, descriptor.class_)
        try:
            model = cls()
        except Exception as exc:
            _forget(package)
            raise InputError(
                f"{descriptor.class_}(): constructing the model failed "
                f"({type(exc).__name__}: {exc})",
                hint="the class must be constructible with no arguments; load files in load()",
            ) from exc
        model.model_dir = directory
        try:
            model.load()
        except Exception as exc:
            _forget(package)
            raise InputError(
                f"{descriptor.class_}.load() failed ({type(exc).__name__}: {exc})",
                hint="read files relative to self.model_dir, the version's folder",
            ) from exc
        kind = (
            PythonProbaPredictor
            if callable(getattr(model, "predict_proba", None))
            else (PythonPredictor)
        )
        return kind(model, descriptor, package, directory)

    def infer_schema(self, predictor: Predictor, sample: Any | None) -> dict[str, Any] | None:
        if not isinstance(predictor, PythonPredictor):
            raise UsageError(f"the python flavor cannot describe a {predictor.flavor} predictor")
        declared = predictor.descriptor.schema_
        if declared is not None and declared.outputs:
            return declared.model_dump(exclude_none=True)
        if sample is None:
            return declared.model_dump(exclude_none=True) if declared is not None else None
        rows = schema.head(sample)
        model_input = predictor.inputs(rows)
        if declared is not None:
            inputs = declared.model_dump(exclude_none=True)["inputs"]
        elif predictor.descriptor.input == "array":
            inputs = [schema.tensor_input("input", model_input.shape[1])]
        else:
            inputs = schema.frame_columns(frames.to_frame(model_input))
        try:
            outputs = [schema.array_column("prediction", predictor.predict(rows))]
            if isinstance(predictor, PythonProbaPredictor):
                outputs.append(schema.array_column("probabilities", predictor.predict_proba(rows)))
        except Exception as exc:
            raise InputError(
                f"{predictor.descriptor.class_}: predicting on the sample failed "
                f"({type(exc).__name__}: {exc})",
                hint="declare the schema under `schema:` in the descriptor, or fix predict()",
            ) from exc
        return {"inputs": inputs, "outputs": outputs}


__all__ = [
    "DESCRIPTOR",
    "PythonFlavor",
    "PythonModelDescriptor",
    "PythonPredictor",
    "PythonProbaPredictor",
    "import_class",
    "read_descriptor",
    "unmet_requirements",
]
