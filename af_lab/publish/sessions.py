"""What each notebook's kernel session did through af-lab: the facts provenance records.

A kernel with af-lab's magics reports them (``PUT publish/sessions/<kernel id>``): the DIDs
it mounted or opened, the cluster it computes on (profile, environment) and the versions of
the analysis packages it imported. The server ties the report to the notebook whose session
runs that kernel (Jupyter's session manager says which; the kernel cannot claim another
notebook), so a publish naming that notebook — from ``%rucio publish`` or from the Publish
dialog — records the same inputs, and nothing mounted elsewhere in the workspace.
Kept in memory: a report lives as long as the server that received it.
"""

from __future__ import annotations

import re
import time
from typing import Any

from ..errors import BadRequest

FIELDS = {"inputs", "cluster_profile", "environment", "packages"}
_PACKAGE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
MAX_INPUTS = 10_000


def parse(body: dict[str, Any]) -> dict[str, Any]:
    """A kernel's report, validated (400 naming the field otherwise)."""
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise BadRequest(f"Unknown field(s): {', '.join(unknown)}.", field=unknown[0])
    inputs = body.get("inputs") or []
    if (
        not isinstance(inputs, list)
        or len(inputs) > MAX_INPUTS
        or not all(isinstance(i, str) and ":" in i for i in inputs)
    ):
        raise BadRequest("inputs must be a list of scope:name DIDs.", field="inputs")
    facts: dict[str, Any] = {"inputs": list(dict.fromkeys(inputs))}
    for key in ("cluster_profile", "environment"):
        value = body.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > 4096):
            raise BadRequest(f"{key} must be a string.", field=key)
        facts[key] = value
    packages = body.get("packages") or {}
    if not isinstance(packages, dict) or not all(
        isinstance(k, str) and _PACKAGE.match(k) and isinstance(v, str) and len(v) <= 128 for k, v in packages.items()
    ):
        raise BadRequest("packages must map package names to version strings.", field="packages")
    facts["packages"] = dict(sorted(packages.items()))
    return facts


class SessionFacts:
    """notebook path -> the latest report of the kernel running it."""

    def __init__(self) -> None:
        self._by_notebook: dict[str, dict[str, Any]] = {}

    def report(self, kernel_id: str, notebook: str | None, body: dict[str, Any]) -> dict[str, Any]:
        facts = parse(body)
        if notebook:
            self._by_notebook[notebook] = {**facts, "kernel_id": kernel_id, "reported_at": time.time()}
        return {"kernel_id": kernel_id, "notebook": notebook, **facts}

    def for_notebook(self, notebook: str | None) -> dict[str, Any] | None:
        return self._by_notebook.get(notebook) if notebook else None

    def for_kernel(self, kernel_id: str | None) -> dict[str, Any] | None:
        """That kernel's latest report, whichever notebook path it was filed under (a renamed notebook)."""
        found = [f for f in self._by_notebook.values() if kernel_id and f["kernel_id"] == kernel_id]
        return max(found, key=lambda f: f["reported_at"]) if found else None
