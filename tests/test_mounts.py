"""Mounts against the real facility: Rucio 41, posix RSEs, the XRootD origin and XCache, OpenBao.

Every test gets its own cache and state directory (so "no new fetch" is provable
from counters), and its own workspace (pytest-jupyter's root dir). Data the
tests damage or replicate is registered here, under unique names in user.jdoe:
the demo datasets, shared with other tests, are only read.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import errno
import filecmp
import json
import os
import shutil
import socket
import stat
import subprocess
import threading
import time
import uuid
import zlib
from pathlib import Path
from urllib.parse import urlparse

import pytest
from tornado.httpclient import HTTPClientError
from traitlets.config import Config

from af_facility.lab import aflab_config
from af_facility.rucio_server import rucio_client
from af_lab.units import human_bytes

pytestmark = pytest.mark.facility

SITE1, SITE2 = "SITE1_USERDISK", "SITE2_USERDISK"
RUN_ID = uuid.uuid4().hex[:8]


# ====================================================================== fixtures and helpers


@pytest.fixture
def aflab_settings(request, facility, tmp_path):
    """The facility's c.AFLab, with a private cache and state dir.

    ``request.param`` may edit it: ``edit(cfg, facility, tmp_path)`` returns extras
    (relays, mounts) that the test reads from ``extras`` and that are closed afterwards.
    """
    cfg = copy.deepcopy(aflab_config(facility.state)["AFLab"])
    cfg.update(cache_dir=str(tmp_path / "cache"), state_dir=str(tmp_path / "state"))
    edit = getattr(request, "param", None)
    extras = (edit(cfg, facility, tmp_path) if edit else None) or {}
    request.node.extras = extras
    yield cfg
    for value in extras.values():
        if isinstance(value, Relay):
            value.close()
    if "tmpfs" in extras:
        subprocess.run(["umount", "-l", str(extras["tmpfs"])], capture_output=True)


@pytest.fixture
def extras(request, aflab_settings) -> dict:
    return request.node.extras


def settings(edit):
    """Run a test with ``edit(cfg, facility, tmp_path)`` applied to its c.AFLab."""
    return pytest.mark.parametrize("aflab_settings", [edit], indirect=True, ids=[edit.__name__])


def needs_xrootd(facility) -> dict:
    xrd = facility.state.services.get("xrootd", {})
    if not xrd.get("available"):
        pytest.skip(f"XRootD is not available here: {xrd.get('reason', 'not started')}")
    return xrd


async def api(jp_fetch, method: str, path: str, body: dict | None = None, expect: int | None = None) -> tuple[int, dict]:
    try:
        resp = await jp_fetch("af-lab", *path.split("/"), method=method,
                              body=json.dumps(body) if body is not None else None, allow_nonstandard_methods=True)  # fmt: skip
        code, data = resp.code, json.loads(resp.body or b"{}")
    except HTTPClientError as err:
        code, data = err.code, json.loads(err.response.body)
    if expect is not None:
        assert code == expect, f"{method} {path} -> {code}: {data}"
    return code, data


async def mount(jp_fetch, expect: int = 201, **body) -> dict:
    _code, data = await api(jp_fetch, "POST", "mounts", body, expect=expect)
    return data["mount"] if "mount" in data else data


async def wait_for(jp_fetch, mount_id: str, states=("ready", "failed", "cancelled"), timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        _code, data = await api(jp_fetch, "GET", f"mounts/{mount_id}", expect=200)
        if data["mount"]["state"] in states:
            return data["mount"]
        assert time.monotonic() < deadline, f"mount stayed {data['mount']['state']}: {data['mount']}"
        await asyncio.sleep(0.1)


async def cache_info(jp_fetch) -> dict:
    return (await api(jp_fetch, "GET", "mounts/cache", expect=200))[1]["cache"]


def originals(facility, dataset: str) -> list[Path]:
    return sorted((Path(facility.state.services["demo"]["originals"]) / dataset).iterdir())


def root_client(facility):
    return rucio_client(facility.state.services["rucio"]["client_configs"]["root"])


def rse_dir(facility, rse: str) -> Path:
    return Path(facility.state.services["rucio"]["rses"][rse])


def adler(data: bytes) -> str:
    return f"{zlib.adler32(data) & 0xFFFFFFFF:08x}"


def register(facility, files: dict[str, bytes], rses=(SITE1,), dataset: str | None = None) -> dict[str, dict[str, Path]]:
    """Put ``files`` (name -> bytes) into user.jdoe on ``rses`` as real replicas; returns {rse: {name: path}}."""
    scope = "user.jdoe"
    paths: dict[str, dict[str, Path]] = {}
    with root_client(facility) as root:
        for rse in rses:
            pfns = root.lfns2pfns(rse, [f"{scope}:{n}" for n in files], operation="write", scheme="file")
            paths[rse] = {}
            for name, data in files.items():
                path = Path(urlparse(pfns[f"{scope}:{name}"]).path)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                path.chmod(0o644)
                for parent in path.parents:  # the XRootD origin runs as its own user
                    if parent == rse_dir(facility, rse):
                        break
                    parent.chmod(0o755)
                paths[rse][name] = path
            root.add_replicas(rse, [{"scope": scope, "name": n, "bytes": len(d), "adler32": adler(d)} for n, d in files.items()])
        if dataset:
            root.add_dataset(scope, dataset)
            root.attach_dids(scope, dataset, [{"scope": scope, "name": n} for n in files])
    return paths


def origin_opens(facility, needle: str) -> int:
    log = Path(facility.state.services["xrootd"]["origin_log"]).read_text(errors="replace")
    return sum(1 for line in log.splitlines() if "ofs_open" in line and needle in line)


class Relay:
    """A loopback TCP relay in front of a real server: throttle it, or cut it like a dying XCache.

    ``rate``: bytes/s from the server to the client. ``cut_after``: once that many bytes
    went to the client, every connection is closed and the port stops accepting.
    """

    def __init__(self, port: int, rate: float | None = None, cut_after: int | None = None, host: str = "127.0.0.2",
                 listen_port: int = 0):  # fmt: skip
        self.target, self.target_host = port, host
        self.rate, self.cut_after = rate, cut_after
        self.listener = socket.create_server(("127.0.0.1", listen_port))  # a given port: an XCache back where it was
        self.port = self.listener.getsockname()[1]
        self.sent = 0
        self.cut_done = threading.Event()
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"root://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection((self.target_host, self.target))
            with self._lock:
                self._socks += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, downstream: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if downstream:
                    if self.rate:
                        time.sleep(len(data) / self.rate)
                    with self._lock:
                        self.sent += len(data)
                        over = self.cut_after is not None and self.sent >= self.cut_after
                    if over:
                        self.cut()
                        return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        self.cut_done.set()
        self.close()

    def close(self) -> None:
        try:
            self.listener.close()
        except OSError:
            pass
        with self._lock:
            socks, self._socks = self._socks, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)  # as a dying process would: the peer sees the connection end now
            except OSError:
                pass
            s.close()


@pytest.fixture(scope="module")
def big(facility):
    """One 24 MiB file in its own dataset on SITE1 (readable through the origin and the XCache)."""
    needs_xrootd(facility)
    name = f"mnt_{RUN_ID}_big.bin"
    data = os.urandom(24 << 20)
    register(facility, {name: data}, dataset=f"mnt_{RUN_ID}_bigds")
    return {"did": f"user.jdoe:mnt_{RUN_ID}_bigds", "name": name, "data": data}


@pytest.fixture(scope="module")
def many(facility):
    """12 files of 1 MiB in one dataset on SITE1, for jobs that must be caught half-way."""
    files = {f"mnt_{RUN_ID}_many_{i:02d}.bin": os.urandom(1 << 20) for i in range(12)}
    register(facility, files, dataset=f"mnt_{RUN_ID}_manyds")
    return {"did": f"user.jdoe:mnt_{RUN_ID}_manyds", "files": files}


# ====================================================================== cache mode


async def test_cache_mount_of_a_dataset_gives_the_original_bytes(jp_fetch, jp_root_dir, facility, aflab_settings):
    m = await mount(jp_fetch, did="cms_opendata:Run2012B_DoubleMuParked")
    assert m["mode"] == "cache" and m["target"] == "af-data/cms_opendata/Run2012B_DoubleMuParked"
    m = await wait_for(jp_fetch, m["id"])
    assert m["state"] == "ready", m
    assert m["files"] == {"total": 4, "done": 4, "failed": 0, "active": 0}
    folder = Path(jp_root_dir) / m["target"]
    for original in originals(facility, "Run2012B_DoubleMuParked"):
        link = folder / original.name
        assert link.is_symlink() and Path(os.readlink(link)).is_relative_to(aflab_settings["cache_dir"])
        assert filecmp.cmp(original, link, shallow=False)
    _code, data = await api(jp_fetch, "GET", f"mounts/{m['id']}/files", expect=200)
    assert data["total"] == 4 and {f["state"] for f in data["files"]} == {"done"}
    assert all(f["location"] == str(folder / f["path"]) for f in data["files"])
    info = await cache_info(jp_fetch)
    assert info["files_fetched"] == 4 and info["used_bytes"] == m["bytes"]["total"] == info["pinned_bytes"]
    _code, listing = await api(jp_fetch, "GET", "mounts", expect=200)
    assert [x["id"] for x in listing["mounts"]] == [m["id"]]


async def test_progress_is_pushed_over_the_event_stream(jp_fetch, event_stream, many):
    stream = await event_stream("mounts")
    m = await mount(jp_fetch, did=many["did"])
    await wait_for(jp_fetch, m["id"])
    await stream.until(lambda received: received and received[-1]["data"]["state"] == "ready")
    received = stream.received
    mine = [e["data"] for e in received if e["topic"] == f"mounts/{m['id']}"]
    states = [d["state"] for d in mine]
    assert states[0] == "queued" and "fetching" in states and states[-1] == "ready", states
    last = mine[-1]
    assert last["files"]["done"] == last["files"]["total"] == 12 and last["bytes"]["done"] == 12 << 20


async def test_remount_fetches_nothing(jp_fetch, jp_root_dir, facility):
    first = await wait_for(jp_fetch, (await mount(jp_fetch, did="cms_opendata:ZZTo4mu"))["id"])
    assert first["state"] == "ready"
    before = await cache_info(jp_fetch)
    objects = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in Path(before["path"], "objects").rglob("*") if p.is_file()}
    assert before["files_fetched"] == 2 and len(objects) == 2

    # Unmount: the workspace entries go, the cached copies stay (now evictable).
    _code, removed = await api(jp_fetch, "DELETE", f"mounts/{first['id']}", expect=200)
    assert removed["kept"] == [] and not (Path(jp_root_dir) / first["target"]).exists()
    assert not (Path(jp_root_dir) / "af-data" / "cms_opendata").exists()  # empty parents are tidied up too
    assert (await cache_info(jp_fetch))["evictable_bytes"] == first["bytes"]["total"]

    # Mount again, and a container that overlaps it: only the other datasets are fetched.
    again = await mount(jp_fetch, did="cms_opendata:ZZTo4mu")
    assert again["state"] == "ready", "a warm mount is complete in the POST response"
    assert again["message"] == "2 files, all from the cache"
    container = await wait_for(jp_fetch, (await mount(jp_fetch, did="cms_opendata:DAC21_CMS_opendata"))["id"])
    assert container["state"] == "ready"
    after = await cache_info(jp_fetch)
    assert after["files_fetched"] == 2 + 6  # Run2012B (4) + SMHiggs (2): ZZTo4mu's two came from the cache
    for path, ident in objects.items():
        assert (path.stat().st_ino, path.stat().st_mtime_ns) == ident, "a cached file was rewritten"
    ws = Path(jp_root_dir)
    assert os.path.realpath(ws / again["target"] / "ZZTo4mu_000.root") == os.path.realpath(
        ws / container["target"] / "ZZTo4mu" / "ZZTo4mu_000.root"
    )
    # The identical request again is answered with the existing mount.
    code, same = await api(jp_fetch, "POST", "mounts", {"did": "cms_opendata:ZZTo4mu"}, expect=200)
    assert same["mount"]["id"] == again["id"] and code == 200


async def test_cache_mount_through_the_xcache_and_no_origin_read_on_remount(jp_fetch, jp_root_dir, facility):
    needs_xrootd(facility)
    m = await wait_for(jp_fetch, (await mount(jp_fetch, did="cms_opendata:SMHiggsToZZTo4L", source="xcache"))["id"])
    assert m["state"] == "ready", m
    _code, files = await api(jp_fetch, "GET", f"mounts/{m['id']}/files", expect=200)
    assert {f["source"] for f in files["files"]} == {f"{SITE1} (xcache)"}
    for original in originals(facility, "SMHiggsToZZTo4L"):
        assert filecmp.cmp(original, Path(jp_root_dir) / m["target"] / original.name, shallow=False)
    opens = origin_opens(facility, "SMHiggsToZZTo4L")
    await api(jp_fetch, "DELETE", f"mounts/{m['id']}", expect=200)
    again = await mount(jp_fetch, did="cms_opendata:SMHiggsToZZTo4L", source="xcache")
    assert again["state"] == "ready"
    assert origin_opens(facility, "SMHiggsToZZTo4L") == opens, "the re-mount read from the storage"
    assert (await cache_info(jp_fetch))["files_fetched"] == 2


# ====================================================================== stream mode


async def test_stream_mode_writes_a_fileset_uproot_reads_through_the_xcache(jp_fetch, jp_root_dir, facility):
    import uproot

    xrd = needs_xrootd(facility)
    m = await mount(jp_fetch, did="cms_opendata:ZZTo4mu", mode="stream")
    assert m["state"] == "ready" and m["fileset"] == "af-data/cms_opendata/ZZTo4mu.fileset.json"
    fileset = json.loads((Path(jp_root_dir) / m["fileset"]).read_text())
    urls = fileset["cms_opendata:ZZTo4mu"]["files"]
    assert len(urls) == 2 and all(u.startswith(xrd["cache_url"] + "//rse/") for u in urls)
    assert "authz" not in json.dumps(fileset), "never a token in a workspace file"
    for url, tree in urls.items():
        original = next(p for p in originals(facility, "ZZTo4mu") if url.endswith(p.name))
        with uproot.open(original) as f:
            expected = f["Events"]["Muon_pt"].array(library="np")
        with uproot.open(url) as f:
            got = f[tree]["Muon_pt"].array(library="np")
        assert len(got) == len(expected) and all((a == b).all() for a, b in zip(got, expected, strict=True))
        # Read again: the XCache answers, the origin sees no new open.
        opens = origin_opens(facility, original.name)
        with uproot.open(url) as f:
            f[tree]["Muon_pt"].array(library="np")
        assert origin_opens(facility, original.name) == opens

    _code, yaml_mount = await api(jp_fetch, "POST", "mounts", {"did": "cms_opendata:ZZTo4mu", "mode": "stream", "format": "yaml"}, expect=201)
    assert (Path(jp_root_dir) / yaml_mount["mount"]["fileset"]).read_text().startswith("cms_opendata:ZZTo4mu:")
    # Unmount removes the fileset file, as long as the user has not edited it.
    await api(jp_fetch, "DELETE", f"mounts/{m['id']}", expect=200)
    assert not (Path(jp_root_dir) / m["fileset"]).exists()


async def test_stream_mode_refuses_posix_only_data(jp_fetch, facility):
    needs_xrootd(facility)
    name = f"mnt_{RUN_ID}_posix_only.bin"
    register(facility, {name: b"only on SITE2"}, rses=(SITE2,))
    _code, data = await api(jp_fetch, "POST", "mounts", {"did": f"user.jdoe:{name}", "mode": "stream"}, expect=409)
    assert data["error"]["type"] == "no_replica" and "root://" in data["error"]["message"]


# ====================================================================== replica mode


def map_site1_through_a_view(cfg, facility, tmp_path):
    """SITE1 mounted on this host at another path (a symlinked view of the RSE directory)."""
    view = tmp_path / "sites" / "site1"
    view.parent.mkdir(parents=True)
    view.symlink_to(rse_dir(facility, SITE1), target_is_directory=True)
    cfg["rucio_instances"][0]["rse_mounts"] = {SITE1: str(view)}


@settings(map_site1_through_a_view)
async def test_replica_mode_links_to_the_mapped_replica_paths(jp_fetch, jp_root_dir, facility, tmp_path):
    m = await mount(jp_fetch, did="cms_opendata:ZZTo4mu", mode="replica")
    assert m["state"] == "ready", m
    view = tmp_path / "sites" / "site1"
    for original in originals(facility, "ZZTo4mu"):
        link = Path(jp_root_dir) / m["target"] / original.name
        assert os.readlink(link).startswith(str(view) + "/cms_opendata/")
        assert filecmp.cmp(original, link, shallow=False)
    assert (await cache_info(jp_fetch))["files"] == 0, "replica mode copies nothing"
    _code, removed = await api(jp_fetch, "DELETE", f"mounts/{m['id']}", expect=200)
    assert removed["kept"] == [] and originals(facility, "ZZTo4mu")[0].exists()


def map_site2_only(cfg, facility, tmp_path):
    cfg["rucio_instances"][0]["rse_mounts"] = {SITE2: str(rse_dir(facility, SITE2))}


@settings(map_site2_only)
async def test_replica_mode_requests_a_rule_and_follows_it(jp_fetch, jp_serverapp, jp_root_dir, facility):
    files = {f"mnt_{RUN_ID}_rule_{i}.bin": os.urandom(4096) for i in range(2)}
    dataset = f"mnt_{RUN_ID}_ruleds"
    register(facility, files, rses=(SITE1,), dataset=dataset)
    did = f"user.jdoe:{dataset}"

    _code, err = await api(jp_fetch, "POST", "mounts", {"did": did, "mode": "replica"}, expect=409)
    assert err["error"]["type"] == "no_replica" and "request_rule" in err["error"]["message"]
    assert not (Path(jp_root_dir) / "af-data").exists()

    jp_serverapp.web_app.settings["af_lab"].mounts.rule_poll_interval = 0.2
    m = await mount(jp_fetch, did=did, mode="replica", request_rule=True, lifetime_days=1)
    assert m["state"] == "replicating" and m["rule"]["rse"] == SITE2
    m = await wait_for(jp_fetch, m["id"], states=("replicating",))
    for _ in range(100):
        m = (await api(jp_fetch, "GET", f"mounts/{m['id']}", expect=200))[1]["mount"]
        if m["rule"].get("locks_total"):
            break
        await asyncio.sleep(0.1)
    assert m["rule"]["locks_total"] == 2 and m["rule"]["locks_ok_cnt"] == 0 and "replicating" in m["message"].lower()

    # Play the transfer system: copy the bytes to SITE2 and mark the replicas available.
    with root_client(facility) as root:
        pfns = root.lfns2pfns(SITE2, [f"user.jdoe:{n}" for n in files], operation="write", scheme="file")
        for name, data in files.items():
            path = Path(urlparse(pfns[f"user.jdoe:{name}"]).path)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        root.update_replicas_states(SITE2, [{"scope": "user.jdoe", "name": n, "state": "A"} for n in files])
    m = await wait_for(jp_fetch, m["id"])
    assert m["state"] == "ready" and m["rule"]["state"] == "OK", m
    for name, data in files.items():
        link = Path(jp_root_dir) / m["target"] / name
        assert os.readlink(link).startswith(str(rse_dir(facility, SITE2))) and link.read_bytes() == data


@settings(map_site2_only)
async def test_unmounting_a_replicating_mount_deletes_its_rule(jp_fetch, facility):
    from rucio.common.exception import RuleNotFound

    name = f"mnt_{RUN_ID}_rule_gone.bin"
    register(facility, {name: b"stays on SITE1"}, rses=(SITE1,))
    m = await mount(jp_fetch, did=f"user.jdoe:{name}", mode="replica", request_rule=True, lifetime_days=0.5)
    assert m["state"] == "replicating"
    _code, removed = await api(jp_fetch, "DELETE", f"mounts/{m['id']}", expect=200)
    assert removed["notes"] == [f"deleted replication rule {m['rule']['id']}"]
    # Rucio deletes softly: the rule expires within the hour (it was asked for 12 h), then goes.
    with root_client(facility) as root:
        try:
            rule = root.get_replication_rule(m["rule"]["id"])
        except RuleNotFound:
            return
    assert rule["expires_at"] < datetime.datetime.utcnow() + datetime.timedelta(hours=1, minutes=1)


# ====================================================================== restart and resume


def slow_xcache(cfg, facility, tmp_path):
    """The site XCache behind a relay that delivers 4 MiB/s: jobs last long enough to interrupt."""
    xrd = needs_xrootd(facility)
    relay = Relay(xrd["cache_port"], rate=4 << 20)
    cfg["xcache_url"] = relay.url
    cfg["mount_concurrency"] = 1
    return {"relay": relay}


async def test_a_job_resumes_after_a_server_restart_without_refetching(facility, tmp_path, many):
    from af_lab.config import AFLab
    from af_lab.services import Services

    needs_xrootd(facility)
    cfg = copy.deepcopy(aflab_config(facility.state)["AFLab"])
    cfg.update(cache_dir=str(tmp_path / "cache"), state_dir=str(tmp_path / "state"), mount_concurrency=1)
    relay = Relay(facility.state.services["xrootd"]["cache_port"], rate=3 << 20)
    cfg["xcache_url"] = relay.url
    ws = tmp_path / "ws"
    ws.mkdir()
    try:
        first = Services(AFLab(config=Config({"AFLab": cfg})), root_dir=str(ws))
        m, created = await first.mounts.create({"did": many["did"], "source": "xcache"})
        assert created and m["state"] == "queued"
        while (await first.mounts.get(m["id"]))["files"]["done"] < 3:
            await asyncio.sleep(0.05)
        await first.close()  # the server stops mid-job
        from af_lab.mounts.store import Store

        store = Store(tmp_path / "state" / "mounts.sqlite")
        first_state = store.mount(m["id"])["state"]
        done_before = {f["path"]: os.stat(f["local_path"]).st_ino for f in store.files(m["id"], state="done")}
        fetched_before = store.counters()["files_fetched"]
        store.close()
        assert first_state == "fetching" and 3 <= len(done_before) < 12 and fetched_before == len(done_before)
        assert not (ws / m["target"]).exists(), "a half-fetched mount is not visible"

        second = Services(AFLab(config=Config({"AFLab": cfg})), root_dir=str(ws))
        listed = await second.mounts.list()  # still listed, and resumed without being asked
        assert [x["id"] for x in listed["mounts"]] == [m["id"]]
        for _ in range(1200):
            resumed = await second.mounts.get(m["id"])
            if resumed["state"] not in ("queued", "fetching"):
                break
            await asyncio.sleep(0.1)
        assert resumed["state"] == "ready", resumed
        usage = await second.mounts.cache_usage()
        assert usage["files_fetched"] == 12, "files complete before the restart were fetched again"
        for path, ino in done_before.items():
            assert os.stat(ws / m["target"] / path).st_ino == ino
        for name, data in many["files"].items():
            assert (ws / m["target"] / name).read_bytes() == data
        await second.close()
    finally:
        relay.close()


# ====================================================================== cancel, retry, failures


@settings(slow_xcache)
async def test_progress_cancel_then_retry(jp_fetch, jp_root_dir, aflab_settings, extras, big):
    relay = extras["relay"]
    m = await mount(jp_fetch, did=big["did"], source="xcache")
    for _ in range(600):
        m = (await api(jp_fetch, "GET", f"mounts/{m['id']}", expect=200))[1]["mount"]
        if m["active"] and 0 < m["active"][0]["bytes_done"] < m["active"][0]["bytes"]:
            break
        await asyncio.sleep(0.05)
    assert m["state"] == "fetching" and m["active"][0]["path"] == big["name"], m
    await asyncio.sleep(1.0)
    m = (await api(jp_fetch, "GET", f"mounts/{m['id']}", expect=200))[1]["mount"]
    assert m["rate_bytes_per_s"] > 0 and m["eta_s"] > 0 and 0 < m["bytes"]["done"] < m["bytes"]["total"], m

    _code, cancelled = await api(jp_fetch, "POST", f"mounts/{m['id']}/cancel", expect=200)
    assert cancelled["mount"]["state"] == "cancelled" and cancelled["mount"]["files"]["done"] == 0
    assert not os.path.lexists(Path(jp_root_dir) / m["target"])
    incoming = Path(aflab_settings["cache_dir"]) / "incoming"
    assert list(incoming.iterdir()) == [], "a cancelled download left a partial file"
    await api(jp_fetch, "POST", f"mounts/{m['id']}/cancel", expect=409)

    relay.rate = None  # full speed for the retry
    _code, retried = await api(jp_fetch, "POST", f"mounts/{m['id']}/retry", expect=200)
    assert retried["mount"]["state"] in ("queued", "fetching")
    m = await wait_for(jp_fetch, m["id"])
    assert m["state"] == "ready" and (Path(jp_root_dir) / m["target"] / big["name"]).read_bytes() == big["data"]


def dying_xcache(cfg, facility, tmp_path):
    """An XCache that dies 3 MiB into the first transfer (its relay closes and stops accepting)."""
    xrd = needs_xrootd(facility)
    relay = Relay(xrd["cache_port"], cut_after=3 << 20)
    cfg["xcache_url"] = relay.url
    return {"relay": relay}


@settings(dying_xcache)
async def test_xcache_down_mid_transfer(jp_fetch, jp_root_dir, aflab_settings, extras, big, facility):
    relay = extras["relay"]
    m = await wait_for(jp_fetch, (await mount(jp_fetch, did=big["did"], source="xcache"))["id"])
    assert relay.cut_done.is_set()
    assert m["state"] == "failed", m
    assert relay.url in m["message"] and "nothing was linked" in m["message"], m["message"]
    assert m["problems"][0]["path"] == big["name"]
    assert not (Path(jp_root_dir) / m["target"]).exists()
    assert list((Path(aflab_settings["cache_dir"]) / "incoming").iterdir()) == []
    assert (await cache_info(jp_fetch))["files"] == 0

    # With the default source order the local replica is read and the XCache is not needed.
    await api(jp_fetch, "DELETE", f"mounts/{m['id']}", expect=200)
    ok = await wait_for(jp_fetch, (await mount(jp_fetch, did=big["did"]))["id"])
    assert ok["state"] == "ready" and (Path(jp_root_dir) / ok["target"] / big["name"]).read_bytes() == big["data"]


async def test_checksum_mismatch_is_refused_and_fetched_from_another_replica(jp_fetch, jp_root_dir, aflab_settings, facility):
    good = os.urandom(1 << 20)
    name = f"mnt_{RUN_ID}_twice.bin"
    paths = register(facility, {name: good}, rses=(SITE1, SITE2))
    bad = bytearray(good)
    bad[1000:1010] = b"CORRUPTED!"
    paths[SITE1][name].write_bytes(bytes(bad))  # our own file: nothing shared is damaged

    m = await wait_for(jp_fetch, (await mount(jp_fetch, did=f"user.jdoe:{name}", prefer_rses=[SITE1]))["id"])
    assert m["state"] == "ready", m
    link = Path(jp_root_dir) / m["target"]
    assert link.is_symlink() and link.read_bytes() == good
    assert "adler32 mismatch" in m["problems"][0]["error"] and SITE1 in m["problems"][0]["error"]
    _code, files = await api(jp_fetch, "GET", f"mounts/{m['id']}/files", expect=200)
    assert files["files"][0]["source"] == f"{SITE2} (local)"
    assert (await cache_info(jp_fetch))["checksum_mismatches"] == 1


async def test_a_file_corrupt_everywhere_is_never_linked(jp_fetch, jp_root_dir, aflab_settings, facility):
    good = os.urandom(256 << 10)
    name = f"mnt_{RUN_ID}_bad.bin"
    paths = register(facility, {name: good}, rses=(SITE1, SITE2), dataset=f"mnt_{RUN_ID}_badds")
    for rse in (SITE1, SITE2):
        paths[rse][name].write_bytes(good[::-1])
    m = await wait_for(jp_fetch, (await mount(jp_fetch, did=f"user.jdoe:mnt_{RUN_ID}_badds"))["id"])
    assert m["state"] == "failed" and "adler32 mismatch" in m["message"], m
    assert m["files"]["failed"] == 1
    assert not (Path(jp_root_dir) / m["target"]).exists()
    cache = Path(aflab_settings["cache_dir"])
    assert [p for p in cache.rglob("*") if p.is_file()] == []
    assert (await cache_info(jp_fetch))["checksum_mismatches"] == 2


# ====================================================================== quota


def small_quota(cfg, facility, tmp_path):
    cfg["cache_quota_bytes"] = 1_300_000  # Run2012B (~1.05 MB) fits, Run2012B + ZZTo4mu (~0.5 MB) does not


@settings(small_quota)
async def test_quota_precheck_and_lru_eviction(jp_fetch, jp_root_dir, aflab_settings):
    run = await wait_for(jp_fetch, (await mount(jp_fetch, did="cms_opendata:Run2012B_DoubleMuParked"))["id"])
    assert run["state"] == "ready"

    _code, err = await api(jp_fetch, "POST", "mounts", {"did": "cms_opendata:ZZTo4mu"}, expect=507)
    e = err["error"]
    assert e["type"] == "insufficient_storage"
    _code, listing = await api(jp_fetch, "GET", "rucio/instances/demo/dids/cms_opendata:ZZTo4mu/content", expect=200)
    assert listing["complete"]
    dataset_bytes = sum(f["bytes"] for f in listing["items"])  # what Rucio says the dataset holds
    assert e["needed_bytes"] == dataset_bytes and e["available_bytes"] < e["needed_bytes"]
    assert f"needs {human_bytes(dataset_bytes)} more in the cache" in e["message"] and "held by your mounts" in e["message"]
    assert not (Path(jp_root_dir) / "af-data/cms_opendata/ZZTo4mu").exists()

    await api(jp_fetch, "DELETE", f"mounts/{run['id']}", expect=200)  # releases Run2012B: now evictable
    zz = await wait_for(jp_fetch, (await mount(jp_fetch, did="cms_opendata:ZZTo4mu"))["id"])
    assert zz["state"] == "ready"
    info = await cache_info(jp_fetch)
    assert info["used_bytes"] <= 1_300_000 and info["files_evicted"] >= 1
    # Least recently used first, and only as much as needed: the rest of Run2012B stays.
    assert 0 < info["files"] - 2 < 4
    # ZZTo4mu is pinned by its mount: a mount that needs its room is refused, nothing evicted.
    _code, err = await api(jp_fetch, "POST", "mounts", {"did": "cms_opendata:DAC21_CMS_opendata"}, expect=507)
    assert (await cache_info(jp_fetch))["files_evicted"] == info["files_evicted"]
    assert (Path(jp_root_dir) / zz["target"] / "ZZTo4mu_000.root").read_bytes()


def tiny_disk(cfg, facility, tmp_path):
    """The cache on a 3 MiB tmpfs with a generous quota: the disk, not the quota, runs out."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
    cfg["cache_dir"] = str(mnt / "cache")
    cfg["cache_quota_bytes"] = 10**12
    xrd = needs_xrootd(facility)
    relay = Relay(xrd["cache_port"], rate=4 << 20)
    cfg["xcache_url"] = relay.url
    return {"relay": relay, "tmpfs": mnt}


