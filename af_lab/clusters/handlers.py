"""REST for Dask clusters, under ``<base_url>/af-lab/clusters``. Thin: parse, call the service, write JSON.

The same clusters appear in dask-labextension's list (``/dask/clusters``) and
its dashboard panes work for them: af-lab serves those routes too (the end of this module).

REST contract
=============

Errors (any route): ``{"error": {"type", "message", ...details}}`` with
    400 bad_request   malformed body or option (``field`` names it)
    400 environment   the environment is not offered, broken, or its distributed version differs from the
                      client's (``client``, ``cluster`` name both versions); nothing was started
    400 over_limit    an option over the profile's limit (``field``, ``limit``, ``value``, ``maximum`` | ``allowed``)
    404 not_found     unknown cluster id (``cluster``) or profile (``profile``)
    409 conflict      the cluster is stopped/failed and cannot be changed (``state``)
    502 condor        a condor_* command failed (``command``, ``exit_code``, ``stderr`` as printed)
    502 slurm         sbatch/squeue/scancel failed (same fields); 503 slurm when slurmctld cannot be reached
    503 unavailable   the scheduler or local workers could not start; DELETE: the cluster stopped but
                      condor_rm failed (it stays listed as failed and af-lab keeps retrying)
    504 timeout       ``wait`` ran out (``workers``, ``requested``, ``jobs`` for htcondor)

``GET /af-lab/clusters/profiles`` -> 200
    {"default": "local",
     "profiles": [{"name": "htcondor", "display_name": "HTCondor pool", "description": "...",
                   "backend": "local" | "htcondor",
                   "limits": {"max_workers": 50, "max_cores": 8, "max_memory": "16 GiB", "max_disk": "50 GiB",
                              "max_gpus": 1, "max_clusters": 2, "images": [...], "universes": [...]},
                   "schema": <JSON Schema draft 7 of the form: properties among cores, memory, disk, gpus,
                              image, universe, workers, adapt; each with title, default, minimum/maximum or
                              enum; byte sizes are strings like "4 GiB" with "x-maximum-bytes">}],
     "errors": ["cluster profile 'x' is ignored: ..."]}

``GET /af-lab/clusters`` -> 200 ``{"clusters": [Cluster, ...]}`` (oldest first, stopped/failed ones included
    until deleted, so the user sees why a cluster ended)

``POST /af-lab/clusters`` -> 201 Cluster
    body: {"profile": "htcondor" (default: the default profile), "name": "my analysis" (optional),
           "cores": 2, "memory": "4 GiB", "disk": "10 GiB", "gpus": 0, "image": "...", "universe": "...",
           "workers": 2, "adapt": {"minimum": 0, "maximum": 10} | null,
           "environment": "analysis" | "<a kernel's sys.prefix>" (default: the profile's, else the server's),
           "client_distributed": "2025.3.0" (the kernel's distributed version: refused with 400 environment
                                 when the environment's differs)}
    Omitted options take the profile's defaults. All or nothing: if the first workers cannot be requested
    (e.g. condor_submit fails) the cluster is removed again and the error returned.

``GET /af-lab/clusters/<id>/client[?distributed=<the kernel's version>]`` -> 200 (never cached)
    {"address": "tls://127.0.0.1:40123", "ca": PEM, "cert": PEM, "key": PEM,
     "environment": {"name", "display_name", "distributed", "python"},
     "snippet": "Python code that writes these into a 0700 directory of the user's and returns a Client"}
    The cluster's client certificate: every scheduler and worker requires TLS with this cluster's CA,
    so this is the only way to connect. 400 environment when ``distributed`` differs from the cluster's.

``GET /af-lab/clusters/<id>`` -> 200 Cluster

``PATCH /af-lab/clusters/<id>`` -> 200 Cluster
    {"workers": N, "wait": seconds (optional: answer once N workers are connected, else 504)}
    | {"adapt": {"minimum": a, "maximum": b}}   (start or change adaptive scaling)
    | {"adapt": null}                           (stop adapting, keep the current workers)
    Returns once the jobs are submitted (htcondor) or the workers started (local).

``DELETE /af-lab/clusters/<id>`` -> 204
    Stops workers, removes every batch job, stops the scheduler; for a stopped/failed cluster, dismisses it.

``GET /af-lab/clusters/<id>/jobs`` -> 200
    {"cluster": id, "backend": "htcondor", "queried_at": epoch,
     "counts": {"submitted": 3, "idle": 1, "running": 1, "held": 1, "done": 0},
     "jobs": [{"job_id": "12.0", "worker": "af-1a2b3c4d-0", "connected": true,
               "status": in the queue: "idle" | "running" | "held" | "suspended" | "completed" | "removed";
                         gone from it: "removed" (af-lab removed it) | "done" (it ended),
               "since": epoch | null, "hold_reason": "..." | null}],
     "message": "1 held, 1 idle, 1 running (hold reason: ...)"}
    Jobs are found by the cluster's tag (also ones af-lab never recorded); each row also has "reason" (hold or
    pending reason) and "exit_code". A local cluster's jobs are its worker process groups (job id = pid).

Cluster:
    {"id": "<uuid>", "name": "HTCondor pool 1", "profile": "htcondor", "backend": "htcondor",
     "state": "starting" | "running" | "stopping" | "stopped" | "failed",
     "message": "why it is stopped/failed, or that it was reattached after a restart",
     "options": {"cores": 1, "memory": "2.00 GiB", "disk": "4.00 GiB", "gpus": 0, "image": null,
                 "universe": null, "workers": 2, "adapt": null},
     "scheduler_address": "tls://127.0.0.1:40123"  (TLS with the cluster's own CA: see .../client),
     "dashboard_link": "http://127.0.0.1:8787/status"  (the scheduler's own, loopback only),
     "dashboard_url": "<base_url>dask/dashboard/<id>/status"  (open this: proxied by the Jupyter server;
                      the direct link when dask-labextension's server extension is not enabled),
     "workers": 2, "requested_workers": 2, "cores": 2, "memory": "3.73 GiB", "memory_bytes": 4000000000,
     "adapt": {"minimum": 0, "maximum": 10} | null,
     "pending": {"workers": 1, "since": epoch} | null,
     "warnings": ["1 of 2 requested workers have not connected after 600 s; the cluster's jobs: 1 held (...)"],
     "token": {"state": "ok" | "expiring" | "unavailable" | "none" (no data-access token: the workers have none),
               "expires_at": epoch | null, "refreshed_at": epoch,
               "message": ""} | null  (null: no credential service, no token shipped),
     "created": epoch}
"""

