"""Pure helpers of the Rucio service: DID parsing, Rucio errors, row shapes, cursors."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from ..errors import AFLabError, BadRequest, Forbidden, NotFound, ServiceUnavailable

SCOPE_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,30}$")
NAME_RE = re.compile(r"^[A-Za-z0-9_.\-/+]{1,255}$")
PATTERN_RE = re.compile(r"^[A-Za-z0-9_.\-/+*%]{1,255}$")
DID_TYPES = ("all", "collection", "container", "dataset", "file")
DID_FORM = "expected the form scope:name, e.g. cms_opendata:ZZTo4mu"


def parse_did(did: str) -> tuple[str, str]:
    """``scope:name`` -> (scope, name); 400 saying the expected form otherwise."""
    scope, sep, name = (did or "").partition(":")
    if not sep or not SCOPE_RE.match(scope) or not NAME_RE.match(name):
        raise BadRequest(f"'{did}' is not a valid DID: {DID_FORM}.", did=did, expected="scope:name")
    return scope, name


def parse_pattern(pattern: str) -> tuple[str, str]:
    """A search pattern ``scope:name*`` (wildcards ``*`` in the name only); ``scope:`` means all names."""
    scope, sep, name = (pattern or "").strip().partition(":")
    name = name or "*"
    if not sep or not SCOPE_RE.match(scope) or not PATTERN_RE.match(name):
        raise BadRequest(
            f"'{pattern}' is not a valid search: expected scope:name with * wildcards in the name, "
            "e.g. cms_opendata:*Mu*.", query=pattern, expected="scope:name*",
        )
    return scope, name


def rucio_error(resp, instance: str, what: str, **extra: Any) -> AFLabError:
    """Turn a non-2xx Rucio answer into a typed error. ``what`` names the object asked for."""
    cls = resp.headers.get("ExceptionClass", "")
    try:
        msg = resp.headers.get("ExceptionMessage") or (resp.json() or {}).get("ExceptionMessage", "")
    except ValueError:
        msg = ""
    details = {"instance": instance, "rucio_error": cls or None, **extra}
    if cls in ("DataIdentifierNotFound", "ScopeNotFound", "RSENotFound") or resp.status_code == 404:
        return NotFound(f"{what} does not exist on Rucio instance '{instance}'.", **details)
    if cls == "AccessDenied" or resp.status_code == 403:
        return Forbidden(f"Rucio instance '{instance}' denied access to {what}: {msg}", **details)
    if cls in ("InvalidMetadata", "DIDFilterSyntaxError", "KeyNotFound", "InvalidObject", "InvalidType",
               "InvalidValueForKey", "UnsupportedOperation", "ValueError") or resp.status_code in (400, 406, 409):
        return BadRequest(f"Rucio instance '{instance}' rejected the request for {what}: {msg or cls}", **details)
    return ServiceUnavailable(
        f"Rucio instance '{instance}' failed to answer for {what} (HTTP {resp.status_code} {cls}).".replace(" )", ")"),
        service="rucio", **details,
    )


def json_lines(resp):
    """Yield one parsed object per line of a streamed ``application/x-json-stream`` answer."""
    for line in resp.iter_lines(chunk_size=65536):
        if line:
            yield json.loads(line)


def raw_lines(resp):
    """Yield each line of a streamed answer as text, unparsed (it is stored as it came)."""
    for line in resp.iter_lines(chunk_size=65536):
        if line:
            yield line.decode()


# ---------------------------------------------------------------- row shapes
def did_row(d: dict[str, Any]) -> dict[str, Any]:
    """One search hit / collection member: {scope, name, type, bytes, length, adler32?}."""
    kind = str(d.get("did_type") or d.get("type") or "").lower().replace("didtype.", "")
    row = {"scope": d["scope"], "name": d["name"], "did": f"{d['scope']}:{d['name']}", "type": kind,
           "bytes": d.get("bytes"), "length": d.get("length")}
    if kind == "file":
        row["length"] = 1
        row["adler32"] = d.get("adler32")
        if d.get("md5"):
            row["md5"] = d["md5"]
    return row


def file_row(d: dict[str, Any]) -> dict[str, Any]:
    return did_row({**d, "type": "file"})


def replica_row(d: dict[str, Any]) -> dict[str, Any]:
    """A file with its replicas: {scope, name, bytes, adler32, replicas: [{rse, state}]}."""
    states = d.get("states") or {}
    rses = set(states) | set(d.get("rses") or {})
    return {
        "scope": d["scope"], "name": d["name"], "did": f"{d['scope']}:{d['name']}",
        "bytes": d.get("bytes"), "adler32": d.get("adler32"),
        "replicas": [{"rse": rse, "state": str(states.get(rse, "AVAILABLE")).upper()} for rse in sorted(rses)],
    }


# How a stored item (JSON text) becomes a row of the REST answer.
SHAPES = {
    "did": lambda text: did_row(json.loads(text)),  # Rucio search hit or collection member, as Rucio sent it
    "file": lambda text: file_row(json.loads(text)),  # Rucio /files line, as Rucio sent it
    "row": json.loads,  # already af-lab's row (replicas: parsed while filling for the availability count)
}


# ---------------------------------------------------------------- cursors
def encode_cursor(listing_id: int, seq: int) -> str:
    raw = json.dumps([listing_id, seq], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        listing_id, seq = json.loads(raw)
        if isinstance(listing_id, int) and isinstance(seq, int) and seq >= 0:
            return listing_id, seq
    except (ValueError, TypeError):
        pass
    raise BadRequest("The cursor is not one this server handed out; start again from the first page.", cursor=cursor)
