"""Finding the data gates run on: dataset versions and outputs of the registering run.

Two kinds of reference reach here:

- `dataset:NAME[@V]`: a dataset version (the latest without `@V`);
- `STEP.OUTPUT[/file]`: an output of the pipeline run that registered the model version
  (`prepare.split/test.parquet`), so the gates judge the version on the very hold-out set it
  was trained next to, not on whatever that step would produce today.

Either way the files come out of the content-addressed work cache the pipeline uses
(`.seaway/workcache/<tree hash>/`): after a run they are usually there already, and otherwise
they are fetched from the blob store once, verified against their digests, and kept for the
next gate run. Parquet, CSV, Arrow/Feather and JSON-lines files are read with PyArrow; a
folder is read whole (every such file in it, in path order).

Anything missing is a `DataUnavailable` that names what is missing and what to do: the gate
reports `error` (could not measure), never `failed`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from seaway.errors import NotFound, SeawayError
from seaway.gates.base import DataUnavailable

if TYPE_CHECKING:
    import pyarrow as pa

    from seaway.project import Project

SAMPLE_SEED = 0
_READERS = (".parquet", ".pq", ".csv", ".tsv", ".feather", ".arrow", ".ipc", ".jsonl", ".ndjson")


def work_dir(project: Project) -> Path:
    return project.state_dir / "workcache"


def _local_tree(project: Project, tree_hash: str, manifest_hash: str) -> Path:
    from seaway.pipeline.workcache import materialise

    folder = work_dir(project) / tree_hash
    if folder.is_dir():
        return folder
    return materialise(project.blobs, work_dir(project), tree_hash, manifest_hash)


def _readable(path: Path) -> bool:
    return path.suffix.lower() in _READERS


def read_file(path: Path) -> pa.Table:
    """One data file as an Arrow table, by its extension."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        return pq.read_table(path)
    if suffix in (".csv", ".tsv"):
        import pyarrow.csv as pcsv

        parse = pcsv.ParseOptions(delimiter="\t" if suffix == ".tsv" else ",")
        return pcsv.read_csv(path, parse_options=parse)
    if suffix in (".feather", ".arrow", ".ipc"):
        import pyarrow.feather as feather

        return feather.read_table(path)
    if suffix in (".jsonl", ".ndjson"):
        import pyarrow.json as pjson

        return pjson.read_json(path)
    raise DataUnavailable(
        f"{path.name}: seaway cannot read {suffix or 'extension-less'} files as a table",
        hint=f"point the gate at a file ending in one of {', '.join(_READERS)}",
    )


def read_path(path: Path, what: str) -> pa.Table:
    """A file, or every readable file under a folder, as one table."""
    import pyarrow as pa

    if path.is_file():
        return read_file(path)
    if not path.is_dir():
        raise DataUnavailable(f"{what}: {path.name} does not exist")
    files = sorted(p for p in path.rglob("*") if p.is_file() and _readable(p))
    if not files:
        present = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
        shown = ", ".join(present[:8]) + (" …" if len(present) > 8 else "")
        raise DataUnavailable(
            f"{what} holds no data file seaway can read (files: {shown or 'none'})",
            hint=f"name one file (OUTPUT/FILE), or write {', '.join(_READERS[:3])} files",
        )
    tables = [read_file(f) for f in files]
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataUnavailable(
            f"{what}: its files do not share one schema ({exc})",
            hint="name one file of it (OUTPUT/FILE)",
        ) from exc


def dataset_table(project: Project, text: str) -> pa.Table:
    """`dataset:NAME[@V]` as one table."""
    from seaway.data.datasets import get_version

    ref = text.removeprefix("dataset:")
    try:
        version = get_version(project, ref)
    except NotFound as exc:
        raise DataUnavailable(
            f"{text}: {exc.message}",
            hint=exc.hint or f"add it with `seaway data add {ref.partition('@')[0]}`",
        ) from exc
    try:
        folder = _local_tree(project, version.tree_hash, version.manifest_hash)
    except SeawayError as exc:
        raise DataUnavailable(f"{text}: the files of {version.ref} cannot be read: {exc}") from exc
    return read_path(folder, version.ref)


