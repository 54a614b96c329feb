"""Request and response codecs: Open Inference Protocol v2 and KServe v1, over orjson.

A request is decoded into a `ModelInput`, the one shape the rest of the gateway handles:

- `columns`: named one-dimensional arrays, one per column (several v2 inputs of shape [N]
  or [N, 1], or v1 instances given as row dicts). Predictors turn them into a table.
- `matrix`: one 2-D array of N rows (one v2 input of shape [N, F], or v1 instances given
  as lists), taken positionally by models that name their columns.
- `tensor`: one array of higher rank, passed as it is (an image model, say).

Every check raises `InputError` (HTTP 400) naming the input and what was wrong, so a client
sees `{"error": "input 'tenure': shape [2] holds 2 values but data has 3"}` rather than a
numpy message. Values are checked against the declared datatype by the kind numpy infers
for them (no per-element Python loop): BOOL takes booleans, INT*/UINT* whole numbers,
FP* numbers, BYTES strings.

Responses carry `predict` and, for models that have it, `predict_proba`; numpy arrays are
written by orjson directly (OPT_SERIALIZE_NUMPY), which is what keeps encoding cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from seaway.errors import InputError

if TYPE_CHECKING:
    import numpy

Kind = Literal["columns", "matrix", "tensor"]

NUMPY_OF: dict[str, str] = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BYTES": "object",
}

_SCHEMA_DATATYPE = {
    "int": "INT64",
    "float": "FP64",
    "bool": "BOOL",
    "string": "BYTES",
    "binary": "BYTES",
    "date": "BYTES",
    "timestamp": "BYTES",
}


@dataclass
class ModelInput:
    """A decoded request: what a predictor is given, and how many rows it holds."""

    kind: Kind
    data: Any
    rows: int

    def batch_key(self) -> tuple[Any, ...]:
        """Requests with equal keys can be concatenated into one predict call."""
        if self.kind == "columns":
            return ("columns", tuple(self.data))
        return (self.kind, self.data.shape[1:], self.data.dtype.str)


@dataclass
class V2Request:
    id: str | None
    input: ModelInput
    outputs: list[str] | None
    raw_inputs: Any


def _fail(message: str, hint: str | None = None) -> InputError:
    return InputError(message, hint=hint)


def parse_json(body: bytes) -> Any:
    import orjson

    if not body:
        raise _fail("the request body is empty", hint="send a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _fail(
            f"the request body is not valid JSON: {exc}", hint="send a JSON object"
        ) from None


def _decode_tensor(spec: Any, index: int) -> tuple[str, numpy.ndarray]:
    import numpy as np

    if not isinstance(spec, dict):
        raise _fail(
            f"inputs[{index}] is not an object", hint="each input has name, shape, datatype, data"
        )
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise _fail(f"inputs[{index}] has no name")
    where = f"input {name!r}"
    shape = spec.get("shape")
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise _fail(
            f"{where}: shape must be a non-empty list of whole numbers, not {shape!r}",
            hint="for example [2] for two rows of one column, [1, 20] for one row of 20",
        )
    datatype = spec.get("datatype")
    if datatype not in NUMPY_OF:
        raise _fail(
            f"{where}: unknown datatype {datatype!r}",
            hint="use BOOL, INT8..INT64, UINT8..UINT64, FP16, FP32, FP64 or BYTES",
        )
    if "data" not in spec:
        raise _fail(f"{where}: no data")
    data = spec["data"]
    if not isinstance(data, list):
        data = [data]
    try:
        arr = np.asarray(data)
    except ValueError:
        raise _fail(f"{where}: data is ragged (nested lists of different lengths)") from None
    expected = 1
    for d in shape:
        expected *= d
    if arr.size != expected:
        raise _fail(
            f"{where}: shape {shape} holds {expected} values but data has {arr.size}",
            hint="data is the tensor's values in row-major order",
        )
    kind = arr.dtype.kind
    if datatype == "BOOL":
        ok = kind == "b" or arr.size == 0
    elif datatype.startswith(("INT", "UINT")):
        ok = kind in "iu" or arr.size == 0
    elif datatype.startswith("FP"):
        ok = kind in "iuf" or arr.size == 0
    else:
        ok = kind in "U" or arr.size == 0
    if not ok:
        sample = arr.reshape(-1)[0].item() if arr.size else None
        raise _fail(
            f"{where}: datatype {datatype} does not match its values (such as {sample!r})",
            hint="BOOL takes true/false, INT* and UINT* whole numbers, FP* numbers, BYTES strings",
        )
    if datatype.startswith("UINT") and arr.size and int(arr.min()) < 0:
        raise _fail(f"{where}: datatype {datatype} cannot hold negative values")
    target = NUMPY_OF[datatype]
    if arr.dtype.name != target:
        arr = arr.astype(target)
    return name, arr.reshape(shape)


def decode_v2(body: bytes, schema_inputs: list[str] | None) -> V2Request:
    """Parse an OIP v2 inference request; `schema_inputs` are the model's input names."""
    parsed = parse_json(body)
    if not isinstance(parsed, dict):
        raise _fail("the request body must be a JSON object with `inputs`")
    specs = parsed.get("inputs")
    if not isinstance(specs, list) or not specs:
        raise _fail(
            "the request has no `inputs` list",
            hint='send {"inputs": [{"name": ..., "shape": [N], "datatype": "FP64", '
            '"data": [...]}]}',
        )
    tensors = [_decode_tensor(s, i) for i, s in enumerate(specs)]
    req_id = parsed.get("id")
    outputs = parsed.get("outputs")
    wanted: list[str] | None = None
    if outputs is not None:
        if not isinstance(outputs, list) or not all(
            isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
        ):
            raise _fail('`outputs` must be a list of {"name": ...} objects')
        wanted = [o["name"] for o in outputs]
    return V2Request(
        id=str(req_id) if req_id is not None else None,
        input=_model_input(tensors, schema_inputs),
        outputs=wanted,
        raw_inputs=specs,
    )


