"""The SLURM command line, as af-lab uses it besides dask-jobqueue: job states and cleanup, by tag.

Every af-lab job is named after its cluster (``#SBATCH -J af-<cluster id>``, and
``--comment=af-lab:<cluster id>``), so the cluster's jobs are found by asking
SLURM, including jobs whose ids af-lab never recorded (a crash right after
``sbatch``):

* ``squeue -h -t all --name=af-<id> -o '%i|%T|%r|%V|%S'``  (state, pending reason, submit/start time)
* ``scontrol -o show job <id>``  (exit code and stderr file of a job that failed; no slurmdbd needed)
* ``scancel --name=af-<id>``  (everything the cluster has in the queue)

A profile may name its ``slurm_conf`` (``SLURM_CONF`` for these commands) and
``query_command_extra`` / ``cancel_command_extra`` (e.g. ``["-M", "cluster2"]``).
"""

from __future__ import annotations

import asyncio
import os
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import AFLabError
from .backend import Backend, BackendContext, JobState

if TYPE_CHECKING:
    from dask_jobqueue.slurm import SLURMCluster

JOB_NAME_PREFIX = "af-"
COMMENT_PREFIX = "af-lab:"
COMMAND_TIMEOUT_S = 30.0
STDERR_TAIL_CHARS = 2000
# SLURM state -> af-lab's words (the job list counts idle/running/held/done like HTCondor's).
STATES = {
    "PENDING": "pending", "CONFIGURING": "pending", "REQUEUED": "pending", "RESIZING": "pending",
    "RUNNING": "running", "COMPLETING": "running", "SUSPENDED": "suspended", "STOPPED": "suspended",
    "COMPLETED": "completed", "CANCELLED": "removed", "FAILED": "failed", "TIMEOUT": "failed",
    "NODE_FAIL": "failed", "OUT_OF_MEMORY": "failed", "BOOT_FAIL": "failed", "DEADLINE": "failed",
    "PREEMPTED": "removed", "REVOKED": "removed",
}
# What the SLURM client says when slurmctld cannot be reached.
UNREACHABLE = ("Unable to contact slurm controller", "Socket timed out", "Connection refused",
               "Zero Bytes were transmitted", "Unable to establish control machine")


class SlurmCommandFailed(AFLabError):
    """A SLURM command failed; 503 when slurmctld cannot be reached, else 502 with its stderr."""

    status = 502
    kind = "slurm"

    def __init__(self, command: str, exit_code: int | None, stderr: str):
        text = stderr.strip() or "(no output)"
        down = any(marker in text for marker in UNREACHABLE)
        message = f"SLURM is unavailable ({command}: {text})" if down else f"{command} failed: {text}"
        super().__init__(message, command=command, exit_code=exit_code, stderr=text)
        if down:
            self.status = 503


def job_name(cluster_id: str) -> str:
    return f"{JOB_NAME_PREFIX}{cluster_id}"


def _env(settings: dict[str, Any]) -> dict[str, str]:
    conf = settings.get("slurm_conf")
    return {**os.environ, "SLURM_CONF": str(conf)} if conf else dict(os.environ)


