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
import functools
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import AFLab
from ..errors import AFLabError, BadRequest, Conflict, InsufficientStorage, NotFound, ServiceUnavailable
from ..events.bus import EventBus
from ..rucio.gateway import RucioGateway
from ..units import human_bytes as human
from . import fileset as fileset_mod
from . import paths, resolve, workspace
from .cache import Cache
from .fetch import Cancelled, ChecksumMismatch, DiskFull, FetchError, fetch, redact
from .store import Store

if TYPE_CHECKING:
    from ..vault.credentials import CredentialService

MODES = ("cache", "stream", "replica")
SOURCES = ("auto", "xcache", "direct")
ACTIVE = ("queued", "fetching", "replicating")
PUBLISH_INTERVAL = 0.5  # seconds between progress pushes of a running job
RATE_WINDOW = 5.0  # seconds of history for the transfer rate


@dataclass
class Job:
    mount_id: str
    cancel: threading.Event = field(default_factory=threading.Event)
    task: asyncio.Task | None = None
    active: dict[str, list[int]] = field(default_factory=dict)  # path -> [bytes, done] (threads add to done)
    fetched: int = 0  # bytes moved by this job (threads add to it)
    samples: deque = field(default_factory=lambda: deque(maxlen=64))

    def rate(self) -> float:
        now = time.monotonic()
        self.samples.append((now, self.fetched))
        while len(self.samples) > 2 and now - self.samples[0][0] > RATE_WINDOW:
            self.samples.popleft()
        t0, b0 = self.samples[0]
        return (self.fetched - b0) / (now - t0) if now > t0 else 0.0


@dataclass
class _Outcome:
    """What fetching one file came to: a verified cache path and where it came from, or the error."""

    final: Path | None
    source: str = ""
    note: str | None = None  # earlier sources that failed before one worked
    error: str = ""
    adler32: str = ""


