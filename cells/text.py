"""Text in and out: free text from users (notes, reasons, filters) that the database and the commit messages can
hold, and durations as people read them.

PostgreSQL's text types cannot hold a NUL character: a value with one is refused here with a field-level
400, never a 500 from the database. Text that goes on one line (a commit message's subject, next to its
trailers) has every line break and control character folded into a single space.
"""
from __future__ import annotations

import re

from .errors import InvalidRequest

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")
NUL_MESSAGE = "must not contain NUL (\\x00) characters"


def clean(value: str, field: str) -> str:
    """`value` unchanged, or InvalidRequest naming `field` when it holds a NUL character."""
    if value and "\x00" in value:
        raise InvalidRequest(f"{field} contains a NUL character", {field: [NUL_MESSAGE]})
    return value


def one_line(value: str, limit: int | None = None) -> str:
    """Line breaks, tabs and other control characters become single spaces; trimmed (and cut to `limit`)."""
    text = " ".join(_CONTROL.sub(" ", value or "").split())
    return text if limit is None or len(text) <= limit else text[: limit - 1].rstrip() + "…"


def duration(seconds: float | None, days: bool = False) -> str:
    """60 -> '60 s', 900 -> '15 min', 86400 -> '24 h', 0.8 -> '0.8 s'; with `days`, 604800 -> '7 d'."""
    if seconds is None:
        return "—"
    if seconds < 10:
        return f"{seconds:.1f} s".replace(".0 s", " s")
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if days and seconds >= 172800:
        return f"{seconds / 86400:.0f} d"
    return f"{seconds / 3600:.0f} h"
