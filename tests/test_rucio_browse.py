"""Rucio browsing against the real facility: Rucio 41 with the demo catalogue, OpenBao.

The demo user jdoe's Rucio password is in Vault (seeded by the facility), so every
request here logs in through Vault exactly as in production. Only the demo data is
read; nothing is written to the catalogue.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from pathlib import Path

import pytest
from tornado.httpclient import HTTPClientError

from af_facility.lab import DEMO_INSTANCE, aflab_config

pytestmark = pytest.mark.facility

CONTAINER = "cms_opendata:DAC21_CMS_opendata"
DATASETS = ("cms_opendata:Run2012B_DoubleMuParked", "cms_opendata:SMHiggsToZZTo4L", "cms_opendata:ZZTo4mu")
BIG = "cms_opendata:SingleMu_50k"
RSES = {"SITE1_USERDISK", "SITE2_USERDISK"}


@pytest.fixture
def aflab_settings(facility, tmp_path):
    cfg = copy.deepcopy(aflab_config(facility.state)["AFLab"])
    cfg["state_dir"] = str(tmp_path / "state")  # a private listing cache per test
    return cfg


async def get(jp_fetch, *parts, **params):
    resp = await jp_fetch("af-lab", "rucio", *parts, params={k: v for k, v in params.items() if v is not None})
    return json.loads(resp.body)


async def failure(jp_fetch, *parts, **params):
    with pytest.raises(HTTPClientError) as err:
        await get(jp_fetch, *parts, **params)
    return err.value.code, json.loads(err.value.response.body)["error"]


def inst(*parts):
    return ("instances", DEMO_INSTANCE, *parts)


async def all_pages(jp_fetch, *parts, limit=1000, **params):
    items, cursor, pages = [], None, 0
    while True:
        page = await get(jp_fetch, *parts, limit=limit, cursor=cursor, **params)
        items.extend(page["items"])
        pages += 1
        cursor = page["cursor"]
        if cursor is None:
            assert page["complete"] and page["total"] == len(items)
            return items, pages


# ---------------------------------------------------------------------- catalogue basics
async def test_instances_scopes_rses(jp_fetch):
    instances = (await get(jp_fetch, "instances"))["instances"]
    assert [i["name"] for i in instances] == [DEMO_INSTANCE] and instances[0]["default"]
    assert instances[0]["auth_type"] == "userpass"
    scopes = (await get(jp_fetch, *inst("scopes")))["scopes"]
    assert {"cms_opendata", "user.jdoe"} <= set(scopes)
    rses = (await get(jp_fetch, *inst("rses")))["rses"]
    assert RSES <= {r["rse"] for r in rses}
    only = (await get(jp_fetch, *inst("rses"), expression="SITE2_USERDISK"))["rses"]
    assert [r["rse"] for r in only] == ["SITE2_USERDISK"]


async def test_search_wildcards_and_type_filter(jp_fetch):
    page = await get(jp_fetch, *inst("dids"), q="cms_opendata:*", type="dataset")
    names = {d["did"] for d in page["items"]}
    assert set(DATASETS) | {BIG} <= names and page["complete"] and page["cursor"] is None
    assert all(d["type"] == "dataset" for d in page["items"])

    containers = (await get(jp_fetch, *inst("dids"), q="cms_opendata:DAC21*", type="container"))["items"]
    assert [d["did"] for d in containers] == [CONTAINER]

    zz = (await get(jp_fetch, *inst("dids"), q="cms_opendata:ZZ*", type="all"))["items"]
    assert {"cms_opendata:ZZTo4mu", "cms_opendata:ZZTo4mu_000.root", "cms_opendata:ZZTo4mu_001.root"} <= {
        d["did"] for d in zz}
    files = (await get(jp_fetch, *inst("dids"), q="cms_opendata:ZZTo4mu_*", type="file"))["items"]
    assert {d["type"] for d in files} == {"file"} and all(d["bytes"] > 0 for d in files)

    # "scope:" alone lists the whole scope.
    mine = (await get(jp_fetch, *inst("dids"), q="user.jdoe:", type="collection"))["items"]
    assert "user.jdoe:my_skim" in {d["did"] for d in mine}


async def test_search_metadata_filter(jp_fetch):
    # did_type is a DID column Rucio filters on; an unknown key is Rucio's InvalidMetadata -> 400.
    hits = (await get(jp_fetch, *inst("dids"), q="cms_opendata:*", type="all", filter="type=container"))["items"]
    assert [d["did"] for d in hits] == [CONTAINER]
    # A key no DID carries: PostgreSQL-backed Rucio keeps free-form JSON metadata, so it
    # matches nothing; SQLite-backed Rucio rejects the key (InvalidMetadata -> 400).
    try:
        page = await get(jp_fetch, *inst("dids"), q="cms_opendata:*", filter="no_such_key=1")
    except HTTPClientError as err:
        assert err.code == 400 and "metadata" in json.loads(err.response.body)["error"]["message"].lower()
    else:
        assert page["items"] == [] and page["complete"]
    code, err = await failure(jp_fetch, *inst("dids"), q="cms_opendata:*", filter="length>>3")
    assert code == 400 and "filter" in err["message"].lower()


@pytest.mark.parametrize("bad", ["length>abc", "created_before=not-a-date", "__class__=1", "bytes<=x1"])
async def test_a_filter_rucio_cannot_apply_is_a_400_naming_the_filter(jp_fetch, bad):
    """Rucio's database refuses these (a number compared with text, a bad date, an odd key):
    the filter is at fault, not Rucio, so the answer is a 400 naming it, never 503."""
    code, err = await failure(jp_fetch, *inst("dids"), q="cms_opendata:*", filter=bad)
    assert code == 400 and err["field"] == "filters" and bad in err["message"], err


async def test_refresh_shows_a_scope_created_after_the_first_search(jp_fetch, facility):
    from af_facility.rucio_server import rucio_client

    scope = f"user.t{int(time.time() * 1000) % 10**8}"
    before = await get(jp_fetch, *inst("scopes"))  # the scope list is now cached
    assert scope not in before["scopes"]
    cfg = facility.state.services["rucio"]["client_configs"]["root"]

    def add_scope():
        with rucio_client(cfg) as root:
            root.add_scope("root", scope)  # not jdoe's: what jdoe owns stays as other tests expect

    await asyncio.to_thread(add_scope)
    code, err = await failure(jp_fetch, *inst("dids"), q=f"{scope}:*")  # cached list: not yet known
    assert code == 404 and scope in err["message"]
    page = await get(jp_fetch, *inst("dids"), q=f"{scope}:*", refresh="1")
    assert page["items"] == [] and page["complete"]


async def test_search_pages_without_a_cap(jp_fetch):
    """Far more than rucio-jupyterlab's 1,000-row cap: all 50,000 files of the big dataset, paged."""
    t0 = time.monotonic()
    first = await get(jp_fetch, *inst("dids"), q="cms_opendata:Run2012B_SingleMu_*", type="file", limit=100)
    assert len(first["items"]) == 100 and first["cursor"]
    items, pages = await all_pages(jp_fetch, *inst("dids"), q="cms_opendata:Run2012B_SingleMu_*", type="file",
                                   limit=5000)
    assert len(items) == 50_000 == len({d["name"] for d in items}) and pages == 10
    print(f"search 50k: {time.monotonic() - t0:.2f} s")