@settings(tiny_disk)
async def test_disk_full(jp_fetch, jp_root_dir, aflab_settings, extras, big, many):
    relay, tiny = extras["relay"], extras["tmpfs"]
    # Up front: 24 MiB cannot fit on a 3 MiB disk, whatever the quota says.
    _code, err = await api(jp_fetch, "POST", "mounts", {"did": big["did"]}, expect=507)
    assert "free on disk" in err["error"]["message"] and err["error"]["disk_free_bytes"] <= 3 << 20

    # Mid-transfer: the disk fills up (another writer) while 2 MiB are coming in.
    m = await mount(jp_fetch, did=f"user.jdoe:{next(iter(many['files']))}", source="xcache")
    filler = tiny / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * (256 << 10))
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    m = await wait_for(jp_fetch, m["id"])
    assert m["state"] == "failed" and "full" in m["message"], m
    assert not (Path(jp_root_dir) / m["target"]).exists()
    assert list((Path(aflab_settings["cache_dir"]) / "incoming").iterdir()) == []
    filler.unlink()
    relay.rate = None
    await api(jp_fetch, "POST", f"mounts/{m['id']}/retry", expect=200)
    assert (await wait_for(jp_fetch, m["id"]))["state"] == "ready"


# ====================================================================== bad input


async def test_a_did_that_does_not_exist(jp_fetch):
    _code, err = await api(jp_fetch, "POST", "mounts", {"did": "cms_opendata:NoSuchDataset"}, expect=404)
    assert err["error"]["type"] == "not_found" and "NoSuchDataset" in err["error"]["message"]


