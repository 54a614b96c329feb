"""The python flavor: a folder with seaway-model.yaml naming a predictor class."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seaway.errors import InputError
from seaway.registry.flavors import get_flavor
from seaway.registry.flavors.python import DESCRIPTOR, PACKAGE_PREFIX, PythonFlavor

PREDICTOR = '''
import json

import numpy as np

from .helpers import clip


class Threshold:
    """Churn when tenure is below a threshold read from a file of the version."""

    def load(self):
        self.threshold = json.loads((self.model_dir / "weights.json").read_text())["threshold"]

    def predict(self, data):
        return (clip(data["tenure"].to_numpy()) < self.threshold).astype(int)

    def predict_proba(self, data):
        p = 1 / (1 + np.exp(data["tenure"].to_numpy() - self.threshold))
        return np.column_stack([1 - p, p])
'''


def model_folder(root: Path, threshold: float, descriptor: str | None = None) -> Path:
    root.mkdir(parents=True)
    (root / "predictor.py").write_text(PREDICTOR)
    (root / "helpers.py").write_text("def clip(x):\n    return x.clip(0, None)\n")
    (root / "weights.json").write_text(f'{{"threshold": {threshold}}}')
    (root / DESCRIPTOR).write_text(
        descriptor
        or textwrap.dedent(
            """\
            class: predictor:Threshold
            requirements: [numpy>=1.20]
            """
        )
    )
    return root


@pytest.fixture
def flavor() -> PythonFlavor:
    found = get_flavor("python")
    assert isinstance(found, PythonFlavor)
    return found


def _modules() -> set[str]:
    return {m for m in sys.modules if m.startswith(PACKAGE_PREFIX)}


def test_prepare_load_predict(flavor: PythonFlavor, tmp_path: Path) -> None:
    source = model_folder(tmp_path / "src", 12)
    (source / "__pycache__").mkdir()
    (source / "__pycache__" / "stale.cpython-311.pyc").write_bytes(b"junk")
    before = _modules()
    staging = tmp_path / "staging"
    meta = flavor.prepare(source, staging)

    assert meta["class"] == "predictor:Threshold"
    assert meta["requirements"] == ["numpy>=1.20"]
    assert meta["input"] == "frame"
    assert meta["has_proba"] is True
    assert sorted(p.name for p in staging.iterdir()) == sorted(
        [DESCRIPTOR, "helpers.py", "predictor.py", "weights.json"]
    )
    assert _modules() == before  # the check's import is forgotten

    predictor = flavor.load(staging, meta)
    data = pd.DataFrame({"tenure": [3, 30, 11, 12], "region": ["n", "s", "e", "w"]})
    np.testing.assert_array_equal(predictor.predict(data), [1, 0, 1, 0])
    assert predictor.has_proba
    proba = predictor.predict_proba(data.to_dict("records"))  # type: ignore[attr-defined]
    assert proba.shape == (4, 2)
    # Importing wrote no bytecode into the version's folder.
    assert not list(staging.rglob("__pycache__"))


def test_two_versions_do_not_share_modules(flavor: PythonFlavor, tmp_path: Path) -> None:
    one = model_folder(tmp_path / "v1", 10)
    two = model_folder(tmp_path / "v2", 40)
    (two / "helpers.py").write_text("def clip(x):\n    return x.clip(20, None)\n")
    p1 = flavor.load(one, flavor.prepare(one, tmp_path / "s1"))
    p2 = flavor.load(two, flavor.prepare(two, tmp_path / "s2"))
    data = {"tenure": [5, 25, 50]}
    np.testing.assert_array_equal(p1.predict(data), [1, 0, 0])
    np.testing.assert_array_equal(p2.predict(data), [1, 1, 0])  # its own helpers.clip
    p2.close()  # type: ignore[attr-defined]
    np.testing.assert_array_equal(p1.predict(data), [1, 0, 0])


def test_prepare_does_not_call_load(flavor: PythonFlavor, tmp_path: Path) -> None:
    source = model_folder(tmp_path / "src", 10)
    (source / "weights.json").unlink()  # load() would fail: prepare must not call it
    meta = flavor.prepare(source, tmp_path / "staging")
    with pytest.raises(InputError, match=r"Threshold.load\(\) failed .*weights.json"):
        flavor.load(tmp_path / "staging", meta)


def test_declared_schema_and_array_input(flavor: PythonFlavor, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "model.py").write_text(
        "class Sum:\n"
        "    def load(self):\n        pass\n"
        "    def predict(self, data):\n        return data.sum(axis=1)\n"
    )
    (source / DESCRIPTOR).write_text(
        textwrap.dedent(
            """\
            class: model:Sum
            input: array
            schema:
              inputs: [{name: x, type: tensor, shape: [-1, 3]}]
              outputs: [{name: total, type: float}]
            """
        )
    )
    meta = flavor.prepare(source, tmp_path / "staging")
    predictor = flavor.load(tmp_path / "staging", meta)
    assert not predictor.has_proba
    assert not hasattr(predictor, "predict_proba")
    np.testing.assert_allclose(predictor.predict([[1, 2, 3], [4, 5, 6]]), [6, 15])
    assert flavor.infer_schema(predictor, None) == {
        "inputs": [{"name": "x", "type": "tensor", "shape": [-1, 3], "nullable": False}],
        "outputs": [{"name": "total", "type": "float", "nullable": False}],
    }


def test_schema_inferred_from_a_sample(flavor: PythonFlavor, tmp_path: Path) -> None:
    source = model_folder(tmp_path / "src", 12)
    meta = flavor.prepare(source, tmp_path / "staging")
    predictor = flavor.load(tmp_path / "staging", meta)
    sample = pd.DataFrame({"tenure": [1, 20, 40], "region": ["n", None, "s"]})
    assert flavor.infer_schema(predictor, sample) == {
        "inputs": [
            {"name": "tenure", "type": "int", "nullable": False},
            {"name": "region", "type": "string", "nullable": True},
        ],
        "outputs": [
            {"name": "prediction", "type": "int", "nullable": False},
            {"name": "probabilities", "type": "tensor", "shape": [-1, 2], "nullable": False},
        ],
    }
    assert flavor.infer_schema(predictor, None) is None


def test_unmet_requirement_is_named_on_load(flavor: PythonFlavor, tmp_path: Path) -> None:
    source = model_folder(
        tmp_path / "src",
        10,
        "class: predictor:Threshold\nrequirements: ['numpy<1', 'seaway-no-such-package']\n",
    )
    meta = flavor.prepare(source, tmp_path / "staging")  # the import itself works here
    with pytest.raises(InputError) as err:
        flavor.load(tmp_path / "staging", meta)
    message = str(err.value)
    assert "numpy<1 (installed: " in message
    assert "seaway-no-such-package (not installed)" in message


@pytest.mark.parametrize(
    ("descriptor", "expected"),
    [
        ("class: nothere:Model\n", "no module 'nothere'"),
        ("class: predictor:Missing\n", "has no 'Missing'"),
        ("class: helpers:clip\n", "is a function, not a class"),
        ("class: predictor\n", "class"),
        ("class: predictor:Threshold\nflavour: x\n", "flavour"),
        ("class: predictor:Threshold\nrequirements: ['not a requirement!!']\n", "not valid"),
        ("class: [unclosed\n", f"{DESCRIPTOR}:2: not valid YAML: expected ','"),
    ],
)
def test_bad_folders_are_input_errors(
    flavor: PythonFlavor, tmp_path: Path, descriptor: str, expected: str
) -> None:
    source = model_folder(tmp_path / "src", 10, descriptor)
    with pytest.raises(InputError) as err:
        flavor.prepare(source, tmp_path / "staging")
    assert expected in str(err.value)
    assert err.value.exit_code == 2


def test_class_without_predict(flavor: PythonFlavor, tmp_path: Path) -> None:
    source = model_folder(tmp_path / "src", 10, "class: model:Half\n")
    (source / "model.py").write_text("class Half:\n    def load(self):\n        pass\n")
    with pytest.raises(InputError, match=r"has no predict\(\)"):
        flavor.prepare(source, tmp_path / "staging")


def test_missing_descriptor_and_link_out_of_folder(flavor: PythonFlavor, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    with pytest.raises(InputError, match=f"no {DESCRIPTOR}"):
        flavor.prepare(bare, tmp_path / "s1")

    source = model_folder(tmp_path / "src", 10)
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the registry")
    (source / "data.txt").symlink_to(secret)
    with pytest.raises(InputError, match="outside the model folder"):
        flavor.prepare(source, tmp_path / "s2")
