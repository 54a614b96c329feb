"""The error hierarchy users see.

Every error carries a message that says what went wrong and where, and a hint that says
what to do. The CLI turns `exit_code` into the process status and the HTTP layer turns
`http_status` into the response code; nothing else translates errors.
"""

from __future__ import annotations


class SeawayError(Exception):
    """Root of all errors seaway reports to a user."""

    exit_code = 2
    http_status = 400

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        if not message:
            raise ValueError("a SeawayError needs a message")
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UsageError(SeawayError):
    """The command was called wrongly (bad argument, bad reference)."""


class ProjectNotFound(SeawayError):
    """No seaway.yaml between the working directory and the filesystem root."""


class SpecError(SeawayError):
    """seaway.yaml or an environment file is malformed; `problems` lists each one."""

    def __init__(self, message: str, *, problems: list[str] | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.problems = problems or []

    def __str__(self) -> str:
        lines = [self.message, *(f"  {p}" for p in self.problems)]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


class NotFound(SeawayError):
    """A named object (dataset, version, blob, model) does not exist."""

    http_status = 404


class InputError(SeawayError):
    """A path the user named is missing or unreadable."""


class StoreError(SeawayError):
    """The metadata database or the blob store cannot be reached or used."""

    http_status = 503


class IntegrityError(SeawayError):
    """Stored content does not match its address (a corrupt or missing blob)."""

    http_status = 500


class CheckFailed(SeawayError):
    """A check ran and did not pass (data check, gate, policy, verify)."""

    exit_code = 1
    http_status = 422
