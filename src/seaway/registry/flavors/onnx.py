"""The `onnx` flavor: ONNX graphs run with onnxruntime.

An ONNX file is a protobuf graph: loading it runs no Python, so it needs no trust decision,
only a check that onnxruntime accepts it (operators, opset). A version stores it as
`model.onnx`. Sessions use the CPU provider with one intra-op and one inter-op thread: the
gateway runs many models in one process and scales by replicas, and a session that grabs every
core for one request starves the others.

Inputs. A graph with one tensor input (what skl2onnx makes from an array-fitted estimator)
gets a 2-D array of the input's element type, built from whatever table or array the caller
has; when the graph's metadata names its columns (`metadata_props` key `feature_names`, a
JSON list or a comma-separated string), those columns are selected by name. A graph with
several inputs (skl2onnx with one `initial_types` entry per column) gets one column of the
caller's table per input, by the input's name, shaped (n, 1) when the input is 2-D.

Outputs. `predict` returns the label output: the one named `label` or `output_label`, else the
first. `predict_proba` exists when there is a probability output: `probabilities` (skl2onnx
with `zipmap=False`), `output_probability` (with ZipMap: a list of {class: p} dicts, turned
into an (n, n_classes) array ordered by class), or a second 2-D float output. A regressor's
(n, 1) output is returned flat, as scikit-learn returns it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seaway.errors import InputError, UsageError
from seaway.registry.flavors import frames, schema
from seaway.registry.flavors.base import (
    ONNX_SUFFIX,
    Predictor,
    copy_file,
    empty_staging,
    is_onnx_file,
    require_source,
    single_file,
    visible_files,
)

if TYPE_CHECKING:
    import numpy

MODEL_FILE = "model.onnx"
LABEL_OUTPUTS = ("label", "output_label")
PROBA_OUTPUTS = ("probabilities", "output_probability", "probability", "probas")
FEATURE_NAMES_KEY = "feature_names"

_ELEMENT_TYPES = {
    "float": ("float32", "float"),
    "double": ("float64", "float"),
    "float16": ("float16", "float"),
    "int64": ("int64", "int"),
    "int32": ("int32", "int"),
    "int16": ("int16", "int"),
    "int8": ("int8", "int"),
    "uint64": ("uint64", "int"),
    "uint32": ("uint32", "int"),
    "uint16": ("uint16", "int"),
    "uint8": ("uint8", "int"),
    "bool": ("bool", "bool"),
    "string": ("object", "string"),
}
"""ONNX element type -> (numpy dtype fed to the session, column type)."""


def _element(onnx_type: str) -> tuple[str, str] | None:
    """(numpy dtype, column type) of `tensor(T)`; None for sequences and maps."""
    if not onnx_type.startswith("tensor(") or not onnx_type.endswith(")"):
        return None
    return _ELEMENT_TYPES.get(onnx_type[len("tensor(") : -1])


def _dims(shape: Any) -> list[int]:
    """A graph shape with symbolic or unknown dimensions as -1."""
    if not isinstance(shape, list | tuple):
        return []
    return [d if isinstance(d, int) and d >= 0 else -1 for d in shape]


def _session(path: Path, where: str) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise UsageError(
            "the onnx flavor needs onnxruntime, which is not installed",
            hint="pip install 'seaway[onnx]'",
        ) from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    # Failures reach the caller as exceptions; onnxruntime's own log would say it twice.
    options.log_severity_level = 4
    try:
        return ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        raise InputError(
            f"{where}: onnxruntime cannot load it ({exc})",
            hint="check the file is a complete ONNX model and its opset is one this "
            "onnxruntime supports",
        ) from exc


def _feature_names(session: Any) -> list[str] | None:
    raw = session.get_modelmeta().custom_metadata_map.get(FEATURE_NAMES_KEY)
    if not raw:
        return None
    try:
        names = json.loads(raw)
    except ValueError:
        names = [n.strip() for n in raw.split(",") if n.strip()]
    return [str(n) for n in names] if isinstance(names, list) and names else None


class OnnxPredictor:
    """An onnxruntime session behind the predictor interface."""

    flavor = "onnx"
    has_proba = False

    def __init__(self, session: Any, meta: dict[str, Any] | None = None) -> None:
        self.session = session
        self.meta = dict(meta or {})
        self.graph_inputs = [(i.name, i.type, _dims(i.shape)) for i in session.get_inputs()]
        self.graph_outputs = [(o.name, o.type, _dims(o.shape)) for o in session.get_outputs()]
        names = [o[0] for o in self.graph_outputs]
        self.label_output: str = next((n for n in LABEL_OUTPUTS if n in names), names[0])
        self.proba_output: str | None = _proba_output(self.graph_outputs, self.label_output)
        self.columns: list[str] | None = None
        if len(self.graph_inputs) == 1:
            self.columns = self.meta.get("columns") or _feature_names(session)
            self.input_names: list[str] | None = self.columns
        else:
            self.input_names = [i[0] for i in self.graph_inputs]

    def feeds(self, data: Any) -> dict[str, numpy.ndarray]:
        """The session's inputs for `data`."""
        import numpy as np

        if len(self.graph_inputs) == 1:
            name, onnx_type, dims = self.graph_inputs[0]
            dtype = (_element(onnx_type) or ("float32", "float"))[0]
            if isinstance(data, np.ndarray) and data.ndim > 2 and len(dims) == data.ndim:
                return {name: data.astype(dtype, copy=False)}  # images and other tensors
            if self.columns is not None:
                matrix = frames.to_frame(data, self.columns).to_numpy()
            else:
                width = dims[1] if len(dims) == 2 and dims[1] > 0 else None
                matrix = frames.to_matrix(data, width)
            matrix = _cast(matrix, dtype, name)
            return {name: matrix[:, 0] if len(dims) == 1 else matrix}
        table = frames.to_frame(data, self.input_names)
        feeds = {}
        for name, onnx_type, dims in self.graph_inputs:
            dtype = (_element(onnx_type) or ("float32", "float"))[0]
            values = _cast(table[name].to_numpy(), dtype, name)
            feeds[name] = values.reshape(-1, 1) if len(dims) == 2 else values
        return feeds

    def run(self, output: str, data: Any) -> Any:
        return self.run_all([output], data)[0]

    def run_all(self, outputs: list[str], data: Any) -> list[Any]:
        feeds = self.feeds(data)
        try:
            return list(self.session.run(outputs, feeds))
        except Exception as exc:
            # What onnxruntime rejects at run time is the input: a category the encoder never
            # saw, a shape the graph does not take.
            raise InputError(
                f"onnxruntime cannot run the model on this input ({exc})",
                hint=f"the model takes {_describe_inputs(self.graph_inputs)}",
            ) from exc

    def predict(self, data: Any) -> numpy.ndarray:
        import numpy as np

        out = np.asarray(self.run(self.label_output, data))
        return out[:, 0] if out.ndim == 2 and out.shape[1] == 1 else out

    def __repr__(self) -> str:
        return f"<onnx predictor inputs={[i[0] for i in self.graph_inputs]}>"


