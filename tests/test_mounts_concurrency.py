"""Many mount requests at once, against the real facility: one mount per request kind, each file read once.

Reads are counted by the XRootD origin's own trace (one ``ofs_open`` line per open), not by
af-lab's counters: af-lab's "XCache" is pointed straight at the origin, so every read
af-lab makes of a file is one open in the origin's log.
"""

from __future__ import annotations

import asyncio
import copy
import os
import uuid
from collections import Counter

import pytest
from test_mounts import api, needs_xrootd, origin_opens, register, wait_for

from af_facility.lab import aflab_config

pytestmark = pytest.mark.facility

RUN = uuid.uuid4().hex[:8]
FILES = 20


@pytest.fixture
def aflab_settings(facility, tmp_path):
    xrd = needs_xrootd(facility)
    if not xrd.get("origin_trace"):
        pytest.skip("the XRootD origin does not trace its opens here (AF_XROOTD_TRACE=0)")
    cfg = copy.deepcopy(aflab_config(facility.state)["AFLab"])
    cfg.update(cache_dir=str(tmp_path / "cache"), state_dir=str(tmp_path / "state"), xcache_url=xrd["origin_url"])
    return cfg


def dataset(facility, tag: str) -> dict:
    files = {f"conc_{RUN}_{tag}_{i:02d}.bin": os.urandom(64 << 10) for i in range(FILES)}
    register(facility, files, dataset=f"conc_{RUN}_{tag}")
    return {"did": f"user.jdoe:conc_{RUN}_{tag}", "files": files}


def opens_per_file(facility, files) -> Counter:
    return Counter({name: origin_opens(facility, name) for name in files})


async def test_twenty_identical_requests_make_one_mount_and_read_each_file_once(jp_fetch, facility):
    ds = dataset(facility, "same")
    body = {"did": ds["did"], "source": "xcache"}
    answers = await asyncio.gather(*(api(jp_fetch, "POST", "mounts", body) for _ in range(20)))
    codes = Counter(code for code, _ in answers)
    assert codes == {201: 1, 200: 19}, answers
    ids = {data["mount"]["id"] for _, data in answers}
    assert len(ids) == 1
    done = await wait_for(jp_fetch, ids.pop())
    assert done["state"] == "ready", done
    assert opens_per_file(facility, ds["files"]) == Counter(dict.fromkeys(ds["files"], 1))


async def test_twenty_mixed_requests_each_get_their_mount_and_each_file_is_read_once(jp_fetch, facility):
    ds = dataset(facility, "mixed")
    bodies = (
        [{"did": ds["did"], "source": "xcache"}] * 6  # the same request: one mount
        + [{"did": ds["did"], "source": "xcache", "target": f"views/v{i % 4}"} for i in range(8)]  # 4 targets
        + [{"did": ds["did"], "mode": "stream"}] * 3  # another mode: its own mount, reads nothing
        + [{"did": ds["did"], "source": "xcache", "target": "views/v0"}] * 3  # joins v0
    )
    answers = await asyncio.gather(*(api(jp_fetch, "POST", "mounts", b) for b in bodies))
    assert all(code in (200, 201) for code, _ in answers), answers
    by_kind: dict[tuple, set] = {}
    for body, (_code, data) in zip(bodies, answers, strict=True):
        kind = (body.get("mode", "cache"), body.get("target"))
        by_kind.setdefault(kind, set()).add(data["mount"]["id"])
    assert len(by_kind) == 6 and all(len(ids) == 1 for ids in by_kind.values()), by_kind
    assert sum(code == 201 for code, _ in answers) == 6
    for ids in by_kind.values():
        done = await wait_for(jp_fetch, next(iter(ids)))
        assert done["state"] == "ready", done
    assert opens_per_file(facility, ds["files"]) == Counter(dict.fromkeys(ds["files"], 1))


async def test_colliding_names_get_distinct_paths_and_every_file_is_readable(jp_fetch, jp_root_dir, facility):
    files = {f"/coll_{RUN}/a": b"a file named like a folder", f"/coll_{RUN}/a/b.root": b"a file in that folder",
             f"coll_{RUN}_x.root": b"x without a slash", f"/coll_{RUN}_x.root": b"x with a slash"}
    register(facility, files, dataset=f"coll_{RUN}")
    code, data = await api(jp_fetch, "POST", "mounts", {"did": f"user.jdoe:coll_{RUN}", "source": "xcache"})
    assert code == 201, data
    done = await wait_for(jp_fetch, data["mount"]["id"])
    assert done["state"] == "ready", done
    _code, listed = await api(jp_fetch, "GET", f"mounts/{done['id']}/files", expect=200)
    paths = {f["did"].split(":", 1)[1]: f["path"] for f in listed["files"]}
    assert len(set(paths.values())) == 4
    for name, content in files.items():
        assert (jp_root_dir / done["target"] / paths[name]).read_bytes() == content, name


async def test_a_stream_mount_through_a_dead_xcache_is_refused_naming_it(facility, tmp_path):
    import socket

    from traitlets.config import Config

    from af_lab.config import AFLab
    from af_lab.errors import ServiceUnavailable
    from af_lab.services import Services

    needs_xrootd(facility)
    with socket.socket() as s:
        s.bind(("127.0.0.2", 0))
        dead = f"root://127.0.0.2:{s.getsockname()[1]}"  # nothing listens here once closed
    cfg = copy.deepcopy(aflab_config(facility.state)["AFLab"])
    cfg.update(cache_dir=str(tmp_path / "cache"), state_dir=str(tmp_path / "state"), xcache_url=dead)
    (tmp_path / "ws").mkdir()
    services = Services(AFLab(config=Config({"AFLab": cfg})), root_dir=str(tmp_path / "ws"))
    try:
        with pytest.raises(ServiceUnavailable) as err:
            await services.mounts.create({"did": "cms_opendata:ZZTo4mu", "mode": "stream"})
        assert err.value.details["service"] == "xcache" and dead in err.value.message
        assert (await services.mounts.list())["mounts"] == [] and not list((tmp_path / "ws").rglob("*.json"))
    finally:
        await services.close()
