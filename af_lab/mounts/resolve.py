"""From a DID to the files to mount: names, sizes, checksums, replicas, and where to read each.

The Rucio side (a DID's files, their replicas) is the gateway's (``af_lab.rucio``).
Source ranking is pure logic: it decides, per file, the order in which replicas
are tried.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import Conflict
from ..rucio import names


class NoReplica(Conflict):
    kind = "no_replica"


@dataclass(frozen=True)
class Source:
    """One way to read one file, in the order they are tried."""

    url: str  # without any token
    rse: str
    kind: str  # "local" (posix path on this host), "xcache", "direct"

    def to_json(self) -> dict[str, str]:
        return {"url": self.url, "rse": self.rse, "kind": self.kind}


def no_replica(mount: dict, files: list[dict], total: int) -> NoReplica:
    names = [f"{f['scope']}:{f['name']}" for f in files[:10]]
    how = {"xcache": " through the XCache", "direct": " without the XCache"}.get(mount["options"].get("source"), "")
    return NoReplica(
        f"{len(files)} of {total} files of {mount['scope']}:{mount['name']} have no available replica that can be "
        f"read from here{how}: {', '.join(names)}{' …' if len(files) > 10 else ''}",
        files=names,
    )


# The one grammar of Rucio names (browse, mounts and publish read DIDs the same way).
parse_did = names.parse_did
safe_relpath = names.relpath


# ---------------------------------------------------------------------- sources (pure)
def normalize_root_url(url: str) -> str:
    """``root://host:port/path`` -> ``root://host:port//path``: XRootD servers refuse
    relative paths, and Rucio builds single-slash PFNs from a '/prefix' protocol."""
    parts = urlsplit(url)
    path = "/" + parts.path.lstrip("/")
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{parts.netloc}/{path}{query}"


def xcache_url(xcache: str, replica_url: str) -> str:
    """The replica's path behind the site XCache (what coffea-casa users type by hand)."""
    path = "/" + urlsplit(replica_url).path.lstrip("/")
    return f"{xcache.rstrip('/')}/{path}"


def rank_sources(
    replicas: list[dict[str, str]],
    *,
    xcache: str = "",
    policy: str = "auto",
    prefer_rses: list[str] | tuple[str, ...] = (),
    local_ok: Callable[[str], bool] = lambda path: True,
) -> list[Source]:
    """The order in which to try a file's replicas.

    ``auto``: a replica on a posix RSE readable from this host first (a local disk
    read beats any network path), then every root:// replica through the XCache
    when one is configured (the site cache in front of remote storage), then the
    replicas directly. ``xcache``: only through the XCache. ``direct``: never
    through the XCache. Within a class, ``prefer_rses`` order, then Rucio's.
    """
    def pref(r: dict[str, str]) -> int:
        return prefer_rses.index(r["rse"]) if r["rse"] in prefer_rses else len(prefer_rses)

    ordered = sorted(replicas, key=pref)  # stable: keeps Rucio's priority order within a preference
    local, via_cache, direct = [], [], []
    for r in ordered:
        scheme = r["scheme"]
        if scheme == "file":
            path = urlsplit(r["url"]).path
            if local_ok(path):
                local.append(Source(r["url"], r["rse"], "local"))
        elif scheme in ("root", "xroot"):
            url = normalize_root_url(r["url"])
            if xcache:
                via_cache.append(Source(xcache_url(xcache, url), r["rse"], "xcache"))
            direct.append(Source(url, r["rse"], "direct"))
    if policy == "xcache":
        return _dedupe(via_cache)
    if policy == "direct":
        return _dedupe(local + direct)
    return _dedupe(local + via_cache + direct)


def _dedupe(sources: list[Source]) -> list[Source]:
    seen, out = set(), []
    for s in sources:
        if s.url not in seen:
            seen.add(s.url)
            out.append(s)
    return out


def stream_url(replicas: list[dict[str, str]], xcache: str, prefer_rses: list[str] | tuple[str, ...] = ()) -> str | None:
    """The root:// URL a kernel should open: through the XCache when there is one."""
    for source in rank_sources(replicas, xcache=xcache, policy="xcache" if xcache else "direct", prefer_rses=prefer_rses):
        if source.kind in ("xcache", "direct") and source.url.startswith(("root://", "xroot://")):
            return source.url
    return None


def map_to_local(url: str, rse_prefixes: dict[str, str], protocol_prefixes: dict[str, list[str]], rse: str) -> str | None:
    """Replica mode: the local path of a replica on an RSE mounted at ``rse_prefixes[rse]``.

    The PFN's path minus the RSE protocol's prefix is the file's path inside the RSE;
    the configured mount prefix replaces it.
    """
    local_root = rse_prefixes.get(rse)
    if not local_root:
        return None
    path = "/" + urlsplit(url).path.lstrip("/")
    for prefix in sorted(protocol_prefixes.get(rse, []), key=len, reverse=True):
        norm = "/" + prefix.strip("/") + "/"
        if path.startswith(norm):
            rel = path[len(norm) :]
            if any(part == ".." for part in rel.split("/")):
                return None
            return f"{local_root.rstrip('/')}/{rel}"
    return None
