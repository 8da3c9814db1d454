"""Rucio going away under a running server: clear 503s naming the instance, then recovery.

Stops and restarts the facility's real Rucio server (same port, same database).
"""

from __future__ import annotations

import copy
import json

import pytest
from tornado.httpclient import HTTPClientError

from af_facility.lab import DEMO_INSTANCE, aflab_config

pytestmark = pytest.mark.facility

BIG = "cms_opendata:SingleMu_50k"


@pytest.fixture
def aflab_settings(facility, tmp_path):
    cfg = copy.deepcopy(aflab_config(facility.state)["AFLab"])
    cfg["state_dir"] = str(tmp_path / "state")
    cfg["rucio_timeout"] = 10.0
    return cfg


async def get(jp_fetch, *parts, **params):
    resp = await jp_fetch("af-lab", "rucio", "instances", DEMO_INSTANCE, *parts, params=params)
    return json.loads(resp.body)


async def test_rucio_stopped_mid_session_then_back(jp_fetch, facility):
    rucio = facility.service("rucio")
    assert (await get(jp_fetch, "scopes"))["scopes"]
    first = await get(jp_fetch, "dids", BIG, "content", limit=100)  # a 50k listing now streaming
    rucio.down()
    try:
        outcomes = []
        for params in ({"refresh": "1"}, {}):
            with pytest.raises(HTTPClientError) as err:
                await get(jp_fetch, "scopes", **params) if params else await get(
                    jp_fetch, "dids", "cms_opendata:ZZTo4mu", "content")
            outcomes.append((err.value.code, json.loads(err.value.response.body)["error"]))
        for code, error in outcomes:
            assert code == 503 and error["instance"] == DEMO_INSTANCE and f"'{DEMO_INSTANCE}'" in error["message"]
            assert "unreachable" in error["message"]

        # The listing that was streaming either finished before the stop or ends in a clear 503.
        cursor = first["cursor"]
        while cursor:
            try:
                page = await get(jp_fetch, "dids", BIG, "content", limit=5000, cursor=cursor)
            except HTTPClientError as exc:
                assert exc.code in (503, 409), exc.response.body
                break
            cursor = page["cursor"]

        status = {s["id"]: s for s in json.loads((await jp_fetch("af-lab", "status")).body)["services"]}
        assert status[f"rucio:{DEMO_INSTANCE}"]["state"] == "unreachable"
    finally:
        rucio.up()

    # Same server process, Rucio back: everything works again, nothing stuck.
    assert "cms_opendata" in (await get(jp_fetch, "scopes", refresh="1"))["scopes"]
    files = (await get(jp_fetch, "dids", "cms_opendata:ZZTo4mu", "content"))["items"]
    assert len(files) == 2
