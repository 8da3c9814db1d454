"""The cluster service: af-lab's one owner of the user's Dask clusters.

It creates clusters from profiles (:mod:`.profiles`), scales and adapts them,
reports HTCondor job states (:mod:`.condor`), ships and refreshes the bearer
token on workers (:mod:`.worker_token`), persists every cluster
(:mod:`.store`) and, after a server restart, reattaches to a live scheduler or
removes the cluster's jobs. A background check every
``cluster_monitor_interval`` seconds notices a dead or idle-closed scheduler,
workers that do not connect, and fresher tokens.

Plain asyncio; the REST handlers and dask-labextension (:mod:`.labextension`)
are two thin views on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import cloudpickle
from distributed.core import Status
from distributed.deploy.cluster import Cluster

from ..config import AFLab
from ..errors import AFLabError, BadRequest, Conflict, NotFound, ServiceUnavailable
from . import condor, idle, labextension, slurm, worker_token
from .backends import adopt_jobs, htcondor_cluster, start_local
from .condor import CondorCommandFailed
from .managed import LIVE, ManagedCluster
from .profiles import ClusterOptions, OverLimit, Profile, adapt_json, check_name, load_profiles, pick
from .scheduler_process import proc_start_ticks, same_process_alive
from .slurm_job import slurm_cluster
from .store import ClusterStore

# Schedulers and workers unpickle af-lab's plugins without af-lab installed.
cloudpickle.register_pickle_by_value(worker_token)
cloudpickle.register_pickle_by_value(idle)

CLOSE_TIMEOUT_S = 60.0
LOCAL_START_TIMEOUT_S = 60.0
WAIT_POLL_S = 0.02  # in-memory check; keeps "scale and wait" within a frame of the real time
MAX_ADAPT_SUBMIT_FAILURES = 3
# Environment variables that carry the session's own credentials: the scheduler process does not inherit them.
ALWAYS_SECRET_ENV = ("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN", "JUPYTER_TOKEN")
BATCH = ("htcondor", "slurm")  # backends whose workers are batch jobs found by the cluster's tag
JOB_QUERY_ERRORS = (CondorCommandFailed, slurm.SlurmCommandFailed)


class WorkersDidNotConnect(AFLabError):
    status = 504
    kind = "timeout"


class ClusterService:
    def __init__(self, config: AFLab, log: logging.Logger | None = None, credentials=None):
        self.config = config
        self.log = log or logging.getLogger("af_lab")
        self.credentials = credentials
        self.profiles, self.profile_errors = load_profiles(config.cluster_profiles)
        for problem in self.profile_errors:
            self.log.error("af-lab: %s", problem)
        self.default_profile = (
            config.default_cluster_profile if config.default_cluster_profile in self.profiles
            else next(iter(self.profiles), "")
        )
        self.store = ClusterStore(config.state_dir, self.log)
        self._clusters: dict[str, ManagedCluster] = {}
        self._started: asyncio.Future | None = None
        self._monitor: asyncio.Task | None = None
        self._closed = False
        self._counter = 0
        self.owner = {"pid": os.getpid(), "start_ticks": proc_start_ticks(os.getpid()), "instance": uuid.uuid4().hex}
        self._bridge = labextension.install(self)

    # ================================================================== lifecycle
    async def ready(self) -> None:
        if self._started is None:
            self._started = asyncio.ensure_future(self._start())
        await asyncio.shield(self._started)

    async def _start(self) -> None:
        try:
            await self._restore()
        except Exception:
            self.log.exception("af-lab: restoring clusters failed")
        self._monitor = asyncio.ensure_future(self._monitor_loop())

    async def close(self) -> None:
        """Server shutdown: local clusters stop; HTCondor ones stay for the next server unless configured not to."""
        self._closed = True
        labextension.uninstall(self._bridge)
        if self._monitor:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        if self._started and not self._started.done():
            self._started.cancel()
        for mc in list(self._clusters.values()):
            keep = self.config.cluster_survive_restart and mc.backend in BATCH and mc.state in LIVE
            try:
                if keep:
                    await self._detach(mc)
                    self._save(mc)
                elif mc.state in LIVE:
                    failed = await self._teardown(mc)
                    if failed:  # the next server start retries
                        mc.state, mc.message = "failed", f"It was shut down with the server. {failed}"
                        self._save(mc)
                    else:
                        self.store.delete(mc.id)
            except Exception:
                self.log.exception("af-lab: stopping cluster %s failed", mc.id)

    # ================================================================== queries
    def profiles_json(self) -> dict[str, Any]:
        return {
            "default": self.default_profile,
            "profiles": [p.form() for p in self.profiles.values()],
            "errors": list(self.profile_errors),
        }

    async def list(self) -> list[dict[str, Any]]:
        await self.ready()
        return [mc.model() for mc in sorted(self._clusters.values(), key=lambda c: c.created)]

    async def get(self, cluster_id: str) -> dict[str, Any]:
        await self.ready()
        return self._get(cluster_id).model()

    def _get(self, cluster_id: str) -> ManagedCluster:
        mc = self._clusters.get(cluster_id)
        if mc is None:
            raise NotFound(f"there is no cluster {cluster_id!r}", cluster=cluster_id)
        return mc

    def _get_live(self, cluster_id: str) -> ManagedCluster:
        mc = self._get(cluster_id)
        if mc.state not in LIVE or mc.cluster is None:
            raise Conflict(f"cluster {mc.name!r} is {mc.state}: {mc.message or 'it cannot be changed'}", state=mc.state)
        return mc

    def labextension_models(self) -> list[dict[str, Any]]:
        return [m for m in (self.labextension_model(i) for i in list(self._clusters)) if m]

    def labextension_model(self, cluster_id: str) -> dict[str, Any] | None:
        """dask-labextension's model (its list, scale dialog and dashboard proxy read this)."""
        mc = self._clusters.get(cluster_id)
        if mc is None or mc.state not in LIVE:
            return None
        m = mc.model()
        model = {k: m[k] for k in ("id", "name", "scheduler_address", "dashboard_link", "workers", "memory", "cores")}
        if mc.adapt:
            model["adapt"] = adapt_json(mc.adapt)
        return model

    # ================================================================== create
    async def create(self, profile_name: str | None, form: dict[str, Any], name: str | None = None) -> dict[str, Any]:
        await self.ready()
        if self._closed:
            raise ServiceUnavailable("the server is shutting down")
        profile = pick(self.profiles, profile_name, self.default_profile)
        name = check_name(name)
        options = profile.validate(dict(form))
        cap = profile.limits.get("max_clusters")
        live = [c for c in self._clusters.values() if c.profile.name == profile.name and c.state in LIVE]
        if cap is not None and len(live) >= cap:
            raise OverLimit(
                f"profile {profile.name!r} allows {cap} cluster(s) at a time (limit max_clusters); "
                "shut one down first",
                field="profile", limit="max_clusters", value=len(live) + 1, maximum=cap,
            )
        cluster_id = str(uuid.uuid4())  # dask-labextension's routes expect a UUID
        self._counter += 1
        mc = ManagedCluster(cluster_id, name or f"{profile.display_name} {self._counter}", profile, options,
                            self.store.run_dir(cluster_id))
        mc.on_change = lambda: self._save(mc)
        self._clusters[cluster_id] = mc
        self._save(mc)  # before any process starts: a crash from here on leaves a record to clean up
        try:
            async with mc.lock:
                await self._start_backend(mc)
                self._touch(mc)  # the idle clock starts now, not when the scheduler process did
                if options.adapt:
                    self._apply_adapt(mc, options.adapt)
                elif options.workers:
                    await self._scale(mc, options.workers)
                mc.state = "running"
                self._save(mc)
        except BaseException as exc:
            # All or nothing: a cluster whose first workers could not be requested is not left behind,
            # unless its jobs could not be removed: then it stays listed (failed) and is retried.
            failed = None
            with contextlib.suppress(Exception):
                failed = await self._teardown(mc)
            if failed:
                mc.state, mc.message = "failed", f"It could not start. {failed}"
                self._save(mc)
            else:
                self._clusters.pop(cluster_id, None)
                self.store.delete(cluster_id)
            if isinstance(exc, RuntimeError):
                raise ServiceUnavailable(f"the cluster could not start: {_reason(exc)}") from None
            raise
        self.log.info("af-lab: cluster %s (%s, profile %s) started at %s", mc.name, cluster_id, profile.name,
                      mc.scheduler_address)
        return mc.model()

    async def _start_backend(self, mc: ManagedCluster, adopt: dict[str, Any] | None = None) -> None:
        if mc.backend == "local":
            mc.cluster = await start_local(mc.dask_name, mc.options)
            mc.scheduler_info = {"address": mc.cluster.scheduler.address, "dashboard_link": mc.cluster.dashboard_link}
        else:
            token_file = None
            if self._ships_token(mc):
                token, exp = await self.credentials.bearer_token()  # Unauthorized: no workers without a token
                worker_token.write_private(str(mc.token_file), token)
                token_file = mc.token_file
            build = slurm_cluster if mc.backend == "slurm" else htcondor_cluster
            cluster = build(
                cluster_id=mc.id, dask_name=mc.dask_name, profile=mc.profile, options=mc.options,
                run_dir=mc.run_dir, scheduler_env=self._scheduler_env(),
                token_file=token_file, on_submitted=mc.job_submitted, on_removed=mc.job_removed,
                on_failed=mc.job_failed, adopt=adopt,
            )
            mc.cluster = cluster
            await cluster
            scheduler = cluster.scheduler
            mc.scheduler_info = {**scheduler.info, "dashboard_link": scheduler.dashboard_link}
        if self.config.cluster_idle_timeout:
            # Idempotent: an adopted scheduler already has it, with the timeout it was created with.
            plugin = cloudpickle.dumps(idle.IdleShutdown(self.config.cluster_idle_timeout))
            await mc.cluster.scheduler_comm.register_scheduler_plugin(
                plugin=plugin, name=idle.PLUGIN_NAME, idempotent=True
            )
        if self._ships_token(mc):
            await self._refresh_token(mc, force=True)

    def _ships_token(self, mc: ManagedCluster) -> bool:
        return self.credentials is not None and mc.profile.settings.get("ship_token", True)

    def _scheduler_env(self) -> dict[str, str]:
        secret = {*ALWAYS_SECRET_ENV, self.config.vault_jwt_env, self.config.vault_token_env}
        return {k: v for k, v in os.environ.items() if k not in secret}

    # ================================================================== scale / adapt
    async def scale(self, cluster_id: str, workers: Any, wait: Any = None) -> dict[str, Any]:
        await self.ready()
        mc = self._get_live(cluster_id)
        n = mc.profile.validate_workers(workers)
        async with mc.lock:
            await self._scale(mc, n)
        if wait is not None:
            await self._wait_for_workers(mc, n, _seconds(wait, "wait"))
        return mc.model()

    async def _scale(self, mc: ManagedCluster, n: int) -> None:
        cluster = mc.cluster
        self._touch(mc)
        if cluster._adaptive is not None:
            cluster._adaptive.stop()
            cluster._adaptive = None
        mc.adapt = None
        mc.requested = n
        mc.warnings = []
        cluster.scale(n)
        try:
            # Submits (or retires) now, so a failure reaches the caller; local workers are started here.
            await self._while_alive(mc, cluster._correct_state(), LOCAL_START_TIMEOUT_S if mc.backend == "local" else None)
        finally:
            self._drop_failed_jobs(mc)
            mc.requested = len(cluster.worker_spec)
            self._touch(mc)  # again: a slow start must not count as idle time
            self._save(mc)

    async def _while_alive(self, mc: ManagedCluster, work, timeout: float | None) -> None:
        """Await ``work`` (workers starting): the idle clock stands still meanwhile, and a scheduler
        that goes away (a worker would then wait for it forever) or ``timeout`` ends the wait."""
        task = asyncio.ensure_future(work)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not (await asyncio.wait([task], timeout=0.5))[0]:
                self._touch(mc)
                if not mc.scheduler_alive():
                    raise ServiceUnavailable("the cluster's scheduler stopped while its workers were starting")
                if deadline is not None and time.monotonic() > deadline:
                    raise ServiceUnavailable(f"the workers did not start within {timeout:g} s")
            task.result()
        finally:
            if not task.done():
                task.cancel()

    def _touch(self, mc: ManagedCluster) -> None:
        """Restart the cluster's idle clock (kept on the scheduler, see :mod:`.idle`); one call in flight."""
        if not self.config.cluster_idle_timeout or mc.cluster is None:
            return
        if mc.touch is not None and not mc.touch.done():
            return
        mc.touch = asyncio.ensure_future(asyncio.wait_for(
            mc.cluster.scheduler_comm.set_metadata(keys=idle.LAST_ACTION_KEY, value=time.time()), 5
        ))
        mc.touch.add_done_callback(lambda t: t.cancelled() or t.exception())  # a dead scheduler is noticed elsewhere

    def _drop_failed_jobs(self, mc: ManagedCluster) -> int:
        """Forget workers whose job never got submitted, so dask does not count them as requested."""
        cluster = mc.cluster
        failed = [name for name, w in cluster.workers.items() if getattr(w, "status", None) == Status.failed]
        for name in failed:
            cluster.workers.pop(name, None)
            cluster.worker_spec.pop(name, None)
        return len(failed)

    async def adapt(self, cluster_id: str, adapt: Any) -> dict[str, Any]:
        await self.ready()
        self.adapt_now(cluster_id, adapt)
        return self._get(cluster_id).model()

    def adapt_now(self, cluster_id: str, adapt: Any) -> None:
        mc = self._get_live(cluster_id)
        bounds = mc.profile.validate_adapt(adapt)
        if bounds is None:  # stop adapting, keep the current size
            if mc.cluster._adaptive is not None:
                mc.cluster._adaptive.stop()
                mc.cluster._adaptive = None
            mc.adapt = None
            mc.requested = mc.planned_workers()
            self._save(mc)
            return
        self._apply_adapt(mc, bounds)

    def _apply_adapt(self, mc: ManagedCluster, bounds: tuple[int, int]) -> None:
        self._touch(mc)
        mc.cluster.adapt(minimum=bounds[0], maximum=bounds[1])
        mc.adapt = bounds
        mc.warnings = []
        self._save(mc)

    async def _wait_for_workers(self, mc: ManagedCluster, n: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(mc.connected_workers()) < n:
            if time.monotonic() > deadline or mc.state not in LIVE:
                have = len(mc.connected_workers())
                details: dict[str, Any] = {"workers": have, "requested": n}
                text = f"{have} of {n} workers connected within {timeout:g} s"
                if mc.backend in BATCH:
                    try:
                        jobs = await self._queue(mc)
                        text += f"; the cluster's jobs: {_ops(mc).summarize(jobs)}"
                        details["jobs"] = [j.to_json() for j in jobs.values()]
                    except JOB_QUERY_ERRORS as exc:
                        text += f"; the job states are unknown ({exc.message})"
                raise WorkersDidNotConnect(text, **details)
            await asyncio.sleep(WAIT_POLL_S)

    # ================================================================== delete
    async def delete(self, cluster_id: str) -> None:
        await self.ready()
        mc = self._get(cluster_id)
        async with mc.lock:
            if mc.state in LIVE:
                mc.state = "stopping"
                failed = await self._teardown(mc)
            else:
                failed = await self._cleanup_jobs(mc) if mc.cleanup_pending else None
            if failed:  # never forget a cluster whose jobs may still be in the queue
                mc.state, mc.message = "failed", f"It was shut down. {failed}"
                self._save(mc)
                raise ServiceUnavailable(f"cluster {mc.name!r} was shut down but its jobs are not removed yet: {failed}")
            self._clusters.pop(cluster_id, None)
            self.store.delete(cluster_id)
        self.log.info("af-lab: cluster %s (%s) shut down", mc.name, cluster_id)

    async def _teardown(self, mc: ManagedCluster) -> str | None:
        """Stop the cluster for good: workers, jobs (also any af-lab never recorded), scheduler.

        Returns why its jobs could not be removed, if they could not (the monitor retries).
        """
        cluster = mc.cluster
        if cluster is not None:
            if mc.scheduler_alive():
                try:
                    await asyncio.wait_for(cluster.close(), CLOSE_TIMEOUT_S)
                except Exception as exc:
                    self.log.warning("af-lab: closing cluster %s: %s", mc.id, _reason(exc))
            await self._forget(mc, stop_scheduler=True)
        if mc.backend in BATCH:
            return await self._cleanup_jobs(mc)
        return None

    async def _forget(self, mc: ManagedCluster, stop_scheduler: bool = False) -> None:
        """Drop the dask object without talking to its scheduler (gone, or staying for the next server).

        ``stop_scheduler``: make sure a scheduler process is gone too (a close that failed half-way).
        """
        cluster = mc.cluster
        if cluster is None:
            return
        if mc.touch is not None:
            mc.touch.cancel()
        scheduler = cluster.scheduler
        if hasattr(scheduler, "alive") and (stop_scheduler or not scheduler.alive()):
            await scheduler.close()  # SIGTERM/SIGKILL if still running; reaps our child process
        if mc.backend == "local" and cluster.status != Status.closed:
            # Its scheduler is gone: stop the nannies (and their worker processes) directly;
            # LocalCluster.close() would first wait for a connection to the dead scheduler.
            for nanny in list(cluster.workers.values()):
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(nanny.close(timeout=5), 15)
        with contextlib.suppress(Exception):
            await Cluster._close(cluster)  # comms and adaptive only: the base class neither scales nor terminates
        for job in list(cluster.workers.values()):
            job.status = Status.closed

    async def _detach(self, mc: ManagedCluster) -> None:
        await self._forget(mc)
        self.log.info("af-lab: cluster %s stays up for the next server (scheduler pid %s)", mc.id,
                      mc.scheduler_info.get("pid"))

    async def _cleanup_jobs(self, mc: ManagedCluster) -> str | None:
        """condor_rm / scancel every job of the cluster (by its tag); on failure remember to retry and say why."""
        try:
            if mc.backend == "slurm":
                await slurm.remove_all(mc.id, mc.profile.settings)
            else:
                await condor.remove_all(mc.id, mc.profile.settings.get("cancel_command_extra"))
        except JOB_QUERY_ERRORS as exc:
            mc.cleanup_pending = True
            self.log.warning("af-lab: cluster %s: %s (will retry)", mc.id, exc.message)
            self._save(mc)
            return f"Removing its jobs failed ({exc.message}); af-lab keeps trying."
        mc.cleanup_pending = False
        for job_id in mc.live_jobs().values():
            mc.jobs[job_id]["removed"] = time.time()
        self._save(mc)
        return None

    # ================================================================== job status
    async def jobs(self, cluster_id: str) -> dict[str, Any]:
        await self.ready()
        mc = self._get(cluster_id)
        out: dict[str, Any] = {"cluster": mc.id, "backend": mc.backend, "queried_at": time.time()}
        if mc.backend not in BATCH:
            return {**out, "counts": None, "jobs": [],
                    "message": "Local clusters run workers as processes of this server; there are no batch jobs."}
        queued = await self._queue(mc)
        connected = {w.get("name") for w in mc.connected_workers().values()}
        rows = []
        known = dict(mc.jobs)
        for job_id in queued:
            known.setdefault(job_id, {"name": None, "submitted": None, "removed": None})
        for job_id, info in known.items():
            q = queued.get(job_id)
            if q is not None:
                status, since, reason = q.status, q.since, q.hold_reason
            else:
                status, since, reason = ("removed" if info["removed"] else "done"), info["removed"], None
            rows.append({
                "job_id": job_id, "worker": info["name"], "status": status, "since": since,
                "hold_reason": reason, "connected": info["name"] in connected,
                **({"exit_code": q.exit_code, "stderr_tail": q.stderr_tail} if hasattr(q, "exit_code") else {}),
            })
        rows.sort(key=lambda r: tuple(int(x) for x in r["job_id"].split(".")))
        counts = {"submitted": len(rows), "idle": 0, "running": 0, "held": 0, "done": 0}
        for r in rows:
            key = {"removed": "done", "completed": "done", "suspended": "idle", "pending": "idle"}.get(
                r["status"], r["status"])
            counts[key] = counts.get(key, 0) + 1
        return {**out, "counts": counts, "jobs": rows, "message": _ops(mc).summarize(queued)}

    async def _queue(self, mc: ManagedCluster) -> dict[str, Any]:
        """The cluster's jobs in the queue; concurrent callers share one condor_q/squeue (no stale cache)."""
        if mc.queue_query is None or mc.queue_query.done():
            mc.queue_query = asyncio.ensure_future(
                slurm.query(mc.id, mc.profile.settings) if mc.backend == "slurm"
                else condor.query(mc.id, mc.profile.settings.get("query_command_extra"))
            )
        return await asyncio.shield(mc.queue_query)

    # ================================================================== background checks
    async def _monitor_loop(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.config.cluster_monitor_interval)
            for mc in list(self._clusters.values()):
                try:
                    await self._check(mc)
                except Exception:
                    self.log.exception("af-lab: checking cluster %s failed", mc.id)

    async def _check(self, mc: ManagedCluster) -> None:
        if mc.cleanup_pending and mc.state not in LIVE:
            await self._cleanup_jobs(mc)
            return
        if mc.state != "running" or mc.lock.locked():
            return
        if not mc.scheduler_alive():
            async with mc.lock:
                await self._scheduler_gone(mc)
            return
        if mc.backend in BATCH:
            self._drop_failed_jobs(mc)
            if mc.adapt and mc.submit_failures >= MAX_ADAPT_SUBMIT_FAILURES:
                self.adapt_now(mc.id, None)
                mc.warnings.append(f"Adaptive scaling was stopped after {mc.submit_failures} failed submissions; "
                                   "fix the error above, then adapt again.")
                self._save(mc)
        await self._check_pending(mc)
        if self._ships_token(mc):
            await self._refresh_token(mc)

    async def _scheduler_gone(self, mc: ManagedCluster) -> None:
        scheduler = mc.cluster.scheduler
        code = scheduler.exit_code() if hasattr(scheduler, "exit_code") else None
        if mc.backend == "local":
            plugin = scheduler.plugins.get(idle.PLUGIN_NAME)
            went_idle = bool(plugin and plugin.fired)
        else:
            went_idle = idle.CLOSE_REASON in _read_tail(mc.run_dir / "scheduler.log")
        if went_idle:
            state, why = "stopped", f"It was shut down after {self.config.cluster_idle_timeout:g} s without tasks."
        elif code == 0 or mc.backend == "local":  # an in-process scheduler only closes when told to
            state, why = "stopped", "Its scheduler was shut down (e.g. by client.shutdown() in a notebook)."
        else:
            how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}" if code else "unknown cause"
            state, why = "failed", f"Its scheduler died ({how})."
        await self._forget(mc)
        if mc.backend in BATCH:
            n = len(mc.live_jobs())
            failed = await self._cleanup_jobs(mc)
            why += f" {failed}" if failed else f" Its {n} batch job(s) were removed." if n else ""
        # State and message change together: a reader never sees one without the other.
        mc.state, mc.message = state, why
        mc.pending_since = mc.pending_message = None
        self._save(mc)
        self.log.warning("af-lab: cluster %s (%s): %s", mc.name, mc.id, why)

    async def _check_pending(self, mc: ManagedCluster) -> None:
        planned, connected = mc.planned_workers(), len(mc.connected_workers())
        if connected >= planned:
            mc.pending_since = mc.pending_message = None
            return
        now = time.time()
        if mc.pending_since is None:
            mc.pending_since = now
        timeout = float(mc.profile.settings.get("worker_start_timeout") or self.config.cluster_worker_start_timeout)
        if now - mc.pending_since < timeout:
            self._touch(mc)  # requested workers on their way count as activity, up to the start timeout
            return
        if mc.pending_message:
            return
        text = f"{planned - connected} of {planned} requested workers have not connected after {timeout:g} s"
        if mc.backend in BATCH:
            try:
                text += f"; the cluster's jobs: {_ops(mc).summarize(await self._queue(mc))}"
            except JOB_QUERY_ERRORS as exc:
                text += f"; the job states are unknown ({exc.message})"
        mc.pending_message = text
        self.log.warning("af-lab: cluster %s: %s", mc.id, text)

    async def _refresh_token(self, mc: ManagedCluster, force: bool = False) -> None:
        """Give the workers the credential service's current token whenever it changes."""
        try:
            token, exp = await self.credentials.bearer_token()
        except AFLabError as exc:
            if force and mc.backend in BATCH:
                raise
            if not mc.token or mc.token.get("state") != "unavailable":
                self.log.warning("af-lab: cluster %s: no bearer token for the workers: %s", mc.id, exc.message)
            mc.token = {**(mc.token or {}), "state": "unavailable",
                        "message": f"The workers' bearer token cannot be refreshed: {exc.message}"}
            return
        digest = hashlib.sha256(token.encode()).hexdigest()
        now = time.time()
        if force or digest != mc.token_digest:
            if mc.backend in BATCH:
                worker_token.write_private(str(mc.token_file), token)  # for jobs that start later
            plugin = cloudpickle.dumps(worker_token.BearerTokenPlugin(token, exp))
            replies = await mc.cluster.scheduler_comm.register_worker_plugin(
                plugin=plugin, name=worker_token.PLUGIN_NAME, idempotent=False
            )
            failed = [w for w, r in (replies or {}).items() if r.get("status") != "OK"]
            if failed:
                self.log.warning("af-lab: cluster %s: %d worker(s) could not store the token", mc.id, len(failed))
            mc.token_digest = digest
            mc.token = {"state": "ok", "expires_at": exp, "refreshed_at": now, "message": ""}
            if not force:
                self.log.info("af-lab: cluster %s: refreshed the bearer token on %d worker(s)", mc.id, len(replies or {}))
        elif exp and exp - now < self.config.cluster_token_refresh_margin:
            mc.token = {**mc.token, "state": "expiring",
                        "message": f"The workers' bearer token expires in {max(exp - now, 0):.0f} s and no "
                                   "fresher token is available yet."}

    # ================================================================== restart
    async def _restore(self) -> None:
        for record in self.store.load_all():
            owner = record.get("owner") or {}
            if self._other_server_owns(owner):
                continue  # another live server (same state_dir) runs it
            try:
                await self._restore_one(record)
            except Exception:
                self.log.exception("af-lab: restoring cluster %s failed", record.get("id"))

    def _other_server_owns(self, owner: dict[str, Any]) -> bool:
        if owner.get("instance") == self.owner["instance"]:
            return False
        mine = owner.get("pid") == self.owner["pid"] and owner.get("start_ticks") == self.owner["start_ticks"]
        return not mine and same_process_alive(owner.get("pid"), owner.get("start_ticks"))

    async def _restore_one(self, record: dict[str, Any]) -> None:
        p = record["profile"]
        profile = self.profiles.get(p["name"])
        if profile is None or profile.backend != p["backend"]:  # profile gone from config: keep what it was
            profile = Profile(p["name"], p["backend"], p["display_name"], "", p.get("defaults", {}),
                              p.get("limits", {}), p.get("settings", {}))
        mc = ManagedCluster(record["id"], record["name"], profile, ClusterOptions.from_json(record["options"]),
                            self.store.run_dir(record["id"]))
        mc.dask_name = record["dask_name"]
        mc.created = record["created"]
        mc.state, mc.message = record["state"], record.get("message", "")
        mc.requested = record.get("requested", 0)
        mc.adapt = (record["adapt"]["minimum"], record["adapt"]["maximum"]) if record.get("adapt") else None
        mc.scheduler_info = record.get("scheduler") or {}
        mc.jobs = record.get("jobs") or {}
        mc.cleanup_pending = record.get("cleanup_pending", False)
        mc.on_change = lambda: self._save(mc)
        self._clusters[mc.id] = mc
        self._counter += 1  # default names stay unique across restarts

        if mc.state not in LIVE and mc.state != "stopping":
            if mc.cleanup_pending:
                await self._cleanup_jobs(mc)
            return
        if mc.backend == "local":
            mc.state, mc.message = "stopped", "It ended when the Jupyter server stopped (local clusters run inside it)."
            self._save(mc)
            return
        try:
            await self._reattach(mc)
        except Exception as exc:
            await self._abandon(mc, _reason(exc))

    async def _reattach(self, mc: ManagedCluster) -> None:
        if mc.state != "running" or not mc.scheduler_info.get("pid"):
            raise RuntimeError(f"it was {mc.state} when the server stopped")
        await asyncio.wait_for(self._start_backend(mc, adopt=mc.scheduler_info), 30)
        queued = await self._queue(mc)
        adopted = {}
        for name, job_id in mc.live_jobs().items():
            if job_id in queued and queued[job_id].status not in ("removed", "completed", "failed"):
                adopted[name] = job_id
            else:
                mc.jobs[job_id]["removed"] = time.time()  # left the queue while we were away
        if mc.backend == "slurm":  # found by tag but never recorded (killed right after sbatch): not ours to keep
            await slurm.remove([j for j, q in queued.items() if j not in mc.jobs and q.status in ("pending", "running")],
                               mc.profile.settings)
        adopt_jobs(mc.cluster, adopted)
        mc.state = "running"
        if mc.adapt:
            self._apply_adapt(mc, mc.adapt)
        elif mc.requested > len(adopted):
            await self._scale(mc, mc.requested)
        mc.message = f"Reattached after a server restart ({len(adopted)} running job(s) kept)."
        self._save(mc)
        self.log.info("af-lab: cluster %s reattached to scheduler %s with %d job(s)", mc.id, mc.scheduler_address,
                      len(adopted))

    async def _abandon(self, mc: ManagedCluster, reason: str) -> None:
        """The scheduler cannot be reattached: stop what is left of it, remove every job."""
        info = mc.scheduler_info
        if same_process_alive(info.get("pid"), info.get("start_ticks")):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(info["pid"], signal.SIGKILL)
        if mc.cluster is not None:
            with contextlib.suppress(Exception):
                await Cluster._close(mc.cluster)
            mc.cluster = None
        n = len(mc.live_jobs())
        failed = await self._cleanup_jobs(mc)
        done = f" {failed}" if failed else f" Its {n} batch job(s) were removed." if n else ""
        if idle.CLOSE_REASON in _read_tail(mc.run_dir / "scheduler.log"):
            mc.state = "stopped"
            mc.message = (
                f"It was shut down after {self.config.cluster_idle_timeout:g} s without tasks "
                f"while the server was stopped.{done}"
            )
        else:
            mc.state, mc.message = "failed", f"It could not be reattached after a server restart: {reason}.{done}"
        self._save(mc)
        self.log.warning("af-lab: cluster %s: %s", mc.id, mc.message)

    # ================================================================== persistence
    def _save(self, mc: ManagedCluster) -> None:
        if mc.id in self._clusters:
            self.store.save(mc.record(self.owner))


def _ops(mc: ManagedCluster):
    """The module that speaks to the cluster's batch system."""
    return slurm if mc.backend == "slurm" else condor


def _reason(exc: BaseException) -> str:
    """The message a user needs: dask wraps start failures in "Cluster failed to start: ..."."""
    inner = exc.__cause__ if isinstance(exc, RuntimeError) and exc.__cause__ else exc
    return str(inner) or type(inner).__name__


def _seconds(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise BadRequest(f"{name} must be a number of seconds", field=name)
    return float(value)


def _read_tail(path: Path, limit: int = 4000) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(fh.tell() - limit, 0))
            return fh.read().decode(errors="replace")
    except OSError:
        return ""
