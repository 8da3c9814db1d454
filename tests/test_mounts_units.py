"""Mounts: the pure logic (input checks, source ranking, cache, workspace, fetch) without services.

Everything here runs on local files only; the behaviour against the real Rucio,
XRootD and XCache is in test_mounts.py.
"""

from __future__ import annotations

import os
import threading
import time
import zlib
from pathlib import Path

import pytest

from af_lab.errors import BadRequest, Conflict
from af_lab.mounts import fileset, resolve, workspace
from af_lab.mounts.cache import Cache
from af_lab.mounts.fetch import ChecksumMismatch, FetchError, adler32_hex, fetch
from af_lab.mounts.store import Store

# ---------------------------------------------------------------------- DIDs


@pytest.mark.parametrize(
    "did, expected",
    [
        ("cms_opendata:ZZTo4mu", ("cms_opendata", "ZZTo4mu")),
        ("user.jdoe:my_skim_000.root", ("user.jdoe", "my_skim_000.root")),
        ("cms:/store/data/Run2012B/x.root", ("cms", "/store/data/Run2012B/x.root")),
    ],
)
def test_parse_did_accepts_rucio_names(did, expected):
    assert resolve.parse_did(did) == expected


@pytest.mark.parametrize(
    "did",
    ["", "nocolon", "cms_opendata:", ":name", "cms opendata:x", "cms_opendata:a b", "cms_opendata:a;rm -rf",
     "cms_opendata:../../etc/passwd", "cms_opendata:a//b", "cms_opendata:a\x00b", "cms_opendata:$(id)",
     "cms_opendata:'quoted'", 42, None, "x" * 40 + ":name"],
)  # fmt: skip
def test_parse_did_refuses_odd_input(did):
    with pytest.raises(BadRequest) as err:
        resolve.parse_did(did)
    assert err.value.details.get("field") == "did"


def test_safe_relpath_strips_leading_slash_and_refuses_dots():
    assert resolve.safe_relpath("/store/a/b.root") == "store/a/b.root"
    with pytest.raises(BadRequest):
        resolve.safe_relpath("a/../b")


# ---------------------------------------------------------------------- sources


REPLICAS = [
    {"rse": "SITE1", "url": "file://localhost/data/SITE1/x.root", "scheme": "file"},
    {"rse": "SITE1", "url": "root://origin:1094/rse/SITE1/x.root", "scheme": "root"},
    {"rse": "SITE2", "url": "root://far:1094//store/x.root", "scheme": "root"},
]


def test_rank_sources_auto_prefers_local_then_xcache_then_direct():
    got = resolve.rank_sources(REPLICAS, xcache="root://xcache:1094")
    assert [(s.kind, s.url) for s in got] == [
        ("local", "file://localhost/data/SITE1/x.root"),
        ("xcache", "root://xcache:1094//rse/SITE1/x.root"),
        ("xcache", "root://xcache:1094//store/x.root"),
        ("direct", "root://origin:1094//rse/SITE1/x.root"),
        ("direct", "root://far:1094//store/x.root"),
    ]


def test_rank_sources_policies_and_preference():
    assert {s.kind for s in resolve.rank_sources(REPLICAS, xcache="root://c:1", policy="xcache")} == {"xcache"}
    assert "xcache" not in {s.kind for s in resolve.rank_sources(REPLICAS, xcache="root://c:1", policy="direct")}
    assert resolve.rank_sources(REPLICAS, prefer_rses=["SITE2"])[0].rse == "SITE1"  # local still first
    direct = resolve.rank_sources(REPLICAS, prefer_rses=["SITE2"], local_ok=lambda p: False)
    assert direct[0].url == "root://far:1094//store/x.root"
    assert resolve.rank_sources(REPLICAS, local_ok=lambda p: False, xcache="")[0].kind == "direct"


def test_stream_url_goes_through_the_xcache():
    assert resolve.stream_url(REPLICAS, "root://xcache:1094") == "root://xcache:1094//rse/SITE1/x.root"
    assert resolve.stream_url(REPLICAS, "") == "root://origin:1094//rse/SITE1/x.root"
    assert resolve.stream_url(REPLICAS[:1], "root://xcache:1094") is None  # posix only: nothing to stream


