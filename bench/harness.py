"""Shared pieces of seaway's benchmarks: cache folder, competitor virtualenvs, seeded data,
alternating measurement, a quiet-machine check and the report.

Only the standard library is used, so the harness runs with the project's own virtualenv and
installs nothing into it. Competitors live in their own virtualenvs under `bench/.cache/venvs/`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
CACHE_DIR = BENCH_DIR / ".cache"
VENVS_DIR = CACHE_DIR / "venvs"
DATA_DIR = CACHE_DIR / "data"
WORK_DIR = CACHE_DIR / "workspaces"

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

# Share of one core that other processes may use before the machine counts as busy.
BUSY_THRESHOLD = 0.15
_MARKER = ".bench-requirements"
_CHUNK = 16 * MIB


# --------------------------------------------------------------------------- environments


def cache_dir(*parts: str) -> Path:
    """`bench/.cache/<parts…>`, created if missing."""
    path = CACHE_DIR.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def dvc_workspace(root: Path, bin_dir: Path) -> tuple[Path, dict[str, str | None]]:
    """Make `root` a git + DVC repository for benchmarks; return DVC's path and environment.

    DVC keeps its hash cache ("state") and data index outside the repository, in
    /var/tmp/dvc by default, keyed by the repository's path: a reset that kept it would let a
    "cold" run skip hashing, so it is kept in .dvc/tmp, which resets remove. Its global and
    system config point at empty folders; `python` in stages is the DVC virtualenv's."""
    config_home = cache_dir("workspaces", "dvc-config")
    env: dict[str, str | None] = {
        "DVC_NO_ANALYTICS": "1",
        "DVC_SITE_CACHE_DIR": str(root / ".dvc" / "tmp" / "site-cache"),
        "DVC_GLOBAL_CONFIG_DIR": str(config_home / "global"),
        "DVC_SYSTEM_CONFIG_DIR": str(config_home / "system"),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    dvc = bin_dir / "dvc"
    if not (root / ".git").exists():
        run_command(["git", "init", "--quiet", "."], cwd=root)
    if not (root / ".dvc" / "config").is_file():
        run_command([dvc, "init", "--quiet"], cwd=root, env=env)
    for key, value in (("core.autostage", "false"), ("core.check_update", "false")):
        run_command([dvc, "config", key, value], cwd=root, env=env)
    return dvc, env


def project_bin() -> Path:
    """The `bin/` folder of the project's virtualenv (the one holding `seaway`)."""
    candidates = [Path(sys.executable).parent, REPO_ROOT / ".venv" / "bin"]
    for candidate in candidates:
        if (candidate / "seaway").exists():
            return candidate
    return candidates[-1]


def competitor_venv(name: str, requirements: list[str]) -> Path:
    """Create `bench/.cache/venvs/<name>` with `requirements` installed; return its `bin/`.

    The virtualenv is made once and reused; a marker file records the requirements it was
    built with, so changing them rebuilds it from scratch.
    """
    venv = VENVS_DIR / name
    marker = venv / _MARKER
    wanted = "\n".join(requirements) + "\n"
    bin_dir = venv / "bin"
    if marker.is_file() and marker.read_text() == wanted and (bin_dir / "python").exists():
        return bin_dir
    if venv.exists():
        shutil.rmtree(venv)
    VENVS_DIR.mkdir(parents=True, exist_ok=True)
    log(f"creating virtualenv {venv.relative_to(REPO_ROOT)} with {' '.join(requirements)}")
    run_command([sys.executable, "-m", "venv", str(venv)])
    run_command([bin_dir / "python", "-m", "pip", "install", "--quiet", *requirements])
    marker.write_text(wanted)
    return bin_dir


def command_output(argv: Sequence[str | os.PathLike[str]], **kwargs: object) -> str:
    """stdout of a command, stripped; '' when it fails or cannot start."""
    try:
        done = subprocess.run(
            [str(a) for a in argv],
            capture_output=True,
            text=True,
            timeout=120,
            **kwargs,  # type: ignore[call-overload]
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def command_works(argv: Sequence[str | os.PathLike[str]], **kwargs: object) -> bool:
    """Whether a command exits with status 0 (output discarded)."""
    try:
        done = subprocess.run(
            [str(a) for a in argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
            **kwargs,  # type: ignore[call-overload]
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


# --------------------------------------------------------------------------- seeded data


def seeded_bytes(seed: str | int, size: int) -> bytes:
    """`size` pseudo-random bytes, the same for the same seed."""
    return random.Random(seed).randbytes(size)


def write_seeded_file(path: Path, size: int, seed: str | int) -> None:
    """Write `size` seeded random bytes to `path` (replacing a read-only file too)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not os.access(path, os.W_OK):
        path.chmod(0o644)
    rng = random.Random(seed)
    with open(path, "wb") as fh:
        left = size
        while left > 0:
            step = min(left, _CHUNK)
            fh.write(rng.randbytes(step))
            left -= step


def _dataset_ready(root: Path, signature: str) -> bool:
    marker = root.parent / f".{root.name}.done"
    return root.exists() and marker.is_file() and marker.read_text() == signature


def _dataset_done(root: Path, signature: str) -> None:
    (root.parent / f".{root.name}.done").write_text(signature)


def make_tree(
    root: Path, tops: int, subs: int, files_per_folder: int, size: int, seed: str | int
) -> list[Path]:
    """A nested tree `root/tNN/sNN/fNNNN.bin` of seeded random files; made once, then reused.

    Returns the files in a fixed (sorted) order.
    """
    signature = f"tree {tops} {subs} {files_per_folder} {size} {seed}\n"
    paths = [
        root / f"t{t:02d}" / f"s{s:02d}" / f"f{f:04d}.bin"
        for t in range(tops)
        for s in range(subs)
        for f in range(files_per_folder)
    ]
    if _dataset_ready(root, signature):
        return paths
    if root.exists():
        shutil.rmtree(root)
    log(f"generating {len(paths):,} files of {size:,} bytes in {root.relative_to(REPO_ROOT)}")
    for path in paths:
        write_seeded_file(path, size, f"{seed}:{path.relative_to(root)}")
    _dataset_done(root, signature)
    return paths


def make_file(path: Path, size: int, seed: str | int) -> Path:
    """One seeded random file of `size` bytes; made once, then reused."""
    signature = f"file {size} {seed}\n"
    if _dataset_ready(path, signature):
        return path
    log(f"generating {size:,} bytes in {path.relative_to(REPO_ROOT)}")
    write_seeded_file(path, size, seed)
    _dataset_done(path, signature)
    return path


def sync_copy(source: Path, target: Path) -> int:
    """Make `target` an exact copy of `source` (a file or a folder); return files copied.

    Files whose size and modification time already match are left alone, so a workspace is
    copied once and later only repaired (files a benchmark changed are copied back, files that
    appeared are removed).
    """
    if source.is_file():
        return int(_sync_file(source, target))
    target.mkdir(parents=True, exist_ok=True)
    copied = 0
    wanted: set[Path] = set()
    for src in sorted(source.rglob("*")):
        rel = src.relative_to(source)
        wanted.add(rel)
        dst = target / rel
        if src.is_dir():
            dst.mkdir(parents=True, exist_ok=True)
        else:
            copied += _sync_file(src, dst)
    for dst in sorted(target.rglob("*"), reverse=True):
        if dst.relative_to(target) not in wanted:
            if dst.is_dir() and not dst.is_symlink():
                shutil.rmtree(dst)
            else:
                dst.unlink()
    return copied


def _sync_file(src: Path, dst: Path) -> bool:
    a = src.stat()
    try:
        b = dst.lstat()
    except FileNotFoundError:
        pass
    else:
        if not dst.is_symlink() and b.st_size == a.st_size and b.st_mtime_ns == a.st_mtime_ns:
            return False
        dst.unlink()
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)
    return True


def iter_files(paths: Iterable[Path]) -> list[Path]:
    """Every regular file under the given files and folders, sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file()))
    return found


def warm_page_cache(paths: Iterable[Path]) -> int:
    """Read every file under `paths` once, so later reads come from the page cache."""
    total = 0
    for path in iter_files(paths):
        with open(path, "rb", buffering=0) as fh:
            while chunk := fh.read(_CHUNK):
                total += len(chunk)
    return total


def remove(*paths: Path) -> None:
    """Delete files and folders if present (read-only ones too)."""
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, onerror=_force_remove)
        elif path.exists() or path.is_symlink():
            path.unlink()


def _force_remove(func: Callable[[str], object], path: str, _exc: object) -> None:
    parent = os.path.dirname(path)
    os.chmod(parent, 0o755)
    if os.path.exists(path) and not os.path.islink(path):
        os.chmod(path, 0o755 if os.path.isdir(path) else 0o644)
    func(path)


def make_writable(root: Path) -> None:
    """Give write permission back to files a tool made read-only (hard-link modes)."""
    for path in iter_files([root]):
        mode = path.stat().st_mode
        if not mode & 0o200:
            os.chmod(path, mode | 0o200)


def flush_writes() -> None:
    """Write dirty pages to disk, so one run's writeback does not land in the next one."""
    os.sync()


# --------------------------------------------------------------------------- running


class CommandFailed(RuntimeError):
    """A benchmarked command exited with a non-zero status."""

    def __init__(self, args: list[str], returncode: int, output: str) -> None:
        self.argv = args
        self.returncode = returncode
        self.output = output
        super().__init__(f"`{' '.join(args)}` exited with {returncode}: {output}")

    def short(self, width: int = 100) -> str:
        """Exit status and the first line of the output, for a report's note."""
        first = next((line.strip() for line in self.output.splitlines() if line.strip()), "")
        text = f"exit {self.returncode}: {first}"
        return text if len(text) <= width else text[: width - 3] + "..."


def child_env(env: Mapping[str, str | None] | None) -> dict[str, str] | None:
    """This process' environment with `env` applied (a value of None removes the variable)."""
    if env is None:
        return None
    merged = dict(os.environ)
    for key, value in env.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def run_command(
    argv: Sequence[str | os.PathLike[str]],
    cwd: Path | None = None,
    env: Mapping[str, str | None] | None = None,
) -> None:
    """Run a command to completion, output captured; raise CommandFailed on failure.

    `env` is applied on top of this process' environment (None removes a variable).
    """
    args = [str(a) for a in argv]
    done = subprocess.run(args, cwd=cwd, env=child_env(env), capture_output=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).decode(errors="replace").strip()[-1500:]
        raise CommandFailed(args, done.returncode, tail)


def command(
    argv: Sequence[str | os.PathLike[str]],
    cwd: Path | None = None,
    env: Mapping[str, str | None] | None = None,
) -> Callable[[], None]:
    """A case for `measure`: runs `argv` in `cwd`."""
    return lambda: run_command(argv, cwd=cwd, env=env)


def shell(script: str, cwd: Path | None = None) -> Callable[[], None]:
    """A case for `measure`: runs a `sh -c` script in `cwd`."""
    return command(["sh", "-c", script], cwd=cwd)


def measure(
    cases: dict[str, Callable[[], None]],
    setup: dict[str, Callable[[], None]] | None = None,
    repeats: int = 5,
    *,
    warmup: int = 0,
    failures: dict[str, str] | None = None,
) -> dict[str, list[float]]:
    """Time each case `repeats` times, alternating the cases (a, b, a, b, …).

    `setup[name]`, when given, runs before every run of that case and is not timed. Wall time
    is taken with `time.perf_counter` around the call (the cases start subprocesses).
    `warmup` untimed rounds run first. With `failures` given, a case that raises is dropped
    (a short message stored there, the full one logged) and the others go on; without it the
    error propagates.
    """
    setup = setup or {}
    active = list(cases)
    times: dict[str, list[float]] = {name: [] for name in cases}

    def one(name: str) -> float | None:
        try:
            if name in setup:
                setup[name]()
            start = time.perf_counter()
            cases[name]()
            return time.perf_counter() - start
        except Exception as exc:
            if failures is None:
                raise
            failures[name] = exc.short() if isinstance(exc, CommandFailed) else repr(exc)
            log(f"  {name}: FAILED, dropped: {str(exc)[:1500]}")
            active.remove(name)
            del times[name]
            return None

    for _ in range(warmup):
        for name in list(active):
            one(name)
    for rep in range(repeats):
        for name in list(active):
            took = one(name)
            if took is not None:
                times[name].append(took)
                log(f"  [{rep + 1}/{repeats}] {name}: {took:.3f} s")
    return times


# --------------------------------------------------------------------------- quiet machine


def _busy_jiffies() -> int:
    with open("/proc/stat") as fh:
        fields = fh.readline().split()[1:]
    values = [int(v) for v in fields]
    # user nice system idle iowait irq softirq steal guest guest_nice
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return total - idle


def _own_jiffies() -> int:
    with open("/proc/self/stat") as fh:
        rest = fh.read().rsplit(")", 1)[1].split()
    # fields after the command name: utime is 14th, stime 15th, cutime 16th, cstime 17th.
    return sum(int(v) for v in rest[11:15])


def load_snapshot() -> tuple[int, int, float]:
    """CPU counters now, for `other_load_since` (machine busy time, own + children's time)."""
    return _busy_jiffies(), _own_jiffies(), time.monotonic()


def other_load_since(snapshot: tuple[int, int, float]) -> float:
    """Cores' worth of CPU used since `snapshot` by processes other than this one and the
    children it has waited for (kernel threads, such as writeback, count as others)."""
    busy0, own0, t0 = snapshot
    busy1, own1, t1 = load_snapshot()
    hz = os.sysconf("SC_CLK_TCK")
    return max(0.0, ((busy1 - busy0) - (own1 - own0)) / hz / max(t1 - t0, 1e-3))


def other_load(seconds: float = 1.0) -> float:
    """Cores' worth of CPU used by other processes over `seconds` (from /proc/stat)."""
    snapshot = load_snapshot()
    time.sleep(seconds)
    return other_load_since(snapshot)


def check_quiet(seconds: float = 1.0, threshold: float = BUSY_THRESHOLD) -> float:
    """Warn (never abort) when other processes use more than `threshold` of a core."""
    load = other_load(seconds)
    if load > threshold:
        log(
            f"WARNING: machine busy: other processes used {load:.2f} cores over {seconds:g} s; "
            "timings will be noisy (FACTS: up to 1.7x slower on 2 cores)"
        )
    return load


# --------------------------------------------------------------------------- report


@dataclass
class Row:
    """One scenario: seaway's times against a competitor's (or a reference's)."""

    scenario: str
    seaway: list[float] | None
    competitor: list[float] | None
    competitor_name: str = "competitor"
    note: str = ""
    extra: dict[str, object] = field(default_factory=dict)


def _median(values: list[float] | None) -> float | None:
    return statistics.median(values) if values else None


def row_ratio(row: Row) -> float | None:
    """competitor median / seaway median (> 1: seaway is faster)."""
    a, b = _median(row.seaway), _median(row.competitor)
    if a is None or b is None or a == 0:
        return None
    return b / a


def machine_info() -> dict[str, object]:
    """Cores, CPU model, memory and OS of this machine."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gib = 0.0
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    mem_gib = int(line.split()[1]) / MIB
                    break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(mem_gib, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def _fmt(value: float | None, width: int) -> str:
    return f"{value:{width}.3f}" if value is not None else f"{'-':>{width}}"


def _span(values: list[float] | None) -> str:
    return f"{min(values):.3f}-{max(values):.3f}" if values else "-"


def report(
    title: str,
    rows: list[Row],
    versions: Mapping[str, str] | None = None,
    json_path: Path | None = None,
) -> str:
    """Print (and return) a fixed-width table of `rows`; write JSON to `json_path` if given."""
    machine = machine_info()
    versions = dict(versions or {})
    width = max([len("scenario"), *(len(r.scenario) for r in rows)])
    header = (
        f"{'scenario':<{width}}  {'seaway s':>9}  {'other s':>9}  {'ratio':>6}  "
        f"{'seaway min-max':>15}  {'other min-max':>15}  {'n':>3}  {'other':<10}  note"
    )
    lines = [title, "=" * len(title), header, "-" * len(header)]
    for row in rows:
        ratio = row_ratio(row)
        n = max(len(row.seaway or []), len(row.competitor or []))
        lines.append(
            f"{row.scenario:<{width}}  {_fmt(_median(row.seaway), 9)}  "
            f"{_fmt(_median(row.competitor), 9)}  "
            f"{(f'{ratio:6.2f}' if ratio is not None else '     -')}  "
            f"{_span(row.seaway):>15}  {_span(row.competitor):>15}  {n:>3}  "
            f"{row.competitor_name:<10}  {row.note}"
        )
    lines.append("-" * len(header))
    lines.append("times are medians in seconds; ratio = other / seaway (> 1: seaway is faster)")
    lines.append(
        f"machine: {machine['cores']} cores, {machine['cpu']}, {machine['memory_gib']} GiB, "
        f"{machine['os']}, Python {machine['python']}"
    )
    if versions:
        lines.append("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    text = "\n".join(lines)
    print(text, flush=True)
    if json_path is not None:
        write_json(json_path, title, rows, versions, machine)
    return text


def write_json(
    path: Path,
    title: str,
    rows: list[Row],
    versions: Mapping[str, str],
    machine: Mapping[str, object] | None = None,
) -> None:
    """The report's figures as JSON (all runs kept, not only the summary)."""

    def summary(values: list[float] | None) -> dict[str, object] | None:
        if not values:
            return None
        return {
            "median": statistics.median(values),
            "min": min(values),
            "max": max(values),
            "runs": values,
        }

    payload = {
        "title": title,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": dict(machine or machine_info()),
        "versions": dict(versions),
        "rows": [
            {
                "scenario": r.scenario,
                "seaway": summary(r.seaway),
                "competitor_name": r.competitor_name,
                "competitor": summary(r.competitor),
                "ratio": row_ratio(r),
                "note": r.note,
                **({"extra": r.extra} if r.extra else {}),
            }
            for r in rows
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    log(f"wrote {path}")


# --------------------------------------------------------------------------- command line


def parse_args(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The options every benchmark takes: --repeats N, --quick, --json FILE."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per case")
    parser.add_argument("--quick", action="store_true", help="small workloads, 3 repeats")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="write JSON")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def log(message: str) -> None:
    """Progress to stderr (the report goes to stdout)."""
    print(message, file=sys.stderr, flush=True)
