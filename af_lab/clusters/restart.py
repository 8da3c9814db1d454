"""After a server restart (or crash): reattach each cluster to its scheduler and jobs, or clean it up.

A cluster whose scheduler process is the same one (pid + start time) and
answers with the same scheduler id is reattached: its jobs are listed *by tag*
(the backend's ``list_jobs``); those in af-lab's ledger are adopted, tagged
jobs af-lab never recorded (a crash right after submit) are removed. Otherwise
the scheduler (if any) is killed and every tagged job removed; the cluster
stays listed as failed (or stopped, when it went idle) until dismissed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any

from . import idle
from .managed import LIVE, ManagedCluster
from .profiles import ClusterOptions, Profile
from .scheduler_process import same_process_alive


async def restore(service) -> None:
    """Every record owned by a dead server: reattach to its scheduler and jobs, or remove what is left."""
    for record in service.store.load_all():
        owner = record.get("owner") or {}
        if _other_server_owns(service, owner):
            continue  # another live server (same state_dir) runs it
        try:
            await _restore_one(service, record)
        except Exception:
            service.log.exception("af-lab: restoring cluster %s failed", record.get("id"))

def _other_server_owns(service, owner: dict[str, Any]) -> bool:
    if owner.get("instance") == service.owner["instance"]:
        return False
    mine = owner.get("pid") == service.owner["pid"] and owner.get("start_ticks") == service.owner["start_ticks"]
    return not mine and same_process_alive(owner.get("pid"), owner.get("start_ticks"))

async def _restore_one(service, record: dict[str, Any]) -> None:
    p = record["profile"]
    profile = service.profiles.get(p["name"])
    if profile is None or profile.backend != p["backend"]:  # profile gone from config: keep what it was
        profile = Profile(p["name"], p["backend"], p["display_name"], "", p.get("defaults", {}),
                          p.get("limits", {}), p.get("settings", {}))
    mc = ManagedCluster(record["id"], record["name"], profile, ClusterOptions.from_json(record["options"]),
                        service.store.run_dir(record["id"]))
    mc.dask_name = record["dask_name"]
    mc.created = record["created"]
    mc.state, mc.message = record["state"], record.get("message", "")
    mc.requested = record.get("requested", 0)
    mc.adapt = (record["adapt"]["minimum"], record["adapt"]["maximum"]) if record.get("adapt") else None
    mc.scheduler_info = record.get("scheduler") or {}
    mc.jobs = record.get("jobs") or {}
    mc.cleanup_pending = record.get("cleanup_pending", False)
    mc.python = (record.get("environment") or {}).get("python") or mc.python
    mc.on_change = lambda: service._save(mc)
    service._clusters[mc.id] = mc
    service._counter += 1  # default names stay unique across restarts

    if mc.state not in LIVE and mc.state != "stopping":
        if mc.cleanup_pending:
            await service._cleanup_jobs(mc)
        return
    try:
        await _reattach(service, mc)
    except Exception as exc:
        await _abandon(service, mc, reason_of(exc))

async def _reattach(service, mc: ManagedCluster) -> None:
    if mc.state != "running" or not mc.scheduler_info.get("pid"):
        raise RuntimeError(f"it was {mc.state} when the server stopped")
    await asyncio.wait_for(service._start_backend(mc, adopt=mc.scheduler_info), 30)
    queued = await service._queue(mc)
    adopted = {}
    for name, job_id in mc.live_jobs().items():
        if job_id in queued and queued[job_id].status not in ("removed", "completed", "failed"):
            adopted[name] = job_id
        else:
            mc.jobs[job_id]["removed"] = time.time()  # left the queue while we were away
    backend = service.backends[mc.backend]
    for job_id, job in queued.items():  # tagged but never recorded (a crash right after submit)
        if job_id not in mc.jobs and job.status not in ("removed", "completed", "failed"):
            await backend.remove_job(mc.ctx, job_id)
            service.log.info("af-lab: cluster %s: removed job %s it never recorded", mc.id, job_id)
    backend.adopt_jobs(mc.cluster, adopted)
    mc.state = "running"
    if mc.adapt:
        service._apply_adapt(mc, mc.adapt)
    elif mc.requested > len(adopted):
        await service._scale(mc, mc.requested)
    mc.message = f"Reattached after a server restart ({len(adopted)} running job(s) kept)."
    service._save(mc)
    service.log.info("af-lab: cluster %s reattached to scheduler %s with %d job(s)", mc.id, mc.scheduler_address,
                  len(adopted))

async def _abandon(service, mc: ManagedCluster, reason: str) -> None:
    """The scheduler cannot be reattached: stop what is left of it, remove every job."""
    info = mc.scheduler_info
    if same_process_alive(info.get("pid"), info.get("start_ticks")):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(info["pid"], signal.SIGKILL)
    if mc.cluster is not None:
        with contextlib.suppress(Exception):
            await service._forget(mc)
        mc.cluster = None
    n = len(mc.live_jobs())
    failed = await service._cleanup_jobs(mc)
    done = f" {failed}" if failed else f" Its {n} batch job(s) were removed." if n else ""
    if idle.CLOSE_REASON in read_tail(mc.run_dir / "scheduler.log"):
        mc.state = "stopped"
        mc.message = (
            f"It was shut down after {service.config.cluster_idle_timeout:g} s without tasks "
            f"while the server was stopped.{done}"
        )
    else:
        mc.state, mc.message = "failed", f"It could not be reattached after a server restart: {reason}.{done}"
    service._save(mc)
    service.log.warning("af-lab: cluster %s: %s", mc.id, mc.message)


def reason_of(exc: BaseException) -> str:
    """The message a user needs: dask wraps start failures in "Cluster failed to start: ..."."""
    inner = exc.__cause__ if isinstance(exc, RuntimeError) and exc.__cause__ else exc
    return str(inner) or type(inner).__name__


def read_tail(path: Path, limit: int = 4000) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(fh.tell() - limit, 0))
            return fh.read().decode(errors="replace")
    except OSError:
        return ""
