"""Stream mode: a fileset of root:// URLs (through the XCache when there is one) instead of copies."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

from ..errors import ServiceUnavailable
from ..rucio.gateway import RucioGateway
from . import fileset as fileset_mod
from . import resolve, workspace
from .fetch import xrootd_ping


async def write_fileset(gateway: RucioGateway, mount: dict, files: list[dict], absolute: Path, configured_xcache: str,
                        timeout: float, corrupt: set[tuple[str, str, str]]) -> list[dict]:
    """A new stream mount's rows, its fileset file written at ``absolute`` and ``mount`` made ready."""
    xcache = "" if mount["options"]["source"] == "direct" else configured_xcache
    out = await rows(gateway, mount, files, xcache, timeout, corrupt)
    opts = mount["options"]
    opts["via_xcache"] = xcache or None  # what the URLs go through: re-checked when a fileset is handed out
    fs = fileset_mod.build(
        f"{mount['scope']}:{mount['name']}", mount["did_type"], [(r["path"], r["local_path"]) for r in out],
        opts["treename"], fileset_mod.metadata(mount["instance"], "stream", opts.get("source"), configured_xcache),
    )  # fmt: skip
    opts["fileset_sha256"] = workspace.write_atomic(absolute, fileset_mod.dumps(fs, opts["format"]))
    mount["state"], mount["finished"] = "ready", time.time()
    via = "through the XCache" if xcache else "directly from the storage"
    mount["message"] = f"fileset of {len(out)} root:// URLs, read {via}"
    return out


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


def warning(mount: dict, xcache: str, probe: dict | None) -> str | None:
    """Why a ready stream mount's URLs would not open now, from what is already known (the status
    service's last XCache probe, no new call): the mounts list must stay as fast as it is."""
    through = mount["options"].get("via_xcache")
    if mount["mode"] != "stream" or mount["state"] != "ready" or not through:
        return None
    if not xcache:
        return (f"this fileset reads through an XCache ({through}) and none is configured now: "
                "mount it again with source 'direct'")  # fmt: skip
    if probe and probe.get("url") == xcache and probe.get("state") != "connected":
        return f"the XCache at {xcache} does not answer: reads will fail until it is back"
    return None


def repoint_workspace(store, root_dir: Path, mount: dict, xcache: str) -> bool:
    """Rewrite the workspace fileset file of a stream mount whose XCache moved (same format, URLs through
    the XCache configured now), so a notebook reading the file directly gets URLs that open. A file the
    user edited (its sha256 is not the one written) or removed is theirs: left alone. True if rewritten."""
    opts = mount["options"]
    through = opts.get("via_xcache")
    if mount["mode"] != "stream" or mount["state"] != "ready" or not through or not xcache:
        return False
    if through.rstrip("/") == xcache.rstrip("/"):
        return False
    absolute = root_dir / mount["target"]
    try:
        unchanged = not absolute.is_symlink() and hashlib.sha256(absolute.read_bytes()).hexdigest() == opts.get(
            "fileset_sha256"
        )
    except OSError:
        unchanged = False
    prefix = xcache.rstrip("/") + "/"
    entries = [(f["path"], f["local_path"] if f["local_path"].startswith(prefix) else resolve.xcache_url(xcache, f["local_path"]))
               for f in store.files(mount["id"]) if f["state"] == "done"]  # fmt: skip
    fs = fileset_mod.build(
        f"{mount['scope']}:{mount['name']}", mount["did_type"], entries, opts.get("treename", "Events"),
        fileset_mod.metadata(mount["instance"], "stream", opts.get("source"), xcache),
    )  # fmt: skip
    if unchanged:
        opts["fileset_sha256"] = workspace.write_atomic(absolute, fileset_mod.dumps(fs, opts.get("format", "json")))
    opts["via_xcache"] = xcache  # the fileset handed out follows it either way
    store.update_mount(mount["id"], options=opts)
    return unchanged