def test_normalize_root_url_makes_paths_absolute():
    assert resolve.normalize_root_url("root://h:1/rse/a") == "root://h:1//rse/a"
    assert resolve.normalize_root_url("root://h:1//rse/a?x=1") == "root://h:1//rse/a?x=1"


def test_map_to_local_replaces_the_protocol_prefix():
    prefixes = {"SITE1": ["/data/SITE1/", "/rse/SITE1/"]}
    mapping = {"SITE1": "/mnt/site1"}
    assert resolve.map_to_local("file://localhost/data/SITE1/s/ab/x.root", mapping, prefixes, "SITE1") == "/mnt/site1/s/ab/x.root"
    assert resolve.map_to_local("root://h:1//rse/SITE1/s/x.root", mapping, prefixes, "SITE1") == "/mnt/site1/s/x.root"
    assert resolve.map_to_local("file://localhost/elsewhere/x", mapping, prefixes, "SITE1") is None
    assert resolve.map_to_local("file://localhost/data/SITE1/x", mapping, prefixes, "SITE2") is None


# ---------------------------------------------------------------------- workspace


def test_resolve_target_stays_in_the_workspace(tmp_path):
    (tmp_path / "ws").mkdir()
    ws = tmp_path / "ws"
    assert workspace.resolve_target(ws, "af-data/s/n") == ("af-data/s/n", ws.resolve() / "af-data/s/n")
    assert workspace.resolve_target(ws, str(ws / "x"))[0] == "x"
    for bad in ("../../etc", "a/../../b", "/etc/passwd", "", "a\nb", "."):
        with pytest.raises(BadRequest) as err:
            workspace.resolve_target(ws, bad)
        assert err.value.details["field"] == "target"
    os.symlink(tmp_path, ws / "escape")
    with pytest.raises(BadRequest, match="symbolic link"):
        workspace.resolve_target(ws, "escape/x")


def test_publish_symlink_is_atomic_and_never_overwrites(tmp_path):
    (tmp_path / "a").write_text("A")
    workspace.publish_symlink(tmp_path / "ws" / "mnt", tmp_path / "a")
    assert (tmp_path / "ws" / "mnt").read_text() == "A"
    with pytest.raises(Conflict):
        workspace.publish_symlink(tmp_path / "ws" / "mnt", tmp_path / "b")
    assert os.listdir(tmp_path / "ws") == ["mnt"]  # no staging leftovers


def test_views_are_built_once_read_only_and_collected_when_unused(tmp_path):
    store = Store(tmp_path / "state.sqlite")
    cache = Cache(tmp_path / "cache", store, quota_bytes=10**6)
    _put(cache, tmp_path, "f", 3)
    obj = str(cache.path("s", "f", "00000001"))
    links = [("D1/f.root", obj), ("D2/f.root", obj), ("g.root", obj)]
    view = cache.view(links)
    assert cache.view(links) == view and cache.owns(view)
    assert (view / "D1" / "f.root").read_bytes() == b"xxx" and os.readlink(view / "g.root") == obj
    assert oct(view.stat().st_mode & 0o777) == "0o555"
    # 0555 stops the user; the immutable attribute stops a server running as root as well.
    with pytest.raises(PermissionError):
        (view / "D1" / "user-notes.txt").write_text("not ours")
    with pytest.raises(PermissionError):
        (view / "g.root").unlink()
    cache.drop_unused_views(set())
    assert not view.exists()


def test_remove_mount_keeps_user_files(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "f").write_text("x")
    target = tmp_path / "ws" / "mnt"
    (target / "d").mkdir(parents=True)
    os.symlink(cache / "f", target / "d" / "f.root")
    os.symlink(cache / "f", target / "g.root")
    (target / "d" / "notes.txt").write_text("mine")
    os.symlink("/etc/hostname", target / "mylink")
    kept = workspace.remove_mount(tmp_path / "ws", target, lambda t: t.startswith(str(cache)))
    assert kept == ["mnt/d/notes.txt", "mnt/mylink"]
    assert (target / "d" / "notes.txt").read_text() == "mine"
    assert not (target / "g.root").exists() and (cache / "f").exists()
    link = tmp_path / "ws" / "single"
    workspace.publish_symlink(link, cache / "f")
    assert workspace.remove_mount(tmp_path / "ws", link, lambda t: t.startswith(str(cache))) == []
    assert not link.is_symlink()