class _EarlyFetch:
    """Fetches started while Rucio is still listing a new mount's replicas.

    Rucio streams ``list_replicas`` a file at a time (~1.5 ms per file after a 0.1 s
    first answer here), so waiting for the whole listing before the first copy costs
    as much as the copies themselves. Each file is fetched into the cache as soon
    as its replicas are known; the mount's job then takes over what is left. Files
    fetched early are ordinary verified cache entries, so if the mount is refused
    (a file with no replica) or cancelled, nothing is lost and nothing is wrong.
    """

    def __init__(self, job: Job, concurrency: int, token: _Once):
        self.job = job  # the mount's job-to-be: its progress and its cancel cover these fetches too
        self.gate = asyncio.Semaphore(concurrency)
        self.token = token  # one bearer-token lookup for all of them, only if a root:// source is tried
        self.tasks: dict[tuple[str, str], asyncio.Task] = {}
        self.outcomes: dict[tuple[str, str], _Outcome] = {}

    async def stop(self) -> None:
        self.job.cancel.set()
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)


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
        self._inflight: dict[tuple[str, str], asyncio.Future] = {}
        self._creating: dict[str, tuple[tuple, asyncio.Future]] = {}  # target -> (what, its summary) being built
        self._early: dict[str, _EarlyFetch] = {}  # mount id -> fetches begun while listing
        self._started: asyncio.Future | None = None
        self._closed = False

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
        counts = self.store.file_counts()
        return {"mounts": [self._summary(m, counts.get(m["id"], {})) for m in self.store.mounts()], "cache": self.cache.usage()}

    async def get(self, mount_id: str) -> dict[str, Any]:
        await self.start()
        return self._summary(self._mount(mount_id))

    async def files(self, mount_id: str, state: str | None, offset: int, limit: int) -> dict[str, Any]:
        mount = self._mount(mount_id)
        rows = self.store.files(mount_id, state=state, offset=offset, limit=limit)
        return {
            "files": [self._file_json(mount, f) for f in rows],
            "total": self.store.count_files(mount_id, state),
            "offset": offset,
            "limit": limit,
        }

    async def fileset(self, mount_id: str, fmt: str = "json") -> tuple[bytes, str]:
        mount = self._mount(mount_id)
        if fmt not in ("json", "yaml"):
            raise BadRequest("format must be 'json' or 'yaml'", field="format")
        entries = [(f["path"], self._location(mount, f)) for f in self.store.files(mount_id) if f["state"] == "done"]
        fs = fileset_mod.build(
            f"{mount['scope']}:{mount['name']}", mount["did_type"], entries, mount["options"].get("treename", "Events"),
            {"instance": mount["instance"], "mode": mount["mode"]},
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
        opts = self._options(body)
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
        files = paths.distinct(files)  # one path per file, decided before any fetch (see paths.py)
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

    def _options(self, body: dict[str, Any]) -> dict[str, Any]:
        unknown = set(body) - {"did", "instance", "mode", "target", "source", "prefer_rses", "format", "treename",
                               "rse", "request_rule", "lifetime_days", "refresh"}  # fmt: skip
        if unknown:
            raise BadRequest(f"unknown field(s): {', '.join(sorted(unknown))}")
        mode = body.get("mode") or "cache"
        if mode not in MODES:
            raise BadRequest(f"mode must be one of {', '.join(MODES)}", field="mode")
        source = body.get("source") or "auto"
        if source not in SOURCES:
            raise BadRequest(f"source must be one of {', '.join(SOURCES)}", field="source")
        if source == "xcache" and not self.config.xcache_url:
            raise BadRequest("source 'xcache' needs an XCache (c.AFLab.xcache_url), and none is configured", field="source")
        prefer = body.get("prefer_rses") or []
        if not isinstance(prefer, list) or not all(isinstance(r, str) for r in prefer):
            raise BadRequest("prefer_rses must be a list of RSE names", field="prefer_rses")
        fmt = body.get("format") or "json"
        if fmt not in ("json", "yaml"):
            raise BadRequest("format must be 'json' or 'yaml'", field="format")
        treename = body.get("treename") or "Events"
        if not isinstance(treename, str) or not treename.replace("/", "").replace("_", "").isalnum():
            raise BadRequest("treename must be a ROOT tree name (letters, digits, '_', '/')", field="treename")
        lifetime = body.get("lifetime_days", 7)
        if not isinstance(lifetime, (int, float)) or isinstance(lifetime, bool) or not 0 < lifetime <= 365:
            raise BadRequest("lifetime_days must be a number of days between 0 and 365", field="lifetime_days")
        rse = body.get("rse")
        if rse is not None and not isinstance(rse, str):
            raise BadRequest("rse must be an RSE name", field="rse")
        return {
            "instance": body.get("instance"), "mode": mode, "source": source, "prefer_rses": prefer, "format": fmt,
            "treename": treename, "rse": rse, "request_rule": bool(body.get("request_rule")), "lifetime_days": lifetime,
        }  # fmt: skip

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
        early: _EarlyFetch | None = None
        if missing:
            # Cached files this mount will link are evictable now but pinned once it exists.
            unpinned = set(present) - self.store.pinned(present)
            by_key = _by_key(files)
            self._check_room(need, mount, also_pinned=sum(by_key[k]["bytes"] for k in unpinned))
            early = self._early[mount["id"]] = _EarlyFetch(Job(mount["id"]), self.concurrency, _Once(self._token))
            loop = asyncio.get_running_loop()

            def arrived(key: tuple[str, str], reps: list[dict]) -> None:  # in the listing thread
                if key in missing:
                    loop.call_soon_threadsafe(self._fetch_early, early, mount, missing[key], reps)

            try:
                replicas = await self.gateway.replicas(mount["instance"], list(missing.values()), arrived)
                unreadable = [f for k, f in missing.items() if not self._sources(mount, replicas.get(k, []))]
                if unreadable:
                    raise self._no_replica(mount, unreadable, len(files))
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
                self._insert(mount, rows)
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

    def _fetch_early(self, early: _EarlyFetch, mount: dict, f: dict, replicas: list[dict]) -> None:
        """Start fetching ``f`` now that its replicas are known (on the loop; bounded by the gate)."""
        key = (f["scope"], f["name"])
        if early.job.cancel.is_set() or key in early.tasks or key in self._inflight:
            return  # refused, already started, or another mount is fetching it
        sources = self._sources(mount, replicas)
        if not sources:
            return  # the listing's end reports it
        done = asyncio.get_running_loop().create_future()
        self._inflight[key] = done  # other mounts (and this mount's job) wait for it

        async def run() -> None:
            try:
                async with early.gate:
                    if early.job.cancel.is_set() or self.cache.lookup(f):
                        return
                    early.outcomes[key] = await self._fetch_verified(f, sources, early.job, early.token)
            except (asyncio.CancelledError, DiskFull, Cancelled):
                pass  # the job fetches it again, and reports a full disk itself
            finally:
                if self._inflight.get(key) is done:
                    del self._inflight[key]
                done.set_result(None)

        early.tasks[key] = asyncio.get_running_loop().create_task(run())

    def _check_room(self, need: int, mount: dict, also_pinned: int = 0) -> None:
        room = self.cache.room()
        available = max(0, room.available - also_pinned)
        if need <= available:
            return
        raise InsufficientStorage(
            f"{mount['scope']}:{mount['name']} needs {human(need)} more in the cache, but only {human(available)} "
            f"can be made free (quota {human(room.quota)}, {human(room.pinned + also_pinned)} held by your mounts, "
            f"{human(room.reserved)} promised to running mounts, {human(room.disk_free)} free on disk). "
            "Unmount something, or ask for a larger cache (c.AFLab.cache_quota_bytes).",
            needed_bytes=need, available_bytes=available, quota_bytes=room.quota, pinned_bytes=room.pinned + also_pinned,
            disk_free_bytes=room.disk_free,
        )  # fmt: skip

    def _sources(self, mount: dict, replicas: list[dict]) -> list[resolve.Source]:
        opts = mount["options"]
        return resolve.rank_sources(
            replicas, xcache=self.config.xcache_url, policy=opts.get("source", "auto"),
            prefer_rses=opts.get("prefer_rses") or (), local_ok=_readable,
        )  # fmt: skip

    def _no_replica(self, mount: dict, files: list[dict], total: int) -> resolve.NoReplica:
        names = [f"{f['scope']}:{f['name']}" for f in files[:10]]
        how = {"xcache": " through the XCache", "direct": " without the XCache"}.get(mount["options"].get("source"), "")
        return resolve.NoReplica(
            f"{len(files)} of {total} files of {mount['scope']}:{mount['name']} have no available replica that can be "
            f"read from here{how}: {', '.join(names)}{' …' if len(files) > 10 else ''}",
            files=names,
        )

    # ------------------------------------------------------------------ stream mode
    async def _create_stream(self, mount: dict, files: list[dict], absolute: Path):
        replicas = await self.gateway.replicas(mount["instance"], files)
        xcache = "" if mount["options"]["source"] == "direct" else self.config.xcache_url
        rows, missing = [], []
        for f in files:
            url = resolve.stream_url(replicas.get((f["scope"], f["name"]), []), xcache, mount["options"]["prefer_rses"])
            if url is None:
                missing.append(f)
            rows.append({**f, "state": "done", "source": "stream", "local_path": url})
        if missing:
            err = self._no_replica(mount, missing, len(files))
            err.message += ". Streaming needs a root:// replica; cache mode can copy posix ones."
            raise err
        opts = mount["options"]
        fs = fileset_mod.build(
            f"{mount['scope']}:{mount['name']}", mount["did_type"], [(r["path"], r["local_path"]) for r in rows],
            opts["treename"], {"instance": mount["instance"], "mode": "stream", "xcache": self.config.xcache_url or None},
        )  # fmt: skip
        opts["fileset_sha256"] = workspace.write_atomic(absolute, fileset_mod.dumps(fs, opts["format"]))
        mount["state"], mount["finished"] = "ready", time.time()
        via = "through the XCache" if xcache else "directly from the storage"
        mount["message"] = f"fileset of {len(rows)} root:// URLs, read {via}"
        try:
            self._insert(mount, rows)
        except BaseException:
            absolute.unlink(missing_ok=True)
            raise
        return None

    # ------------------------------------------------------------------ replica mode
    async def _create_replica(self, mount: dict, files: list[dict], absolute: Path, instance: dict):
        mapping: dict[str, str] = dict(instance.get("rse_mounts") or {})
        opts = mount["options"]
        if opts["rse"]:
            if opts["rse"] not in mapping:
                raise BadRequest(
                    f"RSE {opts['rse']} is not mounted on this host (mounted: {', '.join(mapping) or 'none'})", field="rse"
                )
            mapping = {opts["rse"]: mapping[opts["rse"]]}
        if not mapping:
            raise BadRequest(
                f"Rucio instance {instance['name']!r} has no RSE mounted on this host (rse_mounts); use cache or stream mode",
                field="mode",
            )
        replicas, local = await self._map_replicas(mount, files, mapping)
        rows = []
        missing = []
        for f in files:
            key = (f["scope"], f["name"])
            path = local.get(key)
            if path:
                rows.append({**f, "state": "done", "source": "replica", "local_path": path})
            else:
                missing.append(f)
                rows.append({**f, "state": "pending", "replicas": replicas.get(key, [])})
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
        self._insert(mount, rows)
        return self._run_rule

    async def _map_replicas(self, mount: dict, files: list[dict], mapping: dict[str, str]):
        replicas = await self.gateway.replicas(mount["instance"], files)
        protocols = await self.gateway.protocol_prefixes(mount["instance"], sorted(mapping))
        local: dict[tuple[str, str], str] = {}
        for f in files:
            key = (f["scope"], f["name"])
            for r in replicas.get(key, []):
                if r["rse"] not in mapping:
                    continue
                path = resolve.map_to_local(r["url"], mapping, protocols, r["rse"])
                if path and _size(path) == f["bytes"]:
                    local[key] = path
                    break
        return replicas, local

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
        token = _Once(self._token)  # asked for only when a root:// source is actually tried
        unique: dict[tuple[str, str], list[dict]] = {}
        for f in pending:
            unique.setdefault((f["scope"], f["name"]), []).append(f)
        # Promise room for what is still to fetch (files already being fetched hold their own).
        promised = {key: group[0]["bytes"] for key, group in unique.items() if key not in self._inflight}
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
                    await self._fetch_group(job, mount, group, token)
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
        files = self.store.files(mount_id)
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

    async def _fetch_group(self, job: Job, mount: dict, group: list[dict], token: _Once) -> None:
        """Fetch one file (``group``: its rows in this mount, usually one) into the cache."""
        f = group[0]
        key = (f["scope"], f["name"])
        while key in self._inflight:  # another mount, or this one's early fetch, has it: wait, do not fetch twice
            await asyncio.shield(self._inflight[key])
        early = self._early.get(job.mount_id)
        outcome = early.outcomes.pop(key, None) if early else None
        hit = self.cache.lookup(f) if outcome is None else None
        if outcome is not None or hit:
            with self.store.tx():
                self._record(job.mount_id, group, outcome or _Outcome(Path(hit), "cache"))
            return
        done = asyncio.get_running_loop().create_future()
        self._inflight[key] = done
        try:
            sources = self._sources(mount, f["replicas"])
            await self._fetch_verified(f, sources, job, token, rows=group)
        finally:
            self._inflight.pop(key, None)
            done.set_result(None)

    def _record(self, mount_id: str, group: list[dict], outcome: _Outcome) -> None:
        """A file's rows in one mount, from what fetching it came to."""
        for row in group:
            if outcome.final is None:
                self.store.set_file(mount_id, row["path"], state="failed", error=outcome.error)
            else:
                self.store.set_file(
                    mount_id, row["path"], state="done", source=outcome.source, local_path=str(outcome.final),
                    error=outcome.note,
                )  # fmt: skip

    async def _fetch_verified(
        self, f: dict, sources: list[resolve.Source], job: Job, token: _Once, rows: list[dict] | None = None
    ) -> _Outcome:
        """Copy ``f`` into the cache from the first of ``sources`` that delivers it intact.

        ``job`` gets the progress and can cancel; ``rows`` (the file's rows in the job's
        mount) are recorded in the same transaction as the cache entry, so a crash
        never leaves one without the other.
        """
        if not self.cache.fits(f["bytes"]):
            self.cache.make_room(f["bytes"])
            if not self.cache.fits(f["bytes"]):
                room = self.cache.room()
                raise DiskFull(
                    f"the cache is full: {f['path']} needs {human(f['bytes'])}; {human(room.used)} of the "
                    f"{human(room.quota)} quota is in use by mounts, {human(room.disk_free)} free on disk"
                )
        self.cache.reserved += f["bytes"]
        try:
            outcome = await self._try_sources(f, sources, job, token)
        finally:
            self.cache.reserved -= f["bytes"]
        if outcome.final is None and not rows:
            return outcome  # nothing to record: the job records it when it takes the file over
        with self.store.tx():  # one commit per file: the cache entry, the counters, the mount's rows
            if outcome.final is not None:
                outcome.final = self.cache.commit(outcome.final, f["scope"], f["name"], outcome.adler32, f["bytes"])
                self.store.bump(files_fetched=1, bytes_fetched=f["bytes"])
            if rows:
                self._record(job.mount_id, rows, outcome)
        return outcome

    async def _try_sources(self, f: dict, sources: list[resolve.Source], job: Job, token: _Once) -> _Outcome:
        """Try ``sources`` in order; the outcome's ``final`` is the verified temporary file."""
        attempts: list[str] = []
        corrupt_rses: set[str] = set()
        loop = asyncio.get_running_loop()
        for source in sources:
            if source.rse in corrupt_rses:
                continue  # the same bad replica, only by another path (XCache, root://): skip it
            tmp = self.cache.incoming_path(f["scope"], f["name"])
            slot = [f["bytes"], 0]
            job.active[f["path"]] = slot

            def progress(n: int, slot=slot) -> None:
                slot[1] += n
                job.fetched += n

            bearer = await token() if source.url.startswith("root") else None
            try:
                copy = functools.partial(
                    fetch, source.url, tmp, expected_bytes=f["bytes"], expected_adler32=f["adler32"], progress=progress,
                    cancel=job.cancel, token=bearer,
                )  # fmt: skip
                checksum = await loop.run_in_executor(self._pool, copy)
            except (FetchError, Cancelled) as exc:
                job.fetched -= slot[1]  # those bytes were thrown away
                if isinstance(exc, Cancelled):
                    raise asyncio.CancelledError() from None
                what = "refused (checksum)" if isinstance(exc, ChecksumMismatch) else "failed"
                attempts.append(f"{source.rse} via {source.kind}: {what}: {exc}")
                if isinstance(exc, ChecksumMismatch):
                    corrupt_rses.add(source.rse)
                    self.store.bump(checksum_mismatches=1)
                    self.log.warning("af-lab: %s:%s from %s: %s (discarded)", f["scope"], f["name"], redact(source.url), exc)
                continue
            except asyncio.CancelledError:
                tmp.unlink(missing_ok=True)
                raise
            finally:
                job.active.pop(f["path"], None)
            note = ("recovered after: " + " | ".join(attempts)) if attempts else None
            return _Outcome(tmp, f"{source.rse} ({source.kind})", note, adler32=checksum)
        return _Outcome(None, error=" | ".join(attempts) or "no replica can be read from here")

    async def _pusher(self, job: Job) -> None:
        while True:
            await asyncio.sleep(PUBLISH_INTERVAL)
            self._push_id(job.mount_id)

    async def _token(self) -> str | None:
        """The user's bearer token for root:// reads, from the credential service (never the browser)."""
        creds = self.credentials
        if creds is None:
            return None
        try:
            token, _exp = await creds.bearer_token()
            return token
        except AFLabError as exc:  # storage may not need one; if it does, reads fail with "access denied"
            self.log.info("af-lab: no bearer token for root:// reads: %s", exc.message)
            return None

    # ------------------------------------------------------------------ rule job
    async def _run_rule(self, job: Job) -> None:
        while True:
            mount = self._mount(job.mount_id)
            rule = dict(mount["rule"] or {})
            try:
                info = await self.gateway.rule(mount["instance"], rule["id"])
            except ServiceUnavailable as exc:
                self.store.update_mount(job.mount_id, message=f"{exc.message} (will check again)")
                self._push_id(job.mount_id)
                await asyncio.sleep(self.rule_poll_interval)
                continue
            rule.update(info)
            self.store.update_mount(job.mount_id, rule=rule)
            if info["state"] == "OK":
                break
            if info["state"] in ("STUCK", "SUSPENDED"):
                why = info.get("error") or "no reason given"
                raise AFLabError(f"Rucio could not replicate the data to {rule.get('rse')}: rule {rule['id']} is {info['state']} ({why})")
            self.store.update_mount(
                job.mount_id,
                message=f"Rucio is replicating to {rule.get('rse')}: {info['locks_ok_cnt']} of {info['locks_total']} files there",
            )
            self._push_id(job.mount_id)
            await asyncio.sleep(self.rule_poll_interval)
        instance = self._instance(mount["instance"])
        mapping = {rule["rse"]: instance.get("rse_mounts", {})[rule["rse"]]}
        files = self.store.files(job.mount_id)
        _replicas, local = await self._map_replicas(mount, files, mapping)
        for f in files:
            path = local.get((f["scope"], f["name"]))
            if f["state"] != "done" and path:
                self.store.set_file(job.mount_id, f["path"], state="done", source="replica", local_path=path, error=None)
        files = self.store.files(job.mount_id)
        missing = [f for f in files if f["state"] != "done"]
        if missing:
            raise AFLabError(f"rule {rule['id']} is OK but {len(missing)} files are not readable under {mapping[rule['rse']]}")
        await self._publish_links(mount, self.root_dir / mount["target"], [(f["path"], f["local_path"]) for f in files])
        self._finish(job.mount_id, "ready", f"{len(files)} files, linked to their replicas on {rule['rse']}")

    # ================================================================== helpers
    def _insert(self, mount: dict, rows: list[dict]) -> None:
        try:
            self.store.insert_mount(mount, rows)
        except sqlite3.IntegrityError:  # two requests raced for one target: the second one loses cleanly
            raise Conflict(f"{mount['target']} is being mounted by another request", field="target") from None

    async def _insert_and_publish(self, mount: dict, rows: list[dict], absolute: Path) -> None:
        """Record a complete mount, then make it appear; if it cannot appear, it was never there."""
        self._insert(mount, rows)
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

    def _location(self, mount: dict, f: dict) -> str:
        """What a kernel opens: the workspace path of the link (cache, replica) or the URL (stream)."""
        if mount["mode"] == "stream":
            return f["local_path"]
        target = self.root_dir / mount["target"]
        return str(target if mount["did_type"] == "file" else target / f["path"])

    def _file_json(self, mount: dict, f: dict) -> dict[str, Any]:
        return {
            "path": f["path"], "did": f"{f['scope']}:{f['name']}", "bytes": f["bytes"], "adler32": f["adler32"],
            "state": f["state"], "source": f["source"], "error": f["error"],
            "location": self._location(mount, f) if f["state"] == "done" else None,
        }  # fmt: skip

    def _summary(self, mount: dict, counts: dict | None = None) -> dict[str, Any]:
        if counts is None:
            counts = self.store.file_counts(mount["id"]).get(mount["id"], {})
        total_files = sum(c["files"] for c in counts.values())
        total_bytes = sum(c["bytes"] for c in counts.values())
        done = counts.get("done", {"files": 0, "bytes": 0})
        failed = counts.get("failed", {"files": 0, "bytes": 0})
        job = self._jobs.get(mount["id"])
        active = []
        in_flight = 0
        rate = 0.0
        if job:
            for path, (size, got) in list(job.active.items()):
                active.append({"path": path, "bytes": size, "bytes_done": got})
                in_flight += got
            rate = job.rate()
        bytes_done = done["bytes"] + in_flight
        remaining = total_bytes - bytes_done - failed["bytes"]
        opts = mount["options"]
        out = {
            "id": mount["id"],
            "did": f"{mount['scope']}:{mount['name']}",
            "did_type": mount["did_type"],
            "instance": mount["instance"],
            "mode": mount["mode"],
            "source": opts.get("source", "auto"),
            "state": mount["state"],
            "message": mount["message"],
            "target": mount["target"],
            "created": mount["created"],
            "updated": mount["updated"],
            "finished": mount["finished"],
            "files": {"total": total_files, "done": done["files"], "failed": failed["files"], "active": len(active)},
            "bytes": {"total": total_bytes, "done": bytes_done, "failed": failed["bytes"]},
            "rate_bytes_per_s": round(rate, 1),
            "eta_s": round(remaining / rate, 1) if rate > 0 and remaining > 0 and mount["state"] == "fetching" else None,
            "active": active,
            "problems": self.store.errors(mount["id"], limit=10) if (failed["files"] or mount["state"] in ("failed", "ready")) else [],
            "timings": opts.get("timings", {}) | ({"link_ms": opts["link_ms"]} if "link_ms" in opts else {}),
        }
        if mount.get("rule"):
            r = mount["rule"]
            out["rule"] = {k: r.get(k) for k in ("id", "rse", "state", "locks_ok_cnt", "locks_replicating_cnt", "locks_stuck_cnt", "locks_total", "expires_at")}
        if mount["mode"] == "stream":
            out["fileset"] = mount["target"]
        return out


# ---------------------------------------------------------------------- small helpers
def _by_key(files: list[dict]) -> dict[tuple[str, str], dict]:
    return {(f["scope"], f["name"]): f for f in files}


class _Once:
    """Await ``factory()`` the first time only; later calls return the same result."""

    def __init__(self, factory: Callable):
        self._factory = factory
        self._task: asyncio.Task | None = None

    async def __call__(self) -> Any:
        if self._task is None:
            self._task = asyncio.ensure_future(self._factory())
        return await asyncio.shield(self._task)


def _readable(path: str) -> bool:
    return os.access(path, os.R_OK)


def _size(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None
