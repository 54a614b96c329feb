"""A thin wrapper over the `git` executable, for reading desired state and writing promotions.

Every command runs non-interactively: `GIT_TERMINAL_PROMPT=0` (a remote asking for a
password fails instead of waiting), locale C (so messages can be matched), `GIT_EDITOR`
and `GIT_PAGER` disabled, and variables that would point git at another repository or
index (`GIT_DIR`, `GIT_INDEX_FILE`, … inherited from a hook) removed unless a caller sets
them on purpose.

Paths given to `Git` methods are relative to `root` (the project root), which may be a
folder inside the repository; `rev:path` lookups add the folder's prefix.

Failures are `GitError` (a `StoreError`) carrying git's stderr, or `UsageError` where the
caller named something that does not exist (a revision, a repository).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path

from seaway.errors import StoreError, UsageError

_DROPPED_ENV = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_PREFIX",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
)
_BASE_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "",
    "SSH_ASKPASS": "",
    "GCM_INTERACTIVE": "never",
    "LC_ALL": "C",
    "LANG": "C",
    "LANGUAGE": "C",
    "GIT_EDITOR": "true",
    "GIT_SEQUENCE_EDITOR": "true",
    "GIT_PAGER": "cat",
    "PAGER": "cat",
    # Reads (status) would otherwise refresh and rewrite the index, racing a user's git.
    "GIT_OPTIONAL_LOCKS": "0",
}
_SHA_RE = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_IN_PROGRESS = {
    "MERGE_HEAD": "a merge",
    "rebase-merge": "a rebase",
    "rebase-apply": "a rebase (or `git am`)",
    "CHERRY_PICK_HEAD": "a cherry-pick",
    "REVERT_HEAD": "a revert",
}


class GitError(StoreError):
    """A git command failed; `stderr` is what git said."""

    def __init__(self, message: str, *, stderr: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.stderr = stderr


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every git command runs with (see the module docstring)."""
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    env.update(_BASE_ENV)
    if extra:
        env.update(extra)
    return env


def is_sha(text: str) -> bool:
    return bool(_SHA_RE.match(text))


def check_rev(rev: str) -> str:
    """`rev` when it can be passed to git safely (no option, no line break)."""
    if not rev or rev.startswith("-") or any(c.isspace() for c in rev) or "\0" in rev:
        raise UsageError(
            f"{rev!r} is not a git revision",
            hint="name a branch, a tag or a commit sha (main, v1.2, 3f2a9c1)",
        )
    return rev


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith(("fatal:", "error:")):
            return ln.split(":", 1)[1].strip()
    return lines[-1] if lines else ""


