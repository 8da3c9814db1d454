"""The live event stream pushes what services publish, filtered by topic."""

import asyncio
import logging

from tornado.httpclient import AsyncHTTPClient, HTTPRequest


async def test_event_stream_pushes_published_events(jp_serverapp, event_stream):
    bus = jp_serverapp.web_app.settings["af_lab"].events
    stream = await event_stream("mounts")

    bus.publish("publish/job-1", {"state": "running"})  # another topic: filtered out
    bus.publish("mounts/m-1", {"state": "done", "files": 3})
    await stream.until(lambda received: received)

    assert [e["topic"] for e in stream.received] == ["mounts/m-1"]
    assert stream.received[0]["data"] == {"state": "done", "files": 3}


async def test_event_stream_survives_keepalives(jp_fetch, jp_serverapp, jp_base_url, jp_http_port, jp_auth_header):
    """Quiet periods send keepalive comments and the same stream still delivers later events."""
    from af_lab.events.handlers import EventStreamHandler

    bus = jp_serverapp.web_app.settings["af_lab"].events
    chunks: list[str] = []
    EventStreamHandler.keepalive, saved = 0.2, EventStreamHandler.keepalive
    try:
        url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}af-lab/events"
        request = HTTPRequest(url, headers=jp_auth_header, streaming_callback=lambda c: chunks.append(c.decode()),
                              request_timeout=30)
        fetch = asyncio.ensure_future(AsyncHTTPClient().fetch(request, raise_error=False))
        for _ in range(100):
            if "".join(chunks).count(": keepalive") >= 3:
                break
            await asyncio.sleep(0.05)
        bus.publish("clusters/c-1", {"workers": 2})
        for _ in range(100):
            if "clusters/c-1" in "".join(chunks):
                break
            await asyncio.sleep(0.05)
        fetch.cancel()
    finally:
        EventStreamHandler.keepalive = saved
    text = "".join(chunks)
    assert text.count(": keepalive") >= 3
    assert '"topic": "clusters/c-1"' in text


async def test_a_client_that_goes_away_is_unsubscribed_without_an_error(
    jp_fetch, jp_serverapp, jp_base_url, jp_http_port, jp_auth_header, caplog
):
    """The browser closes the tab while the server waits for the next event."""
    from af_lab.events.handlers import EventStreamHandler

    bus = jp_serverapp.web_app.settings["af_lab"].events
    EventStreamHandler.keepalive, saved = 0.1, EventStreamHandler.keepalive
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", jp_http_port)
        headers = "".join(f"{k}: {v}\r\n" for k, v in jp_auth_header.items())
        writer.write(f"GET {jp_base_url}af-lab/events?topic=mounts HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b": connected"), 10)
        assert b" 200 " in head.split(b"\r\n", 1)[0] and bus.subscriber_count == 1
        writer.close()  # the connection drops; the next keepalive write finds it closed
        await writer.wait_closed()
        for _ in range(100):
            if bus.subscriber_count == 0:
                break
            await asyncio.sleep(0.05)
    finally:
        EventStreamHandler.keepalive = saved
    assert bus.subscriber_count == 0
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], errors


async def test_a_subscription_gets_what_is_published_right_after_it_is_made():
    """No await between subscribing and publishing: the event must still arrive (the
    stream writes "connected" only once subscribed, and clients act on it)."""
    from af_lab.events.bus import EventBus

    bus = EventBus(queue_size=3)
    with bus.subscribe(["mounts"]) as sub:
        bus.publish("mounts/m-1", {"n": 0})
        bus.publish("publish/p-1", {"n": -1})  # another topic: never queued
        for n in range(1, 4):
            bus.publish("mounts/m-1", {"n": n})
        assert bus.subscriber_count == 1
        got = [(await asyncio.wait_for(sub.get(), 1))["data"]["n"] for _ in range(3)]
        assert got == [1, 2, 3]  # the oldest was dropped to stay bounded; the newest state is there
    assert bus.subscriber_count == 0
