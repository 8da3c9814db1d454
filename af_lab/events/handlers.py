"""``GET /af-lab/events?topic=mounts&topic=publish`` — a Server-Sent Events stream.

Each message is ``data: {"id", "topic", "time", "data"}``; a comment line is
sent every ``keepalive`` seconds so proxies keep the connection open. The
browser reads it with an authenticated ``fetch`` (ServerConnection), not
EventSource, so the Jupyter token header applies like on every other route.
"""

import asyncio
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
        # Subscribed before "connected" is written: a client that acts on seeing it
        # (starts a mount, say) gets every event that action causes.
        with self.services.events.subscribe(self.get_arguments("topic")) as events:
            try:
                self.write(": connected\n\n")
                await self.flush()
                while True:
                    try:
                        event = await asyncio.wait_for(events.get(), self.keepalive)
                        self.write(f"data: {json.dumps(event)}\n\n")
                    except TimeoutError:
                        self.write(": keepalive\n\n")
                    await self.flush()
            except StreamClosedError:
                pass  # the browser went away


handlers = [("events", EventStreamHandler)]
