"""In-process publish/subscribe for live progress (mounts, publish jobs, clusters).

Services publish small JSON-able events; the ``/af-lab/events`` stream pushes
them to the browser as they happen, so the UI never polls for progress.
A slow subscriber loses its oldest events (bounded queue) rather than making
the server hold memory; every event carries the full current state of its
object, so dropping intermediate ones never leaves the UI wrong.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any


class EventBus:
    def __init__(self, queue_size: int = 256):
        self._subscribers: set[asyncio.Queue] = set()
        self._queue_size = queue_size
        self._ids = itertools.count(1)

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        event = {"id": next(self._ids), "topic": topic, "time": time.time(), "data": payload}
        for queue in list(self._subscribers):
            if queue.full():
                queue.get_nowait()  # drop the oldest: later events carry the full state
            queue.put_nowait(event)

    async def subscribe(self, topics: Iterable[str] = ()) -> AsyncIterator[dict[str, Any]]:
        """Yield events whose topic starts with one of ``topics`` (all if empty)."""
        prefixes = tuple(topics)
        queue: asyncio.Queue = asyncio.Queue(self._queue_size)
        self._subscribers.add(queue)
        try:
            while True:
                event = await queue.get()
                if not prefixes or event["topic"].startswith(prefixes):
                    yield event
        finally:
            self._subscribers.discard(queue)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)
