"""The Rucio-side phases of a publish job: registering, protecting (the rule) and finishing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ..errors import Conflict
from . import workspace
from .catalogue import Catalogue, chunks, did, jsonable, metadata_unsupported
from .provenance import rucio_meta
from .storage import FileChanged


class RegistrationPhases:
    """Phases from ``registering`` on, mixed into :class:`~af_lab.publish.runner.JobRunner`.

    Every step here is idempotent (the job only rolls forward); it uses the runner's
    ``_job_call``, ``_set``, ``_save``, ``_emit`` and the service's ``store`` and ``root_dir``.
    """

    # ------------------------------------------------ phase: registering

    async def _phase_register(self, job: dict[str, Any]) -> None:
        req = job["request"]
        scope, rse = req["scope"], req["rse"]
        resumed = bool(job["steps"].get("register_started"))
        ds = job.get("dataset")
        ds_scope, ds_name = ds["did"].split(":", 1) if ds else (None, None)
        rows = await asyncio.to_thread(self.store.files, job["id"], ["stored"])
        if not resumed:
            await asyncio.to_thread(self._unchanged, rows)
        self._set(job, phase="registering", message="Registering the files in Rucio.")
        job["steps"]["register_started"] = True
        await self._save(job)  # persisted before the first call: from here on the job only rolls forward
        if resumed:
            await self._reconcile(job)
            rows = await asyncio.to_thread(self.store.files, job["id"], ["stored"])
        for part in chunks(rows):
            files = [_replica(scope, r) for r in part]
            try:
                if ds and ds["new"] and not job["steps"].get("dataset_created"):
                    await self._job_call(
                        job, f"creating dataset {ds['did']}", Catalogue.create_dataset, ds_scope, ds_name, files, rse
                    )
                    job["steps"]["dataset_created"] = True
                elif ds:
                    await self._job_call(
                        job, f"attaching files to {ds['did']}", Catalogue.attach, ds_scope, ds_name, files, rse
                    )
                else:
                    await self._job_call(job, "registering replicas", Catalogue.add_replicas, rse, files)
            except Conflict:
                # A call whose answer was lost may have succeeded, or another client took a name or the
                # dataset meanwhile: ask Rucio what is there, then carry on with the rest.
                if ds and ds["new"] and not job["steps"].get("dataset_created"):
                    job["steps"]["dataset_created"] = True
                await self._reconcile(job)
                remaining = {r["idx"] for r in await asyncio.to_thread(self.store.files, job["id"], ["stored"])}
                left = [f for f, r in zip(files, part, strict=True) if r["idx"] in remaining]
                if left:
                    if ds:
                        await self._job_call(
                            job, f"attaching files to {ds['did']}", Catalogue.attach, ds_scope, ds_name, left, rse
                        )
                    else:
                        await self._job_call(job, "registering replicas", Catalogue.add_replicas, rse, left)
            await asyncio.to_thread(
                self.store.update_files, job["id"], [(r["idx"], {"state": "registered"}) for r in part]
            )
            await self._save(job)
            self._emit(job, force=True)

        # Files that already existed with this content still belong in the requested dataset.
        if ds:
            existing = await asyncio.to_thread(self.store.files, job["id"], ["existing"])
            if existing:
                if ds["new"] and not job["steps"].get("dataset_created"):
                    await self._job_call(job, f"creating dataset {ds['did']}", _create_empty, ds_scope, ds_name)
                    job["steps"]["dataset_created"] = True
                    await self._save(job)
                content = await self._job_call(job, f"listing {ds['did']}", Catalogue.content_names, ds_scope, ds_name)
                missing = [{"scope": scope, "name": r["name"]} for r in existing if (scope, r["name"]) not in content]
                for part in chunks(missing):
                    await self._job_call(
                        job, f"attaching existing files to {ds['did']}", Catalogue.attach, ds_scope, ds_name, part, None
                    )
                job["steps"]["attached_existing"] = job["steps"].get("attached_existing", 0) + len(missing)
        job["steps"]["registered"] = True
        await self._save(job)

    def _unchanged(self, rows: list[dict]) -> None:
        """The last look at the local files before they become DIDs: same size and mtime as when hashed.

        Catches an edit made after a file's copy (or while the server was down before a resume).
        """
        root = Path(self.root_dir)
        for r in rows:
            now = workspace.signature(root / r["rel"])
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
        rows = await asyncio.to_thread(self.store.files, job["id"], ["stored"])
        if not rows:
            return
        names = [r["name"] for r in rows]
        metas = await self._job_call(job, "checking what is already registered", Catalogue.lookup, scope, names)
        if ds:
            ds_scope, ds_name = ds["did"].split(":", 1)
            meta = await self._job_call(job, f"looking up {ds['did']}", Catalogue.metadata, ds_scope, ds_name)
            if meta is not None:
                job["steps"]["dataset_created"] = True
                content = await self._job_call(job, f"listing {ds['did']}", Catalogue.content_names, ds_scope, ds_name)
            else:
                content = set()
        found = [r for r in rows if r["name"] in metas]
        taken = [r for r in found if not workspace.same_adler(metas[r["name"]].get("adler32"), r["adler32"])]
        if taken:
            raise Conflict(
                f"{scope}:{taken[0]['name']} was registered by someone else while this job ran, with "
                "different content. Publish the remaining files under new names."
            )
        if not found:
            return
        states = await self._job_call(
            job, "checking replicas", Catalogue.replica_states, scope, [r["name"] for r in found], rse
        )
        no_replica = [_replica(scope, r) for r in found if r["name"] not in states]
        for part in chunks(no_replica):
            await self._job_call(job, "registering replicas", Catalogue.add_replicas, rse, part)
        if ds and job["steps"].get("dataset_created"):
            unattached = [{"scope": scope, "name": r["name"]} for r in found if (scope, r["name"]) not in content]
            for part in chunks(unattached):
                await self._job_call(
                    job, f"attaching files to {ds['did']}", Catalogue.attach, ds_scope, ds_name, part, None
                )
        await asyncio.to_thread(
            self.store.update_files, job["id"], [(r["idx"], {"state": "registered"}) for r in found]
        )

    # -------------------------------------- phase: protecting (the rule)

    async def _phase_protect(self, job: dict[str, Any]) -> None:
        if job["steps"].get("rule"):
            return
        req = job["request"]
        scope, rse, lifetime = req["scope"], req["rse"], job.get("lifetime_s")
        comment = f"af-lab publish {job['id']}"
        self._set(job, phase="protecting", message=f"Creating the replication rule on {rse}.")
        await self._save(job)
        ds = job.get("dataset")
        rule_ids: list[str] = list(job.get("rule_ids") or [])
        if ds and ds["new"]:
            ds_scope, ds_name = ds["did"].split(":", 1)
            rules = await self._job_call(job, f"listing the rules of {ds['did']}", Catalogue.rules, ds_scope, ds_name)
            mine = [r for r in rules if r.get("comments") == comment]
            if mine:
                rule_ids = [r["id"] for r in mine]
            else:
                rule_ids = await self._job_call(
                    job,
                    f"creating the rule on {ds['did']}",
                    Catalogue.add_rule,
                    [did(ds_scope, ds_name)],
                    rse,
                    lifetime,
                    comment,
                )
        else:
            # Files of an existing dataset (its own rules are left alone) or loose files: a rule per file.
            rows = await asyncio.to_thread(self.store.files, job["id"], ["registered"])
            done_chunks = int(job["steps"].get("rule_chunks", 0))
            for n, part in enumerate(chunks(rows)):
                if n < done_chunks:
                    continue
                dids = [did(scope, r["name"]) for r in part]
                try:
                    ids = await self._job_call(
                        job, "creating the replication rules", Catalogue.add_rule, dids, rse, lifetime, comment
                    )
                except Conflict:
                    ids = await self._job_call(
                        job, "creating the replication rules", _rules_one_by_one, dids, rse, lifetime, comment
                    )
                rule_ids.extend(ids)
                job["steps"]["rule_chunks"] = n + 1
                job["rule_ids"] = rule_ids[:1000]
                await self._save(job)
        job["rule_ids"] = rule_ids[:1000]
        job["rules_total"] = len(rule_ids)
        if rule_ids:
            first = await self._job_call(job, "reading the rule", Catalogue.rule, rule_ids[0])
            job["expires_at"] = jsonable(first.get("expires_at"))
            job["rule_state"] = first.get("state")
        job["steps"]["rule"] = True
        await self._save(job)

    # -------------------------------------------------- phase: finishing

    async def _phase_finish(self, job: dict[str, Any]) -> None:
        req = job["request"]
        scope = req["scope"]
        ds, cont = job.get("dataset"), job.get("container")
        self._set(job, phase="finishing", message="Recording provenance.")
        await self._save(job)
        if cont and ds and not job["steps"].get("container"):
            c_scope, c_name = cont["did"].split(":", 1)
            d_scope, d_name = ds["did"].split(":", 1)

            await self._job_call(
                job,
                f"attaching {ds['did']} to {cont['did']}",
                Catalogue.into_container,
                c_scope,
                c_name,
                did(d_scope, d_name),
            )
            job["steps"]["container"] = True
            await self._save(job)
        if job["steps"].get("metadata"):
            return
        rows = await asyncio.to_thread(self.store.files, job["id"], ["registered"])
        entries = [
            {"scope": scope, "name": r["name"], "meta": rucio_meta(job["provenance"], r["rel"], job["id"])}
            for r in rows
        ]
        if ds and ds["new"]:
            d_scope, d_name = ds["did"].split(":", 1)
            entries.append({"scope": d_scope, "name": d_name, "meta": rucio_meta(job["provenance"], None, job["id"])})
        stored = bool(entries) and await self._job_call(job, "recording provenance metadata", _set_meta, entries)
        job["provenance_in_rucio"] = stored
        if entries and not stored:
            job["warnings"].append(
                "This Rucio server keeps no custom metadata (its JSON metadata plugin is off, "
                "as on SQLite), so the provenance is kept by af-lab and shown from there."
            )
        job["steps"]["metadata"] = True
        await self._save(job)


def _replica(scope: str, row: dict[str, Any]) -> dict[str, Any]:
    """A file as Rucio registers it: size and checksums (md5 only when computed)."""
    out = {"scope": scope, "name": row["name"], "bytes": row["bytes"], "adler32": row["adler32"]}
    if row.get("md5"):
        out["md5"] = row["md5"]
    return out


def _set_meta(cat: Catalogue, entries: list[dict[str, Any]]) -> bool:
    """Set provenance in bulk; False if the server keeps no custom metadata at all."""
    try:
        cat.set_metadata(entries)
    except Exception as exc:
        if metadata_unsupported(exc):
            return False
        raise
    return True


def _create_empty(cat: Catalogue, scope: str, name: str) -> None:
    from rucio.common import exception as rx

    try:
        cat.client.add_dataset(scope, name)
    except rx.DataIdentifierAlreadyExists:
        pass


def _rules_one_by_one(cat: Catalogue, dids: list[dict], rse: str, lifetime: int | None, comment: str) -> list[str]:
    """After an ambiguous bulk call: create the missing per-file rules, skipping the ones that exist."""
    from rucio.common import exception as rx

    ids = []
    for d in dids:
        try:
            ids.extend(cat.add_rule([d], rse, lifetime, comment))
        except rx.DuplicateRule:
            ids.extend(r["id"] for r in cat.rules(d["scope"], d["name"]) if r.get("comments") == comment)
    return ids
