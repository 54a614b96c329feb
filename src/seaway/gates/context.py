"""What a gate reads, fetched on first use and shared by the gates of one run.

A metric gate needs only the version's recorded metrics; a latency gate needs the model and a
few rows. `GateContext` loads each thing the first time a gate asks (the model, the
evaluation set, a dataset, the champion) and keeps it for the next gate, so `seaway gate`
on a version whose gates read only metrics never loads the model or touches the data.

A failure to get something is kept too: when the evaluation data is missing, every gate that
needs it reports the same `error` without trying again.

Everything can also be handed in ready-made (`model=`, `evaluation=`, `datasets=`,
`references=`), which is how a caller gates an in-memory model or a data frame it already
holds, and how the gates are tested on their own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from seaway.errors import NotFound, SeawayError
from seaway.gates.base import DataUnavailable
from seaway.gates.measures import Prediction

if TYPE_CHECKING:
    import pyarrow as pa

    from seaway.project import Project
    from seaway.registry import ModelVersion
    from seaway.registry.flavors.base import Predictor
    from seaway.spec.models import ModelSpec

T = TypeVar("T")


class _Failed:
    def __init__(self, exc: SeawayError) -> None:
        self.exc = exc


def _plain_array(value: Any) -> np.ndarray:
    """predict()'s answer as a NumPy array, whatever container the flavor returned."""
    if isinstance(value, Mapping):
        if len(value) != 1:
            raise SeawayError(
                f"the model returned {len(value)} outputs ({', '.join(map(str, value))}); "
                "the gates compare one prediction per row",
                hint="declare the model's first output as its prediction",
            )
        value = next(iter(value.values()))
    if hasattr(value, "to_numpy"):
        value = value.to_numpy()
    array = np.asarray(value)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array.reshape(-1)
    return array


