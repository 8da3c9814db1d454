"""The fetch engine of cache-mode mounts: jobs, their progress, and copying one file into the cache.

A :class:`Job` is what a running mount reports into (per-file progress, bytes moved,
its cancel event). :class:`Fetcher` copies one file from the first of its sources that
delivers it intact (adler32 checked as it is written), commits it to the cache and
records the mount's rows in the same transaction. It remembers replicas found corrupt,
so no later mount (stream mode included) is handed them again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InsufficientStorage
from ..units import human_bytes as human
from . import resolve
from .cache import Cache
from .fetch import Cancelled, ChecksumMismatch, DiskFull, FetchError, fetch, redact
from .store import Store

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
class Outcome:
    """What fetching one file came to: a verified cache path and where it came from, or the error."""

    final: Path | None
    source: str = ""
    note: str | None = None  # earlier sources that failed before one worked
    error: str = ""
    adler32: str = ""


class EarlyFetch:
    """Fetches started while Rucio is still listing a new mount's replicas.

    Rucio streams ``list_replicas`` a file at a time (~1.5 ms per file after a 0.1 s
    first answer here), so waiting for the whole listing before the first copy costs
    as much as the copies themselves. Each file is fetched into the cache as soon
    as its replicas are known; the mount's job then takes over what is left. Files
    fetched early are ordinary verified cache entries, so if the mount is refused
    (a file with no replica) or cancelled, nothing is lost and nothing is wrong.
    """

    def __init__(self, job: Job, concurrency: int, token: Once):
        self.job = job  # the mount's job-to-be: its progress and its cancel cover these fetches too
        self.gate = asyncio.Semaphore(concurrency)
        self.token = token  # one bearer-token lookup for all of them, only if a root:// source is tried
        self.tasks: dict[tuple[str, str], asyncio.Task] = {}
        self.outcomes: dict[tuple[str, str], Outcome] = {}

    async def stop(self) -> None:
        self.job.cancel.set()
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)


class Once:
    """Await ``factory()`` the first time only; later calls return the same result."""

    def __init__(self, factory: Callable):
        self._factory = factory
        self._task: asyncio.Task | None = None

    async def __call__(self) -> Any:
        if self._task is None:
            self._task = asyncio.ensure_future(self._factory())
        return await asyncio.shield(self._task)


class Fetcher:
    def __init__(self, store: Store, cache: Cache, pool: ThreadPoolExecutor, log: logging.Logger):
        self.store = store
        self.cache = cache
        self.pool = pool
        self.log = log
        self.inflight: dict[tuple[str, str], asyncio.Future] = {}  # (scope, name) being fetched -> its end
        self.corrupt: set[tuple[str, str, str]] = set()  # (scope, name, rse) whose bytes failed their checksum

    async def fetch_group(self, job: Job, group: list[dict], early: EarlyFetch | None, sources: list[resolve.Source],
                          token: Once) -> None:
        """Fetch one file (``group``: its rows in this mount, usually one) into the cache, unless another
        mount or this one's early fetch has it or is fetching it: each file is read from storage once."""
        f = group[0]
        key = (f["scope"], f["name"])
        while key in self.inflight:  # another mount, or this one's early fetch, has it: wait, do not fetch twice
            await asyncio.shield(self.inflight[key])
        outcome = early.outcomes.pop(key, None) if early else None
        hit = self.cache.lookup(f) if outcome is None else None
        if outcome is not None or hit:
            with self.store.tx():
                self.record(job.mount_id, group, outcome or Outcome(Path(hit), "cache"))
            return
        done = asyncio.get_running_loop().create_future()
        self.inflight[key] = done
        try:
            await self.fetch_verified(f, sources, job, token, rows=group)
        finally:
            self.inflight.pop(key, None)
            done.set_result(None)

    def record(self, mount_id: str, group: list[dict], outcome: Outcome) -> None:
        """A file's rows in one mount, from what fetching it came to."""
        for row in group:
            if outcome.final is None:
                self.store.set_file(mount_id, row["path"], state="failed", error=outcome.error)
            else:
                self.store.set_file(
                    mount_id, row["path"], state="done", source=outcome.source, local_path=str(outcome.final),
                    error=outcome.note,
                )  # fmt: skip

    async def fetch_verified(
        self, f: dict, sources: list[resolve.Source], job: Job, token: Once, rows: list[dict] | None = None
    ) -> Outcome:
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
            outcome = await self.try_sources(f, sources, job, token)
        finally:
            self.cache.reserved -= f["bytes"]
        if outcome.final is None and not rows:
            return outcome  # nothing to record: the job records it when it takes the file over
        with self.store.tx():  # one commit per file: the cache entry, the counters, the mount's rows
            if outcome.final is not None:
                outcome.final = self.cache.commit(outcome.final, f["scope"], f["name"], outcome.adler32, f["bytes"])
                self.store.bump(files_fetched=1, bytes_fetched=f["bytes"])
            if rows:
                self.record(job.mount_id, rows, outcome)
        return outcome

    async def try_sources(self, f: dict, sources: list[resolve.Source], job: Job, token: Once) -> Outcome:
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
                checksum = await loop.run_in_executor(self.pool, copy)
            except (FetchError, Cancelled) as exc:
                job.fetched -= slot[1]  # those bytes were thrown away
                if isinstance(exc, Cancelled):
                    raise asyncio.CancelledError() from None
                what = "refused (checksum)" if isinstance(exc, ChecksumMismatch) else "failed"
                attempts.append(f"{source.rse} via {source.kind}: {what}: {exc}")
                if isinstance(exc, ChecksumMismatch):
                    corrupt_rses.add(source.rse)
                    self.corrupt.add((f["scope"], f["name"], source.rse))
                    self.store.bump(checksum_mismatches=1)
                    self.log.warning("af-lab: %s:%s from %s: %s (discarded)", f["scope"], f["name"], redact(source.url), exc)
                continue
            except asyncio.CancelledError:
                tmp.unlink(missing_ok=True)
                raise
            finally:
                job.active.pop(f["path"], None)
            note = ("recovered after: " + " | ".join(attempts)) if attempts else None
            return Outcome(tmp, f"{source.rse} ({source.kind})", note, adler32=checksum)
        return Outcome(None, error=" | ".join(attempts) or "no replica can be read from here")

    def fetch_early(self, early: EarlyFetch, f: dict, sources: list[resolve.Source]) -> None:
        """Start fetching ``f`` now that its replicas are known (on the loop; bounded by the gate)."""
        key = (f["scope"], f["name"])
        if early.job.cancel.is_set() or key in early.tasks or key in self.inflight:
            return  # refused, already started, or another mount is fetching it
        if not sources:
            return  # the listing's end reports it
        done = asyncio.get_running_loop().create_future()
        self.inflight[key] = done  # other mounts (and this mount's job) wait for it

        async def run() -> None:
            try:
                async with early.gate:
                    if early.job.cancel.is_set() or self.cache.lookup(f):
                        return
                    early.outcomes[key] = await self.fetch_verified(f, sources, early.job, early.token)
            except (asyncio.CancelledError, DiskFull, Cancelled):
                pass  # the job fetches it again, and reports a full disk itself
            finally:
                if self.inflight.get(key) is done:
                    del self.inflight[key]
                done.set_result(None)

        early.tasks[key] = asyncio.get_running_loop().create_task(run())

    def check_room(self, need: int, mount: dict, also_pinned: int = 0) -> None:
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
