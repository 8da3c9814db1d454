"""Where a published file came from: collected at submit, stored as Rucio DID metadata.

Recorded: the notebook, the git commit of the repository holding it (and whether the
tree had local changes), the input DIDs (from the request, the mounts service and the
notebook's metadata), the cluster profile, af-lab's version, the time and the user.
Rucio forbids '.' in metadata keys (it is the filter syntax's operator separator), so
the keys carry an ``af_`` prefix instead of a namespace: ``af_notebook``, ``af_inputs``...
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from .. import __version__
from ..errors import BadRequest
from . import workspace
from .plan import Request

PREFIX = "af_"


async def collect(root_dir: str, req: Request, user: str | None, mounts: Any, log: logging.Logger) -> dict[str, Any]:
    where = root_dir
    try:
        if req.notebook:
            where = str(workspace.resolve(root_dir, req.notebook, field="notebook").parent)
        elif req.paths:
            target = workspace.resolve(root_dir, req.paths[0])
            where = str(target if target.is_dir() else target.parent)
    except BadRequest:
        pass
    git = await workspace.git_commit(where)
    inputs = list(req.inputs)
    inputs += await mounted_inputs(mounts, req.instance, req.notebook, log)
    if req.notebook:
        inputs += await asyncio.to_thread(workspace.notebook_inputs, root_dir, req.notebook)
    return {
        "notebook": req.notebook,
        "git_commit": git["commit"] if git else None,
        "git_dirty": git["dirty"] if git else None,
        "inputs": list(dict.fromkeys(inputs)),
        "cluster_profile": req.cluster_profile,
        "af_lab_version": __version__,
        "published_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "published_by": user,
    }


async def mounted_inputs(mounts: Any, instance: str | None, notebook: str | None, log: logging.Logger) -> list[str]:
    """Input DIDs from the mounts service: ``input_dids(notebook)`` if it offers one, else the
    DIDs mounted in this workspace from the same instance (mount records carry no notebook)."""
    if mounts is None:
        return []
    try:
        fn = getattr(mounts, "input_dids", None)
        if fn is not None:
            value = fn(notebook)
            return [str(d) for d in (await value if asyncio.iscoroutine(value) else value) or []]
        listing = await mounts.list()
        return [
            m["did"]
            for m in listing.get("mounts", [])
            if m.get("instance") == instance and m.get("state") not in ("failed", "cancelled")
        ]
    except Exception as exc:  # provenance is best effort: a publish never fails over it
        log.warning("af-lab publish: could not read mounted inputs: %s", exc)
        return []


def meta_key(key: str) -> str:
    """Rucio metadata key of a provenance field: ``notebook`` -> ``af_notebook`` (``af_lab_version`` stays)."""
    return key if key.startswith(PREFIX) else PREFIX + key


def prov_key(key: str) -> str:
    return key if key == "af_lab_version" else key[len(PREFIX) :]


def rucio_meta(prov: dict[str, Any], source: str | None, job_id: str) -> dict[str, Any]:
    """The metadata set on a published DID (``source``: the file's workspace path; None for a dataset)."""
    meta = {meta_key(k): v for k, v in prov.items() if v is not None and v != []}
    meta[meta_key("publish_job")] = job_id
    if source:
        meta[meta_key("source")] = source
    return meta


def from_rucio(meta: dict[str, Any]) -> dict[str, Any]:
    return {prov_key(k): v for k, v in (meta or {}).items() if k.startswith(PREFIX)}
