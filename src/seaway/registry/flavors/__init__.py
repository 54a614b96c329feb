"""Model flavors: how registered model files are stored, checked, loaded and predicted.

Built-in flavors:

- `sklearn` (`seaway.registry.flavors.sklearn`): scikit-learn estimators stored with skops; a
  pickle/joblib file only with `trust_pickle` and a safe scan, converted to skops on the way in.
- `onnx` (`seaway.registry.flavors.onnx`): ONNX graphs on onnxruntime's CPU provider.
- `python` (`seaway.registry.flavors.python`): a folder whose `seaway-model.yaml` names a class
  with `load()` and `predict()`, like KServe and MLServer custom runtimes.

More come from plugins: a distribution declares an entry point in the group `seaway.flavors`,
`NAME = "package.module:FlavorClass"`, where the class (or an instance) implements `Flavor`
(`base.py`): `name`, `detect`, `prepare`, `load`, `infer_schema`. A plugin cannot replace a
built-in name; one whose `name` differs from its entry point's name is refused, since the
registry stores the name and looks the flavor up by it later.

This module stays light: flavor modules, and the libraries they need, are imported when a
flavor is first asked for.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from seaway.errors import InputError, NotFound, UsageError
from seaway.registry.flavors.base import Flavor, Predictor, UnsafeModel
from seaway.registry.flavors.frames import to_frame, to_matrix

ENTRY_POINT_GROUP = "seaway.flavors"

BUILTIN: dict[str, str] = {
    "sklearn": "seaway.registry.flavors.sklearn:SklearnFlavor",
    "onnx": "seaway.registry.flavors.onnx:OnnxFlavor",
    "python": "seaway.registry.flavors.python:PythonFlavor",
}
"""Built-in flavors, in the order `detect_flavor` asks them (a python folder is decided by
its descriptor, whatever model files it also holds)."""

_REQUIRED = ("detect", "prepare", "load", "infer_schema")
_instances: dict[tuple[str, str], Flavor] = {}


def _plugins() -> dict[str, Any]:
    """Entry points of the `seaway.flavors` group, by name (looked up afresh each time, so a
    package installed while a process runs is seen)."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name not in BUILTIN}


def flavor_names() -> list[str]:
    """The built-in flavors, then the plugins' flavors in name order."""
    return [*BUILTIN, *sorted(_plugins())]


def _instantiate(name: str, value: str, loaded: Any, origin: str) -> Flavor:
    try:
        flavor = loaded() if isinstance(loaded, type) else loaded
    except Exception as exc:
        raise UsageError(
            f"flavor {name!r} ({value}{origin}) cannot be created: {type(exc).__name__}: {exc}",
            hint="fix or uninstall the plugin",
        ) from exc
    missing = [m for m in _REQUIRED if not callable(getattr(flavor, m, None))]
    if missing or not isinstance(getattr(flavor, "name", None), str):
        what = ", ".join(
            missing + ([] if isinstance(getattr(flavor, "name", None), str) else ["name"])
        )
        raise UsageError(
            f"flavor {name!r} ({value}{origin}) is not a flavor: it lacks {what}",
            hint="a flavor has a `name` and the methods detect, prepare, load and infer_schema",
        )
    if flavor.name != name:
        raise UsageError(
            f"flavor plugin {name!r} ({value}{origin}) calls itself {flavor.name!r}",
            hint="make the entry point's name and the flavor's `name` the same",
        )
    return flavor


def get_flavor(name: str) -> Flavor:
    """The flavor called `name`: a built-in, or a plugin from the `seaway.flavors` group."""
    target = BUILTIN.get(name)
    if target is not None:
        key = (name, target)
        if key not in _instances:
            module, _, attr = target.partition(":")
            cls = getattr(importlib.import_module(module), attr)
            _instances[key] = _instantiate(name, target, cls, "")
        return _instances[key]
    plugins = _plugins()
    ep = plugins.get(name)
    if ep is None:
        known = ", ".join([*BUILTIN, *sorted(plugins)])
        raise NotFound(
            f"no model flavor named {name!r}; known flavors: {known}",
            hint="pick one of those, or install the package that provides the flavor",
        )
    key = (name, ep.value)
    if key not in _instances:
        dist = getattr(ep, "dist", None)
        origin = f", from {dist.name}" if dist is not None else ""
        try:
            loaded = ep.load()
        except Exception as exc:
            raise UsageError(
                f"flavor plugin {name!r} ({ep.value}{origin}) cannot be imported: "
                f"{type(exc).__name__}: {exc}",
                hint="fix or reinstall the package that provides it",
            ) from exc
        _instances[key] = _instantiate(name, ep.value, loaded, origin)
    return _instances[key]


def detect_flavor(path: Path) -> str:
    """The flavor of a model file or folder: `python` for a folder with `seaway-model.yaml`,
    `onnx` for an ONNX file, `sklearn` for a skops or pickle file, else a plugin's that
    claims it. UsageError, asking for --flavor, when none or several match."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder", hint="check the model's path")
    if get_flavor("python").detect(path):
        return "python"
    matches = [n for n in BUILTIN if n != "python" and get_flavor(n).detect(path)]
    if not matches:
        for name in sorted(_plugins()):
            try:
                if get_flavor(name).detect(path):
                    matches.append(name)
            except UsageError:
                continue  # a broken plugin is reported when it is asked for by name
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UsageError(
            f"{path}: could be a model of several flavors ({', '.join(matches)})",
            hint="name the flavor with --flavor (or `flavor:` in seaway.yaml)",
        )
    raise UsageError(
        f"{path}: cannot tell the model's flavor from its files",
        hint=f"name it with --flavor, one of: {', '.join(flavor_names())}",
    )


__all__ = [
    "BUILTIN",
    "ENTRY_POINT_GROUP",
    "Flavor",
    "Predictor",
    "UnsafeModel",
    "detect_flavor",
    "flavor_names",
    "get_flavor",
    "to_frame",
    "to_matrix",
]