def test_fileset_file_is_kept_when_the_user_edited_it(tmp_path):
    path = tmp_path / "x.fileset.json"
    digest = workspace.write_atomic(path, b"{}")
    assert workspace.remove_mount(tmp_path, path, lambda t: False, fileset_sha256=digest) == []
    assert not path.exists()
    digest = workspace.write_atomic(path, b"{}")
    path.write_text('{"edited": true}')
    assert workspace.remove_mount(tmp_path, path, lambda t: False, fileset_sha256=digest) == ["x.fileset.json"]


def test_fileset_groups_a_container_by_dataset():
    fs = fileset.build("s:C", "container", [("D1/a.root", "root://x//a"), ("D2/b.root", "root://x//b")], "Events", {})
    assert set(fs) == {"s:D1", "s:D2"} and fs["s:D1"]["files"] == {"root://x//a": "Events"}
    assert fileset.dumps(fs, "yaml").startswith(b"s:D1:")


# ---------------------------------------------------------------------- fetch


def _source(tmp_path: Path, data: bytes) -> tuple[str, str]:
    src = tmp_path / "replica.root"
    src.write_bytes(data)
    return f"file://localhost{src}", adler32_hex(zlib.adler32(data))


def test_fetch_posix_copies_and_verifies(tmp_path):
    data = os.urandom(3 << 20)
    url, checksum = _source(tmp_path, data)
    seen = []
    got = fetch(url, tmp_path / "out", expected_bytes=len(data), expected_adler32=checksum.lstrip("0"),
                progress=seen.append, cancel=threading.Event())  # fmt: skip
    assert got == checksum and (tmp_path / "out").read_bytes() == data and sum(seen) == len(data)


def test_fetch_refuses_a_bad_checksum_and_leaves_nothing(tmp_path):
    data = os.urandom(1 << 20)
    url, _checksum = _source(tmp_path, data)
    with pytest.raises(ChecksumMismatch, match="adler32 mismatch"):
        fetch(url, tmp_path / "out", expected_bytes=len(data), expected_adler32="deadbeef",
              progress=lambda n: None, cancel=threading.Event())  # fmt: skip
    with pytest.raises(ChecksumMismatch, match="size mismatch"):
        fetch(url, tmp_path / "out", expected_bytes=len(data) + 1, expected_adler32=None,
              progress=lambda n: None, cancel=threading.Event())  # fmt: skip
    with pytest.raises(FetchError, match="does not exist"):
        fetch("file://localhost/nonexistent/x", tmp_path / "out", expected_bytes=1, expected_adler32=None,
              progress=lambda n: None, cancel=threading.Event())  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_fetch_empty_file(tmp_path):
    url, checksum = _source(tmp_path, b"")
    assert fetch(url, tmp_path / "out", expected_bytes=0, expected_adler32=checksum,
                 progress=lambda n: None, cancel=threading.Event()) == "00000001"  # fmt: skip


# ---------------------------------------------------------------------- cache


def _put(cache: Cache, tmp_path: Path, name: str, size: int) -> None:
    tmp = cache.incoming_path("s", name)
    tmp.write_bytes(b"x" * size)
    cache.commit(tmp, "s", name, "00000001", size)


def test_cache_evicts_least_recently_used_unpinned(tmp_path):
    store = Store(tmp_path / "state.sqlite")
    cache = Cache(tmp_path / "cache", store, quota_bytes=1000)
    for i, name in enumerate(("old", "mid", "pinned")):
        _put(cache, tmp_path, name, 300)
        time.sleep(0.01 * (i + 1))
    store.insert_mount(
        {"id": "m1", "instance": "i", "scope": "s", "name": "ds", "did_type": "dataset", "mode": "cache", "target": "t",
         "state": "ready", "message": "", "options": {}, "rule": None, "created": 0, "updated": 0, "finished": 0},
        [{"path": "pinned", "scope": "s", "name": "pinned", "bytes": 300, "state": "done"}],
    )  # fmt: skip
    store.touch_cache([("s", "pinned")])
    room = cache.room()
    assert (room.used, room.pinned) == (900, 300)
    assert room.available == 1000 - 300
    assert not cache.fits(400)
    freed = cache.make_room(400)
    assert freed == 300 and cache.fits(400)  # only "old" had to go
    files = [{"scope": "s", "name": n, "adler32": "00000001"} for n in ("old", "mid", "pinned")]
    assert set(cache.present(files)) == {("s", "mid"), ("s", "pinned")}
    cache.make_room(1000)
    assert set(cache.present(files)) == {("s", "pinned")}  # never a file of a listed mount
    assert store.counters()["files_evicted"] == 2


