"""What a cluster backend is: a small object the cluster service drives.

A backend builds the dask cluster object (a ``SpecCluster``: af-lab's
:class:`~.scheduler_process.SchedulerProcess` plus one worker class per job),
lists the cluster's jobs *by tag* (every job carries the cluster id, so jobs
af-lab never recorded are found too), removes them by tag, and translates its
job states into :class:`JobState`, from which the REST ``jobs`` model is built.

Adding a backend = one module with a :class:`Backend` subclass, registered in
:data:`af_lab.clusters.backends.BACKENDS`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distributed.core import Status

from .scheduler_process import SchedulerProcess

if TYPE_CHECKING:
    from distributed.deploy.spec import SpecCluster

    from .profiles import ClusterOptions, Profile
    from .tls import TLSFiles

# The environment variable (local workers) / job attribute (batch jobs) naming the cluster.
TAG_ENV = "AFLAB_CLUSTER_ID"


@dataclass
class JobState:
    """One job as the batch system (or the process table) reports it."""

    job_id: str
    status: str  # idle | pending | running | held | suspended | completed | failed | removed
    since: float | None = None
    reason: str | None = None  # hold reason (HTCondor), pending reason (SLURM)
    exit_code: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BackendContext:
    """Everything a backend needs to build one cluster's dask object."""

    cluster_id: str
    dask_name: str
    profile: Profile
    options: ClusterOptions
    run_dir: Path
    python: str  # the cluster's software environment: scheduler and workers run this interpreter
    env: dict[str, str]  # the scheduler's and workers' environment (allow-listed, no secret)
    tls: TLSFiles
    token_file: Path | None = None  # the data-access token to ship with each job (None: no token)
    on_submitted: Callable[[str, str], None] = lambda name, job_id: None
    on_removed: Callable[[str, str], None] = lambda name, job_id: None
    on_failed: Callable[[str, str], None] = lambda name, message: None
    adopt: dict[str, Any] | None = None  # the scheduler record to reattach to
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> dict[str, Any]:
        return self.profile.settings

    def scheduler_options(self) -> dict[str, Any]:
        """``scheduler_cls`` options for :class:`~.scheduler_process.SchedulerProcess`."""
        return {
            "run_dir": str(self.run_dir),
            "host": self.settings.get("scheduler_host", "127.0.0.1"),
            "adopt": self.adopt,
            "env": self.env,
            "python": self.python,
            "tls_args": self.tls.scheduler_args(),
            "client_security": self.tls.security("client"),
        }

    def jobqueue_options(self) -> dict[str, Any]:
        """What every dask-jobqueue cluster of af-lab is given: TLS, af-lab's scheduler process, the ledger hooks."""
        return {
            "protocol": "tls://",
            "on_submitted": self.on_submitted,
            "on_removed": self.on_removed,
            "on_failed": self.on_failed,
            "scheduler_cls": SchedulerProcess,
            "scheduler_options": self.scheduler_options(),
            "silence_logs": False,
            "asynchronous": True,
        }

    def detached(self, cluster: SpecCluster) -> SpecCluster:
        """A batch cluster object as af-lab keeps it: its own connection presents the cluster's client
        certificate (not ``security=``, which dask-jobqueue would put into the job's arguments with the
        server's paths; jobs use their shipped copies), and closing the object at interpreter exit does not
        remove the jobs (the scheduler outlives a server restart)."""
        cluster.security = self.tls.security("client")
        cluster.shutdown_on_close = False
        return cluster


# dask-jobqueue's text for a failed submit command: its exit code and stderr.
_FAILED_COMMAND = re.compile(r"Exit code: (-?\d+)\n.*?\nstderr:\n(.*)\Z", re.S)


