"""``GET /af-lab/events?topic=mounts&topic=publish`` — a Server-Sent Events stream.

Each message is ``data: {"id", "topic", "time", "data"}``; a comment line is
sent every ``keepalive`` seconds so proxies keep the connection open. The
browser reads it with an authenticated ``fetch`` (ServerConnection), not
EventSource, so the Jupyter token header applies like on every other route.
"""

import asyncio
import contextlib
import json

import tornado.web
from tornado.iostream import StreamClosedError

from ..handlers import AFLabHandler


class EventStreamHandler(AFLabHandler):
    keepalive = 15.0

    @tornado.web.authenticated
    async def get(self):
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")  # nginx: do not buffer the stream
        topics = self.get_arguments("topic")
        events = self.services.events.subscribe(topics)
        # One pending anext() at a time: wait_for() would cancel it on a keepalive
        # timeout, and a cancelled async generator is finished for good.
        pending: asyncio.Task | None = None
        try:
            self.write(": connected\n\n")
            await self.flush()
            while True:
                pending = pending or asyncio.ensure_future(anext(events))
                done, _ = await asyncio.wait({pending}, timeout=self.keepalive)
                if done:
                    event, pending = pending.result(), None
                    self.write(f"data: {json.dumps(event)}\n\n")
                else:
                    self.write(": keepalive\n\n")
                await self.flush()
        except StreamClosedError:
            pass  # the browser went away
        finally:
            if pending is not None:
                # Let the cancelled anext() finish first: closing a generator that is
                # still running raises RuntimeError.
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await pending
            await events.aclose()


handlers = [("events", EventStreamHandler)]
