"""Cluster profiles and server settings the cluster tests share (everything on 127.0.0.1, small)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

# Workers listen on loopback only: their address and their HTTP server (--no-dashboard alone still
# binds 0.0.0.0 for /health and /metrics).
LOOPBACK_WORKER_ARGS = ["--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0"]

LOCAL = {
    "backend": "local",
    "display_name": "Local",
    "defaults": {"cores": 1, "memory": "256 MiB"},
    "limits": {"max_workers": 2, "max_cores": 2, "max_memory": "1 GiB", "max_clusters": 2},
}


def htcondor(**overrides: Any) -> dict[str, Any]:
    profile = {
        "backend": "htcondor",
        "display_name": "HTCondor (stand-in)",
        "defaults": {"cores": 1, "memory": "256 MiB", "disk": "1 GiB"},
        "limits": {"max_workers": 4, "max_cores": 2, "max_memory": "2 GiB", "max_disk": "10 GiB",
                   "images": ["/cvmfs/unpacked.cern.ch/coffea:latest"], "universes": ["vanilla", "container"]},
        "scheduler_host": "127.0.0.1",
        "worker_extra_args": LOOPBACK_WORKER_ARGS,
        "death_timeout": 30,
    }
    profile.update(overrides)
    return profile


PROFILES = {
    "local": LOCAL,
    "htcondor": htcondor(),
    # The admin's extra directives reach every job: these two make the stand-in keep it Idle / hold it.
    "htcondor-stuck": htcondor(job_extra_directives={"MY.FakeCondorStayIdle": "True"}, worker_start_timeout=1),
    # Broken site settings, as a real pool would reject them.
    "htcondor-wrong-schedd": htcondor(submit_command_extra=["-name", "no-such-schedd.example.org"]),
    "htcondor-bad-directive": htcondor(job_extra_directives={"MY.Broken": "floor(("}),
}


def settings(**overrides: Any) -> dict[str, Any]:
    """c.AFLab for a cluster test: fast checks, nothing survives the test's server."""
    base = {
        "cluster_profiles": PROFILES,
        "default_cluster_profile": "local",
        "cluster_monitor_interval": 0.2,
        "cluster_idle_timeout": 0.0,
        "cluster_survive_restart": False,
        "cluster_worker_start_timeout": 600.0,
    }
    base.update(overrides)
    return base


def server_config(aflab: dict[str, Any]) -> dict[str, Any]:
    return {
        "ServerApp": {
            "jpserver_extensions": {"af_lab": True, "dask_labextension": True, "jupyter_server_proxy": True},
            "allow_unauthenticated_access": False,
        },
        "AFLab": aflab,
    }


async def call(jp_fetch, method: str, *path: str, body: Any = None, expect: int | None = None):
    """One REST call; returns (status, JSON or None) and never raises on an HTTP error status."""
    from tornado.httpclient import HTTPClientError

    # Starting scheduler and worker processes on a busy machine can take longer than jp_fetch's 20 s default.
    kwargs: dict[str, Any] = {"method": method, "allow_nonstandard_methods": True, "request_timeout": 180}
    if body is not None:
        kwargs["body"] = body if isinstance(body, (str, bytes)) else json.dumps(body)
    try:
        resp = await jp_fetch(*path, **kwargs)
        code, raw = resp.code, resp.body
    except HTTPClientError as err:
        code, raw = err.code, err.response.body if err.response is not None else b""
    data = json.loads(raw) if raw else None
    if expect is not None:
        assert code == expect, f"{method} {'/'.join(path)} -> {code}: {data}"
    return code, data


async def poll(predicate, timeout: float = 60.0, interval: float = 0.2, what: str = "condition"):
    """Await ``predicate()`` (sync or async) until truthy; returns its value. Not a timing assertion."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)


async def cluster_security(jp_fetch, cluster_id: str, runtime_dir):
    """The cluster's client ``Security``, fetched as a kernel does (GET /af-lab/clusters/<id>/client)."""
    from af_lab.kernel.cluster_tls import client_security

    _, data = await call(jp_fetch, "GET", "af-lab", "clusters", cluster_id, "client", expect=200)
    return client_security(cluster_id, data, str(runtime_dir))
