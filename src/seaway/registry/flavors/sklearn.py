"""The `sklearn` flavor: scikit-learn estimators, stored with skops and never as a pickle.

What a version stores is one file, `model.skops`. skops rebuilds an estimator from a schema
of named types instead of running pickle's opcodes, and refuses any type it does not trust
unless the caller names it. We name exactly the types `skops.io.get_untrusted_types` reports,
and only after checking each against `TRUSTED_PREFIXES` (scikit-learn, numpy, scipy) and the
scanner's deny-list (`seaway.registry.scan.classify_global`, so `numpy.load` or
`sklearn.datasets` stay out though their package is trusted). Anything else, a custom
transformer class for instance, is refused with its name: loading it would import and run
that class's module. Such models belong in the `python` flavor, whose code is reviewed as code.

A pickle or joblib file is accepted only when the caller passes `trust_pickle=True` *and* the
static scan (`scan_file`) calls it safe: every global it would import is on the allow-list. A
dangerous or suspicious file is refused with the scanner's reason and the offending globals,
and is never unpickled. An accepted pickle is copied to a private folder (so the bytes scanned
are the bytes loaded), loaded once and converted to skops; the version holds `model.skops`
and no later load unpickles anything.

Input: an estimator fitted on a DataFrame knows its columns (`feature_names_in_`), and gets a
DataFrame of exactly those, selected from whatever table the caller has. One fitted on an
array gets a 2-D float array of `n_features_in_` columns.
"""

from __future__ import annotations

import contextlib
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seaway.errors import InputError, UsageError
from seaway.registry.flavors import frames, schema
from seaway.registry.flavors.base import (
    PICKLE_SUFFIXES,
    SKOPS_SUFFIX,
    Predictor,
    UnsafeModel,
    copy_file,
    empty_staging,
    is_pickle_file,
    is_skops_file,
    require_source,
    single_file,
)

if TYPE_CHECKING:
    import numpy

MODEL_FILE = "model.skops"

TRUSTED_PREFIXES: tuple[str, ...] = ("sklearn.", "numpy.", "scipy.")
"""Packages whose types a stored skops file may name (and skops is told to trust)."""

TRUSTED_TYPES: frozenset[str] = frozenset(
    {"collections.OrderedDict", "collections.defaultdict", "builtins.slice", "builtins.complex"}
)
"""Single types outside those packages that only hold data."""


def is_trusted_type(qualname: str) -> bool:
    """Whether a type a skops file names may be loaded: an allow-listed package or name, and
    not on the scanner's deny-list."""
    from seaway.registry.scan import Verdict, classify_global

    if qualname not in TRUSTED_TYPES and not qualname.startswith(TRUSTED_PREFIXES):
        return False
    module, _, name = qualname.rpartition(".")
    return classify_global(module, name)[0] is not Verdict.DANGEROUS


def _is_model_file(path: Path) -> bool:
    return path.suffix.lower() == SKOPS_SUFFIX or is_skops_file(path) or is_pickle_file(path)


def trusted_types(path: Path, display: str | None = None) -> list[str]:
    """The types to pass as skops's `trusted=`; UnsafeModel when one is not allow-listed."""
    from skops.io import get_untrusted_types

    where = display or path.name
    try:
        untrusted = get_untrusted_types(file=path)
    except Exception as exc:
        raise InputError(
            f"{where}: not a readable skops file ({exc})",
            hint="save the model with skops.io.dump(model, 'model.skops')",
        ) from exc
    refused = sorted(t for t in untrusted if not is_trusted_type(t))
    if refused:
        raise UnsafeModel(
            f"{where}: the skops file names types outside the scikit-learn/numpy/scipy "
            f"allow-list: {', '.join(refused)}",
            hint="loading them would import and run their modules' code; build the model from "
            "scikit-learn parts only, or register custom code as a `python` flavor model",
        )
    return sorted(untrusted)


def load_skops(path: Path, display: str | None = None) -> Any:
    """Load a skops file, trusting only allow-listed types; never unpickles."""
    import skops.io as sio

    trusted = trusted_types(path, display)
    try:
        with warnings.catch_warnings():
            # A version mismatch warning is no reason to fail; the meta records both versions.
            warnings.simplefilter("ignore")
            return sio.load(path, trusted=trusted)
    except Exception as exc:
        raise InputError(
            f"{display or path.name}: skops cannot load it ({type(exc).__name__}: {exc})",
            hint="check that scikit-learn and skops here can read what saved it",
        ) from exc


