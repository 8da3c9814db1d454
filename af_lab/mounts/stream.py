"""Stream mode: a fileset of root:// URLs (through the XCache when there is one) instead of copies."""

from __future__ import annotations

import asyncio

from ..errors import ServiceUnavailable
from ..rucio.gateway import RucioGateway
from . import resolve
from .fetch import xrootd_ping


async def rows(gateway: RucioGateway, mount: dict, files: list[dict], xcache: str, timeout: float,
               corrupt: set[tuple[str, str, str]]) -> list[dict]:
    """The mount's rows, each with the URL a kernel opens; refused before anything is written when
    the XCache does not answer or a file has no readable root:// replica (corrupt ones never count)."""
    replicas = await gateway.replicas(mount["instance"], files)
    if xcache:
        await check_xcache(xcache, timeout)
    out, missing = [], []
    for f in files:
        known = [r for r in replicas.get((f["scope"], f["name"]), []) if (f["scope"], f["name"], r["rse"]) not in corrupt]
        url = resolve.stream_url(known, xcache, mount["options"]["prefer_rses"])
        if url is None:
            missing.append(f)
        out.append({**f, "state": "done", "source": "stream", "local_path": url})
    if missing:
        err = resolve.no_replica(mount, missing, len(files))
        err.message += ". Streaming needs a root:// replica; cache mode can copy posix ones."
        raise err
    return out


async def check_xcache(xcache: str, timeout: float) -> None:
    """Refuse (503 naming the XCache) a fileset whose URLs go through an XCache that does not answer."""
    answered, why = await asyncio.to_thread(xrootd_ping, xcache, timeout)
    if not answered:
        raise ServiceUnavailable(f"The XCache ({xcache}) does not answer ({why}), so a stream fileset through "
                                 "it would not open; try again later, or use source 'direct' or cache mode.",
                                 service="xcache")  # fmt: skip


async def current_urls(
    mount: dict, entries: list[tuple[str, str]], xcache: str, timeout: float
) -> list[tuple[str, str]]:
    """A stream mount's (path, url) entries as they open *now*: checked at every fileset, not only when the
    mount was made, since the XCache may have stopped or come back elsewhere (a restart on another port)
    meanwhile. URLs made through an XCache are re-based onto the one configured now."""
    through = mount["options"].get("via_xcache")
    if not through:
        return entries  # direct replica URLs (or a mount made before af-lab recorded it)
    if not xcache:
        raise ServiceUnavailable(f"the stream mount of {mount['scope']}:{mount['name']} reads through an XCache "
                                 f"({through}) and none is configured now; mount it again with source 'direct'.",
                                 service="xcache")  # fmt: skip
    await check_xcache(xcache, timeout)
    prefix = xcache.rstrip("/") + "/"
    return [(path, url if url.startswith(prefix) else resolve.xcache_url(xcache, url)) for path, url in entries]
