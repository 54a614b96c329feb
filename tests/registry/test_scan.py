"""The static model-file scan: real files, crafted attacks, damaged files, the CLI."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import pickle
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from seaway.errors import InputError
from seaway.registry.scan import (
    FileFinding,
    Verdict,
    classify_global,
    scan_bytes,
    scan_file,
    scan_path,
)

MARKER = "seaway-scan-was-executed"


class RunsCommand:
    """Pickles to os.system(command): loading it would run the command."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (self.command,))


class Custom:
    """A user's own class: not on any list."""

    def __init__(self) -> None:
        self.weights = [1.0, 2.0]


def malicious(tmp_path: Path, protocol: int = pickle.DEFAULT_PROTOCOL) -> tuple[bytes, Path]:
    marker = tmp_path / MARKER
    return pickle.dumps(RunsCommand(f"touch {marker}"), protocol=protocol), marker


def names(finding: FileFinding, verdict: Verdict | None = None) -> set[str]:
    return {g.qualname for g in finding.globals if verdict is None or g.verdict is verdict}


@pytest.fixture(scope="module")
def model() -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    y = (x[:, 0] > 0).astype(int)
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)


# --- Real model files -------------------------------------------------------------------------


def test_sklearn_pickle_is_safe(tmp_path: Path, model: Any) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(model))
    finding = scan_file(path)
    # Decision: scikit-learn estimators and numpy reconstruction are on the allow-list, so a
    # plain scikit-learn model scans as safe.
    assert finding.verdict is Verdict.SAFE, finding.reason
    assert finding.format == "pickle"
    assert "sklearn.linear_model._logistic.LogisticRegression" in names(finding)
    assert finding.calls["REDUCE"] > 0
    assert all(g.offsets for g in finding.globals)


def test_sklearn_joblib_is_safe(tmp_path: Path, model: Any) -> None:
    import joblib

    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    finding = scan_file(path)
    assert finding.verdict is Verdict.SAFE, finding.reason
    assert finding.format == "joblib"
    assert "joblib.numpy_pickle.NumpyArrayWrapper" in names(finding)


@pytest.mark.parametrize("compress", [3, ("gzip", 3), ("bz2", 3), ("lzma", 3), ("xz", 3)])
def test_compressed_joblib_is_read_as_a_stream(tmp_path: Path, model: Any, compress: Any) -> None:
    import joblib

    path = tmp_path / "model.joblib"
    joblib.dump(model, path, compress=compress)
    finding = scan_file(path)
    assert finding.verdict is Verdict.SAFE, finding.reason
    assert finding.format == "joblib"
    expected = "zlib" if compress == 3 else compress[0]
    assert finding.compression == expected
    assert "sklearn.linear_model._logistic.LogisticRegression" in names(finding)


def test_joblib_arrays_of_every_layout_are_stepped_over(tmp_path: Path) -> None:
    import joblib

    data = {
        "big": np.arange(20000.0).reshape(100, 200),
        "fortran": np.asfortranarray(np.ones((7, 3))),
        "text": np.array(["a", "bcd"]),
        "bytes": np.array([b"x", b"yz"]),
        "when": np.array(["2020-01-01"], dtype="datetime64[s]"),
        "struct": np.zeros(3, dtype=[("a", "f8"), ("b", "i4")]),
        "empty": np.empty((0, 5)),
        "scalar": np.array(5),
        "objects": np.array([1, "x", None], dtype=object),
        "tail": [1, 2, 3],
    }
    for protocol in (2, 3, 4, 5):
        path = tmp_path / f"data{protocol}.joblib"
        joblib.dump(data, path, protocol=protocol)
        finding = scan_file(path)
        assert finding.verdict is Verdict.SAFE, (protocol, finding.reason)
        assert not finding.problems


# --- Attacks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_malicious_pickle_is_dangerous_and_never_runs(tmp_path: Path, protocol: int) -> None:
    data, marker = malicious(tmp_path, protocol)
    path = tmp_path / "model.pkl"
    path.write_bytes(data)
    finding = scan_file(path)
    assert finding.verdict is Verdict.DANGEROUS
    assert any(n.endswith(".system") for n in names(finding, Verdict.DANGEROUS))
    assert "on load" in finding.reason
    assert finding.calls.get("REDUCE") == 1
    assert not marker.exists()


def test_malicious_pickle_inside_a_zip_as_data_pkl(tmp_path: Path) -> None:
    data, marker = malicious(tmp_path)
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data)
        archive.writestr("archive/data/0", b"\x80\x04raw tensor bytes, never parsed")
        archive.writestr("archive/version", "3\n")
    finding = scan_file(path)
    assert finding.format == "pytorch"
    assert finding.verdict is Verdict.DANGEROUS
    [ref] = [g for g in finding.globals if g.verdict is Verdict.DANGEROUS]
    assert ref.member == "archive/data.pkl"
    assert finding.members == ["archive/data.pkl"]
    assert not marker.exists()


