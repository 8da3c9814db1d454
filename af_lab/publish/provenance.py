"""Where a published file came from: collected at submit, stored as Rucio DID metadata.

Recorded: the notebook, the git commit of the repository that tracks it (and whether the
tree had local changes; never af-lab's own checkout), the input DIDs (from the request and
what the notebook's kernel session mounted or opened, see ``sessions.py``), the cluster
profile and software environment, the analysis packages that ran, af-lab's version, the
time and the user.
Rucio forbids '.' in metadata keys (it is the filter syntax's operator separator), so
the keys carry an ``af_`` prefix instead of a namespace: ``af_notebook``, ``af_inputs``...
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .. import __version__
from ..errors import BadRequest
from . import workspace
from .plan import Request

PREFIX = "af_"


async def collect(root_dir: str, req: Request, user: str | None, session: dict[str, Any] | None) -> dict[str, Any]:
    """``session``: what the kernel running ``req.notebook`` reported (sessions.SessionFacts), if any.

    Inputs are the request's own plus the DIDs that kernel session mounted or opened through
    af-lab: nothing else mounted in the workspace, nothing left in the notebook from other sessions.
    """
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
    session = session or {}
    inputs = [*req.inputs, *(session.get("inputs") or [])]
    packages = session.get("packages") or {}
    return {
        "notebook": req.notebook,
        "git_commit": git["commit"] if git else None,
        "git_dirty": git["dirty"] if git else None,
        "inputs": list(dict.fromkeys(inputs)),
        "cluster_profile": req.cluster_profile or session.get("cluster_profile"),
        "environment": session.get("environment"),
        # name==version strings: Rucio metadata values are flat
        "packages": [f"{name}=={version}" for name, version in packages.items()],
        "af_lab_version": __version__,
        "published_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "published_by": user,
    }


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