from __future__ import annotations

import json
from urllib import parse

import tornado.web
from jupyter_server.utils import url_path_join
from tornado import web

from ..errors import AFLabError, BadRequest
from ..handlers import AFLabHandler

ID = r"(?P<cluster_id>[^/]+)"  # the service answers 404 for ids it does not know


class ClusterBase(AFLabHandler):
    @property
    def clusters(self):
        return self.services.clusters

    def with_urls(self, model: dict) -> dict:
        """Add the dashboard URL a browser should open: through the Jupyter server, under its base URL."""
        ext = self.serverapp.extension_manager.extensions.get("dask_labextension")
        if model.get("dashboard_link") and ext is not None and ext.enabled:
            model["dashboard_url"] = url_path_join(self.base_url, "dask/dashboard", model["id"], "status")
        else:
            model["dashboard_url"] = model.get("dashboard_link", "")
        return model


class ProfilesHandler(ClusterBase):
    @tornado.web.authenticated
    async def get(self):
        self.write_json(self.clusters.profiles_json())


class ClustersHandler(ClusterBase):
    @tornado.web.authenticated
    async def get(self):
        self.write_json({"clusters": [self.with_urls(m) for m in await self.clusters.list()]})

    @tornado.web.authenticated
    async def post(self):
        body = self.json_body()
        profile = body.pop("profile", None)
        name = body.pop("name", None)
        environment = body.pop("environment", None)
        client_distributed = body.pop("client_distributed", None)
        require = body.pop("require", None)  # modules the notebook needs on the workers (checked first)
        model = await self.clusters.create(profile, body, name=name, environment=environment,
                                           client_distributed=client_distributed, require=require)
        self.write_json(self.with_urls(model), status=201)


