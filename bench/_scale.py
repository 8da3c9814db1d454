"""The bare dask-jobqueue side of the scale benchmarks, timed one way for every batch system."""

from __future__ import annotations

import asyncio
import time

POLL_S = 0.02
SETTLE_S = 1.0  # a new cluster sits idle this long before the timed scale, on both sides


async def timed_scale_and_close(cluster, n: int) -> tuple[float, float]:
    """Seconds from ``scale(n)`` until n workers are connected, then seconds to close the cluster."""
    try:
        await asyncio.sleep(SETTLE_S)
        t0 = time.perf_counter()
        cluster.scale(n)
        while len(cluster.scheduler_info["workers"]) < n:
            await asyncio.sleep(POLL_S)
        scaled = time.perf_counter() - t0
    finally:
        t0 = time.perf_counter()
        await cluster.close()
    return scaled, time.perf_counter() - t0
