"""Ctrl-C on `seaway run`: workers and what they started stop, the run says `cancelled`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seaway.project import Project


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for its reaper does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def _wait_for(paths: list[Path], proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.is_file() and p.stat().st_size for p in paths):
        if proc.poll() is not None:
            raise AssertionError(f"seaway run ended early:\n{proc.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"steps did not start: {[str(p) for p in paths]}")
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("sig", "reason"),
    [(signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM"), (signal.SIGKILL, "")],
)
def test_interrupt_cancels_the_run_and_leaves_no_process(
    fx_sqlite: Project, sig: signal.Signals, reason: str
) -> None:
    root = fx_sqlite.root
    proc = subprocess.Popen(
        [sys.executable, "-m", "seaway.cli.main", "run", "sleepy", "-j", "2"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out = err = ""
    try:
        pids_file, shell_pid_file = root / "trace" / "nap.pids", root / "trace" / "shell_nap.pid"
        _wait_for([pids_file, shell_pid_file], proc)
        time.sleep(0.2)  # let the pid files be complete
        pids = json.loads(pids_file.read_text())
        shell_pid = int(shell_pid_file.read_text())
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 10
    survivors = [pids["worker"], pids["child"], shell_pid]
    while time.monotonic() < deadline:
        survivors = [p for p in survivors if _alive(p)]
        if not survivors:
            break
        time.sleep(0.05)
    assert not survivors, f"processes left behind: {survivors}"
    if sig == signal.SIGKILL:
        # No chance to cancel: the workers saw their parent die and stopped themselves.
        assert proc.returncode == -signal.SIGKILL
        return
    assert proc.returncode == 130, (out, err)
    assert "cancelled" in out

    from seaway.tracking.store import RunStore

    store = RunStore(fx_sqlite)
    try:
        record = store.get("#1")
    finally:
        store.close()
    assert record.status == "cancelled"
    assert reason in (record.error or "")
    assert {s.step: s.status for s in record.steps} == {
        "nap": "cancelled",
        "shell_nap": "cancelled",
    }
    assert not list((root / ".seaway" / "workcache" / "tmp").glob(f"{record.id}-*"))