# ---------------------------------------------------------------------- details, content, replicas
async def test_container_to_datasets_to_files(jp_fetch, facility):
    demo = facility.state.services["demo"]
    detail = await get(jp_fetch, *inst("dids", CONTAINER), wait=30)
    assert detail["type"] == "container"
    assert detail["length"] == sum(len(d["files"]) for d in demo["datasets"].values())
    assert detail["bytes"] == sum(d["bytes"] for d in demo["datasets"].values())
    av = detail["availability"]
    assert av["complete"] and av["files_scanned"] == detail["length"]
    assert {r["rse"] for r in av["rses"]} == RSES
    for r in av["rses"]:  # every demo file is on both RSEs
        assert r["files_available"] == r["files"] == detail["length"]
        assert r["bytes_available"] == detail["bytes"]

    children = (await get(jp_fetch, *inst("dids", CONTAINER, "content")))["items"]
    assert sorted(c["did"] for c in children) == sorted(DATASETS)
    assert {c["type"] for c in children} == {"dataset"}

    for ds in DATASETS:
        name = ds.split(":")[1]
        page = await get(jp_fetch, *inst("dids", ds, "content"))
        assert sorted(f["name"] for f in page["items"]) == sorted(demo["datasets"][name]["files"])
        for f in page["items"]:
            assert f["type"] == "file" and f["bytes"] > 0 and len(f["adler32"]) == 8
        assert sum(f["bytes"] for f in page["items"]) == demo["datasets"][name]["bytes"]


