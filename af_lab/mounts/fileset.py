"""Filesets: the coffea/uproot form of a mount, ``{dataset: {"files": {url_or_path: treename}}}``.

coffea's ``dataset_tools`` and ``uproot.dask`` take this shape as it is, and
``uproot.open(url)`` takes any of its keys. Files are grouped by the dataset
they come from: for a container mount that is its first folder level.
"""

from __future__ import annotations

import json
from typing import Any

WORKERS = ("local", "remote")


def metadata(instance: str, mode: str, source: str | None, xcache: str | None) -> dict[str, Any]:
    """The metadata every fileset carries (REST, magics, inserted code and the .fileset file alike)."""
    via_cache = mode == "stream" and source != "direct" and bool(xcache)
    return {"instance": instance, "mode": mode, "xcache": xcache if via_cache else None}


def check_workers(mode: str, workers: str | None, did: str) -> None:
    """A fileset of server-local paths is useless to workers on other nodes: say what to do instead."""
    from ..errors import BadRequest

    if workers is not None and workers not in WORKERS:
        raise BadRequest(f"workers must be one of {', '.join(WORKERS)}", field="workers")
    if workers == "remote" and mode != "stream":
        raise BadRequest(
            f"the {mode} mount of {did} holds paths local to this server, which workers on other nodes "
            f"cannot read. Mount it with --mode stream (root:// URLs through the XCache) for a batch cluster.",
            field="workers",
        )


def build(did: str, did_type: str, entries: list[tuple[str, str]], treename: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """``entries``: (path inside the mount, url or local path), in mount order."""
    scope = did.split(":", 1)[0]
    groups: dict[str, dict[str, str]] = {}
    for path, location in entries:
        if did_type == "container" and "/" in path:
            key = f"{scope}:{path.split('/', 1)[0]}"
        else:
            key = did
        groups.setdefault(key, {})[location] = treename
    return {key: {"files": files, "metadata": {**metadata, "did": key, "nfiles": len(files)}} for key, files in groups.items()}


def dumps(fileset: dict[str, Any], fmt: str) -> bytes:
    if fmt == "yaml":
        import yaml

        return yaml.safe_dump(fileset, sort_keys=False, default_flow_style=False).encode()
    return (json.dumps(fileset, indent=2) + "\n").encode()
