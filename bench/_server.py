"""A Jupyter server subprocess for the benchmarks: a free loopback port, private dirs, stopped by PID.

Every benchmark starts its servers (af-lab, or a peer such as rucio-jupyterlab from its own
venv) through this one class so that they all run the same way and are measured alike.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"{}")
    except ValueError:
        return raw.decode(errors="replace")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterServer:
    """``python -m jupyter_server`` with ``config`` (a JSON config dict), its own JUPYTER_* dirs under ``directory``.

    ``env`` replaces the inherited environment when given (peers run with a cleaned one).
    """

    def __init__(
        self,
        directory: Path,
        config: dict,
        *,
        python: Path | str = sys.executable,
        env: dict[str, str] | None = None,
        root_dir: Path | None = None,
        startup_timeout: float = 120,
    ):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.root_dir = root_dir or self.dir / "ws"
        self.root_dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "config.json").write_text(json.dumps(config))
        self.port, self.token = free_port(), secrets.token_hex(16)
        env = {**(os.environ if env is None else env), "JUPYTER_RUNTIME_DIR": str(self.dir / "runtime"),
               "JUPYTER_DATA_DIR": str(self.dir / "data"), "JUPYTER_CONFIG_DIR": str(self.dir / "etc")}  # fmt: skip
        self.log = open(self.dir / "server.log", "wb")
        self.proc = subprocess.Popen(
            [str(python), "-m", "jupyter_server", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={self.port}",
             "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
             f"--ServerApp.root_dir={self.root_dir}", f"--config={self.dir / 'config.json'}"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.dir,
        )  # fmt: skip
        deadline = time.monotonic() + startup_timeout
        while True:
            with contextlib.suppress(OSError):
                self.call("GET", "/api/status")
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the Jupyter server did not start; see {self.dir / 'server.log'}")
            time.sleep(0.2)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def call(self, method: str, path: str, body: dict | None = None, timeout: float = 900) -> tuple[int, Any]:
        """One JSON request; returns (HTTP status, decoded body), for errors too (text if not JSON)."""
        req = urllib.request.Request(
            self.url(path), method=method, data=json.dumps(body).encode() if body is not None else None,
            headers={**self.headers, "Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, _decode(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, _decode(err.read())

    @contextlib.contextmanager
    def events(self, topic: str, timeout: float = 900):
        """The live event stream (``/af-lab/events``), as the sidebar reads it: yields an
        iterator of event dicts. Waiting on it costs the server nothing, unlike polling."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", f"/af-lab/events?topic={topic}", headers=self.headers)
            resp = conn.getresponse()
            if resp.status != 200:
                raise RuntimeError(f"event stream: HTTP {resp.status}")
            resp.readline()  # ": connected": the server has subscribed us

            def messages():
                while line := resp.readline():
                    if line.startswith(b"data: "):
                        yield json.loads(line[6:])

            yield messages()
        finally:
            conn.close()

    def poll(self, path: str, key: str, finished: Callable[[dict], bool], every: float = 0.01) -> dict:
        """GET ``path`` until ``finished(body[key])``; returns ``body[key]``."""
        while True:
            item = self.call("GET", path)[1][key]
            if finished(item):
                return item
            time.sleep(every)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def remove_tree(path: Path) -> None:
    """rmtree for a tree that may hold mount views (immutable when the server ran as root)."""
    if shutil.which("chattr") and Path(path).exists():
        subprocess.run(["chattr", "-R", "-f", "-i", str(path)], capture_output=True, timeout=300)
    shutil.rmtree(path, ignore_errors=True)
