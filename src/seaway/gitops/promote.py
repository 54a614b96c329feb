"""Promotion and rollback as git commits to `environments/ENV.yaml`.

    result = promote(project, "churn@champion", "prod")             # a commit on this branch
    result = promote(project, "churn@7", "prod", branch=True)       # promote/churn-7-prod
    result = rollback(project, "churn", "prod")                     # the version before

Promotion never touches live state: it changes desired state, and the reconciler makes it
so. A promotion

1. resolves the reference (an alias becomes the number it points at now; the file gets
   the number, so what serves does not move when the alias does);
2. asks `promote:ENV` of the acting identity;
3. refuses, writing nothing, when the repository is mid-merge or mid-rebase, the file has
   uncommitted edits (they would be committed along, or lost), or the review branch exists;
4. checks the version: its newest gate report passed (when the model declares gates), the
   policies allow it (the decision is recorded as a `policy.decision` event), and the
   environment's `requires` (a signature, an approval) hold. Every failing rule is named
   in one `PromotionRefused` (exit 1);
5. edits only the `deployments.MODEL.version` scalar of the file's text, so comments,
   order, quoting and line endings stay as the author wrote them (a model not yet in the
   file gets a minimal block);
6. commits that one file on the current branch (other staged changes stay staged and out
   of the commit), or with `branch=True` on a new branch built with git plumbing, leaving
   the working tree, the index and the current branch untouched;
7. restores the file byte for byte when the commit fails (a hook, a lock), and records the
   event `promotion.committed` with the commit id once it exists.

The same version already in the file is not an error: nothing is committed and the result
says `unchanged`. `rollback` writes the version the file held before (from its history)
or the one given, under the same rules, without the promotion checks: it is the way back
when something is wrong, and the target refuses what may not serve (an unsigned version
where signatures are required).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seaway.errors import CheckFailed, NotFound, SeawayError, SpecError, StoreError, UsageError
from seaway.gitops.git import Git, ensure_repo, short

if TYPE_CHECKING:
    from seaway.policy.identity import Identity
    from seaway.project import Project
    from seaway.registry import ModelVersion
    from seaway.spec.environment import EnvironmentSpec

ENV_DIR = "environments"
HISTORY_LIMIT = 500
_ENV_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class PromotionResult:
    """What a promotion or rollback wrote (or why it wrote nothing: `unchanged`)."""

    model: str
    number: int
    environment: str
    previous: int | None
    """The version the file held before, as a number (None: the model was not there)."""
    commit: str
    """The new commit; HEAD when `unchanged`."""
    branch: str
    """The branch holding the commit: the current one, or the new review branch."""
    path: str
    """The environment file, relative to the project root."""
    message: str
    """The commit message (empty when `unchanged`)."""
    unchanged: bool
    new_branch: bool = False
    """The commit is on a branch created for review (`branch=True`)."""

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.number}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.number,
            "ref": self.ref,
            "environment": self.environment,
            "previous": self.previous,
            "commit": self.commit,
            "branch": self.branch,
            "path": self.path,
            "message": self.message,
            "unchanged": self.unchanged,
            "new_branch": self.new_branch,
        }


@dataclass(frozen=True)
class CheckFailure:
    """One rule a promotion did not satisfy."""

    rule: str
    """What failed: `gate auc>=0.8`, `policy prod-needs-approval`, `requires.signature`."""
    message: str
    hint: str

    def to_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "message": self.message, "hint": self.hint}


class PromotionRefused(CheckFailed):
    """The version failed the environment's checks; `failures` names each rule."""

    def __init__(self, ref: str, environment: str, failures: list[CheckFailure]) -> None:
        rules = ", ".join(f.rule for f in failures)
        lines = [f"cannot promote {ref} to {environment}: blocked by {rules}"]
        lines += [f"  {f.rule}: {f.message}" for f in failures]
        hints = list(dict.fromkeys(f.hint for f in failures if f.hint))
        super().__init__("\n".join(lines), hint="; ".join(hints) or None)
        self.ref = ref
        self.environment = environment
        self.failures = failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "promoted": False,
            "ref": self.ref,
            "environment": self.environment,
            "failures": [f.to_dict() for f in self.failures],
        }


