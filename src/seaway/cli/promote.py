"""Placeholder: filled in by the GitOps work."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    del app
