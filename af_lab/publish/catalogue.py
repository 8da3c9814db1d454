"""Rucio catalogue calls for Publish, on the gateway's :class:`~af_lab.rucio.api.RucioAPI`.

Synchronous (the gateway runs them in its threads and types their failures). Everything is bulk: lookups,
registrations and metadata go ≤ ``CHUNK`` DIDs per REST call (SQLite servers
fail near 1,000 terms in one query, and the REST schema caps lists at 1,000),
instead of rucio upload's ~8 calls per file.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from rucio.common import exception as rx

from ..errors import (
    Conflict,
)
from . import naming

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


# ---------------------------------------------------------------------------------- the calls


class Catalogue:
    def __init__(self, client: Any, account: str):
        self.client = client
        self.account = account

    # -- what the dialog offers ------------------------------------------------------------
    def owned_scopes(self) -> list[str]:
        try:
            return sorted(self.client.list_scopes_for_account(self.account))
        except rx.ScopeNotFound:
            return []

    def is_admin(self) -> bool:
        for attrs in self.client.list_account_attributes(self.account):
            for attr in attrs if isinstance(attrs, list) else [attrs]:
                if attr.get("key") == "admin" and str(attr.get("value")).lower() == "true":
                    return True
        return False

    def rses(self) -> list[dict[str, Any]]:
        return list(self.client.list_rses())

    def rse_settings(self, rse: str) -> dict[str, Any]:
        return self.client.get_rse(rse)

    def local_limits(self) -> dict[str, float]:
        return dict(self.client.get_local_account_limits(self.account))

    def usage_all(self) -> dict[str, int]:
        return {row["rse"]: int(row.get("bytes") or 0) for row in self.client.get_local_account_usage(self.account)}

    def usage(self, rse: str) -> tuple[int, float | None]:
        """(bytes used, limit or None) of the account on one RSE."""
        for row in self.client.get_local_account_usage(self.account, rse):
            return int(row.get("bytes") or 0), row.get("bytes_limit")
        limit = self.client.get_local_account_limit(self.account, rse).get(rse)
        return 0, limit

    def global_quota_left(self, rse: str) -> list[tuple[str, float]]:
        """(expression, bytes left) of each global limit whose expression covers ``rse``."""
        out = []
        try:
            limits = self.client.get_global_account_limits(self.account) or {}
        except rx.RucioException:
            return out
        if not limits:
            return out
        usage = {u["rse_expression"]: u for u in self.client.get_global_account_usage(self.account)}
        for expression, limit in limits.items():
            covered = {r["rse"] for r in self.client.list_rses(expression)}
            if rse in covered:
                used = int((usage.get(expression) or {}).get("bytes") or 0)
                out.append((expression, float(limit.get("limit") if isinstance(limit, dict) else limit) - used))
        return out

    # -- lookups -----------------------------------------------------------------------------
    def metadata(self, scope: str, name: str) -> dict[str, Any] | None:
        try:
            return self.client.get_metadata(scope, name)
        except rx.DataIdentifierNotFound:
            return None

    def lookup(self, scope: str, names: Iterable[str]) -> dict[str, dict[str, Any]]:
        """name -> metadata for the names that exist in ``scope`` (absent names are simply missing)."""
        names = list(dict.fromkeys(names))
        found: dict[str, dict[str, Any]] = {}
        for part in chunks(names):
            for meta in self.client.get_metadata_bulk([did(scope, n) for n in part]):
                found[meta["name"]] = meta
        return found

    def content_names(self, scope: str, name: str) -> set[tuple[str, str]]:
        return {(c["scope"], c["name"]) for c in self.client.list_content(scope, name)}

    def rules(self, scope: str, name: str) -> list[dict[str, Any]]:
        return list(self.client.list_did_rules(scope, name))

    def replica_states(self, scope: str, names: Sequence[str], rse: str) -> dict[str, str]:
        """name -> replica state on ``rse`` for files that have one there."""
        states = {}
        for part in chunks(names):
            for rep in self.client.list_replicas(
                [did(scope, n) for n in part], all_states=True, rse_expression=rse, resolve_archives=False
            ):
                state = (rep.get("states") or {}).get(rse)
                if state:
                    states[rep["name"]] = state
        return states

    # -- registration --------------------------------------------------------------------------
    def create_dataset(self, scope: str, name: str, files: Sequence[dict], rse: str) -> None:
        """Dataset + replicas + attachments in one server transaction: all or nothing."""
        self.client.add_dataset(scope, name, files=list(files), rse=rse)

    def attach(self, scope: str, name: str, files: Sequence[dict], rse: str | None) -> None:
        """Attach (and, with ``rse``, register replicas of) ``files`` in one transaction."""
        self.client.attach_dids(scope, name, list(files), rse=rse)

    def add_replicas(self, rse: str, files: Sequence[dict]) -> None:
        self.client.add_replicas(rse=rse, files=list(files))

    def add_rule(self, dids: Sequence[dict], rse: str, lifetime: int | None, comment: str) -> list[str]:
        return list(
            self.client.add_replication_rule(
                list(dids), copies=1, rse_expression=rse, lifetime=lifetime, grouping="DATASET", comment=comment
            )
        )

    def ensure_container(self, scope: str, name: str) -> bool:
        """Create the container if missing. True if created. A same-named non-container is refused."""
        meta = self.metadata(scope, name)
        if meta is None:
            try:
                self.client.add_container(scope, name)
                return True
            except rx.DataIdentifierAlreadyExists:
                meta = self.metadata(scope, name)
        if meta is not None and meta.get("did_type") != "CONTAINER":
            raise Conflict(
                f"{scope}:{name} exists and is a {str(meta.get('did_type')).lower()}, not a container.",
                field="container",
            )
        return False

    def into_container(self, scope: str, name: str, child: dict) -> None:
        """Create the container if needed and attach ``child``; both idempotent."""
        self.ensure_container(scope, name)
        try:
            self.client.attach_dids(scope, name, [child])
        except (rx.DuplicateContent, rx.FileAlreadyExists, rx.Duplicate):
            pass  # already there

    def rule(self, rule_id: str) -> dict[str, Any]:
        return self.client.get_replication_rule(rule_id)

    def free_name(self, scope: str, name: str) -> str | None:
        return naming.suggest(name, lambda candidates: set(self.lookup(scope, candidates)))

    def set_metadata(self, entries: Sequence[dict[str, Any]]) -> None:
        """``[{"scope", "name", "meta"}]`` in bulk (Rucio's custom-metadata plugin)."""
        for part in chunks(entries):
            self.client.set_dids_metadata_bulk(list(part), recursive=False)

    def custom_metadata(self, scope: str, name: str) -> dict[str, Any]:
        """The DID's custom (JSON plugin) metadata; {} where the server keeps none (SQLite answers 500)."""
        try:
            return self.client.get_metadata(scope, name, plugin="JSON")
        except rx.DataIdentifierNotFound:
            raise
        except rx.RucioException:
            if self.metadata(scope, name) is None:
                raise rx.DataIdentifierNotFound(f"{scope}:{name}") from None
            return {}


def metadata_unsupported(exc: BaseException) -> bool:
    """The server has no custom-metadata store (Rucio's JSON plugin is off, e.g. on SQLite)."""
    return isinstance(exc, (rx.InvalidMetadata, rx.UnsupportedMetadataPlugin)) and (
        "no plugin manages" in str(exc).lower() or isinstance(exc, rx.UnsupportedMetadataPlugin)
    )
