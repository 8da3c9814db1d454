"""Notebook attachments: what became of the DIDs a notebook recorded in its metadata.

A notebook keeps the DIDs it used (``metadata.af_lab.attachments``, written by the frontend
when a mount reaches the notebook: the magic, "Insert code", drag and drop). Opened later,
possibly on another server, each one is resolved here in one request, per DID:

- ``mounted``      a ready mount of it exists and holds what Rucio lists now
- ``mounting``     a mount of it is being made
- ``stale``        mounted, but Rucio now lists other files (count or bytes differ),
                   or the mount failed / was cancelled: re-mount to fix
- ``not_mounted``  Rucio has it; nothing mounts it here
- ``gone``         Rucio says it does not exist (deleted, or never existed on this instance)
- ``invalid``      not a DID, or an instance this server does not know
- ``unknown``      Rucio could not be asked (unreachable, no credentials): the mount, if
                   any, is shown, its content not checked

Existence is asked of Rucio on every resolve (a cheap ``get_did``, never memoised, so a
deleted DID shows at once); the content comparison uses the gateway's file listing, the
same one (and the same memo) a mount uses, renewed on ``refresh``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..errors import AFLabError, BadRequest, NotFound
from ..rucio.gateway import RucioGateway
from ..rucio.names import parse_did

CONCURRENCY = 8  # Rucio calls in flight for one resolve
MODES = ("cache", "stream", "replica")
ACTIVE = ("queued", "fetching", "replicating")


class AttachmentService:
    """``mounts`` is the mount service (its ``list()``), ``sessions`` the kernel-session facts
    of :mod:`af_lab.publish.sessions` (its ``for_notebook()``)."""

    def __init__(self, gateway: RucioGateway, mounts: Any, sessions: Any, log: logging.Logger | None = None):
        self.gateway = gateway
        self.mounts = mounts
        self.sessions = sessions
        self.log = log or logging.getLogger("af_lab")

    async def resolve(self, body: dict[str, Any]) -> dict[str, Any]:
        """``{"attachments": [{did, mode?, instance?}], "refresh"?}`` -> ``{"attachments": [state]}``, in order."""
        items = body.get("attachments") or []
        refresh = bool(body.get("refresh"))
        mounts = (await self.mounts.list())["mounts"]
        limit = asyncio.Semaphore(CONCURRENCY)

        async def one(item: dict[str, Any]) -> dict[str, Any]:
            async with limit:
                return await self._resolve_one(item, mounts, refresh)

        return {"attachments": list(await asyncio.gather(*(one(i) for i in items)))}

    async def session(self, notebook: str | None, kernel_id: str | None = None) -> dict[str, Any]:
        """The DIDs the kernel running ``notebook`` mounted (its last report), each with the mode
        and instance of its newest mount here: what the frontend adds to the notebook's attachments.

        With ``kernel_id``, that kernel's report, whatever path it was filed under: the server
        files a report under the path its session had then, which a rename may have changed.
        """
        facts = (self.sessions.for_kernel(kernel_id) if kernel_id else self.sessions.for_notebook(notebook)) or {}
        mounts = (await self.mounts.list())["mounts"]
        dids = []
        for did in facts.get("inputs") or []:
            mine = sorted((m for m in mounts if m["did"] == did), key=lambda m: m["created"], reverse=True)
            entry: dict[str, Any] = {"did": did}
            if mine:
                entry.update(mode=mine[0]["mode"], instance=mine[0]["instance"])
            dids.append(entry)
        return {"notebook": notebook, "kernel_id": facts.get("kernel_id"), "dids": dids}

    # ------------------------------------------------------------------ one DID
    async def _resolve_one(self, item: dict[str, Any], mounts: list[dict], refresh: bool) -> dict[str, Any]:
        did, mode = item.get("did"), item.get("mode") or "cache"
        out: dict[str, Any] = {"did": did, "mode": mode, "instance": item.get("instance"), "state": "invalid",
                               "message": "", "mount": None, "rucio": None}  # fmt: skip
        try:
            scope, name = parse_did(did)
            instance = self.gateway.instance(item.get("instance"))["name"]
        except BadRequest as exc:
            out["message"] = exc.message
            return out
        except AFLabError as exc:  # no Rucio configured at all
            out.update(state="unknown", message=exc.message)
            return out
        did = out["did"] = f"{scope}:{name}"
        out["instance"] = instance
        mount = best_mount([m for m in mounts if m["did"] == did and m["instance"] == instance], mode)
        out["mount"] = mount_facts(mount)
        try:
            out["rucio"] = await self._rucio_facts(instance, scope, name, refresh)
        except NotFound:
            out.update(state="gone", message=f"{did} no longer exists in Rucio ({instance}): it was deleted, "
                                             "or never existed there. It cannot be mounted again.")  # fmt: skip
            return out
        except AFLabError as exc:
            out.update(state="unknown", message=f"Rucio could not be asked about {did}: {exc.message}")
            return out
        out.update(state_of(mount, out["rucio"]))
        return out

    async def _rucio_facts(self, instance: str, scope: str, name: str, refresh: bool) -> dict[str, Any]:
        if await self.gateway.did_metadata(instance, scope, name) is None:  # asked fresh, never cached
            raise NotFound(f"{scope}:{name} does not exist in Rucio", did=f"{scope}:{name}")
        did_type, files = await self.gateway.did_files(instance, scope, name, refresh=refresh)
        return {"type": did_type, "files": len(files), "bytes": sum(int(f.get("bytes") or 0) for f in files)}


def best_mount(mounts: list[dict[str, Any]], mode: str) -> dict[str, Any] | None:
    """The mount that stands for the attachment: the recorded mode first, then a ready one, then the newest."""
    ranked = sorted(mounts, key=lambda m: (m["mode"] == mode, m["state"] == "ready", m["created"]), reverse=True)
    return ranked[0] if ranked else None


def mount_facts(mount: dict[str, Any] | None) -> dict[str, Any] | None:
    if mount is None:
        return None
    return {
        "id": mount["id"], "mode": mount["mode"], "state": mount["state"], "message": mount["message"],
        "target": mount["target"], "fileset": mount.get("fileset"),
        "files": mount["files"]["total"], "bytes": mount["bytes"]["total"],
    }  # fmt: skip


def state_of(mount: dict[str, Any] | None, rucio: dict[str, Any]) -> dict[str, str]:
    """The attachment's state and a one-line message from its mount and Rucio's current listing."""
    if mount is None:
        return {"state": "not_mounted", "message": "Not mounted here."}
    where = mount.get("fileset") or mount["target"]
    if mount["state"] in ACTIVE:
        return {"state": "mounting", "message": f"Being mounted ({mount['state']}) at {where}."}
    if mount["state"] != "ready":
        why = f": {mount['message']}" if mount["message"] else ""
        return {"state": "stale", "message": f"The {mount['mode']} mount at {where} is {mount['state']}{why}."}
    held = (mount["files"]["total"], mount["bytes"]["total"])
    if held != (rucio["files"], rucio["bytes"]):
        return {"state": "stale", "message": (
            f"Rucio's content changed: it lists {rucio['files']} file(s) ({rucio['bytes']} bytes), the mount at "
            f"{where} holds {held[0]} ({held[1]} bytes). Re-mount to update.")}  # fmt: skip
    return {"state": "mounted", "message": f"Mounted ({mount['mode']}) at {where}."}
