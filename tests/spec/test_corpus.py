"""The corpus in testdata/: every valid file loads, every invalid file reports exactly the
problem written on its first line (`# LINE:COL: PATH: message`), at that line and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from seaway.errors import SpecError
from seaway.spec import load_environment, load_project

TESTDATA = Path(__file__).parent / "testdata"
VALID = sorted(TESTDATA.glob("valid-*.yaml"))
INVALID = sorted(TESTDATA.glob("invalid-*.yaml"))


def is_environment(path: Path) -> bool:
    return path.name.split("-", 1)[1].startswith("env-")


def load(path: Path) -> object:
    return load_environment(path) if is_environment(path) else load_project(path)


def test_corpus_is_not_empty() -> None:
    assert len(VALID) >= 5
    assert len(INVALID) >= 30
    assert any(is_environment(p) for p in INVALID)


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_files_load(path: Path) -> None:
    load(path)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_file_reports_the_problem_on_its_first_line(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# "), f"{path.name} must start with '# LINE:COL: …'"
    expected = f"{path.name}:{first[2:]}"

    with pytest.raises(SpecError) as info:
        load(path)

    assert info.value.problems == [expected]
    assert info.value.exit_code == 2
    assert str(info.value).startswith(f"{path.name} is not valid (1 problem)")