async def test_file_details_and_replicas(jp_fetch, facility):
    import zlib
    from pathlib import Path

    did = "cms_opendata:ZZTo4mu_000.root"
    detail = await get(jp_fetch, *inst("dids", did))
    original = Path(facility.state.services["demo"]["originals"])
    data = next(original.rglob("ZZTo4mu_000.root")).read_bytes()
    assert detail["type"] == "file" and detail["bytes"] == len(data)
    assert detail["adler32"] == f"{zlib.adler32(data) & 0xFFFFFFFF:08x}"
    assert {(r["rse"], r["state"]) for r in detail["replicas"]} == {(rse, "AVAILABLE") for rse in RSES}
    assert {r["rse"] for r in detail["availability"]["rses"]} == RSES

    reps = await get(jp_fetch, *inst("dids", did, "replicas"))
    assert len(reps["items"]) == 1 and reps["cursor"] is None
    assert {r["rse"] for r in reps["items"][0]["replicas"]} == RSES

    per_file = await get(jp_fetch, *inst("dids", "cms_opendata:Run2012B_DoubleMuParked", "replicas"), limit=3)
    assert len(per_file["items"]) == 3 and per_file["cursor"]
    rest = await get(jp_fetch, *inst("dids", "cms_opendata:Run2012B_DoubleMuParked", "replicas"),
                     cursor=per_file["cursor"])
    files = [f["name"] for f in per_file["items"] + rest["items"]]
    assert len(files) == len(set(files)) == 4 and rest["cursor"] is None
    assert all({r["rse"] for r in f["replicas"]} == RSES for f in per_file["items"] + rest["items"])


async def test_page_through_the_50k_dataset(jp_fetch):
    t0 = time.monotonic()
    first = await get(jp_fetch, *inst("dids", BIG, "content"), limit=100)
    t_first = time.monotonic() - t0
    assert len(first["items"]) == 100 and first["cursor"]
    assert first["items"][0]["bytes"] is not None and first["items"][0]["adler32"]
    names, cursor, pages = [f["name"] for f in first["items"]], first["cursor"], 1
    while cursor:
        page = await get(jp_fetch, *inst("dids", BIG, "content"), limit=2000, cursor=cursor)
        names.extend(f["name"] for f in page["items"])
        cursor, pages = page["cursor"], pages + 1
    assert page["complete"] and page["total"] == 50_000
    assert len(names) == 50_000 == len(set(names))
    print(f"50k content: first page {t_first:.3f} s, all {pages} pages {time.monotonic() - t0:.2f} s")

    # Cached now: the same listing again is served from disk, and refresh=1 fetches anew.
    again = await get(jp_fetch, *inst("dids", BIG, "content"), limit=100)
    assert again["complete"] and again["cached_at"] == first["cached_at"]
    fresh = await get(jp_fetch, *inst("dids", BIG, "content"), limit=100, refresh=1)
    assert fresh["cached_at"] > first["cached_at"]
    assert [f["name"] for f in fresh["items"]] == names[:100]

    big = await get(jp_fetch, *inst("dids", BIG))
    assert big["length"] == 50_000 and big["availability"]["computed"] is False  # opt-in above 5,000 files


