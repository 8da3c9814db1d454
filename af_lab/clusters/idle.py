"""Idle shutdown, enforced by the scheduler itself.

One rule, wherever the scheduler runs and whether or not a Jupyter server is
watching it (an HTCondor cluster's scheduler outlives server restarts): close
the cluster once no task has run for ``timeout`` seconds, counting from the
later of the scheduler's own ``idle_since`` and the user's last scale or adapt
(af-lab writes that time into the scheduler's metadata). dask's built-in
``idle_timeout`` cannot see user actions, hence this small plugin.

Shipped to the scheduler by value (cloudpickle): standard library and
``distributed`` only.
"""

from __future__ import annotations

import asyncio
import logging
import time

from distributed.core import Status
from distributed.diagnostics.plugin import SchedulerPlugin

PLUGIN_NAME = "af-lab-idle-shutdown"
CLOSE_REASON = "af-lab-idle-timeout"
LAST_ACTION_KEY = ["af-lab", "last_action"]
logger = logging.getLogger("distributed.scheduler")


class IdleShutdown(SchedulerPlugin):
    name = PLUGIN_NAME

    def __init__(self, timeout: float):
        self.timeout = float(timeout)
        self.fired = False
        self._ticker: asyncio.Task | None = None

    async def start(self, scheduler) -> None:
        self.scheduler = scheduler
        self._ticker = asyncio.ensure_future(self._tick(min(max(self.timeout / 10, 0.2), 5.0)))

    async def _tick(self, interval_s: float) -> None:
        while not self.fired:
            await asyncio.sleep(interval_s)
            try:
                self.check()
            except Exception:  # one bad look must not end the watch
                logger.exception("af-lab: idle check failed")

    def check(self) -> None:
        scheduler = self.scheduler
        if scheduler.status != Status.running or self.fired:
            return
        since = scheduler.check_idle()  # None while anything is queued or processing
        if not since:
            return
        last_action = scheduler.get_metadata(LAST_ACTION_KEY, default=0) or 0
        if time.time() - max(since, last_action) >= self.timeout:
            self.fired = True
            logger.info("af-lab: no task for %g s: closing the scheduler (%s)", self.timeout, CLOSE_REASON)
            asyncio.ensure_future(scheduler.close(reason=CLOSE_REASON))

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
