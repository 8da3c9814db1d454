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
from collections.abc import Iterable
from typing import Any


class Subscription:
    """One subscriber's queue, registered from the moment it is created (so nothing
    published after ``subscribe()`` returns is missed). Iterate it, or ``await get()``;
    ``close()`` unregisters it. A cancelled ``get()`` loses nothing."""

    def __init__(self, bus: EventBus, prefixes: tuple[str, ...], queue_size: int):
        self._bus = bus
        self.prefixes = prefixes
        self.queue: asyncio.Queue = asyncio.Queue(queue_size)

    def wants(self, topic: str) -> bool:
        return not self.prefixes or topic.startswith(self.prefixes)

    async def get(self) -> dict[str, Any]:
        return await self.queue.get()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> dict[str, Any]:
        return await self.queue.get()

    def close(self) -> None:
        self._bus._subscribers.discard(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    def __init__(self, queue_size: int = 256):
        self._subscribers: set[Subscription] = set()
        self._queue_size = queue_size
        self._ids = itertools.count(1)

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        event = {"id": next(self._ids), "topic": topic, "time": time.time(), "data": payload}
        for sub in list(self._subscribers):
            if not sub.wants(topic):
                continue
            if sub.queue.full():
                sub.queue.get_nowait()  # drop the oldest: later events carry the full state
            sub.queue.put_nowait(event)

    def subscribe(self, topics: Iterable[str] = ()) -> Subscription:
        """Events whose topic starts with one of ``topics`` (all if empty), from now on."""
        sub = Subscription(self, tuple(topics), self._queue_size)
        self._subscribers.add(sub)
        return sub

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def wants(self, topic: str) -> bool:
        """Whether anyone listens to ``topic`` now (publishers skip costly reads nobody would see)."""
        return any(sub.wants(topic) for sub in self._subscribers)