async def test_a_did_with_no_available_replica(jp_fetch, jp_root_dir, facility):
    name = f"mnt_{RUN_ID}_lost.bin"
    register(facility, {name: b"gone"}, rses=(SITE1,))
    with root_client(facility) as root:
        root.update_replicas_states(SITE1, [{"scope": "user.jdoe", "name": name, "state": "U"}])
    _code, err = await api(jp_fetch, "POST", "mounts", {"did": f"user.jdoe:{name}"}, expect=409)
    assert err["error"]["type"] == "no_replica" and err["error"]["files"] == [f"user.jdoe:{name}"]
    assert "no available replica" in err["error"]["message"]
    assert not (Path(jp_root_dir) / "af-data").exists()
    _code, listing = await api(jp_fetch, "GET", "mounts", expect=200)
    assert listing["mounts"] == []


@pytest.mark.parametrize("target", ["../../etc", "/etc/af-lab", "af-data/../../outside", "a/\nb"])
async def test_a_target_outside_the_workspace(jp_fetch, target):
    _code, err = await api(jp_fetch, "POST", "mounts", {"did": "cms_opendata:ZZTo4mu", "target": target}, expect=400)
    assert err["error"]["type"] == "bad_request" and err["error"]["field"] == "target"


async def test_a_target_through_a_symlink_out_of_the_workspace(jp_fetch, jp_root_dir, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (Path(jp_root_dir) / "escape").symlink_to(outside)
    _code, err = await api(jp_fetch, "POST", "mounts", {"did": "cms_opendata:ZZTo4mu", "target": "escape/zz"}, expect=400)
    assert "symbolic link" in err["error"]["message"]
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize(
    "body",
    [{"did": "cms_opendata:Z Z"}, {"did": "cms_opendata:zz;rm -rf ~"}, {"did": "cms_opendata:../../etc/passwd"},
     {"did": "no-colon"}, {"did": 42}, {}, {"did": "cms_opendata:ZZTo4mu", "mode": "fuse"},
     {"did": "cms_opendata:ZZTo4mu", "surprise": 1}, {"did": "cms_opendata:ZZTo4mu", "instance": "nope"},
     {"did": "cms_opendata:ZZTo4mu", "lifetime_days": -1}, {"did": "cms_opendata:ZZTo4mu", "treename": "a b"}],
)  # fmt: skip
async def test_odd_input_is_refused_with_a_clear_message(jp_fetch, body):
    _code, err = await api(jp_fetch, "POST", "mounts", body, expect=400)
    assert err["error"]["type"] == "bad_request" and err["error"]["message"]


async def test_an_existing_user_file_is_never_overwritten(jp_fetch, jp_root_dir):
    mine = Path(jp_root_dir) / "af-data/cms_opendata/ZZTo4mu"
    mine.parent.mkdir(parents=True)
    mine.write_text("my notes")
    _code, err = await api(jp_fetch, "POST", "mounts", {"did": "cms_opendata:ZZTo4mu"}, expect=409)
    assert "never overwrites" in err["error"]["message"] and mine.read_text() == "my notes"


async def test_a_mount_is_read_only_and_unmount_keeps_the_users_files(jp_fetch, jp_root_dir):
    m = await wait_for(jp_fetch, (await mount(jp_fetch, did="cms_opendata:ZZTo4mu", target="data/zz"))["id"])
    folder = Path(jp_root_dir) / "data/zz"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o555, "a mounted dataset is read-only"
    (folder.parent / "plots.ipynb").write_text("{}")  # the user's own work next to the mount
    _code, removed = await api(jp_fetch, "DELETE", f"mounts/{m['id']}", expect=200)
    assert removed["kept"] == []
    assert (folder.parent / "plots.ipynb").read_text() == "{}" and not os.path.lexists(folder)
    await api(jp_fetch, "GET", f"mounts/{m['id']}", expect=404)
    await api(jp_fetch, "DELETE", f"mounts/{m['id']}", expect=404)


def rucio_down(cfg, facility, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    cfg["rucio_instances"][0]["rucio_host"] = cfg["rucio_instances"][0]["auth_host"] = f"http://127.0.0.1:{port}"


@settings(rucio_down)
async def test_rucio_down(jp_fetch):
    _code, err = await api(jp_fetch, "POST", "mounts", {"did": "cms_opendata:ZZTo4mu"}, expect=503)
    assert err["error"]["type"] == "unavailable" and "demo" in err["error"]["message"]
    assert (await api(jp_fetch, "GET", "mounts", expect=200))[1]["mounts"] == []


async def test_fileset_of_a_cache_mount_lists_local_paths(jp_fetch, jp_root_dir):
    m = await wait_for(jp_fetch, (await mount(jp_fetch, did="cms_opendata:ZZTo4mu"))["id"])
    resp = await jp_fetch("af-lab", "mounts", m["id"], "fileset")
    fs = json.loads(resp.body)
    paths = list(fs["cms_opendata:ZZTo4mu"]["files"])
    assert paths == [str(Path(jp_root_dir) / m["target"] / f"ZZTo4mu_00{i}.root") for i in range(2)]
    shutil.copy(paths[0], Path(jp_root_dir) / "copy.root")  # a plain path any tool can open