def split_step_ref(text: str) -> tuple[str, str, str | None]:
    """`STEP.OUTPUT[/file]` -> (step, output, file). Step names may hold dots; outputs not."""
    head, _, file = text.partition("/")
    step, _, output = head.rpartition(".")
    if not step or not output:
        raise DataUnavailable(
            f"{text!r} is neither dataset:NAME[@V] nor STEP.OUTPUT[/file]",
            hint="write dataset:NAME, dataset:NAME@V or STEP.OUTPUT/FILE",
        )
    return step, output, (file or None)


def _step_outputs(project: Project, run_id: str, step: str) -> dict[str, Any]:
    import json

    from sqlalchemy import select

    from seaway.store.schema import run_steps

    with project.metadata.read() as conn:
        rows = conn.execute(
            select(run_steps.c.step, run_steps.c.outputs).where(run_steps.c.run_id == run_id)
        ).all()
    if not rows:
        raise DataUnavailable(
            f"run {run_id[:8]} has no step records",
            hint="use evaluation data from a dataset (dataset:NAME) instead",
        )
    outputs = {name: out for name, out in rows}
    if step not in outputs:
        raise DataUnavailable(
            f"run {run_id[:8]} has no step '{step}' (its steps: {', '.join(sorted(outputs))})",
            hint="name a step of the pipeline that registered the version",
        )
    doc = outputs[step]
    if isinstance(doc, str):
        doc = json.loads(doc)
    return doc if isinstance(doc, dict) else {}


def step_output_table(project: Project, run_id: str | None, text: str) -> pa.Table:
    """`STEP.OUTPUT[/file]` of the run `run_id` as one table."""
    step, output, file = split_step_ref(text)
    if run_id is None:
        raise DataUnavailable(
            f"{text}: the version was not registered by a pipeline run, so it has no step outputs",
            hint="use a dataset for its evaluation data (dataset:NAME[@V])",
        )
    outputs = _step_outputs(project, run_id, step)
    record = outputs.get(output)
    if not isinstance(record, dict) or not record.get("manifest_hash"):
        known = ", ".join(sorted(outputs)) or "none"
        raise DataUnavailable(
            f"step '{step}' of run {run_id[:8]} has no output '{output}' (its outputs: {known})",
            hint="name an output the step declares",
        )
    try:
        folder = _local_tree(project, record["tree_hash"], record["manifest_hash"])
    except SeawayError as exc:
        raise DataUnavailable(f"{text}: the output's files cannot be read: {exc}") from exc
    if record.get("kind") == "file":
        name = record.get("file_name") or ""
        if file is not None and file != name:
            raise DataUnavailable(
                f"{step}.{output} is the single file {name}, not a folder holding {file}",
                hint=f"write {step}.{output} without /{file}",
            )
        return read_file(folder / name)
    if file is None:
        return read_path(folder, f"{step}.{output}")
    target = folder / file
    if not target.exists():
        present = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        shown = ", ".join(present[:8]) + (" …" if len(present) > 8 else "")
        raise DataUnavailable(
            f"{step}.{output} of run {run_id[:8]} has no file {file} (files: {shown})",
            hint="name one of its files",
        )
    return read_path(target, f"{step}.{output}/{file}")


def resolve_table(project: Project, text: str, *, run_id: str | None = None) -> pa.Table:
    if text.startswith("dataset:"):
        return dataset_table(project, text)
    return step_output_table(project, run_id, text)


def sample(table: pa.Table, rows: int | None, *, seed: int = SAMPLE_SEED) -> pa.Table:
    """At most `rows` rows, the same ones every time for the same table (order kept)."""
    if rows is None or table.num_rows <= rows:
        return table
    picked = np.sort(np.random.default_rng(seed).choice(table.num_rows, rows, replace=False))
    return table.take(picked)


def split_target(table: pa.Table, target: str, where: str) -> tuple[pa.Table, np.ndarray]:
    """(features, labels) with rows whose label is missing left out."""
    import pyarrow.compute as pc

    if target not in table.column_names:
        raise DataUnavailable(
            f"{where} has no target column '{target}' (its columns: "
            f"{', '.join(table.column_names)})",
            hint="set evaluation.target to the column holding the true label",
        )
    column = table[target]
    if column.null_count:
        table = table.filter(pc.is_valid(column))
        column = table[target]
    if table.num_rows == 0:
        raise DataUnavailable(f"{where} has no rows with a value in '{target}'")
    labels = column.to_numpy(zero_copy_only=False)
    return table.drop_columns([target]), labels