def test_cache_drops_an_entry_whose_file_vanished(tmp_path):
    store = Store(tmp_path / "state.sqlite")
    cache = Cache(tmp_path / "cache", store, quota_bytes=10**6)
    _put(cache, tmp_path, "a", 10)
    cache.path("s", "a", "00000001").unlink()
    assert cache.present([{"scope": "s", "name": "a", "adler32": "00000001"}]) == {}
    assert store.cache_rows() == []


def test_cache_removes_partial_downloads_of_dead_processes(tmp_path):
    store = Store(tmp_path / "state.sqlite")
    incoming = tmp_path / "cache" / "incoming"
    incoming.mkdir(parents=True)
    (incoming / "999999999.abc.1234.part").write_bytes(b"half")
    Cache(tmp_path / "cache", store, quota_bytes=10)
    assert list(incoming.iterdir()) == []


def test_every_file_gets_a_distinct_path_and_no_file_is_a_folder():
    from af_lab.mounts.paths import distinct

    def f(name, path):
        return {"scope": "s", "name": name, "path": path}

    files = [f("/a", "a"), f("/a/b.root", "a/b.root"), f("x.root", "x.root"), f("/x.root", "x.root"),
             f("x~2.root", "x~2.root"), f("/d/y", "d/y"), f("d/y", "d/y")]
    out = distinct(files)
    assert [o["name"] for o in out] == [x["name"] for x in files]  # same files, same order
    got = {o["name"]: o["path"] for o in out}
    assert got["/a/b.root"] == "a/b.root" and got["/a"] == "a~2"  # the folder keeps the name
    assert got["/x.root"] == "x.root" and got["x.root"] == "x~3.root"  # x~2.root is a file's own name
    assert got["x~2.root"] == "x~2.root"
    assert sorted([got["/d/y"], got["d/y"]]) == ["d/y", "d/y~2"]
    paths = list(got.values())
    assert len(set(paths)) == len(paths)
    folders = {"/".join(p.split("/")[:i]) for p in paths for i in range(1, p.count("/") + 1)}
    assert not folders & set(paths)
    assert distinct([f("a", "a")])[0] is not None and files[1]["path"] == "a/b.root"  # inputs untouched


def test_counts_of_written_rows_match_the_store(tmp_path):
    """A new mount's counts come from the rows it writes, not from reading them back."""
    from af_lab.mounts import model

    store = Store(tmp_path / "m.sqlite")
    rows = [{"scope": "s", "name": f"f{i}", "path": f"f{i}", "bytes": i, "state": "done" if i % 3 else "pending"}
            for i in range(10)]  # fmt: skip
    mount = {"id": "m1", "instance": "x", "scope": "s", "name": "d", "did_type": "dataset", "mode": "replica",
             "target": "t", "state": "queued", "message": "", "options": {}, "rule": None, "created": 0.0,
             "updated": 0.0, "finished": None}  # fmt: skip
    store.insert_mount(mount, rows)
    assert model.counts(rows) == store.file_counts("m1")["m1"]
    store.close()


def test_replica_rows_link_what_is_local_and_keep_the_replicas_of_the_rest():
    from af_lab.mounts import replica

    files = [{"scope": "s", "name": n, "path": n, "bytes": 1} for n in ("a", "b")]
    reps = {("s", "b"): [{"rse": "R", "url": "file:///b", "scheme": "file"}]}
    rows, missing = replica.rows(files, reps, {("s", "a"): "/r/a"})
    assert rows[0]["state"] == "done" and rows[0]["local_path"] == "/r/a" and rows[0]["source"] == "replica"
    assert rows[1]["state"] == "pending" and rows[1]["replicas"] == reps[("s", "b")] and missing == [files[1]]


