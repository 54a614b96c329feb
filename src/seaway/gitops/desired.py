"""Desired state: the environment files as committed at a git revision.

    state = read_desired(project)                       # HEAD of the current branch
    state = read_desired(project, revision="v1.4", environment="prod")
    state = read_desired(project, source="https://git.example.com/ml/churn.git")

The working tree is never read: an edit nobody committed is not desired state. With a
`source` (a remote URL, or the path of another repository) the revision is looked up on
the remote (`git ls-remote`, default its HEAD) and its commit fetched (shallow) into a
cache under `.seaway/gitops/remotes/`, then read there; the files sit at the same place
in that repository as in the project's own.

Reading is cheap enough for a controller's every poll and for thousands of deployments:
the commit and the environments folder are looked up in one git process, the folder
listed in one more, and only the files whose content (blob id) was not read before are
fetched, in one `git cat-file --batch`, and validated. Parsed specs are shared between
calls (keyed by blob id): treat them as read-only.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from seaway.errors import NotFound, UsageError
from seaway.gitops.git import Git, GitError, check_rev, ensure_repo, is_sha, short

if TYPE_CHECKING:
    from seaway.project import Project
    from seaway.spec.environment import EnvironmentSpec

ENV_DIR = "environments"
LOCAL = "local"
REMOTES_DIR = ("gitops", "remotes")
_SPEC_CACHE_SIZE = 1024
_TREE_CACHE_SIZE = 64
_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:")


@dataclass(frozen=True)
class DesiredState:
    """The environments at one commit."""

    revision: str
    """Full sha of the commit read."""
    environments: dict[str, EnvironmentSpec]
    """Environment name -> spec, for every environments/*.yaml at the revision (or the one
    asked for)."""
    source: str
    """"local", or the remote URL (or path) read from."""
    blobs: dict[str, str] = field(default_factory=dict, compare=False)
    """Environment name -> git blob id of its file: equal ids mean equal files, so a caller
    can skip what did not change between two revisions."""


class _Lru(OrderedDict[str, object]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.lock = threading.Lock()

    def get_item(self, key: str) -> object | None:
        with self.lock:
            value = self.get(key)
            if value is not None:
                self.move_to_end(key)
            return value

    def put(self, key: str, value: object) -> None:
        with self.lock:
            self[key] = value
            self.move_to_end(key)
            while len(self) > self.size:
                self.popitem(last=False)


_SPECS = _Lru(_SPEC_CACHE_SIZE)
_PREFIXES: dict[Path, str] = {}
_TREES = _Lru(_TREE_CACHE_SIZE)


# --- public API ----------------------------------------------------------------------------


def resolve_revision(
    project: Project, revision: str | None = None, source: str | None = None
) -> str:
    """The full sha `revision` names (default: HEAD, or the remote's HEAD for a `source`).

    Locally one `git rev-parse`; for a remote one `git ls-remote` (nothing is fetched)."""
    if source is None:
        git = local_git(project)
        return git.head() if revision is None else git.rev_parse(revision)
    return _remote_sha(project, source, revision)


def read_desired(
    project: Project,
    *,
    revision: str | None = None,
    environment: str | None = None,
    source: str | None = None,
) -> DesiredState:
    """The environments committed at `revision` (see the module docstring).

    NotFound for an unknown `environment` (naming the known ones); a SpecError naming
    `environments/NAME.yaml@SHA:LINE` for a file that does not validate.
    """
    if source is None:
        git = local_git(project)
        sha, folder = _locate(git, revision or "HEAD", revision is None)
    else:
        git = _remote_cache(project, source)
        wanted = _remote_sha(project, source, revision)
        _fetch(git, source, wanted, revision)
        sha, folder = _locate(git, wanted, False, where=f"remote {source}")
    files = _list(git, folder)
    if environment is not None:
        if environment not in files:
            raise NotFound(
                f"no environment {environment!r} at {short(sha)}"
                + _did_you_mean(environment, files),
                hint=(
                    f"environments at {short(sha)}: {', '.join(sorted(files))}"
                    if files
                    else f"no environments/*.yaml is committed at {short(sha)}; create one "
                    "and commit it"
                ),
            )
        files = {environment: files[environment]}
    specs = _parse(git, sha, files)
    return DesiredState(
        revision=sha,
        environments=specs,
        source=LOCAL if source is None else source,
        blobs=dict(files),
    )


def local_git(project: Project) -> Git:
    """The project's repository; its folder inside the repository is looked up once per
    process (the controller asks every poll)."""
    root = project.root
    prefix = _PREFIXES.get(root)
    if prefix is None:
        proc = Git(root).run("rev-parse", "--show-prefix", check=False)
        if proc.returncode != 0:
            ensure_repo(root)
        prefix = proc.stdout.decode().strip()
        _PREFIXES[root] = prefix
    return Git(root, prefix=prefix)


def environment_label(name: str, sha: str) -> str:
    """How an environment file at a revision is named in messages."""
    return f"{ENV_DIR}/{name}.yaml@{short(sha)}"


# --- reading -------------------------------------------------------------------------------


def _locate(git: Git, rev: str, default: bool, where: str | None = None) -> tuple[str, str | None]:
    """(commit sha, tree id of the environments folder or None) in one git process."""
    check_rev(rev)
    commit, folder = git.object_ids(
        [f"{rev}^{{commit}}", f"{rev}^{{commit}}:{git.full_path(ENV_DIR)}"]
    )
    if commit is None:
        if default and where is None:
            git.head()  # explains an empty repository, or a folder that is not one
        if where is None:
            git.rev_parse(rev)  # raises the usual error for an unknown revision
        raise UsageError(
            f"unknown git revision {rev!r} in {where or git.root}",
            hint="name a branch, a tag or a commit sha",
        )
    tree = folder[0] if folder is not None and folder[1] == "tree" else None
    return commit[0], tree


def _list(git: Git, tree: str | None) -> dict[str, str]:
    """Environment name -> blob id, for the *.yaml files of the folder's tree."""
    if tree is None:
        return {}
    cached = _TREES.get_item(tree)
    if isinstance(cached, dict):
        return dict(cached)
    files = {
        name[: -len(".yaml")]: oid
        for _, kind, oid, name in git.tree_entries(tree)
        if kind == "blob" and name.endswith(".yaml") and len(name) > len(".yaml")
    }
    _TREES.put(tree, files)
    return dict(files)


def _parse(git: Git, sha: str, files: dict[str, str]) -> dict[str, EnvironmentSpec]:
    from seaway.spec.loader import load_environment_text
    from seaway.spec.problems import InvalidSpec

    specs: dict[str, EnvironmentSpec] = {}
    missing = []
    for name, oid in sorted(files.items()):
        cached = _SPECS.get_item(f"{oid}:{name}")
        if cached is not None:
            specs[name] = cached  # type: ignore[assignment]
        else:
            missing.append(name)
    texts = git.cat_files([files[name] for name in missing])
    failures: list[InvalidSpec] = []
    for name, data in zip(missing, texts, strict=True):
        label = environment_label(name, sha)
        try:
            text = (data or b"").decode("utf-8")
        except UnicodeDecodeError as exc:
            from seaway.spec.problems import Problem

            problem = Problem(label, None, None, "", f"not UTF-8 text (byte {exc.start})")
            failures.append(
                InvalidSpec(f"{label} is not valid", [problem], hint="save the file as UTF-8")
            )
            continue
        try:
            spec = load_environment_text(text, label, name)
        except InvalidSpec as exc:
            failures.append(exc)
            continue
        _SPECS.put(f"{files[name]}:{name}", spec)
        specs[name] = spec
    if len(failures) == 1:
        raise failures[0]
    if failures:
        details = [p for f in failures for p in f.details]
        raise InvalidSpec(
            f"{len(failures)} environment files are not valid at {short(sha)} "
            f"({len(details)} problems)",
            details,
            hint=next((f.hint for f in failures if f.hint), None),
        )
    return {name: specs[name] for name in sorted(specs)}


def _did_you_mean(name: str, known: dict[str, str]) -> str:
    from seaway.spec.crossref import did_you_mean

    return did_you_mean(name, sorted(known))


# --- remote sources ------------------------------------------------------------------------


def _remote_url(project: Project, source: str) -> str:
    """The URL git is given: a local path is made absolute (relative to the project)."""
    if "://" in source or _SCP_LIKE.match(source):
        return source
    path = Path(source).expanduser()
    return str(path if path.is_absolute() else (project.root / path).resolve())


def _local_prefix(project: Project) -> str:
    try:
        return local_git(project).prefix
    except UsageError:
        return ""


def _remote_cache(project: Project, source: str) -> Git:
    """The bare repository caching `source`'s commits, created on first use."""
    url = _remote_url(project, source)
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    folder = project.state_dir.joinpath(*REMOTES_DIR, key)
    if not (folder / "HEAD").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        Git(folder).run("init", "--quiet", "--bare", what="git init")
        (folder / "seaway-source").write_text(url + "\n")
    return Git(folder, prefix=_local_prefix(project))


def _remote_sha(project: Project, source: str, revision: str | None) -> str:
    rev = check_rev(revision or "HEAD")
    if is_sha(rev):
        return rev
    url = _remote_url(project, source)
    proc = Git(project.root if project.root.is_dir() else Path.cwd()).run(
        "ls-remote", "--end-of-options", url, check=False
    )
    if proc.returncode != 0:
        said = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(
            f"cannot read the remote {source}: {said[-1] if said else 'git ls-remote failed'}",
            stderr=proc.stderr.decode("utf-8", "replace"),
            hint=f"check the URL and your access to it (git ls-remote {url})",
        )
    refs: dict[str, str] = {}
    for row in proc.stdout.decode("utf-8", "replace").splitlines():
        sha, _, ref = row.partition("\t")
        refs[ref] = sha
    for candidate in (
        rev,
        f"refs/heads/{rev}",
        f"refs/tags/{rev}^{{}}",
        f"refs/tags/{rev}",
        f"refs/{rev}",
    ):
        if candidate in refs:
            return refs[candidate]
    # A short sha: only a commit already fetched can be found by one.
    if re.fullmatch(r"[0-9a-f]{4,39}", rev):
        cache = _remote_cache(project, source)
        found = cache.object_ids([f"{rev}^{{commit}}"])[0]
        if found is not None:
            return found[0]
    branches = sorted(r.removeprefix("refs/heads/") for r in refs if r.startswith("refs/heads/"))
    raise NotFound(
        f"no branch or tag {rev!r} on the remote {source}",
        hint=f"its branches: {', '.join(branches) or 'none'}; or give a full commit sha",
    )


def _fetch(git: Git, source: str, sha: str, revision: str | None) -> None:
    """Make sure the commit `sha` of `source` is in the cache (a shallow fetch)."""
    if git.object_ids([f"{sha}^{{commit}}"])[0] is not None:
        return
    url = str(Path(git.root / "seaway-source").read_text().strip())
    proc = git.run("fetch", "--quiet", "--no-tags", "--depth=1", url, sha, check=False)
    if proc.returncode != 0 and revision is not None and not is_sha(revision):
        # Some servers refuse to send a commit by sha; asking by name gets the newest one.
        proc = git.run("fetch", "--quiet", "--no-tags", "--depth=1", url, revision, check=False)
    if git.object_ids([f"{sha}^{{commit}}"])[0] is None:
        said = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(
            f"cannot fetch {short(sha)} from {source}: "
            f"{said[-1] if said else 'the commit is not on the remote'}",
            stderr=proc.stderr.decode("utf-8", "replace"),
            hint=f"check that the commit exists there (git ls-remote {url})",
        )
