"""From a DID to the files to mount: names, sizes, checksums, replicas, and where to read each.

The Rucio calls are plain rucio-clients calls on the user's authenticated client,
made through the Rucio service's client accessor (so credentials come from Vault
and never from here); the functions named ``*_sync`` run in a worker thread.
Source ranking is pure logic: it decides, per file, the order in which replicas
are tried.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ..errors import AFLabError, BadRequest, Conflict, NotFound, ServiceUnavailable, Unauthorized

T = TypeVar("T")

# Scopes and names as Rucio schemas allow them (generic + CMS-style '/store/...' names);
# anything else, such as spaces, quotes, ';' or control characters, is refused up front.
_SCOPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,29}$")
_NAME = re.compile(r"^[A-Za-z0-9/][A-Za-z0-9._\-+/=@,]{0,499}$")
SCHEMES = ["file", "root", "davs", "https"]
REPLICA_BATCH = 500  # DIDs per list_replicas call: bounded request bodies, steady memory


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


# ---------------------------------------------------------------------- input
def parse_did(text: Any) -> tuple[str, str]:
    if not isinstance(text, str) or ":" not in text:
        raise BadRequest("'did' must be a string of the form scope:name", field="did")
    scope, name = text.strip().split(":", 1)
    if not _SCOPE.match(scope):
        raise BadRequest(
            f"{scope!r} is not a valid Rucio scope (letters, digits, '.', '_', '-'; at most 30 characters)",
            field="did",
        )
    if not _NAME.match(name) or "//" in name or any(part in (".", "..") for part in name.split("/")):
        raise BadRequest(
            f"{name!r} is not a valid Rucio name: use letters, digits and . _ - + / = @ , "
            "(no spaces, quotes, control characters or '..' segments)",
            field="did",
        )
    return scope, name


def safe_relpath(name: str) -> str:
    """A Rucio name as a relative path inside a mount ('/store/x.root' -> 'store/x.root')."""
    parts = [p for p in name.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise BadRequest(f"file name {name!r} cannot be placed in a mount")
    return "/".join(parts)


# ---------------------------------------------------------------------- rucio calls (threads)
def rucio_errors(instance: str) -> Callable[[Exception], AFLabError | None]:
    """Map rucio-clients exceptions to af-lab's typed errors (None: not a Rucio error)."""

    def mapper(exc: Exception) -> AFLabError | None:
        from rucio.common import exception as rex

        if isinstance(exc, rex.DataIdentifierNotFound):
            return NotFound(f"{_first_line(exc)} (Rucio instance {instance!r})")
        if isinstance(exc, rex.ServerConnectionException):
            return ServiceUnavailable(f"Rucio instance {instance!r} cannot be reached; try again later.", instance=instance)
        if isinstance(exc, (rex.CannotAuthenticate, rex.MissingClientParameter)):
            return Unauthorized(f"Rucio instance {instance!r} refused your credentials: {_first_line(exc)}")
        if isinstance(exc, rex.AccessDenied):
            return AFLabError(f"Rucio denied the request: {_first_line(exc)}")
        if isinstance(exc, rex.RucioException):
            return ServiceUnavailable(f"Rucio instance {instance!r} failed: {_first_line(exc)}", instance=instance)
        return None

    return mapper


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def did_files_sync(client: Any, scope: str, name: str) -> tuple[str, list[dict[str, Any]]]:
    """The DID's type and its files, each with ``path``: where it goes inside the mount.

    A container keeps its structure (one folder per dataset), so overlapping mounts
    of a container and of one of its datasets share the same cached files.
    """
    from rucio.common.exception import DataIdentifierNotFound

    try:
        did = client.get_did(scope, name)
    except DataIdentifierNotFound:
        raise NotFound(f"{scope}:{name} does not exist in Rucio", did=f"{scope}:{name}") from None
    did_type = str(did.get("type", "")).upper()
    if did_type == "FILE":
        return "file", [_file(did, safe_relpath(did["name"]))]
    if did_type == "DATASET":
        return "dataset", [_file(f, safe_relpath(f["name"])) for f in client.list_files(scope, name)]
    if did_type == "CONTAINER":
        files: list[dict[str, Any]] = []
        _walk_container(client, scope, name, "", files, seen=set())
        return "container", files
    raise BadRequest(f"{scope}:{name} is a {did_type or 'DID of unknown type'}; only files, datasets and containers mount")


def _walk_container(client: Any, scope: str, name: str, prefix: str, out: list, seen: set) -> None:
    if (scope, name) in seen:  # Rucio forbids cycles, but never loop forever on a bad catalogue
        return
    seen.add((scope, name))
    for child in client.list_content(scope, name):
        ctype = str(child.get("type", "")).upper()
        folder = f"{prefix}{safe_relpath(child['name'])}"
        if ctype == "DATASET":
            out.extend(_file(f, f"{folder}/{safe_relpath(f['name'])}") for f in client.list_files(child["scope"], child["name"]))
        elif ctype == "CONTAINER":
            _walk_container(client, child["scope"], child["name"], folder + "/", out, seen)
        elif ctype == "FILE":
            out.append(_file({**child, **client.get_did(child["scope"], child["name"])}, f"{prefix}{safe_relpath(child['name'])}"))


def _file(d: dict[str, Any], path: str) -> dict[str, Any]:
    return {"scope": d["scope"], "name": d["name"], "bytes": int(d.get("bytes") or 0), "adler32": d.get("adler32"), "path": path}


def replicas_sync(
    client: Any,
    files: Iterable[dict[str, Any]],
    on_file: Callable[[tuple[str, str], list[dict[str, str]]], None] | None = None,
) -> dict[tuple[str, str], list[dict[str, str]]]:
    """Available replicas per file: [{"rse", "url", "scheme"}], all protocols we can read.

    Rucio streams one line per file; ``on_file(key, replicas)`` is called as each
    arrives (from this thread), so a caller can start on a file before the listing ends.
    """
    dids = list({(f["scope"], f["name"]) for f in files})
    out: dict[tuple[str, str], list[dict[str, str]]] = {d: [] for d in dids}
    for i in range(0, len(dids), REPLICA_BATCH):
        batch = [{"scope": s, "name": n} for s, n in dids[i : i + REPLICA_BATCH]]
        for rep in client.list_replicas(batch, schemes=SCHEMES, all_states=False):
            key = (rep["scope"], rep["name"])
            states = rep.get("states") or {}
            found = out.setdefault(key, [])
            for url, meta in sorted((rep.get("pfns") or {}).items(), key=lambda kv: kv[1].get("priority", 99)):
                rse = meta.get("rse")
                if states.get(rse, "AVAILABLE") != "AVAILABLE":
                    continue
                found.append({"rse": rse, "url": url, "scheme": urlsplit(url).scheme})
            if on_file is not None:
                on_file(key, found)
    return out


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


def protocol_prefixes_sync(client: Any, rses: Iterable[str]) -> dict[str, list[str]]:
    out = {}
    for rse in rses:
        try:
            out[rse] = [p.get("prefix") or "/" for p in client.get_protocols(rse)]
        except Exception:  # an RSE we cannot describe simply maps nothing
            out[rse] = []
    return out