@dataclass
class _Evidence:
    """What the checks found, for the commit message."""

    gates: str
    policies: str
    approvals: list[str] = field(default_factory=list)
    signed: bool = False


# --- public API ----------------------------------------------------------------------------


def promote(
    project: Project,
    ref: str,
    environment: str,
    *,
    branch: bool = False,
    message: str | None = None,
) -> PromotionResult:
    """Write `ref` as the version of its model in `environments/ENVIRONMENT.yaml`, as a git
    commit (see the module docstring)."""
    from seaway.policy.identity import authorize
    from seaway.registry import get_version

    version = get_version(project, ref)
    model, number = version.model, version.number
    path = _env_path(environment)
    git = ensure_repo(project.root)
    _require_file(git, project, path, environment, branch)
    who = authorize(project, f"promote:{environment}")
    target_branch = f"promote/{model}-{number}-{environment}" if branch else None
    base, current = _check_repository(git, path, branch)
    if target_branch is not None:
        _check_branch_free(git, target_branch)
    original = _read(git, project, path, base, branch)
    env_spec = _parse(original, path, environment, base)
    edit = set_version(original.decode("utf-8"), model, number)
    previous = _as_number(project, model, edit.previous)
    if edit.unchanged:
        return PromotionResult(
            model, number, environment, previous, base, current or "", path, "", True
        )
    evidence = _check_version(project, version, environment, env_spec, who)
    text = _promotion_message(version, environment, previous, edit.previous, evidence, who, message)
    return _commit(
        git,
        project,
        path,
        original,
        edit.text,
        text,
        base,
        target_branch,
        current,
        PromotionResult(model, number, environment, previous, "", "", path, text, False),
        "promotion.committed",
        who,
    )


def rollback(
    project: Project,
    model: str,
    environment: str,
    *,
    to: int | None = None,
    branch: bool = False,
    reason: str | None = None,
) -> PromotionResult:
    """Write the version `model` had in `environments/ENVIRONMENT.yaml` before the current
    one (the newest earlier commit of the file where it differed), or `to`, as a commit.

    NotFound when the model is not deployed there or the history holds no other version;
    `reason` goes into the commit message and the `rollback.committed` event.
    """
    from seaway.policy.identity import authorize
    from seaway.registry import get_version
    from seaway.registry.versions import check_model_name

    check_model_name(model)
    path = _env_path(environment)
    if to is not None and to < 1:
        raise UsageError(f"--to must be a version number, got {to}", hint="versions start at 1")
    git = ensure_repo(project.root)
    _require_file(git, project, path, environment, branch)
    who = authorize(project, f"rollback:{environment}", f"promote:{environment}")
    base, current = _check_repository(git, path, branch)
    original = _read(git, project, path, base, branch)
    env_spec = _parse(original, path, environment, base)
    deployment = env_spec.deployments.get(model)
    if deployment is None:
        raise NotFound(
            f"{model} is not deployed in {environment} ({path} at {short(base)})",
            hint=f"deployed there: {', '.join(sorted(env_spec.deployments)) or 'nothing'}",
        )
    present = _as_number(project, model, deployment.version)
    if to is None:
        to = _previous_version(project, git, path, model, deployment.version, present)
    version = get_version(project, f"{model}@{to}")
    target_branch = f"rollback/{model}-{to}-{environment}" if branch else None
    if target_branch is not None:
        _check_branch_free(git, target_branch)
    edit = set_version(original.decode("utf-8"), model, to)
    if edit.unchanged:
        return PromotionResult(model, to, environment, present, base, current or "", path, "", True)
    why = (reason or "").strip() or f"requested by {who.name}"
    was = f"@{present}" if present is not None else str(deployment.version)
    text = (
        f"rollback {model} to @{to} in {environment}\n\n"
        f"Rolled back from: {was}\n"
        f"Reason: {why}\n"
        f"Actor: {who.name}\n\n"
        f"Seaway-Version: {version.ref}\n"
        f"Seaway-Environment: {environment}\n"
    )
    return _commit(
        git,
        project,
        path,
        original,
        edit.text,
        text,
        base,
        target_branch,
        current,
        PromotionResult(model, to, environment, present, "", "", path, text, False),
        "rollback.committed",
        who,
        reason=why,
    )


