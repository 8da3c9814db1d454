"""REST contract of Rucio browsing (thin handlers over :class:`RucioService`).

All routes are below ``/af-lab/rucio/``, answer JSON, and need the Jupyter token.
``<inst>`` is a configured instance name; ``<did>`` is ``scope:name``, percent-encoded
(a ``/`` inside a name is ``%2F``).

``GET instances``
    ``{"instances": [{"name", "display_name", "auth_type", "account", "rucio_host",
    "webui_url", "default"}]}``
``GET instances/<inst>/scopes`` [``refresh=1``]
    ``{"scopes": ["cms_opendata", ...]}``
``GET instances/<inst>/rses`` [``expression=``, ``refresh=1``]
    ``{"rses": [{"rse", "rse_type", "deterministic", "volatile", "staging_area",
    "availability_read", "availability_write"}]}``
``GET instances/<inst>/dids?q=scope:name*`` [``type=all|collection|container|dataset|file``,
``filter=key=value,key>value;...`` (Rucio's filter syntax: ``,`` AND, ``;`` OR), paging]
    A page of ``{"scope", "name", "did", "type", "bytes", "length"}``.
``GET instances/<inst>/dids/<did>`` [``availability=auto|full|skip``, ``wait=<s>``, ``refresh=1``]
    ``{"did", "scope", "name", "type", "bytes", "length", "account", "open",
    "adler32"?, "md5"?, "replicas"? (files), "availability": {"complete", "computed",
    "files_scanned", "rses": [{"rse", "files", "bytes", "files_available", "bytes_available"}]}}``.
    Collections above 5,000 files are counted per RSE only with ``availability=full``;
    ``wait`` (default 1.5 s, max 30) bounds how long to wait for the count, which goes on
    in the background: poll again until ``complete``.
``GET instances/<inst>/dids/<did>/content`` [paging]
    Container: its datasets/containers (``{"scope", "name", "did", "type", "bytes", "length"}``);
    dataset: its files (also ``"adler32"``, ``"md5"``?).
``GET instances/<inst>/dids/<did>/replicas`` [paging]
    Per file ``{"scope", "name", "did", "bytes", "adler32", "replicas": [{"rse", "state"}]}``;
    a file gives one item, a collection every file it holds.

Paging (``dids``, ``content``, ``replicas``): ``limit`` (1-5000, default 200; a page size,
never a cap on the result) and ``cursor`` (opaque, from the previous page); with a cursor,
``offset`` (0 or more) reads from that item of the cursor's listing instead (a jump to the
page a user scrolled to; beyond the end: no items). A page is::

    {"items": [...], "cursor": "<next page>" | null (last page), "complete": bool
     (Rucio has sent everything), "count": rows fetched so far, "total": count | null
     (until complete), "cached_at": epoch s, "expires_at": epoch s}

Listings are cached per user (``c.AFLab.listing_cache_ttl``); ``refresh=1`` on a first
page fetches again from Rucio. A cursor whose listing expired gives 409 (reload).

Errors are ``{"error": {"type", "message", ...}}``: 400 malformed DID/query/filter
(``expected: "scope:name"``), 401 credentials missing, wrong or expired (``action`` says
what to do), 403 Rucio or Vault denied access, 404 unknown instance, scope or DID (the
DID is named), 409 expired cursor, 503 Rucio (``instance``) or Vault unreachable or sealed.
"""

from __future__ import annotations

import tornado.web

from ..errors import BadRequest
from ..handlers import AFLabHandler

INST = r"rucio/instances/(?P<instance>[^/]+)"
DID = r"(?P<did>[^/]+)"


class RucioHandler(AFLabHandler):
    @property
    def rucio(self):
        return self.services.rucio

    def flag(self, name: str) -> bool:
        return self.get_query_argument(name, "0").lower() in ("1", "true", "yes")

    def number(self, name: str, kind=int):
        value = self.get_query_argument(name, None)
        if value is None or value == "":
            return None
        try:
            return kind(value)
        except ValueError:
            raise BadRequest(f"{name} must be a number (got '{value}').", **{name: value}) from None

    def paging(self) -> dict:
        return {"cursor": self.get_query_argument("cursor", None) or None, "limit": self.number("limit"),
                "offset": self.number("offset"), "refresh": self.flag("refresh")}


class InstancesHandler(RucioHandler):
    @tornado.web.authenticated
    async def get(self):
        self.write_json({"instances": self.rucio.instances()})


class ScopesHandler(RucioHandler):
    @tornado.web.authenticated
    async def get(self, instance: str):
        self.write_json({"scopes": await self.rucio.scopes(instance, refresh=self.flag("refresh"))})


class RSEsHandler(RucioHandler):
    @tornado.web.authenticated
    async def get(self, instance: str):
        expression = self.get_query_argument("expression", None) or None
        self.write_json({"rses": await self.rucio.rses(instance, expression, refresh=self.flag("refresh"))})


class DIDSearchHandler(RucioHandler):
    @tornado.web.authenticated
    async def get(self, instance: str):
        query = self.get_query_argument("q", "")
        did_type = self.get_query_argument("type", "all")
        filters = self.get_query_argument("filter", "")
        self.write_json(await self.rucio.search(instance, query, did_type, filters, **self.paging()))


class DIDHandler(RucioHandler):
    @tornado.web.authenticated
    async def get(self, instance: str, did: str):
        wait = self.number("wait", float)
        self.write_json(await self.rucio.did(
            instance, did, availability=self.get_query_argument("availability", "auto"),
            wait=1.5 if wait is None else wait, refresh=self.flag("refresh"),
        ))


class DIDContentHandler(RucioHandler):
    @tornado.web.authenticated
    async def get(self, instance: str, did: str):
        self.write_json(await self.rucio.content(instance, did, **self.paging()))


class DIDReplicasHandler(RucioHandler):
    @tornado.web.authenticated
    async def get(self, instance: str, did: str):
        self.write_json(await self.rucio.replicas(instance, did, **self.paging()))


handlers = [
    ("rucio/instances", InstancesHandler),
    (f"{INST}/scopes", ScopesHandler),
    (f"{INST}/rses", RSEsHandler),
    (f"{INST}/dids", DIDSearchHandler),
    (f"{INST}/dids/{DID}", DIDHandler),
    (f"{INST}/dids/{DID}/content", DIDContentHandler),
    (f"{INST}/dids/{DID}/replicas", DIDReplicasHandler),
]
