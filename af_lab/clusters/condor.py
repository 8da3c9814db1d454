"""The HTCondor command line, as af-lab uses it besides dask-jobqueue: job status and cleanup.

dask-jobqueue submits (``condor_submit``) and removes single jobs
(``condor_rm ID``) but never asks the queue anything. af-lab adds two calls,
both selecting jobs by the ``AFLabClusterId`` attribute every af-lab job
carries, so jobs whose ids were never recorded (a crash right after submit)
are still found:

* ``condor_q -constraint 'AFLabClusterId == "…"' -af:t ClusterId ProcId JobStatus EnteredCurrentStatus HoldReason``
* ``condor_rm -constraint 'AFLabClusterId == "…"'``

The commands come from ``$PATH`` with the profile's extra arguments (e.g.
``-name schedd.example.org -pool cm.example.org``), so the same code runs
against a real pool and against the test stand-in.
"""

from __future__ import annotations

import asyncio

from ..errors import AFLabError
from .backend import JobState

CLUSTER_ATTR = "AFLabClusterId"
STATUS_NAMES = {
    1: "idle",
    2: "running",
    3: "removed",
    4: "completed",
    5: "held",
    6: "running",  # transferring output
    7: "suspended",
}
AF_ATTRS = ("ClusterId", "ProcId", "JobStatus", "EnteredCurrentStatus", "HoldReason")
COMMAND_TIMEOUT_S = 60.0


class CondorCommandFailed(AFLabError):
    """A condor_* command failed; its stderr is what the user needs to see."""

    status = 502
    kind = "condor"

    def __init__(self, command: str, exit_code: int | None, stderr: str):
        text = stderr.strip() or "(no output)"
        super().__init__(f"{command} failed: {text}", command=command, exit_code=exit_code, stderr=stderr.strip())


def constraint_for(cluster_id: str) -> str:
    return f'{CLUSTER_ATTR} == "{cluster_id}"'


async def run(argv: list[str], timeout: float = COMMAND_TIMEOUT_S) -> tuple[int, str, str]:
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
    except FileNotFoundError:
        raise CondorCommandFailed(argv[0], None, f"{argv[0]} is not on PATH on the Jupyter server") from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise CondorCommandFailed(argv[0], None, f"no answer within {timeout:.0f} s") from None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


async def query(cluster_id: str, extra: list[str] | None = None) -> dict[str, JobState]:
    """The cluster's jobs still in the queue, by job id."""
    argv = ["condor_q", *(extra or []), "-constraint", constraint_for(cluster_id), "-af:t", *AF_ATTRS]
    code, out, err = await run(argv)
    if code != 0:
        raise CondorCommandFailed("condor_q", code, err)
    jobs = {}
    for line in out.splitlines():
        cols = line.split("\t")
        if len(cols) < 4 or not cols[0].isdigit():
            continue
        job_id = f"{cols[0]}.{cols[1]}"
        status = STATUS_NAMES.get(int(cols[2]) if cols[2].isdigit() else 0, "unknown")
        since = float(cols[3]) if cols[3].replace(".", "", 1).isdigit() else None
        reason = "\t".join(cols[4:]).strip() or None
        jobs[job_id] = JobState(job_id, status, since, None if reason in (None, "undefined") else reason)
    return jobs


async def remove_all(cluster_id: str, extra: list[str] | None = None) -> None:
    """Remove every job of the cluster; "nothing matched" counts as success."""
    argv = ["condor_rm", *(extra or []), "-constraint", constraint_for(cluster_id)]
    code, _out, err = await run(argv)
    if code != 0 and "Couldn't find" not in err:
        raise CondorCommandFailed("condor_rm", code, err)


async def remove_one(job_id: str, extra: list[str] | None = None) -> None:
    code, _out, err = await run(["condor_rm", *(extra or []), job_id])
    if code != 0 and "Couldn't find" not in err:
        raise CondorCommandFailed("condor_rm", code, err)
