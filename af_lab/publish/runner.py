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
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import AFLabError, Conflict, ServiceUnavailable, Unauthorized
from . import workspace
from .catalogue import Catalogue
from .checks import human
from .registration import RegistrationPhases
from .storage import TMP_SUFFIX, FileChanged, Storage

TOPIC = "publish"
CANCELLED = (
    "Cancelled. The copies made so far were removed from the RSE; nothing was registered in Rucio. "
    "Your local files are untouched."
)
EVENT_INTERVAL = 0.25  # seconds between progress events of one job (phase changes always go out)
FLUSH_INTERVAL = 0.5  # seconds between batched writes of per-file states


class Interrupted(Exception):
    """The job cannot go on now (Rucio unreachable, credentials refused) but can be resumed as it is."""

    def __init__(self, error: AFLabError):
        super().__init__(error.message)
        self.error = error


class JobRunner(RegistrationPhases):
    """The phases of a publish job; :class:`~af_lab.publish.service.PublishService` is one.

    Split from the service for reading: the service owns the state used here (``store``,
    the thread ``_pool``, the Rucio ``gateway``, the ``_live`` documents of running jobs,
    ``_cancel`` requests) and the request side (options, checks, submit).
    The phases from ``registering`` on are in :class:`~af_lab.publish.registration.RegistrationPhases`.
    """

    # ---------------------------------------------- Rucio calls of a job

    async def _job_call(self, job: dict[str, Any], what: str, fn: Callable[..., Any], *args: Any) -> Any:
        """A catalogue step of a job, through the gateway (which already retried a rejected token once).
        Transient faults (Rucio or Vault unreachable) are retried with backoff for ``retry_window``
        seconds; then, or on credentials Rucio keeps refusing, the job is interrupted, resumable as it is."""
        instance, account = job["request"]["instance"], job["account"]
        deadline = time.monotonic() + self.retry_window
        delay = 1.0
        while True:
            try:
                return await self.gateway.call(instance, what, lambda api, *a: fn(Catalogue(api, account), *a), *args)
            except Unauthorized as exc:
                raise Interrupted(exc) from None
            except ServiceUnavailable as exc:
                if time.monotonic() >= deadline:
                    raise Interrupted(exc) from None
            self._set(job, message=f"Rucio is unreachable while {what}; retrying in {delay:.0f} s.")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    # ------------------------------------ running, failing, rolling back

    async def _run(self, job_id: str) -> None:
        job = await asyncio.to_thread(self.store.get, job_id)
        if job is None:
            return
        job.update(state="running", error=None, resumable=False, _phase_started=time.time())
        self._live[job_id] = job
        await self._save(job)
        try:
            if not job["steps"].get("register_started"):
                await self._phase_check(job)
                if self._done_if_noop(job):
                    await self._save(job)
                    return
                await self._phase_copy(job)
            await self._phase_register(job)
            await self._phase_protect(job)
            await self._phase_finish(job)
            await self._finish(job)
        except asyncio.CancelledError:
            cancel = job_id in self._cancel
            self._cancel.discard(job_id)
            if cancel and not job["steps"].get("register_started"):
                await self._rollback(job, state="cancelled", message=CANCELLED)
            else:
                await self._save(job)  # server shutdown (or too late to cancel): resumed at the next start
                if cancel and not self._closed:
                    asyncio.get_running_loop().call_soon(self._start, job_id)
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
            await self._save(job)
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
            await self._save(job)
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
        self._emit(job, force=True)
        rows = await asyncio.to_thread(self.store.files, job["id"])
        ours = [r for r in rows if r["state"] == "stored" or (r["state"] == "hashed" and not r["taken"])]
        removed, left = 0, []
        if ours and job["steps"].get("copy_started"):
            key = f"job:{job['id']}:rollback"
            try:
                rse = job["request"]["rse"]
                settings = await self._request_call(
                    key, job["request"]["instance"], f"reading {rse}", Catalogue.rse_settings, rse
                )
                storage = Storage(settings)
                scope = job["request"]["scope"]

                def clean(row) -> int:
                    if row["state"] == "stored":  # recorded as ours once verified: remove it
                        return storage.remove(row["pfn"] + TMP_SUFFIX) + storage.remove(row["pfn"])
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
        await asyncio.to_thread(
            self.store.update_files, job["id"], [(r["idx"], {"state": "rolled back", "pfn": None}) for r in ours]
        )
        job.update(state=state, phase="ended", resumable=False, message=message)
        if left:
            job["warnings"].append(
                f"Copies of {len(left)} file(s) could not be removed from the RSE (they are not "
                "registered in Rucio): " + ", ".join(left[:5])
            )
        job["progress"]["files_removed"] = removed
        await self._save(job)

    # --------------------------------------------------- phase: checking

    async def _phase_check(self, job: dict[str, Any]) -> None:
        self._set(job, phase="checking", message="Computing checksums.")
        await self._save(job)
        rows = await asyncio.to_thread(self.store.files, job["id"], ["pending"])
        root = Path(self.root_dir)
        progress = job["progress"]
        updates: list[tuple[int, dict]] = []
        loop = asyncio.get_running_loop()

        def hashed(n: int) -> None:
            progress["bytes_hashed"] += n  # plain int add from worker threads: the GIL makes it safe enough
            loop.call_soon_threadsafe(self._emit, job)

        def one(row):
            path = root / row["rel"]
            before = workspace.signature(path)
            if before is None:
                raise FileChanged(f"{row['rel']} vanished before it could be published.", path=row["rel"])
            if before != (row["bytes"], row["mtime_ns"]):
                raise FileChanged(
                    f"{row['rel']} changed after the publish was requested (size or modification "
                    "time moved). Publish it again once it is complete.",
                    path=row["rel"],
                )
            adler, md5, size = workspace.checksums(path, hashed, with_md5=self.md5)
            if workspace.signature(path) != before or size != row["bytes"]:
                raise FileChanged(f"{row['rel']} changed while its checksum was computed.", path=row["rel"])
            return row["idx"], {"adler32": adler, "md5": md5, "state": "hashed"}

        await self._parallel(job, rows, one, updates)
        # Names that existed at submit with the same size: same checksum -> nothing to do, else refuse.
        taken = [r for r in await asyncio.to_thread(self.store.files, job["id"], ["hashed"]) if r["taken"]]
        if taken:
            scope = job["request"]["scope"]
            metas = await self._job_call(
                job, "comparing with the DIDs already in Rucio", Catalogue.lookup, scope, [r["name"] for r in taken]
            )
            same, differ = [], []
            for r in taken:
                meta = metas.get(r["name"])
                if meta is not None and workspace.same_adler(meta.get("adler32"), r["adler32"]):
                    same.append(r)
                elif meta is not None:
                    differ.append(r)
                # vanished from Rucio meanwhile (an expired DID): publish it as new
            if differ:
                first = differ[0]
                alt = await self._job_call(job, "looking for a free name", Catalogue.free_name, scope, first["name"])
                raise Conflict(
                    f"{scope}:{first['name']} already exists in Rucio with different content (adler32 "
                    f"{metas[first['name']].get('adler32')}, yours {first['adler32']}). Rucio DIDs are immutable: "
                    f"publish under a new name" + (f", for example {alt}." if alt else "."),
                    field="name",
                    suggestion=alt,
                    taken=[r["name"] for r in differ[:50]],
                )
            await asyncio.to_thread(
                self.store.update_files, job["id"], [(r["idx"], {"state": "existing"}) for r in same]
            )
            progress["files_skipped"] = len(same)

    def _done_if_noop(self, job: dict[str, Any]) -> bool:
        counts = self.store.counts(job["id"])
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

    async def _phase_copy(self, job: dict[str, Any]) -> None:
        rows = await asyncio.to_thread(self.store.files, job["id"], ["hashed"])
        self._set(job, phase="copying", message=f"Copying {len(rows)} file(s) to {job['request']['rse']}.")
        job["steps"]["copy_started"] = True
        await self._save(job)
        if not rows:
            return
        rse = job["request"]["rse"]
        settings = await self._job_call(job, f"reading the description of {rse}", Catalogue.rse_settings, rse)
        storage = Storage(settings, auth_token=await self._storage_token(settings))
        scope = job["request"]["scope"]
        root = Path(self.root_dir)
        progress = job["progress"]
        done = await asyncio.to_thread(self.store.counts, job["id"])
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
                await asyncio.to_thread(self.store.update_files, job["id"], batch)

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
                self._emit(job)
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
        self._emit(job, force=True)
        if failure:
            exc = failure[0]
            if isinstance(exc, AFLabError):
                raise exc
            raise ServiceUnavailable(f"Copying to {job['request']['rse']} failed: {exc}")

    # ------------------------------------------------- the end of a job

    async def _finish(self, job: dict[str, Any]) -> None:
        counts = await asyncio.to_thread(self.store.counts, job["id"])
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
        self._clock(job)
        job.update(state="done", phase="ended", message=msg, resumable=False)
        await self._save(job)

    # ------------------------------------------- state, progress, events

    def _set(self, job: dict[str, Any], **fields: Any) -> None:
        if "phase" in fields and fields["phase"] != job.get("phase"):
            self._clock(job)
        job.update(fields)
        self._emit(job, force="phase" in fields)

    @staticmethod
    def _clock(job: dict[str, Any]) -> None:
        """Seconds spent per phase (this run's wall time; a resumed job adds to its earlier figures)."""
        now = time.time()
        started = job.get("_phase_started")
        if started and job.get("phase"):
            timings = job.setdefault("timings", {})
            timings[job["phase"]] = round(timings.get(job["phase"], 0.0) + now - started, 3)
        job["_phase_started"] = now

    async def _save(self, job: dict[str, Any]) -> None:
        await asyncio.to_thread(self.store.save, job)
        self._emit(job, force=True)

    def _emit(self, job: dict[str, Any], force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_event.get(job["id"], 0.0) < EVENT_INTERVAL:
            return
        self._last_event[job["id"]] = now
        self.events.publish(f"{TOPIC}/{job['id']}", self._public(job))