class Git:
    """The git repository holding `root` (the project root)."""

    def __init__(self, root: Path, *, prefix: str | None = None) -> None:
        self.root = Path(root)
        if prefix is not None:
            # A cache of another repository (bare, no working tree) reads the same layout.
            self.__dict__["prefix"] = prefix

    def __repr__(self) -> str:
        return f"Git({str(self.root)!r})"

    # --- running -----------------------------------------------------------------------

    def run(
        self,
        *args: str,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        what: str | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run `git ARGS` in `root`; GitError (with git's stderr) when it fails and `check`."""
        try:
            proc = subprocess.run(
                ["git", *args],
                cwd=self.root,
                input=input,
                env=git_env(env),
                capture_output=True,
                check=False,
            )
        except FileNotFoundError as exc:
            raise GitError(
                "git is not installed (no `git` executable on PATH)",
                hint="install git, which seaway uses to read and write environments",
            ) from exc
        if check and proc.returncode != 0:
            stderr = proc.stderr.decode("utf-8", "replace")
            said = _first_line(stderr) or f"exit status {proc.returncode}"
            raise GitError(
                f"{what or 'git ' + args[0]} failed in {self.root}: {said}",
                stderr=stderr,
                hint="run the git command by hand to see more (`git status` is a good start)",
            )
        return proc

    def text(
        self,
        *args: str,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        what: str | None = None,
    ) -> str:
        """Stdout of `git ARGS`, stripped; GitError when it fails."""
        proc = self.run(*args, input=input, env=env, what=what)
        return proc.stdout.decode("utf-8", "replace").strip()

    # --- layout --------------------------------------------------------------------------

    @cached_property
    def prefix(self) -> str:
        """The project root's folder inside the repository, '' or ending in '/'."""
        return self.text("rev-parse", "--show-prefix")

    def full_path(self, path: str) -> str:
        """`path` (relative to root) relative to the repository's top folder."""
        parts = [p for p in Path(path).as_posix().split("/") if p not in ("", ".")]
        return self.prefix + "/".join(parts)

    # --- reading -------------------------------------------------------------------------

    def head(self) -> str:
        """The full sha of HEAD; UsageError when the repository has no commits yet."""
        proc = self.run("rev-parse", "--verify", "-q", "HEAD^{commit}", check=False)
        if proc.returncode != 0:
            ensure_repo(self.root)
            raise UsageError(
                f"the git repository at {self.root} has no commits yet",
                hint="commit the environment files first: "
                "git add environments && git commit -m 'environments'",
            )
        return proc.stdout.decode().strip()

    def rev_parse(self, rev: str) -> str:
        """The full sha of the commit `rev` names (a branch, tag, sha or expression)."""
        check_rev(rev)
        proc = self.run(
            "rev-parse", "--verify", "-q", "--end-of-options", f"{rev}^{{commit}}", check=False
        )
        if proc.returncode != 0:
            ensure_repo(self.root)
            raise UsageError(
                f"unknown git revision {rev!r} in {self.root}",
                hint="name a branch, a tag or a commit of this repository (git log --oneline)",
            )
        return proc.stdout.decode().strip()

    def show(self, rev: str, path: str) -> str | None:
        """The text of `path` at `rev`; None when the file does not exist there."""
        check_rev(rev)
        found = self.cat_files([f"{rev}:{self.full_path(path)}"])
        data = found[0]
        return None if data is None else data.decode("utf-8", "replace")

    def show_bytes(self, rev: str, path: str) -> bytes | None:
        check_rev(rev)
        return self.cat_files([f"{rev}:{self.full_path(path)}"])[0]

    def cat_files(self, names: Sequence[str]) -> list[bytes | None]:
        """The content of each object named (`REV:PATH` or an oid) in one process; None
        where it does not exist or is not a file."""
        if not names:
            return []
        for name in names:
            if "\n" in name:
                raise UsageError(f"{name!r} is not an object name", hint="remove the line break")
        request = "".join(f"{n}\n" for n in names).encode()
        out = self.run("cat-file", "--batch", input=request, what="git cat-file").stdout
        results: list[bytes | None] = []
        pos = 0
        for _ in names:
            end = out.index(b"\n", pos)
            header = out[pos:end].decode("utf-8", "replace").split(" ")
            pos = end + 1
            if len(header) != 3 or header[-1] == "missing":
                results.append(None)
                continue
            size = int(header[2])
            body = out[pos : pos + size]
            pos += size + 1
            results.append(body if header[1] == "blob" else None)
        return results

    def object_ids(self, names: Sequence[str]) -> list[tuple[str, str] | None]:
        """(oid, type) of each object named, in one process; None where it does not exist."""
        if not names:
            return []
        request = "".join(f"{n}\n" for n in names).encode()
        out = self.run("cat-file", "--batch-check", input=request, what="git cat-file").stdout
        results: list[tuple[str, str] | None] = []
        for row in out.decode("utf-8", "replace").splitlines():
            parts = row.split(" ")
            if len(parts) == 3 and parts[-1] != "missing" and is_sha(parts[0]):
                results.append((parts[0], parts[1]))
            else:
                results.append(None)
        return results

    def tree_entries(self, tree: str) -> list[tuple[str, str, str, str]]:
        """(mode, type, oid, name) of each entry of a tree object (or `REV:PATH`)."""
        # --full-tree: in a sub-folder, ls-tree would otherwise list only that folder's part.
        out = self.run(
            "ls-tree", "-z", "--full-tree", "--end-of-options", tree, what="git ls-tree"
        ).stdout
        entries = []
        for item in out.decode("utf-8", "replace").split("\0"):
            if not item:
                continue
            meta, name = item.split("\t", 1)
            mode, kind, oid = meta.split(" ")
            entries.append((mode, kind, oid, name))
        return entries

    def ls(self, rev: str, folder: str) -> list[str]:
        """The names of the files in `folder` at `rev` (not recursive); [] without it."""
        sha = self.rev_parse(rev)
        found = self.object_ids([f"{sha}:{self.full_path(folder)}"])[0]
        if found is None or found[1] != "tree":
            return []
        return sorted(name for _, kind, _, name in self.tree_entries(found[0]) if kind == "blob")

    def is_dirty(self, path: str) -> bool:
        """Whether `path` has uncommitted changes, staged or not (untracked counts)."""
        out = self.run(
            "status",
            "--porcelain",
            "-z",
            "--untracked-files=all",
            "--ignore-submodules",
            "--",
            path,
            what="git status",
        ).stdout
        return bool(out.strip(b"\0"))

    def current_branch(self) -> str | None:
        """The checked-out branch; None when HEAD is detached."""
        proc = self.run("symbolic-ref", "-q", "--short", "HEAD", check=False)
        name = proc.stdout.decode().strip()
        return name if proc.returncode == 0 and name else None

    def log_paths(self, path: str, max_count: int) -> list[tuple[str, str]]:
        """(sha, subject) of the newest `max_count` commits touching `path`, newest first."""
        if self._unborn():
            return []
        out = self.text(
            "log", f"--max-count={max_count}", "--format=%H%x00%s", "--", path, what="git log"
        )
        rows = []
        for row in out.splitlines():
            sha, _, subject = row.partition("\0")
            rows.append((sha, subject))
        return rows

    def _unborn(self) -> bool:
        return self.run("rev-parse", "--verify", "-q", "HEAD", check=False).returncode != 0

    def ref_exists(self, ref: str) -> bool:
        return self.run("show-ref", "--verify", "-q", ref, check=False).returncode == 0

    def operation_in_progress(self) -> str | None:
        """What the repository is in the middle of (a merge, a rebase…), or None."""
        names = list(_IN_PROGRESS)
        args = [a for n in names for a in ("--git-path", n)]
        paths = self.text("rev-parse", *args).splitlines()
        for name, raw in zip(names, paths, strict=True):
            if (self.root / raw).exists():
                return _IN_PROGRESS[name]
        return None

    def config(self, key: str) -> str | None:
        proc = self.run("config", "--get", key, check=False)
        value = proc.stdout.decode("utf-8", "replace").strip()
        return value if proc.returncode == 0 and value else None

    def identity_args(self) -> list[str]:
        """`-c user.name=… -c user.email=…` for what git config and the environment do not
        say, so a commit never fails for want of an identity (a CI runner, a container)."""
        args: list[str] = []
        fallbacks = (
            ("user.name", "seaway", ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME")),
            ("user.email", "seaway@localhost", ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL")),
        )
        for key, default, env_names in fallbacks:
            if self.config(key) is None and not all(os.environ.get(n) for n in env_names):
                args += ["-c", f"{key}={default}"]
        return args

    # --- writing -------------------------------------------------------------------------

    def commit_only(self, path: str, message: str) -> str:
        """Commit the working-tree content of `path` alone on the current branch; other
        staged changes stay staged. Returns the new commit's sha."""
        self.run(
            *self.identity_args(),
            "commit",
            "--quiet",
            "--only",
            "--cleanup=verbatim",
            "--file=-",
            "--",
            path,
            input=message.encode(),
            what="git commit",
        )
        return self.head()

    def commit_file_on_branch(
        self, branch: str, base: str, path: str, content: bytes, message: str
    ) -> str:
        """A commit on a new branch `branch`, child of `base`, where `path` holds `content`;
        built with plumbing so the working tree, the index and HEAD stay as they are."""
        import tempfile

        full = self.full_path(path)
        mode = "100644"
        folder = f"{base}:{self.full_path(parent_of(path))}"
        for entry_mode, kind, _, name in self.tree_entries(folder):
            if kind == "blob" and name == Path(path).name:
                mode = entry_mode
        blob = self.text(
            "hash-object", "-w", "--stdin", "--no-filters", input=content, what="git hash-object"
        )
        with tempfile.TemporaryDirectory(prefix="seaway-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            self.run("read-tree", base, env=env, what="git read-tree")
            self.run(
                "update-index",
                "--add",
                "--cacheinfo",
                f"{mode},{blob},{full}",
                env=env,
                what="git update-index",
            )
            tree = self.text("write-tree", env=env, what="git write-tree")
        commit = self.text(
            *self.identity_args(),
            "commit-tree",
            tree,
            "-p",
            base,
            "-F",
            "-",
            input=message.encode(),
            what="git commit-tree",
        )
        # The zero old value makes update-ref refuse a branch that appeared meanwhile.
        self.run(
            "update-ref",
            "-m",
            f"seaway: {message.splitlines()[0]}",
            f"refs/heads/{branch}",
            commit,
            "0" * len(commit),
            what="git update-ref",
        )
        return commit


def parent_of(path: str) -> str:
    parent = Path(path).parent.as_posix()
    return "" if parent == "." else parent


def ensure_repo(root: Path) -> Git:
    """The git repository holding `root`; UsageError when there is none."""
    git = Git(root)
    proc = git.run("rev-parse", "--is-inside-work-tree", check=False)
    if proc.returncode != 0 or proc.stdout.decode().strip() != "true":
        said = _first_line(proc.stderr.decode("utf-8", "replace"))
        raise UsageError(
            f"{root} is not a git repository" + (f" ({said})" if said else ""),
            hint="environments live in git: run `git init` and commit environments/",
        )
    return git


def short(sha: str) -> str:
    return sha[:7]
