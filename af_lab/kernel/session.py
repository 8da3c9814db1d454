"""What this kernel session does through af-lab, reported to the server for provenance.

The magics note every DID they mount or open; before ``%rucio publish``, and after any cell
that changed them, the kernel reports (``PUT publish/sessions/<kernel id>``): those DIDs, the
af-lab cluster the session computes on (profile, environment), and the versions of the
analysis packages it imported. The server ties the report to the notebook whose session runs
this kernel, so the Publish dialog records the same as the magic.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import quote

# module -> distribution: the analysis stack whose versions matter for a result
PACKAGES = {
    "uproot": "uproot", "awkward": "awkward", "coffea": "coffea", "ROOT": "root", "dask": "dask",
    "distributed": "distributed", "dask_awkward": "dask-awkward", "dask_histogram": "dask-histogram",
    "hist": "hist", "numpy": "numpy", "vector": "vector",
}  # fmt: skip


def kernel_id() -> str | None:
    """This kernel's id, from its connection file name (``kernel-<id>.json``); None outside a kernel."""
    try:
        from ipykernel.connect import get_connection_file

        name = Path(get_connection_file()).name
    except Exception:
        return None
    match = re.fullmatch(r"kernel-([\w-]+)\.json", name)
    return match.group(1) if match else None


def package_versions() -> dict[str, str]:
    """Versions of the analysis packages this process has imported (not merely installed)."""
    out = {}
    for module, dist in PACKAGES.items():
        if module in sys.modules:
            try:
                out[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                version = getattr(sys.modules[module], "__version__", None)
                if isinstance(version, str):
                    out[dist] = version
    return out


def cluster_facts(clusters: list[dict]) -> dict[str, Any]:
    """Profile and environment of the af-lab cluster the default Dask client talks to.

    A Dask client that is not an af-lab cluster's (e.g. a LocalCluster of this kernel) runs this
    kernel's environment: its prefix is recorded as the environment, without a profile.
    """
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return {}
    try:
        address = distributed.default_client().scheduler.address
    except Exception:
        return {}
    for c in clusters:
        if c.get("scheduler_address") and c["scheduler_address"] == address:
            profile = c.get("profile")
            env = c.get("environment") or (c.get("options") or {}).get("environment")
            return {
                "cluster_profile": profile.get("name") if isinstance(profile, dict) else profile,
                "environment": env.get("name") if isinstance(env, dict) else env,
            }
    return {"cluster_profile": None, "environment": sys.prefix}


class SessionRecord:
    """The DIDs this session mounted/opened, and the last report sent (to send only changes)."""

    def __init__(self) -> None:
        self.inputs: list[str] = []
        self._sent: dict[str, Any] | None = None
        self.notebook: str | None = None

    def used(self, did: str | None) -> None:
        if did and did not in self.inputs:
            self.inputs.append(did)

    def facts(self, client: Any) -> dict[str, Any]:
        facts: dict[str, Any] = {"inputs": list(self.inputs), "packages": package_versions()}
        if "distributed" in sys.modules:
            try:
                facts.update(cluster_facts(list(client.clusters())))
            except Exception:  # no cluster service: the packages and inputs still count
                facts.update(cluster_facts([]))
        return facts

    def report(self, client: Any, force: bool = False) -> str | None:
        """Send the facts if they changed (or ``force``); returns the notebook path the server knows."""
        kid = kernel_id()
        if kid is None:
            return None
        facts = self.facts(client)
        if force or facts != self._sent:
            reply = client.request("PUT", f"publish/sessions/{quote(kid, safe='')}", body=facts)
            self._sent, self.notebook = facts, reply.get("notebook")
        return self.notebook
