"""Catalogue calls for Publish that the gateway runs in its threads (see its typed methods).

Each takes a :class:`~af_lab.rucio.api.RucioAPI` first; the gateway supplies it, retries
once on a rejected token and turns every failure into a typed error. Everything is
bulk: lookups, registrations and metadata go ≤ ``CHUNK`` DIDs per REST call (SQLite
servers fail near 1,000 terms in one query, and the REST schema caps lists at 1,000),
instead of rucio upload's ~8 calls per file.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from rucio.common import exception as rx

from ..errors import Conflict

CHUNK = 500


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def did(scope: str, name: str) -> dict[str, str]:
    return {"scope": scope, "name": name}


def jsonable(value: Any) -> Any:
    if isinstance(value, _dt.datetime):
        return value.replace(tzinfo=_dt.UTC).isoformat() if value.tzinfo is None else value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


# ------------------------------------------------------------------ the account: scopes, RSEs, quota
def owned_scopes(api: Any, account: str) -> list[str]:
    try:
        return sorted(api.list_scopes_for_account(account))
    except rx.ScopeNotFound:
        return []


def is_admin(api: Any, account: str) -> bool:
    for attrs in api.list_account_attributes(account):
        for attr in attrs if isinstance(attrs, list) else [attrs]:
            if attr.get("key") == "admin" and str(attr.get("value")).lower() == "true":
                return True
    return False


def local_usage(api: Any, account: str) -> dict[str, int]:
    return {row["rse"]: int(row.get("bytes") or 0) for row in api.get_local_account_usage(account)}


def usage(api: Any, account: str, rse: str) -> tuple[int, float | None]:
    """(bytes used, limit or None) of the account on one RSE."""
    for row in api.get_local_account_usage(account, rse):
        return int(row.get("bytes") or 0), row.get("bytes_limit")
    limit = api.get_local_account_limit(account, rse).get(rse)
    return 0, limit


def global_quota_left(api: Any, account: str, rse: str) -> list[tuple[str, float]]:
    """(expression, bytes left) of each global limit whose expression covers ``rse``."""
    out: list[tuple[str, float]] = []
    try:
        limits = api.get_global_account_limits(account) or {}
    except rx.RucioException:
        return out
    if not limits:
        return out
    used_by = {u["rse_expression"]: u for u in api.get_global_account_usage(account)}
    for expression, limit in limits.items():
        covered = {r["rse"] for r in api.list_rses(expression)}
        if rse in covered:
            used = int((used_by.get(expression) or {}).get("bytes") or 0)
            out.append((expression, float(limit.get("limit") if isinstance(limit, dict) else limit) - used))
    return out


# ------------------------------------------------------------------ lookups
def metadata(api: Any, scope: str, name: str) -> dict[str, Any] | None:
    try:
        return api.get_metadata(scope, name)
    except rx.DataIdentifierNotFound:
        return None


def existing(api: Any, scope: str, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """name -> metadata for the names that exist in ``scope`` (absent names are simply missing)."""
    found: dict[str, dict[str, Any]] = {}
    for part in chunks(list(dict.fromkeys(names))):
        for meta in api.get_metadata_bulk([did(scope, n) for n in part]):
            found[meta["name"]] = meta
    return found


def content_names(api: Any, scope: str, name: str) -> set[tuple[str, str]]:
    return {(c["scope"], c["name"]) for c in api.list_content(scope, name)}


def replica_states(api: Any, scope: str, names: Sequence[str], rse: str) -> dict[str, str]:
    """name -> replica state on ``rse`` for files that have one there."""
    states = {}
    for part in chunks(names):
        for rep in api.list_replicas(
            [did(scope, n) for n in part], all_states=True, rse_expression=rse, resolve_archives=False
        ):
            state = (rep.get("states") or {}).get(rse)
            if state:
                states[rep["name"]] = state
    return states


def custom_metadata(api: Any, scope: str, name: str) -> dict[str, Any]:
    """The DID's custom (JSON plugin) metadata; {} where the server keeps none (SQLite answers 500)."""
    try:
        return api.get_metadata(scope, name, plugin="JSON")
    except rx.DataIdentifierNotFound:
        raise
    except rx.RucioException:
        if metadata(api, scope, name) is None:
            raise rx.DataIdentifierNotFound(f"{scope}:{name}") from None
        return {}


# ------------------------------------------------------------------ registration
def add_dataset(api: Any, scope: str, name: str, files: Sequence[dict] | None, rse: str | None, exist_ok: bool) -> None:
    """Dataset + replicas + attachments in one server transaction: all or nothing."""
    try:
        api.add_dataset(scope, name, files=list(files or []) or None, rse=rse)
    except rx.DataIdentifierAlreadyExists:
        if not exist_ok:
            raise


def add_rules(api: Any, dids: Sequence[dict], rse: str, lifetime: int | None, comment: str) -> list[str]:
    return list(
        api.add_replication_rule(
            list(dids), copies=1, rse_expression=rse, lifetime=lifetime, grouping="DATASET", comment=comment
        )
    )


def add_rules_each(api: Any, dids: Sequence[dict], rse: str, lifetime: int | None, comment: str) -> list[str]:
    """After an ambiguous bulk call: create the missing per-file rules, following the ones that exist."""
    ids = []
    for d in dids:
        try:
            ids.extend(add_rules(api, [d], rse, lifetime, comment))
        except rx.DuplicateRule:
            ids.extend(r["id"] for r in api.list_did_rules(d["scope"], d["name"]) if r.get("comments") == comment)
    return ids


def ensure_container(api: Any, scope: str, name: str) -> bool:
    """Create the container if missing. True if created. A same-named non-container is refused."""
    meta = metadata(api, scope, name)
    if meta is None:
        try:
            api.add_container(scope, name)
            return True
        except rx.DataIdentifierAlreadyExists:
            meta = metadata(api, scope, name)
    if meta is not None and meta.get("did_type") != "CONTAINER":
        raise Conflict(
            f"{scope}:{name} exists and is a {str(meta.get('did_type')).lower()}, not a container.",
            field="container",
        )
    return False


def into_container(api: Any, scope: str, name: str, child: dict) -> None:
    """Create the container if needed and attach ``child``; both idempotent."""
    ensure_container(api, scope, name)
    try:
        api.attach_dids(scope, name, [child])
    except (rx.DuplicateContent, rx.FileAlreadyExists, rx.Duplicate):
        pass  # already there


def set_metadata(api: Any, entries: Sequence[dict[str, Any]]) -> bool:
    """``[{"scope", "name", "meta"}]`` in bulk; False if the server keeps no custom metadata at all."""
    try:
        for part in chunks(entries):
            api.set_dids_metadata_bulk(list(part), recursive=False)
    except (rx.InvalidMetadata, rx.UnsupportedMetadataPlugin) as exc:
        # Rucio's JSON plugin is off (e.g. on SQLite): "no plugin manages" the keys.
        if isinstance(exc, rx.UnsupportedMetadataPlugin) or "no plugin manages" in str(exc).lower():
            return False
        raise
    return True
