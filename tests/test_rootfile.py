"""The ROOT file viewer's endpoint: what a .root file in the workspace holds, read with uproot.

Files are written with uproot here; a mounted file is a link into af-lab's cache, which is
followed, while a link anywhere else outside the workspace is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import uproot
from tornado.httpclient import HTTPClientError


async def contents(jp_fetch, body) -> dict:
    resp = await jp_fetch("af-lab", "rootfile", "contents", method="POST", body=json.dumps(body))
    return json.loads(resp.body)


async def failure(jp_fetch, body) -> tuple[int, dict]:
    with pytest.raises(HTTPClientError) as err:
        await contents(jp_fetch, body)
    return err.value.code, json.loads(err.value.response.body)["error"]


def write_events(path: Path, n: int = 3) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with uproot.recreate(path) as f:
        tree = f.mktree("Events", {"nMuon": np.int32, "MET_pt": np.float32})  # a TTree, as NanoAOD
        tree.extend({"nMuon": np.arange(n, dtype=np.int32), "MET_pt": np.linspace(1, 2, n).astype(np.float32)})
        f["run_info"] = "a TObjString"


async def test_trees_entries_and_branches_of_a_workspace_file(jp_fetch, jp_root_dir):
    write_events(jp_root_dir / "data" / "events.root", n=5)
    answer = await contents(jp_fetch, {"path": "data/events.root"})
    assert answer["path"] == "data/events.root" and answer["reader"].startswith("uproot ")
    (tree,) = answer["trees"]
    assert tree["name"] == "Events" and tree["kind"] == "TTree" and tree["entries"] == 5 and not tree["truncated"]
    assert {b["name"]: b["type"] for b in tree["branches"]} == {"nMuon": "int32_t", "MET_pt": "float"}
    assert answer["objects"] == [{"name": "run_info", "class": "TObjString"}]


async def test_a_mounted_file_links_into_the_cache(jp_fetch, jp_root_dir, aflab_settings):
    cached = Path(aflab_settings["cache_dir"]) / "objects" / "ab" / "cafe.root"
    write_events(cached)
    (jp_root_dir / "cms_opendata").mkdir()
    (jp_root_dir / "cms_opendata" / "ZZTo4mu_000.root").symlink_to(cached)
    answer = await contents(jp_fetch, {"path": "cms_opendata/ZZTo4mu_000.root"})
    assert answer["trees"][0]["entries"] == 3
    assert str(cached) not in json.dumps(answer)  # the cache's path is not the user's business


async def test_links_elsewhere_bad_paths_and_non_root_files_are_refused(jp_fetch, jp_root_dir, tmp_path):
    outside = tmp_path / "elsewhere" / "secret.root"
    write_events(outside)
    (jp_root_dir / "escape.root").symlink_to(outside)
    (jp_root_dir / "notes.txt").write_text("hello")
    (jp_root_dir / "broken.root").write_bytes(b"not a ROOT file at all" * 10)
    cases = [
        ({"path": "escape.root"}, 400, "outside the workspace"),
        ({"path": "../secret.root"}, 400, "'..'"),
        ({"path": "notes.txt"}, 400, "not a ROOT file"),
        ({"path": "broken.root"}, 400, "could not be read as a ROOT file"),
        ({"path": "missing.root"}, 404, "not a file"),
        ({"path": 7}, 400, "path"),
        ({"path": "a.root", "extra": 1}, 400, "extra"),
        ({}, 400, "path"),
    ]
    for body, code, text in cases:
        got, err = await failure(jp_fetch, body)
        assert (got, text in err["message"]) == (code, True), (body, err)
        assert str(tmp_path) not in json.dumps(err)
