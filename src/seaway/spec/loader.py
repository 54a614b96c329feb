"""Reading seaway.yaml and environments/*.yaml into models, with every problem located.

All problems of a file are reported together, each as `FILE:LINE:COL: PATH: message`, in
one `SpecError` (an `InvalidSpec`, which also carries them as `Problem` objects).

Cross-file rules (`inspect_project`):
- a deployment of a model that seaway.yaml neither declares under `models:` nor registers
  from a pipeline is a warning: versions can be registered from Python without a spec entry,
  and the registry, not the spec, is the authority on what exists;
- `monitoring.*.*.promote_to` naming an environment with no file is an error: both sides
  live in the same repository, and the retraining loop would otherwise fail unattended.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from seaway.spec.crossref import check_project, did_you_mean
from seaway.spec.environment import EnvironmentSpec
from seaway.spec.models import ProjectSpec
from seaway.spec.problems import (
    InvalidSpec,
    Problem,
    format_path,
    from_validation_error,
    key_text,
    make_problem,
    plural,
)
from seaway.spec.schema import cached_schema
from seaway.spec.types import NAME_PATTERN
from seaway.spec.yamlio import Document, parse

SPEC_FILE = "seaway.yaml"
ENV_DIR = "environments"
_HINT_EMPTY_ENV = "an environment with nothing deployed is `deployments: {}`"

M = TypeVar("M", bound=BaseModel)

_HINT_SYNTAX = "check the indentation and quoting near that line; quote values holding ': ' or ' #'"
_HINT_SCHEMA = (
    "`seaway schema --out seaway.schema.json` gives editors completion and checks as you type"
)
_HINT_DUPLICATE = "remove one of the two keys: YAML would silently keep only the last"


@dataclass
class _Read:
    """The outcome of reading one file: a model, or the problems and a hint for the user."""

    label: str
    doc: Document | None = None
    spec: Any = None
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    hint: str | None = None


@dataclass
class ValidationReport:
    """Everything `seaway validate` found: errors make the project invalid, warnings do not."""

    files: list[str]
    problems: list[Problem]
    warnings: list[Problem]

    @property
    def valid(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "problems": [p.to_dict() for p in self.problems],
            "warnings": [p.to_dict() for p in self.warnings],
        }


# --- public API ----------------------------------------------------------------------------


def load_project(path: Path) -> ProjectSpec:
    """Load seaway.yaml (or the seaway.yaml in directory `path`) into a ProjectSpec."""
    path = Path(path)
    if path.is_dir():
        path = path / SPEC_FILE
    read = _read_project(path, _label(path, path.parent))
    _raise_if_invalid([read])
    spec: ProjectSpec = read.spec
    return spec


def load_environment(path: Path, *, root: Path | None = None) -> EnvironmentSpec:
    """Load one environment file into an EnvironmentSpec."""
    path = Path(path)
    read = _read_environment(path, _label(path, root or _guess_root(path)))
    _raise_if_invalid([read])
    spec: EnvironmentSpec = read.spec
    return spec


def load_environment_text(text: str, label: str, name: str) -> EnvironmentSpec:
    """Load an environment file's `text` (read from git, say) named `name`; problems are
    located with `label` (`environments/prod.yaml@3f2a9c1`)."""
    read = _read_text(
        text.removeprefix("\ufeff"),
        _Read(label),
        EnvironmentSpec,
        lambda: cached_schema("environment"),
        empty_hint=_HINT_EMPTY_ENV,
    )
    read = _check_environment(read, name)
    _raise_if_invalid([read])
    spec: EnvironmentSpec = read.spec
    return spec


def load_environments(root: Path) -> dict[str, EnvironmentSpec]:
    """Every environments/*.yaml under the project root, by name (the file stem)."""
    reads = {p.stem: _read_environment(p, _label(p, root)) for p in environment_files(root)}
    _raise_if_invalid(list(reads.values()))
    return {name: read.spec for name, read in reads.items()}


def environment_files(root: Path) -> list[Path]:
    folder = Path(root) / ENV_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.yaml") if p.is_file())


def inspect_project(root: Path) -> ValidationReport:
    """Check seaway.yaml and every environment file; collect problems instead of raising."""
    root = Path(root)
    project = _read_project(root / SPEC_FILE, SPEC_FILE)
    envs = {p.stem: _read_environment(p, _label(p, root)) for p in environment_files(root)}
    reads = [project, *envs.values()]
    problems = [p for r in reads for p in r.problems]
    warnings = [p for r in reads for p in r.warnings]
    for stray in sorted((root / ENV_DIR).glob("*.yml")) if (root / ENV_DIR).is_dir() else []:
        warnings.append(
            Problem(
                _label(stray, root),
                None,
                None,
                "",
                "ignored: environment files must end in .yaml",
                "warning",
            )
        )
    if project.spec is not None:
        cross = _cross_file(project, envs)
        problems += [p for p in cross if p.severity == "error"]
        warnings += [p for p in cross if p.severity == "warning"]
    return ValidationReport([r.label for r in reads], problems, warnings)


def validate_project(root: Path) -> list[str]:
    """Every error in seaway.yaml and the environment files as text; empty when valid.

    Warnings (see the module docstring) are not included; `inspect_project` has them.
    """
    return [str(p) for p in inspect_project(root).problems]


# --- reading -------------------------------------------------------------------------------


def _read_project(path: Path, label: str) -> _Read:
    read = _read_model(
        path,
        label,
        ProjectSpec,
        lambda: cached_schema("project"),
        empty_hint="a minimal seaway.yaml is `name: my-project`",
    )
    if read.spec is not None:
        for finding in check_project(read.spec):
            problem = make_problem(
                read.doc,
                label,
                finding.path,
                finding.message,
                key=finding.key,
                severity=finding.severity,
            )
            (read.problems if finding.severity == "error" else read.warnings).append(problem)
        if read.problems:
            read.spec = None
            read.hint = "each reference must name something declared in the same file"
    read.problems.sort(key=_position)
    return read


def _read_environment(path: Path, label: str) -> _Read:
    read = _read_model(
        path,
        label,
        EnvironmentSpec,
        lambda: cached_schema("environment"),
        empty_hint=_HINT_EMPTY_ENV,
    )
    return _check_environment(read, path.stem) if path.suffix == ".yaml" else read


def _check_environment(read: _Read, name: str) -> _Read:
    """Add the problem of an invalid environment name; problems in file order."""
    if not re.match(NAME_PATTERN, name):
        read.problems.insert(
            0,
            Problem(
                read.label,
                None,
                None,
                "",
                f"'{name}' is not a valid environment name: use lowercase letters, digits, "
                "'-' and '_'",
            ),
        )
        read.spec = None
    read.problems.sort(key=_position)
    return read


def _syntax_problem(label: str, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
    if exc.problem == "but found another document":
        return Problem(
            label, line, col, "", "invalid YAML: a second document starts here; use one only"
        )
    message = f"invalid YAML: {exc.problem or exc.context or 'cannot parse'}"
    if exc.problem and exc.context:
        # "while scanning a quoted scalar": say where that started, often lines earlier.
        context_mark = exc.context_mark
        message += f" ({exc.context}"
        if context_mark is not None and mark is not None and context_mark.line != mark.line:
            message += f" that starts at line {context_mark.line + 1}"
        message += ")"
    return Problem(label, line, col, "", message)


def _position(problem: Problem) -> tuple[int, int]:
    return problem.line or 0, problem.column or 0


def _read_model(
    path: Path,
    label: str,
    model: type[M],
    schema: Callable[[], dict[str, Any]],
    *,
    empty_hint: str,
) -> _Read:
    read = _Read(label)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        return _fail(
            read,
            "file not found",
            "run `seaway init` to create a project, or pass -C DIR"
            if path.name == SPEC_FILE
            else "environment files live in environments/NAME.yaml",
        )
    except UnicodeDecodeError as exc:
        return _fail(read, f"not UTF-8 text (byte {exc.start})", "save the file as UTF-8")
    except OSError as exc:
        return _fail(read, f"cannot read: {exc.strerror or exc}", "check the file's permissions")
    return _read_text(text, read, model, schema, empty_hint=empty_hint)


def _read_text(
    text: str,
    read: _Read,
    model: type[M],
    schema: Callable[[], dict[str, Any]],
    *,
    empty_hint: str,
) -> _Read:
    label = read.label
    try:
        doc = parse(text)
    except yaml.MarkedYAMLError as exc:
        read.problems.append(_syntax_problem(label, exc))
        read.hint = _HINT_SYNTAX
        return read
    except yaml.YAMLError as exc:
        return _fail(read, f"invalid YAML: {exc}", _HINT_SYNTAX)
    read.doc = doc
    if doc.node is None:
        return _fail(read, "the file is empty", empty_hint)
    if not isinstance(doc.data, dict):
        kind = "a list" if isinstance(doc.data, list) else f"the value {doc.data!r}"
        problem = make_problem(
            doc, label, (), f"expected a mapping of keys at the top level, got {kind}"
        )
        read.problems.append(problem)
        read.hint = "write `key: value` lines at the top level"
        return read
    for dup in doc.duplicates:
        read.problems.append(
            Problem(
                label,
                dup.pos[0],
                dup.pos[1],
                format_path(dup.path, doc.data),
                f"duplicate key '{key_text(dup.path[-1])}' (first at line {dup.first[0]})",
            )
        )
        read.hint = _HINT_DUPLICATE
    try:
        spec = model.model_validate(doc.data)
    except ValidationError as exc:
        read.problems += from_validation_error(exc, doc, label, schema())
        read.hint = read.hint or _HINT_SCHEMA
        return read
    if not read.problems:
        read.spec = spec
    return read


def _fail(read: _Read, message: str, hint: str) -> _Read:
    read.problems.append(Problem(read.label, None, None, "", message))
    read.hint = hint
    return read


def _cross_file(project: _Read, envs: dict[str, _Read]) -> list[Problem]:
    spec = project.spec
    known = spec.registered_models()
    out: list[Problem] = []
    for read in envs.values():
        if read.spec is None:
            continue
        for model in read.spec.deployments:
            if model not in known:
                out.append(
                    make_problem(
                        read.doc,
                        read.label,
                        ("deployments", model),
                        f"model '{model}' is not declared in seaway.yaml (under models, or as a "
                        "pipeline's register.model)",
                        key=True,
                        severity="warning",
                    )
                )
    for model, monitor in spec.monitoring.items():
        for trigger_name in ("on_drift", "on_quality_drop"):
            trigger = getattr(monitor, trigger_name)
            if trigger is not None and trigger.promote_to and trigger.promote_to not in envs:
                out.append(
                    make_problem(
                        project.doc,
                        project.label,
                        ("monitoring", model, trigger_name, "promote_to"),
                        f"no environment '{trigger.promote_to}' (environments/"
                        f"{trigger.promote_to}.yaml does not exist)"
                        + did_you_mean(trigger.promote_to, envs),
                    )
                )
    return out


def _raise_if_invalid(reads: list[_Read]) -> None:
    bad = [r for r in reads if r.problems]
    if not bad:
        return
    details = [p for r in bad for p in r.problems]
    if len(bad) == 1:
        message = f"{bad[0].label} is not valid ({plural(len(details), 'problem')})"
    else:
        message = f"{len(bad)} files are not valid ({plural(len(details), 'problem')})"
    hint = next((r.hint for r in bad if r.hint), None)
    raise InvalidSpec(message, details, hint=hint)


def _label(path: Path, root: Path | None) -> str:
    """The path users see: relative to the project root when inside it."""
    if root is not None:
        try:
            return path.resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            pass
    return path.as_posix()


def _guess_root(path: Path) -> Path | None:
    parent = path.resolve().parent
    return parent.parent if parent.name == ENV_DIR else parent