class GateContext:
    """The version under test and lazy access to what its gates need."""

    def __init__(
        self,
        version: ModelVersion,
        spec: ModelSpec,
        project: Project | None = None,
        *,
        model: Predictor | None = None,
        evaluation: tuple[pa.Table, np.ndarray] | None = None,
        datasets: Mapping[str, pa.Table] | None = None,
        references: Mapping[str, ModelVersion | None] | None = None,
        seed: int = 0,
    ) -> None:
        self.version = version
        self.spec = spec
        self.project = project
        self.seed = seed
        self._cache: dict[str, Any] = {}
        if model is not None:
            self._cache["model"] = model
        if evaluation is not None:
            self._cache["evaluation"] = evaluation
        for ref_text, table in (datasets or {}).items():
            self._cache[f"data:{ref_text}"] = table
        for alias, ref_version in (references or {}).items():
            self._cache[f"alias:{alias}"] = ref_version

    # -- the memo -------------------------------------------------------------------------

    def _once(self, key: str, load: Callable[[], T]) -> T:
        if key in self._cache:
            value = self._cache[key]
            if isinstance(value, _Failed):
                raise value.exc
            return value
        try:
            value = load()
        except SeawayError as exc:
            self._cache[key] = _Failed(exc)
            raise
        self._cache[key] = value
        return value

    def _project(self, what: str) -> Project:
        if self.project is None:
            raise DataUnavailable(f"no project to read {what} from")
        return self.project

    # -- what gates ask for -----------------------------------------------------------------

    def model(self) -> Predictor:
        """The loaded model version."""

        def load() -> Predictor:
            if self.version.scan_verdict == "dangerous":
                # Loading is what runs a malicious file's code; the scan gate reports why.
                raise DataUnavailable(
                    f"{self.version.ref} was not loaded: its scan found dangerous code",
                    hint="`seaway scan` on its files shows where; register a clean model",
                )
            from seaway.registry import load_version

            project = self._project("the model")
            try:
                # The model's own `require_signature` applies: gates judge what would be
                # served, and an unverified file is not loaded for them either.
                return load_version(project, self.version)
            except SeawayError as exc:
                raise DataUnavailable(
                    f"{self.version.ref} could not be loaded: {exc.message}", hint=exc.hint
                ) from exc

        return self._once("model", load)

    def evaluation(self) -> tuple[pa.Table, np.ndarray]:
        """(features, true labels) of `models.NAME.evaluation`, sampled to `rows`."""

        def load() -> tuple[pa.Table, np.ndarray]:
            from seaway.gates.data import resolve_table, sample, split_target

            spec = self.spec.evaluation
            if spec is None:
                raise DataUnavailable(
                    f"model '{self.version.model}' declares no evaluation data",
                    hint=f"add to seaway.yaml under models.{self.version.model}: "
                    "evaluation: {data: dataset:NAME, target: LABEL_COLUMN}",
                )
            project = self._project("evaluation data")
            table = resolve_table(project, spec.data, run_id=self._run_id())
            table = sample(table, spec.rows, seed=self.seed)
            return split_target(table, spec.target, f"evaluation data {spec.data}")

        return self._once("evaluation", load)

    def dataset(self, ref_text: str) -> pa.Table:
        """A dataset version (`dataset:NAME[@V]`) or an output of the registering run."""
        from seaway.gates.data import resolve_table

        return self._once(
            f"data:{ref_text}",
            lambda: resolve_table(self._project(ref_text), ref_text, run_id=self._run_id()),
        )

    def reference_version(self, alias: str) -> ModelVersion | None:
        """The version of the same model holding `alias`, or None when no version holds it."""

        def load() -> ModelVersion | None:
            from seaway.registry import get_version

            try:
                return get_version(self._project("aliases"), f"{self.version.model}@{alias}")
            except NotFound:
                return None

        return self._once(f"alias:{alias}", load)

    # -- helpers for gates that predict -------------------------------------------------------

    def _run_id(self) -> str | None:
        run = self.version.run_id or (self.version.lineage or {}).get("run")
        return str(run) if run else None

    def input_names(self) -> list[str] | None:
        """The model's input columns, from its schema when known (without loading it)."""
        schema = self.version.io_schema or {}
        names = [i["name"] for i in schema.get("inputs", []) if isinstance(i, dict)]
        if names:
            return names
        # Without a sample at registration there is no typed schema, but a flavor may still
        # have recorded the column names it was fitted on (the sklearn flavor does).
        meta = self.version.meta or {}
        for key in ("input_names", "feature_names"):
            if isinstance(meta.get(key), list) and meta[key]:
                return [str(n) for n in meta[key]]
        model = self._cache.get("model")
        found = getattr(model, "input_names", None) if model is not None else None
        return list(found) if found else None

    def model_inputs(self, features: pa.Table) -> pa.Table:
        """The columns of `features` the model takes: evaluation data may carry more (an id,
        the slice column of a fairness gate) than the model was trained on."""
        names = self.input_names()
        if not names:
            return features
        missing = [n for n in names if n not in features.column_names]
        if len(missing) == len(names):
            # A tensor model (one input named `input`) takes the table as it is.
            return features
        if missing:
            raise DataUnavailable(
                f"the evaluation data lacks the model input(s) {', '.join(missing)}",
                hint="evaluate on data with the columns the model was trained on",
            )
        return features.select(names)

    def predict(
        self, features: pa.Table, *, proba: bool = False, y_true: np.ndarray | None = None
    ) -> Prediction:
        """Run the model on `features`; with `proba`, class probabilities too."""
        model = self.model()
        data = self.model_inputs(features)
        labels = _plain_array(model.predict(data))
        if not proba:
            return Prediction(labels)
        if not getattr(model, "has_proba", False):
            raise DataUnavailable(
                f"{self.version.ref} gives no class probabilities, which this metric needs",
                hint="use a metric on predicted labels (accuracy, f1) or on values (rmse)",
            )
        # predict_proba exists only where has_proba says so (the flavors' contract).
        matrix = np.asarray(model.predict_proba(data), dtype=np.float64)  # type: ignore[attr-defined]
        return Prediction(labels, matrix, _classes(model, matrix, labels, y_true))


def _classes(
    model: Any, matrix: np.ndarray, labels: np.ndarray, y_true: np.ndarray | None
) -> Sequence[Any] | None:
    """The labels of predict_proba's columns: the model's own list when it has one, else the
    sorted labels seen (scikit-learn's order), when their number fits."""
    own = getattr(model, "classes", None)
    if own is None:
        own = getattr(model, "classes_", None)
    if own is not None and len(own) == (matrix.shape[1] if matrix.ndim == 2 else 2):
        return list(own)
    seen = [labels] + ([y_true] if y_true is not None else [])
    unique = list(np.unique(np.concatenate([np.asarray(s) for s in seen])))
    width = matrix.shape[1] if matrix.ndim == 2 else 2
    return unique if len(unique) == width else None