def _commit(
    git: Git,
    project: Project,
    path: str,
    original: bytes,
    edited: str,
    message: str,
    base: str,
    target_branch: str | None,
    current: str | None,
    planned: PromotionResult,
    event: str,
    who: Identity,
    *,
    reason: str | None = None,
) -> PromotionResult:
    """Check the edited file, commit it, record `event`: the end both promote and rollback
    share. `planned` is the result without its commit and branch."""
    from dataclasses import replace

    new = edited.encode("utf-8")
    _check_edit(new, path, planned.environment, base, planned.model, planned.number)
    commit = _write(git, project, path, original, new, message, base, target_branch)
    result = replace(
        planned,
        commit=commit,
        branch=target_branch or current or "",
        new_branch=target_branch is not None,
    )
    _record(project, event, result, who, base=base, reason=reason)
    return result


# --- repository checks -----------------------------------------------------------------------


def _env_path(environment: str) -> str:
    if not _ENV_RE.match(environment):
        raise UsageError(
            f"{environment!r} is not an environment name",
            hint="use lower-case letters, digits, '-' and '_' (staging, prod)",
        )
    return f"{ENV_DIR}/{environment}.yaml"


def _require_file(git: Git, project: Project, path: str, environment: str, branch: bool) -> None:
    """NotFound, naming the environments there are, when the file is missing."""
    head = git.head()
    at_head = git.show_bytes(head, path) is not None
    if at_head or (not branch and (project.root / path).is_file()):
        return
    names = sorted(
        {n[: -len(".yaml")] for n in git.ls(head, ENV_DIR) if n.endswith(".yaml")}
        | {p.stem for p in (project.root / ENV_DIR).glob("*.yaml")}
    )
    raise NotFound(
        f"no environment {environment!r}: {path} does not exist",
        hint=(f"environments: {', '.join(names)}; or c" if names else "c")
        + f"reate {path} (`deployments: {{}}` is an empty one) and commit it",
    )


def _check_repository(git: Git, path: str, branch: bool) -> tuple[str, str | None]:
    """(HEAD sha, current branch) when a commit can be written; UsageError otherwise."""
    doing = git.operation_in_progress()
    if doing is not None:
        raise UsageError(
            f"the repository is in the middle of {doing}",
            hint="finish it (or abort it) first, then promote again",
        )
    if git.is_dirty(path):
        raise UsageError(
            f"{path} has uncommitted changes",
            hint=f"commit or stash them first (git diff -- {path}); a promotion commits the "
            "file alone and must not take your edits along or overwrite them",
        )
    base = git.head()
    current = git.current_branch()
    if not branch and current is None:
        raise UsageError(
            "HEAD is detached: there is no branch to commit to",
            hint="check out a branch (git switch main), or pass --branch to create one",
        )
    return base, current


def _check_branch_free(git: Git, branch: str) -> None:
    if git.ref_exists(f"refs/heads/{branch}"):
        raise UsageError(
            f"the branch {branch} already exists",
            hint=f"merge it or delete it (git branch -D {branch}), then try again",
        )


def _read(git: Git, project: Project, path: str, base: str, branch: bool) -> bytes:
    """The file's bytes to edit: HEAD's for a branch, else the (clean) working tree's."""
    if not branch:
        return (project.root / path).read_bytes()
    data = git.show_bytes(base, path)
    if data is None:  # checked by _require_file; a concurrent commit could remove it
        raise NotFound(f"{path} does not exist at {short(base)}", hint="commit it first")
    return data


def _parse(data: bytes, path: str, environment: str, base: str) -> EnvironmentSpec:
    from seaway.spec.loader import load_environment_text

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(
            f"{path} is not UTF-8 text (byte {exc.start})", hint="save the file as UTF-8"
        ) from exc
    return load_environment_text(text, f"{path}@{short(base)}", environment)


def _as_number(project: Project, model: str, value: int | str | None) -> int | None:
    """A version value from a file as a number (an alias: the version it points at now)."""
    if value is None:
        return None
    if isinstance(value, int):
        return value
    if value.isdigit():
        return int(value)
    from seaway.registry import get_version

    try:
        return get_version(project, f"{model}@{value}").number
    except (NotFound, UsageError):
        return None


