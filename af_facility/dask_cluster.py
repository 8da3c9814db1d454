"""A real Dask scheduler and two workers on loopback: the facility's shared cluster."""

from __future__ import annotations

import sys
from typing import Any

from .base import Service
from .procs import LOOPBACK, ManagedProcess, free_port, port_answers, port_is_free


class DaskCluster(Service):
    name = "dask"
    workers = 2

    def _procs(self) -> tuple[ManagedProcess, ManagedProcess]:
        d = self.state.dir("dask")
        run, logs = self.state.root / "run", self.state.root / "logs"
        marker = str(d)  # every command line carries the state dir
        return (
            ManagedProcess("dask-scheduler", run / "dask-scheduler.pid", logs / "dask-scheduler.log", marker),
            ManagedProcess("dask-workers", run / "dask-workers.pid", logs / "dask-workers.log", marker),
        )

    def running(self) -> bool:
        scheduler, workers = self._procs()
        return scheduler.is_running() and workers.is_running()

    def up(self) -> dict[str, Any]:
        scheduler, workers = self._procs()
        info = dict(self.info)
        if self.running() and info.get("port"):
            return info
        self.down()
        port = info.get("port") if info.get("port") and port_is_free(info["port"]) else free_port()
        dash = free_port()
        d = self.state.dir("dask")
        env = {"DASK_CONFIG": str(d / "config"), "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
        scheduler.start(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", LOOPBACK, "--port", str(port),
             "--dashboard-address", f"{LOOPBACK}:{dash}", "--scheduler-file", str(d / "scheduler.json")],
            env=env,
        )
        scheduler.wait_until(lambda: port_answers(port), 60, "accepting connections")
        address = f"tcp://{LOOPBACK}:{port}"
        workers.start(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", str(self.workers),
             "--nthreads", "1", "--memory-limit", "1GiB", "--host", LOOPBACK, "--dashboard-address", f"{LOOPBACK}:0",
             "--local-directory", str(d / "workers")],
            env=env,
        )
        workers.wait_until(lambda: _worker_count(address) >= self.workers, 90, f"{self.workers} workers connected")
        return {"address": address, "port": port, "dashboard": f"http://{LOOPBACK}:{dash}/status",
                "workers": self.workers}

    def down(self) -> None:
        scheduler, workers = self._procs()
        workers.stop()
        scheduler.stop()


def _worker_count(address: str) -> int:
    import asyncio

    from distributed.core import rpc

    async def count() -> int:
        async with rpc(address, timeout=2) as s:
            return len((await s.identity()).get("workers", {}))

    return asyncio.run(count())
