"""Global CLI options, shared by the commands of one invocation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from seaway.project import Project


@dataclass
class CliState:
    directory: Path | None = None
    verbose: bool = False

    def project(self) -> Project:
        from seaway.project import Project

        return Project.find(self.directory)

    def cwd(self) -> Path:
        return (self.directory or Path.cwd()).resolve()


STATE = CliState()
