"""What every phase of a publish job uses: the job store, Rucio with a job's patience, progress events.

:class:`JobContext` is handed to the runner and to the registration phases; neither
owns the other's state. A Rucio step of a job goes through :meth:`JobContext.rucio`:
the gateway already logged in again once on a rejected token and typed the failure;
here a transient fault (Rucio or Vault unreachable) is waited out with backoff for
``retry_window`` seconds, after which (or on credentials Rucio keeps refusing) the job
is interrupted, resumable as it is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ..errors import AFLabError, ServiceUnavailable, Unauthorized
from ..events.bus import EventBus
from ..rucio.gateway import RucioGateway
from .store import JobStore

T = TypeVar("T")
TOPIC = "publish"
EVENT_INTERVAL = 0.25  # seconds between progress events of one job (phase changes always go out)


class Interrupted(Exception):
    """The job cannot go on now (Rucio unreachable, credentials refused) but can be resumed as it is."""

    def __init__(self, error: AFLabError):
        super().__init__(error.message)
        self.error = error


def public(job: dict[str, Any]) -> dict[str, Any]:
    """A job document as the API shows it (no resume bookkeeping)."""
    return {k: v for k, v in job.items() if k != "steps" and not k.startswith("_")}


class JobContext:
    def __init__(self, store: JobStore, gateway: RucioGateway, events: EventBus, retry_window: float):
        self.store = store
        self.gateway = gateway
        self.events = events
        self.retry_window = retry_window
        self._last_event: dict[str, float] = {}

    async def rucio(self, job: dict[str, Any], what: str, method: Callable[..., Awaitable[T]], *args: Any) -> T:
        """``method(instance, *args)``, a gateway method, for ``job`` (its instance comes first)."""
        instance = job["request"]["instance"]
        deadline = time.monotonic() + self.retry_window
        delay = 1.0
        while True:
            try:
                return await method(instance, *args)
            except Unauthorized as exc:
                raise Interrupted(exc) from None
            except ServiceUnavailable as exc:
                if time.monotonic() >= deadline:
                    raise Interrupted(exc) from None
            self.set(job, message=f"Rucio is unreachable while {what}; retrying in {delay:.0f} s.")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    # ------------------------------------------------------------ state, progress, events
    def set(self, job: dict[str, Any], **fields: Any) -> None:
        if "phase" in fields and fields["phase"] != job.get("phase"):
            self.clock(job)
        job.update(fields)
        self.emit(job, force="phase" in fields)

    @staticmethod
    def clock(job: dict[str, Any]) -> None:
        """Seconds spent per phase (this run's wall time; a resumed job adds to its earlier figures)."""
        now = time.time()
        started = job.get("_phase_started")
        if started and job.get("phase"):
            timings = job.setdefault("timings", {})
            timings[job["phase"]] = round(timings.get(job["phase"], 0.0) + now - started, 3)
        job["_phase_started"] = now

    async def save(self, job: dict[str, Any]) -> None:
        await self.store.run(self.store.save, job)
        self.emit(job, force=True)

    def emit(self, job: dict[str, Any], force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_event.get(job["id"], 0.0) < EVENT_INTERVAL:
            return
        self._last_event[job["id"]] = now
        self.events.publish(f"{TOPIC}/{job['id']}", public(job))
