"""Finding the Jupyter server that started this kernel (its jpserver-<pid>.json), without importing it.

Read by :class:`~af_lab.kernel.client.FacilityClient.discover`; standard library only (psutil if present).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def _runtime_dir() -> str:
    try:
        from jupyter_core.paths import jupyter_runtime_dir  # light: no tornado, no jupyter_server

        return jupyter_runtime_dir()
    except ImportError:
        return os.environ.get("JUPYTER_RUNTIME_DIR") or str(Path.home() / ".local/share/jupyter/runtime")


def _parent_pid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[1])  # the command name may hold spaces and ')'
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return psutil.Process(pid).ppid()
    except Exception:
        return None


def _ancestors(limit: int = 8) -> list[int]:
    """The parent, grandparent, ... of this process: a kernel may run under a wrapper (conda run, a shell)."""
    out, pid = [], os.getppid()
    while pid and pid > 1 and pid not in out and len(out) < limit:
        out.append(pid)
        pid = _parent_pid(pid)
    return out


def _server_infos(runtime_dir: str) -> list[dict]:
    # Read jpserver-*.json ourselves: jupyter_server.serverapp.list_running_servers would import
    # all of jupyter_server and tornado into the kernel.
    infos = []
    try:
        names = sorted(os.listdir(runtime_dir))
    except OSError:
        return infos
    for name in names:
        if re.fullmatch(r"jpserver-.+\.json", name):
            try:
                info = json.loads((Path(runtime_dir) / name).read_text())
            except (OSError, ValueError):
                continue  # being written, or not ours to read
            if isinstance(info, dict) and isinstance(info.get("pid"), int):
                infos.append(info)
    return infos


def find_parent_server(runtime_dir: str | None = None) -> dict | None:
    """The server info (jpserver-<pid>.json) of the Jupyter server that started this process, if any."""
    infos = {info["pid"]: info for info in _server_infos(runtime_dir or _runtime_dir())}
    for pid in _ancestors():
        if pid in infos:
            return infos[pid]
    return None


def _loopback(url: str) -> str:
    """Servers listening on all interfaces or 'localhost' are reached on 127.0.0.1."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host in ("", "localhost", "0.0.0.0", "::", "*"):
        netloc = "127.0.0.1" + (f":{parts.port}" if parts.port else "")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)
