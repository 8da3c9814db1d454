"""The cluster service: af-lab's one owner of the user's Dask clusters.

It creates clusters from profiles (:mod:`.profiles`) in a software environment
(:mod:`.environments`) through a backend (:mod:`.backends`: the scheduler is
always its own process, workers are jobs), with TLS (:mod:`.tls`), scales and
adapts them, reports job states, ships and refreshes the data-access token on
workers (:mod:`.tokens`), persists every cluster (:mod:`.store`) and, after a
server restart, reattaches to a live scheduler and its jobs (found by tag) or
removes them. It never unpickles anything: users' graphs only ever reach the
scheduler process. A background check every
``cluster_monitor_interval`` seconds notices a dead or idle-closed scheduler,
workers that do not connect, and fresher tokens.

Plain asyncio; the REST handlers and dask-labextension (:mod:`.labextension`)
are two thin views on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
import uuid
from typing import Any

import cloudpickle
from distributed.core import Status

from ..config import AFLab
from ..errors import AFLabError, BadRequest, Conflict, NotFound, ServiceUnavailable
from ..events.bus import EventBus
from . import idle, restart, tls, worker_token
from .backend import BackendContext, JobState, jobs_model
from .backends import BACKENDS
from .environments import Environment, Environments, process_env
from .managed import LIVE, ManagedCluster
from .profiles import OverLimit, Profile, adapt_json, check_name, load_profiles, pick
from .restart import read_tail, reason_of
from .scheduler_process import proc_start_ticks
from .store import ClusterStore
from .tokens import TokenShipper
from .watch import ClusterEvents

# Schedulers and workers unpickle af-lab's plugins without af-lab installed.
cloudpickle.register_pickle_by_value(worker_token)
cloudpickle.register_pickle_by_value(idle)

CLOSE_TIMEOUT_S = 60.0
LOCAL_START_TIMEOUT_S = 90.0
WAIT_POLL_S = 0.02  # in-memory check; keeps "scale and wait" within a frame of the real time
MAX_ADAPT_SUBMIT_FAILURES = 3


class WorkersDidNotConnect(AFLabError):
    status = 504
    kind = "timeout"


class ClusterService:
    def __init__(self, config: AFLab, events: EventBus, log: logging.Logger | None = None, credentials=None,
                 backends=None):
        self.config = config
        self.log = log or logging.getLogger("af_lab")
        self.events = ClusterEvents(events, self.log)  # every change on the clusters/<id> topics
        self.backends = backends or BACKENDS
        self.tokens = TokenShipper(credentials, config.cluster_token_refresh_margin, self.log)
        self.environments = Environments(config.cluster_environments)
        self.profiles, self.profile_errors = load_profiles(config.cluster_profiles, tuple(self.backends))
        self.profile_errors += self.environments.errors
        for profile in self.profiles.values():
            missing = [n for n in profile.settings.get("environments") or [] if n not in self.environments.envs]
            if missing:
                self.profile_errors.append(f"cluster profile {profile.name!r} lists unknown environment(s) "
                                           f"{', '.join(missing)} (c.AFLab.cluster_environments)")
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

    # ================================================================== lifecycle
    async def start(self) -> None:
        """Restore the clusters a previous server left (idempotent: request paths await it too)."""
        if self._started is None:
            self._started = asyncio.ensure_future(self._start())
        await asyncio.shield(self._started)

    async def _start(self) -> None:
        try:
            await restart.restore(self)
        except Exception:
            self.log.exception("af-lab: restoring clusters failed")
        self._monitor = asyncio.ensure_future(self._monitor_loop())
        self.events.start(self)

    async def close(self) -> None:
        """Server shutdown: clusters stay for the next server unless configured not to."""
        self._closed = True
        await self.events.close()
        if self._monitor:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        if self._started and not self._started.done():
            self._started.cancel()
        for mc in list(self._clusters.values()):
            keep = self.config.cluster_survive_restart and mc.state in LIVE
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
            "profiles": [self._form(p) for p in self.profiles.values()],
            "errors": list(self.profile_errors),
        }

    def _form(self, profile: Profile) -> dict[str, Any]:
        """The profile's form, with the software environments it offers."""
        form = profile.form()
        offered = self.environments.for_profile(profile.settings.get("environments"))
        default = profile.settings.get("default_environment") or offered[0].name
        form["environments"] = [{"name": e.name, "display_name": e.display_name}
                                for e in offered]
        form["schema"]["properties"]["environment"] = {
            "type": "string", "title": "Software environment", "enum": [e.name for e in offered],
            "x-enum-titles": [e.display_name for e in offered], "default": default,
            "description": "Python environment of the scheduler and workers (your kernel needs the same "
                           "distributed version)",
        }
        return form

    async def list(self) -> list[dict[str, Any]]:
        await self.start()
        return [mc.model() for mc in sorted(self._clusters.values(), key=lambda c: c.created)]

    async def get(self, cluster_id: str) -> dict[str, Any]:
        await self.start()
        return self._get(cluster_id).model()

    def managed(self) -> list[ManagedCluster]:
        return list(self._clusters.values())

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
    async def create(
        self, profile_name: str | None, form: dict[str, Any], name: str | None = None,
        environment: str | None = None, client_distributed: str | None = None, require: list[str] | None = None,
    ) -> dict[str, Any]:
        await self.start()
        if self._closed:
            raise ServiceUnavailable("the server is shutting down")
        profile = pick(self.profiles, profile_name, self.default_profile)
        name = check_name(name)
        options = profile.validate(dict(form))
        for value, field in ((environment, "environment"), (client_distributed, "client_distributed")):
            if value is not None and not isinstance(value, str):
                raise BadRequest(f"{field} must be a string", field=field)
        env = self.environments.choose(environment, profile.settings.get("environments"),
                                       profile.settings.get("default_environment"))
        # Before anything starts: the modules the notebook needs (the most specific fix), then the versions.
        await self.environments.check_required(env, require, profile.settings.get("environments"))
        await self.environments.check(env, client_distributed)
        options = dataclasses.replace(options, environment=env.name)
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
        mc.python = env.python
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
                self.events.removed(cluster_id)
            if isinstance(exc, RuntimeError):
                raise ServiceUnavailable(f"the cluster could not start: {reason_of(exc)}") from None
            raise
        self.log.info("af-lab: cluster %s (%s, profile %s) started at %s", mc.name, cluster_id, profile.name,
                      mc.scheduler_address)
        return mc.model()

    async def _start_backend(self, mc: ManagedCluster, adopt: dict[str, Any] | None = None) -> None:
        env = Environment(mc.options.environment or "server", mc.python, "")
        token_file = mc.token_file if self.tokens.ships(mc) and await self.tokens.prepare(mc) else None
        mc.ctx = BackendContext(
            cluster_id=mc.id, dask_name=mc.dask_name, profile=mc.profile, options=mc.options, run_dir=mc.run_dir,
            python=mc.python, env=process_env(env), tls=tls.create(mc.run_dir / "tls", mc.id),
            token_file=token_file, on_submitted=mc.job_submitted, on_removed=mc.job_removed,
            on_failed=mc.job_failed, adopt=adopt,
        )
        mc.cluster = self.backends[mc.backend].build(mc.ctx)
        await mc.cluster
        scheduler = mc.cluster.scheduler
        mc.scheduler_info = {**scheduler.info, "dashboard_link": scheduler.dashboard_link}
        if self.config.cluster_idle_timeout:
            # Idempotent: an adopted scheduler already has it, with the timeout it was created with.
            plugin = cloudpickle.dumps(idle.IdleShutdown(self.config.cluster_idle_timeout))
            await mc.cluster.scheduler_comm.register_scheduler_plugin(
                plugin=plugin, name=idle.PLUGIN_NAME, idempotent=True
            )
        if token_file is not None:
            await self.tokens.refresh(mc, force=True)

    async def client_credentials(self, cluster_id: str, client_distributed: str | None = None) -> dict[str, Any]:
        """What a kernel needs to connect: the address, the cluster's CA and client certificate, a snippet."""
        await self.start()
        mc = self._get_live(cluster_id)
        env = Environment(mc.options.environment or "server", mc.python, "")
        found = await self.environments.check(env, client_distributed)
        return {
            "cluster": mc.id, "address": mc.scheduler_address, **tls.client_bundle(tls.TLSFiles(mc.run_dir / "tls")),
            "environment": {"name": env.name, "python": found["python"], "distributed": found["distributed"]},
            "snippet": client_snippet(mc.id),
        }

    # ================================================================== scale / adapt
    async def scale(self, cluster_id: str, workers: Any, wait: Any = None) -> dict[str, Any]:
        await self.start()
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
        mc.stop_adapting()
        mc.requested = n
        mc.warnings = []
        cluster.scale(n)
        try:
            # Awaiting the cluster submits (or retires) now, so a failure reaches the caller;
            # local workers are also waited for until they registered.
            await self._while_alive(mc, _settled(cluster), LOCAL_START_TIMEOUT_S if mc.backend == "local" else None)
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
        await self.start()
        self.adapt_now(cluster_id, adapt)
        return self._get(cluster_id).model()

    def adapt_now(self, cluster_id: str, adapt: Any) -> None:
        mc = self._get_live(cluster_id)
        bounds = mc.profile.validate_adapt(adapt)
        if bounds is None:  # stop adapting, keep the current size
            mc.stop_adapting()
            mc.requested = mc.planned_workers()
            self._save(mc)
            return
        self._apply_adapt(mc, bounds)

    def _apply_adapt(self, mc: ManagedCluster, bounds: tuple[int, int]) -> None:
        self._touch(mc)
        mc.adaptive = mc.cluster.adapt(minimum=bounds[0], maximum=bounds[1])
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
                if mc.has_batch_jobs:
                    try:
                        jobs = await self._queue(mc)
                        text += f"; the cluster's jobs: {self.backends[mc.backend].summarize(jobs)}"
                        details["jobs"] = [{**j.to_json(), "hold_reason": j.reason} for j in jobs.values()]
                    except AFLabError as exc:
                        text += f"; the job states are unknown ({exc.message})"
                raise WorkersDidNotConnect(text, **details)
            await asyncio.sleep(WAIT_POLL_S)

    # ================================================================== delete
    async def delete(self, cluster_id: str) -> None:
        await self.start()
        mc = self._get(cluster_id)
        async with mc.lock:
            if mc.state in LIVE:
                mc.state = "stopping"
                self.events.changed(mc)
                failed = await self._teardown(mc)
            else:
                failed = await self._cleanup_jobs(mc) if mc.cleanup_pending else None
            if failed:  # never forget a cluster whose jobs may still be in the queue
                mc.state, mc.message = "failed", f"It was shut down. {failed}"
                self._save(mc)
                raise ServiceUnavailable(f"cluster {mc.name!r} was shut down but its jobs are not removed yet: {failed}")
            self._clusters.pop(cluster_id, None)
            self.store.delete(cluster_id)
        self.events.removed(cluster_id)
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
                    self.log.warning("af-lab: closing cluster %s: %s", mc.id, reason_of(exc))
            await self._forget(mc, stop_scheduler=True)
        return await self._cleanup_jobs(mc)

    async def _forget(self, mc: ManagedCluster, stop_scheduler: bool = False) -> None:
        """Drop the dask object without asking its scheduler anything (gone, or staying for the next server).

        ``stop_scheduler``: make sure the scheduler process is gone too (a close that failed half-way).
        """
        cluster = mc.cluster
        if cluster is None:
            return
        if mc.touch is not None:
            mc.touch.cancel()
        mc.stop_adapting(keep_bounds=True)
        scheduler = cluster.scheduler
        if stop_scheduler or not scheduler.alive():
            await scheduler.close()  # SIGTERM/SIGKILL if still running; reaps our child process
        with contextlib.suppress(Exception):
            await cluster.scheduler_comm.close_rpc()
        for job in list(cluster.workers.values()):
            job.status = Status.closed
        cluster.status = Status.closed  # nothing left to close: the jobs are the backend's (removed by tag)

    async def _detach(self, mc: ManagedCluster) -> None:
        await self._forget(mc)
        self.log.info("af-lab: cluster %s stays up for the next server (scheduler pid %s)", mc.id,
                      mc.scheduler_info.get("pid"))

    async def _cleanup_jobs(self, mc: ManagedCluster) -> str | None:
        """Remove every job carrying the cluster's tag; on failure remember to retry and say why."""
        try:
            await self.backends[mc.backend].remove_jobs(self._context(mc))
        except AFLabError as exc:
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
        await self.start()
        mc = self._get(cluster_id)
        out: dict[str, Any] = {"cluster": mc.id, "backend": mc.backend, "queried_at": time.time()}
        queued = await self._queue(mc)
        connected = {str(w.get("name")) for w in mc.connected_workers().values()}
        answer = {**out, **jobs_model(self.backends[mc.backend], queued, mc.jobs, connected)}
        self.events.jobs_read(mc.id, answer)  # other tabs see what this read found
        return answer

    def _context(self, mc: ManagedCluster) -> BackendContext:
        """The backend context (a minimal one for clusters restored without a dask object)."""
        if mc.ctx is not None:
            return mc.ctx
        return BackendContext(cluster_id=mc.id, dask_name=mc.dask_name, profile=mc.profile, options=mc.options,
                              run_dir=mc.run_dir, python=mc.python, env={}, tls=tls.TLSFiles(mc.run_dir / "tls"))

    async def _queue(self, mc: ManagedCluster) -> dict[str, JobState]:
        """The cluster's jobs in the queue; concurrent callers share one condor_q (no stale cache)."""
        if mc.queue_query is None or mc.queue_query.done():
            mc.queue_query = asyncio.ensure_future(self.backends[mc.backend].list_jobs(self._context(mc)))
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
        self._drop_failed_jobs(mc)  # local workers fail to start like batch jobs fail to submit
        if mc.adapt and mc.submit_failures >= MAX_ADAPT_SUBMIT_FAILURES:
            self.adapt_now(mc.id, None)
            mc.warnings.append(f"Adaptive scaling was stopped after {mc.submit_failures} failed submissions; "
                               "fix the error above, then adapt again.")
            self._save(mc)
        await self._check_pending(mc)
        if self.tokens.ships(mc):
            await self.tokens.refresh(mc)

    async def _scheduler_gone(self, mc: ManagedCluster) -> None:
        code = mc.cluster.scheduler.exit_code()
        went_idle = idle.CLOSE_REASON in read_tail(mc.run_dir / "scheduler.log")
        if went_idle:
            state, why = "stopped", f"It was shut down after {self.config.cluster_idle_timeout:g} s without tasks."
        elif code == 0:
            state, why = "stopped", "Its scheduler was shut down (e.g. by client.shutdown() in a notebook)."
        else:
            how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}" if code else "unknown cause"
            state, why = "failed", f"Its scheduler died ({how})."
        await self._forget(mc)
        n = len(mc.live_jobs())
        failed = await self._cleanup_jobs(mc)
        if mc.has_batch_jobs:
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
        if mc.has_batch_jobs:
            try:
                text += f"; the cluster's jobs: {self.backends[mc.backend].summarize(await self._queue(mc))}"
            except AFLabError as exc:
                text += f"; the job states are unknown ({exc.message})"
        mc.pending_message = text
        self.log.warning("af-lab: cluster %s: %s", mc.id, text)

    # ================================================================== persistence
    def _save(self, mc: ManagedCluster) -> None:
        if mc.id in self._clusters:
            self.store.save(mc.record(self.owner))
            self.events.changed(mc)


def client_snippet(cluster_id: str) -> str:
    """The code the UI inserts into a notebook: the kernel fetches the cluster's certificate from af-lab."""
    return "\n".join([
        "from af_lab.kernel import FacilityClient",
        "",
        f'client = FacilityClient.discover().dask_client("{cluster_id}")',
        "client",
    ])


async def _settled(cluster) -> None:
    """Awaiting a started SpecCluster brings its jobs to the requested size (submits, waits for starts)."""
    await cluster


def _seconds(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise BadRequest(f"{name} must be a number of seconds", field=name)
    return float(value)
