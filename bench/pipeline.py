"""seaway vs DVC 3.67.1: a chain of 50 trivial Python steps.

Run from the repository root with the project's virtualenv:

    .venv/bin/python bench/pipeline.py [--repeats N] [--quick] [--json FILE]

Both tools run the same chain: step 0 writes a small file, step i reads step i-1's file and
writes its own. DVC runs each stage as a `python stage.py I` command (its only way to run
Python); seaway runs `chain:stage` in warm worker processes. See bench/README.md.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import harness
from harness import Row

DVC_VERSION = "3.67.1"
DVC_REQUIREMENTS = [f"dvc=={DVC_VERSION}"]

STEP_MODULE = '''\
"""Trivial steps: each reads the previous file and writes its own."""


def first(out):
    with open(out, "w") as fh:
        fh.write("0\\n")


def stage(prev, out):
    with open(prev) as fh:
        value = int(fh.read()) + 1
    with open(out, "w") as fh:
        fh.write(f"{value}\\n")
'''

DVC_STAGE = """\
import sys

i = int(sys.argv[1])
value = 0 if i == 0 else int(open(f"out/{i - 1}.txt").read()) + 1
open(f"out/{i}.txt", "w").write(f"{value}\\n")
"""


def seaway_spec(steps: int) -> str:
    lines = ["name: chain", "pipelines:", "  chain:", "    steps:"]
    for i in range(steps):
        lines.append(f"      s{i:02d}:")
        if i == 0:
            lines.append("        run: chain:first")
        else:
            lines.append("        run: chain:stage")
            lines.append(f"        inputs: {{prev: s{i - 1:02d}.out}}")
        lines.append("        outputs: [out]")
    return "\n".join(lines) + "\n"


def dvc_yaml(steps: int) -> str:
    lines = ["stages:"]
    for i in range(steps):
        lines.append(f"  s{i:02d}:")
        lines.append(f"    cmd: python stage.py {i}")
        deps = ["stage.py"] + ([f"out/{i - 1}.txt"] if i else [])
        lines.append("    deps: [" + ", ".join(deps) + "]")
        lines.append(f"    outs: [out/{i}.txt]")
    return "\n".join(lines) + "\n"


@dataclass
class Tool:
    name: str
    root: Path
    argv: list[str]
    env: dict[str, str | None]
    reset: Callable[[], None]

    def run(self) -> Callable[[], None]:
        return harness.command(self.argv, cwd=self.root, env=self.env)


def seaway_tool(steps: int) -> Tool:
    root = harness.cache_dir("workspaces", "pipeline-seaway")
    harness.run_command(["git", "init", "--quiet", "."], cwd=root)
    (root / "seaway.yaml").write_text(seaway_spec(steps))
    (root / "chain.py").write_text(STEP_MODULE)
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("SEAWAY_")}

    def reset() -> None:
        harness.remove(root / ".seaway")
        harness.flush_writes()

    return Tool("seaway", root, [str(harness.project_bin() / "seaway"), "run", "chain"], env, reset)


def dvc_tool(steps: int) -> Tool:
    bin_dir = harness.competitor_venv(f"dvc-{DVC_VERSION}", DVC_REQUIREMENTS)
    root = harness.cache_dir("workspaces", "pipeline-dvc")
    dvc, env = harness.dvc_workspace(root, bin_dir)
    (root / "dvc.yaml").write_text(dvc_yaml(steps))
    (root / "stage.py").write_text(DVC_STAGE)
    (root / "out").mkdir(exist_ok=True)

    def reset() -> None:
        harness.remove(root / "dvc.lock", root / ".dvc" / "cache", root / ".dvc" / "tmp")
        for path in (root / "out").glob("*.txt"):
            path.unlink()
        harness.flush_writes()

    return Tool("dvc", root, [str(dvc), "repro", "--quiet"], env, reset)


def main(argv: list[str] | None = None) -> int:
    args = harness.parse_args((__doc__ or "").splitlines()[0], argv)
    steps = 10 if args.quick else 50
    repeats: int = args.repeats
    harness.log(f"a chain of {steps} trivial Python steps; {repeats} repeats")
    # As in data_add.py: an installed package carries compiled bytecode.
    harness.run_command(
        [harness.project_bin() / "python", "-m", "compileall", "-q", harness.REPO_ROOT / "src"]
    )
    tools = [seaway_tool(steps), dvc_tool(steps)]
    versions = {
        "seaway": harness.command_output([tools[0].argv[0], "--version"]).removeprefix("seaway "),
        "dvc": harness.command_output(
            [tools[1].argv[0], "--version"], env=harness.child_env(tools[1].env)
        ),
    }
    rows: list[Row] = []

    def scenario(title: str, setup: dict[str, Callable[[], None]] | None) -> None:
        harness.log(f"scenario: {title}")
        load = harness.check_quiet()
        failures: dict[str, str] = {}
        snapshot = harness.load_snapshot()
        times = harness.measure(
            {t.name: t.run() for t in tools}, setup, repeats, warmup=1, failures=failures
        )
        during = harness.other_load_since(snapshot)
        notes = [f"{name} failed, {msg}" for name, msg in failures.items()]
        if max(load, during) > harness.BUSY_THRESHOLD:
            notes.insert(0, f"[busy: others used {load:.2f} cores before, during {during:.2f}]")
        rows.append(Row(title, times.get("seaway"), times.get("dvc"), "dvc", " ".join(notes)))

    scenario(f"first run, {steps} steps", {t.name: t.reset for t in tools})
    for tool in tools:  # make sure a complete run exists before the no-op scenario
        try:
            tool.run()()
        except harness.CommandFailed as exc:
            harness.log(f"  {tool.name}: the run before the no-op scenario failed: {exc.short(80)}")
    scenario(f"no-op rerun, {steps} steps (all cached)", None)

    print()
    harness.report(
        f"seaway vs DVC {DVC_VERSION}: pipelines ({steps}-step chain of trivial Python steps)",
        rows,
        versions={k: v or "?" for k, v in versions.items()},
        json_path=args.json,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
