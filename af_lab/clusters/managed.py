"""One cluster as the service tracks it: the dask object plus what dask does not know.

The job ledger (every job id af-lab submitted, and when it was removed), the
user's target (workers or adapt bounds), the token state, warnings, and the two
JSON shapes derived from it all: the REST model and the on-disk record.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from dask.utils import format_bytes
from distributed.deploy.cluster import Cluster

from . import worker_token
from .profiles import ClusterOptions, Profile, adapt_json

LIVE = ("starting", "running")
KEEP_DONE_JOBS = 200  # finished jobs kept in the ledger (and the job-status view) per cluster


class ManagedCluster:
    """One cluster as the service tracks it: the dask object plus what dask does not know."""

    def __init__(self, cluster_id: str, name: str, profile: Profile, options: ClusterOptions, run_dir: Path):
        self.id = cluster_id
        self.name = name
        self.profile = profile
        self.options = options
        self.run_dir = run_dir
        self.dask_name = f"af-{cluster_id[:8]}"
        self.created = time.time()
        self.cluster: Cluster | None = None
        self.ctx = None  # the backend context it was built with
        self.python = sys.executable  # the software environment's interpreter
        self.adaptive = None  # dask's Adaptive while adapting
        self.state = "starting"
        self.message = ""
        self.requested = 0
        self.adapt: tuple[int, int] | None = None
        self.jobs: dict[str, dict[str, Any]] = {}  # job id -> {"name", "submitted", "removed"}
        self.scheduler_info: dict[str, Any] = {}
        self.token: dict[str, Any] | None = None
        self.token_digest: str | None = None
        self.pending_since: float | None = None
        self.pending_message: str | None = None
        self.warnings: list[str] = []
        self.cleanup_pending = False
        self.submit_failures = 0  # in a row; Adaptive would otherwise resubmit every second forever
        self.lock = asyncio.Lock()
        self.queue_query: asyncio.Future | None = None
        self.touch: asyncio.Future | None = None
        self.on_change = lambda: None

    @property
    def backend(self) -> str:
        return self.profile.backend

    @property
    def has_batch_jobs(self) -> bool:
        return self.backend != "local"

    def stop_adapting(self, keep_bounds: bool = False) -> None:
        if self.adaptive is not None:
            self.adaptive.stop()
            self.adaptive = None
        if not keep_bounds:
            self.adapt = None

    @property
    def token_file(self) -> Path:
        return self.run_dir / worker_token.FILE_NAME

    # ------------------------------------------------------------------ job ledger (called by the jobs)
    def job_submitted(self, worker_name: str, job_id: str) -> None:
        self.jobs[job_id] = {"name": worker_name, "submitted": time.time(), "removed": None}
        self.submit_failures = 0
        self.on_change()

    def job_failed(self, worker_name: str, message: str) -> None:
        """A submit failed (also when Adaptive asked for the worker, where nobody awaits the error)."""
        self.submit_failures += 1
        if message not in self.warnings:
            self.warnings.append(message)

    def job_removed(self, worker_name: str, job_id: str) -> None:
        if job_id in self.jobs and not self.jobs[job_id]["removed"]:
            self.jobs[job_id]["removed"] = time.time()
            self._trim_jobs()
            self.on_change()

    def _trim_jobs(self) -> None:
        done = [j for j, info in self.jobs.items() if info["removed"]]
        for job_id in done[:-KEEP_DONE_JOBS]:
            del self.jobs[job_id]

    def live_jobs(self) -> dict[str, str]:
        """{worker name: job id} of jobs af-lab has not removed."""
        return {info["name"]: job_id for job_id, info in self.jobs.items() if not info["removed"]}

    # ------------------------------------------------------------------ state
    def connected_workers(self) -> dict[str, dict]:
        if self.cluster is None or self.state not in LIVE:
            return {}
        return dict(self.cluster.scheduler_info.get("workers", {}))

    def planned_workers(self) -> int:
        if self.cluster is None or self.state not in LIVE:
            return 0
        return len(self.cluster.worker_spec)

    def scheduler_alive(self) -> bool:
        if self.cluster is None:
            return False
        return self.cluster.scheduler.alive()  # SchedulerProcess, for every backend

    @property
    def scheduler_address(self) -> str:
        return self.scheduler_info.get("address", "")

    @property
    def dashboard_link(self) -> str:
        """The scheduler's own dashboard (loopback); users go through the Jupyter proxy instead."""
        return self.scheduler_info.get("dashboard_link", "")

    def record(self, owner: dict[str, Any]) -> dict[str, Any]:
        p = self.profile
        return {
            "id": self.id,
            "name": self.name,
            "dask_name": self.dask_name,
            "profile": {"name": p.name, "backend": p.backend, "display_name": p.display_name,
                        "defaults": p.defaults, "limits": p.limits, "settings": p.settings},
            "options": self.options.to_json(),
            "environment": {"name": self.options.environment},  # never the interpreter's path (a server detail)
            "created": self.created,
            "state": self.state,
            "message": self.message,
            "requested": self.requested,
            "adapt": adapt_json(self.adapt),
            "scheduler": self.scheduler_info,
            "jobs": self.jobs,
            "cleanup_pending": self.cleanup_pending,
            "owner": owner,
        }

    def model(self) -> dict[str, Any]:
        workers = self.connected_workers()
        memory = sum(w.get("memory_limit") or 0 for w in workers.values())
        warnings = list(self.warnings)
        if self.pending_message:
            warnings.insert(0, self.pending_message)
        if self.token and self.token.get("state") != "ok" and self.token.get("message"):
            warnings.append(self.token["message"])
        return {
            "id": self.id,
            "name": self.name,
            "profile": self.profile.name,
            "backend": self.backend,
            "state": self.state,
            "message": self.message,
            "options": self.options.to_json(),
            "scheduler_address": self.scheduler_address if self.state in LIVE else "",
            "dashboard_link": self.dashboard_link if self.state in LIVE else "",
            "workers": len(workers),
            "requested_workers": self.planned_workers(),
            "cores": sum(w.get("nthreads", 0) for w in workers.values()),
            "memory": format_bytes(memory),
            "memory_bytes": memory,
            "adapt": adapt_json(self.adapt),
            "pending": (
                {"workers": max(self.planned_workers() - len(workers), 0), "since": self.pending_since}
                if self.pending_since else None
            ),
            "warnings": warnings,
            "token": dict(self.token) if self.token else None,
            "created": self.created,
        }
