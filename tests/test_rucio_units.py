"""Pure pieces of the Rucio service: DID parsing, cursors, row shapes and the listing cache."""

from __future__ import annotations

import json
import time

import pytest

from af_lab.errors import BadRequest
from af_lab.rucio.listing import ListingCache
from af_lab.rucio.model import decode_cursor, did_row, encode_cursor, parse_did, parse_pattern, replica_row


def test_parse_did_and_pattern():
    assert parse_did("cms_opendata:ZZTo4mu") == ("cms_opendata", "ZZTo4mu")
    assert parse_did("user.jdoe:a/b.root") == ("user.jdoe", "a/b.root")
    for bad in ("", "ZZTo4mu", ":x", "cms:", "cms:a b", "cms:*", "a:b:c"):
        with pytest.raises(BadRequest) as err:
            parse_did(bad)
        assert "scope:name" in err.value.message and err.value.details["expected"] == "scope:name"
    assert parse_pattern("cms_opendata:*Mu*") == ("cms_opendata", "*Mu*")
    assert parse_pattern("user.jdoe:") == ("user.jdoe", "*")
    for bad in ("ZZ*", "*:x", "cms:a b"):
        with pytest.raises(BadRequest):
            parse_pattern(bad)


def test_cursor_round_trip_and_garbage():
    assert decode_cursor(encode_cursor(7, 4200)) == (7, 4200)
    for bad in ("", "garbage", encode_cursor(1, 2)[:-2] + "!!"):
        with pytest.raises(BadRequest):
            decode_cursor(bad)


def test_row_shapes():
    assert did_row({"scope": "s", "name": "n", "did_type": "DATASET", "bytes": None, "length": None}) == {
        "scope": "s", "name": "n", "did": "s:n", "type": "dataset", "bytes": None, "length": None}
    f = did_row({"scope": "s", "name": "f", "type": "FILE", "bytes": 3, "adler32": "0000000a"})
    assert f["type"] == "file" and f["length"] == 1 and f["adler32"] == "0000000a"
    r = replica_row({"scope": "s", "name": "f", "bytes": 3, "adler32": "x", "rses": {"B": [], "A": []},
                     "states": {"A": "AVAILABLE", "B": "COPYING"}})
    assert r["replicas"] == [{"rse": "A", "state": "AVAILABLE"}, {"rse": "B", "state": "COPYING"}]


def test_listing_cache_pages_ttl_and_availability(tmp_path):
    cache = ListingCache(tmp_path / "l.sqlite", ttl=60)
    lid, created = cache.create("k")
    assert cache.fresh("k") is None  # not complete yet
    n = cache.append(lid, 0, [{"i": i} for i in range(1, 6)], [("A", "AVAILABLE", 10)] * 5)
    n = cache.append(lid, n, [{"i": i} for i in range(6, 11)], [("A", "COPYING", 10), ("B", "AVAILABLE", 10)])
    cache.finish(lid)
    assert n == 10 and cache.fresh("k").id == lid and cache.fresh("k").count == 10
    assert [seq for seq, _ in cache.page(lid, 0, 4)] == [1, 2, 3, 4]
    assert [json.loads(text)["i"] for _, text in cache.page(lid, 8, 100)] == [9, 10]
    assert cache.availability(lid) == [
        {"rse": "A", "files": 6, "bytes": 60, "files_available": 5, "bytes_available": 50},
        {"rse": "B", "files": 1, "bytes": 10, "files_available": 1, "bytes_available": 10},
    ]
    assert oct((tmp_path / "l.sqlite").stat().st_mode & 0o777) == "0o600"
    cache.ttl = 0.0
    time.sleep(0.01)
    assert cache.fresh("k") is None  # expired: a new request refetches
    assert cache.get(lid) is not None  # but its cursors still work for a while
    unfinished, _ = cache.create("k2")
    cache.append(unfinished, 0, [{"i": 1}])
    cache.close()
    reopened = ListingCache(tmp_path / "l.sqlite", ttl=60)  # a new process: half-filled listings are dropped
    assert reopened.get(unfinished) is None and reopened.get(lid) is not None


async def test_concurrent_first_listings_share_one_cache_opening(tmp_path):
    """The first requests of a session arrive together; each opening the cache file
    itself raced on its journal mode ("database is locked" in CI)."""
    import asyncio

    from af_lab.config import AFLab
    from af_lab.rucio.gateway import RucioGateway
    from af_lab.rucio.service import RucioService
    from af_lab.vault.rucio_auth import RucioAuth

    config = AFLab(rucio_instances=[{"name": "x", "rucio_host": "http://127.0.0.1:9"}], state_dir=str(tmp_path))
    auth = RucioAuth(config, credentials=None)
    gateway = RucioGateway(config, auth)
    rucio = RucioService(config, gateway, user="jdoe")
    try:
        caches = await asyncio.gather(*(rucio._listing_cache() for _ in range(8)))
        assert len({id(c) for c in caches}) == 1
        lid, _ = caches[0].create("k")
        assert caches[0].get(lid) is not None
    finally:
        await rucio.close()
        await gateway.close()
        await auth.close()


async def test_pages_of_a_complete_listing_are_served_from_memory(tmp_path):
    """50 clients on one cached listing: after the first read a page costs no SQLite read and
    no thread hop; a cursor of another listing is still refused."""
    import json

    from af_lab.config import AFLab
    from af_lab.errors import BadRequest
    from af_lab.rucio.gateway import RucioGateway
    from af_lab.rucio.model import encode_cursor
    from af_lab.rucio.service import RucioService
    from af_lab.vault.rucio_auth import RucioAuth

    config = AFLab(rucio_instances=[{"name": "x", "rucio_host": "http://127.0.0.1:9"}], state_dir=str(tmp_path))
    auth = RucioAuth(config, credentials=None)
    gateway = RucioGateway(config, auth)
    rucio = RucioService(config, gateway, user="jdoe")
    try:
        cache = await rucio._listing_cache()
        key = json.dumps(["x", "content", "s", "d"])
        lid, _ = cache.create(key, "row")
        cache.append(lid, 0, [{"n": i} for i in range(5)])
        cache.finish(lid)
        first = await rucio._listing("x", ["content", "s", "d"], "row", None, None, 2, False)
        second_page = await rucio._listing("x", ["content", "s", "d"], "", None, first["cursor"], 2, False)
        assert [i["n"] for i in first["items"]] == [0, 1] and [i["n"] for i in second_page["items"]] == [2, 3]
        cache.drop(lid)  # gone from SQLite: only memory can answer now
        assert await rucio._listing("x", ["content", "s", "d"], "row", None, None, 2, False) == first
        assert await rucio._listing("x", ["content", "s", "d"], "", None, first["cursor"], 2, False) == second_page
        with pytest.raises(BadRequest):
            await rucio._listing("x", ["content", "s", "other"], "", None, encode_cursor(lid, 2), 2, False)
    finally:
        await rucio.close()
        await gateway.close()
        await auth.close()
