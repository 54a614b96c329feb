"""The bundled example project (customer churn): where its files are, and its data.

In the repository the example lives in `examples/churn/`; a built wheel carries the same
files as `seaway/example/churn/` (see `[tool.hatch.build.targets.wheel.force-include]`).
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

from seaway.errors import SeawayError

_COPIED = ("seaway.yaml", "churn", "environments", "README.md")


def example_dir() -> Path:
    packaged = Path(__file__).parent / "churn"
    if (packaged / "seaway.yaml").is_file():
        return packaged
    checkout = Path(__file__).resolve().parents[3] / "examples" / "churn"
    if (checkout / "seaway.yaml").is_file():
        return checkout
    raise SeawayError(
        "the bundled example project is missing from this installation",
        hint="reinstall seaway (pip install --force-reinstall seaway)",
    )


def copy_example(dest: Path) -> list[str]:
    """Copy the example's files into `dest`; returns what was written."""
    source = example_dir()
    written = []
    for name in _COPIED:
        src = source / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.is_file():
            shutil.copyfile(src, dest / name)
        else:
            continue
        written.append(name + ("/" if src.is_dir() else ""))
    return written


def data_module(root: Path) -> ModuleType:
    """The example project's own data generator (churn/data.py under `root`)."""
    path = root / "churn" / "data.py"
    spec = importlib.util.spec_from_file_location("_seaway_example_churn_data", path)
    if spec is None or spec.loader is None:
        raise SeawayError(f"cannot load the example's data generator {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_customers(root: Path, rows: int = 5000, *, seed: int = 0, drift: float = 0.0) -> Path:
    """Write `data/customers.parquet` under the example project at `root`."""
    path: Path = data_module(root).write_customers(
        root / "data" / "customers.parquet", rows, seed=seed, drift=drift
    )
    return path
