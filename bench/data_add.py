"""seaway vs DVC 3.67.1: adding and checking versioned datasets.

Run from the repository root with the project's virtualenv:

    .venv/bin/python bench/data_add.py [--repeats N] [--quick] [--json FILE]

Workloads (seeded random bytes, generated once into bench/.cache/data/):
  D1  10,000 files of 100 KiB in 10 x 10 folders (about 1 GiB); --quick: 1,000 files
  D2  one 1 GiB file; --quick: 100 MiB

Each tool works in its own workspace, bench/.cache/workspaces/<tool>/ (a git repository with
the data copied into data/). See bench/README.md for the scenarios and how to read the figures.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import harness
from harness import GIB, KIB, MIB, Row

DVC_VERSION = "3.67.1"
DVC_REQUIREMENTS = [f"dvc=={DVC_VERSION}"]
SEAWAY_SPEC = "name: bench\n"
SEED = 20261122
CHANGED_FILES = 10

HASH_SCRIPT = """\
import os, sys
from concurrent.futures import ThreadPoolExecutor
from seaway.store.hashing import hash_file
kind, target = sys.argv[1], sys.argv[2]
if kind == "file":
    hash_file(target)
else:
    files = [os.path.join(d, n) for d, _, names in os.walk(target) for n in names]
    with ThreadPoolExecutor(max_workers=2) as pool:
        digests = list(pool.map(hash_file, files))
    assert len(digests) == len(files)
