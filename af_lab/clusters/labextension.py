"""dask-labextension sees af-lab's clusters: one owner, two views.

Why this design (rather than registering clusters into dask-labextension's
manager, or only providing its factory):

* dask-labextension's handlers and dashboard proxy call a module-level
  ``manager`` through six methods (list/get/start/close/scale/adapt). af-lab
  puts :class:`LabextensionBridge` there, which answers from af-lab's
  :class:`~af_lab.clusters.manager.ClusterService`. So there is exactly one
  owner of every cluster, and its rules hold whichever UI is used: scaling from
  dask-labextension's dialog is checked against the profile's limits, a
  cluster started with its "NEW" button is an af-lab cluster of the default
  profile (persisted, idle-shutdown, tokens shipped), and a shutdown from
  either side is seen by both.
* Writing af-lab clusters into dask-labextension's private dicts would let its
  buttons bypass the limits and af-lab's bookkeeping; providing only the
  factory would give one profile and no options, and clusters made through
  af-lab's own form would not be listed.
* dask-labextension's dashboard proxy (``/dask/dashboard/<id>/…``) reaches
  af-lab clusters unchanged because af-lab ids are UUIDs (its route pattern)
  and the model's ``dashboard_link`` is the scheduler's loopback dashboard.

The bridge is installed by replacing the ``manager`` attribute of three
dask-labextension modules (the names its handlers look up at call time) and
put back on close. Its own manager started at import time stays idle.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

MODULES = ("dask_labextension.manager", "dask_labextension.clusterhandler", "dask_labextension.dashboardhandler")
log = logging.getLogger("af_lab")


class LabextensionBridge:
    """Duck-types ``dask_labextension.manager.DaskClusterManager`` on top of af-lab's service."""

    def __init__(self, service):
        self.service = service

    async def start_cluster(self, cluster_id: str = "", configuration: dict | None = None) -> dict[str, Any]:
        configuration = configuration or {}
        form = {k: configuration[k] for k in ("workers", "adapt") if configuration.get(k) is not None}
        model = await self.service.create(None, form, name=configuration.get("name"))
        return self.service.labextension_model(model["id"])

    async def close_cluster(self, cluster_id: str) -> dict[str, Any] | None:
        model = self.service.labextension_model(cluster_id)
        if model is None:
            return None
        await self.service.delete(cluster_id)
        return model

    def get_cluster(self, cluster_id: str) -> dict[str, Any] | None:
        return self.service.labextension_model(cluster_id)

    def list_clusters(self) -> list[dict[str, Any]]:
        return self.service.labextension_models()

    async def scale_cluster(self, cluster_id: str, n: int) -> dict[str, Any] | None:
        if self.service.labextension_model(cluster_id) is None:
            return None
        await self.service.scale(cluster_id, n)
        return self.service.labextension_model(cluster_id)

    def adapt_cluster(self, cluster_id: str, minimum: int, maximum: int) -> dict[str, Any] | None:
        # dask-labextension calls this one without await.
        if self.service.labextension_model(cluster_id) is None:
            return None
        self.service.adapt_now(cluster_id, {"minimum": minimum, "maximum": maximum})
        return self.service.labextension_model(cluster_id)

    async def close(self) -> None:
        """dask-labextension's own shutdown hook: af-lab's service decides what stops."""


def install(service) -> LabextensionBridge | None:
    """Point dask-labextension at af-lab's clusters; None when dask-labextension is not installed."""
    modules = []
    for name in MODULES:
        try:
            modules.append(importlib.import_module(name))
        except ImportError:
            return None
    bridge = LabextensionBridge(service)
    bridge._previous = [(m, m.manager) for m in modules]
    for m in modules:
        m.manager = bridge
    return bridge


def uninstall(bridge: LabextensionBridge | None) -> None:
    """Put dask-labextension's managers back, unless someone installed another bridge since."""
    if bridge is None:
        return
    for module, previous in getattr(bridge, "_previous", []):
        if module.manager is bridge:
            module.manager = previous
