"""Which project files a step's code consists of, for its cache key.

A Python step is its callable's module plus every module of the project that module
imports, transitively: editing a helper the step uses must rerun the step. Imports are read
with `ast` (all of them, also those inside functions or under `if`), and resolved against
the project root and its `src/` folder; what does not resolve there (the standard library,
installed packages) is not project code and does not count. A shell step is the files its
command line names that exist in the project, and for Python scripts among them, what they
import.
"""

from __future__ import annotations

import ast
import shlex
from pathlib import Path


class SourceScanner:
    """Resolves modules to project files and follows their imports; memoised per run."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.paths = [p for p in (root, root / "src") if p.is_dir()]
        self._module_files: dict[tuple[str, tuple[Path, ...]], Path | None] = {}
        self._imports: dict[Path, list[str]] = {}
        self._digests: dict[Path, str] = {}

    # -- public ----------------------------------------------------------------

    def module_closure(self, module: str) -> dict[str, str]:
        """`{relative path: BLAKE3}` of `module`, its parent packages and their imports."""
        return self._closure([module], ())

    def command_closure(self, cmd: str) -> dict[str, str]:
        """Project files named in a shell command line, and what named scripts import."""
        try:
            tokens = shlex.split(cmd, comments=True)
        except ValueError:
            tokens = cmd.split()
        files: dict[str, str] = {}
        modules: list[str] = []
        for i, token in enumerate(tokens):
            if i > 0 and tokens[i - 1] == "-m":
                modules.append(token)
                continue
            for part in (token, *token.split("=")[1:]):
                path = self._project_file(part)
                if path is None:
                    continue
                files[self._rel(path)] = self._digest(path)
                if path.suffix == ".py":
                    files.update(self._script_closure(path))
        if modules:
            files.update(self._closure(modules, ()))
        return files

    # -- internals -------------------------------------------------------------

    def _project_file(self, text: str) -> Path | None:
        if not text or text.startswith("-") or "{" in text or "\0" in text:
            return None
        try:
            path = (self.root / text).resolve()
            if not path.is_file():
                return None
            path.relative_to(self.root)
        except (OSError, ValueError):
            return None
        return path

    def _script_closure(self, script: Path) -> dict[str, str]:
        # A script runs with its own folder first on sys.path.
        return self._closure(self._imports_of(script, None), (script.parent,))

    def _closure(self, modules: list[str], extra: tuple[Path, ...]) -> dict[str, str]:
        out: dict[str, str] = {}
        queue = list(modules)
        seen: set[str] = set()
        while queue:
            name = queue.pop()
            if name in seen:
                continue
            seen.add(name)
            # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
            parts = name.split(".")
            for i in range(1, len(parts)):
                parent = ".".join(parts[:i])
                if parent not in seen:
                    queue.append(parent)
            path = self._module_file(name, extra)
            if path is None:
                continue
            out[self._rel(path)] = self._digest(path)
            queue.extend(self._imports_of(path, name))
        return out

    def _module_file(self, name: str, extra: tuple[Path, ...]) -> Path | None:
        key = (name, extra)
        if key in self._module_files:
            return self._module_files[key]
        rel = Path(*name.split("."))
        found = None
        for base in (*extra, *self.paths):
            for candidate in (base / rel.with_suffix(".py"), base / rel / "__init__.py"):
                if candidate.is_file():
                    found = candidate
                    break
            if found is not None:
                break
        self._module_files[key] = found
        return found

    def _imports_of(self, path: Path, module: str | None) -> list[str]:
        """Modules a file may import: for `from m import n`, both m and m.n."""
        cached = self._imports.get(path)
        if cached is not None:
            return cached
        names: list[str] = []
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except (SyntaxError, ValueError, OSError):
            # The step will fail to import and say why; the bytes still key it.
            self._imports[path] = names
            return names
        package = None
        if module is not None:
            package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = self._absolute(node.module, node.level, package)
                if base is None:
                    continue
                if base:
                    names.append(base)
                for alias in node.names:
                    if alias.name != "*":
                        names.append(f"{base}.{alias.name}" if base else alias.name)
        self._imports[path] = names
        return names

    @staticmethod
    def _absolute(module: str | None, level: int, package: str | None) -> str | None:
        if level == 0:
            return module or None
        if package is None:
            return None
        parts = package.split(".") if package else []
        if level - 1 > len(parts):
            return None
        base = parts[: len(parts) - (level - 1)]
        if module:
            base.append(module)
        return ".".join(base)

    def _digest(self, path: Path) -> str:
        digest = self._digests.get(path)
        if digest is None:
            from seaway.store.hashing import hash_file

            digest = hash_file(path)
            self._digests[path] = digest
        return digest

    def _rel(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()
