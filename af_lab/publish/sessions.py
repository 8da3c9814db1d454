"""What each notebook's kernel session did through af-lab: the facts provenance records.

A kernel with af-lab's magics reports them (``PUT publish/sessions/<kernel id>``): the DIDs
it mounted or opened, the cluster it computes on (profile, environment) and the versions of
the analysis packages it imported. The server ties the report to the notebook whose session
runs that kernel (Jupyter's session manager says which; the kernel cannot claim another
notebook), so a publish naming that notebook — from ``%rucio publish`` or from the Publish
dialog — records the same inputs, and nothing mounted elsewhere in the workspace.
The reports are kept with the user's other private state (a 0600 JSON file next to the job
database, the latest ``MAX_NOTEBOOKS`` notebooks), so a server restart does not forget which
DIDs a notebook's kernel used.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any

from ..errors import BadRequest
from ..paths import private_dir, private_file

FIELDS = {"inputs", "cluster_profile", "environment", "packages"}
_PACKAGE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
MAX_INPUTS = 10_000
MAX_NOTEBOOKS = 200  # the file stays small: older notebooks' reports are dropped first
log = logging.getLogger("af_lab")


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
    """notebook path -> the latest report of the kernel running it (persisted to ``path`` when given)."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path else None
        self._by_notebook: dict[str, dict[str, Any]] | None = None

    @property
    def _reports(self) -> dict[str, dict[str, Any]]:
        if self._by_notebook is None:
            self._by_notebook = self._load()
        return self._by_notebook

    def _load(self) -> dict[str, dict[str, Any]]:
        if self.path is None or not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text())
            reports = data.get("notebooks") if isinstance(data, dict) else None
            if not isinstance(reports, dict):
                raise ValueError("no 'notebooks' object")
            return {nb: {**parse({k: v for k, v in r.items() if k in FIELDS}), "kernel_id": r.get("kernel_id"),
                         "reported_at": r.get("reported_at")}
                    for nb, r in reports.items() if isinstance(nb, str) and isinstance(r, dict)}  # fmt: skip
        except (OSError, ValueError, BadRequest) as exc:  # a damaged file loses old reports, never the server
            log.warning("af-lab: ignoring the session reports in %s (%s)", self.path, exc)
            return {}

    def _save(self) -> None:
        if self.path is None:
            return
        newest = sorted(self._reports.items(), key=lambda kv: kv[1].get("reported_at") or 0)[-MAX_NOTEBOOKS:]
        self._by_notebook = dict(newest)
        private_dir(self.path.parent)
        tmp = private_file(self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp"))
        try:
            tmp.write_text(json.dumps({"version": 1, "notebooks": self._by_notebook}, separators=(",", ":")))
            os.replace(tmp, self.path)  # atomic: a crash leaves the old file or the new one
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            log.warning("af-lab: could not keep the session reports in %s (%s)", self.path, exc)

    def report(self, kernel_id: str, notebook: str | None, body: dict[str, Any]) -> dict[str, Any]:
        facts = parse(body)
        if notebook:
            self._reports[notebook] = {**facts, "kernel_id": kernel_id, "reported_at": time.time()}
            self._save()
        return {"kernel_id": kernel_id, "notebook": notebook, **facts}

    def for_notebook(self, notebook: str | None) -> dict[str, Any] | None:
        return self._reports.get(notebook) if notebook else None

    def for_kernel(self, kernel_id: str | None) -> dict[str, Any] | None:
        """That kernel's latest report, whichever notebook path it was filed under (a renamed notebook)."""
        found = [f for f in self._reports.values() if kernel_id and f["kernel_id"] == kernel_id]
        return max(found, key=lambda f: f["reported_at"]) if found else None
