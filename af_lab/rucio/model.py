"""Pure helpers of the Rucio service: DID parsing, Rucio errors, row shapes, cursors."""

from __future__ import annotations

import base64
import json
from typing import Any

from ..errors import AFLabError, BadRequest
from . import names
from .errors import from_response

DID_TYPES = ("all", "collection", "container", "dataset", "file")
# The one grammar of Rucio names lives in .names.
parse_did = names.parse_did
parse_pattern = names.parse_pattern


def rucio_error(resp, instance: str, what: str, **extra: Any) -> AFLabError:
    """Turn a non-2xx Rucio answer into a typed error (by cause). ``what`` names the object asked for."""
    return from_response(resp, instance, what, **extra)


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
