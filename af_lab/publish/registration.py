"""The Rucio-side phases of a publish job: registering, protecting (the rule) and finishing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ..errors import Conflict, FileChanged
from ..paths import signature
from ..rucio.publishing import chunks, did, jsonable
from ..rucio.upload import same_adler
from .context import JobContext
from .provenance import rucio_meta


class Registration:
    """Phases from ``registering`` on, run by :class:`~af_lab.publish.runner.JobRunner`.

    Every step here is idempotent (the job only rolls forward). Rucio is reached only
    through the gateway's typed methods, with the job's patience (:meth:`JobContext.rucio`).
    """

    def __init__(self, ctx: JobContext, root_dir: str):
        self.ctx = ctx
        self.store = ctx.store
        self.gateway = ctx.gateway
        self.root_dir = root_dir

    # ------------------------------------------------ phase: registering

    async def register(self, job: dict[str, Any]) -> None:
        req = job["request"]
        scope, rse = req["scope"], req["rse"]
        resumed = bool(job["steps"].get("register_started"))
        ds = job.get("dataset")
        ds_scope, ds_name = ds["did"].split(":", 1) if ds else (None, None)
        rows = await self.store.run(self.store.files, job["id"], ["stored"])
        if not resumed:
            await asyncio.to_thread(self._unchanged, rows)
        self.ctx.set(job, phase="registering", message="Registering the files in Rucio.")
        job["steps"]["register_started"] = True
        await self.ctx.save(job)  # persisted before the first call: from here on the job only rolls forward
        if resumed:
            await self._reconcile(job)
            rows = await self.store.run(self.store.files, job["id"], ["stored"])
        for part in chunks(rows):
            files = [_replica(scope, r) for r in part]
            try:
                if ds and ds["new"] and not job["steps"].get("dataset_created"):
                    await self.ctx.rucio(
                        job, f"creating dataset {ds['did']}", self.gateway.add_dataset, ds_scope, ds_name, files, rse
                    )
                    job["steps"]["dataset_created"] = True
                elif ds:
                    await self.ctx.rucio(
                        job, f"attaching files to {ds['did']}", self.gateway.attach, ds_scope, ds_name, files, rse
                    )
                else:
                    await self.ctx.rucio(job, "registering replicas", self.gateway.add_replicas, rse, files)
            except Conflict:
                # A call whose answer was lost may have succeeded, or another client took a name or the
                # dataset meanwhile: ask Rucio what is there, then carry on with the rest.
                if ds and ds["new"] and not job["steps"].get("dataset_created"):
                    job["steps"]["dataset_created"] = True
                await self._reconcile(job)
                remaining = {r["idx"] for r in await self.store.run(self.store.files, job["id"], ["stored"])}
                left = [f for f, r in zip(files, part, strict=True) if r["idx"] in remaining]
                if left:
                    if ds:
                        await self.ctx.rucio(
                            job, f"attaching files to {ds['did']}", self.gateway.attach, ds_scope, ds_name, left, rse
                        )
                    else:
                        await self.ctx.rucio(job, "registering replicas", self.gateway.add_replicas, rse, left)
            await self.store.run(
                self.store.update_files, job["id"], [(r["idx"], {"state": "registered"}) for r in part]
            )
            await self.ctx.save(job)
            self.ctx.emit(job, force=True)

        # Files that already existed with this content still belong in the requested dataset.
        if ds:
            existing = await self.store.run(self.store.files, job["id"], ["existing"])
            if existing:
                if ds["new"] and not job["steps"].get("dataset_created"):
                    await self.ctx.rucio(
                        job,
                        f"creating dataset {ds['did']}",
                        self.gateway.add_dataset,
                        ds_scope,
                        ds_name,
                        None,
                        None,
                        True,
                    )
                    job["steps"]["dataset_created"] = True
                    await self.ctx.save(job)
                content = await self.ctx.rucio(
                    job, f"listing {ds['did']}", self.gateway.content_names, ds_scope, ds_name
                )
                missing = [{"scope": scope, "name": r["name"]} for r in existing if (scope, r["name"]) not in content]
                for part in chunks(missing):
                    await self.ctx.rucio(
                        job,
                        f"attaching existing files to {ds['did']}",
                        self.gateway.attach,
                        ds_scope,
                        ds_name,
                        part,
                        None,
                    )
                job["steps"]["attached_existing"] = job["steps"].get("attached_existing", 0) + len(missing)
        job["steps"]["registered"] = True
        await self.ctx.save(job)

    def _unchanged(self, rows: list[dict]) -> None:
        """The last look at the local files before they become DIDs: same size and mtime as when hashed.

        Catches an edit made after a file's copy (or while the server was down before a resume).
        """
        root = Path(self.root_dir)
        for r in rows:
            now = signature(root / r["rel"])
            if now != (r["bytes"], r["mtime_ns"]):
                state = "vanished" if now is None else "changed"
                raise FileChanged(
                    f"{r['rel']} {state} while it was being published; the copy on the RSE is of "
                    "the old content, so it is not registered. Publish again once the file is final.",
                    path=r["rel"],
                )

    async def _reconcile(self, job: dict[str, Any]) -> None:
        """After a restart or an ambiguous failure: mark what Rucio already holds as registered."""
        req = job["request"]
        scope, rse = req["scope"], req["rse"]
        ds = job.get("dataset")
        rows = await self.store.run(self.store.files, job["id"], ["stored"])
        if not rows:
            return
        names = [r["name"] for r in rows]
        metas = await self.ctx.rucio(
            job, "checking what is already registered", self.gateway.existing_dids, scope, names
        )
        if ds:
            ds_scope, ds_name = ds["did"].split(":", 1)
            meta = await self.ctx.rucio(job, f"looking up {ds['did']}", self.gateway.did_metadata, ds_scope, ds_name)
            if meta is not None:
                job["steps"]["dataset_created"] = True
                content = await self.ctx.rucio(
                    job, f"listing {ds['did']}", self.gateway.content_names, ds_scope, ds_name
                )
            else:
                content = set()
        found = [r for r in rows if r["name"] in metas]
        taken = [r for r in found if not same_adler(metas[r["name"]].get("adler32"), r["adler32"])]
        if taken:
            raise Conflict(
                f"{scope}:{taken[0]['name']} was registered by someone else while this job ran, with "
                "different content. Publish the remaining files under new names."
            )
        if not found:
            return
        states = await self.ctx.rucio(
            job, "checking replicas", self.gateway.replica_states, scope, [r["name"] for r in found], rse
        )
        no_replica = [_replica(scope, r) for r in found if r["name"] not in states]
        for part in chunks(no_replica):
            await self.ctx.rucio(job, "registering replicas", self.gateway.add_replicas, rse, part)
        if ds and job["steps"].get("dataset_created"):
            unattached = [{"scope": scope, "name": r["name"]} for r in found if (scope, r["name"]) not in content]
            for part in chunks(unattached):
                await self.ctx.rucio(
                    job, f"attaching files to {ds['did']}", self.gateway.attach, ds_scope, ds_name, part, None
                )
        await self.store.run(self.store.update_files, job["id"], [(r["idx"], {"state": "registered"}) for r in found])

    # -------------------------------------- phase: protecting (the rule)

    async def protect(self, job: dict[str, Any]) -> None:
        if job["steps"].get("rule"):
            return
        req = job["request"]
        scope, rse, lifetime = req["scope"], req["rse"], job.get("lifetime_s")
        comment = f"af-lab publish {job['id']}"
        self.ctx.set(job, phase="protecting", message=f"Creating the replication rule on {rse}.")
        await self.ctx.save(job)
        ds = job.get("dataset")
        rule_ids: list[str] = list(job.get("rule_ids") or [])
        if ds and ds["new"]:
            ds_scope, ds_name = ds["did"].split(":", 1)
            rules = await self.ctx.rucio(
                job, f"listing the rules of {ds['did']}", self.gateway.did_rules, ds_scope, ds_name
            )
            mine = [r for r in rules if r.get("comments") == comment]
            if mine:
                rule_ids = [r["id"] for r in mine]
            else:
                rule_ids = await self.ctx.rucio(
                    job,
                    f"creating the rule on {ds['did']}",
                    self.gateway.add_rules,
                    [did(ds_scope, ds_name)],
                    rse,
                    lifetime,
                    comment,
                )
        else:
            # Files of an existing dataset (its own rules are left alone) or loose files: a rule per file.
            rows = await self.store.run(self.store.files, job["id"], ["registered"])
            done_chunks = int(job["steps"].get("rule_chunks", 0))
            for n, part in enumerate(chunks(rows)):
                if n < done_chunks:
                    continue
                dids = [did(scope, r["name"]) for r in part]
                try:
                    ids = await self.ctx.rucio(
                        job, "creating the replication rules", self.gateway.add_rules, dids, rse, lifetime, comment
                    )
                except Conflict:
                    ids = await self.ctx.rucio(
                        job,
                        "creating the replication rules",
                        self.gateway.add_rules,
                        dids,
                        rse,
                        lifetime,
                        comment,
                        True,
                    )
                rule_ids.extend(ids)
                job["steps"]["rule_chunks"] = n + 1
                job["rule_ids"] = rule_ids[:1000]
                await self.ctx.save(job)
        job["rule_ids"] = rule_ids[:1000]
        job["rules_total"] = len(rule_ids)
        if rule_ids:
            first = await self.ctx.rucio(job, "reading the rule", self.gateway.rule_details, rule_ids[0])
            job["expires_at"] = jsonable(first.get("expires_at"))
            job["rule_state"] = first.get("state")
        job["steps"]["rule"] = True
        await self.ctx.save(job)

    # -------------------------------------------------- phase: finishing

    async def finish(self, job: dict[str, Any]) -> None:
        req = job["request"]
        scope = req["scope"]
        ds, cont = job.get("dataset"), job.get("container")
        self.ctx.set(job, phase="finishing", message="Recording provenance.")
        await self.ctx.save(job)
        if cont and ds and not job["steps"].get("container"):
            c_scope, c_name = cont["did"].split(":", 1)
            d_scope, d_name = ds["did"].split(":", 1)

            await self.ctx.rucio(
                job,
                f"attaching {ds['did']} to {cont['did']}",
                self.gateway.into_container,
                c_scope,
                c_name,
                did(d_scope, d_name),
            )
            job["steps"]["container"] = True
            await self.ctx.save(job)
        if job["steps"].get("metadata"):
            return
        rows = await self.store.run(self.store.files, job["id"], ["registered"])
        entries = [
            {"scope": scope, "name": r["name"], "meta": rucio_meta(job["provenance"], r["rel"], job["id"])}
            for r in rows
        ]
        if ds and ds["new"]:
            d_scope, d_name = ds["did"].split(":", 1)
            entries.append({"scope": d_scope, "name": d_name, "meta": rucio_meta(job["provenance"], None, job["id"])})
        stored = bool(entries) and await self.ctx.rucio(
            job, "recording provenance metadata", self.gateway.set_metadata, entries
        )
        job["provenance_in_rucio"] = stored
        if entries and not stored:
            job["warnings"].append(
                "This Rucio server keeps no custom metadata (its JSON metadata plugin is off, "
                "as on SQLite), so the provenance is kept by af-lab and shown from there."
            )
        job["steps"]["metadata"] = True
        await self.ctx.save(job)


def _replica(scope: str, row: dict[str, Any]) -> dict[str, Any]:
    """A file as Rucio registers it: size and checksums (md5 only when computed)."""
    out = {"scope": scope, "name": row["name"], "bytes": row["bytes"], "adler32": row["adler32"]}
    if row.get("md5"):
        out["md5"] = row["md5"]
    return out