def _load_pickle(path: Path, *, trust_pickle: bool) -> Any:
    """Scan a pickle and, only when it is safe and trusted, load it."""
    from seaway.registry.scan import Verdict, scan_file

    if not trust_pickle:
        raise UnsafeModel(
            f"{path.name}: a pickle file runs code when it is loaded, and is not accepted "
            "without --trust-pickle",
            hint=f"save the model with skops (skops.io.dump), or check it with `seaway scan "
            f"{path.name}` and register it again with --trust-pickle",
        )
    with tempfile.TemporaryDirectory(prefix="seaway-pickle-") as tmp:
        # The copy is ours: the bytes scanned are the bytes loaded, whatever happens to the
        # original in between.
        private = Path(tmp) / "model.pkl"
        copy_file(path, private)
        finding = scan_file(private, display=path.name)
        if finding.verdict is not Verdict.SAFE:
            offending = sorted(
                {g.qualname for g in finding.globals if g.verdict is not Verdict.SAFE}
            )
            names = f" (imports: {', '.join(offending)})" if offending else ""
            raise UnsafeModel(
                f"{path.name}: the scan found it {finding.verdict.value}, so it was not "
                f"loaded: {finding.reason}{names}",
                hint="only pickles whose every import is on the scanner's allow-list are "
                "accepted; save the model with skops instead",
            )
        import joblib

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # joblib reads plain pickles too, and joblib's compressed files.
                return joblib.load(private)
        except Exception as exc:
            raise InputError(
                f"{path.name}: the pickle cannot be loaded ({type(exc).__name__}: {exc})",
                hint="check that the scikit-learn here can read what saved it",
            ) from exc


def _check_estimator(model: Any, where: str) -> None:
    if not callable(getattr(model, "predict", None)):
        raise InputError(
            f"{where}: holds a {type(model).__module__}.{type(model).__qualname__}, not an "
            "estimator with predict()",
            hint="register the fitted estimator or pipeline itself",
        )


class SklearnPredictor:
    """A scikit-learn estimator behind the predictor interface."""

    flavor = "sklearn"
    has_proba = False

    def __init__(self, estimator: Any, meta: dict[str, Any] | None = None) -> None:
        self.estimator = estimator
        self.meta = dict(meta or {})
        names = getattr(estimator, "feature_names_in_", None)
        self.input_names: list[str] | None = [str(n) for n in names] if names is not None else None
        n = getattr(estimator, "n_features_in_", None)
        self.n_features: int | None = int(n) if n is not None else None
        classes = getattr(estimator, "classes_", None)
        self.classes: list[Any] | None = (
            list(classes.tolist()) if classes is not None and hasattr(classes, "tolist") else None
        )

    def inputs(self, data: Any) -> Any:
        """What the estimator is given for `data`."""
        if self.input_names is not None:
            return frames.to_frame(data, self.input_names)
        matrix = frames.to_matrix(data, self.n_features)
        if matrix.dtype.kind in "biuO":
            # Strings fitted without names (rare) stay as they are: scikit-learn judges them.
            with contextlib.suppress(TypeError, ValueError):
                matrix = matrix.astype("float64")
        return matrix

    def predict(self, data: Any) -> numpy.ndarray:
        import numpy as np

        return np.asarray(self.estimator.predict(self.inputs(data)))

    def __repr__(self) -> str:
        return f"<sklearn predictor {type(self.estimator).__name__}>"


class SklearnClassifierPredictor(SklearnPredictor):
    """An estimator with predict_proba."""

    has_proba = True

    def predict_proba(self, data: Any) -> numpy.ndarray:
        import numpy as np

        return np.asarray(self.estimator.predict_proba(self.inputs(data)))


def predictor_for(estimator: Any, meta: dict[str, Any] | None = None) -> SklearnPredictor:
    if hasattr(estimator, "predict_proba"):
        return SklearnClassifierPredictor(estimator, meta)
    return SklearnPredictor(estimator, meta)