def test_kept_values_last_while_a_mount_is_settled_and_a_second_while_it_runs():
    from af_lab.mounts import model

    kept, calls = model.Kept(), []

    def compute():
        calls.append(1)
        return len(calls)

    ready = {"id": "m", "state": "ready", "finished": 1.0}
    assert kept.get(ready, "counts", compute) == kept.get(ready, "counts", compute) == 1
    assert kept.get({**ready, "state": "queued", "finished": None}, "counts", compute) == 2  # state changed
    assert kept.get({**ready, "finished": 2.0}, "counts", compute) == 3  # settled again, later
    assert kept.get(ready, "problems", compute) == 4  # each value on its own


# ---------------------------------------------------------------------- stream mounts after an XCache move


def _stream_mount(store: Store, root: Path, fmt: str, via: str) -> dict:
    from af_lab.mounts import stream

    rows = [{"path": f"f{i}.root", "scope": "user.jdoe", "name": f"f{i}.root", "bytes": 10, "state": "done",
             "source": "stream", "local_path": f"{via}//store/user.jdoe/f{i}.root"} for i in range(3)]  # fmt: skip
    target = f"af-data/user.jdoe/ds.fileset.{fmt}"
    opts = {"source": "xcache", "format": fmt, "treename": "Events", "via_xcache": via}
    fs = fileset.build("user.jdoe:ds", "dataset", [(r["path"], r["local_path"]) for r in rows], "Events",
                       fileset.metadata("demo", "stream", "xcache", via))  # fmt: skip
    opts["fileset_sha256"] = workspace.write_atomic(root / target, fileset.dumps(fs, fmt))
    mount = {"id": f"m-{fmt}", "instance": "demo", "scope": "user.jdoe", "name": "ds", "did_type": "dataset",
             "mode": "stream", "target": target, "state": "ready", "message": "", "options": opts, "rule": None,
             "created": 1.0, "updated": 1.0, "finished": 1.0}  # fmt: skip
    store.insert_mount(mount, rows)
    assert not stream.repoint_workspace(store, root, store.mount(mount["id"]), via)  # not moved: untouched
    return store.mount(mount["id"])


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_a_stream_mounts_workspace_fileset_follows_a_moved_xcache_in_its_format(tmp_path, fmt):
    import yaml

    from af_lab.mounts import stream

    store = Store(tmp_path / "mounts.sqlite")
    old, new = "root://127.0.0.2:1094", "root://127.0.0.2:2094"
    mount = _stream_mount(store, tmp_path, fmt, old)
    path = tmp_path / mount["target"]
    assert stream.repoint_workspace(store, tmp_path, mount, new)
    (entry,) = yaml.safe_load(path.read_text()).values()  # JSON is YAML too
    assert sorted(entry["files"]) == [f"{new}//store/user.jdoe/f{i}.root" for i in range(3)]
    assert entry["metadata"]["xcache"] == new and entry["metadata"]["nfiles"] == 3
    assert path.read_text().lstrip().startswith("{") == (fmt == "json")
    assert not [p for p in path.parent.iterdir() if p.name.startswith(workspace.STAGING_MARK)]
    # Recorded: the rewritten file is recognised as af-lab's at unmount, and nothing moves twice.
    again = store.mount(mount["id"])
    assert again["options"]["via_xcache"] == new
    assert workspace.remove_mount(tmp_path, path, lambda _: False, again["options"]["fileset_sha256"]) == []
    store.close()


def test_a_fileset_the_user_edited_is_theirs_when_the_xcache_moves(tmp_path):
    from af_lab.mounts import stream

    store = Store(tmp_path / "mounts.sqlite")
    mount = _stream_mount(store, tmp_path, "json", "root://127.0.0.2:1094")
    path = tmp_path / mount["target"]
    path.write_text('{"mine": {"files": {}}}\n')
    assert not stream.repoint_workspace(store, tmp_path, mount, "root://127.0.0.2:2094")
    assert path.read_text() == '{"mine": {"files": {}}}\n'
    # The fileset af-lab hands out (REST, magics) follows the XCache all the same.
    assert store.mount(mount["id"])["options"]["via_xcache"] == "root://127.0.0.2:2094"
    store.close()
