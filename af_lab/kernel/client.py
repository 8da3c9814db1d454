"""A plain Python client of the af-lab REST API, for kernels and scripts.

``FacilityClient`` talks to the Jupyter server that runs af-lab (``<base_url>/af-lab/...``)
with the Jupyter token, using ``requests`` only: importing it never pulls in tornado,
jupyter_server or the server extension. It never sees a Rucio, Vault or bearer token
either: the REST API does not hand them out.

    from af_lab.kernel import FacilityClient
    fac = FacilityClient.discover()
    fac.search("cms_opendata:*", type="dataset")

The Jupyter token is kept out of every repr, message and exception.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from .cluster_tls import client_security
from .dask_client import facility_dask_client
from .discovery import _loopback, _runtime_dir, find_parent_server  # noqa: F401 (re-exported)
from .display import ClusterList, DIDList, MountList, MountPaths, PublishedDIDs
from .errors import FacilityError, StoppedWaiting

__all__ = ["FacilityClient", "FacilityError", "StoppedWaiting", "find_parent_server"]

ENV_URL = "AF_LAB_SERVER_URL"
ENV_TOKEN = "AF_LAB_SERVER_TOKEN"
ENV_ROOT = "AF_LAB_SERVER_ROOT"

MOUNT_ENDED = ("ready", "failed", "cancelled")
JOB_ENDED = ("done", "failed", "cancelled", "interrupted")
_UNSET: Any = object()

NOT_FOUND_HELP = (
    "Cannot find the Jupyter server running af-lab. This kernel was not started by a Jupyter "
    "server on this machine (no jpserver-<pid>.json of a parent process in {runtime}), and no "
    "JupyterHub environment is set. Set the server's address and token in the environment, e.g. "
    f"os.environ['{ENV_URL}'] = 'http://127.0.0.1:8888/' and os.environ['{ENV_TOKEN}'] = '<the "
    f"Jupyter token>' (optionally {ENV_ROOT} = the server's root directory, for %rucio publish), "
    "or call FacilityClient(url, token)."
)


class _TokenAuth(requests.auth.AuthBase):
    """Adds ``Authorization: token ...`` at send time, so the token is in no session header or repr."""

    def __init__(self, token: str):
        self._token = token

    def __call__(self, r):
        if self._token:
            r.headers["Authorization"] = f"token {self._token}"
        return r

    def __repr__(self) -> str:
        return "<jupyter token>"


# ---------------------------------------------------------------------------- discovery
def _server_url(info: dict) -> str:
    if info.get("sock"):
        raise FacilityError(
            f"The Jupyter server listens on the Unix socket {info['sock']}, which this client cannot use: "
            f"set {ENV_URL} and {ENV_TOKEN} to an HTTP address of the server."
        )
    url = info.get("url")
    if not url:
        proto = "https" if info.get("secure") else "http"
        url = f"{proto}://{info.get('hostname') or '127.0.0.1'}:{info['port']}{info.get('base_url') or '/'}"
    return _loopback(url)


# ---------------------------------------------------------------------------- the client
class FacilityClient:
    """The af-lab REST API of one Jupyter server.

    ``url`` is the server's base URL (``http://127.0.0.1:8888/`` or, under JupyterHub,
    ``.../user/<name>/``); ``token`` the Jupyter (or JupyterHub API) token; ``root_dir``
    the server's root directory, used to turn local paths into workspace paths for
    :meth:`publish` (known automatically when discovered from a parent server).
    """

    def __init__(self, url: str, token: str = "", root_dir: str | None = None, timeout: float = 60.0):
        self.url = url.rstrip("/") + "/"
        self.root_dir = root_dir
        self.timeout = timeout
        self._auth = _TokenAuth(token or "")
        self._session = requests.Session()
        host = urlsplit(self.url).hostname or ""
        if host in ("127.0.0.1", "localhost", "::1"):
            self._session.trust_env = False  # no HTTP proxy between a kernel and its own server
        self._instances: list[dict] | None = None

    def __repr__(self) -> str:
        return f"FacilityClient({self.url!r})"

    @classmethod
    def discover(cls, timeout: float = 60.0) -> FacilityClient:
        """Find the af-lab server of this kernel.

        1. ``AF_LAB_SERVER_URL`` and ``AF_LAB_SERVER_TOKEN`` (and ``AF_LAB_SERVER_ROOT``) if set;
        2. the Jupyter server that started this kernel: its ``jpserver-<pid>.json`` in the
           Jupyter runtime directory, matched by parent process id;
        3. JupyterHub's single-user environment (``JUPYTERHUB_SERVICE_URL``, ``JUPYTERHUB_API_TOKEN``).
        """
        env = os.environ
        if env.get(ENV_URL):
            return cls(env[ENV_URL], env.get(ENV_TOKEN, ""), root_dir=env.get(ENV_ROOT) or None, timeout=timeout)
        runtime = _runtime_dir()
        info = find_parent_server(runtime)
        if info is not None:
            return cls(_server_url(info), info.get("token") or "", root_dir=info.get("root_dir"), timeout=timeout)
        hub_url = env.get("JUPYTERHUB_SERVICE_URL")
        hub_token = env.get("JUPYTERHUB_API_TOKEN") or env.get("JPY_API_TOKEN")
        if hub_url and hub_token:
            return cls(_loopback(hub_url), hub_token, root_dir=env.get(ENV_ROOT) or None, timeout=timeout)
        raise FacilityError(NOT_FOUND_HELP.format(runtime=runtime), kind="no_server")

    # ------------------------------------------------------------------ HTTP
    def request(
        self,
        method: str,
        path: str,
        params: dict | None = None,
        body: Any = None,
        timeout: float | None = None,
    ) -> Any:
        """One call to ``<url>af-lab/<path>``: the decoded JSON (text for non-JSON answers, None for 204)."""
        url = self.url + "af-lab/" + path.lstrip("/")
        params = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            resp = self._session.request(
                method,
                url,
                params=params,
                json=body,
                auth=self._auth,
                timeout=(10, timeout or self.timeout),
            )
        except requests.Timeout:
            raise FacilityError(
                f"The Jupyter server at {self.url} did not answer {method} {path} in time.", kind="timeout"
            ) from None
        except requests.RequestException as exc:
            reason = type(exc).__name__
            raise FacilityError(
                f"Cannot reach the Jupyter server at {self.url} ({reason}): is it running?", kind="connection"
            ) from None
        if resp.status_code >= 400:
            raise self._error(resp, method, path)
        if resp.status_code == 204 or not resp.content:
            return None
        if "json" in resp.headers.get("Content-Type", ""):
            return resp.json()
        return resp.text

    def _error(self, resp: requests.Response, method: str, path: str) -> FacilityError:
        status = resp.status_code
        try:
            data = resp.json()
        except ValueError:
            data = None  # an HTML error page: never shown
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            err = dict(data["error"])
            message = str(err.pop("message", "") or f"{status} {resp.reason}")
            kind = err.pop("type", None)
            for extra in ("action", "suggestion"):  # what to do next, when the server says
                hint = err.get(extra)
                if isinstance(hint, str) and hint and hint not in message:
                    message = f"{message} {hint}"
            return FacilityError(message, status=status, kind=kind, **err)
        if status in (401, 403):
            return FacilityError(
                f"The Jupyter server refused the request ({status} {resp.reason}): the token is missing or "
                f"wrong. Check {ENV_TOKEN}, or let the kernel find its server by unsetting {ENV_URL}.",
                status=status,
                kind="jupyter_auth",
            )
        if status == 404:
            return FacilityError(
                f"{self.url}af-lab/{path.split('?')[0]} does not exist on this server: is the af-lab server "
                "extension installed and enabled there?",
                status=status,
                kind="not_found",
            )
        server_message = data.get("message") if isinstance(data, dict) else None
        return FacilityError(
            f"{method} af-lab/{path} failed: {server_message or f'{status} {resp.reason}'}",
            status=status,
            kind="server",
        )

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    # ------------------------------------------------------------------ Rucio
    def instances(self, refresh: bool = False) -> list[dict]:
        if self._instances is None or refresh:
            self._instances = self.get("rucio/instances")["instances"]
        return self._instances

    def instance(self, name: str | None = None) -> str:
        """``name`` if given, else the server's default Rucio instance."""
        if name:
            return name
        instances = self.instances()
        if not instances:
            raise FacilityError("No Rucio instance is configured on this server (c.AFLab.rucio_instances).")
        return next((i["name"] for i in instances if i.get("default")), instances[0]["name"])

    def _inst(self, instance: str | None, *parts: str) -> str:
        return "/".join(["rucio/instances", quote(self.instance(instance), safe=""), *parts])

    @staticmethod
    def _did(did: str) -> str:
        return quote(did, safe=":")  # a '/' in a name must stay inside one path segment

    def pages(
        self, path: str, params: dict | None = None, limit: int | None = None, page_size: int = 1000
    ) -> tuple[list[dict], int]:
        """Every item of a cursor-paged listing (up to ``limit``); returns (items, pages fetched)."""
        size = max(1, min(int(page_size), 5000, int(limit) if limit else 5000))
        items: list[dict] = []
        cursor, pages = None, 0
        while True:
            page = self.get(path, **(params or {}), limit=size, cursor=cursor)
            pages += 1
            items.extend(page["items"])
            cursor = page.get("cursor")
            if not cursor or (limit and len(items) >= limit):
                return (items[:limit] if limit else items), pages
            if params:
                params = {k: v for k, v in params.items() if k != "refresh"}  # only the first page refreshes

    def search(
        self,
        pattern: str,
        type: str = "all",
        instance: str | None = None,
        limit: int | None = None,
        filters: str = "",
        page_size: int = 1000,
        refresh: bool = False,
    ) -> DIDList:
        """DIDs matching ``scope:name*`` (``type``: all, collection, container, dataset, file); every page."""
        params = {"q": pattern, "type": type, "filter": filters or None, "refresh": 1 if refresh else None}
        items, pages = self.pages(self._inst(instance, "dids"), params, limit, page_size)
        return DIDList(items, title=f"{pattern} ({type})", pages=pages)

    def did(self, did: str, instance: str | None = None, availability: str = "skip") -> dict:
        """One DID: type, size, file count, account (files: checksum and replicas)."""
        return self.get(self._inst(instance, "dids", self._did(did)), availability=availability)

    def contents(
        self,
        did: str,
        instance: str | None = None,
        limit: int | None = None,
        replicas: bool = True,
        page_size: int = 1000,
    ) -> DIDList:
        """What a DID holds: a container's collections, a dataset's files (with the RSEs holding
        each file when ``replicas``), or the file itself with its replicas."""
        detail = self.did(did, instance)
        if detail["type"] == "file":
            row = {k: detail.get(k) for k in ("scope", "name", "did", "type", "bytes", "adler32")}
            row["rses"] = _rses(detail.get("replicas") or [])
            return DIDList([row], title=did, pages=1)
        items, pages = self.pages(self._inst(instance, "dids", self._did(did), "content"), None, limit, page_size)
        if detail["type"] == "container" and len(items) <= 100:
            # Rucio lists a container's members without sizes: ask for each (a few calls, cached server-side).
            for i in items:
                if i.get("bytes") is None:
                    child = self.did(i["did"], instance)
                    i["bytes"], i["length"] = child.get("bytes"), child.get("length")
        if replicas and detail["type"] == "dataset" and items:
            wanted = {i["name"] for i in items}
            found: dict[str, list[str]] = {}
            cursor = None
            path = self._inst(instance, "dids", self._did(did), "replicas")
            while True:  # stop as soon as every listed file has its replicas
                page = self.get(path, limit=5000, cursor=cursor)
                for f in page["items"]:
                    found[f["name"]] = _rses(f.get("replicas") or [])
                cursor = page.get("cursor")
                if not cursor or wanted <= found.keys():
                    break
            for i in items:
                i["rses"] = found.get(i["name"], [])
        return DIDList(items, title=did, pages=pages)

    # ------------------------------------------------------------------ mounts
    def mount(
        self, did: str, mode: str = "cache", instance: str | None = None, refresh: bool = False, **options: Any
    ) -> dict:
        """Ask for a mount (``options``: target, source, rse, request_rule, lifetime_days, format,
        treename, prefer_rses). Returns the Mount at once: see :meth:`wait_mount`."""
        body = {"did": did, "mode": mode, **{k: v for k, v in options.items() if v is not None}}
        if instance:
            body["instance"] = instance
        if refresh:
            body["refresh"] = True
        return self.request("POST", "mounts", body=body, timeout=600)["mount"]

    def get_mount(self, mount_id: str) -> dict:
        return self.get(f"mounts/{quote(mount_id, safe='')}")["mount"]

    def mounts(self) -> MountList:
        return MountList(self.get("mounts")["mounts"])

    def unmount(self, mount_id: str) -> dict:
        """Remove a mount's workspace entries (never the user's own files) and release its cache."""
        return self.request("DELETE", f"mounts/{quote(mount_id, safe='')}")

    def wait_mount(
        self,
        mount: dict | str,
        progress: Callable[[dict], None] | None = None,
        interval: float = 0.5,
        timeout: float | None = None,
    ) -> dict:
        """Poll until the mount is ready; ``progress(mount)`` on every poll. Raises FacilityError
        if it failed or was cancelled. Interrupting this never cancels the mount."""
        m = self.get_mount(mount) if isinstance(mount, str) else mount
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if progress:
                progress(m)
            if m["state"] in MOUNT_ENDED:
                break
            if deadline is not None and time.monotonic() > deadline:
                raise FacilityError(f"The mount of {m['did']} is still {m['state']} after {timeout:g} s.")
            time.sleep(interval)
            m = self.get_mount(m["id"])
        if m["state"] != "ready":
            problems = "; ".join(f"{p.get('path')}: {p.get('error')}" for p in (m.get("problems") or [])[:3])
            message = m.get("message") or f"the mount of {m['did']} is {m['state']}"
            raise FacilityError(
                f"{message}{f' ({problems})' if problems and problems not in message else ''}",
                kind=m["state"],
                mount=m["id"],
            )
        return m

    def mount_paths(self, mount: dict | str) -> MountPaths:
        """The local paths of a ready cache/replica mount, one per file (every page)."""
        m = self.get_mount(mount) if isinstance(mount, str) else mount
        paths: list[str] = []
        offset = 0
        while True:
            page = self.get(f"mounts/{quote(m['id'], safe='')}/files", state="done", offset=offset, limit=5000)
            paths.extend(f["location"] for f in page["files"] if f.get("location"))
            offset += len(page["files"])
            if not page["files"] or offset >= page["total"]:
                return MountPaths(paths, mount=m)

    def fileset(self, mount: dict | str, workers: str | None = None) -> dict:
        """The coffea/uproot fileset ``{dataset: {"files": {url: tree}, "metadata": ...}}`` of a mount;
        ``workers="remote"`` refuses server-local paths (for workers on other nodes)."""
        mount_id = mount if isinstance(mount, str) else mount["id"]
        params = {"format": "json", **({"workers": workers} if workers else {})}
        data = self.get(f"mounts/{quote(mount_id, safe='')}/fileset", **params)
        return json.loads(data) if isinstance(data, str) else data

    def mount_result(self, mount: dict, workers: str | None = None) -> MountPaths | dict:
        """What a ready mount gives a kernel: the fileset (stream mode, or ``workers`` given) or the local paths."""
        if mount["mode"] == "stream" or workers:
            return self.fileset(mount, workers)
        return self.mount_paths(mount)

    # ------------------------------------------------------------------ publish
    def workspace_path(self, path: str | os.PathLike) -> str:
        """A local path as the server sees it: relative to its root directory."""
        raw = os.path.expanduser(os.fspath(path))
        if self.root_dir is None:
            if os.path.isabs(raw):
                raise FacilityError(
                    f"Cannot tell where {raw} is in the Jupyter workspace: the server's root directory is "
                    f"unknown. Set {ENV_ROOT}, or give a path relative to the workspace root."
                )
            return Path(raw).as_posix()
        local = os.path.abspath(raw)
        for root in {os.path.abspath(self.root_dir), os.path.realpath(self.root_dir)}:
            for candidate in (local, os.path.realpath(local)):
                if candidate == root or candidate.startswith(root.rstrip(os.sep) + os.sep):
                    rel = os.path.relpath(candidate, root)
                    return Path(rel).as_posix()
        raise FacilityError(
            f"{raw} is outside the Jupyter workspace ({self.root_dir}): only files in the workspace can be published."
        )

    def publish(
        self,
        paths: str | os.PathLike | Iterable[str | os.PathLike],
        scope: str | None = None,
        dataset: str | None = _UNSET,
        rse: str | None = None,
        lifetime_days: float | None = _UNSET,
        name: str | None = None,
        instance: str | None = None,
        **extra: Any,
    ) -> dict:
        """Submit a publish job for local files/folders (inside the workspace). Returns the Job at
        once: see :meth:`wait_publish`. ``dataset=None`` publishes without a dataset;
        ``lifetime_days=None`` asks for no lifetime (if the site allows it); left out, the server's
        defaults apply. ``extra``: container, name_prefix, notebook, inputs, allow_empty."""
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        body: dict[str, Any] = {"paths": [self.workspace_path(p) for p in paths]}
        for key, value in (("scope", scope), ("rse", rse), ("name", name), ("instance", instance), *extra.items()):
            if value is not None:
                body[key] = value
        if dataset is not _UNSET:
            body["dataset"] = dataset
        if lifetime_days is not _UNSET:
            body["lifetime_days"] = lifetime_days
        return self.request("POST", "publish/jobs", body=body, timeout=600)

    def publish_job(self, job_id: str) -> dict:
        return self.get(f"publish/jobs/{quote(job_id, safe='')}", limit=1)["job"]

    def wait_publish(
        self,
        job: dict | str,
        progress: Callable[[dict], None] | None = None,
        interval: float = 0.5,
        timeout: float | None = None,
    ) -> dict:
        """Poll until the job ends; raises FacilityError unless it is done."""
        j = self.publish_job(job) if isinstance(job, str) else job
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if progress:
                progress(j)
            if j["state"] in JOB_ENDED:
                break
            if deadline is not None and time.monotonic() > deadline:
                raise FacilityError(f"Publish job {j['id']} is still {j['state']} after {timeout:g} s.")
            time.sleep(interval)
            j = self.publish_job(j["id"])
        if j["state"] != "done":
            err = j.get("error") or {}
            message = err.get("message") or j.get("message") or f"publish job {j['id']} {j['state']}"
            if j["state"] == "interrupted" and j.get("resumable"):
                message += f" (resumable: POST af-lab/publish/jobs/{j['id']}/retry)"
            raise FacilityError(message, kind=err.get("type") or j["state"], job=j["id"])
        return j

    def published_dids(self, job: dict | str) -> PublishedDIDs:
        """The DIDs a done job published: container, dataset, then every file."""
        j = self.publish_job(job) if isinstance(job, str) else job
        dids = [c["did"] for c in (j.get("container"), j.get("dataset")) if c and c.get("did")]
        offset = 0
        while True:
            page = self.get(f"publish/jobs/{quote(j['id'], safe='')}", offset=offset, limit=1000)
            dids.extend(f["did"] for f in page["files"] if f.get("did") and f["did"] not in dids)
            offset += len(page["files"])
            if len(page["files"]) < 1000:
                break
        if j.get("did") and j["did"] not in dids:
            dids.insert(0, j["did"])
        return PublishedDIDs(dids, job=j)

    # ------------------------------------------------------------------ Dask clusters
    def cluster_profiles(self) -> dict:
        return self.get("clusters/profiles")

    def clusters(self) -> ClusterList:
        return ClusterList(self.get("clusters")["clusters"])

    def cluster(self, ref: str) -> dict:
        """A cluster by id, unique id prefix or unique name."""
        clusters = self.clusters()
        for test in (
            lambda c: c["id"] == ref,
            lambda c: c["id"].startswith(ref),
            lambda c: c.get("name") == ref,
        ):
            hits = [c for c in clusters if test(c)]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                raise FacilityError(f"'{ref}' matches {len(hits)} clusters: give more of the id.", kind="ambiguous")
        raise FacilityError(f"No cluster '{ref}' (%af_cluster list shows them).", status=404, kind="not_found")

    def default_cluster(self) -> dict:
        running = [c for c in self.clusters() if c["state"] in ("running", "starting")]
        if len(running) == 1:
            return running[0]
        if not running:
            raise FacilityError("No cluster is running: start one with %af_cluster new.", kind="not_found")
        ids = ", ".join(c["id"][:8] for c in running)
        raise FacilityError(f"{len(running)} clusters are running ({ids}): say which one.", kind="ambiguous")

    def new_cluster(
        self, profile: str | None = None, workers: int | None = None, name: str | None = None,
        environment: str | None = None, require: list[str] | None = None, **options: Any,
    ) -> dict:
        """Start a cluster from a profile (``options``: cores, memory, disk, gpus, image, universe, adapt).

        ``environment``: the software environment's name; by default this kernel's (its ``sys.prefix``), so
        scheduler and workers run the packages this kernel has. The server refuses a cluster whose
        ``distributed`` version differs from this kernel's. ``require``: modules the workers must be able
        to import (e.g. ``["coffea"]``); an environment without one is refused before anything is submitted.
        """
        body = {
            k: v for k, v in {"profile": profile, "name": name, "workers": workers, **options}.items() if v is not None
        }
        body["environment"] = environment or sys.prefix
        if require:
            body["require"] = list(require)
        version = _distributed_version()
        if version:
            body["client_distributed"] = version
        return self.request("POST", "clusters", body=body, timeout=600)

    def scale(self, cluster_id: str, workers: int, wait: float | None = None) -> dict:
        body: dict[str, Any] = {"workers": workers}
        if wait is not None:
            body["wait"] = wait
        return self.request("PATCH", f"clusters/{quote(cluster_id, safe='')}", body=body, timeout=600)

    def adapt(self, cluster_id: str, minimum: int | None, maximum: int | None = None) -> dict:
        """Adaptive scaling between ``minimum`` and ``maximum`` workers; ``adapt(id, None)`` stops it."""
        adapt = None if minimum is None else {"minimum": minimum, "maximum": maximum}
        return self.request("PATCH", f"clusters/{quote(cluster_id, safe='')}", body={"adapt": adapt})

    def close_cluster(self, cluster_id: str) -> None:
        self.request("DELETE", f"clusters/{quote(cluster_id, safe='')}", timeout=600)

    def cluster_security(self, cluster: dict | str):
        """``(address, distributed.Security)`` for a cluster: its TLS client certificate, fetched from af-lab.

        Every cluster's scheduler and workers require TLS with the cluster's own CA; the certificate
        and key are written 0600 into a 0700 directory of this user's (under the Jupyter runtime dir).
        """
        cluster_id = cluster["id"] if isinstance(cluster, dict) else cluster
        params = {"distributed": _distributed_version()} if _distributed_version() else {}
        data = self.get(f"clusters/{quote(cluster_id, safe='')}/client", **params)
        return data["address"], client_security(cluster_id, data, _runtime_dir())

    def dask_client(self, cluster: dict | str | None = None, **kwargs: Any):
        """A ``distributed.Client`` connected to a cluster's scheduler (the only running one by default).

        Its ``dashboard_link`` is the cluster's ``dashboard_url`` (through the Jupyter server's proxy).
        """
        if cluster is None:
            cluster = self.default_cluster()
        elif isinstance(cluster, str):
            cluster = self.cluster(cluster)
        if not cluster.get("scheduler_address"):
            raise FacilityError(f"Cluster {cluster['id'][:8]} has no scheduler address (state {cluster['state']}).")
        address, security = self.cluster_security(cluster)
        kwargs.setdefault("timeout", "30s")
        kwargs.setdefault("security", security)
        # Its dashboard_link is the proxied one %af_cluster prints, not the scheduler's loopback one.
        return facility_dask_client(address, cluster.get("dashboard_url") or "", **kwargs)

    # ------------------------------------------------------------------ status
    def status(self) -> list[dict]:
        return self.get("status")["services"]


def _distributed_version() -> str | None:
    try:
        import distributed
    except ImportError:
        return None
    return distributed.__version__


def _rses(replicas: list[dict]) -> list[str]:
    """RSE names holding a file; a replica that is not AVAILABLE shows its state."""
    out = []
    for r in replicas:
        state = r.get("state") or "AVAILABLE"
        out.append(r["rse"] if state == "AVAILABLE" else f"{r['rse']} ({state.lower()})")
    return out
