"""The demo facility's Rucio server and demo data, run for real (rucio + demo only).

One facility is brought up for the module in a fresh directory; the tests look at
it as the demo user ``jdoe`` through rucio-clients, then exercise reuse, restart,
stale PID files and failure paths. A second server in another directory checks that
two facilities in one process do not leak into each other.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import zlib
from pathlib import Path
from urllib.parse import urlparse

import pytest

from af_facility import rucio_server
from af_facility.base import FacilityState
from af_facility.demo_data import DemoData
from af_facility.facility import Facility
from af_facility.procs import LOOPBACK, ServiceError, cmdline, free_port, pid_alive
from af_facility.rucio_server import RucioServer, rucio_client, server_venv

# Small enough to register in a second; the 50,000 default is measured by hand.
BIG_FILES = 2000

pytestmark = pytest.mark.skipif(
    not (server_venv() / "bin" / "gunicorn").exists(),
    reason=f"Rucio server venv {server_venv()} not installed (see af_facility/rucio_server.py)",
)


def _fresh_dir(prefix: str) -> Path:
    # Not pytest's tmp_path: it is 0700, and the XRootD user must be able to traverse it.
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    return root


def _processes_of(root: Path) -> dict[int, str]:
    """Every live process whose command line names this state dir (server, workers, memcached)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and f"{root}/" in cmdline(int(entry.name)) and pid_alive(int(entry.name)):
            found[int(entry.name)] = cmdline(int(entry.name))
    return found


def _stop(state: FacilityState) -> None:
    DemoData(state).down()
    RucioServer(state).down()


def _adler32(path: Path) -> str:
    value = 1
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            value = zlib.adler32(chunk, value)
    return f"{value & 0xFFFFFFFF:08x}"


@pytest.fixture(scope="module")
def fac():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AF_DEMO_BIG_FILES", str(BIG_FILES))
        mp.delenv("AF_RUCIO_PORT", raising=False)
        root = _fresh_dir("af-rucio-test-")
        facility = Facility(root)
        try:
            facility.up(["rucio", "demo"], log=lambda *_: None)
            yield facility
        finally:
            _stop(facility.state)
            leftovers = _processes_of(root)
            shutil.rmtree(root, ignore_errors=True)
            assert not leftovers, f"processes left behind: {leftovers}"


@pytest.fixture(scope="module")
def other_root():
    """A second, independent state dir (failure paths, then a second server)."""
    root = _fresh_dir("af-rucio-test2-")
    try:
        yield root
    finally:
        _stop(FacilityState.load(root))
        leftovers = _processes_of(root)
        shutil.rmtree(root, ignore_errors=True)
        assert not leftovers, f"processes left behind: {leftovers}"


@pytest.fixture
def rucio_info(fac) -> dict:
    return fac.state.services["rucio"]


@pytest.fixture
def demo_info(fac) -> dict:
    return fac.state.services["demo"]


@pytest.fixture
def jdoe(rucio_info):
    with rucio_client(rucio_info["client_configs"]["jdoe"]) as client:
        yield client


