"""`seaway init`: create a project in a new or existing folder."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seaway.errors import UsageError
from seaway.example import templates
from seaway.project import SPEC_FILE, STATE_DIR


@dataclass
class InitResult:
    root: Path
    created: list[str] = field(default_factory=list)
    git_initialised: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "created": self.created,
            "git_initialised": self.git_initialised,
        }


def _slug(name: str) -> str:
    out = "".join(c if c.isalnum() or c in "-_" else "-" for c in name.lower()).strip("-")
    return out or "project"


def init_project(
    directory: Path, *, name: str | None = None, example_data: bool = False
) -> InitResult:
    """Write seaway.yaml, environments/, .seaway/ and a .gitignore entry; refuse to
    overwrite an existing seaway.yaml. Makes the folder a git repository if it is not in one."""
    root = directory.resolve()
    if root.exists() and not root.is_dir():
        raise UsageError(f"{directory} exists and is not a folder")
    spec = root / SPEC_FILE
    if spec.exists():
        raise UsageError(
            f"{spec} already exists; seaway init does not overwrite it",
            hint="edit it, or run `seaway validate` to check it",
        )
    root.mkdir(parents=True, exist_ok=True)
    result = InitResult(root)
    if not _inside_git(root):
        _git(root, "init", "-q")
        result.git_initialised = True

    if example_data:
        from seaway.example import copy_example, write_customers

        result.created.extend(copy_example(root))
        if name:
            text = spec.read_text().replace("name: churn", f"name: {_slug(name)}", 1)
            spec.write_text(text)
        write_customers(root)
        result.created.append("data/customers.parquet")
    else:
        spec.write_text(templates.SEAWAY_YAML.format(name=_slug(name or root.name)))
        result.created.append(SPEC_FILE)
    envs = root / "environments"
    envs.mkdir(exist_ok=True)
    for env, self_heal in (("staging", "true"), ("prod", "true")):
        path = envs / f"{env}.yaml"
        if not path.exists():
            path.write_text(templates.ENVIRONMENT_YAML.format(env=env, self_heal=self_heal))
            result.created.append(f"environments/{env}.yaml")
    (root / STATE_DIR).mkdir(exist_ok=True)
    result.created.append(f"{STATE_DIR}/")
    if _add_gitignore(root / ".gitignore"):
        result.created.append(".gitignore entry")
    return result


def _add_gitignore(path: Path) -> bool:
    entry = templates.GITIGNORE_ENTRY
    existing = path.read_text() if path.exists() else ""
    if any(line.strip() in (entry, entry.rstrip("/")) for line in existing.splitlines()):
        return False
    prefix = "" if not existing or existing.endswith("\n") else "\n"
    path.write_text(existing + prefix + entry + "\n")
    return True


def _inside_git(root: Path) -> bool:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--is-inside-work-tree"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        raise UsageError(
            "git is not installed", hint="install git; seaway keeps its state in git"
        ) from None
    return out.returncode == 0 and out.stdout.strip() == "true"


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
