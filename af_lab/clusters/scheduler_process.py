"""Every cluster's Dask scheduler as its own process, never inside the Jupyter server.

dask runs the scheduler inside the process that created the cluster; for
af-lab that is the Jupyter server, which would then unpickle what clients send,
need every analysis framework installed, and take the scheduler down with it on
a restart. This
:class:`~distributed.deploy.spec.ProcessInterface` starts ``dask scheduler`` in
a new session instead, with the cluster's software environment's Python, TLS
certificates and an allow-listed environment (``scheduler_cls`` of every
backend's cluster), and after a
restart *adopts* the same process again: same pid, same start time, same
scheduler id, or it is not ours.

The dashboard always listens on 127.0.0.1: users reach it through the Jupyter
server's authenticated proxy (dask-labextension's ``/dask/dashboard/<id>/``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from distributed.core import rpc
from distributed.deploy.spec import ProcessInterface

from ..paths import private_file

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
LOOPBACK = "127.0.0.1"


def proc_start_ticks(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot); None if gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def same_process_alive(pid: int | None, start_ticks: int | None) -> bool:
    """True if ``pid`` still runs *and* is the process we started (not a reused pid)."""
    return bool(pid) and start_ticks is not None and proc_start_ticks(pid) == start_ticks


async def identity(address: str, security=None, timeout: float = 5.0) -> dict[str, Any]:
    args = security.get_connection_args("client") if security is not None else {}
    async with rpc(address, timeout=timeout, connection_args=args) as scheduler:
        return await asyncio.wait_for(scheduler.identity(), timeout)


class SchedulerProcess(ProcessInterface):
    """``dask scheduler`` in its own session; ``adopt`` reattaches to one started earlier.

    ``run_dir`` holds the scheduler file and log. ``info`` (pid, start time,
    address, dashboard port, scheduler id) is what the cluster record persists.
    Unknown keyword arguments are the generic scheduler options dask-jobqueue
    passes (``protocol``, ``security``, ``dashboard_address``, ``interface``);
    they are ignored or mapped below.
    """

    def __init__(
        self,
        run_dir: str,
        host: str = LOOPBACK,
        adopt: dict[str, Any] | None = None,
        client_security=None,
        env: dict[str, str] | None = None,
        python: str | None = None,
        tls_args: list[str] | None = None,
        protocol: str | None = None,
        **_generic_options: Any,
    ):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.host = host
        self.adopt = adopt
        self.client_security = client_security
        self.env = env
        self.python = python or sys.executable
        self.tls_args = list(tls_args or [])
        self.protocol = "tls://" if self.tls_args else (protocol or "tcp://")
        # subprocess.Popen, not asyncio's: an asyncio transport kills its child when it is
        # garbage-collected at server exit, and this scheduler must outlive the server.
        self.process: subprocess.Popen | None = None
        self.info: dict[str, Any] = dict(adopt or {})

    # ------------------------------------------------------------------ start
    async def start(self) -> None:
        if self.adopt:
            await self._adopt()
        else:
            await self._spawn()
        await super().start()

    async def _spawn(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        scheduler_file = self.run_dir / "scheduler.json"
        scheduler_file.unlink(missing_ok=True)
        argv = [
            self.python, "-m", "distributed.cli.dask_scheduler",
            "--host", self.host, "--port", "0", "--protocol", self.protocol.rstrip(":/"),
            "--dashboard-address", f"{LOOPBACK}:0",
            "--scheduler-file", str(scheduler_file), *self.tls_args,
        ]  # fmt: skip
        with open(private_file(self.run_dir / "scheduler.log"), "ab") as log:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=self.env,
                start_new_session=True,  # not in the server's process group: survives its restart
                umask=0o077,  # its scheduler file and logs are the user's only
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        ident = None
        while time.monotonic() < deadline and self.process.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                ident = json.loads(scheduler_file.read_text())
                break
            await asyncio.sleep(0.05)
        if ident is None:
            await self._kill()
            tail = _tail(self.run_dir / "scheduler.log")
            raise RuntimeError(f"the Dask scheduler did not start (exit code {self.process.returncode}): {tail}")
        self.address = ident["address"]
        self.info = {
            "pid": self.process.pid,
            "start_ticks": proc_start_ticks(self.process.pid),
            "address": self.address,
            "dashboard_port": (ident.get("services") or {}).get("dashboard"),
            "scheduler_id": ident.get("id"),
        }

    async def _adopt(self) -> None:
        info = self.adopt or {}
        if not same_process_alive(info.get("pid"), info.get("start_ticks")):
            raise RuntimeError("its scheduler process is gone")
        try:
            ident = await identity(info["address"], self.client_security)
        except (TimeoutError, OSError) as exc:
            raise RuntimeError(f"its scheduler does not answer at {info['address']}: {type(exc).__name__}") from None
        if ident.get("id") != info.get("scheduler_id"):
            raise RuntimeError(f"another scheduler now answers at {info['address']}")
        self.address = info["address"]

    # ------------------------------------------------------------------ state
    @property
    def pid(self) -> int | None:
        return self.info.get("pid")

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None  # also reaps it once it has exited
        return same_process_alive(self.info.get("pid"), self.info.get("start_ticks"))

    def exit_code(self) -> int | None:
        """Exit code when we started it; None when adopted (not our child) or still running."""
        return self.process.poll() if self.process is not None else None

    @property
    def dashboard_link(self) -> str:
        port = self.info.get("dashboard_port")
        return f"http://{LOOPBACK}:{port}/status" if port else ""

    # ------------------------------------------------------------------ stop
    async def close(self) -> None:
        await self._kill()
        await super().close()

    async def _kill(self) -> None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT_S; only ever the process we started or adopted."""
        pid = self.pid or (self.process.pid if self.process else None)
        if pid and self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while self.alive() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if self.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
        if self.process is not None:
            self.process.poll()  # reap it



def _tail(path: Path, limit: int = 600) -> str:
    try:
        return path.read_text(errors="replace")[-limit:].strip() or "(empty log)"
    except OSError:
        return "(no log)"