@pytest.fixture
def blocked_port():
    """A loopback port somebody else listens on."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        s.listen()
        yield s.getsockname()[1]


# -- what the demo user sees ---------------------------------------------------------------------


def test_jdoe_logs_in_and_sees_scopes_and_rses(rucio_info, jdoe):
    assert rucio_info["url"] == f"http://{LOOPBACK}:{rucio_info['port']}"
    assert jdoe.whoami()["account"] == "jdoe"
    assert set(rucio_info["scopes"]) <= set(jdoe.list_scopes())
    owned = set(jdoe.list_scopes_for_account("jdoe"))
    assert {s for s, owner in rucio_info["scopes"].items() if owner == "jdoe"} <= owned
    assert set(rucio_info["rses"]) <= {r["rse"] for r in jdoe.list_rses()}
    for rse, path in rucio_info["rses"].items():
        (posix,) = [p for p in jdoe.get_protocols(rse) if p["scheme"] == "file"]
        assert posix["prefix"] == f"{path}/"
        assert Path(path).is_dir()
    attrs = {a["key"]: a["value"] for a in next(iter(jdoe.list_account_attributes("jdoe")))}
    assert str(attrs["admin"]) == "True"


def test_container_datasets_files_and_replicas_on_both_rses(rucio_info, demo_info, jdoe):
    scope, container = demo_info["container"].split(":")
    content = {d["name"] for d in jdoe.list_content(scope, container)}
    assert content == set(demo_info["datasets"])
    originals = Path(demo_info["originals"])
    for dataset, expected in demo_info["datasets"].items():
        files = list(jdoe.list_files(scope, dataset))
        assert sorted(f["name"] for f in files) == sorted(expected["files"])
        did = jdoe.get_did(scope, dataset)
        assert did["length"] == len(files)
        assert did["bytes"] == sum(f["bytes"] for f in files) == expected["bytes"]
        for replica in jdoe.list_replicas([{"scope": scope, "name": dataset}], schemes=["file"]):
            original = originals / dataset / replica["name"]
            assert replica["bytes"] == original.stat().st_size
            assert replica["adler32"] == _adler32(original)
            assert set(replica["states"]) == set(rucio_info["rses"])
            assert set(replica["states"].values()) == {"AVAILABLE"}
            for rse, pfns in replica["rses"].items():
                on_disk = Path(urlparse(pfns[0]).path)
                assert on_disk.is_relative_to(rucio_info["rses"][rse])
                assert filecmp.cmp(on_disk, original, shallow=False)


def test_downloads_from_each_rse_equal_the_originals(rucio_info, demo_info, jdoe, tmp_path):
    from rucio.client.downloadclient import DownloadClient

    scope = demo_info["scope"]
    originals = Path(demo_info["originals"])
    downloader = DownloadClient(client=jdoe)
    datasets = sorted(demo_info["datasets"])
    for rse, dataset in zip(sorted(rucio_info["rses"]), datasets, strict=False):  # one dataset per RSE
        results = downloader.download_dids([{"did": f"{scope}:{dataset}", "rse": rse, "base_dir": str(tmp_path / rse)}])
        assert {r["clientState"].name for r in results} == {"DONE"}
        got = sorted((tmp_path / rse).rglob("*.root"))
        assert [p.name for p in got] == sorted(demo_info["datasets"][dataset]["files"])
        for path in got:
            assert filecmp.cmp(path, originals / dataset / path.name, shallow=False)


def test_big_dataset_is_registered_consistently(demo_info, jdoe):
    scope, name = demo_info["big_dataset"].split(":")
    assert demo_info["big_files"] == BIG_FILES
    did = jdoe.get_did(scope, name)
    files = list(jdoe.list_files(scope, name))
    assert did["length"] == len(files) == len({f["name"] for f in files}) == demo_info["big_files"]
    assert did["bytes"] == sum(f["bytes"] for f in files)
    assert all(len(f["adler32"]) == 8 and f["bytes"] > 0 for f in files)
    replicas = list(jdoe.list_replicas([{"scope": scope, "name": name}], schemes=["file"]))
    assert len(replicas) == len(files)
    assert all(list(r["states"].values()) == ["AVAILABLE"] for r in replicas)
    # Catalogue only: the PFNs are computed but no bytes exist.
    pfn = next(iter(replicas[0]["pfns"]))
    assert not Path(urlparse(pfn).path).exists()


def test_user_skim_belongs_to_jdoe(demo_info, jdoe, tmp_path):
    scope, name = demo_info["user_dataset"].split(":")
    assert jdoe.get_did(scope, name)["account"] == "jdoe"
    files = list(jdoe.list_files(scope, name))
    assert sorted(f["name"] for f in files) == sorted(demo_info["user_files"])
    for replica in jdoe.list_replicas([{"scope": scope, "name": name}], schemes=["file"]):
        (pfn,) = next(iter(replica["rses"].values()))
        assert _adler32(Path(urlparse(pfn).path)) == replica["adler32"]


def test_files_are_nanoaod_like_with_a_z_peak_in_data(demo_info):
    import awkward as ak
    import numpy as np
    import uproot

    originals = Path(demo_info["originals"])
    for dataset, expected in demo_info["datasets"].items():
        for name in expected["files"]:
            path = originals / dataset / name
            assert 0.2e6 <= path.stat().st_size <= 2e6
            events = uproot.open(path)["Events"].arrays()
            for branch in ("nMuon", "Muon_pt", "Muon_eta", "Muon_phi", "Muon_mass", "Muon_charge",
                           "nElectron", "Electron_pt", "Electron_eta", "Electron_phi", "Electron_mass",
                           "Electron_charge", "MET_pt"):  # fmt: skip
                assert branch in events.fields
            assert ak.all(ak.num(events.Muon_pt) == events.nMuon)
            assert ak.all(abs(events.Muon_eta) < 2.4)
            assert np.allclose(ak.flatten(events.Muon_mass).to_numpy(), 0.1057, atol=1e-4)
            assert ak.all(events.Muon_pt[:, :-1] >= events.Muon_pt[:, 1:])  # sorted like NanoAOD

    data = Path(demo_info["originals"]) / "Run2012B_DoubleMuParked"
    events = uproot.concatenate({str(p): "Events" for p in data.glob("*.root")}, filter_name="Muon_*")
    pairs = events[ak.num(events.Muon_pt) >= 2]
    pt, eta, phi = (pairs[f"Muon_{v}"] for v in ("pt", "eta", "phi"))
    opposite = (pairs.Muon_charge[:, 0] * pairs.Muon_charge[:, 1]) < 0
    mass = np.sqrt(2 * pt[:, 0] * pt[:, 1] * (np.cosh(eta[:, 0] - eta[:, 1]) - np.cos(phi[:, 0] - phi[:, 1])))
    counts, edges = np.histogram(ak.to_numpy(mass[opposite]), bins=np.arange(60, 122, 2))
    peak = edges[np.argmax(counts)]
    assert 86 <= peak <= 96
    assert counts.max() > 4 * np.median(counts)


def test_storage_is_readable_by_other_users_and_secrets_are_not(fac, rucio_info):
    rse_root = fac.root / "rse"
    for dirpath, _, filenames in os.walk(rse_root):
        assert os.stat(dirpath).st_mode & 0o005 == 0o005, dirpath
        for f in filenames:
            assert os.stat(os.path.join(dirpath, f)).st_mode & 0o004, f
    for cfg in rucio_info["client_configs"].values():
        assert os.stat(cfg).st_mode & 0o077 == 0
        assert "[database]" not in Path(cfg).read_text()  # would switch rucio-clients to server mode


def test_xrootd_protocol_follows_the_xrootd_service(fac, rucio_info, demo_info):
    """The ``root`` protocol of SITE1 is added, re-ported and removed with the XRootD service."""
    rse = "SITE1_USERDISK"
    did = [{"scope": demo_info["scope"], "name": next(iter(demo_info["datasets"]))}]
    demo = DemoData(fac.state)
    try:
        for port in (free_port(), free_port()):
            fac.state.services["xrootd"] = {"available": True, "origin_port": port}
            demo.up()
            with rucio_client(rucio_info["client_configs"]["jdoe"]) as jdoe:
                (proto,) = [p for p in jdoe.get_protocols(rse) if p["scheme"] == "root"]
                assert (proto["hostname"], proto["port"]) == (LOOPBACK, port)
                assert proto["domains"]["wan"]["write"] is None  # read-only
                for replica in jdoe.list_replicas(did, schemes=["root"], rse_expression=rse):
                    (pfn,) = replica["rses"][rse]
                    assert pfn.startswith(f"root://{LOOPBACK}:{port}//rse/{rse}/")  # absolute path
                    # The origin's localroot is <state>: the same path names the posix replica.
                    assert (fac.root / urlparse(pfn).path.lstrip("/")).is_file()
        fac.state.services["xrootd"] = {"available": False, "reason": "test"}
        demo.up()
        with rucio_client(rucio_info["client_configs"]["jdoe"]) as jdoe:
            assert not [p for p in jdoe.get_protocols(rse) if p["scheme"] == "root"]
    finally:
        fac.state.services.pop("xrootd", None)
        demo.up()


def test_root_pfns_are_served_by_the_real_xrootd_origin(fac, rucio_info, demo_info, tmp_path):
    """End to end: Rucio's root:// PFN, fetched with xrdcp from the facility's XRootD origin."""
    from af_facility.base import Unavailable
    from af_facility.xrootd import XRootD

    if not shutil.which("xrdcp"):
        pytest.skip("xrdcp not installed")
    xrootd = XRootD(fac.state)
    try:
        info = xrootd.up()
    except Unavailable as why:
        pytest.skip(f"XRootD not available here: {why}")
    demo = DemoData(fac.state)
    try:
        fac.state.services["xrootd"] = {**info, "available": True}
        demo.up()
        dataset, expected = next(iter(demo_info["datasets"].items()))
        with rucio_client(rucio_info["client_configs"]["jdoe"]) as jdoe:
            (replica, *_) = jdoe.list_replicas([{"scope": demo_info["scope"], "name": dataset}], schemes=["root"])
        (pfn,) = replica["rses"]["SITE1_USERDISK"]
        subprocess.run(["xrdcp", "-f", "-s", pfn, str(tmp_path / "got.root")], check=True, timeout=60)
        assert filecmp.cmp(
            tmp_path / "got.root", Path(demo_info["originals"]) / dataset / replica["name"], shallow=False
        )
    finally:
        xrootd.down()
        fac.state.services.pop("xrootd", None)
        demo.up()


# -- lifecycle -------------------------------------------------------------------------------------


def test_second_up_reuses_the_running_server(fac, rucio_info):
    server = RucioServer(fac.state)
    pids = (server.server.read_pid(), server.memcached.read_pid())
    bootstrap_log = Path(rucio_info["logs"]["bootstrap"])
    log_size = bootstrap_log.stat().st_size
    t0 = time.monotonic()
    report = fac.up(["rucio", "demo"], log=lambda *_: None)
    elapsed = time.monotonic() - t0
    assert elapsed < 10, f"reuse took {elapsed:.1f} s"
    assert (server.server.read_pid(), server.memcached.read_pid()) == pids
    assert bootstrap_log.stat().st_size == log_size  # no second bootstrap
    assert report["rucio"]["port"] == rucio_info["port"]
    assert report["rucio"]["accounts"] == rucio_info["accounts"]
    assert report["demo"]["big_files"] == fac.state.services["demo"]["big_files"]


def test_down_stops_everything_and_up_restarts_on_the_same_database(fac, rucio_info, demo_info):
    before = _processes_of(fac.root)
    assert len(before) >= 3  # gunicorn master + worker, memcached
    _stop(fac.state)
    assert not any(pid_alive(pid) for pid in before)
    assert not _processes_of(fac.root)
    assert not RucioServer(fac.state).running()

    log_size = Path(rucio_info["logs"]["bootstrap"]).stat().st_size
    fac.up(["rucio", "demo"], log=lambda *_: None)
    info = fac.state.services["rucio"]
    assert info["port"] == rucio_info["port"]  # still free, so kept
    assert Path(rucio_info["logs"]["bootstrap"]).stat().st_size == log_size
    with rucio_client(info["client_configs"]["jdoe"]) as jdoe:
        scope, container = demo_info["container"].split(":")
        assert {d["name"] for d in jdoe.list_content(scope, container)} == set(demo_info["datasets"])


def test_stale_pid_files_are_ignored_and_strangers_never_killed(fac):
    server = RucioServer(fac.state)
    _stop(fac.state)
    stranger = subprocess.Popen(["sleep", "120"])
    gone = subprocess.Popen(["true"])
    gone.wait()
    try:
        server.server.pid_file.write_text(f"{stranger.pid}\n")  # alive, but not ours
        server.memcached.pid_file.write_text(f"{gone.pid}\n")  # dead
        assert not server.running()
        server.down()  # must not touch the stranger
        assert stranger.poll() is None
        server.server.pid_file.write_text(f"{stranger.pid}\n")
        info = RucioServer(fac.state).up()
        assert stranger.poll() is None
        assert server.server.read_pid() not in (stranger.pid, gone.pid)
        assert server.running() and server.memcached.is_running()
        with rucio_client(info["client_configs"]["jdoe"]) as jdoe:
            assert jdoe.whoami()["account"] == "jdoe"
    finally:
        stranger.send_signal(signal.SIGKILL)
        stranger.wait()


# -- failure paths and a second facility -------------------------------------------------------------


def test_taken_port_is_a_clear_error(other_root, blocked_port, monkeypatch):
    monkeypatch.setenv("AF_RUCIO_PORT", str(blocked_port))
    server = RucioServer(FacilityState.load(other_root))
    with pytest.raises(ServiceError) as err:
        server.up()
    assert err.value.service == "rucio"
    assert str(blocked_port) in str(err.value)
    assert str(server.server.log_file) in str(err.value)
    assert not _processes_of(other_root)


def test_server_that_cannot_bind_reports_its_log(other_root, blocked_port, monkeypatch):
    """Lost race for the port: gunicorn itself fails; the error carries its log tail."""
    monkeypatch.setenv("AF_RUCIO_PORT", str(blocked_port))
    monkeypatch.setattr(rucio_server, "port_is_free", lambda port: True)
    server = RucioServer(FacilityState.load(other_root))
    with pytest.raises(ServiceError) as err:
        server.up()
    assert err.value.service == "rucio"
    assert str(server.server.log_file) in str(err.value)
    assert str(blocked_port) in str(err.value)  # gunicorn's own complaint, from the log tail
    assert not _processes_of(other_root)  # memcached started by this up() was stopped too


def test_two_facilities_in_one_process_stay_apart(fac, rucio_info, demo_info, other_root, tmp_path):
    """rucio-clients caches its config and RSE descriptions process-wide; rucio_client()
    must switch both, or the second facility's uploads would land in the first one's RSE."""
    from rucio.client.downloadclient import DownloadClient
    from rucio.client.uploadclient import UploadClient

    other = FacilityState.load(other_root)
    other_info = RucioServer(other).up()  # also: recovers after the failures above
    assert other_info["url"] != rucio_info["url"]
    scope, dataset = demo_info["scope"], next(iter(demo_info["datasets"]))
    with rucio_client(rucio_info["client_configs"]["jdoe"]) as first:  # fills the RSE cache
        DownloadClient(client=first).download_dids([{"did": f"{scope}:{dataset}", "base_dir": str(tmp_path / "dl")}])

    payload = tmp_path / "hello.txt"
    payload.write_text("second facility\n")
    with rucio_client(other_info["client_configs"]["jdoe"]) as second:
        assert not list(second.list_dids(scope, {"name": "*"}))
        upload = {"path": str(payload), "rse": "SITE1_USERDISK", "did_scope": "user.jdoe", "did_name": payload.name}
        UploadClient(_client=second).upload([upload])
        (replica,) = second.list_replicas([{"scope": "user.jdoe", "name": payload.name}], schemes=["file"])
        (pfn,) = replica["rses"]["SITE1_USERDISK"]
    landed = Path(urlparse(pfn).path)
    assert landed.is_relative_to(other_root / "rse") and landed.read_text() == payload.read_text()
    assert not list((fac.root / "rse").rglob(payload.name))
    with rucio_client(rucio_info["client_configs"]["jdoe"]) as first:
        assert not list(first.list_dids("user.jdoe", {"name": payload.name}))
    RucioServer(other).down()
    assert not _processes_of(other_root)


@pytest.mark.skipif(not os.environ.get("AF_TEST_RUCIO_POSTGRES"), reason="opt-in (~25 s): AF_TEST_RUCIO_POSTGRES=1")
@pytest.mark.skipif(
    not (rucio_server.PG_BIN / "postgres").exists()
    or not list(server_venv().glob("lib/python3*/site-packages/psycopg-*.dist-info")),
    reason="PostgreSQL binaries or psycopg (in the server venv) missing",
)
def test_postgres_option(monkeypatch):
    """AF_RUCIO_DB=postgres: a private socket-only cluster; the bulk path works there too,
    and the choice sticks to the state dir (a later up without the variable keeps it)."""
    monkeypatch.setenv("AF_RUCIO_DB", "postgres")
    monkeypatch.setenv("AF_DEMO_BIG_FILES", "300")
    root = _fresh_dir("af-rucio-pg-")
    state = FacilityState.load(root)
    server = RucioServer(state)
    try:
        info = server.up()
        assert info["database"] == "postgres" and server.postgres.is_running()
        big = DemoData(state)._register_big_dataset()
        with rucio_client(info["client_configs"]["jdoe"]) as jdoe:
            assert jdoe.whoami()["account"] == "jdoe"
            scope, name = "cms_opendata", "SingleMu_50k"
            files = list(jdoe.list_files(scope, name))
            assert len(files) == big["length"] == 300
            assert jdoe.get_did(scope, name)["bytes"] == sum(f["bytes"] for f in files)

        server.down()
        assert not _processes_of(root)
        monkeypatch.delenv("AF_RUCIO_DB")
        again = RucioServer(state).up()
        assert again["database"] == "postgres" and again["port"] == info["port"]
        with rucio_client(again["client_configs"]["jdoe"]) as jdoe:
            assert jdoe.get_did("cms_opendata", "SingleMu_50k")["length"] == 300
    finally:
        server.down()
        leftovers = _processes_of(root)
        shutil.rmtree(root, ignore_errors=True)
        assert not leftovers, f"processes left behind: {leftovers}"


def test_missing_server_venv_names_the_fix(monkeypatch):
    monkeypatch.setenv("AF_RUCIO_SERVER_VENV", "/nonexistent/venv-rucio")
    root = _fresh_dir("af-rucio-novenv-")
    try:
        with pytest.raises(ServiceError) as err:
            RucioServer(FacilityState.load(root)).up()
        assert err.value.service == "rucio"
        assert "AF_RUCIO_SERVER_VENV" in str(err.value) and "pip install" in str(err.value)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_demo_data_needs_rucio():
    root = _fresh_dir("af-rucio-nodemo-")
    try:
        with pytest.raises(ServiceError) as err:
            DemoData(FacilityState.load(root)).up()
        assert err.value.service == "demo"
    finally:
        shutil.rmtree(root, ignore_errors=True)