def _model_input(tensors: list[tuple[str, numpy.ndarray]], names: list[str] | None) -> ModelInput:
    names_set = set(names or ())
    if len(tensors) == 1:
        name, arr = tensors[0]
        if arr.ndim == 2 and not (arr.shape[1] == 1 and (names is None or names == [name])):
            return ModelInput("matrix", arr, arr.shape[0])
        if arr.ndim > 2:
            return ModelInput("tensor", arr, arr.shape[0])
    columns: dict[str, Any] = {}
    rows: int | None = None
    for name, arr in tensors:
        if name in columns:
            raise _fail(f"input {name!r} is given twice")
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr.reshape(-1)
        elif arr.ndim != 1:
            raise _fail(
                f"input {name!r}: shape {list(arr.shape)}; with several inputs each one is a "
                "column of shape [N] or [N, 1]",
                hint="or send one input of shape [N, F] holding whole rows",
            )
        if rows is None:
            rows = arr.shape[0]
        elif arr.shape[0] != rows:
            raise _fail(
                f"input {name!r} has {arr.shape[0]} rows, the other inputs {rows}",
                hint="every column holds one value per row",
            )
        columns[name] = arr
    if names:
        missing = [n for n in names if n not in columns]
        if missing:
            raise _fail(
                f"missing input{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}",
                hint=f"the model takes the inputs {', '.join(names)}",
            )
        unknown = [n for n in columns if n not in names_set]
        if unknown:
            raise _fail(
                f"unknown input{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}",
                hint=f"the model takes the inputs {', '.join(names)}",
            )
    return ModelInput("columns", columns, rows or 0)


def decode_v1(body: bytes) -> ModelInput:
    """Parse a KServe v1 request: `{"instances": [row, ...]}`, rows as lists or objects."""
    import numpy as np

    parsed = parse_json(body)
    if not isinstance(parsed, dict):
        raise _fail('the request body must be a JSON object like {"instances": [...]}')
    instances = parsed.get("instances", parsed.get("inputs"))
    if not isinstance(instances, list) or not instances:
        raise _fail(
            "the request has no `instances` list",
            hint='send {"instances": [[1.0, 2.0], [3.0, 4.0]]} or rows as objects',
        )
    if all(isinstance(r, dict) for r in instances):
        keys = list(instances[0])
        for i, row in enumerate(instances):
            if list(row) != keys and set(row) != set(keys):
                raise _fail(
                    f"instances[{i}] has the keys {sorted(row)}, instances[0] has {sorted(keys)}",
                    hint="every row object names the same columns",
                )
        columns = {k: np.asarray([row[k] for row in instances]) for k in keys}
        for k, col in columns.items():
            if col.ndim != 1:
                raise _fail(f"instances: column {k!r} holds lists; a column is one value per row")
        return ModelInput("columns", columns, len(instances))
    if any(isinstance(r, dict) for r in instances):
        raise _fail("instances mix objects and lists", hint="send rows of one kind")
    try:
        arr = np.asarray(instances)
    except ValueError:
        raise _fail(
            "instances: rows differ in length", hint="every row has the same width"
        ) from None
    if arr.dtype == object:
        raise _fail("instances: rows differ in length or hold nested values")
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    kind: Kind = "matrix" if arr.ndim == 2 else "tensor"
    return ModelInput(kind, arr, arr.shape[0])