class ClusterHandler(ClusterBase):
    @tornado.web.authenticated
    async def get(self, cluster_id: str):
        self.write_json(self.with_urls(await self.clusters.get(cluster_id)))

    @tornado.web.authenticated
    async def patch(self, cluster_id: str):
        body = self.json_body()
        if "adapt" in body and "workers" not in body:
            model = await self.clusters.adapt(cluster_id, body["adapt"])
        elif "workers" in body and "adapt" not in body:
            model = await self.clusters.scale(cluster_id, body["workers"], wait=body.get("wait"))
        else:
            raise BadRequest('send {"workers": N} or {"adapt": {"minimum": a, "maximum": b}} (or {"adapt": null})')
        self.write_json(self.with_urls(model))

    @tornado.web.authenticated
    async def delete(self, cluster_id: str):
        await self.clusters.delete(cluster_id)
        self.set_status(204)
        self.finish()


class JobsHandler(ClusterBase):
    @tornado.web.authenticated
    async def get(self, cluster_id: str):
        self.write_json(await self.clusters.jobs(cluster_id))


class ClientHandler(ClusterBase):
    @tornado.web.authenticated
    async def get(self, cluster_id: str):
        self.set_header("Cache-Control", "no-store")  # it carries the client key
        self.write_json(await self.clusters.client_credentials(cluster_id, self.get_query_argument("distributed", None)))


# ====================================================================== dask-labextension
# dask-labextension's panes on af-lab's clusters: af-lab serves the routes its frontend calls.
#
# dask-labextension's frontend (cluster list, scale dialog, dashboard panes)
# talks to four routes under the server's base URL. af-lab answers them itself
# from :class:`~af_lab.clusters.manager.ClusterService`, so there is exactly one
# owner of every cluster and its rules (profile limits, persistence, TLS, idle
# shutdown) hold whichever UI is used — without touching dask-labextension's
# Python modules (its module-level ``manager`` is gone on its main branch):
#
# ``GET/PUT /dask/clusters`` and ``GET/PATCH/DELETE /dask/clusters/<id>``
#     dask-labextension's cluster model (``id, name, scheduler_address,
#     dashboard_link, workers, memory, cores, adapt``); errors are 500 with the
#     message, as its own handler answers.
# ``/dask/dashboard/<id>/<path>``
#     the scheduler's loopback dashboard through jupyter-server-proxy's public
#     ``ProxyHandler`` (http and websocket), authenticated like every route.
#
# af-lab's handlers are registered before dask-labextension's (extensions load
# in name order), so they take these routes when both are enabled; the check
# route ``/dask/dashboard-check/…`` stays dask-labextension's.

UUID = r"(?P<cluster_id>\w+-\w+-\w+-\w+-\w+)"


