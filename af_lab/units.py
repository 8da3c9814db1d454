"""Numbers, sizes and times for people: the one formatter of the Python side.

Byte sizes in the binary units the sidebar shows (KiB, MiB, …), counts with thousands
separators and their plurals, and dates (local for tables, UTC where a message names a
moment the server and the user must agree on).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(n: Any) -> str:
    """``1536`` → ``1.5 KiB``; ``None``/``""`` → ``""``."""
    if n is None or n == "":
        return ""
    value = float(n)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return ""


def count(n: Any) -> str:
    """``50000`` → ``50,000``; ``None`` → ``""``."""
    return "" if n is None else f"{n:,}"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``plural(1, "file")`` → ``1 file``; ``plural(2, "file")`` → ``2 files``."""
    return f"{count(n)} {word if n == 1 else (many or word + 's')}"


def local_time(ts: Any) -> str:
    """Epoch seconds → ``2026-12-07 20:15`` in local time; falsy → ``""``."""
    return dt.datetime.fromtimestamp(float(ts)).strftime("%Y-%m-%d %H:%M") if ts else ""


def utc_time(ts: Any) -> str:
    """Epoch seconds → ``2026-12-07 20:15:00 UTC``; falsy → ``""``."""
    return dt.datetime.fromtimestamp(float(ts), dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else ""
