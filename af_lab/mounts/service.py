"""Mounts: make a Rucio DID usable from the workspace, in one of three modes.

  cache    files fetched once into the shared cache (verified), the mount is a
           read-only folder of links to them; the default
  stream   no copy: a fileset of root:// URLs through the site XCache
  replica  links straight to replicas on RSEs mounted on this host; a replication
           rule brings the data there when it is missing

``create`` validates, resolves the DID and either finishes at once (everything
cached or local: the folder appears before the response) or starts a background
job. Jobs fetch a bounded number of files at a time, push their state on the
event bus (topic ``mounts/<id>``), persist every finished file, and resume after
a restart. Nothing half-done is ever visible in the workspace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import AFLab
from ..errors import AFLabError, BadRequest, Conflict, InsufficientStorage, NotFound
from ..events.bus import EventBus
from ..rucio.gateway import RucioGateway
from . import fileset as fileset_mod
from . import model, paths, replica, resolve, stream, workspace
from .cache import Cache
from .fetch import DiskFull
from .fetcher import PUBLISH_INTERVAL, EarlyFetch, Fetcher, Job, Once
from .store import Store

if TYPE_CHECKING:
    from ..vault.credentials import CredentialService

ACTIVE = model.ACTIVE


class MountService:
    def __init__(self, config: AFLab, gateway: RucioGateway, events: EventBus, credentials: CredentialService | None,
                 root_dir: str | Path, log: logging.Logger | None = None):
        self.config = config
        self.gateway = gateway
        self.events = events
        self.credentials = credentials
        self.log = log or logging.getLogger("af_lab")
        self.root_dir = Path(root_dir).resolve()
        self.store = Store(Path(self.config.state_dir) / "mounts.sqlite")
        self.cache = Cache(Path(self.config.cache_dir), self.store, self.config.cache_quota_bytes)
        self.concurrency = max(1, int(self.config.mount_concurrency))
        self.rule_poll_interval = 10.0
        self._pool = ThreadPoolExecutor(max_workers=max(4, 2 * self.concurrency), thread_name_prefix="af-lab-mount")
        self._jobs: dict[str, Job] = {}
        self.fetcher = Fetcher(self.store, self.cache, self._pool, self.log)
        self._creating: dict[str, tuple[tuple, asyncio.Future]] = {}  # target -> (what, its summary) being built
        self._early: dict[str, EarlyFetch] = {}  # mount id -> fetches begun while listing
        self._started: asyncio.Future | None = None
        self._kept = model.Kept()  # per-mount values over all its rows (counts, problems), reused while valid
        self._closed = False
        self._xcache_seen: dict | None = None  # the status service's last XCache probe (see note_xcache)

    # ================================================================== lifecycle
    async def start(self) -> None:
        """Resume interrupted jobs (idempotent; request paths call it too, so it never runs twice)."""
        if self._started is None:
            self._started = asyncio.get_running_loop().create_future()
            try:
                await self._resume_all()
            finally:
                self._started.set_result(None)
        await self._started

    async def _resume_all(self) -> None:
        workspace.cleanup_staging(self.root_dir / self.config.mount_root)
        for mount in self.store.mounts():
            if mount["state"] in ("queued", "fetching"):
                self.log.info("af-lab: resuming mount %s (%s:%s)", mount["id"], mount["scope"], mount["name"])
                self._start_job(mount["id"], self._run_fetch)
            elif mount["state"] == "replicating":
                self._start_job(mount["id"], self._run_rule)
            elif stream.repoint_workspace(self.store, self.root_dir, mount, self.config.xcache_url):
                self.log.info("af-lab: %s now reads through the XCache at %s", mount["target"], self.config.xcache_url)

    async def close(self) -> None:
        """Stop jobs without changing their recorded state: the next start resumes them."""
        self._closed = True
        for early in list(self._early.values()):
            await early.stop()
        jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel.set()
            if job.task:
                job.task.cancel()
        for job in jobs:
            if job.task:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(asyncio.shield(job.task), 10)
        # Copy threads stop at their next chunk (the cancel event is set); wait off the loop.
        await asyncio.to_thread(self._pool.shutdown, True, cancel_futures=True)
        self.store.close()

    # ================================================================== queries
    async def list(self) -> dict[str, Any]:
        await self.start()
        return {"mounts": [self._summary(m) for m in self.store.mounts()], "cache": self.cache.usage()}

    async def get(self, mount_id: str) -> dict[str, Any]:
        await self.start()
        return self._summary(self._mount(mount_id))

    async def files(self, mount_id: str, state: str | None, offset: int, limit: int) -> dict[str, Any]:
        mount = self._mount(mount_id)
        rows = self.store.files(mount_id, state=state, offset=offset, limit=limit)
        return {
            "files": [model.file_json(self.root_dir, mount, f) for f in rows],
            "total": self.store.count_files(mount_id, state),
            "offset": offset,
            "limit": limit,
        }

    async def fileset(self, mount_id: str, fmt: str = "json", workers: str | None = None) -> tuple[bytes, str]:
        """``workers="remote"``: for a cluster whose workers run on other nodes (refuses local paths)."""
        mount = self._mount(mount_id)
        if fmt not in ("json", "yaml"):
            raise BadRequest("format must be 'json' or 'yaml'", field="format")
        fileset_mod.check_workers(mount["mode"], workers, f"{mount['scope']}:{mount['name']}")
        entries = [(f["path"], model.location(self.root_dir, mount, f)) for f in self.store.files(mount_id) if f["state"] == "done"]
        if mount["mode"] == "stream":  # never hand out URLs of an XCache that is down or gone
            entries = await stream.current_urls(mount, entries, self.config.xcache_url, self.config.status_timeout)
            stream.repoint_workspace(self.store, self.root_dir, mount, self.config.xcache_url)  # the file follows too
        fs = fileset_mod.build(
            f"{mount['scope']}:{mount['name']}", mount["did_type"], entries, mount["options"].get("treename", "Events"),
            fileset_mod.metadata(mount["instance"], mount["mode"], mount["options"].get("source"), self.config.xcache_url),
        )  # fmt: skip
        return fileset_mod.dumps(fs, fmt), fmt

    async def cache_usage(self) -> dict[str, Any]:
        return self.cache.usage()

    # ================================================================== create
    async def create(self, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Returns (mount summary, created). An identical existing mount is returned as is."""
        await self.start()
        t0 = time.perf_counter()
        scope, name = resolve.parse_did(body.get("did"))
        opts = model.parse_options(body, self.config.xcache_url)
        instance = self._instance(opts["instance"])
        mode = opts["mode"]
        default_target = f"{self.config.mount_root}/{scope}/{resolve.safe_relpath(name)}"
        if mode == "stream":
            default_target += f".fileset.{opts['format']}"
        rel, absolute = workspace.resolve_target(self.root_dir, body.get("target") or default_target)
        ident = (scope, name, mode, instance["name"])
        existing = self.store.mount_by_target(rel)
        if existing:
            if (existing["scope"], existing["name"], existing["mode"], existing["instance"]) == ident:
                return self._summary(existing), False
            raise Conflict(f"{rel} is already the mount of {existing['scope']}:{existing['name']}; unmount it first", field="target")
        building = self._creating.get(rel)
        if building is not None:
            # The same request while the first is still being built joins it: one mount, one id.
            if building[0] != ident:
                raise Conflict(f"{rel} is being mounted for {building[0][0]}:{building[0][1]} "
                               f"({building[0][2]} mode); choose another target", field="target")
            try:
                summary = await asyncio.shield(building[1])
            except AFLabError as exc:
                raise type(exc)(exc.message, **exc.details) from None
            return summary, False
        workspace.check_free(absolute, rel)
        future = asyncio.get_running_loop().create_future()
        self._creating[rel] = (ident, future)
        try:
            summary = await self._create_new(body, opts, instance, scope, name, rel, absolute, t0)
        except BaseException as exc:
            if isinstance(exc, Exception):
                future.set_exception(exc)
                future.exception()  # retrieved: joiners, if any, re-raise their own copy
            else:
                future.cancel()
            raise
        finally:
            if self._creating.get(rel, (None, None))[1] is future:
                del self._creating[rel]
        future.set_result(summary)
        return summary, True

    async def _create_new(self, body: dict, opts: dict, instance: dict, scope: str, name: str, rel: str,
                          absolute: Path, t0: float) -> dict[str, Any]:
        mode = opts["mode"]
        did_type, files = await self._listing(instance["name"], scope, name, refresh=bool(body.get("refresh")))
        # One path per file, decided before any fetch (see paths.py); a thread: 50,000 files sort for a while.
        files = await asyncio.to_thread(paths.distinct, files)
        if not files:
            raise Conflict(f"{scope}:{name} holds no files: there is nothing to mount", did=f"{scope}:{name}")
        mount = {
            "id": secrets.token_hex(6), "instance": instance["name"], "scope": scope, "name": name, "did_type": did_type,
            "mode": mode, "target": rel, "state": "queued", "message": "", "options": opts, "rule": None,
            "created": time.time(), "updated": time.time(), "finished": None,
        }  # fmt: skip
        timings = {"resolve_ms": round((time.perf_counter() - t0) * 1000, 2)}
        if mode == "cache":
            start = await self._create_cache(mount, files, absolute)
        elif mode == "stream":
            start = await self._create_stream(mount, files, absolute)
        else:
            start = await self._create_replica(mount, files, absolute, instance)
        timings["total_ms"] = round((time.perf_counter() - t0) * 1000, 2)
        mount["options"]["timings"] = timings
        self.store.update_mount(mount["id"], options=mount["options"])
        if start:
            self._start_job(mount["id"], start)
        summary = self._summary(self.store.mount(mount["id"]))
        self._push(summary)
        return summary

    def _instance(self, name: str | None) -> dict[str, Any]:
        return self.gateway.instance(name)

    async def _listing(self, instance: str, scope: str, name: str, refresh: bool) -> tuple[str, list[dict]]:
        """The DID's files, kept by the gateway ``listing_cache_ttl`` seconds: a re-mount asks Rucio nothing."""
        return await self.gateway.did_files(instance, scope, name, refresh)

    # ------------------------------------------------------------------ cache mode
    async def _create_cache(self, mount: dict, files: list[dict], absolute: Path):
        present = self.cache.present(files, touch=True)
        missing: dict[tuple[str, str], dict] = {}
        for f in files:
            key = (f["scope"], f["name"])
            if key not in present:
                missing.setdefault(key, f)
        need = sum(f["bytes"] for f in missing.values())
        replicas: dict = {}
        early: EarlyFetch | None = None
        if missing:
            # Cached files this mount will link are evictable now but pinned once it exists.
            unpinned = set(present) - self.store.pinned(present)
            by_key = {(f["scope"], f["name"]): f for f in files}
            self.fetcher.check_room(need, mount, also_pinned=sum(by_key[k]["bytes"] for k in unpinned))
            early = self._early[mount["id"]] = EarlyFetch(Job(mount["id"]), self.concurrency, Once(self._token))
            loop = asyncio.get_running_loop()

            def arrived(key: tuple[str, str], reps: list[dict]) -> None:  # in the listing thread
                if key in missing:
                    loop.call_soon_threadsafe(self.fetcher.fetch_early, early, missing[key], self._sources(mount, reps))

            try:
                replicas = await self.gateway.replicas(mount["instance"], list(missing.values()), arrived)
                unreadable = [f for k, f in missing.items() if not self._sources(mount, replicas.get(k, []))]
                if unreadable:
                    raise resolve.no_replica(mount, unreadable, len(files))
            except BaseException:
                # Refused: stop what started (what finished stays in the cache, verified).
                await self._drop_early(mount["id"])
                raise
        rows = []
        for f in files:
            key = (f["scope"], f["name"])
            done = early.outcomes.get(key) if early else None
            if key in present:
                rows.append({**f, "state": "done", "source": "cache", "local_path": str(present[key])})
            elif done and done.final:
                rows.append({**f, "state": "done", "source": done.source, "local_path": str(done.final), "error": done.note})
            else:
                rows.append({**f, "state": "pending", "replicas": replicas.get(key, [])})
        if missing:
            try:
                await self._insert(mount, rows)
            except BaseException:
                await self._drop_early(mount["id"])
                raise
            return self._run_fetch
        t = time.perf_counter()
        mount["state"], mount["finished"] = "ready", time.time()
        mount["message"] = f"{len(files)} files, all from the cache"
        await self._insert_and_publish(mount, rows, absolute)
        mount["options"]["link_ms"] = round((time.perf_counter() - t) * 1000, 2)
        return None

    async def _drop_early(self, mount_id: str) -> None:
        early = self._early.pop(mount_id, None)
        if early is not None:
            await early.stop()

    def _sources(self, mount: dict, replicas: list[dict]) -> list[resolve.Source]:
        opts = mount["options"]
        return resolve.rank_sources(
            replicas, xcache=self.config.xcache_url, policy=opts.get("source", "auto"),
            prefer_rses=opts.get("prefer_rses") or (), local_ok=replica.readable,
        )  # fmt: skip

    # ------------------------------------------------------------------ stream mode
    async def _create_stream(self, mount: dict, files: list[dict], absolute: Path):
        rows = await stream.write_fileset(self.gateway, mount, files, absolute, self.config.xcache_url,
                                          self.config.status_timeout, self.fetcher.corrupt)  # fmt: skip
        try:
            await self._insert(mount, rows)
        except BaseException:
            absolute.unlink(missing_ok=True)
            raise
        return None

    # ------------------------------------------------------------------ replica mode
    async def _create_replica(self, mount: dict, files: list[dict], absolute: Path, instance: dict):
        opts = mount["options"]
        mapping = replica.mounted_rses(instance, opts["rse"])
        replicas, local = await replica.map_replicas(self.gateway, mount["instance"], files, mapping)
        rows, missing = await asyncio.to_thread(replica.rows, files, replicas, local)
        if not missing:
            mount["state"], mount["finished"] = "ready", time.time()
            mount["message"] = f"{len(files)} files, linked to their replicas on {', '.join(sorted(mapping))}"
            await self._insert_and_publish(mount, rows, absolute)
            return None
        if not opts["request_rule"]:
            raise resolve.NoReplica(
                f"{len(missing)} of {len(files)} files of {mount['scope']}:{mount['name']} have no replica on an RSE "
                f"mounted here ({', '.join(sorted(mapping))}). Ask for a replication rule (request_rule: true, "
                "with lifetime_days) or use cache mode.",
                files=[f"{f['scope']}:{f['name']}" for f in missing[:10]],
            )
        rse = opts["rse"] or sorted(mapping)[0]
        rule_id = await self.gateway.add_rule(
            mount["instance"], mount["scope"], mount["name"], rse, int(opts["lifetime_days"] * 86400)
        )
        mount["rule"] = {"id": rule_id, "rse": rse, "state": "REPLICATING", "created_by_mount": True}
        mount["state"] = "replicating"
        mount["message"] = f"waiting for Rucio to replicate {len(missing)} files to {rse}"
        await self._insert(mount, rows)
        return self._run_rule

    # ================================================================== actions
    async def cancel(self, mount_id: str) -> dict[str, Any]:
        mount = self._mount(mount_id)
        if mount["state"] not in ACTIVE:
            raise Conflict(f"mount {mount_id} is {mount['state']}: there is nothing to cancel")
        await self._stop_job(mount_id)
        self.store.update_mount(mount_id, state="cancelled", message="cancelled by you", finished=time.time())
        return self._push_id(mount_id)

    async def retry(self, mount_id: str) -> dict[str, Any]:
        mount = self._mount(mount_id)
        if mount["state"] not in ("failed", "cancelled"):
            raise Conflict(f"mount {mount_id} is {mount['state']}: only failed or cancelled mounts can be retried")
        if mount["mode"] == "replica" and mount.get("rule"):
            self.store.update_mount(mount_id, state="replicating", message="checking the replication rule again", finished=None)
            self._start_job(mount_id, self._run_rule)
            return self._push_id(mount_id)
        failed = self.store.files(mount_id, state="failed")
        # New replicas may have appeared (or a bad one been fixed): ask Rucio again, else keep what we knew.
        with contextlib.suppress(AFLabError):
            fresh = await self.gateway.replicas(mount["instance"], failed)
            for f in failed:
                reps = fresh.get((f["scope"], f["name"]))
                if reps:
                    self.store.set_file(mount_id, f["path"], replicas=reps)
        self.store.set_files_state(mount_id, ("failed", "pending"), "pending")
        self.store.update_mount(mount_id, state="queued", message="retrying", finished=None)
        self._start_job(mount_id, self._run_fetch)
        return self._push_id(mount_id)

    async def remove(self, mount_id: str) -> dict[str, Any]:
        mount = self._mount(mount_id)
        await self._stop_job(mount_id)
        rel = mount["target"]
        absolute = self.root_dir / rel
        local_paths = {f["local_path"] for f in self.store.files(mount_id) if f["local_path"]}

        def ours(link_target: str) -> bool:
            return self.cache.owns(link_target) or link_target in local_paths

        kept = await asyncio.get_running_loop().run_in_executor(
            self._pool, workspace.remove_mount, self.root_dir, absolute, ours, mount["options"].get("fileset_sha256")
        )
        workspace.prune_empty_parents(absolute, self.root_dir / self.config.mount_root)
        notes = []
        rule = mount.get("rule")
        if rule and rule.get("created_by_mount") and rule.get("state") != "OK":
            # A rule we asked for and that never completed serves nobody once the mount is gone.
            try:
                await self.gateway.delete_rule(mount["instance"], rule["id"])
                notes.append(f"deleted replication rule {rule['id']}")
            except AFLabError as exc:
                notes.append(f"could not delete replication rule {rule['id']}: {exc.message}")
        self.store.delete_mount(mount_id)
        self.events.publish(f"mounts/{mount_id}", {"id": mount_id, "state": "removed", "kept": kept})
        return {"removed": mount_id, "target": rel, "kept": kept, "notes": notes}

    # ================================================================== jobs
    def _start_job(self, mount_id: str, runner: Callable) -> None:
        if mount_id in self._jobs or self._closed:
            return
        early = self._early.get(mount_id)
        job = early.job if early else Job(mount_id)  # early fetches already report into it
        self._jobs[mount_id] = job
        job.task = asyncio.get_running_loop().create_task(self._job_wrapper(job, runner))

    async def _job_wrapper(self, job: Job, runner: Callable) -> None:
        try:
            await runner(job)
        except asyncio.CancelledError:
            pass  # shutdown or user cancel: the caller records the state
        except AFLabError as exc:
            self._finish(job.mount_id, "failed", exc.message)
        except Exception as exc:  # a bug must not kill the loop silently: record it on the mount
            self.log.exception("af-lab: mount %s crashed", job.mount_id)
            self._finish(job.mount_id, "failed", f"internal error: {type(exc).__name__}: {exc}")
        finally:
            self._jobs.pop(job.mount_id, None)
            await self._drop_early(job.mount_id)
            if not self._closed:
                with contextlib.suppress(Exception):
                    self._push_id(job.mount_id)

    async def _stop_job(self, mount_id: str) -> None:
        job = self._jobs.get(mount_id)
        if not job:
            return
        job.cancel.set()
        if job.task:
            job.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await job.task

    def _finish(self, mount_id: str, state: str, message: str) -> None:
        if self.store.mount(mount_id):
            self.store.update_mount(mount_id, state=state, message=message, finished=time.time())

    # ------------------------------------------------------------------ fetch job
    async def _run_fetch(self, job: Job) -> None:
        mount = self._mount(job.mount_id)
        pending = self.store.files(job.mount_id, state="pending")
        self.store.update_mount(job.mount_id, state="fetching", message=f"fetching {len(pending)} files")
        self._push_id(job.mount_id)
        token = Once(self._token)  # asked for only when a root:// source is actually tried
        unique: dict[tuple[str, str], list[dict]] = {}
        for f in pending:
            unique.setdefault((f["scope"], f["name"]), []).append(f)
        # Promise room for what is still to fetch (files already being fetched hold their own).
        promised = {key: group[0]["bytes"] for key, group in unique.items() if key not in self.fetcher.inflight}
        self.cache.reserved += sum(promised.values())
        queue: asyncio.Queue = asyncio.Queue()
        for group in unique.values():
            queue.put_nowait(group)
        stop: list[BaseException] = []

        async def worker() -> None:
            while not queue.empty() and not stop:
                group = queue.get_nowait()
                # from "promised" to "being fetched" (_fetch_verified)
                self.cache.reserved -= promised.pop((group[0]["scope"], group[0]["name"]), 0)
                try:
                    early = self._early.get(job.mount_id)
                    await self.fetcher.fetch_group(job, group, early, self._sources(mount, group[0]["replicas"]), token)
                except DiskFull as exc:
                    stop.append(exc)

        pusher = asyncio.get_running_loop().create_task(self._pusher(job))
        try:
            await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(unique)) or 1)))
        finally:
            pusher.cancel()
            # whatever was not taken off the queue gives its reservation back too
            self.cache.reserved -= sum(promised.values())
        if stop:
            raise InsufficientStorage(f"stopped: {stop[0]}. Free some space and retry.")
        await self._complete_fetch(job.mount_id)

    async def _complete_fetch(self, mount_id: str) -> None:
        mount = self._mount(mount_id)
        files = await self.store.run(self.store.files, mount_id)
        failed = [f for f in files if f["state"] != "done"]
        if failed:
            first = failed[0]
            self._finish(
                mount_id, "failed",
                f"{len(failed)} of {len(files)} files could not be fetched; nothing was linked. "
                f"First: {first['path']}: {first['error'] or 'not fetched'}",
            )  # fmt: skip
            return
        try:
            await self._publish_links(mount, self.root_dir / mount["target"], [(f["path"], f["local_path"]) for f in files])
        except AFLabError as exc:
            self._finish(mount_id, "failed", exc.message)
            return
        fetched = sum(1 for f in files if f["source"] not in ("cache",))
        self._finish(mount_id, "ready", f"{len(files)} files ({fetched} fetched, {len(files) - fetched} from the cache)")

    async def _pusher(self, job: Job) -> None:
        while True:
            await asyncio.sleep(PUBLISH_INTERVAL)
            self._push_id(job.mount_id)

    async def _token(self) -> str | None:
        """The user's bearer token for root:// reads, from the credential service (never the browser)."""
        if self.credentials is None:
            return None
        try:
            return (await self.credentials.bearer_token())[0]
        except AFLabError as exc:  # storage may not need one; if it does, reads fail with "access denied"
            self.log.info("af-lab: no bearer token for root:// reads: %s", exc.message)
            return None

    # ------------------------------------------------------------------ rule job
    async def _run_rule(self, job: Job) -> None:
        def note(message: str) -> None:
            self.store.update_mount(job.mount_id, message=message)
            self._push_id(job.mount_id)

        mount = self._mount(job.mount_id)
        rule = await replica.follow_rule(self.gateway, mount["instance"], dict(mount["rule"] or {}), note,
                                         lambda r: self.store.update_mount(job.mount_id, rule=r),
                                         self.rule_poll_interval)
        mount = self._mount(job.mount_id)
        instance = self._instance(mount["instance"])
        mapping = {rule["rse"]: instance.get("rse_mounts", {})[rule["rse"]]}
        files = await self.store.run(self.store.files, job.mount_id)
        _replicas, local = await replica.map_replicas(self.gateway, mount["instance"], files, mapping)
        for f in files:
            path = local.get((f["scope"], f["name"]))
            if f["state"] != "done" and path:
                self.store.set_file(job.mount_id, f["path"], state="done", source="replica", local_path=path, error=None)
        files = await self.store.run(self.store.files, job.mount_id)
        missing = [f for f in files if f["state"] != "done"]
        if missing:
            raise AFLabError(f"rule {rule['id']} is OK but {len(missing)} files are not readable under {mapping[rule['rse']]}")
        await self._publish_links(mount, self.root_dir / mount["target"], [(f["path"], f["local_path"]) for f in files])
        self._finish(job.mount_id, "ready", f"{len(files)} files, linked to their replicas on {rule['rse']}")

    # ================================================================== helpers
    async def _insert(self, mount: dict, rows: list[dict]) -> None:
        try:  # 50,000 rows take a second: in the store's thread, never on the loop
            await self.store.run(self.store.insert_mount, mount, rows)
        except sqlite3.IntegrityError:  # two requests raced for one target: the second one loses cleanly
            raise Conflict(f"{mount['target']} is being mounted by another request", field="target") from None
        self._kept.get(mount, "counts", lambda: model.counts(rows))  # not read back from 50,000 rows on the loop

    async def _insert_and_publish(self, mount: dict, rows: list[dict], absolute: Path) -> None:
        """Record a complete mount, then make it appear; if it cannot appear, it was never there."""
        await self._insert(mount, rows)
        try:
            await self._publish_links(mount, absolute, [(r["path"], r["local_path"]) for r in rows])
        except BaseException:
            self.store.delete_mount(mount["id"])
            raise

    async def _publish_links(self, mount: dict, absolute: Path, links: list[tuple[str, str]]) -> None:
        """A file DID: the target is a link to the file. Anything else: a link to a view of links.
        Built in a thread: a 50,000-file view is 50,000 symlinks, which must not stall the server."""
        if mount["did_type"] == "file" and len(links) == 1:
            await asyncio.to_thread(workspace.publish_symlink, absolute, links[0][1])
            return
        view = await asyncio.to_thread(self.cache.view, links)
        await asyncio.to_thread(workspace.publish_symlink, absolute, view)
        mount["options"]["view"] = str(view)
        self.store.update_mount(mount["id"], options=mount["options"])

    def _mount(self, mount_id: str) -> dict[str, Any]:
        mount = self.store.mount(mount_id)
        if mount is None:
            raise NotFound(f"no mount with id {mount_id!r}")
        return mount

    def _push_id(self, mount_id: str) -> dict[str, Any]:
        mount = self.store.mount(mount_id)
        if mount is None:
            return {"id": mount_id, "state": "removed"}
        summary = self._summary(mount)
        self._push(summary)
        return summary

    def _push(self, summary: dict[str, Any]) -> None:
        self.events.publish(f"mounts/{summary['id']}", summary)

    def _summary(self, mount: dict) -> dict[str, Any]:
        mid = mount["id"]
        counts = self._kept.get(mount, "counts", lambda: self.store.file_counts(mid).get(mid, {}))
        out = model.summary(mount, counts, self._jobs.get(mid),
                            lambda: self._kept.get(mount, "problems", lambda: self.store.errors(mid, limit=10)))
        return out | {"warning": stream.warning(mount, self.config.xcache_url, self._xcache_seen)}

    def note_xcache(self, seen: dict | None) -> None:
        """The status service's latest XCache probe: stream mounts through it warn while it is down (no
        call of ours per list), and when that changes their rows are pushed so open panels update."""
        before, self._xcache_seen = self._xcache_seen, seen
        if not self._closed and (before or {}).get("state") != (seen or {}).get("state"):
            for mount in self.store.mounts():
                if mount["mode"] == "stream":
                    self._push(self._summary(mount))
