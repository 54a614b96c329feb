"""Run declared data-quality checks over the tabular files of one dataset version.

`run_checks(checks, files)` reads the Parquet or CSV files as one table, exposed to DuckDB
as a view named `data`, and evaluates every check against it. Column constraints are
folded into a single aggregate query so the data is scanned once however many checks
there are; failing constraints then fetch up to five example values each. DuckDB streams
the files and spills to a private temporary directory, so memory stays bounded.

Which files are read
    `fmt="auto"` (the default) reads `.parquet` / `.pq` files as Parquet and `.csv`,
    `.csv.gz`, `.tsv`, `.tsv.gz` files as CSV, and ignores every other file. A dataset
    mixing both formats is refused. `fmt="parquet"` or `fmt="csv"` reads the files of
    that format plus files without any extension (content-addressed blobs, `part-00000`),
    except names starting with `.` or `_` (`_SUCCESS`, `.crc` markers). Several files form
    one table and must have the same columns (and, for Parquet, the same type families).

Semantics worth knowing
    - Nulls only ever fail `not_null`; `min`, `max`, `allowed`, `regex` and `unique`
      ignore them. For a composite `unique` key, rows with a null in any key column are
      ignored, as in SQL.
    - NaN in a float column counts as outside any `min` or `max` and outside `allowed`.
    - `regex` must match the whole value (`regexp_full_match`, RE2 syntax); non-string
      columns are compared as their text.
    - `type` families: int, float (also decimal), number (int or float), string, bool,
      date, timestamp, binary, category (dictionary-encoded). Parquet types come from the
      file's Arrow schema, CSV types from DuckDB's detection.
    - A SQL check must be one SELECT returning one row with one value: true or non-zero
      passes; false, zero or NULL fails. It can read only the dataset's files.
    - A check that cannot be evaluated (unknown column, bad SQL, bad regex) is an `error`
      result; it never stops the other checks.
    - Severity `warn` turns a failure into a `warn` result; warn-severity checks never fail
      the report, even when they error.

`CheckReport.to_dict()` (stored with the dataset version and printed by `--json`)::

    {
      "format": 1,
      "status": "failed",                  # "passed" | "failed"
      "rows": 10000,
      "columns": ["customer_id", "tenure", "churned"],
      "duration_s": 0.031,
      "counts": {"passed": 3, "failed": 1, "warn": 0, "error": 0},
      "results": [
        {
          "name": "tenure >= 0",           # the check's `name`, or generated
          "kind": "column",                # column | not_null | unique | rows | sql
          "constraint": "min",             # type | not_null | min | max | allowed | regex
                                           #   | unique | rows | sql
          "column": "tenure",              # null for rows, sql and composite unique
          "severity": "error",             # error | warn
          "status": "failed",              # passed | failed | warn | error
          "message": "3 of 10,000 rows below min 0 (first: -1, -5, -2)",
          "observed": {"failing": 3, "min": -5, "max": 118, "examples": [-1, -5, -2]}
        }
      ]
    }

`counts` is derived from `results` (and ignored by `from_dict`). A check with several
constraints gives one result per constraint; when it has a `name`, each result is called
"NAME: generated name". `observed` holds only JSON values (non-finite floats become
"NaN", "Infinity", "-Infinity"; dates and timestamps ISO strings; bytes hex; text cut at
80 characters) and at most five examples, present only on failures. Its keys:

    type       {type, family}
    not_null   {failing}
    min, max   {failing, min, max, nan (only when NaN occur), examples}
    allowed    {failing, examples}
    regex      {failing, examples}
    unique     {failing (rows beyond the first of each key), duplicated_values,
                examples: [{value, count}] or, for a composite key, [{COLUMN..., count}]}
    rows       {rows}
    sql        {value}
    errors     {missing, available} for unknown columns, {type} for a constraint that
               does not fit the column's type, {} otherwise
"""

from __future__ import annotations

import datetime as _dt
import decimal
import difflib
import math
import os
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from seaway.errors import CheckFailed, InputError
from seaway.spec.checks import (
    Check,
    ColumnCheck,
    NotNullCheck,
    RowCountCheck,
    Severity,
    SqlCheck,
    UniqueCheck,
)

__all__ = [
    "CSV_SUFFIXES",
    "PARQUET_SUFFIXES",
    "CheckReport",
    "CheckResult",
    "CheckStatus",
    "ReportStatus",
    "run_checks",
]

CheckStatus = Literal["passed", "failed", "warn", "error"]
ReportStatus = Literal["passed", "failed"]
Format = Literal["auto", "parquet", "csv"]

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz")

REPORT_FORMAT = 1
MAX_EXAMPLES = 5
_MAX_TEXT = 80
_STATUSES: tuple[CheckStatus, ...] = ("passed", "failed", "warn", "error")


# --------------------------------------------------------------------------- results


