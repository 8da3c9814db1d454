"""The one grammar of Rucio names in af-lab: scopes, DIDs, search patterns, instances (pure).

Names af-lab *creates* (publish) follow Rucio's own schema for the VO, as rucio-clients
ships it (the generic policy when the schema cannot be loaded), so the server accepts
what passes here. Names af-lab *reads* (browse, mount) were made by some policy, maybe
a stricter or laxer one than ours: they are checked for safety only (no spaces, quotes,
control characters, empty or '..' segments), with the same character set everywhere,
and the server decides whether they exist. One unknown-instance answer everywhere:
400 naming the field ``instance`` (the value the client sent is wrong).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..errors import BadRequest, ServiceUnavailable

DID_FORM = "expected the form scope:name, e.g. user.jdoe:ntuple.root"
# Existing names: Rucio's generic characters plus those other policies allow ('+', '=', '@', ',').
_READ_SCOPE = re.compile(r"^[A-Za-z0-9_.\-]{1,30}$")
_READ_NAME = re.compile(r"^[A-Za-z0-9/][A-Za-z0-9._\-+/=@,]{0,499}$")
_PATTERN_NAME = re.compile(r"^[A-Za-z0-9_.\-/+*%=@,]{1,500}$")


@dataclass(frozen=True)
class NameRules:
    name_pattern: str
    name_max: int
    scope_pattern: str
    scope_max: int

    def to_json(self) -> dict:
        return {"pattern": self.name_pattern, "max_length": self.name_max,
                "scope_pattern": self.scope_pattern, "scope_max_length": self.scope_max}


@lru_cache(maxsize=8)
def rules(vo: str = "def") -> NameRules:
    """Rucio's rules for new names in ``vo``."""
    try:
        from rucio.common.schema import get_schema_value

        name, scope = get_schema_value("NAME", vo), get_schema_value("SCOPE", vo)
        return NameRules(name["pattern"], int(name["maxLength"]), scope["pattern"], int(scope["maxLength"]))
    except Exception:  # rucio-clients without the server schema: the generic policy's rules
        return NameRules(r"^[/A-Za-z0-9][/A-Za-z0-9\.\-_]*$", 250, r"^[a-zA-Z_\-.0-9]+$", 25)


# ------------------------------------------------------------------ names af-lab reads
def _bad_did(text: Any, field: str, why: str) -> BadRequest:
    return BadRequest(f"{text!r} is not a valid DID: {why}; {DID_FORM}.", field=field, did=text, expected="scope:name")


def parse_did(text: Any, field: str = "did") -> tuple[str, str]:
    """``scope:name`` of an existing DID -> (scope, name); 400 naming ``field`` otherwise."""
    if not isinstance(text, str) or ":" not in text:
        raise _bad_did(text, field, "it must be a string with a ':' between scope and name")
    scope, name = text.strip().split(":", 1)
    if not _READ_SCOPE.match(scope):
        raise _bad_did(text, field, f"{scope!r} is not a Rucio scope (letters, digits, '.', '_', '-'; at most 30)")
    if not _READ_NAME.match(name) or "//" in name or any(p in (".", "..") for p in name.split("/")):
        raise _bad_did(text, field, f"{name!r} is not a Rucio name (letters, digits and . _ - + / = @ , "
                                    "without spaces, quotes, control characters or '..' segments)")
    return scope, name


def parse_pattern(pattern: Any, field: str = "query") -> tuple[str, str]:
    """A search ``scope:name*`` (wildcards in the name only); ``scope:`` means every name."""
    scope, sep, name = (pattern if isinstance(pattern, str) else "").strip().partition(":")
    name = name or "*"
    if not sep or not _READ_SCOPE.match(scope) or not _PATTERN_NAME.match(name):
        raise BadRequest(f"{pattern!r} is not a valid search: expected scope:name with * wildcards in the name, "
                         "e.g. user.jdoe:*Mu*.", field=field, query=pattern, expected="scope:name*")
    return scope, name


def relpath(name: str) -> str:
    """A Rucio name as a relative path ('/store/x.root' -> 'store/x.root')."""
    parts = [p for p in name.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise BadRequest(f"file name {name!r} cannot be placed in a folder")
    return "/".join(parts)


# ------------------------------------------------------------------ names af-lab creates
def check_name(name: object, field: str = "name", vo: str = "def") -> str:
    r = rules(vo)
    if not isinstance(name, str) or not name:
        raise BadRequest(f"A DID name is required ({field}).", field=field)
    if len(name) > r.name_max:
        raise BadRequest(f"DID name {name!r} is {len(name)} characters long; Rucio allows at most {r.name_max}.",
                         field=field)
    if not re.match(r.name_pattern, name):
        chars = "letters, digits, '.', '-', '_'" + (" and '/'" if "/" in r.name_pattern else "")
        raise BadRequest(f"DID name {name!r} is not valid in Rucio: it must start with a letter or digit and "
                         f"contain only {chars}.", field=field, suggestion=sanitize(name, vo))
    return name


def check_scope(scope: object, field: str = "scope", vo: str = "def") -> str:
    r = rules(vo)
    if not isinstance(scope, str) or not scope or len(scope) > r.scope_max or not re.match(r.scope_pattern, scope):
        raise BadRequest(f"{scope!r} is not a valid Rucio scope name.", field=field)
    return scope


def parse_new_did(text: object, default_scope: str, field: str, vo: str = "def") -> tuple[str, str]:
    """``scope:name`` or a bare ``name`` (in ``default_scope``) for a DID to create."""
    if not isinstance(text, str) or not text.strip():
        raise BadRequest(f"{field} must be a DID name or scope:name.", field=field)
    text = text.strip()
    scope, _, name = text.rpartition(":") if ":" in text else (default_scope, "", text)
    return check_scope(scope, field, vo), check_name(name, field, vo)


def sanitize(name: str, vo: str = "def") -> str:
    """The closest valid new name: path separators become dots (or stay), other characters underscores."""
    r = rules(vo)
    out = name.replace("/", "/" if "/" in r.name_pattern else ".")
    out = re.sub(r"[^A-Za-z0-9._\-/]", "_", out)
    out = re.sub(r"^[^A-Za-z0-9]+", "", out) or "output"
    return out[: r.name_max]


# ------------------------------------------------------------------ instances
def instance(config: Any, name: Any, field: str = "instance") -> dict[str, Any]:
    """The configured instance called ``name`` (the default one for None/""); 400 naming ``field``."""
    if not config.rucio_instances:
        raise ServiceUnavailable("No Rucio instance is configured (c.AFLab.rucio_instances).", service="rucio")
    if name is not None and not isinstance(name, str):
        raise BadRequest(f"{field} must be the name of a Rucio instance.", field=field)
    try:
        return config.rucio_instance(name or None)
    except KeyError:
        known = ", ".join(i["name"] for i in config.rucio_instances)
        raise BadRequest(f"No Rucio instance named {name!r} is configured (configured: {known}).",
                         field=field, instance=name) from None
