"""Data-quality checks over Parquet and CSV files (seaway.data.checks)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from pydantic import TypeAdapter, ValidationError

from seaway.data import checks as checks_module
from seaway.data.checks import CheckReport, CheckResult, run_checks
from seaway.errors import CheckFailed, InputError
from seaway.spec.checks import Check

_CHECKS = TypeAdapter(list[Check])


def checks(*declared: dict[str, Any]) -> list[Check]:
    """Checks as the spec loader builds them from seaway.yaml."""
    return _CHECKS.validate_python(list(declared))


def by_name(report: CheckReport) -> dict[str, CheckResult]:
    names = [r.name for r in report.results]
    assert len(names) == len(set(names)), f"duplicate result names: {names}"
    return {r.name: r for r in report.results}


# Ten customers with known problems: rows 2, 7, 10 have a negative tenure, row 4 is above
# 120, row 5 has no tenure; churned holds 2 and 3; customer 3 occurs twice and 6 three
# times; one customer_id is missing; two emails lack an "@".
CUSTOMERS: dict[str, list[Any]] = {
    "customer_id": [1, 2, 3, 3, 5, 6, 6, 6, None, 10],
    "tenure": [5, -1, 10, 200, None, 7, -5, 3, 4, -2],
    "churned": [0, 1, 2, 0, 1, None, 0, 3, 1, 0],
    "email": ["a@b", "x", None, "c@d", "e@f", "g@h", "i@j", "k@l", "m@n", "bad"],
    "plan": ["basic", "pro", "pro", "team", "basic", "basic", "gold", "pro", None, "team"],
}

CLEAN: dict[str, list[Any]] = {
    "customer_id": [1, 2, 3, 4],
    "tenure": [0, 12, 120, 60],
    "churned": [0, 1, 1, 0],
    "email": ["a@b", "c@d", "e@f", "g@h"],
    "plan": ["basic", "pro", "team", "pro"],
}


def write_parquet(path: Path, columns: dict[str, list[Any]] | pa.Table) -> Path:
    table = columns if isinstance(columns, pa.Table) else pa.table(columns)
    pq.write_table(table, path)
    return path


def write_csv(path: Path, columns: dict[str, list[Any]] | pa.Table) -> Path:
    table = columns if isinstance(columns, pa.Table) else pa.table(columns)
    pa_csv.write_csv(table, path)
    return path


@pytest.fixture
def customers(tmp_path: Path) -> Path:
    return write_parquet(tmp_path / "customers.parquet", CUSTOMERS)


@pytest.fixture
def clean(tmp_path: Path) -> Path:
    return write_parquet(tmp_path / "clean.parquet", CLEAN)


# --------------------------------------------------------------------------- passing


def test_clean_data_passes_every_kind_of_check(clean: Path) -> None:
    report = run_checks(
        checks(
            {"column": "tenure", "type": "int", "min": 0, "max": 120, "not_null": True},
            {"column": "churned", "allowed": [0, 1]},
            {"column": "email", "regex": "^[^@]+@[^@]+$"},
            {"column": "plan", "allowed": ["basic", "pro", "team"]},
            {"not_null": ["customer_id", "email"]},
            {"unique": "customer_id"},
            {"unique": ["plan", "churned"]},
            {"rows": {"min": 4, "max": 4}},
            {"sql": "select count(*) = 0 from data where tenure < 0"},
        ),
        [clean],
    )
    assert report.status == "passed"
    assert report.passed
    assert report.rows == 4
    assert report.columns == ["customer_id", "tenure", "churned", "email", "plan"]
    assert [r.status for r in report.results] == ["passed"] * len(report.results)
    assert len(report.results) == 13  # tenure: type, not_null, min, max; not_null: 2 columns
    results = by_name(report)
    assert results["tenure >= 0"].message == "all 4 non-null values >= 0 (min 0, max 120)"
    assert results["churned in [0, 1]"].message == "all 4 non-null values in [0, 1]"
    assert results["customer_id unique"].message == "no duplicates in 4 rows"
    assert results["rows in [4, 4]"].message == "4 rows"
    assert report.failures == []


# --------------------------------------------------------------------------- failing


def test_min_and_max_report_counts_and_first_examples(customers: Path) -> None:
    report = run_checks(checks({"column": "tenure", "min": 0, "max": 120}), [customers])
    low, high = report.results
    assert (low.name, low.kind, low.constraint, low.column) == (
        "tenure >= 0",
        "column",
        "min",
        "tenure",
    )
    assert low.status == "failed"
    assert low.message == "3 of 10 rows below min 0 (first: -1, -5, -2)"
    assert low.observed == {"failing": 3, "min": -5, "max": 200, "examples": [-1, -5, -2]}
    assert high.name == "tenure <= 120"
    assert high.status == "failed"
    assert high.message == "1 of 10 rows above max 120 (first: 200)"
    assert high.observed["failing"] == 1
    assert report.status == "failed"


def test_a_column_check_gives_one_result_per_constraint(customers: Path) -> None:
    report = run_checks(
        checks({"column": "tenure", "type": "int", "not_null": True, "min": -10, "max": 120}),
        [customers],
    )
    assert [(r.constraint, r.status) for r in report.results] == [
        ("type", "passed"),
        ("not_null", "failed"),
        ("min", "passed"),
        ("max", "failed"),
    ]


def test_allowed_values(customers: Path) -> None:
    report = run_checks(
        checks(
            {"column": "churned", "allowed": [0, 1]},
            {"column": "plan", "allowed": ["basic", "pro", "team"]},
        ),
        [customers],
    )
    churned, plan = report.results
    assert churned.name == "churned in [0, 1]"
    assert churned.message == "2 of 10 rows not in [0, 1] (first: 2, 3)"
    assert churned.observed == {"failing": 2, "examples": [2, 3]}
    assert plan.name == "plan in ['basic', 'pro', 'team']"
    assert plan.message == "1 of 10 rows not in ['basic', 'pro', 'team'] (first: 'gold')"


def test_regex_must_match_the_whole_value(customers: Path) -> None:
    report = run_checks(
        checks({"column": "email", "regex": "^[^@]+@[^@]+$"}, {"column": "email", "regex": "@"}),
        [customers],
    )
    anchored, bare = report.results
    assert anchored.name == "email matches '^[^@]+@[^@]+$'"
    assert anchored.message == "2 of 10 rows do not match '^[^@]+@[^@]+$' (first: 'x', 'bad')"
    assert anchored.observed == {"failing": 2, "examples": ["x", "bad"]}
    # "@" alone matches no whole email: all nine non-null values fail.
    assert bare.observed["failing"] == 9


def test_not_null_gives_one_result_per_column(customers: Path) -> None:
    report = run_checks(
        checks({"not_null": ["customer_id", "email", "tenure", "plan"]}), [customers]
    )
    assert [(r.name, r.kind, r.status, r.observed["failing"]) for r in report.results] == [
        ("customer_id not null", "not_null", "failed", 1),
        ("email not null", "not_null", "failed", 1),
        ("tenure not null", "not_null", "failed", 1),
        ("plan not null", "not_null", "failed", 1),
    ]
    assert report.results[0].message == "1 of 10 rows are null"


def test_unique_reports_duplicate_rows_and_most_repeated_values(customers: Path) -> None:
    report = run_checks(
        checks({"unique": "customer_id"}, {"column": "email", "unique": True}), [customers]
    )
    ids, emails = report.results
    assert ids.status == "failed"
    assert ids.observed == {
        "failing": 3,
        "duplicated_values": 2,
        "examples": [{"value": 6, "count": 3}, {"value": 3, "count": 2}],
    }
    assert ids.message == (
        "3 duplicate rows of 10: 2 values of customer_id occur more than once "
        "(e.g. 6 (3 times), 3 (2 times))"
    )
    assert emails.status == "passed"


def test_composite_unique_key(tmp_path: Path) -> None:
    path = write_parquet(
        tmp_path / "orders.parquet",
        {
            "customer": [1, 1, 2, 2, 2, 3, 3],
            "day": ["mon", "tue", "mon", "mon", "mon", None, None],
        },
    )
    report = run_checks(checks({"unique": ["customer", "day"]}), [path])
    (result,) = report.results
    assert result.name == "(customer, day) unique"
    assert result.column is None
    # (2, mon) occurs three times; (3, null) twice but keys with a null are ignored.
    assert result.observed == {
        "failing": 2,
        "duplicated_values": 1,
        "examples": [{"customer": 2, "day": "mon", "count": 3}],
    }
    assert "(customer=2, day='mon') (3 times)" in result.message

    single = run_checks(checks({"unique": "customer"}), [path])
    assert single.results[0].observed["failing"] == 4


def test_row_count(customers: Path) -> None:
    report = run_checks(
        checks(
            {"rows": {"min": 1000}},
            {"rows": {"max": 5}},
            {"rows": {"min": 10, "max": 10}},
        ),
        [customers],
    )
    low, high, exact = report.results
    assert (low.name, low.status, low.message) == (
        "rows in [1000, ∞)",
        "failed",
        "10 rows, expected at least 1,000",
    )
    assert (high.name, high.status, high.message) == (
        "rows in [0, 5]",
        "failed",
        "10 rows, expected at most 5",
    )
    assert exact.status == "passed"
    assert low.observed == {"rows": 10}


def test_sql_checks_pass_on_true_or_non_zero(customers: Path) -> None:
    report = run_checks(
        checks(
            {"sql": "select count(*) = 0 from data where tenure > 500"},
            {"sql": "select count(*) from data where plan = 'gold'"},
            {"sql": "select count(*) = 0 from data where tenure < 0"},
            {"sql": "select count(*) from data where plan = 'platinum'"},
            {"sql": "select max(tenure) from data where plan = 'platinum'"},
        ),
        [customers],
    )
    assert [(r.status, r.message) for r in report.results] == [
        ("passed", "returned true"),
        ("passed", "returned 1"),
        ("failed", "returned false"),
        ("failed", "returned 0"),
        ("failed", "returned NULL"),
    ]
    assert report.results[0].name == "sql: select count(*) = 0 from data where tenure > 500"
    assert report.results[0].kind == "sql"


def test_failing_figures_never_exceed_five_examples(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "t.parquet", {"x": list(range(-20, 5))})
    (result,) = run_checks(checks({"column": "x", "min": 0}), [path]).results
    assert result.observed["failing"] == 20
    assert result.observed["examples"] == [-20, -19, -18, -17, -16]


# --------------------------------------------------------------------------- nulls, NaN


def test_nulls_only_fail_not_null(tmp_path: Path) -> None:
    path = write_parquet(
        tmp_path / "t.parquet",
        {"n": [1, None, 2, None], "s": ["a", None, "a", None]},
    )
    report = run_checks(
        checks(
            {"column": "n", "min": 1, "max": 2, "allowed": [1, 2]},
            {"column": "s", "regex": "a", "allowed": ["a"], "unique": False},
            {"column": "n", "not_null": True},
            {"unique": "s"},
        ),
        [path],
    )
    statuses = {r.name: r.status for r in report.results}
    assert statuses == {
        "n >= 1": "passed",
        "n <= 2": "passed",
        "n in [1, 2]": "passed",
        "s matches 'a'": "passed",
        "s in ['a']": "passed",
        "n not null": "failed",
        "s unique": "failed",  # 'a' twice; the two nulls are not duplicates
    }
    assert by_name(report)["n not null"].observed == {"failing": 2}
    assert by_name(report)["s unique"].observed["failing"] == 1
    assert by_name(report)["n >= 1"].message == "all 2 non-null values >= 1 (min 1, max 2)"


def test_nan_is_outside_any_range(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "t.parquet", {"x": [0.5, float("nan"), 2.0, None]})
    report = run_checks(checks({"column": "x", "min": 0, "max": 1}), [path])
    low, high = report.results
    assert low.observed == {"failing": 1, "min": 0.5, "max": 2.0, "nan": 1, "examples": ["NaN"]}
    assert low.message == "1 of 4 rows below min 0 or NaN (first: NaN)"
    assert high.observed["failing"] == 2
    assert high.observed["examples"] == ["NaN", 2.0]
    # The stored form is strict JSON (PostgreSQL's JSONB refuses NaN).
    json.dumps(report.to_dict(), allow_nan=False)


# --------------------------------------------------------------------------- severity


def test_warn_severity_reports_without_failing(customers: Path) -> None:
    report = run_checks(
        checks(
            {"column": "tenure", "min": 0, "severity": "warn"},
            {"sql": "select nonsense from data", "severity": "warn"},
            {"column": "churned", "allowed": [0, 1, 2, 3]},
        ),
        [customers],
    )
    assert [(r.status, r.severity) for r in report.results] == [
        ("warn", "warn"),
        ("error", "warn"),
        ("passed", "error"),
    ]
    assert report.status == "passed"
    assert report.warnings == [report.results[0]]
    assert report.failures == []


def test_error_severity_failure_fails_the_report(customers: Path) -> None:
    report = run_checks(
        checks({"column": "tenure", "min": 0, "severity": "warn"}, {"rows": {"max": 3}}),
        [customers],
    )
    assert report.status == "failed"
    assert [r.name for r in report.failures] == ["rows in [0, 3]"]
    with pytest.raises(CheckFailed) as raised:
        report.raise_for_status("customers")
    assert raised.value.exit_code == 1
    assert "customers" in str(raised.value)
    assert "rows in [0, 3]: 10 rows, expected at most 3" in str(raised.value)


def test_names_from_the_declaration(customers: Path) -> None:
    report = run_checks(
        checks(
            {"column": "tenure", "min": 0, "name": "tenure sane"},
            {"column": "tenure", "min": 0, "max": 120, "name": "tenure range"},
            {"sql": "select true", "name": "always"},
        ),
        [customers],
    )
    assert [r.name for r in report.results] == [
        "tenure sane",
        "tenure range: tenure >= 0",
        "tenure range: tenure <= 120",
        "always",
    ]


# --------------------------------------------------------------------------- errors


def test_missing_column_is_an_error_with_did_you_mean(customers: Path) -> None:
    report = run_checks(
        checks(
            {"column": "tenur", "min": 0},
            {"not_null": ["customer_id", "Email"]},
            {"unique": ["customer_id", "xyzzy"]},
            {"column": "churned", "allowed": [0, 1]},
        ),
        [customers],
    )
    tenure, customer_id, email, key, churned = report.results
    assert tenure.status == "error"
    assert tenure.message == (
        "column 'tenur' not found; did you mean 'tenure'? "
        "(columns: customer_id, tenure, churned, email, plan)"
    )
    assert customer_id.status == "failed"  # the present column is still checked
    assert email.status == "error"
    assert "did you mean 'email'?" in email.message
    assert key.status == "error"
    assert "column 'xyzzy' not found (columns:" in key.message
    assert churned.status == "failed"  # other checks still run
    assert report.status == "failed"


def test_a_check_naming_no_columns_is_refused_when_declared() -> None:
    for empty in ({"unique": []}, {"not_null": []}, {"column": "x", "allowed": []}):
        with pytest.raises(ValidationError, match="at least 1 item"):
            checks(empty)
    with pytest.raises(ValidationError, match="greater than max"):
        checks({"rows": {"min": 5, "max": 1}})


def test_bad_sql_is_an_error_result_and_other_checks_still_run(customers: Path) -> None:
    report = run_checks(
        checks(
            {"sql": "selec count(*) from data"},
            {"sql": "select count(*) from data where no_such_column > 0"},
            {"sql": "select count(*) > 0 from data"},
        ),
        [customers],
    )
    syntax, column, good = report.results
    assert syntax.status == "error"
    assert syntax.message.startswith("Parser Error: syntax error")
    assert "\n" not in syntax.message
    assert column.status == "error"
    assert "no_such_column" in column.message
    assert "\n" not in column.message
    assert good.status == "passed"


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (
            "select tenure from data",
            "returned more than one row; expected one row with one true or non-zero value",
        ),
        (
            "select tenure from data where tenure > 1000",
            "returned no rows; expected one row with one true or non-zero value",
        ),
        (
            "select 1, 2",
            "returned 2 columns (1, 2); expected one row with one true or non-zero value",
        ),
        (
            "select 'yes'",
            "returned 'yes' (str); expected one row with one true or non-zero value",
        ),
        ("copy data to 'out.csv'", "a SQL check must be one SELECT query; found COPY"),
        ("select 1; select 2", "a SQL check must be one SELECT query; found SELECT, SELECT"),
    ],
)
def test_sql_must_return_one_value(customers: Path, sql: str, message: str) -> None:
    (result,) = run_checks(checks({"sql": sql}), [customers]).results
    assert (result.status, result.message) == ("error", message)


def test_sql_checks_can_read_only_the_dataset(customers: Path, tmp_path: Path) -> None:
    secret = write_csv(tmp_path / "secret.csv", {"x": [1]})
    (result,) = run_checks(
        checks({"sql": f"select count(*) > 0 from read_csv('{secret.as_posix()}')"}), [customers]
    ).results
    assert result.status == "error"
    assert "Permission Error" in result.message


def test_constraints_that_do_not_fit_the_column_type_are_errors(customers: Path) -> None:
    report = run_checks(
        checks(
            {"column": "email", "min": 0},
            {"column": "churned", "allowed": [0, "yes"]},
            {"column": "email", "regex": "(unclosed"},
            {"column": "tenure", "min": 0},
        ),
        [customers],
    )
    minimum, allowed, regex, tenure = report.results
    assert (minimum.status, minimum.message) == (
        "error",
        "min needs a numeric column; email is string",
    )
    assert allowed.status == "error"
    assert (
        allowed.message
        == "allowed value 'yes' cannot be compared with churned, which is int (int64)"
    )
    assert regex.status == "error"
    assert regex.message.startswith("invalid regex '(unclosed': ")
    assert tenure.status == "failed"


def test_a_check_that_cannot_be_evaluated_does_not_stop_the_others(
    customers: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every constraint is validated before the scan, so simulate one that slips through
    # and fails inside the single aggregate query.
    original = checks_module._plan_not_null

    def plan(step: Any, name: str, aggs: Any) -> None:
        original(step, name, aggs)
        if name == "email":
            step.slots["nulls"] = aggs.add('count(CAST("email" AS INTEGER))')

    monkeypatch.setattr(checks_module, "_plan_not_null", plan)
    report = run_checks(
        checks({"not_null": ["tenure", "email", "plan"]}, {"column": "tenure", "min": 0}),
        [customers],
    )
    tenure, email, plan_, minimum = report.results
    assert email.status == "error"
    assert email.message.startswith("could not evaluate email not null: Conversion Error")
    assert [tenure.status, plan_.status, minimum.status] == ["failed", "failed", "failed"]
    assert minimum.observed["failing"] == 3


def test_allowed_values_are_compared_in_the_column_type(tmp_path: Path) -> None:
    path = write_parquet(
        tmp_path / "t.parquet",
        {"flag": [True, False, True], "code": ["1", "2", "3"], "n": [1, 2, 3]},
    )
    report = run_checks(
        checks(
            {"column": "flag", "allowed": [True]},
            {"column": "code", "allowed": [1, 2]},
            {"column": "n", "allowed": ["1", "2.0", 3]},
        ),
        [path],
    )
    flag, code, n = report.results
    assert flag.observed == {"failing": 1, "examples": [False]}
    assert code.observed == {"failing": 1, "examples": ["3"]}
    assert n.status == "passed"


# --------------------------------------------------------------------------- types


def test_type_families(tmp_path: Path) -> None:
    table = pa.table(
        {
            "i32": pa.array([1, 2], pa.int32()),
            "u8": pa.array([1, 2], pa.uint8()),
            "f32": pa.array([1.5, 2.5], pa.float32()),
            "dec": pa.array([1, 2], pa.decimal128(10, 2)),
            "s": pa.array(["a", "b"], pa.large_string()),
            "b": pa.array([True, False]),
            "d": pa.array([dt.date(2024, 1, 1), dt.date(2024, 1, 2)]),
            "ts": pa.array([dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2)], pa.timestamp("us")),
            "tz": pa.array([dt.datetime(2024, 1, 1)] * 2, pa.timestamp("ms", tz="UTC")),
            "bin": pa.array([b"\x00", b"\x01"]),
            "cat": pa.array(["x", "y"]).dictionary_encode(),
        }
    )
    path = write_parquet(tmp_path / "types.parquet", table)
    expected = {
        "i32": "int",
        "u8": "int",
        "f32": "float",
        "dec": "float",
        "s": "string",
        "b": "bool",
        "d": "date",
        "ts": "timestamp",
        "tz": "timestamp",
        "bin": "binary",
        "cat": "category",
    }
    families = [
        "int",
        "float",
        "number",
        "string",
        "bool",
        "date",
        "timestamp",
        "binary",
        "category",
    ]
    declared = [{"column": c, "type": f} for c in expected for f in families]
    report = run_checks(checks(*declared), [path])
    passed = {(r.column, r.name.split(" is ")[1]) for r in report.results if r.status == "passed"}
    want = {(c, f) for c, f in expected.items()}
    want |= {(c, "number") for c, f in expected.items() if f in ("int", "float")}
    assert passed == want
    assert {r.status for r in report.results} == {"passed", "failed"}

    (mismatch,) = run_checks(checks({"column": "cat", "type": "string"}), [path]).results
    assert mismatch.status == "failed"
    assert mismatch.message == (
        "cat is category (dictionary<values=string, indices=int32, ordered=0>), expected string"
    )
    assert mismatch.observed["family"] == "category"


def test_csv_types_come_from_detection(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("n,x,s,d,flag\n1,1.5,a,2024-01-01,true\n2,2.5,b,2024-01-02,false\n")
    report = run_checks(
        checks(
            {"column": "n", "type": "int"},
            {"column": "x", "type": "float"},
            {"column": "s", "type": "string"},
            {"column": "d", "type": "date"},
            {"column": "flag", "type": "bool"},
            {"column": "n", "type": "string"},
        ),
        [path],
    )
    assert [r.status for r in report.results] == ["passed"] * 5 + ["failed"]
    assert report.results[-1].message == "n is int (BIGINT), expected string"


# --------------------------------------------------------------------------- files


def test_several_files_form_one_table(tmp_path: Path) -> None:
    first = write_parquet(tmp_path / "part-0.parquet", {"id": [1, 2, 3], "tenure": [1, -1, 2]})
    second = write_parquet(tmp_path / "part-1.parquet", {"id": [3, 4, 5], "tenure": [-7, 5, 6]})
    report = run_checks(
        checks({"unique": "id"}, {"column": "tenure", "min": 0}, {"rows": {"min": 6}}),
        [first, second],
    )
    unique, tenure, rows = report.results
    assert report.rows == 6
    assert unique.observed["failing"] == 1
    assert unique.observed["examples"] == [{"value": 3, "count": 2}]
    assert tenure.observed["examples"] == [-1, -7]  # in file order
    assert rows.status == "passed"


def test_files_may_order_their_columns_differently(tmp_path: Path) -> None:
    first = write_parquet(tmp_path / "a.parquet", {"id": [1], "name": ["x"]})
    second = write_parquet(tmp_path / "b.parquet", {"name": ["y"], "id": [1]})
    report = run_checks(
        checks({"unique": "id"}, {"column": "name", "allowed": ["x"]}), [first, second]
    )
    assert report.results[0].observed["failing"] == 1
    assert report.results[1].observed["examples"] == ["y"]


def test_files_with_different_columns_are_refused(tmp_path: Path) -> None:
    first = write_parquet(tmp_path / "a.parquet", {"id": [1], "tenure": [1]})
    missing = write_parquet(tmp_path / "b.parquet", {"id": [2]})
    retyped = write_parquet(tmp_path / "c.parquet", {"id": [3], "tenure": ["one"]})

    with pytest.raises(InputError) as raised:
        run_checks(checks({"unique": "id"}), [first, missing])
    message = str(raised.value)
    assert "'tenure'" in message
    assert str(first) in message
    assert str(missing) in message

    with pytest.raises(InputError) as raised:
        run_checks(checks({"unique": "id"}), [first, retyped])
    assert f"column 'tenure' is int in {first} but string in {retyped}" in str(raised.value)


def test_csv_files_with_different_headers_are_refused(tmp_path: Path) -> None:
    first = write_csv(tmp_path / "a.csv", {"id": [1, 2], "tenure": [1, 2]})
    second = write_csv(tmp_path / "b.csv", {"id": [3, 4], "months": [1, 2]})
    with pytest.raises(InputError) as raised:
        run_checks(checks({"unique": "id"}), [first, second])
    assert f"column 'tenure' is in {first} but not in {second}" in str(raised.value)


def test_csv_and_parquet_give_the_same_results(tmp_path: Path) -> None:
    declared = checks(
        {"column": "tenure", "min": 0, "max": 120, "not_null": True, "type": "number"},
        {"column": "churned", "allowed": [0, 1]},
        {"column": "email", "regex": "^[^@]+@[^@]+$"},
        {"column": "plan", "allowed": ["basic", "pro", "team"]},
        {"not_null": ["customer_id", "plan"]},
        {"unique": "customer_id"},
        {"unique": ["customer_id", "plan"]},
        {"rows": {"min": 5}},
        {"sql": "select count(*) = 0 from data where churned > 1"},
    )
    parquet = run_checks(declared, [write_parquet(tmp_path / "c.parquet", CUSTOMERS)])
    csv = run_checks(declared, [write_csv(tmp_path / "c.csv", CUSTOMERS)])
    assert csv.rows == parquet.rows == 10
    assert csv.columns == parquet.columns
    assert [(r.name, r.status, r.message) for r in csv.results if r.constraint != "type"] == [
        (r.name, r.status, r.message) for r in parquet.results if r.constraint != "type"
    ]
    assert [r.observed for r in csv.results if r.constraint != "type"] == [
        r.observed for r in parquet.results if r.constraint != "type"
    ]
    assert csv.status == parquet.status == "failed"


def test_csv_variants_gzip_and_tsv_form_one_table(tmp_path: Path) -> None:
    plain = write_csv(tmp_path / "a.csv", {"id": [1, 2], "v": [1, -1]})
    gz = tmp_path / "b.csv.gz"
    with pa.CompressedOutputStream(str(gz), "gzip") as out:
        pa_csv.write_csv(pa.table({"id": [3], "v": [-2]}), out)
    tsv = tmp_path / "c.tsv"
    tsv.write_text("id\tv\n4\t5\n")
    report = run_checks(checks({"column": "v", "min": 0}, {"unique": "id"}), [plain, gz, tsv])
    assert report.rows == 4
    assert report.results[0].observed["examples"] == [-1, -2]
    assert report.results[1].status == "passed"


def test_csv_value_past_the_detection_sample(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    lines = ["code,v"] + [f"{i},1" for i in range(30_000)] + ["A17,1"]
    path.write_text("\n".join(lines) + "\n")
    report = run_checks(
        checks({"column": "code", "regex": "[0-9]+"}, {"column": "v", "allowed": [1]}), [path]
    )
    assert report.rows == 30_001
    assert report.results[0].message == "1 of 30,001 rows do not match '[0-9]+' (first: 'A17')"
    assert report.results[1].status == "passed"


def test_non_tabular_files_are_ignored(tmp_path: Path, customers: Path) -> None:
    (tmp_path / "README.md").write_text("# customers\n")
    (tmp_path / "_SUCCESS").write_text("")
    report = run_checks(
        checks({"rows": {"min": 10, "max": 10}}),
        [tmp_path / "README.md", customers, tmp_path / "_SUCCESS"],
    )
    assert report.status == "passed"
    assert report.rows == 10


def test_no_tabular_file_is_an_input_error(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(InputError) as raised:
        run_checks(checks({"rows": {"min": 1}}), [notes])
    assert raised.value.exit_code == 2
    for suffix in (".parquet", ".pq", ".csv", ".csv.gz", ".tsv"):
        assert suffix in raised.value.message
    # Without declared checks there is nothing to do and nothing to complain about.
    assert run_checks([], [notes]).to_dict()["status"] == "passed"


def test_mixed_formats_are_refused(tmp_path: Path, customers: Path) -> None:
    other = write_csv(tmp_path / "more.csv", CUSTOMERS)
    with pytest.raises(InputError, match="mixes Parquet"):
        run_checks(checks({"rows": {"min": 1}}), [customers, other])
    # Naming the format picks its files.
    report = run_checks(checks({"rows": {"min": 1}}), [customers, other], fmt="csv")
    assert report.rows == 10


def test_explicit_format_reads_files_without_extension(tmp_path: Path) -> None:
    blob = tmp_path / "3f2a9c"
    write_parquet(blob, {"x": [1, -1]})
    with pytest.raises(InputError):
        run_checks(checks({"column": "x", "min": 0}), [blob])
    report = run_checks(checks({"column": "x", "min": 0}), [blob], fmt="parquet")
    assert report.results[0].observed["failing"] == 1


def test_unreadable_parquet_is_an_input_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match=r"broken\.parquet"):
        run_checks(checks({"rows": {"min": 1}}), [broken])
    with pytest.raises(InputError, match="no such file"):
        run_checks(checks({"rows": {"min": 1}}), [tmp_path / "gone.parquet"])


def test_empty_table(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "empty.parquet", pa.table({"x": pa.array([], pa.int64())}))
    report = run_checks(
        checks({"column": "x", "min": 0, "not_null": True, "unique": True}, {"rows": {"min": 1}}),
        [path],
    )
    assert report.rows == 0
    assert [r.status for r in report.results] == ["passed", "passed", "passed", "failed"]


# --------------------------------------------------------------------------- the report


def test_report_round_trips_through_json(customers: Path) -> None:
    report = run_checks(
        checks(
            {"column": "tenure", "min": 0, "max": 120, "not_null": True},
            {"unique": ["customer_id", "plan"]},
            {"column": "email", "regex": "^[^@]+@[^@]+$", "severity": "warn"},
            {"sql": "select nonsense"},
            {"rows": {"min": 1}},
        ),
        [customers],
    )
    data = report.to_dict()
    text = json.dumps(data, allow_nan=False)
    again = CheckReport.from_dict(json.loads(text))
    assert again == report
    assert again.to_dict() == data
    assert set(data) == {"format", "status", "rows", "columns", "duration_s", "counts", "results"}
    assert data["counts"] == {"passed": 2, "failed": 3, "warn": 1, "error": 1}
    assert set(data["results"][0]) == {
        "name",
        "kind",
        "constraint",
        "column",
        "severity",
        "status",
        "message",
        "observed",
    }
    assert report.summary() == "7 checks: 2 passed, 3 failed, 1 warn, 1 error"


def test_from_dict_refuses_malformed_reports() -> None:
    with pytest.raises(ValueError, match="rows"):
        CheckReport.from_dict({"status": "passed", "columns": [], "results": []})
    with pytest.raises(ValueError, match="status"):
        CheckReport.from_dict({"status": "great", "rows": 1, "columns": [], "results": []})


def test_examples_of_dates_and_long_text_are_json(tmp_path: Path) -> None:
    path = write_parquet(
        tmp_path / "t.parquet",
        {
            "day": [dt.date(2024, 1, 1), dt.date(2023, 6, 1)],
            "text": ["x" * 500, "ok"],
        },
    )
    report = run_checks(
        checks(
            {"column": "day", "allowed": ["2024-01-01"]},
            {"column": "text", "allowed": ["ok"]},
        ),
        [path],
    )
    day, text = report.results
    assert day.observed["examples"] == ["2023-06-01"]
    assert len(text.observed["examples"][0]) <= 80
    json.dumps(report.to_dict(), allow_nan=False)
