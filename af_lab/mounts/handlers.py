"""REST routes of mounts (all below ``/af-lab/``; JSON in and out; Jupyter auth on every route).

Contract for the sidebar
========================

``POST mounts``  — mount a DID. Body::

    {"did": "scope:name",                 required
     "mode": "cache" | "stream" | "replica",   default "cache"
     "instance": "<rucio instance>",      default: the configured default
     "target": "<path in the workspace>", default "<mount_root>/<scope>/<name>"
                                          (stream: "...<name>.fileset.json|yaml")
     "source": "auto" | "xcache" | "direct",   cache/stream: where bytes come from
                                          (auto: a posix replica on this host, else the XCache, else direct)
     "prefer_rses": ["RSE", ...],         try these RSEs' replicas first
     "format": "json" | "yaml",           stream: fileset format
     "treename": "Events",                stream / fileset: the tree each file holds
     "rse": "RSE",                        replica: which mounted RSE (default: any mounted)
     "request_rule": false,               replica: ask Rucio for a rule when data is not there
     "lifetime_days": 7,                  replica: lifetime of that rule
     "refresh": false}                    re-list the DID even if its listing is cached

  -> 201 {"mount": Mount}   created; state "ready" at once when everything was cached or
                            local, else "fetching" / "replicating" (a background job).
                            The target appears only when the mount is ready: cache and
                            replica modes make a read-only folder of links (one link for a
                            file DID; a container keeps one sub-folder per dataset), stream
                            mode a fileset file.
  -> 200 {"mount": Mount}   the same DID and mode is already mounted at that target
  -> 400 bad_request        malformed DID, odd characters, target outside the workspace,
                            unknown field / mode / instance   (error.field names the field)
  -> 401 credentials        Rucio refused or has no credentials for you
  -> 404 not_found          the DID does not exist
  -> 409 conflict           target exists and is not a mount of this DID (never overwritten)
  -> 409 no_replica         files without a readable replica (error.files lists up to 10)
  -> 503 unavailable        Rucio cannot be reached
  -> 507 insufficient_storage  cache too small: error.needed_bytes, available_bytes,
                            quota_bytes, pinned_bytes, disk_free_bytes

``GET mounts``                 -> {"mounts": [Mount], "cache": Cache}
``GET mounts/<id>``            -> {"mount": Mount}
``GET mounts/<id>/files?offset=0&limit=500&state=done|pending|failed``
                               -> {"files": [File], "total", "offset", "limit"}
``GET mounts/<id>/fileset?format=json|yaml[&workers=local|remote]``
                               -> the coffea/uproot fileset of the mount (text; copy-fileset);
                                  workers=remote: 400 for a mount of server-local paths
``POST mounts/<id>/cancel``    -> {"mount": Mount}  (409 if not running)
``POST mounts/<id>/retry``     -> {"mount": Mount}  failed files again, replicas re-listed (409 unless failed/cancelled)
``DELETE mounts/<id>``         -> {"removed": id, "target", "kept": [paths], "notes": [..]}
                                  removes the workspace entries the mount made and releases its
                                  cache references; "kept" lists anything else found there (a
                                  user's own files are never deleted)
``GET mounts/cache``           -> {"cache": Cache}

Live progress: ``GET events?topic=mounts`` (server-sent events). Every message on topic
``mounts/<id>`` carries a full Mount as ``data`` (or ``{"id", "state": "removed"}``),
pushed on each state change and every 0.5 s while a job runs.

Mount::

    {"id", "did", "did_type": "file|dataset|container", "instance", "mode", "source",
     "state": "queued|fetching|replicating|ready|failed|cancelled", "message",
     "target": "<workspace-relative path: open it in the file browser>",
     "created", "updated", "finished"  (epoch s),
     "files": {"total", "done", "failed", "active"},
     "bytes": {"total", "done", "failed"}, "rate_bytes_per_s", "eta_s",
     "active": [{"path", "bytes", "bytes_done"}],      files in flight
     "problems": [{"path", "error"}],                  failures, and recoveries (e.g. checksum
                                                       mismatch on one replica, fetched from another)
     "warning": null | "<why a ready mount would not read now>"  e.g. a stream mount whose XCache
                                                       failed the status service's last probe
     "timings": {"resolve_ms", "total_ms", "link_ms"},  server time of the create call
     "rule": {"id", "rse", "state", "locks_ok_cnt", "locks_replicating_cnt",
              "locks_stuck_cnt", "locks_total", "expires_at"}       replica mode with a rule
     "fileset": "<workspace path>"}                                 stream mode

File:  {"path" (inside the mount), "did", "bytes", "adler32", "state", "source", "error",
        "location": local path of the link | root:// URL (stream) | null until done}
Cache: {"path", "quota_bytes", "used_bytes", "pinned_bytes", "evictable_bytes",
        "reserved_bytes", "available_bytes", "disk_free_bytes", "files",
        "files_fetched", "bytes_fetched", "files_evicted", "bytes_evicted", "checksum_mismatches"}
"""

from __future__ import annotations

import tornado.web

from ..errors import BadRequest
from ..handlers import AFLabHandler

_ID = r"(?P<mount_id>[^/]+)"  # any id reaches the service, which answers 404 for unknown ones


class _Base(AFLabHandler):
    @property
    def mounts(self):
        return self.services.mounts


class MountsHandler(_Base):
    @tornado.web.authenticated
    async def get(self):
        self.write_json(await self.mounts.list())

    @tornado.web.authenticated
    async def post(self):
        mount, created = await self.mounts.create(self.json_body())
        self.write_json({"mount": mount}, status=201 if created else 200)


class MountHandler(_Base):
    @tornado.web.authenticated
    async def get(self, mount_id: str):
        self.write_json({"mount": await self.mounts.get(mount_id)})

    @tornado.web.authenticated
    async def delete(self, mount_id: str):
        self.write_json(await self.mounts.remove(mount_id))


class MountFilesHandler(_Base):
    @tornado.web.authenticated
    async def get(self, mount_id: str):
        offset = self.query_int("offset", 0)
        limit = self.query_int("limit", 500, minimum=1, maximum=5000)
        state = self.get_argument("state", None)
        if state not in (None, "done", "pending", "failed"):
            raise BadRequest("state must be done, pending or failed", field="state")
        self.write_json(await self.mounts.files(mount_id, state, offset, limit))


class MountFilesetHandler(_Base):
    @tornado.web.authenticated
    async def get(self, mount_id: str):
        data, fmt = await self.mounts.fileset(
            mount_id, self.get_argument("format", "json"), self.get_argument("workers", None)
        )
        self.set_header("Content-Type", "application/json" if fmt == "json" else "application/yaml")
        self.finish(data)


class MountActionHandler(_Base):
    @tornado.web.authenticated
    async def post(self, mount_id: str, action: str):
        if action == "cancel":
            mount = await self.mounts.cancel(mount_id)
        else:
            mount = await self.mounts.retry(mount_id)
        self.write_json({"mount": mount})


class CacheHandler(_Base):
    @tornado.web.authenticated
    async def get(self):
        self.write_json({"cache": await self.mounts.cache_usage()})


handlers = [
    ("mounts", MountsHandler),
    ("mounts/cache", CacheHandler),
    (f"mounts/{_ID}", MountHandler),
    (f"mounts/{_ID}/files", MountFilesHandler),
    (f"mounts/{_ID}/fileset", MountFilesetHandler),
    (f"mounts/{_ID}/(?P<action>cancel|retry)", MountActionHandler),
]
