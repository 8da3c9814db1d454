"""A Jupyter server with af-lab as a subprocess against the test facility (for tests that kill,
freeze or read it as another user); the benchmarks' :class:`JupyterServer` underneath."""

from __future__ import annotations

import time
from pathlib import Path

import requests

from af_facility.lab import aflab_config
from bench._server import JupyterServer, remove_tree  # noqa: F401 (tests import it from here)


def start(facility, home: Path, **overrides) -> JupyterServer:
    """af-lab against ``facility`` with its workspace, cache and state under ``home``."""
    settings = {**aflab_config(facility.state)["AFLab"], "cache_dir": str(home / "cache"),
                "state_dir": str(home / "state"), **overrides}  # fmt: skip
    server = JupyterServer(home, {"ServerApp": {"jpserver_extensions": {"af_lab": True}}, "AFLab": settings},
                           root_dir=home / "ws")  # fmt: skip
    session = requests.Session()
    session.trust_env = False
    session.headers.update(server.headers)
    server.session = session
    return server


def api(server: JupyterServer, method: str, path: str, body=None, timeout: float = 120) -> tuple[int, dict]:
    resp = server.session.request(method, server.url(f"/af-lab/{path}"), json=body, timeout=timeout)
    try:
        return resp.status_code, resp.json()
    except ValueError:
        return resp.status_code, {"text": resp.text}


def wait_mount(server: JupyterServer, mount_id: str, seconds: float = 120) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        mount = api(server, "GET", f"mounts/{mount_id}")[1]["mount"]
        if mount["state"] in ("ready", "failed", "cancelled") or time.monotonic() > deadline:
            return mount
        time.sleep(0.2)


def stop_leaving_nothing(server: JupyterServer, home: Path) -> list[str]:
    """Close the clusters the server made (they outlive a server by design), stop it, and return
    the command lines of any process still running from ``home`` (killed, so none survives a test)."""
    import psutil

    status, body = api(server, "GET", "clusters")
    for cluster in body.get("clusters", []) if status == 200 else []:
        api(server, "DELETE", f"clusters/{cluster['id']}")
    server.stop()
    left = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(home) in cmdline:
            left.append(cmdline)
            proc.kill()
    return left

