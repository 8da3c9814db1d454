"""REST routes of Publish (below ``/af-lab/``). Thin: parse, call ``services.publish``, write JSON.

JSON contract (every route needs the Jupyter token; errors are
``{"error": {"type", "message", ...}}`` with the status below, and ``field`` naming
the request field at fault when there is one, ``suggestion`` a usable alternative)

GET  publish/options[?instance=NAME]
  200 {"instance", "instances": [{"name", "display_name"}], "account",
       "scopes":  [{"scope", "embargoed": bool, "allowed": bool, "group"?, "reason"?}],
       "rses":    [{"rse", "default": bool, "quota_bytes"|null, "used_bytes", "free_bytes"|null}],
       "defaults": {"scope", "rse", "lifetime_days", "allow_no_lifetime"},
       "naming":  {"pattern", "max_length", "scope_pattern", "scope_max_length"}}

POST publish/validate   body: PublishRequest      (dry run: every check, nothing started)
  200 {"instance", "account", "scope", "rse", "lifetime_days", "dataset": {"did", "new"}|null,
       "container": {"did", "new"}|null, "files_total", "bytes_total", "files_already_named",
       "names": [first 50 DID names], "skipped": [hidden/checkpoint paths left out],
       "quota": {"needed_bytes", "used_bytes", "limit_bytes", "admin"}, "warnings": [str]}

POST publish/jobs       body: PublishRequest      -> 202 Job

  PublishRequest = {
    "paths": ["results/hist.root", "results/plots"],  # files/folders relative to the workspace root (required)
    "instance": "demo",                # default: the default Rucio instance
    "scope": "user.jdoe",              # default: publish_defaults.scope, else user.<account>
    "rse": "SITE1_USERDISK",           # default: publish_defaults.rse, else the instance's default_rse
    "lifetime_days": 30 | null,        # default: publish_defaults.lifetime_days; null only if allow_no_lifetime
    "dataset": "name" | "scope:name" | null,  # existing (open) or new; default: the folder's name for one
                                       #   folder, none for files; null = no dataset (a rule per file)
    "container": "name" | "scope:name",  # optional; created if missing; needs a dataset
    "name": "hist.root",               # DID name, single file only (default: the file name)
    "name_prefix": "v2.",              # prepended to every file's DID name (folders: sub/x.root -> v2.sub.x.root)
    "notebook": "ana/zmumu.ipynb",     # provenance: the notebook that produced the outputs
    "inputs": ["cms_opendata:..."],    # provenance: input DIDs (merged with mounts and notebook metadata)
    "cluster_profile": "local",        # provenance
    "allow_empty": false               # 0-byte files are refused unless true
  }

GET  publish/jobs                              200 {"jobs": [Job, newest first]}
GET  publish/jobs/<id>[?offset=0&limit=200]    200 {"job": Job, "offset", "files": [
                                                   {"path", "did", "bytes", "adler32", "state", "error"}]}
POST publish/jobs/<id>/cancel   200 Job   (409 once registration has begun: the job then completes)
POST publish/jobs/<id>/retry    202 Job   (interrupted: resumed in place; failed/cancelled: a new job)
DELETE publish/jobs/<id>        204       (ended jobs only: forgets the record, never the data)
PUT  publish/sessions/<kernel id>   (a kernel's magics; see publish/sessions.py)
  body {"inputs": [DIDs], "cluster_profile", "environment", "packages": {name: version}}
  200 {"kernel_id", "notebook" (the path of the notebook that kernel runs, or null), ...}

GET  publish/provenance?did=scope:name[&instance=]
  200 {"did", "source": "rucio"|"af-lab", "provenance": {notebook, git_commit, git_dirty, inputs,
       cluster_profile, af_lab_version, published_at, published_by, publish_job, source?}}

  Job = {"id", "state": "queued"|"running"|"interrupted"|"done"|"failed"|"cancelled",
         "phase": "checking"|"copying"|"registering"|"protecting"|"finishing"|"rolling back"|"ended",
         "message", "created", "updated", "account", "user", "request": PublishRequest (resolved),
         "dataset": {"did", "new"}|null, "container": {"did", "new"}|null, "did": main DID|null,
         "files_total", "bytes_total",
         "progress": {"files_done", "bytes_done", "files_skipped", "bytes_hashed"},
         "rule_ids", "rules_total", "rule_state", "expires_at", "lifetime_s",
         "provenance": {...}, "provenance_in_rucio": bool|null, "warnings": [str], "skipped_paths",
         "error": {"type", "message", ...}|null, "resumable": bool, "noop": bool}

Progress: the same Job objects are pushed on ``GET /af-lab/events?topic=publish`` (all
jobs) or ``?topic=publish/<id>`` (one job) as ``{"topic": "publish/<id>", "data": Job}``,
at most 4 times a second per job and at every phase or state change.

Error statuses: 400 bad input (invalid name, bad path, empty file, ...), 401
credentials, 403 scope not owned / embargoed / lifetime required / RSE closed,
404 unknown job / path / instance, 409 DID exists with other content (with
``suggestion``), dataset closed, job busy, 503 Rucio or Vault unreachable,
507 quota.
"""

