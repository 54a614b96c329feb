"""Step cache keys.

A key is the BLAKE3 of a canonical JSON document (sorted keys, no spaces) holding
everything that can change what a step produces:

- `format`: CACHE_FORMAT, bumped whenever the document or the meaning of a step changes;
- `action`: the `run` target or the `cmd` string, and the step's declared input, output
  and metric names;
- `code`: `{project-relative path: BLAKE3}` of the step's project code (seaway.pipeline.sources);
- `params`: the values of the params the step lists;
- `inputs`: the tree hash of every input (a dataset version or an upstream output);
- `env`: for each `env:` entry, the installed version of that distribution, or the BLAKE3 of
  that lock file in the project (None when neither exists).

The step's name and pipeline are left out: two steps doing the same work share results.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from seaway.pipeline.plan import StepPlan
from seaway.pipeline.sources import SourceScanner

CACHE_FORMAT = 1


def canonical_json(doc: Any) -> bytes:
    return json.dumps(
        doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr
    ).encode()


def key_document(
    step: StepPlan,
    *,
    code: dict[str, str],
    params: dict[str, Any],
    inputs: dict[str, str],
    env: dict[str, str | None],
) -> dict[str, Any]:
    return {
        "format": CACHE_FORMAT,
        "action": {
            "run": step.run,
            "cmd": step.cmd,
            "inputs": sorted(step.inputs),
            "outputs": list(step.outputs),
            "metrics": list(step.metrics),
        },
        "code": code,
        "params": {p: params[p] for p in step.params},
        "inputs": inputs,
        "env": env,
    }


def compute_key(doc: dict[str, Any]) -> str:
    from seaway.store.hashing import hash_bytes

    return hash_bytes(canonical_json(doc))


class KeyContext:
    """What keys of one run share: the source scanner and the environment look-ups."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sources = SourceScanner(root)
        self._env: dict[str, str | None] = {}
        self._code: dict[str, dict[str, str]] = {}

    def code(self, step: StepPlan) -> dict[str, str]:
        action = step.run if step.run is not None else f"cmd:{step.cmd}"
        cached = self._code.get(action)
        if cached is None:
            if step.run is not None:
                cached = self.sources.module_closure(step.run.partition(":")[0])
            else:
                cached = self.sources.command_closure(step.cmd or "")
            self._code[action] = cached
        return cached

    def env(self, step: StepPlan) -> dict[str, str | None]:
        return {entry: self._env_entry(entry) for entry in step.env}

    def _env_entry(self, entry: str) -> str | None:
        if entry in self._env:
            return self._env[entry]
        value: str | None = None
        path = self.root / entry
        if path.is_file():
            from seaway.store.hashing import hash_file

            value = "blake3:" + hash_file(path)
        elif "/" not in entry:
            from importlib.metadata import PackageNotFoundError, version

            try:
                value = version(entry)
            except (PackageNotFoundError, ValueError):
                value = None
        self._env[entry] = value
        return value

    def key(
        self, step: StepPlan, params: dict[str, Any], inputs: dict[str, str]
    ) -> tuple[str, dict[str, Any]]:
        doc = key_document(
            step, code=self.code(step), params=params, inputs=inputs, env=self.env(step)
        )
        return compute_key(doc), doc
