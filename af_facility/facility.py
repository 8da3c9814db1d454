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
# What a service cannot start without (its up() reads their published state).
NEEDS: dict[str, tuple[str, ...]] = {"demo": ("rucio",), "lab": ("rucio", "openbao")}


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
        """Start the services in order; reuse what runs.

        A service that fails is reported (with its log) and the others still come up,
        except those that need it (``NEEDS``); at the end one :class:`ServiceError`
        names every failure, and what came up keeps running (``down`` stops it). An
        interruption (Ctrl-C) stops what this call started and re-raises.
        """
        started: list[Service] = []
        report: dict[str, Any] = {}
        failed: dict[str, ServiceError] = {}
        for name in names:
            missing = [n for n in NEEDS.get(name, ()) if n in failed]
            if missing:
                failed[name] = ServiceError(name, f"not started: it needs {', '.join(missing)}, which failed")
                log(f"  {name:8s} skipped: needs {', '.join(missing)}")
                continue
            svc = self.service(name)
            was_running = svc.running()
            t0 = time.monotonic()
            try:
                info = svc.up()
            except Unavailable as why:
                if not svc.optional:
                    failed[name] = ServiceError(name, str(why))
                    log(f"  {name:8s} FAILED: {why}")
                    continue
                self.state.services[name] = {"available": False, "reason": str(why)}
                self.state.save()
                report[name] = {"available": False, "reason": str(why)}
                log(f"  {name:8s} not available: {why}")
                continue
            except ServiceError as err:
                failed[name] = err
                self.state.services[name] = {"available": False, "reason": str(err)}
                self.state.save()
                log(f"  {name:8s} FAILED: {err}")
                continue
            except BaseException:  # Ctrl-C or a bug: leave nothing of this call behind
                self._rollback([*started, svc])
                raise
            if not was_running:
                started.append(svc)
            self.state.services[name] = {**info, "available": True}
            self.state.save()
            report[name] = info
            how = "reused" if was_running else f"up in {time.monotonic() - t0:.1f} s"
            log(f"  {name:8s} {how}")
        if failed:
            if len(failed) == 1:
                raise next(iter(failed.values()))
            raise ServiceError(", ".join(failed), "\n".join(f"  {err}" for err in failed.values()))
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