from __future__ import annotations

import tornado.web

from ..errors import BadRequest
from ..handlers import AFLabHandler


class OptionsHandler(AFLabHandler):
    @tornado.web.authenticated
    async def get(self):
        self.write_json(await self.services.publish.options(self.get_argument("instance", None)))


class ValidateHandler(AFLabHandler):
    @tornado.web.authenticated
    async def post(self):
        self.write_json(await self.services.publish.validate(self.json_body()))


class JobsHandler(AFLabHandler):
    @tornado.web.authenticated
    async def get(self):
        self.write_json({"jobs": await self.services.publish.jobs()})

    @tornado.web.authenticated
    async def post(self):
        self.write_json(await self.services.publish.submit(self.json_body()), status=202)


class JobHandler(AFLabHandler):
    @tornado.web.authenticated
    async def get(self, job_id: str):
        offset = self.query_int("offset", 0)
        limit = self.query_int("limit", 200, minimum=1, maximum=5000)
        self.write_json(await self.services.publish.job(job_id, offset, limit))

    @tornado.web.authenticated
    async def delete(self, job_id: str):
        await self.services.publish.forget(job_id)
        self.set_status(204)
        self.finish()


class CancelHandler(AFLabHandler):
    @tornado.web.authenticated
    async def post(self, job_id: str):
        self.write_json(await self.services.publish.cancel(job_id))


class RetryHandler(AFLabHandler):
    @tornado.web.authenticated
    async def post(self, job_id: str):
        self.write_json(await self.services.publish.retry(job_id), status=202)


class ProvenanceHandler(AFLabHandler):
    @tornado.web.authenticated
    async def get(self):
        did = self.get_argument("did", "")
        if not did:
            raise BadRequest("did is required (scope:name).", field="did")
        self.write_json(await self.services.publish.provenance(self.get_argument("instance", None), did))


class SessionReportHandler(AFLabHandler):
    """A kernel reports what its session did (see ``publish/sessions.py``); Jupyter's session
    manager says which notebook that kernel runs."""

    @tornado.web.authenticated
    async def put(self, kernel_id: str):
        body = self.json_body()
        sessions = await self.session_manager.list_sessions()
        notebook = next((s.get("path") for s in sessions if (s.get("kernel") or {}).get("id") == kernel_id), None)
        self.write_json(self.services.publish.sessions.report(kernel_id, notebook, body))


_JOB = r"(?P<job_id>[^/]+)"
handlers = [
    ("publish/options", OptionsHandler),
    ("publish/validate", ValidateHandler),
    ("publish/jobs", JobsHandler),
    (f"publish/jobs/{_JOB}", JobHandler),
    (f"publish/jobs/{_JOB}/cancel", CancelHandler),
    (f"publish/jobs/{_JOB}/retry", RetryHandler),
    ("publish/provenance", ProvenanceHandler),
    (r"publish/sessions/(?P<kernel_id>[\w-]+)", SessionReportHandler),
]