def test_stack_global_through_the_memo(tmp_path: Path) -> None:
    # PROTO 4; push "os" and "system", memoize both, drop them, fetch them back from the
    # memo, then STACK_GLOBAL; call it with one argument; STOP.
    marker = tmp_path / MARKER

    def unicode(text: str) -> bytes:
        raw = text.encode()
        return b"\x8c" + bytes([len(raw)]) + raw

    data = (
        b"\x80\x04"
        + unicode("os")
        + b"\x94"
        + unicode("system")
        + b"\x94"
        + b"00"
        + b"h\x00h\x01\x93"
        + unicode(f"touch {marker}")
        + b"\x85R."
    )
    finding = scan_bytes(data, "model.pkl")
    assert finding.verdict is Verdict.DANGEROUS
    [ref] = finding.globals
    assert (ref.qualname, ref.opcode) == ("os.system", "STACK_GLOBAL")
    assert ref.offsets == [data.index(b"\x93")]
    assert not marker.exists()


def test_stack_global_with_a_computed_name_is_dangerous() -> None:
    # The module name is the result of a call, not a string constant.
    data = b"\x80\x04cbuiltins\nstr\n)R\x8c\x04name\x93."
    finding = scan_bytes(data, "x.pkl")
    assert finding.verdict is Verdict.DANGEROUS
    assert "?.?" in names(finding)


def test_protocol_0_global_is_found_without_a_pickle_extension(tmp_path: Path) -> None:
    marker = tmp_path / MARKER
    data = f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()
    path = tmp_path / "weights.bin"
    path.write_bytes(data)
    finding = scan_file(path)
    assert finding.format == "pickle"
    assert finding.verdict is Verdict.DANGEROUS
    [ref] = finding.globals
    assert (ref.qualname, ref.opcode, ref.offsets) == ("os.system", "GLOBAL", [0])
    assert not marker.exists()


def test_inst_opcode_and_py2_builtins(tmp_path: Path) -> None:
    finding = scan_bytes(b"(S'ls'\nios\nsystem\n.", "x.pkl")
    assert finding.verdict is Verdict.DANGEROUS
    assert finding.calls == {"INST": 1}
    # Protocol 2 writes Python 2 names, which pickle maps to Python 3 ones on load.
    safe = pickle.dumps([range(3), {1, 2}, 3 + 4j], protocol=2)
    assert scan_bytes(safe, "y.pkl").verdict is Verdict.SAFE


def test_dangerous_second_pickle_in_a_legacy_stream(tmp_path: Path) -> None:
    data, marker = malicious(tmp_path, 2)
    finding = scan_bytes(pickle.dumps(119547037146038801333356, protocol=2) + data, "old.pt")
    assert finding.verdict is Verdict.DANGEROUS
    assert not marker.exists()


def test_compressed_malicious_pickle(tmp_path: Path) -> None:
    data, marker = malicious(tmp_path)
    for name, packed in [
        ("m.joblib", zlib.compress(data)),
        ("m.pkl.gz", gzip.compress(data)),
        ("m.pkl.bz2", bz2.compress(data)),
        ("m.pkl.xz", lzma.compress(data)),
    ]:
        finding = scan_bytes(packed, name)
        assert finding.verdict is Verdict.DANGEROUS, name
        assert finding.compression is not None
    assert not marker.exists()


def test_custom_class_is_suspicious(tmp_path: Path) -> None:
    finding = scan_bytes(pickle.dumps(Custom()), "model.pkl")
    assert finding.verdict is Verdict.SUSPICIOUS
    assert names(finding, Verdict.SUSPICIOUS) == {f"{__name__}.Custom"}
    assert "trust" in finding.reason


def test_extension_opcode_is_suspicious() -> None:
    finding = scan_bytes(b"\x80\x02\x82\x01.", "x.pkl")
    assert finding.verdict is Verdict.SUSPICIOUS


# --- Damaged files ----------------------------------------------------------------------------


def test_truncated_pickle_is_an_error(tmp_path: Path, model: Any) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(model)[:-40])
    finding = scan_file(path)
    assert finding.verdict is Verdict.ERROR
    assert "truncated" in finding.reason


def test_truncated_malicious_pickle_stays_dangerous(tmp_path: Path) -> None:
    data, marker = malicious(tmp_path)
    finding = scan_bytes(data[:-1], "model.pkl")
    assert finding.verdict is Verdict.DANGEROUS
    assert finding.problems
    assert not marker.exists()