async def test_a_page_at_an_offset_jumps_to_where_the_user_scrolled(jp_fetch):
    # The sidebar's End key: the last page of a big dataset, not the one after the first.
    length = (await get(jp_fetch, *inst("dids", BIG)))["length"]
    first = await get(jp_fetch, *inst("dids", BIG, "replicas"), limit=100)
    last = await get(jp_fetch, *inst("dids", BIG, "replicas"), limit=100, cursor=first["cursor"], offset=length - 50)
    assert len(last["items"]) == 50 and last["cursor"] is None and last["total"] == length
    everything, _ = await all_pages(jp_fetch, *inst("dids", BIG, "replicas"), limit=5000)
    assert [f["did"] for f in last["items"]] == [f["did"] for f in everything[-50:]]
    middle = await get(jp_fetch, *inst("dids", BIG, "replicas"), limit=10, cursor=first["cursor"], offset=1000)
    assert [f["did"] for f in middle["items"]] == [f["did"] for f in everything[1000:1010]] and middle["cursor"]
    past = await get(jp_fetch, *inst("dids", BIG, "replicas"), limit=10, cursor=first["cursor"], offset=length + 5)
    assert past["items"] == [] and past["cursor"] is None
    for params in ({"offset": 5}, {"offset": -1, "cursor": first["cursor"]}, {"offset": "x", "cursor": first["cursor"]}):
        code, err = await failure(jp_fetch, *inst("dids", BIG, "replicas"), **params)
        assert code == 400 and "offset" in err["message"]


async def test_identical_concurrent_requests_are_coalesced(jp_fetch, facility):
    access_log = Path(facility.state.services["rucio"]["logs"]["access"])  # one line per request Rucio served

    def scope_calls() -> int:
        return sum('"GET /scopes/ ' in line for line in access_log.read_text(errors="replace").splitlines())

    before = scope_calls()
    results = await asyncio.gather(*(get(jp_fetch, *inst("scopes"), refresh="1") for _ in range(8)))
    assert all(r == results[0] for r in results)
    for _ in range(50):  # gunicorn writes its access line after the answer went out
        if scope_calls() > before:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.3)
    assert scope_calls() - before == 1  # eight requests, one Rucio call

    pages = await asyncio.gather(*(get(jp_fetch, *inst("dids", "cms_opendata:ZZTo4mu", "content")) for _ in range(5)))
    assert len({p["cached_at"] for p in pages}) == 1  # one listing, shared


# ---------------------------------------------------------------------- errors
async def test_typed_errors(jp_fetch):
    code, err = await failure(jp_fetch, *inst("dids", "cms_opendata:no_such_dataset"))
    assert code == 404 and "cms_opendata:no_such_dataset" in err["message"] and err["did"] == "cms_opendata:no_such_dataset"
    code, err = await failure(jp_fetch, *inst("dids", "cms_opendata:no_such_dataset", "content"))
    assert code == 404 and "cms_opendata:no_such_dataset" in err["message"]
    for bad in ("no-colon-here", "cms_opendata:", ":name", "sc ope:x"):
        code, err = await failure(jp_fetch, *inst("dids", bad))
        assert code == 400 and "scope:name" in err["message"], bad
    code, err = await failure(jp_fetch, *inst("dids"), q="ZZTo4mu")
    assert code == 400 and "scope:name" in err["message"]
    code, err = await failure(jp_fetch, *inst("dids"), q="nosuchscope:*")
    assert code == 404 and "nosuchscope" in err["message"]
    code, err = await failure(jp_fetch, *inst("dids"), q="cms_opendata:*", type="folder")
    assert code == 400
    code, err = await failure(jp_fetch, *inst("dids", "cms_opendata:ZZTo4mu", "content"), limit=0)
    assert code == 400 and "limit" in err["message"]
    code, err = await failure(jp_fetch, *inst("dids", "cms_opendata:ZZTo4mu", "content"), cursor="garbage")
    assert code == 400 and "cursor" in err["message"]
    code, err = await failure(jp_fetch, *inst("dids", "cms_opendata:ZZTo4mu_000.root", "content"))
    assert code == 400 and "file" in err["message"]
    code, err = await failure(jp_fetch, "instances", "nowhere", "scopes")  # one answer everywhere: 400
    assert code == 400 and "nowhere" in err["message"] and err["field"] == "instance"


async def test_cursor_of_another_listing_is_refused(jp_fetch):
    page = await get(jp_fetch, *inst("dids", "cms_opendata:Run2012B_DoubleMuParked", "content"), limit=1)
    code, err = await failure(jp_fetch, *inst("dids", "cms_opendata:ZZTo4mu", "content"), cursor=page["cursor"])
    assert code == 400 and "another listing" in err["message"]
