"""dask-labextension's panes on af-lab's clusters: af-lab serves the routes its frontend calls.

dask-labextension's frontend (cluster list, scale dialog, dashboard panes)
talks to four routes under the server's base URL. af-lab answers them itself
from :class:`~af_lab.clusters.manager.ClusterService`, so there is exactly one
owner of every cluster and its rules (profile limits, persistence, TLS, idle
shutdown) hold whichever UI is used — without touching dask-labextension's
Python modules (its module-level ``manager`` is gone on its main branch):

``GET/PUT /dask/clusters`` and ``GET/PATCH/DELETE /dask/clusters/<id>``
    dask-labextension's cluster model (``id, name, scheduler_address,
    dashboard_link, workers, memory, cores, adapt``); errors are 500 with the
    message, as its own handler answers.
``/dask/dashboard/<id>/<path>``
    the scheduler's loopback dashboard through jupyter-server-proxy's public
    ``ProxyHandler`` (http and websocket), authenticated like every route.

af-lab's handlers are registered before dask-labextension's (extensions load
in name order), so they take these routes when both are enabled; the check
route ``/dask/dashboard-check/…`` stays dask-labextension's.
"""

from __future__ import annotations

import json
from urllib import parse

from tornado import web

from ..errors import AFLabError
from ..handlers import AFLabHandler

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
        await self.clusters.ready()
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
handlers = [
    (f"/dask/clusters/{UUID}", DaskClustersHandler),
    ("/dask/clusters/?", DaskClustersHandler),
]
if DashboardProxy is not None:
    handlers.append((f"/dask/dashboard/{UUID}(?P<proxied_path>.+)", DashboardProxy))
