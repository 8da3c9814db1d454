"""A publish job: workspace files to Rucio in the background, surviving restarts.

A job goes through these phases, each persisted before it starts, so a killed
server resumes at the right place:

  checking     adler32 (md5 if configured) of every local file, in parallel threads; names already
               in Rucio are compared: same content -> skipped, other content -> refused
  copying      each file to its PFN on the RSE through the RSE protocol, verified
               there (size, adler32) and against the local file (vanished/changed)
  registering  replicas + attachments in bulk, ≤500 DIDs per call, each call one
               server transaction; a new dataset is created *with* its first chunk
  protecting   the replication rule with the lifetime (on the new dataset, else per file)
  finishing    container attachment and provenance metadata

Before ``registering`` nothing exists in Rucio, so a failure rolls back by deleting
the copies this job made (never a local file). From ``registering`` on, every
step is idempotent and the job only rolls forward; replicas are registered
AVAILABLE (bytes already verified), so Rucio never holds a COPYING replica from
us, and the rule follows the registration. Progress goes out on the event bus
(topic ``publish/<job id>``), rate-limited, each event carrying the job's full state.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import AFLabError, Conflict, FileChanged, ServiceUnavailable
from ..paths import signature
from ..rucio.upload import same_adler
from . import workspace
from .checks import free_name, human
from .context import Interrupted, JobContext
from .registration import Registration

if TYPE_CHECKING:
    from ..vault.credentials import CredentialService

CANCELLED = (
    "Cancelled. The copies made so far were removed from the RSE; nothing was registered in Rucio. "
    "Your local files are untouched."
)
FLUSH_INTERVAL = 0.5  # seconds between batched writes of per-file states
ACTIVE = ("queued", "running")
ENDED = ("done", "failed", "cancelled")


class JobRunner:
    """Runs publish jobs as tasks: owns the tasks, the live documents of running jobs, cancel
    requests and the thread pool that hashes and copies. :class:`~af_lab.publish.service.PublishService`
    owns one and asks it to start, cancel and close; the phases from ``registering`` on are
    :class:`~af_lab.publish.registration.Registration`'s."""

    def __init__(
        self,
        ctx: JobContext,
        credentials: CredentialService | None,
        root_dir: str,
        concurrency: int,
        md5: bool,
        log: logging.Logger,
    ):
        self.ctx = ctx
        self.store = ctx.store
        self.gateway = ctx.gateway
        self.credentials = credentials  # the bearer token for token-authenticated storage
        self.root_dir = root_dir
        self.concurrency = concurrency
        self.md5 = md5
        self.log = log
        self.registration = Registration(ctx, root_dir)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="af-publish")
        self._tasks: dict[str, asyncio.Task] = {}
        self._live: dict[str, dict[str, Any]] = {}  # job documents of running jobs
        self._cancel: set[str] = set()
        self._closed = False

    # ------------------------------------------------------------ what the service asks

    async def resume_all(self) -> None:
        """Start the jobs a previous server left running."""
        if self._closed:
            return
        try:
            pending = await self.store.run(self.store.jobs, ACTIVE, 10_000)
        except Exception as exc:  # a broken state file must not stop the server
            self.log.error("af-lab publish: cannot read the job store: %s", exc)
            return
        for job in pending:
            self.log.info("af-lab publish: resuming job %s (%s)", job["id"], job["phase"])
            self.start(job["id"])

    def start(self, job_id: str) -> None:
        if self._closed or (job_id in self._tasks and not self._tasks[job_id].done()):
            return
        task = asyncio.get_running_loop().create_task(self._run(job_id), name=f"af-lab publish {job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(lambda t, j=job_id: self._tasks.pop(j, None) if self._tasks.get(j) is t else None)

    def live(self, job_id: str) -> dict[str, Any] | None:
        """A running job's document: its progress lives in memory between saves."""
        return self._live.get(job_id)

    async def job(self, job_id: str) -> dict[str, Any] | None:
        """The job's document, live if it runs, else as stored."""
        return self.live(job_id) or await self.store.run(self.store.get, job_id)

    async def cancel(self, job: dict[str, Any]) -> dict[str, Any]:
        """Stop the job's task (if it runs) and undo what it copied; the job as it ended."""
        task = self._tasks.get(job["id"])
        if task is not None and not task.done():
            self._cancel.add(job["id"])
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            job = await self.job(job["id"]) or job
            if job["state"] in ENDED:
                return job
        await self._rollback(job, state="cancelled", message=CANCELLED)
        return job

    async def close(self) -> None:
        self._closed = True
        tasks = [t for t in self._tasks.values() if not t.done()]
        for t in tasks:
            t.cancel()  # jobs stay "running" in the store: the next start resumes them
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pool.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------ running, failing, rolling back

    async def _run(self, job_id: str) -> None:
        job = await self.store.run(self.store.get, job_id)
        if job is None:
            return
        job.update(state="running", error=None, resumable=False, _phase_started=time.time())
        self._live[job_id] = job
        await self.ctx.save(job)
        try:
            if not job["steps"].get("register_started"):
                await self._check(job)
                if await self._done_if_noop(job):
                    await self.ctx.save(job)
                    return
                await self._copy(job)
            await self.registration.register(job)
            await self.registration.protect(job)
            await self.registration.finish(job)
            await self._finish(job)
        except asyncio.CancelledError:
            cancel = job_id in self._cancel
            self._cancel.discard(job_id)
            if cancel and not job["steps"].get("register_started"):
                await self._rollback(job, state="cancelled", message=CANCELLED)
            else:
                await self.ctx.save(job)  # server shutdown (or too late to cancel): resumed at the next start
                if cancel and not self._closed:
                    asyncio.get_running_loop().call_soon(self.start, job_id)
            raise
        except Interrupted as why:
            job.update(
                state="interrupted",
                resumable=True,
                error=why.error.to_json()["error"],
                message=why.error.message + " The job is paused: files copied so far stay on the RSE and "
                "nothing is lost. Retry it once the problem is solved, or cancel it"
                + (
                    "."
                    if not job["steps"].get("register_started")
                    else " (registration already began, so retrying is the way to complete it)."
                ),
            )
            await self.ctx.save(job)
        except AFLabError as exc:
            await self._fail(job, exc)
        except Exception as exc:
            self.log.exception("af-lab publish: job %s failed unexpectedly", job_id)
            await self._fail(job, ServiceUnavailable(f"Publishing failed unexpectedly: {type(exc).__name__}: {exc}"))
        finally:
            self._live.pop(job_id, None)

    async def _fail(self, job: dict[str, Any], exc: AFLabError) -> None:
        if job["steps"].get("register_started"):
            # Rucio already holds part of this job: roll forward later instead of leaving it half done.
            job.update(
                state="interrupted",
                resumable=True,
                error=exc.to_json()["error"],
                message=f"{exc.message} Registration had begun, so the job is paused rather than undone; "
                "retry it to complete the registration.",
            )
            await self.ctx.save(job)
            return
        job["error"] = exc.to_json()["error"]
        await self._rollback(
            job,
            state="failed",
            message=exc.message + " Nothing was registered in Rucio and your local files are untouched.",
        )

    async def _rollback(self, job: dict[str, Any], state: str, message: str) -> None:
        """Undo a job that registered nothing: delete the copies it made on the RSE (never a local file).

        Only PFNs of names that did not exist in Rucio at submit (or that this job stored) are
        touched; a name that existed keeps its replica.
        """
        job["phase"] = "rolling back"
        self.ctx.emit(job, force=True)
        rows = await self.store.run(self.store.files, job["id"])
        ours = [r for r in rows if r["state"] == "stored" or (r["state"] == "hashed" and not r["taken"])]
        removed, left = 0, []
        if ours and job["steps"].get("copy_started"):
            try:
                rse = job["request"]["rse"]
                settings = await self.gateway.rse_settings(job["request"]["instance"], rse)
                storage = await self.gateway.storage(settings)
                scope = job["request"]["scope"]

                def clean(row) -> int:
                    if row["state"] == "stored":  # recorded as ours once verified: remove it
                        return storage.remove_copies(row["pfn"])
                    # Perhaps copied before a crash but not yet recorded: ours only if the bytes match.
                    return storage.remove_if_ours(storage.pfn(scope, row["name"]), row["bytes"], row["adler32"])

                loop = asyncio.get_running_loop()
                results = await asyncio.gather(
                    *(loop.run_in_executor(self._pool, clean, r) for r in ours), return_exceptions=True
                )
                removed = sum(r for r in results if isinstance(r, int))
                left = [r["rel"] for r, res in zip(ours, results, strict=True) if isinstance(res, BaseException)]
            except AFLabError as exc:
                left = [f"all ({exc.message})"]
        await self.store.run(
            self.store.update_files, job["id"], [(r["idx"], {"state": "rolled back", "pfn": None}) for r in ours]
        )
        job.update(state=state, phase="ended", resumable=False, message=message)
        if left:
            job["warnings"].append(
                f"Copies of {len(left)} file(s) could not be removed from the RSE (they are not "
                "registered in Rucio): " + ", ".join(left[:5])
            )
        job["progress"]["files_removed"] = removed
        await self.ctx.save(job)

    # --------------------------------------------------- phase: checking

    async def _check(self, job: dict[str, Any]) -> None:
        self.ctx.set(job, phase="checking", message="Computing checksums.")
        await self.ctx.save(job)
        rows = await self.store.run(self.store.files, job["id"], ["pending"])
        root = Path(self.root_dir)
        progress = job["progress"]
        updates: list[tuple[int, dict]] = []
        loop = asyncio.get_running_loop()

        last_wakeup = [0.0]

        def hashed(n: int) -> None:
            progress["bytes_hashed"] += n  # plain int add from worker threads: the GIL makes it safe enough
            # Wake the loop at most every 0.1 s (emit is rate-limited anyway): one wake-up per chunk
            # cost the loop more than the checksum itself.
            now = time.monotonic()
            if now - last_wakeup[0] > 0.1:
                last_wakeup[0] = now
                loop.call_soon_threadsafe(self.ctx.emit, job)

        def one(row):
            path = root / row["rel"]
            before = signature(path)
            if before is None:
                raise FileChanged(f"{row['rel']} vanished before it could be published.", path=row["rel"])
            if before != (row["bytes"], row["mtime_ns"]):
                raise FileChanged(
                    f"{row['rel']} changed after the publish was requested (size or modification "
                    "time moved). Publish it again once it is complete.",
                    path=row["rel"],
                )
            adler, md5, size = workspace.checksums(path, hashed, with_md5=self.md5)
            if signature(path) != before or size != row["bytes"]:
                raise FileChanged(f"{row['rel']} changed while its checksum was computed.", path=row["rel"])
            return row["idx"], {"adler32": adler, "md5": md5, "state": "hashed"}

        await self._parallel(job, rows, one, updates)
        # Names that existed at submit with the same size: same checksum -> nothing to do, else refuse.
        taken = [r for r in await self.store.run(self.store.files, job["id"], ["hashed"]) if r["taken"]]
        if taken:
            scope = job["request"]["scope"]
            metas = await self.ctx.rucio(
                job,
                "comparing with the DIDs already in Rucio",
                self.gateway.existing_dids,
                scope,
                [r["name"] for r in taken],
            )
            same, differ = [], []
            for r in taken:
                meta = metas.get(r["name"])
                if meta is not None and same_adler(meta.get("adler32"), r["adler32"]):
                    same.append(r)
                elif meta is not None:
                    differ.append(r)
                # vanished from Rucio meanwhile (an expired DID): publish it as new
            if differ:
                first = differ[0]
                alt = await self.ctx.rucio(
                    job, "looking for a free name", functools.partial(free_name, self.gateway), scope, first["name"]
                )
                raise Conflict(
                    f"{scope}:{first['name']} already exists in Rucio with different content (adler32 "
                    f"{metas[first['name']].get('adler32')}, yours {first['adler32']}). Rucio DIDs are immutable: "
                    f"publish under a new name" + (f", for example {alt}." if alt else "."),
                    field="name",
                    suggestion=alt,
                    taken=[r["name"] for r in differ[:50]],
                )
            await self.store.run(self.store.update_files, job["id"], [(r["idx"], {"state": "existing"}) for r in same])
            progress["files_skipped"] = len(same)

    async def _done_if_noop(self, job: dict[str, Any]) -> bool:
        counts = await self.store.run(self.store.counts, job["id"])
        if set(counts) - {"existing"}:
            return False
        ds = job.get("dataset")
        if ds and ds.get("new"):
            return False
        if ds or job.get("container"):
            return False  # the files exist but may still need attaching: the later phases do only that
        what = f"{job['did']} exists" if job["did"] else f"all {job['files_total']} files exist"
        job.update(
            state="done",
            phase="ended",
            noop=True,
            resumable=False,
            message=f"Already published: {what} in Rucio with exactly this content (same size and "
            "adler32). Nothing was copied or changed.",
        )
        job["progress"].update(files_done=job["files_total"], bytes_done=job["bytes_total"])
        return True

    # ---------------------------------------------------- phase: copying

    async def _copy(self, job: dict[str, Any]) -> None:
        rows = await self.store.run(self.store.files, job["id"], ["hashed"])
        self.ctx.set(job, phase="copying", message=f"Copying {len(rows)} file(s) to {job['request']['rse']}.")
        job["steps"]["copy_started"] = True
        await self.ctx.save(job)
        if not rows:
            return
        rse = job["request"]["rse"]
        settings = await self.ctx.rucio(job, f"reading the description of {rse}", self.gateway.rse_settings, rse)
        storage = await self.gateway.storage(settings, await self._storage_token(settings))
        scope = job["request"]["scope"]
        root = Path(self.root_dir)
        progress = job["progress"]
        done = await self.store.run(self.store.counts, job["id"])
        progress["files_done"] = done.get("stored", (0, 0))[0] + done.get("existing", (0, 0))[0]
        progress["bytes_done"] = done.get("stored", (0, 0))[1] + done.get("existing", (0, 0))[1]

        def one(row):
            stored = storage.store(
                str(root / row["rel"]), scope, row["name"], row["bytes"], row["adler32"], row["mtime_ns"]
            )
            progress["files_done"] += 1
            progress["bytes_done"] += row["bytes"]
            return row["idx"], {"state": "stored", "pfn": stored.pfn}

        await self._parallel(job, rows, one, [])

    async def _storage_token(self, settings: dict[str, Any]) -> str | None:
        """The user's bearer token for token-authenticated storage (WebDAV, XRootD); posix needs none."""
        if all(p.get("scheme") == "file" for p in settings.get("protocols") or []):
            return None
        creds = self.credentials
        if creds is None:
            return None
        try:
            token, _exp = await creds.bearer_token()
        except AFLabError as exc:
            self.log.warning("af-lab publish: no bearer token for the storage: %s", exc.message)
            return None
        return token

    async def _parallel(self, job: dict[str, Any], rows: list[dict], fn, updates: list) -> None:
        """Run ``fn(row)`` over rows in the thread pool, at most ``concurrency`` at a time.

        Per-file results are written in batches. The first failure stops new work and is raised
        once the calls in flight have returned: a thread cannot be stopped mid-copy, and a
        rollback must not race a copy that is still writing.
        """
        sem = asyncio.Semaphore(self.concurrency)
        failure: list[BaseException] = []
        inflight: set[concurrent.futures.Future] = set()
        last_flush = time.monotonic()

        async def flush(force: bool = False) -> None:
            nonlocal last_flush
            if updates and (force or len(updates) >= 500 or time.monotonic() - last_flush > FLUSH_INTERVAL):
                batch = updates[:]
                updates.clear()
                last_flush = time.monotonic()
                await self.store.run(self.store.update_files, job["id"], batch)

        async def run(row):
            async with sem:
                if failure:
                    return
                cf = self._pool.submit(fn, row)
                inflight.add(cf)
                try:
                    result = await asyncio.wrap_future(cf)
                except asyncio.CancelledError:
                    raise
                except BaseException as exc:  # noqa: BLE001 - the first one is raised below
                    failure.append(exc)
                    return
                finally:
                    inflight.discard(cf)
                updates.append(result)
                self.ctx.emit(job)
                await flush()

        try:
            window = max(64, self.concurrency * 16)  # bounded task count for folders of 10⁵ files
            for start in range(0, len(rows), window):
                await asyncio.gather(*(run(r) for r in rows[start : start + window]))
                if failure:
                    break
        except asyncio.CancelledError:
            running = [cf for cf in inflight if not cf.cancel()]
            if running:
                await asyncio.to_thread(concurrent.futures.wait, running)
            await flush(force=True)
            raise
        await flush(force=True)
        self.ctx.emit(job, force=True)
        if failure:
            exc = failure[0]
            if isinstance(exc, AFLabError):
                raise exc
            raise ServiceUnavailable(f"Copying to {job['request']['rse']} failed: {exc}")

    # ------------------------------------------------- the end of a job

    async def _finish(self, job: dict[str, Any]) -> None:
        counts = await self.store.run(self.store.counts, job["id"])
        new_n, new_b = counts.get("registered", (0, 0))
        same_n, same_b = counts.get("existing", (0, 0))
        req = job["request"]
        target = job["did"] or f"{req['scope']} ({new_n + same_n} files)"
        expires = (
            f"; the rule expires {job['expires_at'][:10]}" if job.get("expires_at") else "; the rule never expires"
        )
        msg = f"Published {new_n} file(s), {human(new_b)}, as {target} on {req['rse']}{expires}."
        if same_n:
            msg += f" {same_n} file(s) were already in Rucio with the same content and were not copied again."
        if job.get("container"):
            msg += f" Attached to {job['container']['did']}."
        if new_n == 0 and not (job.get("dataset") or {}).get("new"):
            job["noop"] = True
            msg = (
                f"Already published: the {same_n} file(s) exist in Rucio with exactly this content (same size "
                "and adler32), so nothing was copied."
            )
            attached = job["steps"].get("attached_existing", 0)
            if job.get("dataset"):
                msg += (
                    f" {attached} of them were attached to {job['dataset']['did']}."
                    if attached
                    else f" They are already in {job['dataset']['did']}."
                )
        job["progress"].update(files_done=new_n + same_n, bytes_done=new_b + same_b)
        self.ctx.clock(job)
        job.update(state="done", phase="ended", message=msg, resumable=False)
        await self.ctx.save(job)
