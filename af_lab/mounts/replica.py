"""Replica mode: link each file to its replica on an RSE this host mounts (no copy)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

from ..errors import AFLabError, BadRequest, ServiceUnavailable
from ..rucio.gateway import RucioGateway
from . import resolve


def readable(path: str) -> bool:
    """Whether this server's user can read ``path`` (a replica on an RSE mounted here)."""
    return os.access(path, os.R_OK)


def _size(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


async def map_replicas(gateway: RucioGateway, instance: str, files: list[dict], mapping: dict[str, str]):
    """(replicas, local paths) of ``files`` on the RSEs mounted here (``mapping``: RSE -> local root).

    The mapping stats every file: in a thread, since a big mount has 50,000 of them."""
    replicas = await gateway.replicas(instance, files)
    protocols = await gateway.protocol_prefixes(instance, sorted(mapping))
    return replicas, await asyncio.to_thread(_local_paths, files, replicas, mapping, protocols)


def _local_paths(files: list[dict], replicas: dict, mapping: dict[str, str], protocols: dict) -> dict:
    local: dict[tuple[str, str], str] = {}
    for f in files:
        key = (f["scope"], f["name"])
        for r in replicas.get(key, []):
            if r["rse"] not in mapping:
                continue
            path = resolve.map_to_local(r["url"], mapping, protocols, r["rse"])
            if path and _size(path) == f["bytes"]:
                local[key] = path
                break
    return local


def rows(files: list[dict], replicas: dict, local: dict) -> tuple[list[dict], list[dict]]:
    """(the mount's file rows, the files with no local replica): done where ``local`` has a path."""
    out, missing = [], []
    for f in files:
        key = (f["scope"], f["name"])
        path = local.get(key)
        if path:
            out.append({**f, "state": "done", "source": "replica", "local_path": path})
        else:
            missing.append(f)
            out.append({**f, "state": "pending", "replicas": replicas.get(key, [])})
    return out, missing


def mounted_rses(instance: dict[str, Any], rse: str | None) -> dict[str, str]:
    """RSE -> local root of the RSEs this host mounts (only ``rse`` when one is asked for)."""
    mapping: dict[str, str] = dict(instance.get("rse_mounts") or {})
    if rse:
        if rse not in mapping:
            raise BadRequest(f"RSE {rse} is not mounted on this host (mounted: {', '.join(mapping) or 'none'})",
                             field="rse")
        mapping = {rse: mapping[rse]}
    if not mapping:
        raise BadRequest(f"Rucio instance {instance['name']!r} has no RSE mounted on this host (rse_mounts); "
                         "use cache or stream mode", field="mode")
    return mapping


async def follow_rule(gateway: RucioGateway, instance: str, rule: dict, note: Callable[[str], None],
                      save: Callable[[dict], None], interval: float) -> dict:
    """Poll the replication rule until it is OK (returns it); a stuck or suspended rule fails."""
    while True:
        try:
            info = await gateway.rule(instance, rule["id"])
        except ServiceUnavailable as exc:
            note(f"{exc.message} (will check again)")
            await asyncio.sleep(interval)
            continue
        rule.update(info)
        save(rule)
        if info["state"] == "OK":
            return rule
        if info["state"] in ("STUCK", "SUSPENDED"):
            why = info.get("error") or "no reason given"
            raise AFLabError(f"Rucio could not replicate the data to {rule.get('rse')}: rule {rule['id']} is "
                             f"{info['state']} ({why})")
        note(f"Rucio is replicating to {rule.get('rse')}: {info['locks_ok_cnt']} of {info['locks_total']} files there")
        await asyncio.sleep(interval)