@dataclass
class CheckResult:
    """The outcome of one constraint of one declared check."""

    name: str
    kind: str
    column: str | None
    status: CheckStatus
    message: str
    observed: dict[str, Any] = field(default_factory=dict)
    constraint: str = ""
    severity: Severity = "error"

    @property
    def ok(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "constraint": self.constraint,
            "column": self.column,
            "severity": self.severity,
            "status": self.status,
            "message": self.message,
            "observed": dict(self.observed),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        try:
            status = data["status"]
            if status not in _STATUSES:
                raise ValueError(f"unknown check status {status!r}")
            severity = data.get("severity", "error")
            if severity not in ("error", "warn"):
                raise ValueError(f"unknown severity {severity!r}")
            return cls(
                name=str(data["name"]),
                kind=str(data["kind"]),
                column=data.get("column"),
                status=status,
                message=str(data.get("message", "")),
                observed=dict(data.get("observed") or {}),
                constraint=str(data.get("constraint", "")),
                severity=severity,
            )
        except KeyError as exc:
            raise ValueError(f"a check result needs the key {exc.args[0]!r}") from None


@dataclass
class CheckReport:
    """All check results for one dataset version."""

    status: ReportStatus
    rows: int
    columns: list[str]
    results: list[CheckResult]
    duration_s: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def failures(self) -> list[CheckResult]:
        """Results that fail the report: error-severity checks that failed or errored."""
        return [r for r in self.results if _fails_report(r)]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == "warn"]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(_STATUSES, 0)
        for r in self.results:
            counts[r.status] += 1
        return counts

    def summary(self) -> str:
        """One line, e.g. `5 checks: 3 passed, 1 failed, 1 warn`."""
        parts = [f"{n} {status}" for status, n in self.counts().items() if n]
        noun = "check" if len(self.results) == 1 else "checks"
        return f"{len(self.results)} {noun}: " + (", ".join(parts) if parts else "none declared")

    def raise_for_status(self, dataset: str = "dataset") -> None:
        """Raise `CheckFailed` listing the failing checks when the report failed."""
        if self.passed:
            return
        lines = [f"{r.name}: {r.message}" for r in self.failures]
        raise CheckFailed(
            f"{dataset}: {len(lines)} data check(s) failed ({self.summary()})\n  "
            + "\n  ".join(lines),
            hint="fix the data, or declare the check with `severity: warn` to report only",
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "status": self.status,
            "rows": self.rows,
            "columns": list(self.columns),
            "duration_s": self.duration_s,
            "counts": self.counts(),
            "results": [r.to_dict() for r in self.results],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckReport:
        try:
            status = data["status"]
            if status not in ("passed", "failed"):
                raise ValueError(f"unknown report status {status!r}")
            return cls(
                status=status,
                rows=int(data["rows"]),
                columns=[str(c) for c in data["columns"]],
                results=[CheckResult.from_dict(r) for r in data["results"]],
                duration_s=float(data.get("duration_s", 0.0)),
            )
        except KeyError as exc:
            raise ValueError(f"a check report needs the key {exc.args[0]!r}") from None


def _fails_report(result: CheckResult) -> bool:
    return result.severity == "error" and result.status in ("failed", "error")


# --------------------------------------------------------------------------- entry point


def run_checks(
    checks: Sequence[Check],
    files: Sequence[Path],
    *,
    fmt: Format = "auto",
) -> CheckReport:
    """Evaluate `checks` over `files` (one table) and return the report.

    Raises `InputError` when no file is tabular while checks are declared, when the files
    mix formats or disagree on their schema, or when they cannot be read at all.
    """
    started = time.perf_counter()
    source_fmt, tabular = _select_files([Path(f) for f in files], fmt)
    if not tabular:
        if checks:
            found = "no files" if not files else f"none of the {len(files)} file(s) is a table"
            raise InputError(
                f"cannot run data checks: {found} in a supported format (Parquet: "
                f"{', '.join(PARQUET_SUFFIXES)}; CSV: {', '.join(CSV_SUFFIXES)})",
                hint="add the data as Parquet or CSV files, or remove the dataset's checks",
            )
        return CheckReport("passed", 0, [], [], round(time.perf_counter() - started, 3))

    with _connection() as con:
        source = _Source(con, source_fmt, tabular)
        try:
            rows, results = _evaluate(con, source, checks)
        except duckdb.ConversionException:
            # DuckDB guesses CSV column types from a sample; a value further down that
            # does not fit aborts the scan. Detecting from every row costs a second read,
            # paid only by files that need it. With types from every row, conversion
            # errors no longer escape `_evaluate`.
            source.full_sample()
            rows, results = _evaluate(con, source, checks)

    status: ReportStatus = "failed" if any(_fails_report(r) for r in results) else "passed"
    return CheckReport(
        status=status,
        rows=rows,
        columns=[c.name for c in source.columns],
        results=results,
        duration_s=round(time.perf_counter() - started, 3),
    )


# --------------------------------------------------------------------------- files


def _select_files(files: list[Path], fmt: Format) -> tuple[Literal["parquet", "csv"], list[Path]]:
    parquet: list[Path] = []
    csv: list[Path] = []
    bare: list[Path] = []
    seen: set[Path] = set()
    for path in files:
        if path in seen:
            continue
        seen.add(path)
        name = path.name.lower()
        if name.endswith(PARQUET_SUFFIXES):
            parquet.append(path)
        elif name.endswith(CSV_SUFFIXES):
            csv.append(path)
        elif "." not in name and not name.startswith("_"):
            bare.append(path)

    chosen: list[Path]
    if fmt == "parquet":
        chosen, kind = parquet + bare, "parquet"
    elif fmt == "csv":
        chosen, kind = csv + bare, "csv"
    elif parquet and csv:
        raise InputError(
            f"the dataset mixes Parquet ({parquet[0]}) and CSV ({csv[0]}) files; "
            "data checks read one table from files of one format",
            hint="keep one format per dataset, or pass the format to check explicitly",
        )
    elif csv:
        chosen, kind = csv, "csv"
    else:
        chosen, kind = parquet, "parquet"

    for path in chosen:
        if not path.is_file():
            raise InputError(f"cannot read {path}: no such file")
    return cast(Literal["parquet", "csv"], kind), chosen


def _available_cores() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    # A container's CPU quota is tighter than the affinity mask it inherits.
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


@contextmanager
def _connection() -> Iterator[duckdb.DuckDBPyConnection]:
    # An in-memory database spills to `.tmp` in the working directory by default; keep
    # spill files out of the user's project.
    with tempfile.TemporaryDirectory(prefix="seaway-checks-") as spill:
        con = duckdb.connect(
            ":memory:",
            config={"threads": _available_cores(), "temp_directory": spill},
        )
        try:
            yield con
        finally:
            con.close()


# --------------------------------------------------------------------------- the table


@dataclass
class _Column:
    name: str
    sql_type: str  # as DuckDB sees it in the view
    kind: str  # DuckDB type kind used to build SQL: int, float, decimal, string, ...
    type_name: str  # the type reported to the user (Arrow's for Parquet)
    family: str  # the `ColumnType` family of type_name, or a descriptive word


class _Source:
    """The view `data` over the files, and what is known about its columns."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, fmt: Literal["parquet", "csv"], files: list[Path]
    ) -> None:
        self.con = con
        self.fmt = fmt
        self.files = [f.resolve() for f in files]
        self.shown = files  # as the caller named them, for messages
        self._full_sample = False
        self._csv_types: dict[str, str] = {}
        arrow_types: dict[str, pa.DataType] = {}
        if fmt == "parquet":
            arrow_types, same_order = self._parquet_schema()
            self._union_by_name = not same_order
        else:
            if len(files) > 1:
                self._csv_headers()
            self._union_by_name = True
        self._arrow_types = arrow_types
        self._create_view()
        # From here on user SQL may run: it can read the dataset's files and nothing else.
        paths = ", ".join(_quote_literal(str(f)) for f in self.files)
        con.execute(f"SET allowed_paths = [{paths}]")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")

    def _reader(self, *, sample_all: bool = False) -> str:
        paths = "[" + ", ".join(_quote_literal(str(f)) for f in self.files) + "]"
        union = "true" if self._union_by_name else "false"
        if self.fmt == "parquet":
            return f"read_parquet({paths}, union_by_name = {union}, hive_partitioning = false)"
        options = "union_by_name = true, hive_partitioning = false"
        if sample_all:
            options += ", sample_size = -1"
        elif self._csv_types:
            pinned = ", ".join(
                f"{_quote_literal(n)}: {_quote_literal(t)}" for n, t in self._csv_types.items()
            )
            options += ", types = {" + pinned + "}"
        return f"read_csv({paths}, {options})"

    def _create_view(self) -> None:
        try:
            self.con.execute(f"CREATE OR REPLACE VIEW data AS SELECT * FROM {self._reader()}")
            described = self.con.execute("DESCRIBE data").fetchall()
        except duckdb.Error as exc:
            raise InputError(
                f"cannot read {_files_label(self.shown)} as {self._format_name()}: "
                + _first_line(exc)
            ) from exc
        self.columns: list[_Column] = []
        for name, sql_type, *_ in described:
            kind = _duckdb_kind(sql_type)
            arrow_type = self._arrow_types.get(name)
            if arrow_type is not None:
                type_name, family = str(arrow_type), _arrow_family(arrow_type)
            else:
                type_name, family = sql_type, _family_of_kind(kind, sql_type)
            self.columns.append(_Column(name, sql_type, kind, type_name, family))
        self.by_name = {c.name: c for c in self.columns}

    @property
    def sampled(self) -> bool:
        """Whether CSV types were guessed from a sample (a later value may not fit)."""
        return self.fmt == "csv" and not self._full_sample

    def full_sample(self) -> None:
        # Detect the types from every row once, then pin them: a view with
        # sample_size = -1 would redo that full read each time it is queried.
        try:
            described = self.con.execute(
                f"DESCRIBE SELECT * FROM {self._reader(sample_all=True)}"
            ).fetchall()
        except duckdb.Error as exc:
            raise InputError(
                f"cannot read {_files_label(self.shown)} as CSV: {_first_line(exc)}"
            ) from exc
        self._csv_types = {row[0]: row[1] for row in described}
        self._full_sample = True
        self._create_view()

    def _format_name(self) -> str:
        return "Parquet" if self.fmt == "parquet" else "CSV"

    def _parquet_schema(self) -> tuple[dict[str, pa.DataType], bool]:
        first: pa.Schema | None = None
        same_order = True
        for shown, path in zip(self.shown, self.files, strict=True):
            try:
                schema = pq.read_schema(path)
            except (pa.ArrowException, OSError) as exc:
                raise InputError(f"cannot read {shown} as Parquet: {_first_line(exc)}") from exc
            if first is None:
                first = schema
                continue
            _compare_columns(
                self.shown[0],
                {n: _arrow_family(first.field(n).type) for n in first.names},
                shown,
                {n: _arrow_family(schema.field(n).type) for n in schema.names},
            )
            same_order = same_order and schema.names == first.names
        assert first is not None
        return {name: first.field(name).type for name in first.names}, same_order

    def _csv_headers(self) -> None:
        first: dict[str, str] | None = None
        for shown, path in zip(self.shown, self.files, strict=True):
            try:
                described = self.con.execute(
                    f"DESCRIBE SELECT * FROM read_csv({_quote_literal(str(path))})"
                ).fetchall()
            except duckdb.Error as exc:
                raise InputError(f"cannot read {shown} as CSV: {_first_line(exc)}") from exc
            # Types detected per file legitimately differ (an all-empty column reads as
            # text), so only the column names must agree.
            columns = {row[0]: "" for row in described}
            if first is None:
                first = columns
            else:
                _compare_columns(self.shown[0], first, shown, columns)


def _compare_columns(
    first_path: Path, first: dict[str, str], other_path: Path, other: dict[str, str]
) -> None:
    def mismatch(detail: str) -> InputError:
        return InputError(
            f"{other_path} does not have the same columns as {first_path}: {detail}",
            hint="the files of one dataset version form one table and must share a schema",
        )

    for name, family in first.items():
        if name not in other:
            raise mismatch(f"column {name!r} is in {first_path} but not in {other_path}")
        if family and other[name] != family:
            raise mismatch(
                f"column {name!r} is {family} in {first_path} but {other[name]} in {other_path}"
            )
    for name in other:
        if name not in first:
            raise mismatch(f"column {name!r} is in {other_path} but not in {first_path}")


def _files_label(files: list[Path]) -> str:
    return str(files[0]) if len(files) == 1 else f"{files[0]} (and {len(files) - 1} more)"


# --------------------------------------------------------------------------- types

_INT_TYPES = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
}


def _duckdb_kind(sql_type: str) -> str:
    t = sql_type.upper()
    if t in _INT_TYPES:
        return "int"
    if t in ("FLOAT", "DOUBLE", "REAL"):
        return "float"
    if t.startswith("DECIMAL"):
        return "decimal"
    if t == "VARCHAR":
        return "string"
    if t == "BOOLEAN":
        return "bool"
    if t == "DATE":
        return "date"
    if t.startswith("TIMESTAMP"):
        return "timestamp"
    if t == "BLOB":
        return "binary"
    if t.startswith("ENUM"):
        return "category"
    return "other"


def _family_of_kind(kind: str, sql_type: str) -> str:
    if kind == "decimal":
        return "float"
    if kind == "other":
        return sql_type.lower()
    return kind


def _arrow_family(t: pa.DataType) -> str:
    types = pa.types
    if types.is_dictionary(t):
        return "category"
    if types.is_boolean(t):
        return "bool"
    if types.is_integer(t):
        return "int"
    if types.is_floating(t) or types.is_decimal(t):
        return "float"
    is_string_view = getattr(types, "is_string_view", lambda _t: False)
    if types.is_string(t) or types.is_large_string(t) or is_string_view(t):
        return "string"
    is_binary_view = getattr(types, "is_binary_view", lambda _t: False)
    if (
        types.is_binary(t)
        or types.is_large_binary(t)
        or types.is_fixed_size_binary(t)
        or is_binary_view(t)
    ):
        return "binary"
    if types.is_date(t):
        return "date"
    if types.is_timestamp(t):
        return "timestamp"
    if types.is_null(t):
        return "null"
    return str(t)


def _family_matches(expected: str, family: str) -> bool:
    if expected == "number":
        return family in ("int", "float")
    return expected == family


# --------------------------------------------------------------------------- planning


class _Aggregates:
    """The select list of the single scan; identical expressions are computed once."""

    def __init__(self) -> None:
        self.exprs: list[str] = []
        self._alias: dict[str, int] = {}

    def add(self, expr: str) -> int:
        if expr not in self._alias:
            self._alias[expr] = len(self.exprs)
            self.exprs.append(expr)
        return self._alias[expr]


@dataclass
class _Step:
    """One result to produce: either decided up front or filled from the scan."""

    name: str
    kind: str
    constraint: str
    column: str | None
    severity: Severity
    outcome: tuple[CheckStatus, str, dict[str, Any]] | None = None  # decided, no scan needed
    slots: dict[str, int] = field(default_factory=dict)  # figure -> index in the scan
    failing: str | None = None  # SQL predicate selecting failing rows
    show: str = ""  # SQL expression shown as an example
    text: str = ""  # how a failure reads: "below min 0"
    holds: str = ""  # how a pass reads: ">= 0"
    columns: list[str] = field(default_factory=list)
    sql: str = ""
    bounds: tuple[int | None, int | None] | None = None

    def decide(self, status: CheckStatus, message: str, observed: dict[str, Any]) -> None:
        self.outcome = (status, message, observed)

    def result(self, status: CheckStatus, message: str, observed: dict[str, Any]) -> CheckResult:
        if status == "failed" and self.severity == "warn":
            status = "warn"
        return CheckResult(
            name=self.name,
            kind=self.kind,
            column=self.column,
            status=status,
            message=message,
            observed=observed,
            constraint=self.constraint,
            severity=self.severity,
        )


def _evaluate(
    con: duckdb.DuckDBPyConnection, source: _Source, checks: Sequence[Check]
) -> tuple[int, list[CheckResult]]:
    aggs = _Aggregates()
    rows_slot = aggs.add("count(*)")
    steps: list[_Step] = []
    for check in checks:
        steps.extend(_plan(check, source, aggs))

    figures = _scan(con, source, aggs, steps)
    rows = int(figures[rows_slot]) if figures is not None else _count_rows(con, source)

    results: list[CheckResult] = []
    for step in steps:
        if step.outcome is None:
            if step.constraint == "rows":
                _finish_rows(step, rows)
            elif step.constraint == "sql":
                _finish_sql(con, source, step)
            elif figures is not None:
                _finish_scanned(con, step, [figures[i] for i in step.slots.values()], rows)
        assert step.outcome is not None
        results.append(step.result(*step.outcome))
    return rows, results


def _scan(
    con: duckdb.DuckDBPyConnection, source: _Source, aggs: _Aggregates, steps: list[_Step]
) -> tuple[Any, ...] | None:
    """The figures of the single aggregate query, or None when it failed.

    When it fails, each step is evaluated on its own instead and finished here, so that
    the one that cannot be evaluated becomes an error result and the others still count.
    """
    try:
        row = con.execute(f"SELECT {', '.join(aggs.exprs)} FROM data").fetchone()
    except duckdb.Error as exc:
        _resample_on(exc, source)
        row = None
    if row is not None:
        return row

    total = _count_rows(con, source)
    for step in steps:
        if step.outcome is not None or not step.slots:
            continue
        exprs = [aggs.exprs[i] for i in step.slots.values()]
        try:
            values = con.execute(f"SELECT {', '.join(exprs)} FROM data").fetchone()
        except duckdb.Error as exc:
            _resample_on(exc, source)
            step.decide("error", f"could not evaluate {step.name}: {_first_line(exc)}", {})
            continue
        assert values is not None
        _finish_scanned(con, step, list(values), total)
    return None


def _resample_on(exc: duckdb.Error, source: _Source) -> None:
    """Let a CSV conversion error through to `run_checks`, which detects types again."""
    if source.sampled and isinstance(exc, duckdb.ConversionException):
        raise exc


def _count_rows(con: duckdb.DuckDBPyConnection, source: _Source) -> int:
    try:
        row = con.execute("SELECT count(*) FROM data").fetchone()
    except duckdb.Error as exc:
        _resample_on(exc, source)
        raise InputError(f"cannot read the dataset files: {_first_line(exc)}") from exc
    assert row is not None
    return int(row[0])


def _plan(check: Check, source: _Source, aggs: _Aggregates) -> list[_Step]:
    severity = check.severity
    steps: list[_Step]
    if isinstance(check, ColumnCheck):
        steps = _plan_column(check, source, aggs)
    elif isinstance(check, NotNullCheck):
        names = [check.not_null] if isinstance(check.not_null, str) else list(check.not_null)
        steps = []
        for name in names:
            step = _Step(f"{name} not null", "not_null", "not_null", name, severity)
            if _require_columns(step, [name], source):
                _plan_not_null(step, name, aggs)
            steps.append(step)
    elif isinstance(check, UniqueCheck):
        names = [check.unique] if isinstance(check.unique, str) else list(check.unique)
        label = names[0] if len(names) == 1 else "(" + ", ".join(names) + ")"
        column = names[0] if len(names) == 1 else None
        step = _Step(f"{label} unique", "unique", "unique", column, severity)
        if _require_columns(step, names, source):
            _plan_unique(step, names, aggs)
        steps = [step]
    elif isinstance(check, RowCountCheck):
        low = check.rows.min if check.rows.min is not None else 0
        high = "∞)" if check.rows.max is None else f"{check.rows.max}]"
        step = _Step(f"rows in [{low}, {high}", "rows", "rows", None, severity)
        step.bounds = (check.rows.min, check.rows.max)
        steps = [step]
    elif isinstance(check, SqlCheck):
        text = " ".join(check.sql.split())
        if len(text) > 60:
            text = text[:59] + "…"
        step = _Step(f"sql: {text}", "sql", "sql", None, severity, sql=check.sql)
        steps = [step]
    else:  # pragma: no cover - the spec's union is exhaustive
        raise TypeError(f"unknown check {check!r}")

    if check.name:
        for step in steps:
            step.name = check.name if len(steps) == 1 else f"{check.name}: {step.name}"
    return steps


def _require_columns(step: _Step, names: list[str], source: _Source) -> bool:
    if not names:
        step.decide("error", "the check names no columns", {})
        return False
    missing = [n for n in names if n not in source.by_name]
    if not missing:
        return True
    available = [c.name for c in source.columns]
    parts = []
    for name in missing:
        part = f"column {name!r} not found"
        guess = _did_you_mean(name, available)
        if guess:
            part += f"; did you mean {guess!r}?"
        parts.append(part)
    shown = ", ".join(available[:20]) + (
        f", … ({len(available)} in all)" if len(available) > 20 else ""
    )
    step.decide(
        "error",
        "; ".join(parts) + f" (columns: {shown or 'none'})",
        {"missing": missing, "available": available[:50]},
    )
    return False


def _did_you_mean(name: str, available: list[str]) -> str | None:
    for candidate in available:
        if candidate.lower() == name.lower():
            return candidate
    lowered = {c.lower(): c for c in available}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close else None


def _plan_column(check: ColumnCheck, source: _Source, aggs: _Aggregates) -> list[_Step]:
    name, severity = check.column, check.severity
    wanted: list[tuple[str, str]] = []
    if check.type is not None:
        wanted.append(("type", f"{name} is {check.type}"))
    if check.not_null:
        wanted.append(("not_null", f"{name} not null"))
    if check.min is not None:
        wanted.append(("min", f"{name} >= {_fmt_number(check.min)}"))
    if check.max is not None:
        wanted.append(("max", f"{name} <= {_fmt_number(check.max)}"))
    if check.allowed is not None:
        wanted.append(("allowed", f"{name} in {_fmt_list(check.allowed)}"))
    if check.regex is not None:
        wanted.append(("regex", f"{name} matches '{check.regex}'"))
    if check.unique:
        wanted.append(("unique", f"{name} unique"))

    steps = [_Step(label, "column", constraint, name, severity) for constraint, label in wanted]
    for step in steps:
        if not _require_columns(step, [name], source):
            continue
        column = source.by_name[name]
        if step.constraint == "type":
            assert check.type is not None
            _plan_type(step, column, check.type)
        elif step.constraint == "not_null":
            _plan_not_null(step, name, aggs)
        elif step.constraint in ("min", "max"):
            bound = check.min if step.constraint == "min" else check.max
            assert bound is not None
            _plan_bound(step, column, bound, aggs)
        elif step.constraint == "allowed":
            assert check.allowed is not None
            _plan_allowed(step, column, check.allowed, source.con, aggs)
        elif step.constraint == "regex":
            assert check.regex is not None
            _plan_regex(step, column, check.regex, source.con, aggs)
        elif step.constraint == "unique":
            _plan_unique(step, [name], aggs)
    return steps


def _plan_type(step: _Step, column: _Column, expected: str) -> None:
    observed = {"type": column.type_name, "family": column.family}
    if _family_matches(expected, column.family):
        step.decide("passed", f"{column.name} is {column.type_name}", observed)
    else:
        step.decide(
            "failed", f"{column.name} is {_describe_type(column)}, expected {expected}", observed
        )


def _describe_type(column: _Column) -> str:
    if column.type_name == column.family:
        return column.family
    return f"{column.family} ({column.type_name})"


def _plan_not_null(step: _Step, name: str, aggs: _Aggregates) -> None:
    step.slots["nulls"] = aggs.add(f"count(*) - count({_ident(name)})")


def _plan_bound(step: _Step, column: _Column, bound: float, aggs: _Aggregates) -> None:
    which = step.constraint
    if column.kind not in ("int", "float", "decimal"):
        step.decide(
            "error",
            f"{which} needs a numeric column; {column.name} is {_describe_type(column)}",
            {"type": column.type_name},
        )
        return
    col = _ident(column.name)
    op = "<" if which == "min" else ">"
    failing = f"{col} {op} {_number_literal(bound)}"
    lowest, highest = f"min({col})", f"max({col})"
    if column.kind == "float":
        failing = f"({failing} OR isnan({col}))"
        lowest = f"min({col}) FILTER (WHERE NOT isnan({col}))"
        highest = f"max({col}) FILTER (WHERE NOT isnan({col}))"
        step.slots["nan"] = aggs.add(f"count_if(isnan({col}))")
    step.slots["failing"] = aggs.add(f"count_if({failing})")
    step.slots["min"] = aggs.add(lowest)
    step.slots["max"] = aggs.add(highest)
    step.failing = failing
    step.show = col
    word = "below min" if which == "min" else "above max"
    step.text = f"{word} {_fmt_number(bound)}"
    step.holds = f"{'>=' if which == 'min' else '<='} {_fmt_number(bound)}"
    step.slots["values"] = aggs.add(f"count({col})")


def _plan_allowed(
    step: _Step,
    column: _Column,
    allowed: list[Any],
    con: duckdb.DuckDBPyConnection,
    aggs: _Aggregates,
) -> None:
    literals: list[str] = []
    for value in allowed:
        if value is None:
            continue  # nulls are the business of not_null
        literal = _allowed_literal(value, column, con)
        if literal is None:
            step.decide(
                "error",
                f"allowed value {value!r} cannot be compared with {column.name}, which is "
                f"{_describe_type(column)}",
                {"type": column.type_name},
            )
            return
        literals.append(literal)
    col = _ident(column.name)
    failing = f"{col} NOT IN ({', '.join(literals)})" if literals else f"{col} IS NOT NULL"
    if column.kind == "float":
        # NaN never equals anything, but make that explicit rather than rely on how a
        # comparison with NaN is optimised.
        failing = f"({failing} OR isnan({col}))"
    step.slots["failing"] = aggs.add(f"count_if({failing})")
    step.failing = failing
    step.show = col
    step.text = f"not in {_fmt_list(allowed)}"
    step.holds = f"in {_fmt_list(allowed)}"
    step.slots["values"] = aggs.add(f"count({col})")


def _allowed_literal(value: Any, column: _Column, con: duckdb.DuckDBPyConnection) -> str | None:
    kind = column.kind
    if kind in ("int", "float", "decimal"):
        number: float | int | None = None
        if isinstance(value, bool):
            number = None
        elif isinstance(value, int | float):
            number = value
        elif isinstance(value, str):
            # "7" from a quoted YAML value compares with an int column as 7.
            for parse in (int, float):
                try:
                    number = parse(value)
                    break
                except ValueError:
                    continue
        return None if number is None else _number_literal(number)
    if kind in ("string", "category"):
        if isinstance(value, bool):
            return _quote_literal("true" if value else "false")
        if isinstance(value, int | float | str):
            return _quote_literal(_fmt_number(value) if not isinstance(value, str) else value)
        return None
    if kind == "bool":
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if value in (0, 1) and isinstance(value, int):
            return "TRUE" if value else "FALSE"
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.upper()
        return None
    if kind in ("date", "timestamp"):
        text = value.isoformat() if isinstance(value, _dt.date) else value
        if not isinstance(text, str):
            return None
        literal = f"CAST({_quote_literal(text)} AS {column.sql_type})"
        try:
            con.execute(f"SELECT {literal}").fetchone()
        except duckdb.Error:
            return None
        return literal
    return None


def _plan_regex(
    step: _Step,
    column: _Column,
    pattern: str,
    con: duckdb.DuckDBPyConnection,
    aggs: _Aggregates,
) -> None:
    literal = _quote_literal(pattern)
    try:
        con.execute(f"SELECT regexp_full_match('', {literal})").fetchone()
    except duckdb.Error as exc:
        step.decide("error", f"invalid regex '{pattern}': {_first_line(exc)}", {})
        return
    col = _ident(column.name)
    text = col if column.kind == "string" else f"CAST({col} AS VARCHAR)"
    failing = f"NOT regexp_full_match({text}, {literal})"
    step.slots["failing"] = aggs.add(f"count_if({failing})")
    step.failing = failing
    step.show = col
    step.text = f"do not match '{pattern}'"
    step.holds = f"match '{pattern}'"
    step.slots["values"] = aggs.add(f"count({col})")


def _plan_unique(step: _Step, names: list[str], aggs: _Aggregates) -> None:
    cols = [_ident(n) for n in names]
    step.columns = names
    if len(cols) == 1:
        step.slots["duplicates"] = aggs.add(f"count({cols[0]}) - count(DISTINCT {cols[0]})")
        return
    complete = " AND ".join(f"{c} IS NOT NULL" for c in cols)
    key = f"row({', '.join(cols)})"
    step.slots["duplicates"] = aggs.add(
        f"count_if({complete}) - count(DISTINCT {key}) FILTER (WHERE {complete})"
    )


# --------------------------------------------------------------------------- finishing


def _finish_scanned(
    con: duckdb.DuckDBPyConnection, step: _Step, values: list[Any], rows: int
) -> None:
    figures = dict(zip(step.slots, values, strict=True))
    c = step.constraint
    if c == "not_null":
        nulls = _count(figures["nulls"])
        if nulls == 0:
            step.decide("passed", f"no nulls in {rows:,} rows", {"failing": 0})
        else:
            step.decide("failed", f"{nulls:,} of {rows:,} rows are null", {"failing": nulls})
    elif c in ("min", "max", "allowed", "regex"):
        _finish_rowwise(con, step, figures, rows)
    elif c == "unique":
        _finish_unique(con, step, _count(figures["duplicates"]), rows)
    else:  # pragma: no cover - every scanned constraint is handled above
        raise AssertionError(c)


def _count(value: Any) -> int:
    # count_if over zero rows is NULL, not 0.
    return int(value) if value is not None else 0


def _finish_rowwise(
    con: duckdb.DuckDBPyConnection, step: _Step, figures: dict[str, Any], rows: int
) -> None:
    failing = _count(figures["failing"])
    observed: dict[str, Any] = {"failing": failing}
    for key in ("min", "max"):
        if key in figures:
            observed[key] = _jsonable(figures[key])
    nans = _count(figures.get("nan"))
    if nans:
        observed["nan"] = nans
    if failing == 0:
        values = _count(figures["values"])
        noun = "value" if values == 1 else "values"
        message = f"all {values:,} non-null {noun} {step.holds}"
        if "min" in observed and values:
            message += f" (min {_fmt_value(figures['min'])}, max {_fmt_value(figures['max'])})"
        step.decide("passed", message, observed)
        return

    assert step.failing is not None
    examples = [
        r[0]
        for r in _fetch(
            con, f"SELECT {step.show} FROM data WHERE {step.failing} LIMIT {MAX_EXAMPLES}"
        )
    ]
    observed["examples"] = [_jsonable(v) for v in examples]
    text = step.text
    if nans and step.constraint in ("min", "max"):
        text += " or NaN"
    shown = ", ".join(_fmt_value(v) for v in examples)
    if shown:
        text += f" (first: {shown})"
    step.decide("failed", f"{failing:,} of {rows:,} rows {text}", observed)


def _finish_unique(con: duckdb.DuckDBPyConnection, step: _Step, duplicates: int, rows: int) -> None:
    if duplicates == 0:
        step.decide("passed", f"no duplicates in {rows:,} rows", {"failing": 0})
        return
    cols = [_ident(n) for n in step.columns]
    complete = " AND ".join(f"{c} IS NOT NULL" for c in cols)
    keys = ", ".join(cols)
    # Most repeated first, then by value, so the examples are the same on every run.
    found = _fetch(
        con,
        f"SELECT {keys}, count(*) AS n, count(*) OVER () AS groups FROM data "
        f"WHERE {complete} GROUP BY {keys} HAVING count(*) > 1 "
        f"ORDER BY n DESC, {keys} LIMIT {MAX_EXAMPLES}",
    )
    width = len(cols)
    groups = int(found[0][width + 1]) if found else 0
    examples: list[dict[str, Any]] = []
    shown: list[str] = []
    for row in found:
        count = int(row[width])
        if width == 1:
            examples.append({"value": _jsonable(row[0]), "count": count})
            shown.append(f"{_fmt_value(row[0])} ({count} times)")
        else:
            key = {name: _jsonable(v) for name, v in zip(step.columns, row[:width], strict=True)}
            examples.append({**key, "count": count})
            pairs = ", ".join(
                f"{n}={_fmt_value(v)}" for n, v in zip(step.columns, row[:width], strict=True)
            )
            shown.append(f"({pairs}) ({count} times)")
    label = step.columns[0] if width == 1 else "(" + ", ".join(step.columns) + ")"
    noun = "value" if groups == 1 else "values"
    message = f"{duplicates:,} duplicate rows of {rows:,}"
    if found:
        message += f": {groups:,} {noun} of {label} occur more than once (e.g. {', '.join(shown)})"
    step.decide(
        "failed",
        message,
        {"failing": duplicates, "duplicated_values": groups, "examples": examples},
    )


def _fetch(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    """Rows of an example query; examples are a courtesy, so a failure yields none."""
    try:
        return con.execute(sql).fetchall()
    except duckdb.Error:
        return []


def _finish_rows(step: _Step, rows: int) -> None:
    assert step.bounds is not None
    low, high = step.bounds
    observed = {"rows": rows}
    if low is not None and rows < low:
        step.decide("failed", f"{rows:,} rows, expected at least {low:,}", observed)
    elif high is not None and rows > high:
        step.decide("failed", f"{rows:,} rows, expected at most {high:,}", observed)
    else:
        step.decide("passed", f"{rows:,} rows", observed)


def _finish_sql(con: duckdb.DuckDBPyConnection, source: _Source, step: _Step) -> None:
    try:
        statements = duckdb.extract_statements(step.sql)
    except duckdb.Error as exc:
        step.decide("error", _first_line(exc), {})
        return
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        kinds = ", ".join(s.type.name for s in statements) or "nothing"
        step.decide("error", f"a SQL check must be one SELECT query; found {kinds}", {})
        return
    try:
        cursor = con.execute(step.sql)
        width = len(cursor.description or [])
        found = cursor.fetchmany(2)
    except duckdb.Error as exc:
        _resample_on(exc, source)
        step.decide("error", _first_line(exc), {})
        return
    expected = "expected one row with one true or non-zero value"
    if width != 1:
        names = ", ".join(d[0] for d in cursor.description or [])
        step.decide("error", f"returned {width} columns ({names}); {expected}", {})
        return
    if len(found) != 1:
        got = "no rows" if not found else "more than one row"
        step.decide("error", f"returned {got}; {expected}", {})
        return
    value = found[0][0]
    observed = {"value": _jsonable(value)}
    if value is None:
        step.decide("failed", "returned NULL", observed)
    elif isinstance(value, bool):
        step.decide("passed" if value else "failed", f"returned {str(value).lower()}", observed)
    elif isinstance(value, int | float | decimal.Decimal):
        good = value != 0 and not (isinstance(value, float) and math.isnan(value))
        step.decide("passed" if good else "failed", f"returned {_fmt_value(value)}", observed)
    else:
        step.decide(
            "error", f"returned {_fmt_value(value)} ({type(value).__name__}); {expected}", observed
        )


# --------------------------------------------------------------------------- formatting


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _number_literal(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "CAST('NaN' AS DOUBLE)"
    if math.isinf(value):
        return "CAST('Infinity' AS DOUBLE)" if value > 0 else "CAST('-Infinity' AS DOUBLE)"
    if value.is_integer() and abs(value) < 2**63:
        return str(int(value))
    return f"CAST({value!r} AS DOUBLE)"


def _fmt_number(value: float | int) -> str:
    if isinstance(value, float):
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def _fmt_list(values: list[Any]) -> str:
    shown = [_fmt_value(v) for v in values[:8]]
    if len(values) > 8:
        shown.append(f"… {len(values)} values")
    return "[" + ", ".join(shown) + "]"


def _fmt_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return _fmt_number(value)
    if isinstance(value, str):
        return repr(_clip(value))
    if isinstance(value, bytes | bytearray | memoryview):
        return "0x" + _clip(bytes(value).hex())
    if isinstance(value, _dt.date | _dt.time):
        return value.isoformat()
    return _clip(str(value))


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def _jsonable(value: Any) -> Any:
    """A value as stored in `observed`: JSON without NaN, short strings."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, str):
        return _clip(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return _clip(bytes(value).hex())
    if isinstance(value, _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, uuid.UUID):
        return str(value)
    return _clip(str(value))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
