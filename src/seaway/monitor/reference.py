"""Reference profiles: what a model version was trained on, kept small enough to compare with
live traffic forever.

    ref = build_reference(project, "churn-classifier@3")    # done for you at registration
    ref.features["tenure"]                                   # a seaway.stats NumericProfile
    ref.predictions["predict_proba"]                         # what the model answered on it

A version's reference is its training data: the dataset versions in its lineage (the ones
the registering run read), or, for a version registered without a run, the model's
`evaluation.data` in seaway.yaml. Only the version's input columns are kept, at most 200,000
rows are sampled (seeded, so the same data gives the same profile), and each column is
summarised by `seaway.stats.Profile` (quantile bins and a fine CDF for numbers, the most
frequent categories for text). The model is then run on up to 20,000 of those rows, as the
gateway runs it, and its outputs are reduced the way the request log is read (the
positive-class probability of a binary `predict_proba`, the class index of a wider one, the
values of `predict` for a model without probabilities), so live predictions are compared
with what the model said on its own training data.

Registration builds the profile right after a version is created; a failure there is a
warning, never a failed registration, and `seaway monitor reference NAME@N --data FILE`
builds one from any table later. Profiles are stored as content-addressed blobs with one
row per version in `reference_profiles`, and each build is recorded as a `model.profiled`
event.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from seaway.errors import InputError, SeawayError
from seaway.stats.profile import Profile

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlalchemy.engine import Connection

    from seaway.project import Project
    from seaway.registry.versions import ModelVersion

__all__ = [
    "FORMAT",
    "ReferenceProfile",
    "build_reference",
    "has_reference_data",
    "load_reference",
]

log = logging.getLogger("seaway.monitor.reference")

FORMAT = "seaway.reference/1"
PROFILE_ROWS = 200_000
PREDICT_ROWS = 20_000
SAMPLE_SEED = 0


@dataclass(frozen=True)
class ReferenceProfile:
    """The training-data profile of one model version."""

    model: str
    number: int
    features: Profile
    predictions: Profile | None
    rows: int
    source: str | None

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.number}"

    def to_dict(self) -> dict[str, Any]:
        """A summary (columns and their kinds), not the profile itself."""
        return {
            "model": self.model,
            "version": self.number,
            "rows": self.rows,
            "source": self.source,
            "features": {n: c.kind for n, c in self.features.columns.items()},
            "predictions": (
                {n: c.kind for n, c in self.predictions.columns.items()}
                if self.predictions is not None
                else None
            ),
        }


def _no_data(version: ModelVersion, tried: list[str]) -> InputError:
    detail = f" (tried: {'; '.join(tried)})" if tried else ""
    return InputError(
        f"no training data found for {version.ref}: its lineage names no readable dataset "
        f"and the model has no evaluation data in seaway.yaml{detail}",
        hint=f"seaway monitor reference {version.ref} --data FILE",
    )


def _evaluation(project: Project, model: str) -> Any:
    if not project.spec_path.is_file():
        return None
    spec = project.spec.models.get(model)
    return None if spec is None else spec.evaluation


def _lineage_datasets(version: ModelVersion) -> list[str]:
    refs = []
    for d in version.lineage.get("datasets") or []:
        if isinstance(d, dict):
            ref = d.get("ref") or (
                f"{d['name']}@{d['version']}" if "name" in d and "version" in d else None
            )
            if ref:
                refs.append(f"dataset:{ref}")
    return refs


def has_reference_data(project: Project, version: ModelVersion) -> bool:
    """Whether `build_reference` has anywhere to look for the version's training data."""
    return bool(_lineage_datasets(version)) or _evaluation(project, version.model) is not None


def _tensor_width(version: ModelVersion) -> int | None:
    """The row width of a version that takes one tensor of whole rows (-1: unknown); None
    when it takes named columns."""
    inputs = (version.io_schema or {}).get("inputs") or []
    if len(inputs) != 1 or not isinstance(inputs[0], dict) or inputs[0].get("type") != "tensor":
        return None
    shape = inputs[0].get("shape")
    if isinstance(shape, list) and len(shape) == 2 and isinstance(shape[1], int) and shape[1] > 0:
        return shape[1]
    return -1


