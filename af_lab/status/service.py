"""Connection state of every configured facility service, probed for real.

Each probe does the cheapest real round trip the service offers (Rucio ``/ping``,
Vault health plus the user's login, a write test of the cache directory, the
Dask scheduler's identity, an XRootD ping) under a timeout, so the panel says
"unreachable" instead of hanging when a service is down.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests

from ..config import AFLab
from ..mounts.fetch import configure_xrootd_client
from ..units import human_bytes


@dataclass
class ServiceStatus:
    id: str
    name: str
    state: str  # "connected" | "unreachable" | "error" | "not_configured"
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    latency_ms: float | None = None


# Many open sidebars (or a busy facility) asking at once share one round of probes, and
# a round is reused this long: the services are not probed per request.
REUSE_S = 2.0
# After that, the last answer is still given (while a new round runs) up to this age, so no
# request waits for the probes except the first one and ``refresh``.
STALE_MAX_S = 30.0


class StatusService:
    def __init__(self, config: AFLab, credentials=None, rucio_auth=None, cache_bytes: Callable[[], int] | None = None,
                 xcache_observed: Callable[[dict[str, Any] | None], None] | None = None):
        self.config = config
        self.credentials = credentials
        self.rucio_auth = rucio_auth
        self.cache_bytes = cache_bytes  # what the cache holds, by its owner's count (else a walk)
        # Told the XCache's entry ({"url", "state", "message"}; None: none configured) after every round, so
        # others (stream mounts) know its state without probing it themselves.
        self.xcache_observed = xcache_observed
        self._round: asyncio.Future | None = None
        self._last: tuple[float, list[dict[str, Any]]] | None = None  # (when, answer) of the last round

    async def all(self, refresh: bool = False) -> list[dict[str, Any]]:
        """Every service's state; ``refresh`` starts a new round unless one is under way, and waits for it."""
        last = None if refresh else self._last
        age = time.monotonic() - last[0] if last else float("inf")
        if age < REUSE_S:
            return last[1]
        if self._round is None or self._round.done():
            self._round = asyncio.ensure_future(self._probe_all())
            self._round.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved, even unawaited
        if age < STALE_MAX_S:
            return last[1]  # the new round goes on meanwhile: the next request sees it
        return await asyncio.shield(self._round)

    async def _probe_all(self) -> list[dict[str, Any]]:
        probes = [self._timed(p) for p in (self.rucio, self.vault, self.cache, self.xcache, self.dask)]
        results = await asyncio.gather(*probes)
        answer = [asdict(s) for group in results for s in (group if isinstance(group, list) else [group])]
        self._last = (time.monotonic(), answer)
        if self.xcache_observed is not None:
            seen = next(({"url": self.config.xcache_url, "state": s["state"], "message": s["message"]}
                         for s in answer if s["id"] == "xcache"), None)  # fmt: skip (also a probe that timed out)
            self.xcache_observed(seen)
        return answer

    async def _timed(self, probe):
        t0 = time.monotonic()
        # Rucio's probe may also ask Vault for the stored login (bounded on its own): two budgets.
        budget = self.config.status_timeout * (2 if probe.__name__ == "rucio" else 1) + 1
        try:
            result = await asyncio.wait_for(probe(), budget)
        except TimeoutError:
            name = probe.__name__
            return ServiceStatus(name, name.capitalize(), "unreachable", f"no answer within {budget:.0f} s")
        elapsed = (time.monotonic() - t0) * 1000
        for s in result if isinstance(result, list) else [result]:
            if s.latency_ms is None and s.state == "connected":
                s.latency_ms = round(elapsed, 1)
        return result

    async def rucio(self) -> list[ServiceStatus]:
        if not self.config.rucio_instances:
            return [ServiceStatus("rucio", "Rucio", "not_configured", "No Rucio instance is configured (c.AFLab.rucio_instances).")]
        return list(await asyncio.gather(*(self._rucio_one(i) for i in self.config.rucio_instances)))

    async def _rucio_one(self, inst: dict) -> ServiceStatus:
        sid = f"rucio:{inst['name']}"
        name = f"Rucio ({inst.get('display_name') or inst['name']})"
        url = inst["rucio_host"].rstrip("/") + "/ping"
        verify = inst.get("ca_cert", True) or True
        try:
            resp = await asyncio.to_thread(requests.get, url, timeout=self.config.status_timeout, verify=verify)
            resp.raise_for_status()
            version = resp.json().get("version", "?")
        except requests.RequestException as exc:
            return ServiceStatus(sid, name, "unreachable", f"{inst['rucio_host']} does not answer: {type(exc).__name__}")
        except ValueError:
            return ServiceStatus(sid, name, "error", f"{inst['rucio_host']}/ping did not return Rucio's JSON")
        details = {"version": version}
        message = f"Rucio {version} at {inst['rucio_host']}"
        if self.rucio_auth is not None:
            # Whether the user is logged in (tries the stored credentials once if no token is held).
            try:
                login = await asyncio.wait_for(self.rucio_auth.status_one(inst["name"]), self.config.status_timeout)
            except TimeoutError:
                # Rucio answered; what did not is where the login is kept. Say so, not "Rucio unreachable".
                login = {"logged_in": False, "vault_reachable": False,
                         "message": f"Vault at {self.config.vault_address} did not answer within "
                                    f"{self.config.status_timeout:.0f} s, so the stored login cannot be read"}
            details.update({k: login.get(k) for k in ("logged_in", "auth_type", "account", "expires_at",
                                                      "vault_reachable")})
            message += f"; {login['message']}" if login["logged_in"] else f"; not logged in: {login['message']}"
        return ServiceStatus(sid, name, "connected", message, details)

    async def vault(self) -> ServiceStatus:
        if not self.config.vault_address or self.credentials is None:
            return ServiceStatus("vault", "Vault", "not_configured", "No Vault is configured (c.AFLab.vault_address).")
        st = await self.credentials.status()
        if not st["reachable"]:
            return ServiceStatus("vault", "Vault", "unreachable", st["message"])
        if not st["logged_in"]:
            return ServiceStatus("vault", "Vault", "error", st["message"], _public(st))
        return ServiceStatus("vault", "Vault", "connected", st["message"], _public(st))

    async def cache(self) -> ServiceStatus:
        return await asyncio.to_thread(self._cache_sync)

    def _cache_sync(self) -> ServiceStatus:
        path = Path(self.config.cache_dir)
        try:
            path.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-"):
                pass
            usage = shutil.disk_usage(path)
        except OSError as exc:
            return ServiceStatus("cache", "Cache", "error", f"cache directory {path} is not writable: {exc.strerror}")
        used = self.cache_bytes() if self.cache_bytes is not None else _dir_bytes(path)
        quota = self.config.cache_quota_bytes or None
        details = {"path": str(path), "free_bytes": usage.free, "used_bytes": used, "quota_bytes": quota}
        return ServiceStatus("cache", "Cache", "connected", f"{human_bytes(usage.free)} free in {path}", details)

    async def xcache(self) -> list[ServiceStatus]:
        if not self.config.xcache_url:
            return []  # optional: absent from the panel unless configured
        ok, message = await asyncio.to_thread(_xrootd_ping, self.config.xcache_url, self.config.status_timeout)
        state = "connected" if ok else "unreachable"
        return [ServiceStatus("xcache", "XCache", state, message, {"url": self.config.xcache_url})]

    async def dask(self) -> ServiceStatus:
        addr = self.config.dask_scheduler_address
        if not addr:
            return ServiceStatus("dask", "Dask", "connected", "Local clusters available (no shared scheduler configured)", {"backend": "local"})
        try:
            from distributed.core import rpc

            async with rpc(addr, timeout=self.config.status_timeout) as scheduler:
                ident = await asyncio.wait_for(scheduler.identity(), self.config.status_timeout)
        except (TimeoutError, OSError) as exc:
            return ServiceStatus("dask", "Dask", "unreachable", f"scheduler {addr} does not answer: {type(exc).__name__}")
        workers = ident.get("workers", {})
        threads = sum(w.get("nthreads", 0) for w in workers.values())
        return ServiceStatus(
            "dask", "Dask", "connected", f"scheduler {addr}: {len(workers)} workers, {threads} threads",
            {"address": addr, "workers": len(workers), "threads": threads},
        )

    async def start(self) -> None:
        """Nothing to resume: probes run when a request asks."""

    async def close(self) -> None:
        """A probe round still running is dropped: nobody will read its answer."""
        if self._round is not None and not self._round.done():
            self._round.cancel()


def _public(st: dict) -> dict:
    return {k: st[k] for k in ("user", "auth", "expires_at") if k in st}


def _dir_bytes(path: Path) -> int:
    total = 0
    for root, dirs, files in os.walk(path):
        if root == str(path) and "views" in dirs:
            dirs.remove("views")  # mount views hold only links (50,000 for a big mount), no data
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def _xrootd_ping(url: str, timeout: float) -> tuple[bool, str]:
    try:
        from XRootD import client as xrd
    except ImportError:
        return False, "the XRootD Python client is not installed"
    configure_xrootd_client(xrd)  # so an XCache that is back is seen as back (not refused for 30 min)
    fs = xrd.FileSystem(url)
    status, _ = fs.ping(timeout=max(1, int(timeout)))
    if status.ok:
        return True, f"XCache at {url}"
    return False, f"{url} does not answer: {status.message.strip()}"
