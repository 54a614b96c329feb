"""Loading spec files: error reporting, file problems, environments, cross-file rules."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from seaway.errors import SpecError
from seaway.project import Project
from seaway.spec import (
    InvalidSpec,
    inspect_project,
    load_environment,
    load_environments,
    load_project,
    validate_project,
)

TESTDATA = Path(__file__).parent / "testdata"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(path: Path, *, environment: bool = False) -> list[str]:
    with pytest.raises(SpecError) as info:
        (load_environment if environment else load_project)(path)
    return info.value.problems


def test_project_spec_is_loaded_through_project(project_dir: Path) -> None:
    write(project_dir / "seaway.yaml", "name: demo\nstore: {artifacts: blobs}\n")
    project = Project.find()
    assert project.spec.name == "demo"
    assert project.artifacts_url == str(project_dir.resolve() / "blobs")


def test_a_broken_spec_stops_project_commands(project_dir: Path) -> None:
    write(project_dir / "seaway.yaml", "name: demo\nstore: {artefacts: blobs}\n")
    with pytest.raises(SpecError, match=r"seaway\.yaml is not valid"):
        _ = Project.find().artifacts_url


def test_load_project_accepts_the_directory(tmp_path: Path) -> None:
    write(tmp_path / "seaway.yaml", "name: demo\n")
    assert load_project(tmp_path).name == "demo"


def test_all_problems_of_a_file_come_together_in_line_order(tmp_path: Path) -> None:
    spec = write(
        tmp_path / "seaway.yaml",
        """\
        nme: churn
        datasets:
          customers:
            format: xlsx
            checks:
              - {column: tenure, mn: 0}
        """,
    )
    with pytest.raises(InvalidSpec) as info:
        load_project(spec)
    err = info.value
    assert err.message == "seaway.yaml is not valid (4 problems)"
    assert err.problems == [
        "seaway.yaml:1:1: missing required key 'name'",
        "seaway.yaml:1:1: nme: unknown key 'nme'; did you mean 'name'?",
        "seaway.yaml:4:13: datasets.customers.format: must be one of: auto, parquet, csv; "
        "got 'xlsx'",
        "seaway.yaml:6:26: datasets.customers.checks[0].mn: unknown key 'mn'; did you mean 'min'?",
    ]
    assert err.details[3].to_dict() == {
        "file": "seaway.yaml",
        "line": 6,
        "column": 26,
        "path": "datasets.customers.checks[0].mn",
        "message": "unknown key 'mn'; did you mean 'min'?",
    }
    assert err.hint and "seaway schema" in err.hint
    assert err.exit_code == 2


def test_unknown_key_without_a_close_match_lists_the_allowed_ones(tmp_path: Path) -> None:
    spec = write(tmp_path / "seaway.yaml", "name: d\nstore: {bucket: x, link: copy}\n")
    assert problems_of(spec) == [
        "seaway.yaml:2:9: store.bucket: unknown key 'bucket'; expected one of: metadata, artifacts"
    ]


def test_literal_typo_gets_a_suggestion(tmp_path: Path) -> None:
    spec = write(tmp_path / "seaway.yaml", "name: d\nstore: {link: hardlnk}\n")
    assert problems_of(spec) == [
        "seaway.yaml:2:15: store.link: must be one of: auto, copy, reflink, hardlink; "
        "got 'hardlnk'; did you mean 'hardlink'?"
    ]


def test_wrong_type_names_what_was_expected(tmp_path: Path) -> None:
    spec = write(
        tmp_path / "seaway.yaml",
        """\
        name: d
        models:
          m:
            require_signature: maybe
            gates: {metric: auc}
        """,
    )
    assert problems_of(spec) == [
        "seaway.yaml:4:24: models.m.require_signature: expected true or false, got 'maybe'",
        "seaway.yaml:5:5: models.m.gates: expected a list, got a mapping",
    ]


def test_duplicate_keys_are_reported_with_other_problems(tmp_path: Path) -> None:
    spec = write(
        tmp_path / "seaway.yaml",
        """\
        name: d
        datasets:
          a: {path: x.csv, path: y.csv}
          b: {format: xml}
        """,
    )
    with pytest.raises(SpecError) as info:
        load_project(spec)
    assert info.value.problems == [
        "seaway.yaml:3:20: datasets.a.path: duplicate key 'path' (first at line 3)",
        "seaway.yaml:4:15: datasets.b.format: must be one of: auto, parquet, csv; got 'xml'",
    ]
    assert info.value.hint and "keep only the last" in info.value.hint


def test_syntax_error_has_position_and_hint(tmp_path: Path) -> None:
    spec = write(tmp_path / "seaway.yaml", "name: d\ndatasets:\n\tcustomers: {}\n")
    with pytest.raises(SpecError) as info:
        load_project(spec)
    (problem,) = info.value.problems
    assert problem.startswith("seaway.yaml:3:1: invalid YAML: ")
    assert info.value.hint and "indentation" in info.value.hint


def test_second_document_is_refused(tmp_path: Path) -> None:
    spec = write(tmp_path / "seaway.yaml", "name: a\n---\nname: b\n")
    assert problems_of(spec) == [
        "seaway.yaml:2:1: invalid YAML: a second document starts here; use one only"
    ]


@pytest.mark.parametrize("text", ["", "\n\n", "# just a comment\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    spec = write(tmp_path / "seaway.yaml", text)
    with pytest.raises(SpecError) as info:
        load_project(spec)
    assert info.value.problems == ["seaway.yaml: the file is empty"]
    assert info.value.hint == "a minimal seaway.yaml is `name: my-project`"


@pytest.mark.parametrize(
    ("text", "got"), [("- a\n- b\n", "a list"), ("just words\n", "the value 'just words'")]
)
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, got: str) -> None:
    spec = write(tmp_path / "seaway.yaml", text)
    assert problems_of(spec) == [
        f"seaway.yaml:1:1: expected a mapping of keys at the top level, got {got}"
    ]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_project(tmp_path / "seaway.yaml")
    assert info.value.problems == ["seaway.yaml: file not found"]
    assert info.value.hint and "seaway init" in info.value.hint


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "seaway.yaml").write_bytes(b"name: caf\xe9\n")
    assert problems_of(tmp_path / "seaway.yaml") == ["seaway.yaml: not UTF-8 text (byte 9)"]


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "seaway.yaml").write_bytes(b"\xef\xbb\xbfname: demo\n")
    assert load_project(tmp_path / "seaway.yaml").name == "demo"


def test_unreadable_environment_file(tmp_path: Path) -> None:
    (tmp_path / "environments" / "prod.yaml").mkdir(parents=True)
    problems = problems_of(tmp_path / "environments" / "prod.yaml", environment=True)
    assert len(problems) == 1
    assert problems[0].startswith("environments/prod.yaml: cannot read: ")


# --- environments --------------------------------------------------------------------------


def test_load_environments_by_file_stem(tmp_path: Path) -> None:
    write(tmp_path / "environments" / "prod.yaml", "self_heal: true\n")
    write(tmp_path / "environments" / "staging.yaml", "deployments: {m: {version: 2}}\n")
    write(tmp_path / "environments" / "notes.txt", "not an environment\n")
    envs = load_environments(tmp_path)
    assert sorted(envs) == ["prod", "staging"]
    assert envs["prod"].self_heal is True
    assert envs["staging"].deployments["m"].version == 2


def test_no_environments_folder(tmp_path: Path) -> None:
    assert load_environments(tmp_path) == {}


def test_problems_of_several_environment_files_come_together(tmp_path: Path) -> None:
    write(tmp_path / "environments" / "prod.yaml", "target: k8s\n")
    write(tmp_path / "environments" / "dev.yaml", "self_heal: 1\n")
    with pytest.raises(SpecError) as info:
        load_environments(tmp_path)
    assert info.value.message == "2 files are not valid (2 problems)"
    assert info.value.problems == [
        "environments/dev.yaml:1:12: self_heal: expected true or false, got 1",
        "environments/prod.yaml:1:9: target: expected one of local, kubernetes, ray or a "
        "list, got 'k8s'",
    ]


def test_environment_file_name_must_be_a_name(tmp_path: Path) -> None:
    write(tmp_path / "environments" / "Prod EU.yaml", "deployments: {}\n")
    with pytest.raises(SpecError) as info:
        load_environments(tmp_path)
    assert info.value.problems == [
        "environments/Prod EU.yaml: 'Prod EU' is not a valid environment name: use lowercase "
        "letters, digits, '-' and '_'"
    ]


# --- whole project -------------------------------------------------------------------------

DESIGN = (TESTDATA / "valid-design.yaml").read_text()
PROD = (TESTDATA / "valid-env-design.yaml").read_text()


def test_design_example_with_its_environments_is_valid(tmp_path: Path) -> None:
    write(tmp_path / "seaway.yaml", DESIGN)
    write(tmp_path / "environments" / "prod.yaml", PROD)
    write(tmp_path / "environments" / "staging.yaml", "deployments: {}\n")
    report = inspect_project(tmp_path)
    assert report.valid
    assert report.files == ["seaway.yaml", "environments/prod.yaml", "environments/staging.yaml"]
    assert report.problems == [] and report.warnings == []
    assert validate_project(tmp_path) == []


def test_promote_to_needs_an_environment_file(tmp_path: Path) -> None:
    write(tmp_path / "seaway.yaml", DESIGN)
    write(tmp_path / "environments" / "prod.yaml", PROD)
    assert validate_project(tmp_path) == [
        "seaway.yaml:34:86: monitoring.churn-classifier.on_drift.promote_to: no environment "
        "'staging' (environments/staging.yaml does not exist)"
    ]


def test_deploying_an_undeclared_model_is_a_warning(tmp_path: Path) -> None:
    write(tmp_path / "seaway.yaml", "name: demo\n")
    write(
        tmp_path / "environments" / "prod.yaml",
        "deployments:\n  mystery: {version: 1}\n",
    )
    report = inspect_project(tmp_path)
    assert report.valid
    assert [str(w) for w in report.warnings] == [
        "environments/prod.yaml:2:3: deployments.mystery: model 'mystery' is not declared in "
        "seaway.yaml (under models, or as a pipeline's register.model)"
    ]
    assert validate_project(tmp_path) == []


def test_yml_environment_files_are_flagged(tmp_path: Path) -> None:
    write(tmp_path / "seaway.yaml", "name: demo\n")
    write(tmp_path / "environments" / "prod.yml", "deployments: {}\n")
    report = inspect_project(tmp_path)
    assert report.valid
    assert [str(w) for w in report.warnings] == [
        "environments/prod.yml: ignored: environment files must end in .yaml"
    ]


def test_problems_in_every_file_are_collected(tmp_path: Path) -> None:
    write(tmp_path / "seaway.yaml", "name: demo\nmodels: {m: {flavor: torch}}\n")
    write(tmp_path / "environments" / "prod.yaml", "deployments: {m: {version: latest!}}\n")
    assert validate_project(tmp_path) == [
        "seaway.yaml:2:22: models.m.flavor: must be one of: sklearn, onnx, python; got 'torch'",
        "environments/prod.yaml:1:28: deployments.m.version: expected a version number (7) "
        "or an alias (champion), got 'latest!'",
    ]


# --- cost ----------------------------------------------------------------------------------


def test_loading_is_fast_once_imported() -> None:
    path = TESTDATA / "valid-design.yaml"
    load_project(path)
    start = time.perf_counter()
    for _ in range(20):
        load_project(path)
    per_load = (time.perf_counter() - start) / 20
    assert per_load < 0.02, f"{per_load * 1000:.1f} ms per load"


def test_loading_imports_nothing_heavy() -> None:
    code = (
        "import sys, pathlib\n"
        "import seaway.spec\n"
        "assert 'pydantic' not in sys.modules, 'import seaway.spec pulled in pydantic'\n"
        f"seaway.spec.load_project(pathlib.Path({str(TESTDATA / 'valid-full.yaml')!r}))\n"
        "heavy = {'sqlalchemy', 'pyarrow', 'duckdb', 'rich'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
