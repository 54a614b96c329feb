"""The environment a run records is kept on disk between processes, and never read back
once a distribution was installed, upgraded or removed."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.tracking.conftest import run_python

_PRINT_ENVIRONMENT = """
import json, sys
from pathlib import Path
from seaway.tracking.environment import environment
env = environment(Path(sys.argv[1]))
print(json.dumps({"env": env, "read_metadata": "importlib.metadata" in sys.modules}))
"""


def _environment(tmp_path: Path, site: Path) -> dict[str, Any]:
    """environment(cache) in a fresh interpreter with `site` first on sys.path."""
    code = _PRINT_ENVIRONMENT.replace("sys.argv[1]", repr(str(tmp_path / "state")))
    pythonpath = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    # `python -c` puts the working directory on sys.path: one the cache does not change.
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    done = run_python(code, cwd, env={"PYTHONPATH": pythonpath})
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def _install(site: Path, name: str, version: str) -> Path:
    dist = site / f"{name}-{version}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return dist


def _uninstall(dist: Path) -> None:
    (dist / "METADATA").unlink()
    dist.rmdir()


def test_the_cached_environment_follows_installs_upgrades_and_removals(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    # xgboost is one of the distributions runs record, and is not installed here.
    first = _environment(tmp_path, site)
    assert first["read_metadata"] and "xgboost" not in first["env"]["packages"]
    assert first["env"]["packages"]["seaway"]
    again = _environment(tmp_path, site)
    assert not again["read_metadata"], "nothing changed: the answer comes from the cache"
    assert again["env"] == first["env"]

    installed = _install(site, "xgboost", "9.9")
    assert _environment(tmp_path, site)["env"]["packages"]["xgboost"] == "9.9"
    _uninstall(installed)
    upgraded = _install(site, "xgboost", "10.0")
    assert _environment(tmp_path, site)["env"]["packages"]["xgboost"] == "10.0"
    _uninstall(upgraded)
    removed = _environment(tmp_path, site)
    assert removed["read_metadata"] and removed["env"] == first["env"]


def test_an_unreadable_cache_is_recomputed_and_replaced(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "environment.json").write_text("{not json")
    first = _environment(tmp_path, site)
    assert first["read_metadata"] and first["env"]["python"].count(".") == 2
    assert not _environment(tmp_path, site)["read_metadata"]
