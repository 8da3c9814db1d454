"""Rucio naming rules for Publish: validation, defaults and suggestions (pure, no I/O).

The rules themselves are the gateway's (:mod:`af_lab.rucio.names`); this module adds
what only Publish needs (folder members' names, free-name suggestions).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import PurePosixPath

from ..rucio import names

# One grammar of Rucio names: publish creates names by Rucio's rules for the VO.
rules = names.rules
check_name = names.check_name
check_scope = names.check_scope
sanitize = names.sanitize
parse_did = names.parse_new_did  # ``scope:name`` or a bare name in a default scope


def flatten(rel: str) -> str:
    """A folder member's DID name: its path below the folder, separators as dots.

    Dots rather than slashes: several site policies refuse '/' in names.
    """
    return ".".join(PurePosixPath(rel).parts)


def suggest(name: str, taken: Callable[[Iterable[str]], set[str]], vo: str = "def") -> str | None:
    """A free variant of ``name`` (``hist_v2.root``, ``hist_v3.root``...); ``taken`` answers in bulk."""
    candidates = variants(name, vo)
    used = taken(candidates)
    return next((c for c in candidates if c not in used), None)


def variants(name: str, vo: str = "def") -> list[str]:
    """The next 20 versions of ``name`` (``hist_v2.root``, ...) that fit the VO's name length."""
    stem, dot, ext = name.rpartition(".") if "." in name.lstrip(".") else (name, "", "")
    if not stem:
        stem, dot, ext = name, "", ""
    m = re.match(r"^(.*)_v(\d+)$", stem)
    base, start = (m.group(1), int(m.group(2)) + 1) if m else (stem, 2)
    candidates = [f"{base}_v{n}{dot}{ext}" for n in range(start, start + 20)]
    return [c for c in candidates if len(c) <= rules(vo).name_max]
