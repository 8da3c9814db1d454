"""Filesets: the coffea/uproot form of a mount, ``{dataset: {"files": {url_or_path: treename}}}``.

coffea's ``dataset_tools`` and ``uproot.dask`` take this shape as it is, and
``uproot.open(url)`` takes any of its keys. Files are grouped by the dataset
they come from: for a container mount that is its first folder level.
"""

from __future__ import annotations

import json
from typing import Any


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
