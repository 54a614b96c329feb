"""Finding flavors: by name, by the files, and from installed plugins (entry points)."""

from __future__ import annotations

import pickle
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from seaway.errors import InputError, NotFound, UsageError
from seaway.registry.flavors import (
    ENTRY_POINT_GROUP,
    Flavor,
    Predictor,
    detect_flavor,
    flavor_names,
    get_flavor,
)
from seaway.registry.flavors.python import DESCRIPTOR

from .conftest import to_onnx_file

TOY_MODULE = '''
import shutil
from pathlib import Path

import numpy as np


class ToyPredictor:
    flavor = "{name}"
    input_names = None
    has_proba = False

    def __init__(self, weights):
        self.weights = weights

    def predict(self, data):
        return np.asarray(data, dtype=float) @ self.weights


class ToyFlavor:
    """Weights in a text file, one per line; predicts their dot product with each row."""

    name = "{name}"

    def detect(self, path):
        return path.is_file() and path.suffix == ".toy"

    def prepare(self, source, staging, *, trust_pickle=False):
        shutil.copyfile(source, staging / "weights.toy")
        return {{"file": "weights.toy"}}

    def load(self, directory, meta):
        text = (Path(directory) / meta["file"]).read_text()
        return ToyPredictor(np.array([float(w) for w in text.split()]))

    def infer_schema(self, predictor, sample):
        return None
'''


@pytest.fixture
def install_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    """Install a flavor plugin as pip would: a module and a dist-info with entry_points.txt,
    in a folder put on sys.path. Returns the plugin's module name."""
    modules: list[str] = []

    def install(name: str, *, flavor_name: str | None = None, body: str | None = None) -> str:
        module = f"seaway_toy_{uuid.uuid4().hex[:8]}"
        site = tmp_path / f"site-{module}"
        site.mkdir()
        text = body or TOY_MODULE.format(name=flavor_name or name)
        (site / f"{module}.py").write_text(textwrap.dedent(text))
        dist = site / f"{module}-0.1.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
        (dist / "entry_points.txt").write_text(
            f"[{ENTRY_POINT_GROUP}]\n{name} = {module}:ToyFlavor\n"
        )
        monkeypatch.syspath_prepend(str(site))
        modules.append(module)
        return module

    yield install
    for module in modules:
        sys.modules.pop(module, None)


def test_builtins_are_known() -> None:
    assert flavor_names()[:3] == ["sklearn", "onnx", "python"]
    for name in ("sklearn", "onnx", "python"):
        flavor = get_flavor(name)
        assert flavor.name == name
        assert isinstance(flavor, Flavor)


def test_unknown_flavor_lists_the_known_ones() -> None:
    with pytest.raises(NotFound) as err:
        get_flavor("tensorflow")
    message = str(err.value)
    assert "'tensorflow'" in message
    assert "sklearn, onnx, python" in message
    assert err.value.exit_code == 2


def test_plugin_from_an_entry_point(install_plugin: Callable[..., str], tmp_path: Path) -> None:
    install_plugin("toy")
    assert "toy" in flavor_names()

    flavor = get_flavor("toy")
    assert isinstance(flavor, Flavor)
    source = tmp_path / "model.toy"
    source.write_text("1\n2\n0.5\n")
    assert detect_flavor(source) == "toy"

    staging = tmp_path / "staging"
    staging.mkdir()
    meta = flavor.prepare(source, staging)
    predictor = flavor.load(staging, meta)
    assert isinstance(predictor, Predictor)
    np.testing.assert_allclose(predictor.predict([[1, 1, 2], [0, 1, 0]]), [4.0, 2.0])

    with pytest.raises(NotFound, match="known flavors: sklearn, onnx, python, toy"):
        get_flavor("toys")


def test_plugin_whose_name_differs_is_refused(install_plugin: Callable[..., str]) -> None:
    install_plugin("renamed", flavor_name="something-else")
    with pytest.raises(UsageError, match="calls itself 'something-else'"):
        get_flavor("renamed")


def test_plugin_that_fails_to_import(install_plugin: Callable[..., str]) -> None:
    module = install_plugin("broken", body="raise RuntimeError('half installed')\n")
    with pytest.raises(UsageError) as err:
        get_flavor("broken")
    assert "half installed" in str(err.value)
    assert module in str(err.value)


def test_plugin_cannot_replace_a_builtin(install_plugin: Callable[..., str]) -> None:
    install_plugin("sklearn")
    assert flavor_names().count("sklearn") == 1
    assert type(get_flavor("sklearn")).__module__ == "seaway.registry.flavors.sklearn"


def test_detect_flavor(
    tmp_path: Path,
    churn_skops: Path,
    churn_pipeline: Any,
    array_classifier: Any,
    array_data: Any,
) -> None:
    x, _, _ = array_data
    assert detect_flavor(churn_skops) == "sklearn"
    extensionless = tmp_path / "model"
    extensionless.write_bytes(churn_skops.read_bytes())
    assert detect_flavor(extensionless) == "sklearn"
    pkl = tmp_path / "p" / "model.pkl"
    pkl.parent.mkdir()
    pkl.write_bytes(pickle.dumps(churn_pipeline))
    assert detect_flavor(pkl) == "sklearn"
    assert detect_flavor(pkl.parent) == "sklearn"  # a folder with one model file

    onnx_file = to_onnx_file(array_classifier, x, tmp_path / "o" / "clf.onnx", zipmap=False)
    assert detect_flavor(onnx_file) == "onnx"
    assert detect_flavor(onnx_file.parent) == "onnx"
    renamed = tmp_path / "graph.bin"
    renamed.write_bytes(onnx_file.read_bytes())
    assert detect_flavor(renamed) == "onnx"

    folder = tmp_path / "py"
    folder.mkdir()
    (folder / DESCRIPTOR).write_text("class: m:M\n")
    (folder / "extra.skops").write_bytes(churn_skops.read_bytes())
    assert detect_flavor(folder) == "python"  # the descriptor decides

    both = tmp_path / "both"
    both.mkdir()
    (both / "a.skops").write_bytes(churn_skops.read_bytes())
    (both / "b.onnx").write_bytes(onnx_file.read_bytes())
    with pytest.raises(UsageError, match=r"several flavors \(sklearn, onnx\)"):
        detect_flavor(both)

    csv = tmp_path / "data.csv"
    csv.write_text("a,b\n1,2\n")
    with pytest.raises(UsageError) as err:
        detect_flavor(csv)
    assert "--flavor" in (err.value.hint or "")
    with pytest.raises(InputError, match="no such file"):
        detect_flavor(tmp_path / "missing.onnx")