def concat(inputs: list[ModelInput]) -> ModelInput:
    """One input of every row of `inputs` (which share a batch key)."""
    import numpy as np

    rows = sum(i.rows for i in inputs)
    first = inputs[0]
    if first.kind == "columns":
        data = {k: np.concatenate([i.data[k] for i in inputs]) for k in first.data}
        return ModelInput("columns", data, rows)
    return ModelInput(first.kind, np.concatenate([i.data for i in inputs]), rows)


def datatype_of(arr: numpy.ndarray) -> str:
    kind = arr.dtype.kind
    bits = arr.dtype.itemsize * 8
    if kind == "b":
        return "BOOL"
    if kind == "i":
        return f"INT{bits}"
    if kind == "u":
        return f"UINT{bits}"
    if kind == "f":
        return f"FP{bits}"
    return "BYTES"


def _tensor(name: str, arr: numpy.ndarray) -> dict[str, Any]:
    import numpy as np

    data: Any
    if arr.dtype.kind in "biuf" and arr.dtype.itemsize * 8 != 16:
        data = np.ascontiguousarray(arr).reshape(-1)
        if not data.dtype.isnative:
            data = data.astype(data.dtype.newbyteorder("="))
    elif arr.dtype.kind == "f":
        data = arr.astype("float32").reshape(-1)
    else:
        data = [
            v.decode("utf-8", "replace") if isinstance(v, bytes) else v
            for v in arr.reshape(-1).tolist()
        ]
        data = [v if isinstance(v, (str, int, float, bool)) or v is None else str(v) for v in data]
    return {"name": name, "shape": list(arr.shape), "datatype": datatype_of(arr), "data": data}


def encode_v2(
    model: str,
    version: int,
    request_id: str,
    outputs: dict[str, numpy.ndarray],
    wanted: list[str] | None = None,
) -> bytes:
    import orjson

    if wanted is not None:
        unknown = [w for w in wanted if w not in outputs]
        if unknown:
            raise _fail(
                f"unknown output{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}",
                hint=f"the model answers {', '.join(outputs)}",
            )
        outputs = {w: outputs[w] for w in wanted}
    body = {
        "model_name": model,
        "model_version": str(version),
        "id": request_id,
        "outputs": [_tensor(name, arr) for name, arr in outputs.items()],
    }
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


def encode_v1(outputs: dict[str, numpy.ndarray]) -> bytes:
    import orjson

    labels = outputs["predict"]
    tensor = _tensor("predict", labels)
    data = tensor["data"]
    if labels.ndim > 1 and not isinstance(data, list):
        data = labels  # rows of several values stay rows
    return orjson.dumps({"predictions": data}, option=orjson.OPT_SERIALIZE_NUMPY)


def tensor_metadata(columns: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """OIP tensor metadata (`name`, `datatype`, `shape`) of schema columns."""
    out = []
    for col in columns or []:
        shape = col.get("shape")
        out.append(
            {
                "name": col.get("name"),
                "datatype": _SCHEMA_DATATYPE.get(col.get("type", ""), "FP64"),
                "shape": [-1, *shape] if isinstance(shape, list) else [-1],
            }
        )
    return out


def input_names(io_schema: dict[str, Any] | None) -> list[str] | None:
    if not io_schema:
        return None
    names = [c.get("name") for c in io_schema.get("inputs") or []]
    return [n for n in names if isinstance(n, str)] or None


__all__ = [
    "ModelInput",
    "V2Request",
    "concat",
    "datatype_of",
    "decode_v1",
    "decode_v2",
    "encode_v1",
    "encode_v2",
    "input_names",
    "parse_json",
    "tensor_metadata",
]
