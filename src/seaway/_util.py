"""Small helpers shared by several parts of the package (no heavy imports here)."""

from __future__ import annotations

import datetime as _dt
import os
import sys
from typing import overload


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


@overload
def as_utc(ts: _dt.datetime) -> _dt.datetime: ...
@overload
def as_utc(ts: None) -> None: ...
def as_utc(ts: _dt.datetime | None) -> _dt.datetime | None:
    """A time read back from the metadata database, with its zone: SQLite hands back naive
    datetimes, and everything seaway writes is UTC."""
    if ts is None or ts.tzinfo is not None:
        return ts
    return ts.replace(tzinfo=_dt.UTC)


def isoformat(ts: _dt.datetime | None) -> str | None:
    if ts is None:
        return None
    return as_utc(ts).astimezone(_dt.UTC).isoformat().replace("+00:00", "Z")


def human_size(n: int | float) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def actor() -> str:
    """Who is acting: SEAWAY_ACTOR, else the login name."""
    name = os.environ.get("SEAWAY_ACTOR")
    if name:
        return name
    try:
        import getpass

        return getpass.getuser()
    except Exception:
        return "unknown"


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
