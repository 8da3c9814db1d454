"""The ``local`` backend: workers are processes on this machine, managed like batch jobs.

Same design as the batch backends: the scheduler is af-lab's
:class:`~.scheduler_process.SchedulerProcess`, and each worker is a "job" — a
``dask worker`` process (with its nanny) in its own session, started with the
cluster's environment's Python, TLS certificates and an allow-listed
environment. The job id is the process id; the tag is ``AFLAB_CLUSTER_ID`` in
the process environment, so af-lab finds (and adopts or removes) the
cluster's workers after a restart without having recorded them. Local
clusters therefore survive a server restart like batch clusters.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from distributed.core import Status
from distributed.deploy.spec import ProcessInterface, SpecCluster

from ..errors import ServiceUnavailable
from ..paths import private_file
from . import tls
from .backend import TAG_ENV, Backend, BackendContext, JobState
from .scheduler_process import SchedulerProcess, proc_start_ticks

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
DEATH_TIMEOUT_S = 60


class WorkerFailedToStart(ServiceUnavailable):
    """A local worker exited (or never registered) at start; the message ends with its log's tail."""


def _tagged(pid: int, cluster_id: str) -> bool:
    """True if ``pid`` runs and carries the cluster's tag (so a reused pid is never touched)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"{TAG_ENV}={cluster_id}".encode() in environ.split(b"\0") and proc_start_ticks(pid) is not None


class LocalWorkerJob(ProcessInterface):
    """One ``dask worker`` process group = one job; ``job_id`` is its pid."""

    def __init__(
        self,
        scheduler: str,
        name: str,
        *,
        cluster_id: str,
        python: str,
        env: dict[str, str],
        cores: int,
        memory: int,
        run_dir: str,
        death_timeout: float = DEATH_TIMEOUT_S,
        on_submitted: Callable[[str, str], None] | None = None,
        on_removed: Callable[[str, str], None] | None = None,
        on_failed: Callable[[str, str], None] | None = None,
    ):
        super().__init__()
        self.scheduler = scheduler
        self.name = str(name)
        self.cluster_id = cluster_id
        self.python = python
        self.env = env
        self.cores = cores
        self.memory = memory
        self.run_dir = Path(run_dir)
        self.death_timeout = death_timeout
        self.job_id: str | None = None
        self._on_submitted, self._on_removed, self._on_failed = on_submitted, on_removed, on_failed

    async def start(self) -> None:
        logs = self.run_dir / "logs"
        logs.mkdir(mode=0o700, exist_ok=True)
        log_path = logs / f"worker-{self.name}.log"
        argv = [
            self.python, "-m", "distributed.cli.dask_worker", self.scheduler,
            "--name", self.name, "--nthreads", str(self.cores), "--nworkers", "1",
            "--memory-limit", str(self.memory), "--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0",
            "--death-timeout", str(self.death_timeout),
            "--local-directory", str(self.run_dir / "workers"),
        ]  # fmt: skip
        with open(private_file(log_path), "wb") as log:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                env={**self.env, TAG_ENV: self.cluster_id}, start_new_session=True,
                cwd=str(self.run_dir), umask=0o077,  # the worker's files (scratch space, spills) are the user's only
            )
        self.job_id = str(proc.pid)
        if self._on_submitted:
            self._on_submitted(self.name, self.job_id)
        deadline = time.monotonic() + START_TIMEOUT_S
        while proc.poll() is None and time.monotonic() < deadline:
            if b"Registered to:" in log_path.read_bytes()[-20000:]:
                break
            await asyncio.sleep(0.05)
        if proc.poll() is not None or time.monotonic() >= deadline:
            self.status = Status.failed
            tail = log_path.read_bytes()[-600:].decode(errors="replace").strip()
            message = f"worker {self.name} did not start (exit code {proc.poll()}): {tail}"
            await self.close()
            if self._on_failed:
                self._on_failed(self.name, message)
            raise WorkerFailedToStart(message)
        await super().start()

    async def close(self) -> None:
        if self.job_id:
            await stop_group(int(self.job_id), self.cluster_id)
            if self._on_removed:
                self._on_removed(self.name, self.job_id)
        await super().close()


async def stop_group(pid: int, cluster_id: str) -> None:
    """SIGTERM the worker's process group, SIGKILL after STOP_TIMEOUT_S; only if it carries our tag."""
    if not _tagged(pid, cluster_id):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while _tagged(pid, cluster_id) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # our child when we started it: reap it
        await asyncio.sleep(0.05)
    if _tagged(pid, cluster_id):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


class LocalBackend(Backend):
    name = "local"

    def build(self, ctx: BackendContext) -> SpecCluster:
        env = {**ctx.env, **tls.worker_env(str(ctx.tls.directory))}
        worker = {
            "cls": LocalWorkerJob,
            "options": {
                "cluster_id": ctx.cluster_id, "python": ctx.python, "env": env,
                "cores": ctx.options.cores, "memory": ctx.options.memory, "run_dir": str(ctx.run_dir),
                "death_timeout": ctx.settings.get("death_timeout", DEATH_TIMEOUT_S),
                "on_submitted": ctx.on_submitted, "on_removed": ctx.on_removed, "on_failed": ctx.on_failed,
            },
        }
        cluster = SpecCluster(
            workers={},
            scheduler={"cls": SchedulerProcess, "options": ctx.scheduler_options()},
            worker=worker,
            security=ctx.tls.security("client"),
            name=ctx.dask_name,
            silence_logs=False,
            asynchronous=True,
        )
        cluster.shutdown_on_close = False  # the workers outlive this object across a server restart
        return cluster

    async def list_jobs(self, ctx: BackendContext) -> dict[str, JobState]:
        return await asyncio.to_thread(_tagged_groups, ctx.cluster_id)

    async def remove_jobs(self, ctx: BackendContext) -> None:
        for job_id in await self.list_jobs(ctx):
            await stop_group(int(job_id), ctx.cluster_id)

    async def remove_job(self, ctx: BackendContext, job_id: str) -> None:
        await stop_group(int(job_id), ctx.cluster_id)


def _tagged_groups(cluster_id: str) -> dict[str, JobState]:
    """The cluster's worker process groups (their leaders), found by tag in the process table."""
    jobs = {}
    uid = os.getuid()
    ticks = os.sysconf("SC_CLK_TCK")
    boot = _boot_time()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            if entry.stat().st_uid != uid or os.getpgid(pid) != pid or not _tagged(pid, cluster_id):
                continue
        except OSError:
            continue
        started = proc_start_ticks(pid)
        jobs[str(pid)] = JobState(str(pid), "running", boot + started / ticks if started and boot else None)
    return jobs


def _boot_time() -> float | None:
    with contextlib.suppress(OSError, ValueError, StopIteration):
        line = next(x for x in Path("/proc/stat").read_text().splitlines() if x.startswith("btime "))
        return float(line.split()[1])
    return None