def test_corrupt_files_are_errors(tmp_path: Path, model: Any) -> None:
    import joblib

    assert scan_bytes(b"\x80\x04\xff\xfe garbage", "model.pkl").verdict is Verdict.ERROR
    assert scan_bytes(b"not a pickle at all", "model.pkl").verdict is Verdict.ERROR
    path = tmp_path / "model.joblib"
    joblib.dump(model, path, compress=3)
    finding = scan_bytes(path.read_bytes()[:200], "model.joblib")
    assert finding.verdict is Verdict.ERROR
    assert finding.compression == "zlib"
    with zipfile.ZipFile(tmp_path / "m.pt", "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(model)[:-10])
    finding = scan_file(tmp_path / "m.pt")
    assert finding.verdict is Verdict.ERROR
    assert finding.problems[0].startswith("archive/data.pkl: truncated")
    assert scan_bytes(b"PK\x03\x04 not really a zip", "m.zip").verdict is Verdict.ERROR


def test_memo_read_before_write_is_an_error() -> None:
    assert scan_bytes(b"\x80\x04h\x05.", "x.pkl").verdict is Verdict.ERROR


# --- Other formats ----------------------------------------------------------------------------


def test_skops_file(tmp_path: Path, model: Any) -> None:
    import skops.io as sio

    path = tmp_path / "model.skops"
    sio.dump(model, path)
    finding = scan_file(path)
    assert finding.format == "skops"
    assert finding.verdict is Verdict.SAFE, finding.reason
    assert finding.untrusted_types == []
    assert "sklearn.pipeline.Pipeline" in names(finding)


def test_skops_file_with_an_untrusted_type(tmp_path: Path) -> None:
    import skops.io as sio

    path = tmp_path / "custom.skops"
    sio.dump({"obj": Custom()}, path)
    finding = scan_file(path)
    assert finding.verdict is Verdict.SUSPICIOUS
    assert finding.untrusted_types == [f"{__name__}.Custom"]


def test_skops_schema_naming_a_dangerous_function(tmp_path: Path) -> None:
    schema = {
        "__class__": "dict",
        "__module__": "builtins",
        "__loader__": "DictNode",
        "content": {"f": {"__class__": "system", "__module__": "os", "__loader__": "FunctionNode"}},
        "protocol": 2,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("schema.json", json.dumps(schema))
    finding = scan_bytes(buffer.getvalue(), "evil.skops")
    assert finding.format == "skops"
    assert finding.verdict is Verdict.DANGEROUS
    assert "os.system" in names(finding, Verdict.DANGEROUS)


def test_numpy_files(tmp_path: Path) -> None:
    np.save(tmp_path / "plain.npy", np.arange(10.0))
    np.save(tmp_path / "objects.npy", np.array([1, {"a": [2]}], dtype=object), allow_pickle=True)
    plain = scan_file(tmp_path / "plain.npy")
    assert (plain.format, plain.verdict) == ("npy", Verdict.SAFE)
    assert not plain.globals
    objects = scan_file(tmp_path / "objects.npy")
    assert (objects.format, objects.verdict) == ("npy", Verdict.SAFE)
    assert any("allow_pickle" in note for note in objects.notes)
    assert "numpy.ndarray" in names(objects)


def test_numpy_object_array_with_a_payload(tmp_path: Path) -> None:
    marker = tmp_path / MARKER
    np.save(tmp_path / "evil.npy", np.array([RunsCommand(f"touch {marker}")]), allow_pickle=True)
    finding = scan_file(tmp_path / "evil.npy")
    assert finding.verdict is Verdict.DANGEROUS
    np.savez(tmp_path / "arrays.npz", a=np.arange(3), b=np.array([RunsCommand("true")]))
    finding = scan_file(tmp_path / "arrays.npz")
    assert (finding.format, finding.verdict) == ("npz", Verdict.DANGEROUS)
    assert not marker.exists()


def _onnx_bytes() -> bytes:
    # ModelProto: ir_version=8 (field 1, varint), producer_name (2), an empty graph (7).
    return b"\x08\x08" + b"\x12\x04test" + b"\x3a\x00"


def _safetensors_bytes() -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    return struct.pack("<Q", len(header)) + header + struct.pack("<2f", 1.0, 2.0)


def test_code_free_formats() -> None:
    onnx = scan_bytes(_onnx_bytes(), "model.onnx")
    assert (onnx.format, onnx.verdict) == ("onnx", Verdict.SAFE)
    tensors = scan_bytes(_safetensors_bytes(), "model.safetensors")
    assert (tensors.format, tensors.verdict) == ("safetensors", Verdict.SAFE)
    assert scan_bytes(b"\x08\x08\xff\xff", "model.onnx").verdict is Verdict.ERROR
    assert scan_bytes(_safetensors_bytes()[:-4], "m.safetensors").verdict is Verdict.ERROR
    readme = scan_bytes(b"# churn model\n", "README.md")
    assert (readme.format, readme.verdict) == ("other", Verdict.SAFE)
    conda = scan_bytes(b"channels:\n- conda-forge\ndependencies:\n- python\n", "conda.yaml")
    assert conda.verdict is Verdict.SAFE


# --- Folders, the lists, the CLI --------------------------------------------------------------


def test_folder_scan_reports_each_file_and_the_worst(tmp_path: Path, model: Any) -> None:
    folder = tmp_path / "bundle"
    (folder / "sub").mkdir(parents=True)
    (folder / "model.pkl").write_bytes(pickle.dumps(model))
    (folder / "sub" / "extra.pkl").write_bytes(pickle.dumps(Custom()))
    (folder / "MLmodel").write_text("flavors: {}\n")
    report = scan_path(folder)
    assert [f.file for f in report.findings] == ["MLmodel", "model.pkl", "sub/extra.pkl"]
    assert report.verdict is Verdict.SUSPICIOUS
    assert report.counts() == {"safe": 2, "suspicious": 1, "error": 0, "dangerous": 0}
    data = report.to_dict()
    assert data["verdict"] == "suspicious"
    assert data["findings"][1]["globals"][0]["offsets"]
    json.dumps(data)


def test_missing_path() -> None:
    with pytest.raises(InputError):
        scan_path(Path("no-such-model-file.pkl"))


@pytest.mark.parametrize(
    ("module", "name", "verdict"),
    [
        ("os", "system", Verdict.DANGEROUS),
        ("posix", "system", Verdict.DANGEROUS),
        ("nt", "system", Verdict.DANGEROUS),
        ("subprocess", "Popen", Verdict.DANGEROUS),
        ("builtins", "eval", Verdict.DANGEROUS),
        ("__builtin__", "getattr", Verdict.DANGEROUS),
        ("builtins", "__import__", Verdict.DANGEROUS),
        ("importlib", "import_module", Verdict.DANGEROUS),
        ("runpy", "run_path", Verdict.DANGEROUS),
        ("pickle", "loads", Verdict.DANGEROUS),
        ("marshal", "loads", Verdict.DANGEROUS),
        ("types", "CodeType", Verdict.DANGEROUS),
        ("webbrowser", "open", Verdict.DANGEROUS),
        ("asyncio.subprocess", "create_subprocess_shell", Verdict.DANGEROUS),
        ("numpy.testing._private.utils", "runstring", Verdict.DANGEROUS),
        ("sklearn.datasets", "fetch_openml", Verdict.DANGEROUS),
        # Re-exports and attribute walks reach the same places.
        ("sklearn.utils._joblib", "load", Verdict.DANGEROUS),
        ("helpers", "os", Verdict.DANGEROUS),
        ("posixpath", "os.system", Verdict.DANGEROUS),
        ("collections", "OrderedDict.__init__.__globals__", Verdict.DANGEROUS),
        ("builtins", "set", Verdict.SAFE),
        ("__builtin__", "xrange", Verdict.SAFE),
        ("collections", "OrderedDict", Verdict.SAFE),
        ("numpy._core.multiarray", "_reconstruct", Verdict.SAFE),
        ("numpy.dtypes", "Float64DType", Verdict.SAFE),
        ("sklearn.ensemble._forest", "RandomForestClassifier", Verdict.SAFE),
        ("scipy.sparse._csr", "csr_matrix", Verdict.SAFE),
        ("sklearn.base", "BaseEstimator.more", Verdict.SUSPICIOUS),
        ("numpy", "log1p", Verdict.SUSPICIOUS),
        ("my_project.models", "Net", Verdict.SUSPICIOUS),
    ],
)
def test_classify_global(module: str, name: str, verdict: Verdict) -> None:
    assert classify_global(module, name)[0] is verdict


def test_cli_scan_exit_codes(tmp_path: Path, model: Any, cli: Any) -> None:
    good = tmp_path / "good"
    good.mkdir()
    (good / "model.pkl").write_bytes(pickle.dumps(model))
    result = cli("scan", good)
    assert result.exit_code == 0, result.stderr
    assert "SAFE" in result.stdout and "model.pkl" in result.stdout

    data, marker = malicious(tmp_path)
    (tmp_path / "bad.pkl").write_bytes(data)
    result = cli("scan", tmp_path / "bad.pkl", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["verdict"] == "dangerous"
    [finding] = report["findings"]
    assert finding["globals"][0]["verdict"] == "dangerous"
    assert not marker.exists()

    (tmp_path / "custom.pkl").write_bytes(pickle.dumps(Custom()))
    result = cli("scan", tmp_path / "custom.pkl")
    assert result.exit_code == 1
    assert "SUSPICIOUS" in result.stdout

    result = cli("scan", tmp_path / "missing.pkl")
    assert result.exit_code == 2
    assert "no such file" in result.stderr
