"""Browsing Rucio: instances, scopes, RSEs, DID search, details, content and replicas.

Plain asyncio (no tornado). Every Rucio call goes through the gateway
(:class:`~af_lab.rucio.gateway.RucioGateway`: its threads, its retry after a rejected
token, its error translation), so the event loop never waits on Rucio. Identical
concurrent requests share one call. Small answers are memoised by the gateway for
``listing_cache_ttl``; listings that can be long (search hits,
collection content, replicas) stream from Rucio into the on-disk :class:`ListingCache`
and are served page by page with a cursor, so a 50,000-file dataset's first page is
out as soon as its first rows arrive and memory holds one page, never the listing.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from ..config import AFLab
from ..errors import AFLabError, BadRequest, Conflict, NotFound, ServiceUnavailable
from ..vault.rucio_auth import RucioSession
from .gateway import RucioGateway, again
from .listing import Listing, ListingCache
from .model import (
    DID_TYPES,
    SHAPES,
    decode_cursor,
    encode_cursor,
    json_lines,
    parse_did,
    parse_pattern,
    raw_lines,
    replica_row,
    rucio_error,
)

DEFAULT_PAGE = 200
MAX_PAGE = 5000  # a page, not a cap: a listing has as many pages as it needs
FIRST_BATCH_MAX = 500  # rows committed before the first page is released
BATCH = 2000  # rows per SQLite transaction after that
# Collections above this many files get their availability only when asked for
# (availability=full): it lists every replica, which a big dataset pays for in tens of seconds.
AVAILABILITY_AUTO_MAX_FILES = 5000
MAX_WAIT_S = 30.0
# Pages of complete listings never change: the last ones served are kept in memory (bounded
# by their items), so a cached page costs no SQLite read and no thread hop on a busy server.
PAGE_MEMO_ITEMS = 20_000
FRESH_MEMO_MAX = 1000  # listings whose freshness is known without asking SQLite
FILTER_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

# A listing's source: yields (item as JSON text or dict, replica facts) per item.
Producer = Callable[[RucioSession], Iterator[tuple[str | dict, list[tuple]]]]


class _Fill:
    """A listing being streamed from Rucio into the cache; page readers wait on its progress."""

    def __init__(self, listing_id: int, key: str, created: float, shape: str):
        self.listing_id = listing_id
        self.key = key
        self.created = created
        self.shape = shape
        self.count = 0
        self.done = False
        self.error: AFLabError | None = None
        self.stop = False  # set on shutdown; the filler thread checks it per row
        self.event = asyncio.Event()
        self.task: asyncio.Task | None = None

    def progress(self, count: int, done: bool = False, error: AFLabError | None = None) -> None:
        """Called on the event loop: publish progress and wake every waiter."""
        self.count, self.done, self.error = count, self.done or done, error or self.error
        self.event.set()
        self.event = asyncio.Event()


class RucioService:
    def __init__(self, config: AFLab, gateway: RucioGateway, user: str | None = None,
                 log: logging.Logger | None = None):
        self.config = config
        self.gateway = gateway
        self.log = log or logging.getLogger("af_lab")
        self.user = user or getpass.getuser()
        self._cache: asyncio.Future[ListingCache] | None = None
        self._fills: dict[str, _Fill] = {}
        self._fresh: dict[str, Listing] = {}  # key -> its newest complete listing (checked against the TTL)
        # (listing, after, limit) -> (its key, the page)
        self._pages: OrderedDict[tuple[int, int, int], tuple[str, dict]] = OrderedDict()
        self._page_items = 0

    async def start(self) -> None:
        pass

    # ================================================================ public API
    def instances(self) -> list[dict[str, Any]]:
        return self.gateway.instances()

    async def scopes(self, instance: str, refresh: bool = False) -> list[str]:
        return await self.gateway.scopes(instance, refresh)

    async def rses(self, instance: str, expression: str | None = None, refresh: bool = False) -> list[dict]:
        inst = self._name(instance)

        def call(s: RucioSession):
            with s.request("GET", "/rses/", params={"expression": expression} if expression else None, stream=True) as r:
                if r.status_code != 200:
                    raise rucio_error(r, inst, f"RSEs matching '{expression}'" if expression else "the RSE list")
                keep = ("rse", "rse_type", "deterministic", "volatile", "staging_area", "availability_read",
                        "availability_write")
                return sorted(({k: d.get(k) for k in keep} for d in json_lines(r)), key=lambda d: d["rse"])

        return await self._memoised(("rses", inst, expression), refresh, lambda: self._rest(inst, call))

    async def search(self, instance: str, query: str, did_type: str = "all", filters: str = "",
                     cursor: str | None = None, limit: int | None = None, refresh: bool = False,
                     offset: int | None = None) -> dict:
        """DIDs matching ``scope:name*`` (and Rucio metadata ``filters``), a page at a time."""
        inst = self._name(instance)
        scope, pattern = parse_pattern(query)
        if did_type not in DID_TYPES:
            raise BadRequest(f"type must be one of {', '.join(DID_TYPES)} (got '{did_type}').", type=did_type)
        limit = _limit(limit)
        try:
            from rucio.common.utils import parse_did_filter_from_string_fe

            rucio_filters, did_type = parse_did_filter_from_string_fe(filters or "", name=pattern, type=did_type)
        except Exception as exc:  # rucio raises its own syntax errors; their text names the bad part
            raise BadRequest(f"Bad metadata filter '{filters}': {str(exc).splitlines()[0]} "
                             "(form: key=value,key>value;... as in `rucio did list --filter`).", field="filters",
                             filter=filters) from None
        for term in rucio_filters:
            bad = [k for k in term if not FILTER_KEY.match(k.split(".")[0])]
            if bad:
                raise BadRequest(f"Bad metadata filter '{filters}': '{bad[0]}' is not a metadata key (letters, "
                                 "digits and '_', not starting with '_').", field="filters", filter=filters)
        # refresh=1 also refreshes the scope list: a scope created a minute ago is searchable.
        if not cursor and scope not in await self.scopes(inst, refresh=refresh):
            raise _not_found(f"Scope '{scope}'", inst, scope=scope)

        def produce(s: RucioSession):
            params = {"type": did_type, "long": "true", "filters": repr(rucio_filters)}
            with s.request("GET", f"/dids/{quote(scope, safe='')}/dids/search", params=params, stream=True) as r:
                if r.status_code != 200:
                    raise rucio_error(r, inst, f"the search '{query}'", filter=filters or None)
                for line in raw_lines(r):
                    yield line, ()

        key = ["search", scope, did_type, repr(rucio_filters)]
        return await self._listing(inst, key, "did", produce, cursor, limit, refresh, offset)

    async def did(self, instance: str, did: str, availability: str = "auto", wait: float = 1.5,
                  refresh: bool = False) -> dict:
        """Type, size, file count and, per RSE, how many files/bytes are available."""
        inst = self._name(instance)
        scope, name = parse_did(did)
        if availability not in ("auto", "full", "skip"):
            raise BadRequest("availability must be auto, full or skip.", availability=availability)
        wait = min(max(float(wait), 0.0), MAX_WAIT_S)
        meta = await self._did_meta(inst, scope, name, refresh)
        out = {"did": f"{scope}:{name}", "scope": scope, "name": name, "type": meta["type"], "bytes": meta.get("bytes"),
               "length": meta.get("length"), "account": meta.get("account"), "open": meta.get("open")}
        if meta["type"] == "file":
            rep = await self._file_replicas(inst, scope, name, refresh)
            out.update(adler32=meta.get("adler32") or rep.get("adler32"), md5=meta.get("md5"),
                       replicas=rep["replicas"])
            out["availability"] = {"complete": True, "files_scanned": 1, "rses": [
                {"rse": r["rse"], "files": 1, "bytes": out["bytes"] or 0,
                 "files_available": int(r["state"] == "AVAILABLE"),
                 "bytes_available": (out["bytes"] or 0) if r["state"] == "AVAILABLE" else 0}
                for r in rep["replicas"]]}
            return out
        if availability == "skip" or (availability == "auto" and (out["length"] or 0) > AVAILABILITY_AUTO_MAX_FILES):
            out["availability"] = {"complete": False, "computed": False, "files_scanned": 0, "rses": [],
                                   "message": f"{out['length']} files: ask with availability=full to count "
                                              "replicas per RSE (this lists every replica)."}
            return out
        listing_id, fill = await self._open(inst, self._replica_key(scope, name), "row",
                                            self._replica_producer(inst, scope, name), FIRST_BATCH_MAX, refresh)
        if fill is not None and wait > 0:
            try:
                await asyncio.wait_for(self._until_done(fill), wait)
            except TimeoutError:
                pass  # partial answer; the listing goes on filling and a later call sees more
        if fill is not None and fill.error:
            raise again(fill.error)
        cache = await self._listing_cache()
        info = await self._run(cache.get, listing_id)
        out["availability"] = {
            "complete": bool(info and info.complete), "computed": True,
            "files_scanned": info.count if info else 0,
            "rses": await self._run(cache.availability, listing_id),
        }
        return out

    async def content(self, instance: str, did: str, cursor: str | None = None, limit: int | None = None,
                      refresh: bool = False, offset: int | None = None) -> dict:
        """A container's datasets/containers or a dataset's files (size, adler32), a page at a time."""
        inst = self._name(instance)
        scope, name = parse_did(did)
        limit = _limit(limit)
        key = ["content", scope, name]
        if cursor:  # the listing already exists: no need to look the DID up again
            return await self._listing(inst, key, "", None, cursor, limit, refresh, offset)
        meta = await self._did_meta(inst, scope, name, refresh, sizes=False)  # only its type is needed
        if meta["type"] == "file":
            raise BadRequest(f"{scope}:{name} is a file: it has no content (ask for its replicas instead).", did=did)
        path = f"/dids/{quote(scope, safe='')}/{quote(name, safe='')}"
        # A dataset's /files is the cheapest listing Rucio has; a container's members need /dids.
        suffix, shape = ("/files", "file") if meta["type"] == "dataset" else ("/dids", "did")

        def produce(s: RucioSession):
            with s.request("GET", path + suffix, stream=True) as r:
                if r.status_code != 200:
                    raise rucio_error(r, inst, f"DID {scope}:{name}", did=f"{scope}:{name}")
                for line in raw_lines(r):
                    yield line, ()

        return await self._listing(inst, key, shape, produce, cursor, limit, refresh, offset)

    async def replicas(self, instance: str, did: str, cursor: str | None = None, limit: int | None = None,
                       refresh: bool = False, offset: int | None = None) -> dict:
        """Per file: its replicas (RSE, state). A file gives one item; a collection all its files, paged."""
        inst = self._name(instance)
        scope, name = parse_did(did)
        limit = _limit(limit)
        return await self._listing(inst, self._replica_key(scope, name), "row",
                                   self._replica_producer(inst, scope, name), cursor, limit, refresh, offset)

    async def close(self) -> None:
        for fill in list(self._fills.values()):
            fill.stop = True
            if fill.task:
                fill.task.cancel()

    # ================================================================ Rucio calls
    def _name(self, instance: str | None) -> str:
        return self.gateway.instance(instance)["name"]

    async def _run(self, fn, *args):
        return await self.gateway.run(fn, *args)

    async def _rest(self, inst: str, call: Callable[[RucioSession], Any]):
        return await self.gateway.rest(inst, call)

    async def _memoised(self, key, refresh: bool, factory):
        return await self.gateway.memoised(key, refresh, factory)

    async def _did_meta(self, inst: str, scope: str, name: str, refresh: bool, sizes: bool = True) -> dict:
        """Rucio's DID record; ``sizes``: with length/bytes summed over its files (costs Rucio a scan)."""

        def call(s: RucioSession):
            path = f"/dids/{quote(scope, safe='')}/{quote(name, safe='')}"
            with s.request("GET", path, params={"dynamic_depth": "FILE"} if sizes else None) as r:
                if r.status_code != 200:
                    raise rucio_error(r, inst, f"DID {scope}:{name}", did=f"{scope}:{name}")
                d = r.json()
            d["type"] = str(d.get("type", "")).lower().replace("didtype.", "")
            return d

        return await self._memoised(("did", inst, scope, name, sizes), refresh, lambda: self._rest(inst, call))

    async def _file_replicas(self, inst: str, scope: str, name: str, refresh: bool) -> dict:
        def call(s: RucioSession):
            body = {"dids": [{"scope": scope, "name": name}], "all_states": True, "sort": "random"}
            with s.request("POST", "/replicas/list", json=body, stream=True) as r:
                if r.status_code != 200:
                    raise rucio_error(r, inst, f"DID {scope}:{name}", did=f"{scope}:{name}")
                for d in json_lines(r):
                    return replica_row(d)
            return {"scope": scope, "name": name, "replicas": []}

        return await self._memoised(("file-replicas", inst, scope, name), refresh, lambda: self._rest(inst, call))

    def _replica_key(self, scope: str, name: str) -> list:
        return ["replicas", scope, name]

    def _replica_producer(self, inst: str, scope: str, name: str) -> Producer:
        def produce(s: RucioSession):
            # sort=random: the default geoip sort costs Rucio a lookup per replica.
            body = {"dids": [{"scope": scope, "name": name}], "all_states": True, "sort": "random"}
            with s.request("POST", "/replicas/list", json=body, stream=True) as r:
                if r.status_code != 200:
                    raise rucio_error(r, inst, f"DID {scope}:{name}", did=f"{scope}:{name}")
                for d in json_lines(r):
                    row = replica_row(d)
                    yield row, [(rep["rse"], rep["state"], row["bytes"]) for rep in row["replicas"]]

        return produce

    # ================================================================ listings
    async def _listing_cache(self) -> ListingCache:
        # One opening shared by every request that arrives before it is done: two
        # openings at once would race on the file's schema and journal mode.
        if self._cache is None or (self._cache.done() and (self._cache.cancelled() or self._cache.exception())):
            path = Path(self.config.state_dir) / f"rucio-listings-{self.user}.sqlite"
            self._cache = asyncio.ensure_future(self._run(ListingCache, path, self.config.listing_cache_ttl))
        return await asyncio.shield(self._cache)

    async def _listing(self, inst: str, key_parts: list, shape: str, produce: Producer | None, cursor: str | None,
                       limit: int, refresh: bool, offset: int | None = None) -> dict:
        key = json.dumps([inst, *key_parts])
        cache = await self._listing_cache()
        if offset is not None and (not cursor or offset < 0):
            raise BadRequest("offset needs a cursor of the listing and must be 0 or more.", field="offset",
                             offset=offset)
        if cursor:
            listing_id, after = decode_cursor(cursor)
            if offset is not None:
                after = offset  # a jump: items are numbered from 1 in the listing, so seq > offset
            fill = next((f for f in self._fills.values() if f.listing_id == listing_id), None)
            if fill is not None and fill.key != key:
                raise BadRequest("The cursor belongs to another listing.", cursor=cursor)
            kept = self._pages.get((listing_id, after, limit)) if fill is None else None
            if kept is not None:
                if kept[0] != key:
                    raise BadRequest("The cursor belongs to another listing.", cursor=cursor)
                self._pages.move_to_end((listing_id, after, limit))
                return kept[1]
            if fill is None:
                info = await self._run(cache.get, listing_id)
                if info is None:
                    raise Conflict("This listing has expired from the cache; load it again from the first page.",
                                   action="reload")
                if info.key != key:
                    raise BadRequest("The cursor belongs to another listing.", cursor=cursor)
            return await self._page(key, listing_id, after, limit, fill)
        listing_id, fill = await self._open(inst, key_parts, shape, produce, limit, refresh)
        return await self._page(key, listing_id, 0, limit, fill)

    async def _open(self, inst: str, key_parts: list, shape: str, produce: Producer, first: int,
                    refresh: bool) -> tuple[int, _Fill | None]:
        """The listing for ``key``: one being filled (joined), a fresh cached one, or a new fill."""
        key = json.dumps([inst, *key_parts])
        known = self._fresh.get(key)
        if known is not None and not refresh and key not in self._fills:
            if known.created > time.time() - self.config.listing_cache_ttl:
                return known.id, None  # served from memory: no thread hop, no SQLite
            del self._fresh[key]

        async def open_():
            fill = self._fills.get(key)
            if fill is not None:
                return fill.listing_id, fill
            cache = await self._listing_cache()
            if not refresh:
                info = await self._run(cache.fresh, key)
                if info is not None:
                    if len(self._fresh) >= FRESH_MEMO_MAX:
                        self._fresh.pop(next(iter(self._fresh)))
                    self._fresh[key] = info
                    return info.id, None
            self._fresh.pop(key, None)
            session = await self.gateway.session(inst)  # credential errors surface here, before any state
            listing_id, created = await self._run(cache.create, key, shape)
            fill = _Fill(listing_id, key, created, shape)
            self._fills[key] = fill
            fill.task = asyncio.create_task(self._drive(fill, inst, session, produce, min(first, FIRST_BATCH_MAX)))
            return listing_id, fill

        return await self.gateway.shared(("open", key), open_)

    async def _drive(self, fill: _Fill, inst: str, session: RucioSession, produce: Producer, first: int) -> None:
        loop = asyncio.get_running_loop()
        cache = await self._listing_cache()
        t0 = time.monotonic()
        try:
            await self.gateway.rest(inst, self._fill_sync, loop, cache, fill, produce, first, stream=True,
                                    session=session)
            self.log.debug("af-lab: listed %s rows of %s in %.2f s", fill.count, fill.key, time.monotonic() - t0)
        except asyncio.CancelledError:
            fill.stop = True
            raise
        except AFLabError as exc:
            fill.progress(fill.count, error=exc)
            await self._run(cache.drop, fill.listing_id)
        except Exception as exc:  # never let one listing take the server down; say what failed
            self.log.exception("af-lab: listing %s failed", fill.key)
            fill.progress(fill.count, error=ServiceUnavailable(
                f"Listing from Rucio instance '{inst}' failed ({type(exc).__name__}).", instance=inst, service="rucio"))
            await self._run(cache.drop, fill.listing_id)
        finally:
            if self._fills.get(fill.key) is fill:
                del self._fills[fill.key]

    def _fill_sync(self, session: RucioSession, loop, cache: ListingCache, fill: _Fill, produce: Producer,
                   first: int) -> None:
        """Worker thread: stream rows from Rucio into the cache in batches, publishing progress."""
        count, rows, facts, threshold = 0, [], [], max(1, first)
        try:
            stream = produce(session)
            try:
                for row, row_facts in stream:
                    if fill.stop:
                        return
                    rows.append(row)
                    facts.extend(row_facts)
                    if len(rows) >= threshold:
                        count = cache.append(fill.listing_id, count, rows, facts)
                        rows, facts, threshold = [], [], BATCH
                        loop.call_soon_threadsafe(fill.progress, count)
            finally:
                stream.close()
        except requests.RequestException as exc:
            raise ServiceUnavailable(
                f"Rucio instance '{session.instance}' stopped answering in the middle of a listing "
                f"({type(exc).__name__}). Try again.", instance=session.instance, service="rucio") from None
        if rows:
            count = cache.append(fill.listing_id, count, rows, facts)
        cache.finish(fill.listing_id)
        loop.call_soon_threadsafe(fill.progress, count, True)

    async def _until_done(self, fill: _Fill) -> None:
        while not fill.done and not fill.error:
            await fill.event.wait()

    async def _page(self, key: str, listing_id: int, after: int, limit: int, fill: _Fill | None) -> dict:
        kept = self._pages.get((listing_id, after, limit)) if fill is None else None
        if kept is not None and kept[0] == key:
            self._pages.move_to_end((listing_id, after, limit))
            return kept[1]
        cache = await self._listing_cache()
        while fill is not None and not fill.done and not fill.error and fill.count < after + limit:
            event = fill.event
            try:
                # The filler's own read timeout ends a stalled stream first; this is a backstop.
                await asyncio.wait_for(event.wait(), self.config.rucio_timeout + 5)
            except TimeoutError:
                raise ServiceUnavailable("Rucio has sent nothing for this listing for "
                                         f"{self.config.rucio_timeout:.0f} s. Try again later.", service="rucio") from None
        if fill is not None and fill.error:
            raise again(fill.error)
        rows = await self._run(cache.page, listing_id, after, limit)
        if fill is not None:
            complete, count, created, shape = fill.done, fill.count, fill.created, fill.shape
        else:
            info = await self._run(cache.get, listing_id)
            if info is None:
                raise Conflict("This listing has expired from the cache; load it again from the first page.",
                               action="reload")
            complete, count, created, shape = info.complete, info.count, info.created, info.shape
        last = rows[-1][0] if rows else after
        more = not complete or last < count
        to_row = SHAPES[shape]
        page = {
            "items": [to_row(text) for _, text in rows],
            "cursor": encode_cursor(listing_id, last) if more else None,
            "complete": complete,
            "count": count,
            "total": count if complete else None,
            "cached_at": created,
            "expires_at": created + self.config.listing_cache_ttl,
        }
        if complete:
            self._keep_page((listing_id, after, limit), key, page)
        return page

    def _keep_page(self, where: tuple[int, int, int], key: str, page: dict) -> None:
        """Remember a page of a complete listing (least recently served pages go first)."""
        old = self._pages.pop(where, None)
        self._page_items -= len(old[1]["items"]) if old else 0
        self._pages[where] = (key, page)
        self._page_items += len(page["items"])
        while self._page_items > PAGE_MEMO_ITEMS and len(self._pages) > 1:
            _, (_key, dropped) = self._pages.popitem(last=False)
            self._page_items -= len(dropped["items"])


def _limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_PAGE
    if not 1 <= limit <= MAX_PAGE:
        raise BadRequest(f"limit must be between 1 and {MAX_PAGE} (a page size; follow the cursor for more).",
                         limit=limit)
    return limit


def _not_found(what: str, inst: str, **details) -> AFLabError:
    return NotFound(f"{what} does not exist on Rucio instance '{inst}'.", instance=inst, **details)
