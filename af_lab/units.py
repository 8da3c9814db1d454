"""Byte sizes for people, in the binary units the sidebar shows (KiB, MiB, …)."""

from __future__ import annotations

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