def _select_inputs(table: pa.Table, version: ModelVersion, target: str | None = None) -> pa.Table:
    """The version's input columns of `table`; an InputError when it lacks some."""
    from seaway.serving.protocol import input_names

    if target is not None and target in table.column_names:
        table = table.drop_columns([target])
    width = _tensor_width(version)
    if width is not None:
        # Whole rows carry no names: the log reader calls their values x0, x1, ..., so the
        # reference's columns take the same names, in the table's order.
        if width > 0 and table.num_columns != width:
            raise InputError(
                f"{version.ref} takes rows of {width} values; the data has {table.num_columns} "
                f"columns ({', '.join(table.column_names)})",
                hint="give a table of exactly the model's input columns, in its order",
            )
        return table.rename_columns([f"x{i}" for i in range(table.num_columns)])
    names = input_names(version.io_schema)
    if names is None:
        return table
    absent = [n for n in names if n not in table.column_names]
    if absent:
        raise InputError(
            f"the data for {version.ref} lacks its inputs {', '.join(absent)} "
            f"(its columns: {', '.join(table.column_names)})",
            hint="give a table holding every input column of the version",
        )
    return table.select(names)


def _training_table(project: Project, version: ModelVersion) -> tuple[pa.Table, str]:
    """The version's input columns of its training data, and where they came from."""
    import pyarrow as pa

    from seaway.gates.data import resolve_table

    evaluation = _evaluation(project, version.model)
    target = evaluation.target if evaluation is not None else None
    tried: list[str] = []
    tables: list[pa.Table] = []
    sources: list[str] = []
    for text in _lineage_datasets(version):
        try:
            tables.append(_select_inputs(resolve_table(project, text), version, target))
            sources.append(text)
        except SeawayError as exc:
            tried.append(f"{text}: {exc.message}")
    if tables:
        try:
            return pa.concat_tables(tables, promote_options="permissive"), ", ".join(sources)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return tables[0], sources[0]
    if evaluation is not None:
        try:
            table = resolve_table(project, evaluation.data, run_id=version.run_id)
            return _select_inputs(table, version, target), evaluation.data
        except SeawayError as exc:
            tried.append(f"{evaluation.data}: {exc.message}")
    raise _no_data(version, tried)


def _prediction_profile(
    project: Project, version: ModelVersion, table: pa.Table, predictor: Any
) -> Profile | None:
    """Profile of what the model answers on `table`, reduced as logged answers are."""
    import numpy as np

    from seaway.gates.data import sample
    from seaway.monitor.logread import prediction_columns

    if predictor is None:
        from seaway.registry.loading import load_version

        # The profile is not serving: a version signed only after registration still gets one.
        predictor = load_version(project, version, require_signature=False)
    rows = sample(table, PREDICT_ROWS, seed=SAMPLE_SEED)
    # The gateway's outputs: `predict_proba` where the model has it, else `predict`. A
    # classifier's labels are the arg-max of its probabilities, so watching both would count
    # one change twice (and computing both would run the model twice).
    if getattr(predictor, "has_proba", False):
        outputs = {"predict_proba": np.asarray(predictor.predict_proba(rows))}
    else:
        outputs = {"predict": np.asarray(predictor.predict(rows))}
    columns = prediction_columns(outputs)
    if not columns:
        return None
    data: dict[str, Any] = {}
    for name, values in columns.items():
        array = np.asarray(values)
        if array.ndim != 1 or array.size != rows.num_rows or array.dtype.kind not in "biufUS":
            continue
        data[name] = array
    if not data:
        return None
    return Profile.from_columns(data)