class OnnxClassifierPredictor(OnnxPredictor):
    """A graph with a probability output."""

    has_proba = True

    def predict_proba(self, data: Any) -> numpy.ndarray:
        import numpy as np

        assert self.proba_output is not None
        out = self.run(self.proba_output, data)
        if isinstance(out, list):
            # ZipMap: one {class: probability} dict per row.
            if not out:
                return np.zeros((0, 0), dtype="float32")
            keys = sorted(out[0])
            return np.asarray([[row[k] for k in keys] for row in out], dtype="float32")
        return np.asarray(out)


def _proba_output(outputs: list[tuple[str, str, list[int]]], label: str) -> str | None:
    for wanted in PROBA_OUTPUTS:
        for name, onnx_type, _ in outputs:
            if name == wanted and (onnx_type.startswith("seq(map(") or _element(onnx_type)):
                return name
    if len(outputs) == 2:
        name, onnx_type, dims = next(o for o in outputs if o[0] != label)
        element = _element(onnx_type)
        if element is not None and element[1] == "float" and len(dims) == 2:
            return name
    return None


def _cast(values: numpy.ndarray, dtype: str, name: str) -> numpy.ndarray:
    if dtype == "object":
        return values.astype(str).astype(object) if values.dtype != object else values
    try:
        return values.astype(dtype, copy=False)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"input {name!r}: the values cannot be read as {dtype} ({exc})",
            hint="send numbers for numeric inputs",
        ) from exc


def predictor_for(session: Any, meta: dict[str, Any] | None = None) -> OnnxPredictor:
    predictor = OnnxPredictor(session, meta)
    if predictor.proba_output is not None:
        return OnnxClassifierPredictor(session, meta)
    return predictor


