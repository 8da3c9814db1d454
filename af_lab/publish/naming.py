"""Rucio naming rules for Publish: validation, defaults and suggestions (pure, no I/O).

The rules come from rucio-clients' schema for the VO (the same module the server
validates with under the generic policy), so a name accepted here is one the
server accepts; a site policy with stricter rules still answers with its own
message, which the catalogue layer passes on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import PurePosixPath

from ..errors import BadRequest


@dataclass(frozen=True)
class NameRules:
    name_pattern: str
    name_max: int
    scope_pattern: str
    scope_max: int

    def to_json(self) -> dict:
        return {
            "pattern": self.name_pattern,
            "max_length": self.name_max,
            "scope_pattern": self.scope_pattern,
            "scope_max_length": self.scope_max,
        }


@lru_cache(maxsize=8)
def rules(vo: str = "def") -> NameRules:
    try:
        from rucio.common.schema import get_schema_value

        name, scope = get_schema_value("NAME", vo), get_schema_value("SCOPE", vo)
        return NameRules(name["pattern"], int(name["maxLength"]), scope["pattern"], int(scope["maxLength"]))
    except Exception:  # rucio-clients without a usable schema: the generic policy's rules
        return NameRules(r"^[/A-Za-z0-9][/A-Za-z0-9\.\-_]*$", 250, r"^[a-zA-Z_\-.0-9]+$", 25)


def check_name(name: object, field: str = "name", vo: str = "def") -> str:
    r = rules(vo)
    if not isinstance(name, str) or not name:
        raise BadRequest(f"A DID name is required ({field}).", field=field)
    if len(name) > r.name_max:
        raise BadRequest(
            f"DID name {name!r} is {len(name)} characters long; Rucio allows at most {r.name_max}.", field=field
        )
    if not re.match(r.name_pattern, name):
        chars = "letters, digits, '.', '-', '_'" + (" and '/'" if "/" in r.name_pattern else "")
        raise BadRequest(
            f"DID name {name!r} is not valid in Rucio: it must start with a letter or digit and contain only {chars}.",
            field=field,
            suggestion=sanitize(name, vo),
        )
    return name


def check_scope(scope: object, field: str = "scope", vo: str = "def") -> str:
    r = rules(vo)
    if not isinstance(scope, str) or not scope or len(scope) > r.scope_max or not re.match(r.scope_pattern, scope):
        raise BadRequest(f"{scope!r} is not a valid Rucio scope name.", field=field)
    return scope


def parse_did(text: object, default_scope: str, field: str, vo: str = "def") -> tuple[str, str]:
    """``scope:name`` or a bare ``name`` (in ``default_scope``), validated."""
    if not isinstance(text, str) or not text.strip():
        raise BadRequest(f"{field} must be a DID name or scope:name.", field=field)
    text = text.strip()
    scope, _, name = text.rpartition(":") if ":" in text else (default_scope, "", text)
    return check_scope(scope, field, vo), check_name(name, field, vo)


def sanitize(name: str, vo: str = "def") -> str:
    """The closest valid name: path separators become dots, other characters underscores."""
    r = rules(vo)
    allowed_slash = "/" in r.name_pattern
    out = name.replace("/", "/" if allowed_slash else ".")
    out = re.sub(r"[^A-Za-z0-9._\-/]", "_", out)
    out = re.sub(r"^[^A-Za-z0-9]+", "", out) or "output"
    return out[: r.name_max]


def flatten(rel: str) -> str:
    """A folder member's DID name: its path below the folder, separators as dots.

    Dots rather than slashes: several site policies refuse '/' in names.
    """
    return ".".join(PurePosixPath(rel).parts)


def suggest(name: str, taken: Callable[[Iterable[str]], set[str]], vo: str = "def") -> str | None:
    """A free variant of ``name`` (``hist_v2.root``, ``hist_v3.root``...); ``taken`` answers in bulk."""
    stem, dot, ext = name.rpartition(".") if "." in name.lstrip(".") else (name, "", "")
    if not stem:
        stem, dot, ext = name, "", ""
    m = re.match(r"^(.*)_v(\d+)$", stem)
    base, start = (m.group(1), int(m.group(2)) + 1) if m else (stem, 2)
    candidates = [f"{base}_v{n}{dot}{ext}" for n in range(start, start + 20)]
    candidates = [c for c in candidates if len(c) <= rules(vo).name_max]
    used = taken(candidates)
    return next((c for c in candidates if c not in used), None)