def _write_profile(
    project: Project,
    version: ModelVersion,
    features: Profile,
    predictions: Profile | None,
    rows: int,
    source: str | None,
    error: str | None,
) -> None:
    from seaway._util import utcnow
    from seaway.store.events import record_event
    from seaway.store.schema import reference_profiles as t

    document = {
        "format": FORMAT,
        "features": features.to_dict(),
        "predictions": predictions.to_dict() if predictions is not None else None,
    }
    blob = project.blobs.put_bytes(json.dumps(document, separators=(",", ":")).encode())
    event: dict[str, Any] = {
        "rows": rows,
        "source": source,
        "columns": list(features.columns),
        "predictions": list(predictions.columns) if predictions is not None else [],
        "blob": blob,
    }
    if error:
        event["predictions_error"] = error

    def write(conn: Connection) -> None:
        where = (t.c.model == version.model) & (t.c.number == version.number)
        conn.execute(t.delete().where(where))
        conn.execute(
            t.insert().values(
                model=version.model,
                number=version.number,
                blob=blob,
                rows=rows,
                source=None if source is None else source[:500],
                created_at=utcnow(),
            )
        )
        record_event(conn, "model.profiled", version.subject, event)

    project.metadata.run_write(write)


def build_reference(
    project: Project,
    ref: str,
    table: pa.Table | None = None,
    *,
    source: str | None = None,
    predictor: Any = None,
) -> ReferenceProfile:
    """Profile the training data of version `ref` (NAME@N or NAME@ALIAS) and store it.

    `table` replaces the training data (`source` says where it came from); `predictor` is the
    version already loaded, to spare loading it again.
    """
    from seaway.gates.data import sample
    from seaway.registry import get_version

    version = get_version(project, ref)
    if table is None:
        table, source = _training_table(project, version)
    else:
        table = _select_inputs(table, version)
    if table.num_rows == 0:
        raise InputError(
            f"the data for {version.ref} ({source or 'given'}) has no rows",
            hint=f"seaway monitor reference {version.ref} --data FILE",
        )
    table = sample(table, PROFILE_ROWS, seed=SAMPLE_SEED)
    features = Profile.from_columns(table)
    predictions: Profile | None = None
    error: str | None = None
    try:
        predictions = _prediction_profile(project, version, table, predictor)
    except Exception as exc:  # the features are worth keeping without the predictions
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
        log.warning("reference of %s has no prediction profile: %s", version.ref, error)
    _write_profile(project, version, features, predictions, table.num_rows, source, error)
    result = ReferenceProfile(
        model=version.model,
        number=version.number,
        features=features,
        predictions=predictions,
        rows=table.num_rows,
        source=source,
    )
    return result


_cache: dict[str, tuple[Profile, Profile | None]] = {}
_cache_lock = threading.Lock()
_CACHE_MAX = 64


def _parse(data: bytes, where: str) -> tuple[Profile, Profile | None]:
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise InputError(f"reference profile of {where} is not JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise InputError(
            f"reference profile of {where} is not of format {FORMAT}",
            hint=f"rebuild it: seaway monitor reference {where}",
        )
    features = Profile.from_dict(document.get("features") or {})
    raw = document.get("predictions")
    return features, (Profile.from_dict(raw) if raw else None)


def load_reference(project: Project, model: str, number: int) -> ReferenceProfile | None:
    """The stored reference of MODEL@NUMBER; None when it has none."""
    from sqlalchemy import select

    from seaway.store.schema import reference_profiles as t

    with project.metadata.read() as conn:
        row = conn.execute(
            select(t.c.blob, t.c.rows, t.c.source).where(t.c.model == model, t.c.number == number)
        ).first()
    if row is None:
        return None
    # Profiles are content-addressed and never change, so the parsed form is shared.
    with _cache_lock:
        parsed = _cache.get(row.blob)
    if parsed is None:
        parsed = _parse(project.blobs.get_bytes(row.blob), f"{model}@{number}")
        with _cache_lock:
            if len(_cache) >= _CACHE_MAX:
                _cache.pop(next(iter(_cache)))
            _cache[row.blob] = parsed
    features, predictions = parsed
    return ReferenceProfile(
        model=model,
        number=number,
        features=features,
        predictions=predictions,
        rows=int(row.rows),
        source=row.source,
    )
