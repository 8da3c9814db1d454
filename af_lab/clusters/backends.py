"""How each profile backend builds a Dask cluster object.

``local``: dask's ``LocalCluster`` inside the server (workers are its child
processes and die with it), everything on 127.0.0.1.

``htcondor``: dask-jobqueue's ``HTCondorCluster`` with two af-lab pieces:
:class:`SchedulerProcess` (the scheduler outlives a server restart) and
:class:`AFLabHTCondorJob` (every job carries ``AFLabClusterId``, ships the
bearer token file, reports its job id to the ledger the moment
``condor_submit`` returns, and turns a failed submit into an error that shows
condor_submit's stderr).
"""

from __future__ import annotations

import asyncio
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dask_jobqueue.htcondor import HTCondorCluster, HTCondorJob
from distributed import LocalCluster
from distributed.core import Status

from .condor import CLUSTER_ATTR, CondorCommandFailed
from .profiles import ClusterOptions, Profile
from .scheduler_process import LOOPBACK, SchedulerProcess
from .worker_token import ENV_VAR, FILE_NAME

DEFAULT_DEATH_TIMEOUT_S = 60


async def start_local(dask_name: str, options: ClusterOptions) -> LocalCluster:
    return await LocalCluster(
        name=dask_name,
        n_workers=0,
        threads_per_worker=options.cores,
        memory_limit=options.memory,
        processes=True,
        host=LOOPBACK,
        dashboard_address=f"{LOOPBACK}:0",
        worker_dashboard_address=None,
        silence_logs=False,  # never touch the server's logging configuration
        asynchronous=True,
    )


class AFLabHTCondorJob(HTCondorJob):
    """One HTCondor job = one Dask worker, with af-lab's bookkeeping hooks."""

    def __init__(
        self,
        *args,
        on_submitted: Callable[[str, str], None] | None = None,
        on_removed: Callable[[str, str], None] | None = None,
        on_failed: Callable[[str, str], None] | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self._on_submitted = on_submitted
        self._on_removed = on_removed
        self._on_failed = on_failed

    async def _submit_job(self, script_filename: str) -> str:
        # dask-jobqueue folds stderr into a RuntimeError text; keep it apart for the user.
        argv = [*shlex.split(self.submit_command), script_filename]
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise CondorCommandFailed("condor_submit", proc.returncode, err.decode(errors="replace"))
        return out.decode(errors="replace")

    async def start(self) -> None:
        try:
            await super().start()
        except BaseException as exc:
            self.status = Status.failed  # SpecCluster asserts every job it created ends closed or failed
            if self._on_failed and isinstance(exc, CondorCommandFailed):
                self._on_failed(self.name, exc.message)
            raise
        if self._on_submitted:
            self._on_submitted(self.name, self.job_id)

    async def close(self) -> None:
        await super().close()
        if self._on_removed and self.job_id:
            self._on_removed(self.name, self.job_id)


def htcondor_cluster(
    *,
    cluster_id: str,
    dask_name: str,
    profile: Profile,
    options: ClusterOptions,
    run_dir: Path,
    scheduler_env: dict[str, str],
    token_file: Path | None,
    on_submitted: Callable[[str, str], None],
    on_removed: Callable[[str, str], None],
    on_failed: Callable[[str, str], None],
    adopt: dict[str, Any] | None = None,
) -> HTCondorCluster:
    """An (unstarted) HTCondorCluster for this profile and options; ``await`` it to start."""
    s = profile.settings
    directives: dict[str, Any] = {}
    if options.gpus:
        directives["request_gpus"] = options.gpus
    if options.universe:
        directives["universe"] = options.universe
    if options.image:
        directives[s.get("image_directive", "container_image")] = options.image
    directives.update(s.get("job_extra_directives") or {})
    directives[f"MY.{CLUSTER_ATTR}"] = f'"{cluster_id}"'  # last: status and cleanup depend on it
    prologue = list(s.get("job_script_prologue") or [])
    if token_file is not None:
        # Shipped with the job, encrypted in transit; the path (never the token) goes in the environment.
        listed = [f for f in str(directives.get("transfer_input_files", "")).split(",") if f.strip()]
        directives["transfer_input_files"] = ",".join([*listed, str(token_file)])
        encrypted = [f for f in str(directives.get("encrypt_input_files", "")).split(",") if f.strip()]
        directives["encrypt_input_files"] = ",".join([*encrypted, str(token_file)])
        directives.setdefault("should_transfer_files", "YES")
        prologue.insert(0, f'export {ENV_VAR}="${{_CONDOR_SCRATCH_DIR:-$PWD}}/{FILE_NAME}"')
    log_dir = run_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    cluster = HTCondorCluster(
        name=dask_name,
        cores=options.cores,
        processes=1,
        memory=str(options.memory),
        disk=str(options.disk),
        python=s.get("python") or sys.executable,
        death_timeout=s.get("death_timeout", DEFAULT_DEATH_TIMEOUT_S),
        worker_extra_args=list(s.get("worker_extra_args") or []),
        job_script_prologue=prologue,
        job_extra_directives=directives,
        submit_command_extra=list(s.get("submit_command_extra") or []),
        cancel_command_extra=list(s.get("cancel_command_extra") or []),
        log_directory=str(log_dir),
        job_cls=AFLabHTCondorJob,
        on_submitted=on_submitted,
        on_removed=on_removed,
        on_failed=on_failed,
        scheduler_cls=SchedulerProcess,
        scheduler_options={
            "run_dir": str(run_dir),
            "host": s.get("scheduler_host", LOOPBACK),
            "adopt": adopt,
            "env": scheduler_env,
        },
        silence_logs=False,
        asynchronous=True,
    )
    # The scheduler is meant to outlive this object across a server restart:
    # dask's interpreter-exit hook must not close (and condor_rm) the cluster.
    cluster.shutdown_on_close = False
    return cluster


def adopt_jobs(cluster: HTCondorCluster, jobs: dict[str, str]) -> None:
    """Give a reattached cluster its running jobs back ({worker name: job id}), so scale/close reach them."""
    for name, job_id in jobs.items():
        job = cluster.job_cls(cluster.scheduler.address, name=name, **cluster._job_kwargs)
        job.job_id = job_id
        job.status = Status.running
        cluster.workers[name] = job
        cluster.worker_spec[name] = dict(cluster.new_spec)
        cluster._created.add(job)
