"""Exit codes, --version, -v and -C: what every command shares."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from seaway import __version__
from tests.conftest import run_seaway


def test_version_is_printed_by_the_console_script(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "seaway"
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"seaway {__version__}"


def test_version_does_not_import_the_heavy_parts(tmp_path: Path) -> None:
    code = (
        "import sys; from seaway.cli.main import main\n"
        "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('typer', 'sqlalchemy', 'pydantic', 'pyarrow', 'rich')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "print('heavy:' + ','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["seaway 0.1.0", "heavy:"]


def test_outside_a_project_is_exit_2_with_a_hint(tmp_path: Path) -> None:
    result = run_seaway("data", "list", cwd=tmp_path)
    assert result.exit_code == 2
    assert "no seaway.yaml" in result.stderr
    assert "seaway init" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_command_is_a_usage_error(tmp_path: Path) -> None:
    result = run_seaway("frobnicate", cwd=tmp_path)
    assert result.exit_code == 2


def test_dash_c_runs_in_another_directory(project_dir: Path, tmp_path: Path) -> None:
    (project_dir / "x.bin").write_bytes(b"abc")
    result = run_seaway("-C", str(project_dir), "data", "add", "x", "x.bin", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    listed = run_seaway("-C", str(project_dir), "data", "list", "--json", cwd=tmp_path)
    assert '"name": "x"' in listed.stdout


def test_traceback_only_with_verbose(project_dir: Path) -> None:
    quiet = run_seaway("data", "log", "nothing", cwd=project_dir)
    assert quiet.exit_code == 2 and "Traceback" not in quiet.stderr
    loud = run_seaway("-v", "data", "log", "nothing", cwd=project_dir)
    assert loud.exit_code == 2 and "Traceback" in loud.stderr


def test_unreachable_database_is_one_clear_line(project_dir: Path) -> None:
    result = run_seaway(
        "data",
        "list",
        cwd=project_dir,
        env={"SEAWAY_METADATA_URL": "postgresql+psycopg://postgres:secret@127.0.0.1:1/x"},
    )
    assert result.exit_code == 2
    first = result.stderr.splitlines()[0]
    assert first.startswith("error: cannot reach the metadata database")
    assert "secret" not in result.stderr and "***" in first
    assert "Traceback" not in result.stderr


def test_each_command_works_from_an_app_built_for_it_alone(cli) -> None:  # type: ignore[no-untyped-def]
    from seaway.cli.app import _ATTACH, command_of

    assert command_of(["-C", "run", "run", "train"]) == "run"  # -C takes a value
    assert command_of(["-v", "data", "add", "x"]) == "data"
    assert command_of(["--help"]) is None and command_of(["nope"]) is None
    for name in _ATTACH:
        out = cli(name, "--help")
        assert out.exit_code == 0, (name, out.stderr)
        assert f"seaway {name}" in out.stdout
    full = cli("--help")
    assert all(name in full.stdout for name in _ATTACH)
