"""Cluster events: every change of a cluster goes out on the server's event stream.

Topics (the stream the mounts and publish jobs use, :mod:`af_lab.events`):

- ``clusters/<id>`` — the cluster's REST model (as ``GET /af-lab/clusters/<id>``
  answers it, without the browser URLs the handler adds) whenever it differs
  from the last one sent: created (``starting``), ``running``, scaling, workers
  connecting or leaving, ``stopping``, ``stopped``/``failed`` with the reason;
  ``{"id", "state": "removed"}`` once it is gone from the list.
- ``clusters/<id>/jobs`` — the batch jobs (as ``GET …/jobs`` answers) whenever a
  job's state changes (pending with reason → running → failed with exit code).

Worker counts live in memory (the scheduler pushes them to the dask object), so
the models are compared often and cheaply. Batch queues are only asked while a
browser listens, quickly while jobs are settling and slowly once all run: one
``squeue``/``condor_q`` per cluster for every open tab together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from ..errors import AFLabError
from ..events.bus import EventBus
from .managed import LIVE

if TYPE_CHECKING:
    from .managed import ManagedCluster
    from .manager import ClusterService

MODEL_INTERVAL_S = 0.5  # in-memory comparison of each cluster's model
JOBS_SETTLING_S = 2.0  # queue reads while a job is pending or a worker is missing
JOBS_STEADY_S = 15.0  # queue reads once every job runs and every worker is connected
TOPIC = "clusters"


class ClusterEvents:
    def __init__(self, bus: EventBus, log: logging.Logger):
        self.bus = bus
        self.log = log
        self._models: dict[str, dict[str, Any]] = {}
        self._jobs: dict[str, Any] = {}
        self._jobs_due: dict[str, float] = {}
        self._ended: set[str] = set()  # ended clusters whose jobs were read after the end
        self._gone: set[str] = set()  # removed clusters (ids are never reused)
        self._task: asyncio.Task | None = None

    # ------------------------------------------------------------------ publishing
    def changed(self, mc: ManagedCluster) -> None:
        """Publish the cluster's model if it differs from the last one published."""
        if mc.id in self._gone:
            return  # a watch pass that started before it was removed
        model = mc.model()
        if self._models.get(mc.id) != model:
            self._models[mc.id] = model
            self.bus.publish(f"{TOPIC}/{mc.id}", model)
            self._jobs_due[mc.id] = 0.0  # a change of the cluster is a reason to look at its jobs

    def removed(self, cluster_id: str) -> None:
        self._gone.add(cluster_id)
        self._models.pop(cluster_id, None)
        self._jobs.pop(cluster_id, None)
        self._jobs_due.pop(cluster_id, None)
        self._ended.discard(cluster_id)
        self.bus.publish(f"{TOPIC}/{cluster_id}", {"id": cluster_id, "state": "removed"})

    def jobs_read(self, cluster_id: str, jobs: dict[str, Any]) -> None:
        """Publish a jobs answer if any job changed (the time of the query does not count)."""
        key = {k: v for k, v in jobs.items() if k != "queried_at"}
        if self._jobs.get(cluster_id) != key:
            self._jobs[cluster_id] = key
            self.bus.publish(f"{TOPIC}/{cluster_id}/jobs", jobs)

    # ------------------------------------------------------------------ watching
    def start(self, service: ClusterService) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._watch(service))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _watch(self, service: ClusterService) -> None:
        while True:
            await asyncio.sleep(MODEL_INTERVAL_S)
            for mc in service.managed():
                try:
                    self.changed(mc)
                    if self._jobs_wanted(mc):
                        await self._read_jobs(service, mc)
                except Exception:
                    self.log.exception("af-lab: publishing the state of cluster %s failed", mc.id)

    def _jobs_wanted(self, mc: ManagedCluster) -> bool:
        if not mc.has_batch_jobs or not self.bus.wants(f"{TOPIC}/{mc.id}/jobs"):
            return False
        # An ended cluster's jobs are read once more (what happened to them), then no more.
        if mc.state not in LIVE and mc.id in self._ended:
            return False
        return time.monotonic() >= self._jobs_due.get(mc.id, 0.0)

    async def _read_jobs(self, service: ClusterService, mc: ManagedCluster) -> None:
        try:
            jobs = await service.jobs(mc.id)
        except AFLabError as exc:
            # The REST view reports the fault when asked; the stream just tries again later.
            self.log.debug("af-lab: job states of cluster %s: %s", mc.id, exc.message)
            self._jobs_due[mc.id] = time.monotonic() + JOBS_STEADY_S
            return
        self.jobs_read(mc.id, jobs)
        settling = _settling(mc, jobs)
        self._jobs_due[mc.id] = time.monotonic() + (JOBS_SETTLING_S if settling else JOBS_STEADY_S)
        if mc.state not in LIVE:
            self._ended.add(mc.id)


def _settling(mc: ManagedCluster, jobs: dict[str, Any]) -> bool:
    counts = jobs.get("counts") or {}
    if mc.state == "starting" or len(mc.connected_workers()) < mc.planned_workers():
        return True
    return bool(counts.get("idle") or counts.get("held")) or (
        counts.get("running", 0) < counts.get("submitted", 0) - counts.get("done", 0)
    )