def _previous_version(
    project: Project, git: Git, path: str, model: str, value: int | str, present: int | None
) -> int:
    """The version in the newest earlier commit of `path` where it differs from now."""
    import yaml

    history = git.log_paths(path, HISTORY_LIMIT)
    texts = git.cat_files([f"{sha}:{git.full_path(path)}" for sha, _ in history])
    for data in texts:
        if data is None:
            continue
        try:
            doc = yaml.load(data, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            earlier = doc["deployments"][model]["version"]
        except (yaml.YAMLError, KeyError, TypeError, UnicodeDecodeError):
            continue
        if earlier == value or isinstance(earlier, bool):
            continue
        number = _as_number(project, model, earlier) if isinstance(earlier, int | str) else None
        if number is not None and number != present:
            return number
    raise NotFound(
        f"no earlier version of {model} in the history of {path}",
        hint=f"name the version to go back to: seaway rollback {model} --env "
        f"{Path(path).stem} --to N",
    )


# --- the checks ------------------------------------------------------------------------------


def _check_version(
    project: Project,
    version: ModelVersion,
    environment: str,
    env_spec: EnvironmentSpec,
    who: Identity,
) -> _Evidence:
    """Every promotion check; PromotionRefused naming each failure, else the evidence."""
    from seaway.policy.approvals import list_approvals
    from seaway.policy.promotion import evaluate_promotion
    from seaway.registry.signing import signature_status

    ref = version.ref
    failures: list[CheckFailure] = []
    gates = _check_gates(project, version, failures)
    decision = evaluate_promotion(project, version, environment, identity=who, record=True)
    for outcome in decision.outcomes:
        if outcome.blocking:
            failures.append(
                CheckFailure(
                    f"policy {outcome.policy}",
                    outcome.error or outcome.message or "does not allow it",
                    f"see why: seaway policy eval {ref} --env {environment}; an approval is "
                    f"given with: seaway approve {ref} --env {environment}",
                )
            )
    applying = [o for o in decision.outcomes if o.applies]
    policies = ("allowed" if decision.allowed else "blocked") + (
        " ("
        + ", ".join(f"{o.policy}: {'passed' if o.passed else 'failed'}" for o in applying)
        + ")"
        if applying
        else " (no policy applies)"
    )
    signed = signature_status(project, version)
    if env_spec.requires.signature and not signed:
        failures.append(
            CheckFailure(
                "requires.signature",
                f"{environment} takes signed versions only and {ref} is not signed",
                f"seaway sign {ref} --key PRIVATE.pem",
            )
        )
    approvals = list_approvals(project, version, environment)
    if env_spec.requires.approval and not approvals:
        failures.append(
            CheckFailure(
                "requires.approval",
                f"{environment} needs an approval of {ref} and it has none",
                f"seaway approve {ref} --env {environment}",
            )
        )
    if failures:
        raise PromotionRefused(ref, environment, failures)
    shown = [f"{a.actor} as {a.role}" + (f": {a.comment}" if a.comment else "") for a in approvals]
    return _Evidence(gates=gates, policies=policies, approvals=shown, signed=signed)


def _check_gates(project: Project, version: ModelVersion, failures: list[CheckFailure]) -> str:
    """The gate summary for the message; a failure for a missing or failed report."""
    from seaway.gates import latest_report

    model_spec = project.spec.models.get(version.model)
    if model_spec is None or not model_spec.gates:
        return "none declared"
    hint = f"seaway gate {version.ref}"
    report = latest_report(project, version)
    if report is None:
        failures.append(CheckFailure("gates", f"{version.ref} has no gate report", hint))
        return "not run"
    for result in report.results:
        if result.blocking:
            failures.append(
                CheckFailure(
                    f"gate {result.name}",
                    f"{result.status.value}: {result.message}",
                    hint,
                )
            )
    summary = ", ".join(f"{r.name}: {r.status.value}" for r in report.results)
    return f"{'passed' if report.passed else 'failed'} ({summary})"


def _promotion_message(
    version: ModelVersion,
    environment: str,
    previous: int | None,
    previous_text: int | str | None,
    evidence: _Evidence,
    who: Identity,
    note: str | None,
) -> str:
    if previous_text is None:
        was = "none (first deployment here)"
    elif previous is not None and str(previous) != str(previous_text):
        was = f"{previous_text} (@{previous})"
    else:
        was = f"@{previous_text}"
    lines = [
        f"promote {version.ref} to {environment}",
        "",
        *([note.strip(), ""] if note and note.strip() else []),
        f"Previous version: {was}",
        f"Gates: {evidence.gates}",
        f"Policies: {evidence.policies}",
        f"Approvals: {'; '.join(evidence.approvals) or 'none'}",
        f"Signed: {'yes' if evidence.signed else 'no'}",
        f"Actor: {who.name}",
        "",
        f"Seaway-Version: {version.ref}",
        f"Seaway-Environment: {environment}",
    ]
    return "\n".join(lines) + "\n"


# --- writing ---------------------------------------------------------------------------------


def _check_edit(
    new: bytes, path: str, environment: str, base: str, model: str, number: int
) -> None:
    """The edited file must still validate and say what was meant, before it is written."""
    spec = _parse(new, path, environment, base)
    deployment = spec.deployments.get(model)
    if deployment is None or deployment.version != number:
        raise SpecError(
            f"editing {path} did not set {model} to version {number}",
            hint=f"set deployments.{model}.version by hand and commit it",
        )


def _write(
    git: Git,
    project: Project,
    path: str,
    original: bytes,
    new: bytes,
    message: str,
    base: str,
    branch: str | None,
) -> str:
    """Commit `new` as the content of `path`; the file is as before when this fails."""
    if branch is not None:
        return git.commit_file_on_branch(branch, base, path, new, message)
    file = project.root / path
    _replace(file, new)
    try:
        return git.commit_only(path, message)
    except BaseException:
        _replace(file, original)
        raise


def _replace(file: Path, data: bytes) -> None:
    """Write `data` to `file` in one step (a crash leaves the old or the new content)."""
    temp = file.with_name(f".{file.name}.seaway-tmp")
    mode = file.stat().st_mode & 0o7777
    try:
        with open(temp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, mode)
        os.replace(temp, file)
    finally:
        if temp.exists():
            temp.unlink()


def _record(
    project: Project,
    kind: str,
    result: PromotionResult,
    who: Identity,
    *,
    base: str,
    reason: str | None = None,
) -> None:
    from seaway.store.events import record_event

    data: dict[str, Any] = {
        "environment": result.environment,
        "commit": result.commit,
        "branch": result.branch,
        "previous": result.previous,
        "path": result.path,
        "parent": base,
    }
    if reason is not None:
        data["reason"] = reason
    try:
        project.metadata.run_write(
            lambda conn: record_event(conn, kind, f"model:{result.ref}", data, actor=who.name)
        )
    except SeawayError as exc:
        # The commit stands (git is the source of truth); say so rather than only failing.
        raise StoreError(
            f"committed {short(result.commit)} on {result.branch}, but the event could not be "
            f"recorded: {exc.message}",
            hint="the promotion is in git and takes effect; check the metadata store",
        ) from exc


# --- editing the file's text -----------------------------------------------------------------


@dataclass(frozen=True)
class VersionEdit:
    """The file's text with the model's version set, and the value it replaced."""

    text: str
    previous: int | str | None
    unchanged: bool


def set_version(text: str, model: str, number: int) -> VersionEdit:
    """`text` (an environment file) with `deployments.MODEL.version` set to `number`.

    Only the version scalar's characters change; a model not in the file is appended
    under `deployments:` (created when absent) in the file's own indentation. Raises
    SpecError where the version cannot be edited in place (it comes from a YAML anchor or
    merge key, shared with other entries).
    """
    import yaml
    from yaml.nodes import MappingNode, ScalarNode

    newline = "\r\n" if "\r\n" in text else "\n"
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is None:
        return VersionEdit(
            _append(text, f"deployments:{newline}", 2, model, number, newline), None, False
        )
    if not isinstance(root, MappingNode):
        raise SpecError("an environment file holds a mapping at the top level")
    found = _entry(root, "deployments")
    if found is None:
        indent = _indent_step(root, 2)
        return VersionEdit(
            _append(text, f"deployments:{newline}", indent, model, number, newline), None, False
        )
    key, deployments = found
    if isinstance(deployments, ScalarNode) or (
        isinstance(deployments, MappingNode) and not deployments.value
    ):
        # `deployments:` (null) or `deployments: {}`: the value goes, a block follows the line.
        start, end = deployments.start_mark.index, deployments.end_mark.index
        rest = text[:start].rstrip(" ") + text[end:]
        line_end = _line_end(rest, key.end_mark.index)
        indent = key.start_mark.column + _indent_step(root, 2)
        block = _block(model, number, indent, _indent_step(root, 2), newline)
        return VersionEdit(_insert(rest, line_end, block, newline), None, False)
    if not isinstance(deployments, MappingNode):
        raise SpecError("`deployments` in an environment file is a mapping of model names")
    entry = _entry(deployments, model)
    if entry is None:
        if deployments.flow_style:
            close = deployments.end_mark.index - 1
            added = f", {model}: {{version: {number}}}"
            return VersionEdit(text[:close] + added + text[close:], None, False)
        first_key = deployments.value[0][0]
        indent = first_key.start_mark.column
        step = _indent_step(deployments, _indent_step(root, 2))
        position = _after_last_line(text, deployments)
        block = _block(model, number, indent, step, newline)
        return VersionEdit(_insert(text, position, block, newline), None, False)
    _, spec = entry
    if not isinstance(spec, MappingNode):
        raise SpecError(f"deployments.{model} is not a mapping with a version")
    version = _entry(spec, "version")
    if version is None or not isinstance(version[1], ScalarNode) or _shared(root, version[1]):
        raise SpecError(
            f"the version of {model} cannot be edited in place (it comes from a YAML anchor "
            "or merge key)",
            hint=f"write `version:` directly under deployments.{model}, then promote again",
        )
    node = version[1]
    old_text = node.value
    previous: int | str | None = int(old_text) if old_text.isdigit() else old_text
    if node.style is None and old_text == str(number):
        return VersionEdit(text, number, True)
    start, end = node.start_mark.index, node.end_mark.index
    return VersionEdit(text[:start] + str(number) + text[end:], previous, False)


def _entry(mapping: Any, key: str) -> tuple[Any, Any] | None:
    from yaml.nodes import ScalarNode

    for key_node, value_node in mapping.value:
        if isinstance(key_node, ScalarNode) and key_node.value == key:
            return key_node, value_node
    return None


def _shared(root: Any, target: Any) -> bool:
    """Whether `target` appears more than once in the tree (an anchor and its aliases)."""
    from yaml.nodes import MappingNode, SequenceNode

    count = 0
    stack = [root]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if node is target:
            count += 1
            if count > 1:
                return True
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            for k, v in node.value:
                stack += [k, v]
        elif isinstance(node, SequenceNode):
            stack += list(node.value)
    return False


def _indent_step(mapping: Any, default: int) -> int:
    """How far this file indents a block mapping inside another, judged from `mapping`."""
    from yaml.nodes import MappingNode

    for key_node, value_node in mapping.value:
        if isinstance(value_node, MappingNode) and not value_node.flow_style and value_node.value:
            step = value_node.value[0][0].start_mark.column - key_node.start_mark.column
            if step > 0:
                return int(step)
    return default


def _after_last_line(text: str, node: Any) -> int:
    """Where the line after a block collection's last value starts."""
    from yaml.nodes import MappingNode, SequenceNode

    last = node
    while isinstance(last, MappingNode | SequenceNode) and not last.flow_style and last.value:
        item = last.value[-1]
        last = item[1] if isinstance(last, MappingNode) else item
    end = last.end_mark.index
    if end > 0 and text[end - 1] == "\n":
        return int(end)
    return _line_end(text, end)


def _line_end(text: str, index: int) -> int:
    """The index just after the line break ending the line of `index` (len(text) at EOF)."""
    found = text.find("\n", index)
    return len(text) if found < 0 else found + 1


def _block(model: str, number: int, indent: int, step: int, newline: str) -> str:
    pad = " " * indent
    return f"{pad}{model}:{newline}{pad}{' ' * step}version: {number}{newline}"


def _insert(text: str, position: int, block: str, newline: str) -> str:
    head = text[:position]
    if head and not head.endswith("\n"):
        head += newline
    return head + block + text[position:]


def _append(text: str, header: str, indent: int, model: str, number: int, newline: str) -> str:
    body = header + _block(model, number, indent, indent, newline)
    return _insert(text, len(text), body, newline)
