"""Test harness: the real facility services on loopback, shared by the whole session.

Tests marked ``facility`` get a Jupyter server (pytest-jupyter's ``jp_fetch``)
configured with ``c.AFLab`` against a real Rucio server, OpenBao, XRootD/XCache
and Dask scheduler that this session starts in a private directory and stops by
PID at the end, even when tests fail. Set ``AF_LAB_FACILITY_DIR`` to reuse a
facility already brought up with ``python -m af_facility --dir DIR up``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import pytest

from af_facility.facility import Facility
from af_facility.lab import aflab_config, seed_rucio_password

pytest_plugins = ("pytest_jupyter.jupyter_server",)

# The 50,000-file dataset is what users browse; tests page through all of it.
os.environ.setdefault("AF_DEMO_BIG_FILES", "50000")


def pytest_collection_modifyitems(items):
    # Facility tests share one expensive session fixture: run them after the quick ones
    # so a broken unit fails fast.
    items.sort(key=lambda item: item.get_closest_marker("facility") is not None)


class ServiceUse:
    """Which real service each test talked to, seen at the client libraries' calls.

    Rucio and OpenBao by their loopback ports, per HTTP request and per connect (any
    client in this process: the af-lab server under test or rucio-clients/hvac in a test), XRootD by its ports and by the
    XRootD client opening files, Dask by distributed's TCP connector. Connections made
    by child processes (e.g. separate Jupyter servers) are not seen: a lower bound.
    """

    def __init__(self):
        self.ports: dict[int, str] = {}
        self.current: str | None = None
        self.seen: dict[str, set[str]] = {}
        self.facility = None

    def learn_ports(self, fac) -> None:
        self.facility = fac
        services = fac.state.services
        for name, key in (("rucio", "url"), ("openbao", "addr")):
            url = services.get(name, {}).get(key) or ""
            with contextlib.suppress(ValueError):
                if urlparse(url).port:
                    self.ports[urlparse(url).port] = name
        xrootd = services.get("xrootd", {})
        for key in ("origin_port", "cache_port"):
            if xrootd.get(key):
                self.ports[xrootd[key]] = "xrootd"

    def note(self, service: str) -> None:
        if self.current:
            self.seen.setdefault(service, set()).add(self.current)

    def install(self) -> None:
        use = self
        original_connect = socket.socket.connect

        def connect(sock, address):
            if isinstance(address, tuple) and address[0] in ("127.0.0.1", "127.0.0.2", "localhost"):
                service = use.ports.get(address[1])
                if service:
                    use.note(service)
            return original_connect(sock, address)

        socket.socket.connect = connect
        # Kept-alive HTTP connections are reused across tests: count requests, not connects.
        from urllib3.connectionpool import HTTPConnectionPool

        original_urlopen = HTTPConnectionPool.urlopen

        def urlopen(pool, *args, **kwargs):
            if pool.host in ("127.0.0.1", "localhost"):
                service = use.ports.get(pool.port)
                if service:
                    use.note(service)
            return original_urlopen(pool, *args, **kwargs)

        HTTPConnectionPool.urlopen = urlopen
        with contextlib.suppress(ImportError):
            from distributed.comm.tcp import BaseTCPConnector

            original_dask = BaseTCPConnector.connect

            async def dask_connect(self, address, *args, **kwargs):
                use.note("dask")
                return await original_dask(self, address, *args, **kwargs)

            BaseTCPConnector.connect = dask_connect
        with contextlib.suppress(ImportError):
            from XRootD.client import File

            original_open = File.open

            def xrootd_open(self, url, *args, **kwargs):
                use.note("xrootd")
                return original_open(self, url, *args, **kwargs)

            File.open = xrootd_open

    def summary(self) -> str:
        counts = {name: len(self.seen.get(name, ())) for name in ("rucio", "openbao", "xrootd", "dask")}
        return ", ".join(f"{name} {count}" for name, count in counts.items())


_SERVICE_USE = ServiceUse()
_SERVICE_USE.install()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _SERVICE_USE.current = item.nodeid
    if _SERVICE_USE.facility is not None:  # an outage test may have restarted a service on a new port
        _SERVICE_USE.learn_ports(_SERVICE_USE.facility)
    yield
    _SERVICE_USE.current = None


@pytest.fixture(scope="session", autouse=True)
def _removable_tmp(tmp_path_factory):
    """Mount views are immutable (chattr +i) when the server runs as root: make this session's
    temporary directories removable again, as pytest removes old ones at a later start."""
    yield
    if shutil.which("chattr"):
        import subprocess

        subprocess.run(["chattr", "-R", "-f", "-i", str(tmp_path_factory.getbasetemp())], capture_output=True,
                       timeout=300)  # fmt: skip


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"tests that talked to each real service: {_SERVICE_USE.summary()}")


@pytest.fixture(scope="session")
def facility():
    reuse = os.environ.get("AF_LAB_FACILITY_DIR")
    if reuse:
        fac = Facility(Path(reuse))
        _SERVICE_USE.learn_ports(fac)
        yield fac
        return
    # Not pytest's tmp_path: it is 0700 and the xrootd server user must traverse the tree.
    root = Path(tempfile.mkdtemp(prefix="af-lab-facility-"))
    root.chmod(0o755)
    fac = Facility(root)
    try:
        fac.up()
        seed_rucio_password(fac.state)
        _SERVICE_USE.learn_ports(fac)
        yield fac
    finally:
        fac.down()
        if not os.environ.get("AF_LAB_KEEP_FACILITY"):
            from tests.server_process import remove_tree

            remove_tree(root)  # mount views in its cache are immutable when root ran the server


@pytest.fixture
def aflab_settings(request) -> dict:
    """The ``AFLab`` config section for this test's Jupyter server."""
    if request.node.get_closest_marker("facility"):
        fac = request.getfixturevalue("facility")
        return aflab_config(fac.state)["AFLab"]
    tmp = request.getfixturevalue("tmp_path")
    return {"cache_dir": str(tmp / "cache"), "state_dir": str(tmp / "state")}