async def run(argv: list[str], settings: dict[str, Any], timeout: float = COMMAND_TIMEOUT_S) -> tuple[int, str, str]:
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=_env(settings),
        )
    except FileNotFoundError:
        raise SlurmCommandFailed(argv[0], None, f"{argv[0]} is not on PATH on the Jupyter server") from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise SlurmCommandFailed(argv[0], None, f"Unable to contact slurm controller: no answer within {timeout:.0f} s") from None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def _time(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


async def query(cluster_id: str, settings: dict[str, Any]) -> dict[str, JobState]:
    """The cluster's jobs SLURM still knows (also finished ones, for ``MinJobAge``), by job id."""
    extra = list(settings.get("query_command_extra") or [])
    argv = ["squeue", *extra, "-h", "-t", "all", f"--name={job_name(cluster_id)}", "-o", "%i|%T|%r|%V|%S"]
    code, out, err = await run(argv, settings)
    if code != 0:
        raise SlurmCommandFailed("squeue", code, err)
    jobs: dict[str, JobState] = {}
    for line in out.splitlines():
        cols = line.strip().split("|")
        if len(cols) < 5 or not cols[0].isdigit():
            continue
        status = STATES.get(cols[1], cols[1].lower())
        reason = cols[2] if status == "pending" and cols[2] not in ("None", "") else None
        since = _time(cols[4]) if status != "pending" else _time(cols[3])
        jobs[cols[0]] = JobState(cols[0], status, since, reason)
    failed = [j for j in jobs.values() if j.status == "failed"]
    await asyncio.gather(*(_add_exit_details(j, settings) for j in failed))
    return jobs


async def _add_exit_details(job: JobState, settings: dict[str, Any]) -> None:
    """Exit code and stderr tail of a failed job, from ``scontrol show job`` and the job's stderr file."""
    code, out, _err = await run(["scontrol", "-o", "show", "job", job.job_id], settings)
    if code != 0:
        return
    fields = dict(f.split("=", 1) for f in out.split() if "=" in f)
    exit_code = fields.get("ExitCode", "")
    if exit_code.split(":")[0].isdigit():
        job.exit_code = int(exit_code.split(":")[0])
    path = fields.get("StdErr")
    if path:  # scontrol shows the pattern as given to sbatch; the job's stderr tail is the reason shown
        for pattern, value in (("%J", job.job_id), ("%j", job.job_id), ("%x", fields.get("JobName", ""))):
            path = path.replace(pattern, value)
        job.reason = read_tail(path) or job.reason


def read_tail(path: str, limit: int = STDERR_TAIL_CHARS) -> str | None:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(fh.tell() - limit, 0))
            return fh.read().decode(errors="replace").strip() or None
    except OSError:
        return None


async def remove_all(cluster_id: str, settings: dict[str, Any]) -> None:
    """Cancel every job of the cluster (by its tag); "nothing matched" counts as success."""
    extra = list(settings.get("cancel_command_extra") or [])
    code, _out, err = await run(["scancel", *extra, f"--name={job_name(cluster_id)}"], settings)
    if code != 0:
        raise SlurmCommandFailed("scancel", code, err)


async def remove(job_ids: list[str], settings: dict[str, Any]) -> None:
    """Cancel the given jobs (ones found by tag that af-lab has no record of)."""
    if not job_ids:
        return
    extra = list(settings.get("cancel_command_extra") or [])
    code, _out, err = await run(["scancel", *extra, *job_ids], settings)
    if code != 0 and "Invalid job id" not in err:
        raise SlurmCommandFailed("scancel", code, err)


def summarize(jobs: dict[str, JobState]) -> str:
    """'1 pending (Resources), 2 running, 1 failed (exit code 127: …)' for messages."""
    counts: dict[str, int] = {}
    for job in jobs.values():
        counts[job.status] = counts.get(job.status, 0) + 1
    parts = []
    for state, n in sorted(counts.items()):
        part = f"{n} {state}"
        if state == "pending":
            reasons = sorted({j.reason for j in jobs.values() if j.status == "pending" and j.reason})
            part += f" ({', '.join(reasons)})" if reasons else ""
        if state == "failed":
            job = next(j for j in jobs.values() if j.status == "failed")
            last = (job.reason or "").strip().splitlines()[-1:] or ["no stderr"]
            part += f" (job {job.job_id}: exit code {job.exit_code}: {last[0]})"
        parts.append(part)
    return ", ".join(parts) or "no job in the queue"


class SlurmBackend(Backend):
    """Workers are SLURM jobs (:mod:`.slurm_job`); states and cleanup by the job name ``af-<cluster id>``."""

    name = "slurm"

    def build(self, ctx: BackendContext) -> SLURMCluster:
        from .slurm_job import slurm_cluster

        return slurm_cluster(ctx)

    async def list_jobs(self, ctx: BackendContext) -> dict[str, JobState]:
        return await query(ctx.cluster_id, ctx.settings)

    async def remove_jobs(self, ctx: BackendContext) -> None:
        await remove_all(ctx.cluster_id, ctx.settings)

    async def remove_job(self, ctx: BackendContext, job_id: str) -> None:
        await remove([job_id], ctx.settings)

    def summarize(self, jobs: dict[str, JobState]) -> str:
        return summarize(jobs)