class OnnxFlavor:
    """ONNX graphs, stored as `model.onnx` and run on onnxruntime's CPU provider."""

    name = "onnx"

    def detect(self, path: Path) -> bool:
        if path.is_file():
            return is_onnx_file(path)
        if path.is_dir():
            return sum(1 for p in visible_files(path) if p.suffix.lower() == ONNX_SUFFIX) == 1
        return False

    def prepare(self, source: Path, staging: Path, *, trust_pickle: bool = False) -> dict[str, Any]:
        source = require_source(Path(source))
        model_file = single_file(
            source,
            lambda p: p.suffix.lower() == ONNX_SUFFIX,
            "ONNX file (.onnx)",
            self.name,
        )
        staging = empty_staging(Path(staging))
        target = staging / MODEL_FILE
        copy_file(model_file, target)
        session = _session(target, model_file.name)
        predictor = predictor_for(session)
        meta_info = session.get_modelmeta()
        return {
            "file": MODEL_FILE,
            "source_file": model_file.name,
            "inputs": [{"name": n, "type": t, "shape": d} for n, t, d in predictor.graph_inputs],
            "outputs": [{"name": n, "type": t, "shape": d} for n, t, d in predictor.graph_outputs],
            "label_output": predictor.label_output,
            "proba_output": predictor.proba_output,
            "columns": predictor.columns,
            "input_names": predictor.input_names,
            "has_proba": predictor.has_proba,
            "producer": meta_info.producer_name or None,
        }

    def load(self, directory: Path, meta: dict[str, Any]) -> Predictor:
        directory = Path(directory)
        name = meta.get("file")
        if name is None:
            path = single_file(
                directory, lambda p: p.suffix.lower() == ONNX_SUFFIX, "ONNX file", self.name
            )
        else:
            path = directory / str(name)
        if not path.is_file():
            raise InputError(
                f"{path}: the model file is missing", hint="materialize the version again"
            )
        return predictor_for(_session(path, path.name), meta)

    def infer_schema(self, predictor: Predictor, sample: Any | None) -> dict[str, Any] | None:
        if not isinstance(predictor, OnnxPredictor):
            raise UsageError(f"the onnx flavor cannot describe a {predictor.flavor} predictor")
        inputs: list[dict[str, Any]] = []
        if len(predictor.graph_inputs) == 1 and predictor.columns is not None:
            if sample is not None:
                inputs = schema.frame_columns(
                    frames.to_frame(schema.head(sample), predictor.columns)
                )
            else:
                kind = _kind(predictor.graph_inputs[0][1])
                inputs = [schema.column(c, kind) for c in predictor.columns]
        else:
            for name, onnx_type, dims in predictor.graph_inputs:
                scalar = len(predictor.graph_inputs) > 1 and (
                    len(dims) == 1 or (len(dims) == 2 and dims[1] == 1)
                )
                if scalar:
                    inputs.append(schema.column(name, _kind(onnx_type)))
                else:
                    inputs.append(schema.column(name, "tensor", shape=[-1, *dims[1:]]))
        produced: dict[str, Any] = {}
        if sample is not None:
            names = [o[0] for o in predictor.graph_outputs]
            values = predictor.run_all(names, schema.head(sample))
            produced = dict(zip(names, values, strict=True))
        outputs = []
        for name, onnx_type, dims in predictor.graph_outputs:
            value = produced.get(name)
            if isinstance(value, list):  # ZipMap rows
                width = len(value[0]) if value else -1
                outputs.append(schema.column(name, "tensor", shape=[-1, width]))
            elif value is not None:
                outputs.append(schema.array_column(name, value))
            elif onnx_type.startswith("seq("):
                outputs.append(schema.column(name, "tensor", shape=[-1, -1]))
            elif len(dims) == 1 or (len(dims) == 2 and dims[1] == 1):
                outputs.append(schema.column(name, _kind(onnx_type)))
            else:
                outputs.append(schema.column(name, "tensor", shape=[-1, *dims[1:]]))
        return {"inputs": inputs, "outputs": outputs}


def _describe_inputs(inputs: list[tuple[str, str, list[int]]]) -> str:
    return ", ".join(f"{name} {onnx_type} {dims}" for name, onnx_type, dims in inputs)


def _kind(onnx_type: str) -> str:
    element = _element(onnx_type)
    return element[1] if element is not None else "tensor"


__all__ = ["MODEL_FILE", "OnnxClassifierPredictor", "OnnxFlavor", "OnnxPredictor"]