class SklearnFlavor:
    """scikit-learn estimators and pipelines, stored as `model.skops`."""

    name = "sklearn"

    def detect(self, path: Path) -> bool:
        if path.is_file():
            return _is_model_file(path)
        if path.is_dir():
            from seaway.registry.flavors.base import visible_files

            return sum(1 for p in visible_files(path) if _is_model_file(p)) == 1
        return False

    def prepare(self, source: Path, staging: Path, *, trust_pickle: bool = False) -> dict[str, Any]:
        import sklearn
        import skops
        import skops.io as sio

        source = require_source(Path(source))
        model_file = single_file(source, _is_model_file, "skops or pickle file", self.name)
        staging = empty_staging(Path(staging))
        target = staging / MODEL_FILE
        if is_skops_file(model_file):
            estimator = load_skops(model_file)
            _check_estimator(estimator, model_file.name)
            copy_file(model_file, target)
            source_format = "skops"
        elif is_pickle_file(model_file):
            estimator = _load_pickle(model_file, trust_pickle=trust_pickle)
            _check_estimator(estimator, model_file.name)
            try:
                sio.dump(estimator, target)
            except Exception as exc:
                raise InputError(
                    f"{model_file.name}: skops cannot save this estimator ({exc})",
                    hint="save it with skops yourself, or register it as a python model",
                ) from exc
            source_format = (
                "joblib" if model_file.suffix.lower() in (".joblib", ".jbl") else ("pickle")
            )
        else:
            raise InputError(
                f"{model_file}: neither a skops file nor a pickle",
                hint="save the model with skops.io.dump(model, 'model.skops')",
            )
        # Load what is stored, as every later load will: the converted file must pass too.
        stored = load_skops(target, display=f"{model_file.name} (as {MODEL_FILE})")
        _check_estimator(stored, model_file.name)
        predictor = predictor_for(stored)
        return {
            "file": MODEL_FILE,
            "format": "skops",
            "source_format": source_format,
            "source_file": model_file.name,
            "estimator": f"{type(stored).__module__}.{type(stored).__qualname__}",
            "feature_names": predictor.input_names,
            "input_names": predictor.input_names,
            "n_features": predictor.n_features,
            "has_proba": predictor.has_proba,
            "classes": predictor.classes,
            "trusted_types": trusted_types(target),
            "sklearn_version": sklearn.__version__,
            "skops_version": skops.__version__,
        }

    def load(self, directory: Path, meta: dict[str, Any]) -> Predictor:
        directory = Path(directory)
        name = meta.get("file")
        if name is None:
            path = single_file(
                directory, lambda p: p.suffix.lower() == SKOPS_SUFFIX, "skops file", self.name
            )
        else:
            path = directory / str(name)
        if meta.get("format", "skops") != "skops" or path.suffix.lower() in PICKLE_SUFFIXES:
            raise UsageError(
                f"{path.name}: a stored sklearn version is a skops file, not "
                f"{meta.get('format') or path.suffix}",
                hint="register the model again; pickles are converted to skops on registration",
            )
        if not path.is_file():
            raise InputError(
                f"{path}: the model file is missing", hint="materialize the version again"
            )
        estimator = load_skops(path)
        _check_estimator(estimator, path.name)
        return predictor_for(estimator, meta)

    def infer_schema(self, predictor: Predictor, sample: Any | None) -> dict[str, Any] | None:
        if not isinstance(predictor, SklearnPredictor):
            raise UsageError(f"the sklearn flavor cannot describe a {predictor.flavor} predictor")
        if sample is None:
            return _schema_without_sample(predictor)
        rows = schema.head(sample)
        model_input = predictor.inputs(rows)
        if predictor.input_names is not None:
            inputs = schema.frame_columns(model_input)
        else:
            inputs = [schema.tensor_input("input", model_input.shape[1])]
        outputs = [schema.array_column("prediction", predictor.predict(model_input))]
        if isinstance(predictor, SklearnClassifierPredictor):
            outputs.append(
                schema.array_column("probabilities", predictor.predict_proba(model_input))
            )
        return {"inputs": inputs, "outputs": outputs}


def _schema_without_sample(predictor: SklearnPredictor) -> dict[str, Any] | None:
    """What the estimator alone tells: only a model fitted on an array has typed inputs (one
    float tensor); named columns need a sample to be typed."""
    if predictor.input_names is not None or predictor.n_features is None:
        return None
    outputs = []
    if predictor.classes is not None:
        import numpy as np

        kind = schema.dtype_kind(np.asarray(predictor.classes).dtype, predictor.classes)
        outputs.append(schema.column("prediction", kind))
        if predictor.has_proba:
            outputs.append(
                schema.column("probabilities", "tensor", shape=[-1, len(predictor.classes)])
            )
    else:
        outputs.append(schema.column("prediction", "float"))
    return {"inputs": [schema.tensor_input("input", predictor.n_features)], "outputs": outputs}


__all__ = [
    "MODEL_FILE",
    "TRUSTED_PREFIXES",
    "TRUSTED_TYPES",
    "SklearnClassifierPredictor",
    "SklearnFlavor",
    "SklearnPredictor",
    "is_trusted_type",
    "load_skops",
    "trusted_types",
]