class DaskClustersHandler(AFLabHandler):
    """dask-labextension's ``/dask/clusters`` API, answered by af-lab's cluster service."""

    @property
    def clusters(self):
        return self.services.clusters

    def _finish(self, model) -> None:
        self.set_status(200)
        self.finish(json.dumps(model))

    def _fail(self, exc: AFLabError) -> None:
        raise web.HTTPError(500, exc.message)  # dask-labextension's frontend shows the reason of a 500

    @web.authenticated
    async def get(self, cluster_id: str = "") -> None:
        await self.clusters.start()
        if not cluster_id:
            return self._finish(self.clusters.labextension_models())
        model = self.clusters.labextension_model(cluster_id)
        if model is None:
            raise web.HTTPError(404, f"Dask cluster {cluster_id} not found")
        self._finish(model)

    @web.authenticated
    async def put(self, cluster_id: str = "") -> None:
        """Its NEW button: an af-lab cluster of the default profile."""
        try:
            model = await self.clusters.create(None, {})
        except AFLabError as exc:
            self._fail(exc)
        self._finish(self.clusters.labextension_model(model["id"]))

    @web.authenticated
    async def patch(self, cluster_id: str = "") -> None:
        if self.clusters.labextension_model(cluster_id) is None:
            raise web.HTTPError(404, f"Dask cluster {cluster_id} not found")
        try:
            body = json.loads(self.request.body or b"{}")
            if body.get("adapt") is not None:
                await self.clusters.adapt(cluster_id, body["adapt"])
            else:
                await self.clusters.scale(cluster_id, body.get("workers"))
        except AFLabError as exc:
            self._fail(exc)
        except ValueError as exc:
            raise web.HTTPError(400, f"request body is not valid JSON: {exc}") from None
        self._finish(self.clusters.labextension_model(cluster_id))

    @web.authenticated
    async def delete(self, cluster_id: str = "") -> None:
        if self.clusters.labextension_model(cluster_id) is None:
            raise web.HTTPError(404, f"Dask cluster {cluster_id} not found")
        try:
            await self.clusters.delete(cluster_id)
        except AFLabError as exc:
            self._fail(exc)
        self.set_status(204)
        self.finish()


def _dashboard_handler():
    try:
        from jupyter_server_proxy.handlers import ProxyHandler
    except ImportError:  # no proxy: the model's dashboard_url is the direct (loopback) link
        return None

    class DaskDashboardProxy(ProxyHandler):
        """A cluster's dashboard (loopback only) through the Jupyter server, found by cluster id."""

        def _target(self, cluster_id: str) -> tuple[str, int]:
            model = self.settings["af_lab"].clusters.labextension_model(cluster_id)
            if not model or not model.get("dashboard_link"):
                raise web.HTTPError(404, f"Dask cluster {cluster_id} not found")
            parsed = parse.urlparse(model["dashboard_link"])
            return parsed.hostname, parsed.port

        async def http_get(self, cluster_id, proxied_path):
            return await self.proxy(cluster_id, proxied_path)

        async def open(self, cluster_id, proxied_path):
            host, port = self._target(cluster_id)
            return await super().proxy_open(host, port, proxied_path)

        def post(self, cluster_id, proxied_path):
            return self.proxy(cluster_id, proxied_path)

        def put(self, cluster_id, proxied_path):
            return self.proxy(cluster_id, proxied_path)

        def delete(self, cluster_id, proxied_path):
            return self.proxy(cluster_id, proxied_path)

        def head(self, cluster_id, proxied_path):
            return self.proxy(cluster_id, proxied_path)

        def patch(self, cluster_id, proxied_path):
            return self.proxy(cluster_id, proxied_path)

        def options(self, cluster_id, proxied_path):
            return self.proxy(cluster_id, proxied_path)

        def proxy(self, cluster_id, proxied_path):
            host, port = self._target(cluster_id)
            return super().proxy(host, port, proxied_path)

    return DaskDashboardProxy


DashboardProxy = _dashboard_handler()

# Paths starting with "/" are below the server's base URL (not /af-lab/).
LABEXTENSION_ROUTES = [
    (f"/dask/clusters/{UUID}", DaskClustersHandler),
    ("/dask/clusters/?", DaskClustersHandler),
]
if DashboardProxy is not None:
    LABEXTENSION_ROUTES.append((f"/dask/dashboard/{UUID}(?P<proxied_path>.+)", DashboardProxy))


handlers = [
    *LABEXTENSION_ROUTES,
    ("clusters/profiles", ProfilesHandler),
    (f"clusters/{ID}/client", ClientHandler),
    ("clusters/?", ClustersHandler),
    (f"clusters/{ID}/jobs", JobsHandler),
    (f"clusters/{ID}", ClusterHandler),
]