@pytest.fixture
def jp_server_config(aflab_settings):
    return {
        "ServerApp": {"jpserver_extensions": {"af_lab": True}, "allow_unauthenticated_access": False},
        "AFLab": aflab_settings,
    }


class EventStreamReader:
    """A client of ``/af-lab/events`` over a real HTTP connection: collects each ``data:`` message."""

    def __init__(self, url: str, headers: dict, timeout: float):
        from tornado.httpclient import AsyncHTTPClient, HTTPRequest

        self.received: list[dict] = []
        self._buffer = ""
        request = HTTPRequest(url, headers=headers, streaming_callback=self._on_chunk, request_timeout=timeout)
        self._fetch = asyncio.ensure_future(AsyncHTTPClient().fetch(request, raise_error=False))

    def _on_chunk(self, chunk: bytes) -> None:
        self._buffer += chunk.decode()
        while "\n\n" in self._buffer:
            message, self._buffer = self._buffer.split("\n\n", 1)
            if message.startswith("data: "):
                self.received.append(json.loads(message[6:]))

    async def until(self, predicate, seconds: float = 5.0) -> None:
        """Wait (bounded) until ``predicate(received)`` holds; the caller asserts what it needs."""
        deadline = asyncio.get_running_loop().time() + seconds
        while not predicate(self.received) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)

    def close(self) -> None:
        self._fetch.cancel()


@pytest.fixture
def event_stream(jp_fetch, jp_serverapp, jp_base_url, jp_http_port, jp_auth_header):
    """``await event_stream(topic)`` opens the live event stream and returns once the server has subscribed it.

    (``jp_fetch`` makes pytest-jupyter start listening.)
    """
    opened: list[EventStreamReader] = []

    async def open_stream(topic: str | None = None, timeout: float = 120) -> EventStreamReader:
        bus = jp_serverapp.web_app.settings["af_lab"].events
        before = bus.subscriber_count
        query = f"?topic={topic}" if topic else ""
        reader = EventStreamReader(
            f"http://127.0.0.1:{jp_http_port}{jp_base_url}af-lab/events{query}", jp_auth_header, timeout
        )
        opened.append(reader)
        for _ in range(100):
            if bus.subscriber_count > before:
                break
            await asyncio.sleep(0.05)
        assert bus.subscriber_count == before + 1, "the event stream never subscribed"
        return reader

    yield open_stream
    for reader in opened:
        reader.close()
