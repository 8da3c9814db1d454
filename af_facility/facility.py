"""Bring the whole demo facility up or down, in dependency order."""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .base import FacilityState, Service, Unavailable
from .procs import ServiceError

# name -> "module:Class"; order is start order (stop is the reverse).
SERVICES: dict[str, str] = {
    "rucio": "af_facility.rucio_server:RucioServer",
    "openbao": "af_facility.openbao:OpenBao",
    "xrootd": "af_facility.xrootd:XRootD",
    "demo": "af_facility.demo_data:DemoData",
    "slurm": "af_facility.slurm:Slurm",
    "dask": "af_facility.dask_cluster:DaskCluster",
    "lab": "af_facility.lab:JupyterLab",
}
DEFAULT_SERVICES = ("rucio", "openbao", "xrootd", "demo", "slurm", "dask")


def service_class(name: str) -> type[Service]:
    module, cls = SERVICES[name].split(":")
    return getattr(importlib.import_module(module), cls)


class Facility:
    def __init__(self, root: Path | str):
        self.state = FacilityState.load(Path(root))

    @property
    def root(self) -> Path:
        return self.state.root

    def service(self, name: str) -> Service:
        return service_class(name)(self.state)

    def up(self, names: Iterable[str] = DEFAULT_SERVICES, log=print) -> dict[str, Any]:
        """Start the services in order. On a failure, stop what this call started and raise."""
        started: list[Service] = []
        report: dict[str, Any] = {}
        for name in names:
            svc = self.service(name)
            was_running = svc.running()
            t0 = time.monotonic()
            try:
                info = svc.up()
            except Unavailable as why:
                if not svc.optional:
                    self._rollback(started)
                    raise ServiceError(name, str(why)) from why
                self.state.services[name] = {"available": False, "reason": str(why)}
                self.state.save()
                report[name] = {"available": False, "reason": str(why)}
                log(f"  {name:8s} not available: {why}")
                continue
            except BaseException:
                self._rollback([*started, svc])
                raise
            if not was_running:
                started.append(svc)
            self.state.services[name] = {**info, "available": True}
            self.state.save()
            report[name] = info
            how = "reused" if was_running else f"up in {time.monotonic() - t0:.1f} s"
            log(f"  {name:8s} {how}")
        return report

    def _rollback(self, started: list[Service]) -> None:
        for svc in reversed(started):
            try:
                svc.down()
            except Exception as exc:  # keep stopping the others
                print(f"  {svc.name}: stop failed: {exc}")

    def down(self, names: Iterable[str] | None = None, log=print) -> None:
        wanted = set(names or SERVICES)
        for name in reversed([n for n in SERVICES if n in wanted]):
            svc = self.service(name)
            try:
                svc.down()
            except Exception as exc:
                log(f"  {name}: stop failed: {exc}")

    def status(self) -> dict[str, bool]:
        return {name: self.service(name).running() for name in SERVICES if name in self.state.services}