"""
IMPORT_SCRIPT = "import concurrent.futures, seaway.store.hashing"


@dataclass(frozen=True)
class Workload:
    label: str
    tops: int
    subs: int
    files_per_folder: int
    file_size: int
    big_size: int

    @property
    def d1_files(self) -> int:
        return self.tops * self.subs * self.files_per_folder

    @property
    def d1_bytes(self) -> int:
        return self.d1_files * self.file_size

    def describe(self) -> str:
        return (
            f"D1 = {self.d1_files:,} files x {self.file_size // KIB} KiB "
            f"({self.tops} x {self.subs} folders, {self.d1_bytes / MIB:,.0f} MiB); "
            f"D2 = one file of {self.big_size / MIB:,.0f} MiB"
        )


FULL = Workload("full", 10, 10, 100, 100 * KIB, GIB)
QUICK = Workload("quick", 10, 10, 10, 100 * KIB, 100 * MIB)


# --------------------------------------------------------------------------- workspaces


@dataclass
class Tool:
    name: str
    root: Path
    exe: Path
    env: dict[str, str | None]
    reset: Callable[[], None]
    add_d1: list[str]
    add_d2: list[str]
    status_d1: list[str]
    # Turn hard links from the workspace into the store on (True) or back off (False).
    hardlinks: Callable[[bool], None]

    def run(self, args: list[str]) -> Callable[[], None]:
        return harness.command([self.exe, *args], cwd=self.root, env=self.env)


def git_init(root: Path) -> None:
    if not (root / ".git").exists():
        harness.run_command(["git", "init", "--quiet", "."], cwd=root)


def fill_workspace(root: Path, d1: Path, d2: Path) -> None:
    (root / "data").mkdir(parents=True, exist_ok=True)
    copied = harness.sync_copy(d1, root / "data" / "d1")
    copied += harness.sync_copy(d2, root / "data" / "d2.bin")
    if copied:
        harness.log(f"  copied {copied:,} files into {root.relative_to(harness.REPO_ROOT)}/data")


def seaway_tool(d1: Path, d2: Path) -> Tool:
    root = harness.cache_dir("workspaces", "seaway")
    git_init(root)
    spec = root / "seaway.yaml"
    fill_workspace(root, d1, d2)

    def reset() -> None:
        harness.remove(root / ".seaway")
        if not spec.is_file() or not spec.read_text().startswith(SEAWAY_SPEC):
            spec.write_text(SEAWAY_SPEC)
        harness.flush_writes()

    reset()
    # Keep the developer's own settings (store URLs, debug output) out of the benchmark.
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("SEAWAY_")}

    def hardlinks(on: bool) -> None:
        text = SEAWAY_SPEC + ("store: {link: hardlink}\n" if on else "")
        spec.write_text(text)

    return Tool(
        name="seaway",
        root=root,
        exe=harness.project_bin() / "seaway",
        env=env,
        reset=reset,
        add_d1=["data", "add", "d1", "data/d1"],
        add_d2=["data", "add", "d2", "data/d2.bin"],
        status_d1=["data", "status", "d1"],
        hardlinks=hardlinks,
    )


def dvc_tool(d1: Path, d2: Path) -> Tool:
    bin_dir = harness.competitor_venv(f"dvc-{DVC_VERSION}", DVC_REQUIREMENTS)
    root = harness.cache_dir("workspaces", "dvc")
    dvc, env = harness.dvc_workspace(root, bin_dir)
    fill_workspace(root, d1, d2)

    def reset() -> None:
        harness.remove(
            root / ".dvc" / "cache",
            root / ".dvc" / "tmp",
            root / "data" / "d1.dvc",
            root / "data" / "d2.bin.dvc",
            root / "data" / ".gitignore",
        )
        harness.flush_writes()

    reset()

    def hardlinks(on: bool) -> None:
        if on:
            harness.run_command([dvc, "config", "cache.type", "hardlink"], cwd=root, env=env)
        else:
            harness.run_command([dvc, "config", "--unset", "cache.type"], cwd=root, env=env)

    return Tool(
        name="dvc",
        root=root,
        exe=dvc,
        env=env,
        reset=reset,
        add_d1=["add", "data/d1"],
        add_d2=["add", "data/d2.bin"],
        status_d1=["status"],
        hardlinks=hardlinks,
    )


# --------------------------------------------------------------------------- scenarios


def changer(tool: Tool, seed: int) -> Callable[[], None]:
    """A setup hook that overwrites CHANGED_FILES files of D1 with new bytes on every call.

    Call k picks the same files and bytes for every tool, and different ones from call k-1.
    """
    calls = [0]
    d1 = tool.root / "data" / "d1"
    files = sorted(p.relative_to(d1) for p in harness.iter_files([d1]))

    def change() -> None:
        calls[0] += 1
        pick = random.Random(f"{seed}:pick:{calls[0]}").sample(files, CHANGED_FILES)
        for rel in pick:
            path = d1 / rel
            size = path.stat().st_size
            harness.write_seeded_file(path, size, f"{seed}:change:{calls[0]}:{rel}")
        harness.flush_writes()

    return change


def row_from(
    scenario: str,
    times: dict[str, list[float]],
    failures: dict[str, str],
    competitor: str,
    skipped: str,
    load: float,
    load_during: float | None = None,
) -> Row:
    notes = [f"{name} failed, {msg}" for name, msg in failures.items()]
    if "seaway" not in times and "seaway" not in failures and skipped:
        notes.append(skipped)
    if load > harness.BUSY_THRESHOLD or (load_during or 0.0) > harness.BUSY_THRESHOLD:
        during = "" if load_during is None else f", during {load_during:.2f}"
        notes.insert(0, f"[busy: others used {load:.2f} cores before{during}]")
    extra: dict[str, object] = {"other_load_before": round(load, 3)}
    if load_during is not None:
        extra["other_load_during"] = round(load_during, 3)
    if failures:
        extra["failures"] = failures
    return Row(
        scenario=scenario,
        seaway=times.get("seaway"),
        competitor=times.get(competitor),
        competitor_name=competitor,
        note=" ".join(notes),
        extra=extra,
    )


def mb_per_s(size: int, seconds: float | None) -> str:
    if not seconds or seconds <= 0:
        return "-"
    return f"{size / seconds / 1e6:,.0f} MB/s"


def hashing_rows(work: Workload, d1: Path, d2: Path, repeats: int) -> list[Row]:
    python = harness.project_bin() / "python"
    rows: list[Row] = []
    harness.log("scenario: python start-up floor")
    floor_times = harness.measure(
        {"seaway": harness.command([python, "-c", IMPORT_SCRIPT])}, None, repeats, warmup=1
    )
    floor = statistics.median(floor_times["seaway"])
    rows.append(
        Row(
            "python -c import hashing (floor)",
            floor_times["seaway"],
            None,
            "-",
            "start-up included in the hash rows",
        )
    )
    for label, kind, target, size in (
        ("hash D1 vs cat", "tree", d1, work.d1_bytes),
        ("hash D2 vs cat", "file", d2, work.big_size),
    ):
        harness.log(f"scenario: {label}")
        load = harness.check_quiet()
        harness.warm_page_cache([target])
        cat = f"find '{target}' -type f -print0 | xargs -0 cat > /dev/null"
        failures: dict[str, str] = {}
        snapshot = harness.load_snapshot()
        times = harness.measure(
            {
                "seaway": harness.command([python, "-c", HASH_SCRIPT, kind, target]),
                "cat": harness.shell(cat),
            },
            None,
            repeats,
            warmup=1,
            failures=failures,
        )
        during = harness.other_load_since(snapshot)
        row = row_from(label, times, failures, "cat", "", load, during)
        hashed = statistics.median(times["seaway"]) if "seaway" in times else None
        read = statistics.median(times["cat"]) if "cat" in times else None
        if hashed and read:
            without_floor = hashed - floor if hashed > floor else None
            row.note += (" " if row.note else "") + (
                f"hash {mb_per_s(size, hashed)} ({mb_per_s(size, without_floor)} without "
                f"start-up), cat {mb_per_s(size, read)}: {100 * read / hashed:.0f}% "
                "of read bandwidth"
            )
            row.extra["hash_mb_s"] = size / hashed / 1e6
            row.extra["cat_mb_s"] = size / read / 1e6
            row.extra["percent_of_read"] = 100 * read / hashed
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = harness.parse_args((__doc__ or "").splitlines()[0], argv)
    work = QUICK if args.quick else FULL
    repeats: int = args.repeats
    harness.log(f"workload ({work.label}): {work.describe()}; {repeats} repeats")

    data = harness.cache_dir("data", work.label)
    d1 = data / "d1"
    d2 = data / "d2.bin"
    harness.make_tree(d1, work.tops, work.subs, work.files_per_folder, work.file_size, SEED)
    harness.make_file(d2, work.big_size, f"{SEED}:d2")

    dvc = dvc_tool(d1, d2)
    seaway_bin = harness.project_bin() / "seaway"
    # An installed package carries compiled bytecode (pip compiles it, as it did DVC's);
    # an editable checkout may not, and compiling on every start would be measured too.
    harness.run_command(
        [harness.project_bin() / "python", "-m", "compileall", "-q", harness.REPO_ROOT / "src"]
    )
    seaway_ok = harness.command_works([seaway_bin, "data", "add", "--help"])
    status_ok = seaway_ok and harness.command_works([seaway_bin, "data", "status", "--help"])
    skipped = ""
    if not seaway_ok:
        skipped = "seaway skipped: `seaway data add --help` failed"
        harness.log(f"NOTE: {skipped}; measuring DVC only")
    elif not status_ok:
        harness.log("NOTE: `seaway data status --help` failed; status is measured for DVC only")
    seaway = seaway_tool(d1, d2) if seaway_ok else None
    tools = [t for t in (seaway, dvc) if t is not None]

    versions = {
        "seaway": harness.command_output([seaway_bin, "--version"]).removeprefix("seaway "),
        "dvc": harness.command_output([dvc.exe, "--version"], env=harness.child_env(dvc.env)),
        "git": harness.command_output(["git", "--version"]).removeprefix("git version "),
    }
    harness.log("versions: " + ", ".join(f"{k} {v or '?'}" for k, v in versions.items()))

    def warm() -> None:
        harness.warm_page_cache([t.root / "data" for t in tools])

    rows: list[Row] = []

    def run_scenario(
        title: str,
        cases: dict[str, Callable[[], None]],
        setup: dict[str, Callable[[], None]] | None,
        skip_note: str = skipped,
    ) -> None:
        harness.log(f"scenario: {title}")
        load = harness.check_quiet()
        warm()
        failures: dict[str, str] = {}
        snapshot = harness.load_snapshot()
        times = harness.measure(cases, setup, repeats, warmup=1, failures=failures)
        during = harness.other_load_since(snapshot)
        rows.append(row_from(title, times, failures, "dvc", skip_note, load, during))

    # 1, 2: cold adds: the store is emptied before every run.
    for title, attr in (("add D1 cold", "add_d1"), ("add D2 cold", "add_d2")):
        run_scenario(
            title,
            {t.name: t.run(getattr(t, attr)) for t in tools},
            {t.name: t.reset for t in tools},
        )

    # 3: status with nothing changed, after one (untimed) add of D1.
    added: list[Tool] = []
    for tool in tools:
        tool.reset()
        try:
            tool.run(tool.add_d1)()
            added.append(tool)
        except harness.CommandFailed as exc:
            harness.log(f"  {tool.name}: add D1 failed, left out: {exc}")
            if tool.name == "seaway":
                skipped = f"seaway left out: its add D1 failed ({exc.short(60)})"
    status_tools = [t for t in added if t.name != "seaway" or status_ok]
    status_note = skipped or ("" if status_ok else "seaway skipped: no `seaway data status`")
    run_scenario(
        "status D1 unchanged",
        {t.name: t.run(t.status_d1) for t in status_tools},
        None,
        status_note,
    )

    # 4: add D1 again after CHANGED_FILES files got new content (changed in the untimed setup).
    run_scenario(
        f"add D1 after {CHANGED_FILES} files changed",
        {t.name: t.run(t.add_d1) for t in added},
        {t.name: changer(t, SEED) for t in added},
        skipped,
    )

    # 5, 6: cold adds again with hard links from the workspace into the store instead of
    # copies (both tools then make the workspace files read-only). On filesystems without
    # reflinks, copying the data is most of a cold add; this shows the tools without it.
    for tool in tools:
        tool.hardlinks(True)
    try:
        for title, attr in (
            ("add D1 cold, hardlinks", "add_d1"),
            ("add D2 cold, hardlinks", "add_d2"),
        ):
            run_scenario(
                title,
                {t.name: t.run(getattr(t, attr)) for t in tools},
                {t.name: t.reset for t in tools},
            )
    finally:
        for tool in tools:
            tool.reset()
            tool.hardlinks(False)
            harness.make_writable(tool.root / "data")

    # 7: seaway's hashing against plain reads of the same (page-cached) files.
    rows.extend(hashing_rows(work, d1, d2, repeats))

    print()
    harness.report(
        f"seaway vs DVC {DVC_VERSION}: datasets ({work.label}: {work.describe()})",
        rows,
        versions={k: v or "?" for k, v in versions.items()},
        json_path=args.json,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