class LedgerJob:
    """Mixin (before the dask-jobqueue job class) for af-lab's batch jobs: each job reports to the
    cluster's ledger when submitted, removed or refused, and a refused submit becomes the batch
    system's typed error (``command_failed``) with the command's own stderr."""

    def __init__(self, *args, on_submitted: Callable[[str, str], None] | None = None,
                 on_removed: Callable[[str, str], None] | None = None,
                 on_failed: Callable[[str, str], None] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._on_submitted, self._on_removed, self._on_failed = on_submitted, on_removed, on_failed

    def command_failed(self, exit_code: int, stderr: str) -> Exception:
        raise NotImplementedError

    async def start(self) -> None:
        try:
            await super().start()
        except BaseException as exc:
            self.status = Status.failed  # SpecCluster asserts every job it created ends closed or failed
            match = _FAILED_COMMAND.search(str(exc)) if isinstance(exc, RuntimeError) else None
            if match is not None:
                failure = self.command_failed(int(match.group(1)), match.group(2))
                if self._on_failed:
                    self._on_failed(self.name, str(getattr(failure, "message", failure)))
                raise failure from None
            raise
        if self._on_submitted:
            self._on_submitted(self.name, self.job_id)

    async def close(self) -> None:
        await super().close()
        if self._on_removed and self.job_id:
            self._on_removed(self.name, self.job_id)


class Backend:
    """Base class; subclasses set ``name`` and implement the four methods."""

    name = ""
    #: what the jobs view says when the backend has no batch jobs (None: it has)
    no_jobs_message: str | None = None

    def build(self, ctx: BackendContext) -> SpecCluster:
        """The (unstarted) dask cluster object; the service awaits it."""
        raise NotImplementedError

    async def list_jobs(self, ctx: BackendContext) -> dict[str, JobState]:
        """The cluster's jobs still known to the batch system, by job id, found by the cluster's tag."""
        raise NotImplementedError

    async def remove_jobs(self, ctx: BackendContext) -> None:
        """Remove every job carrying the cluster's tag; "nothing to remove" is success."""
        raise NotImplementedError

    async def remove_job(self, ctx: BackendContext, job_id: str) -> None:
        """Remove one job (found by tag but unknown to af-lab's ledger after a crash)."""
        raise NotImplementedError

    def summarize(self, jobs: dict[str, JobState]) -> str:
        """'2 idle, 1 held (reason)' for messages."""
        counts: dict[str, int] = {}
        reasons = []
        for job in jobs.values():
            counts[job.status] = counts.get(job.status, 0) + 1
            if job.reason and job.status != "running":
                reasons.append(job.reason)
        text = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no job in the queue"
        if reasons:
            text += f" (reason: {reasons[0]})"
        return text

    # ------------------------------------------------------------------ shared helpers
    @staticmethod
    def adopt_jobs(cluster: SpecCluster, jobs: dict[str, str]) -> None:
        """Give a reattached cluster its running jobs back ({worker name: job id}), so scale/close reach them."""
        spec = cluster.new_spec
        for name, job_id in jobs.items():
            job = spec["cls"](cluster.scheduler.address, name=name, **spec.get("options", {}))
            job.job_id = job_id
            job.status = Status.running
            cluster.workers[name] = job
            cluster.worker_spec[name] = dict(spec)


def jobs_model(backend: Backend, jobs: dict[str, JobState], ledger: dict[str, dict[str, Any]],
               connected: set[str]) -> dict[str, Any]:
    """The REST ``jobs`` rows and counts from the queue's answer and af-lab's ledger."""
    known = dict(ledger)
    for job_id in jobs:
        known.setdefault(job_id, {"name": None, "submitted": None, "removed": None})
    rows = []
    for job_id, info in known.items():
        q = jobs.get(job_id)
        if q is not None:
            status, since, reason, code = q.status, q.since, q.reason, q.exit_code
        else:
            status, since, reason, code = ("removed" if info["removed"] else "done"), info["removed"], None, None
        rows.append({
            "job_id": job_id, "worker": info["name"], "status": status, "since": since,
            "hold_reason": reason if status == "held" else None, "reason": reason, "exit_code": code,
            "connected": str(info["name"]) in connected,
        })
    rows.sort(key=_job_sort_key)
    counts = {"submitted": len(rows), "idle": 0, "running": 0, "held": 0, "done": 0}
    for r in rows:
        key = {"removed": "done", "completed": "done", "failed": "done", "suspended": "idle",
               "pending": "idle"}.get(r["status"], r["status"])
        counts[key] = counts.get(key, 0) + 1
    return {"counts": counts, "jobs": rows, "message": backend.summarize(jobs)}


def _job_sort_key(row: dict[str, Any]) -> tuple:
    parts = str(row["job_id"]).replace("_", ".").split(".")
    return tuple(int(p) if p.isdigit() else 0 for p in parts)
