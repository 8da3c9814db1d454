"""Publish: workspace files to Rucio as background jobs that survive restarts (the service).

The request side lives here: what the dialog offers (``options``), the checks of a
request (``validate``/``submit``: local paths and names, embargo, then Rucio in
:mod:`.checks`), provenance collection, and job listing, cancel, retry and removal.
Jobs run in the :class:`.runner.JobRunner` this service owns; their phases and
guarantees are described there. Rucio is reached only through the gateway's typed methods.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import AFLab
from ..errors import BadRequest, Conflict, Forbidden, NotFound
from ..events.bus import EventBus
from ..rucio.gateway import RucioGateway
from . import checks, naming, workspace
from . import plan as planning
from . import provenance as prov
from .context import JobContext, public
from .runner import ENDED, JobRunner
from .sessions import SessionFacts
from .store import JobStore

if TYPE_CHECKING:
    from ..mounts.service import MountService
    from ..vault.credentials import CredentialService


class PublishService:
    def __init__(
        self,
        config: AFLab,
        gateway: RucioGateway,
        events: EventBus,
        credentials: CredentialService | None,
        mounts: MountService | None,
        root_dir: str,
        log: logging.Logger | None = None,
    ):
        self.config = config
        self.gateway = gateway
        self.events = events
        self.credentials = credentials
        self.mounts = mounts  # what was mounted where: provenance of published files
        self.log = log or logging.getLogger("af_lab")
        self.root_dir = root_dir
        self.sessions = SessionFacts(Path(self.config.state_dir) / "publish-sessions.json")  # survives restarts
        defaults = self.defaults
        self.max_files = int(defaults.get("max_files", 100_000))
        self.store: JobStore | None = None  # opened by start()
        self.context: JobContext | None = None  # the store, Rucio with a job's patience, events
        self.runner: JobRunner | None = None
        self._started: asyncio.Future | None = None
        self._submit_lock = asyncio.Lock()

    async def start(self) -> None:
        """Open the job store and resume the jobs a previous server left running.

        Idempotent: the paths that need the store await it too, so it runs once."""
        if self._started is None:
            self._started = asyncio.ensure_future(self._open())
        await asyncio.shield(self._started)

    async def _open(self) -> None:
        defaults = self.defaults
        self.store = await asyncio.to_thread(JobStore, Path(self.config.state_dir) / "publish.sqlite3")
        self.context = ctx = JobContext(
            self.store, self.gateway, self.events, retry_window=float(defaults.get("retry_seconds", 300))
        )
        self.runner = JobRunner(
            ctx,
            self.credentials,
            self.root_dir,
            concurrency=max(1, int(defaults.get("concurrency", 4))),
            md5=bool(defaults.get("md5", False)),  # adler32 is what Rucio verifies; md5 costs ~5x more CPU
            log=self.log,
        )
        await self.runner.resume_all()

    # ================================================================== public API (handlers)

    @property
    def defaults(self) -> dict[str, Any]:
        return dict(self.config.publish_defaults or {})

    async def options(self, instance: str | None = None) -> dict[str, Any]:
        """What the Publish dialog offers: scopes, writable RSEs with quota, defaults, naming rules."""
        inst = self.gateway.instance(instance)
        name, account = inst["name"], inst.get("account") or ""
        answers = await asyncio.gather(
            self.gateway.owned_scopes(name),
            self.gateway.rses(name),
            self.gateway.local_limits(name),
            self.gateway.is_admin(name),
            self.gateway.local_usage(name),
            return_exceptions=True,  # every answer retrieved; the first failure is the one shown
        )
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        scopes, all_rses, limits, admin, usage = answers
        rses = []
        for r in all_rses:
            rse = r["rse"]
            limit = limits.get(rse)
            # Writable for us: open for writes, and a quota there (admins need none in Rucio).
            if not r.get("availability_write", True) or not (admin or (limit is not None and limit > 0)):
                continue
            if not r.get("deterministic", True):
                continue
            used = usage.get(rse, 0)
            quota = checks.finite(limit)
            rses.append(
                {
                    "rse": rse,
                    "quota_bytes": quota,
                    "used_bytes": used,
                    "free_bytes": None if quota is None else max(0, quota - used),
                }
            )
        defaults = self.defaults
        default_rse = defaults.get("rse") or inst.get("default_rse")
        groups = self._groups()
        embargoed = self.config.embargoed_scopes or {}
        return {
            "instance": name,
            "instances": [
                {"name": i["name"], "display_name": i.get("display_name") or i["name"]}
                for i in self.config.rucio_instances
            ],
            "account": account,
            "scopes": [self._scope_entry(s, embargoed, groups) for s in scopes],
            "rses": [{**r, "default": r["rse"] == default_rse} for r in rses],
            "defaults": {
                "scope": defaults.get("scope") or (f"user.{account}" if f"user.{account}" in scopes else None),
                "rse": default_rse,
                "lifetime_days": defaults.get("lifetime_days"),
                "allow_no_lifetime": bool(defaults.get("allow_no_lifetime", False)),
            },
            "naming": naming.rules(inst.get("vo") or "def").to_json(),
        }

    async def validate(self, body: dict[str, Any]) -> dict[str, Any]:
        """Every check of a submit, without starting anything (the dialog's live validation)."""
        plan = await self._plan(body)
        return plan.to_json()

    async def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        plan = await self._plan(body)
        await self.start()
        async with self._submit_lock:  # the busy-name check and the insert must not interleave
            return await self._create(plan)

    async def _create(self, plan: planning.Plan) -> dict[str, Any]:
        req = plan.request
        conflicts = await self.store.run(self.store.active_names)
        busy = [(req.scope, i.name) for i in plan.items if (req.scope, i.name) in conflicts]
        if plan.dataset_new and req.dataset in conflicts:
            busy.append(req.dataset)
        if busy:
            s, n = busy[0]
            raise Conflict(
                f"{s}:{n} is being published by another job ({conflicts[(s, n)]}); wait for it to finish.",
                job=conflicts[(s, n)],
            )
        provenance = await prov.collect(
            self.root_dir, req, self._claims().get("sub"), self.sessions.for_notebook(req.notebook)
        )
        now = time.time()
        job_id = uuid.uuid4().hex[:16]
        main_did = (
            f"{req.dataset[0]}:{req.dataset[1]}"
            if req.dataset
            else f"{req.scope}:{plan.items[0].name}"
            if len(plan.items) == 1
            else None
        )
        job = {
            "id": job_id,
            "created": now,
            "updated": now,
            "state": "queued",
            "phase": "checking",
            "message": "Waiting to start.",
            "account": plan.account,
            "user": self._claims().get("sub"),
            "request": {**req.to_json(), "instance": self.gateway.instance(req.instance)["name"]},
            "lifetime_s": req.lifetime_s,
            "dataset": (
                {"did": f"{req.dataset[0]}:{req.dataset[1]}", "new": plan.dataset_new} if req.dataset else None
            ),
            "container": (
                {"did": f"{req.container[0]}:{req.container[1]}", "new": plan.container_new} if req.container else None
            ),
            "did": main_did,
            "files_total": len(plan.items),
            "bytes_total": plan.bytes_total,
            "progress": {"files_done": 0, "bytes_done": 0, "files_skipped": 0, "bytes_hashed": 0},
            "skipped_paths": plan.skipped[:100],
            "warnings": list(plan.warnings),
            "steps": {},
            "rule_ids": [],
            "expires_at": None,
            "provenance": provenance,
            "provenance_in_rucio": None,
            "error": None,
            "resumable": False,
            "noop": False,
        }
        files = [
            {"rel": i.rel, "name": i.name, "bytes": i.bytes, "mtime_ns": i.mtime_ns, "taken": i.taken}
            for i in plan.items
        ]
        await self.store.run(self.store.create, job, files)
        self.context.emit(job, force=True)
        self.runner.start(job_id)
        return public(job)

    async def jobs(self) -> list[dict[str, Any]]:
        await self.start()
        return [public(self.runner.live(j["id"]) or j) for j in await self.store.run(self.store.jobs)]

    async def job(self, job_id: str, offset: int = 0, limit: int = 200) -> dict[str, Any]:
        job = await self._get(job_id)
        rows = await self.store.run(self.store.files, job_id, None, max(0, offset), max(1, min(limit, 5000)))
        scope = job["request"]["scope"]
        files = [
            {
                "path": r["rel"],
                "did": f"{scope}:{r['name']}",
                "bytes": r["bytes"],
                "adler32": r["adler32"],
                "state": r["state"],
                "error": r["error"],
            }
            for r in rows
        ]
        return {"job": public(job), "files": files, "offset": offset}

    async def cancel(self, job_id: str) -> dict[str, Any]:
        job = await self._get(job_id)
        if job["state"] in ENDED:
            raise Conflict(f"Job {job_id} has already ended ({job['state']}).")
        if job["steps"].get("register_started"):
            raise Conflict(
                "Too late to cancel: the files are being registered in Rucio, and the job will finish "
                "what it started so that no half-registered dataset is left."
            )
        return public(await self.runner.cancel(job))

    async def retry(self, job_id: str) -> dict[str, Any]:
        """Resume an interrupted job; run a failed or cancelled one again as a new job."""
        job = await self._get(job_id)
        if job["state"] == "interrupted":
            job.update(state="queued", error=None, resumable=False, message="Resuming.")
            await self.context.save(job)
            self.runner.start(job_id)
            return public(job)
        if job["state"] in ("failed", "cancelled"):
            return await self.submit(dict(job["request"]))  # the request as resolved then, checked afresh
        raise Conflict(f"Job {job_id} is {job['state']}; only interrupted, failed or cancelled jobs can be retried.")

    async def forget(self, job_id: str) -> None:
        job = await self._get(job_id)
        if job["state"] not in ENDED:
            raise Conflict(f"Job {job_id} is {job['state']}; cancel it or let it finish before removing it.")
        await self.store.run(self.store.delete, job_id)

    async def provenance(self, instance: str | None, did_text: str) -> dict[str, Any]:
        """Provenance of a published DID: from Rucio's metadata, else from af-lab's job record."""
        inst = self.gateway.instance(instance)
        scope, name = naming.parse_did(did_text, "", "did", inst.get("vo") or "def")
        meta = await self.gateway.custom_metadata(inst["name"], scope, name)
        found = prov.from_rucio(meta)
        if found:
            return {"did": f"{scope}:{name}", "source": "rucio", "provenance": found}
        await self.start()
        local = await self.store.run(self._local_provenance, scope, name)
        if local is None:
            raise NotFound(f"No provenance is recorded for {scope}:{name}.", did=f"{scope}:{name}")
        return {"did": f"{scope}:{name}", "source": "af-lab", "provenance": local}

    async def close(self) -> None:
        """Stop the running jobs (they stay "running" in the store: the next start resumes them)."""
        if self._started is None:
            return
        await asyncio.gather(self._started, return_exceptions=True)
        if self.runner is not None:
            await self.runner.close()
        if self.store is not None:
            await asyncio.to_thread(self.store.close)

    # ================================================================== planning (submit-time checks)

    async def _plan(self, body: dict[str, Any]) -> planning.Plan:
        inst = self.gateway.instance(body.get("instance"))
        vo = inst.get("vo") or "def"
        account = inst.get("account") or ""
        req = planning.parse(body, self.defaults, account, inst)
        req.instance = inst["name"]
        for scope in {req.scope, *(d[0] for d in (req.dataset, req.container) if d)}:
            self._check_embargo(scope)

        try:
            local, skipped = await asyncio.to_thread(workspace.collect, self.root_dir, req.paths, self.max_files)
        except OSError as exc:
            raise BadRequest(f"Cannot read the selection: {exc.strerror or exc}.", field="paths") from None
        folder_paths = [p for p in req.paths if workspace.resolve(self.root_dir, p).is_dir()]
        req.dataset = planning.default_dataset(req, folder_paths, vo)
        if req.container and not req.dataset:
            raise BadRequest("A container holds datasets, not files: choose a dataset as well.", field="container")
        entries = [(f.rel, f.member, f.folder) for f in local]
        names = planning.names_for(req, entries, vo)
        empty = [f.rel for f in local if f.bytes == 0]
        if empty and not req.allow_empty:
            shown = ", ".join(empty[:5]) + (" ..." if len(empty) > 5 else "")
            raise BadRequest(
                f"{len(empty)} file(s) are empty (0 bytes): {shown}. An empty output is usually a "
                "failed job; remove it, or publish with allow_empty if it is meant to be empty.",
                field="paths",
                empty=empty[:50],
            )
        items = [planning.Item(f.rel, n, f.bytes, f.mtime_ns) for f, n in zip(local, names, strict=True)]
        p = planning.Plan(request=req, account=account, items=items, skipped=skipped)
        if req.notebook and not workspace.resolve(self.root_dir, req.notebook, field="notebook").is_file():
            p.warnings.append(f"Notebook {req.notebook} was not found; it is recorded as given.")
        await checks.check_in_rucio(self.gateway, p)
        return p

    # ================================================================== embargo

    def _claims(self) -> dict[str, Any]:
        creds = self.credentials
        if creds is None:
            return {}
        try:
            return creds.user_claims() or {}
        except Exception:  # claims are advisory input to a refusal, never a crash
            return {}

    def _groups(self) -> list[str]:
        return [str(g) for g in self._claims().get("groups") or []]

    @staticmethod
    def _member(groups: list[str], required: str) -> bool:
        required = required.rstrip("/")
        return any(g.rstrip("/") == required or g.startswith(required + "/") for g in groups)

    def _scope_entry(self, scope: str, embargoed: dict[str, str], groups: list[str]) -> dict[str, Any]:
        group = embargoed.get(scope)
        if group is None:
            return {"scope": scope, "embargoed": False, "allowed": True}
        allowed = self._member(groups, group)
        entry = {"scope": scope, "embargoed": True, "group": group, "allowed": allowed}
        if not allowed:
            entry["reason"] = f"requires membership of {group}"
        return entry

    def _check_embargo(self, scope: str) -> None:
        group = (self.config.embargoed_scopes or {}).get(scope)
        if group is None:
            return
        groups = self._groups()
        if not self._member(groups, group):
            held = ", ".join(groups) if groups else "none"
            raise Forbidden(
                f"Scope {scope} is embargoed: publishing there requires membership of the group {group}, and "
                f"your identity token does not carry it (your groups: {held}). Ask the group's managers for "
                "access, then restart your server from the hub to get a token with the new group.",
                field="scope",
                required_group=group,
            )

    # ================================================================== provenance

    def _local_provenance(self, scope: str, name: str) -> dict[str, Any] | None:
        for job in self.store.jobs(states=["done"], limit=10_000):
            if (job.get("dataset") or {}).get("did") == f"{scope}:{name}":
                return {**job["provenance"], "publish_job": job["id"]}
        for job_id, rel in self.store.jobs_with_file(name):
            job = self.store.get(job_id)
            if job and job["state"] == "done" and job["request"]["scope"] == scope:
                return {**job["provenance"], "publish_job": job_id, "source": rel}
        return None

    # ================================================================== helpers

    async def _get(self, job_id: str) -> dict[str, Any]:
        await self.start()
        job = await self.runner.job(job_id)
        if job is None:
            raise NotFound(f"No publish job {job_id}.", job=job_id)
        return job
