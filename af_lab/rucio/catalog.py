"""Catalogue walks the gateway runs in a thread for mounts: a DID's files, their replicas, rules.

Each takes a :class:`~af_lab.rucio.api.RucioAPI` first; the gateway supplies it, retries
once on a rejected token and turns every failure into a typed error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from rucio.common import exception as rx

from ..errors import BadRequest, NotFound
from .names import relpath

SCHEMES = ["file", "root", "davs", "https"]
REPLICA_BATCH = 500  # DIDs per replica listing: bounded request bodies, steady memory


def did_files(api: Any, scope: str, name: str) -> tuple[str, list[dict[str, Any]]]:
    """The DID's type and its files, each with ``path``: where it goes below the mount.

    A container keeps its structure (one folder per dataset), so overlapping mounts
    of a container and of one of its datasets share the same cached files.
    """
    try:
        did = api.get_did(scope, name)
    except rx.DataIdentifierNotFound:
        raise NotFound(f"{scope}:{name} does not exist in Rucio", did=f"{scope}:{name}") from None
    did_type = str(did.get("type", "")).upper()
    if did_type == "FILE":
        return "file", [_file(did, relpath(did["name"]))]
    if did_type == "DATASET":
        return "dataset", [_file(f, relpath(f["name"])) for f in api.list_files(scope, name)]
    if did_type == "CONTAINER":
        files: list[dict[str, Any]] = []
        _walk_container(api, scope, name, "", files, seen=set())
        return "container", files
    raise BadRequest(f"{scope}:{name} is a {did_type or 'DID of unknown type'}; only files, datasets and "
                     "containers mount", field="did")


def _walk_container(api: Any, scope: str, name: str, prefix: str, out: list, seen: set) -> None:
    if (scope, name) in seen:  # Rucio forbids cycles, but never loop forever on a bad catalogue
        return
    seen.add((scope, name))
    for child in list(api.list_content(scope, name)):
        ctype = str(child.get("type", "")).upper()
        folder = f"{prefix}{relpath(child['name'])}"
        if ctype == "DATASET":
            out.extend(_file(f, f"{folder}/{relpath(f['name'])}") for f in api.list_files(child["scope"], child["name"]))
        elif ctype == "CONTAINER":
            _walk_container(api, child["scope"], child["name"], folder + "/", out, seen)
        elif ctype == "FILE":
            out.append(_file({**child, **api.get_did(child["scope"], child["name"])}, folder))


def _file(d: dict[str, Any], path: str) -> dict[str, Any]:
    return {"scope": d["scope"], "name": d["name"], "bytes": int(d.get("bytes") or 0), "adler32": d.get("adler32"),
            "path": path}


def replicas(
    api: Any,
    files: Iterable[dict[str, Any]],
    on_file: Callable[[tuple[str, str], list[dict[str, str]]], None] | None = None,
) -> dict[tuple[str, str], list[dict[str, str]]]:
    """Available replicas per file: [{"rse", "url", "scheme"}], every protocol af-lab reads.

    Rucio streams one line per file; ``on_file(key, replicas)`` is called as each
    arrives (from this thread), so a caller can start on a file before the listing ends.
    """
    dids = list({(f["scope"], f["name"]) for f in files})
    out: dict[tuple[str, str], list[dict[str, str]]] = {d: [] for d in dids}
    for i in range(0, len(dids), REPLICA_BATCH):
        batch = [{"scope": s, "name": n} for s, n in dids[i : i + REPLICA_BATCH]]
        for rep in api.list_replicas(batch, schemes=SCHEMES, all_states=False):
            key = (rep["scope"], rep["name"])
            states = rep.get("states") or {}
            found = out.setdefault(key, [])
            for url, meta in sorted((rep.get("pfns") or {}).items(), key=lambda kv: kv[1].get("priority", 99)):
                rse = meta.get("rse")
                if states.get(rse, "AVAILABLE") != "AVAILABLE":
                    continue
                found.append({"rse": rse, "url": url, "scheme": urlsplit(url).scheme})
            if on_file is not None:
                on_file(key, found)
    return out


def protocol_prefixes(api: Any, rses: Iterable[str]) -> dict[str, list[str]]:
    out = {}
    for rse in rses:
        try:
            out[rse] = [p.get("prefix") or "/" for p in api.get_protocols(rse)]
        except Exception:  # an RSE we cannot describe simply maps nothing
            out[rse] = []
    return out


def add_rule(api: Any, scope: str, name: str, rse: str, lifetime_s: int) -> str:
    try:
        return api.add_replication_rule([{"scope": scope, "name": name}], 1, rse, lifetime=lifetime_s,
                                        grouping="DATASET", ask_approval=False)[0]
    except rx.DuplicateRule:
        # Our account already has this rule (e.g. an earlier mount): follow it instead of failing.
        for rule in api.list_did_rules(scope, name):
            if rule["rse_expression"] == rse and rule["account"] == api.account:
                return rule["id"]
        raise


def rule_state(api: Any, rule_id: str) -> dict[str, Any]:
    r = api.get_replication_rule(rule_id)
    ok, rep, stuck = r.get("locks_ok_cnt", 0), r.get("locks_replicating_cnt", 0), r.get("locks_stuck_cnt", 0)
    expires = r.get("expires_at")
    return {
        "state": str(r.get("state", "")).split(".")[-1].upper(),
        "locks_ok_cnt": ok, "locks_replicating_cnt": rep, "locks_stuck_cnt": stuck, "locks_total": ok + rep + stuck,
        "error": r.get("error"), "expires_at": expires.isoformat() if hasattr(expires, "isoformat") else expires,
    }  # fmt: skip


def delete_rule(api: Any, rule_id: str) -> None:
    with contextlib.suppress(rx.RuleNotFound):
        api.delete_replication_rule(rule_id, purge_replicas=False)
