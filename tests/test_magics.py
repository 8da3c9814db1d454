"""The kernel side: FacilityClient and the %rucio / %af_cluster magics, over real HTTP.

The in-process Jupyter server (pytest-jupyter) listens on 127.0.0.1; the client and an
IPython InteractiveShell call it with ``requests`` from a worker thread (the server runs
on the test's event loop, which must keep turning). One test starts a real kernel
through the server's REST API and lets it find the server by its parent pid. Rucio,
OpenBao, the XRootD cache and the Dask workers are the real ones (no mocks).
"""

from __future__ import annotations

import asyncio
import copy
import filecmp
import functools
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
import zlib
from pathlib import Path
from urllib.parse import urlparse

import pytest
from condor_standin.profiles import LOCAL
from condor_standin.profiles import settings as cluster_settings
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from af_facility.lab import aflab_config
from af_facility.rucio_server import rucio_client
from af_lab.kernel import FacilityClient, FacilityError
from af_lab.kernel.magics import CLUSTER, RUCIO

CONTAINER = "cms_opendata:DAC21_CMS_opendata"
DATASETS = {"cms_opendata:Run2012B_DoubleMuParked", "cms_opendata:SMHiggsToZZTo4L", "cms_opendata:ZZTo4mu"}
BIG = "cms_opendata:SingleMu_50k"
SITE1, SITE2 = "SITE1_USERDISK", "SITE2_USERDISK"
RUN = uuid.uuid4().hex[:6]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
ENV_NAMES = ("AF_LAB_SERVER_URL", "AF_LAB_SERVER_TOKEN", "AF_LAB_SERVER_ROOT", "JUPYTERHUB_SERVICE_URL",
             "JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN")  # fmt: skip


# ====================================================================== fixtures and helpers


@pytest.fixture
def aflab_settings(request, tmp_path):
    """Facility tests: the facility's c.AFLab; all: a private cache/state and a small local cluster profile.

    ``request.param(cfg, facility, tmp_path)`` may edit it.
    """
    cfg: dict = {}
    if request.node.get_closest_marker("facility"):
        facility = request.getfixturevalue("facility")
        cfg = copy.deepcopy(aflab_config(facility.state)["AFLab"])
        edit = getattr(request, "param", None)
        if edit:
            edit(cfg, facility, tmp_path)
    cfg.update(cache_dir=str(tmp_path / "cache"), state_dir=str(tmp_path / "state"))
    cfg.update(cluster_settings(cluster_profiles={"local": LOCAL}))
    return cfg


@pytest.fixture
def jp_server_config(aflab_settings):
    # dask-labextension on, as in a session: cluster dashboards go through the Jupyter server's proxy.
    return {
        "ServerApp": {
            "jpserver_extensions": {"af_lab": True, "dask_labextension": True},
            "allow_unauthenticated_access": False,
        },
        "AFLab": aflab_settings,
    }


@pytest.fixture
def server(jp_serverapp, http_server, jp_http_port, jp_base_url, jp_root_dir) -> dict:
    """The in-process server as a kernel sees it (``http_server``: tornado accepting on the port)."""
    return {
        "url": f"http://127.0.0.1:{jp_http_port}{jp_base_url}",
        "token": jp_serverapp.identity_provider.token,
        "root": str(jp_root_dir),
    }


@pytest.fixture
def fac(server) -> FacilityClient:
    return FacilityClient(server["url"], server["token"], root_dir=server["root"])


@pytest.fixture
def shell(monkeypatch):
    """IPython's InteractiveShell with af_lab loaded; the server is found through the explicit environment
    (the kernel test below covers discovery by parent pid)."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    sh = InteractiveShell.instance()
    sh.extension_manager.load_extension("af_lab")
    yield sh
    sh.extension_manager.unload_extension("af_lab")


@pytest.fixture
def env_server(shell, server, monkeypatch):
    monkeypatch.setenv("AF_LAB_SERVER_URL", server["url"])
    monkeypatch.setenv("AF_LAB_SERVER_TOKEN", server["token"])
    monkeypatch.setenv("AF_LAB_SERVER_ROOT", server["root"])
    return shell


async def blocking(fn, *args, **kwargs):
    """``fn`` in a worker thread, so the server on this loop keeps answering.

    Not asyncio.to_thread: it copies the context, and jupyter_client's sync wrappers would find
    the server's running loop in a context variable there.
    """
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args, **kwargs))


class Run:
    """What one magic gave: its value, or the exception, and everything it printed or displayed."""

    def __init__(self, value=None, error=None, stdout="", stderr="", outputs=()):
        self.value, self.error, self.stdout, self.stderr, self.outputs = value, error, stdout, stderr, list(outputs)

    @property
    def lines(self) -> list[str]:
        """The text of every display (progress lines included), in order."""
        return [o.data.get("text/plain", "") for o in self.outputs]

    def text(self) -> str:
        return "\n".join([self.stdout, self.stderr, *(json.dumps(o.data) for o in self.outputs)])


def _run(sh, magic: str, line: str) -> Run:
    with capture_output() as cap:
        try:
            value, error = sh.run_line_magic(magic, line), None
        except (Exception, KeyboardInterrupt) as exc:
            value, error = None, exc
    return Run(value, error, cap.stdout, cap.stderr, cap.outputs)


async def magic(sh, magic: str, line: str, raises: type | None = None) -> Run:
    """Run ``%magic line`` off the event loop (the server needs it); fail on an unexpected error."""
    run = await blocking(_run, sh, magic, line)
    if raises is None and run.error is not None:
        raise run.error
    if raises is not None:
        assert isinstance(run.error, raises), f"%{magic} {line}: expected {raises.__name__}, got {run.error!r}"
    return run


async def cell(sh, code: str) -> Run:
    """Run a whole cell, as a notebook would: errors are shown, not raised."""

    def go():
        with capture_output() as cap:
            result = sh.run_cell(code)
        return Run(result.result, result.error_in_exec, cap.stdout, cap.stderr, cap.outputs)

    return await blocking(go)


def originals(facility, dataset: str) -> dict[str, Path]:
    return {p.name: p for p in (Path(facility.state.services["demo"]["originals"]) / dataset).iterdir()}


def register_on(facility, rse: str, name: str, data: bytes) -> str:
    """A real file replica of ``user.jdoe:name`` on ``rse`` only (as the site admin)."""
    scope = "user.jdoe"
    with rucio_client(facility.state.services["rucio"]["client_configs"]["root"]) as root:
        pfn = root.lfns2pfns(rse, [f"{scope}:{name}"], operation="write", scheme="file")[f"{scope}:{name}"]
        path = Path(urlparse(pfn).path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        adler = f"{zlib.adler32(data) & 0xFFFFFFFF:08x}"
        root.add_replicas(rse, [{"scope": scope, "name": name, "bytes": len(data), "adler32": adler}])
    return f"{scope}:{name}"


# ====================================================================== without a facility


def test_loading_the_magics_imports_nothing_of_the_server(tmp_path):
    code = (
        "import sys\n"
        "import af_lab\n"
        "from af_lab.kernel import FacilityClient\n"
        "assert 'IPython' not in sys.modules, 'the plain client needs no IPython'\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "sh = InteractiveShell.instance()\n"
        "sh.run_line_magic('load_ext', 'af_lab')\n"
        "assert sh.find_line_magic('rucio') and sh.find_line_magic('af_cluster')\n"
        "heavy = ('tornado', 'jupyter_server', 'af_lab.app', 'af_lab.handlers', 'af_lab.services', 'distributed')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


async def test_usage_errors_are_one_line(shell):
    cases = [
        ("rucio", "", "missing subcommand"),
        ("rucio", "frobnicate x", "unknown subcommand 'frobnicate'"),
        ("rucio", "mount", "required: SCOPE:NAME"),
        ("rucio", "search cms_opendata:* --type files", "invalid choice: 'files'"),
        ("rucio", "search cms_opendata:* --limit 0", "above 0"),
        ("rucio", 'ls "cms_opendata:x', "No closing quotation"),
        ("rucio", "publish --scope user.jdoe", "required: PATH"),
        ("af_cluster", "explode", "unknown subcommand 'explode'"),
        ("af_cluster", "scale abc many", "expected a whole number, got 'many'"),
        ("af_cluster", "adapt abc 1", "required: MAX"),
    ]
    for name, line, words in cases:
        run = await magic(shell, name, line, raises=UsageError)
        message = str(run.error)
        assert words in message and "\n" not in message, (line, message)
    # In a cell the notebook shows just that line, no traceback.
    shown = await cell(shell, "%rucio frobnicate x")
    assert isinstance(shown.error, UsageError)
    assert "UsageError: %rucio: unknown subcommand" in shown.stderr and "Traceback" not in shown.text()


def test_help_documents_every_subcommand(shell):
    for name, parsers in (("rucio", RUCIO), ("af_cluster", CLUSTER)):
        doc = shell.find_line_magic(name).__doc__
        for sub in parsers:
            assert re.search(rf"^\s*%{name} {sub}\b", doc, re.M), f"%{name}? does not document '{sub}'"
    info = shell.object_inspect("rucio", detail_level=0)  # what %rucio? shows
    assert info["found"] and "%rucio publish" in (info.get("docstring") or "")


def test_discovery_without_a_server_says_what_to_set(monkeypatch, tmp_path):
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    with pytest.raises(FacilityError) as err:
        FacilityClient.discover()
    assert "AF_LAB_SERVER_URL" in str(err.value) and "AF_LAB_SERVER_TOKEN" in str(err.value)


def test_discovery_reads_the_parent_servers_info_file(monkeypatch, tmp_path):
    """The server file of this process's parent is used; another server's is not (real files, no server)."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    token = uuid.uuid4().hex
    other = {"pid": 1, "url": "http://localhost:9999/", "token": "other", "root_dir": "/elsewhere"}
    (tmp_path / "jpserver-1.json").write_text(json.dumps(other))
    mine = {"pid": os.getppid(), "url": "http://localhost:8123/lab-base/", "token": token, "root_dir": str(tmp_path)}
    (tmp_path / f"jpserver-{os.getppid()}.json").write_text(json.dumps(mine))
    found = FacilityClient.discover()
    assert found.url == "http://127.0.0.1:8123/lab-base/" and found.root_dir == str(tmp_path)
    assert token not in repr(found) and token not in repr(vars(found))


# ====================================================================== Rucio through the magics


@pytest.mark.facility
async def test_search_wildcards_type_filter_paging_and_limit(env_server, fac):
    everything = await blocking(fac.search, "cms_opendata:*", type="dataset")
    assert DATASETS | {BIG} <= set(everything.dids) and {d["type"] for d in everything} == {"dataset"}
    assert everything.pages == 1

    # A page size of 2 pages through the server's cursor and gets the same DIDs.
    run = await magic(env_server, "rucio", "search cms_opendata:* --type dataset --page-size 2")
    assert sorted(run.value.dids) == sorted(everything.dids)
    assert run.value.pages == -(-len(everything) // 2) > 1

    run = await magic(env_server, "rucio", "search cms_opendata:* --type all --limit 3")
    assert len(run.value) == 3

    run = await magic(env_server, "rucio", "search cms_opendata:ZZTo4mu* --type file")
    files = run.value
    assert set(files.dids) == {"cms_opendata:ZZTo4mu_000.root", "cms_opendata:ZZTo4mu_001.root"}
    assert all(d["type"] == "file" and d["bytes"] > 0 for d in files)
    html = files._repr_html_()
    assert "<table" in html and "cms_opendata:ZZTo4mu_000.root" in html
    assert "cms_opendata:ZZTo4mu_001.root" in repr(files) and "2 DIDs" in repr(files)

    run = await magic(env_server, "rucio", f"search {CONTAINER.split(':')[0]}:DAC21* --type container")
    assert run.value.dids == [CONTAINER]


@pytest.mark.facility
async def test_search_has_no_cap(env_server):
    """Every one of the 50,000 files, paged through; the table shows a few, the list holds them all."""
    run = await magic(env_server, "rucio", "search cms_opendata:Run2012B_SingleMu_* --type file")
    assert len(run.value) == 50_000 == len(set(run.value.dids)) and run.value.pages == 50
    assert "49,950 more" in repr(run.value)


@pytest.mark.facility
async def test_ls_container_dataset_and_file(env_server, facility):
    run = await magic(env_server, "rucio", f"ls {CONTAINER}")
    assert set(run.value.dids) == DATASETS and all(d["bytes"] > 0 and d["length"] > 0 for d in run.value)

    run = await magic(env_server, "rucio", "ls cms_opendata:ZZTo4mu")
    sizes = {name: p.stat().st_size for name, p in originals(facility, "ZZTo4mu").items()}
    assert {d["name"]: d["bytes"] for d in run.value} == sizes
    assert all(sorted(d["rses"]) == [SITE1, SITE2] and len(d["adler32"]) == 8 for d in run.value)
    assert SITE1 in repr(run.value) and "adler32" in run.value._repr_html_()

    run = await magic(env_server, "rucio", "ls cms_opendata:ZZTo4mu_000.root --no-replicas")
    (only,) = run.value
    assert only["did"] == "cms_opendata:ZZTo4mu_000.root" and sorted(only["rses"]) == [SITE1, SITE2]


@pytest.mark.facility
async def test_bad_and_unknown_dids_give_the_servers_message(env_server, fac):
    run = await magic(env_server, "rucio", "ls not-a-did", raises=FacilityError)
    assert run.error.status == 400 and "'not-a-did' is not a valid DID" in str(run.error)
    assert "scope:name" in str(run.error)

    run = await magic(env_server, "rucio", "mount cms_opendata:no_such_dataset_xyz", raises=FacilityError)
    assert run.error.status == 404 and "cms_opendata:no_such_dataset_xyz" in str(run.error)

    run = await magic(env_server, "rucio", "search nocolon", raises=FacilityError)
    assert run.error.status == 400 and "scope:name" in str(run.error)

    # A notebook cell shows the message alone: no traceback, no HTML.
    shown = await cell(env_server, "%rucio ls cms_opendata:no_such_dataset_xyz")
    text = ANSI.sub("", shown.text())
    assert isinstance(shown.error, FacilityError)
    assert "af-lab error (404)" in text and "no_such_dataset_xyz" in text
    assert "Traceback" not in text and "<html" not in text.lower()

    # A route the server does not have answers with an HTML page: the client says what it means instead.
    with pytest.raises(FacilityError) as err:
        await blocking(fac.request, "GET", "no/such/route")
    assert err.value.status == 404 and "<" not in str(err.value) and "af-lab server extension" in str(err.value)


# ====================================================================== mounts


@pytest.mark.facility
async def test_mount_waits_with_one_progress_line_and_gives_readable_paths(env_server, facility, jp_root_dir):
    run = await magic(env_server, "rucio", "mount cms_opendata:Run2012B_DoubleMuParked")
    paths = run.value
    wanted = originals(facility, "Run2012B_DoubleMuParked")
    assert sorted(Path(p).name for p in paths) == sorted(wanted)
    for p in paths:
        assert Path(p).is_relative_to(jp_root_dir)
        assert filecmp.cmp(wanted[Path(p).name], p, shallow=False)  # the real bytes, read through the link
    # One display, updated in place: every output carries the same display id.
    ids = {o.transient.get("display_id") for o in run.outputs}
    assert len(ids) == 1 and None not in ids and not run.outputs[0].update
    assert all(o.update for o in run.outputs[1:])
    assert "ready: 4/4 files" in run.lines[-1]
    assert paths.mount["state"] == "ready"

    listed = (await magic(env_server, "rucio", "mounts")).value
    assert [(m["did"], m["state"]) for m in listed] == [("cms_opendata:Run2012B_DoubleMuParked", "ready")]
    assert "Run2012B_DoubleMuParked" in listed._repr_html_()

    # Mounting it again is the same mount, ready at once.
    again = await magic(env_server, "rucio", "mount cms_opendata:Run2012B_DoubleMuParked")
    assert sorted(again.value) == sorted(paths) and again.value.mount["id"] == paths.mount["id"]

    no_wait = await magic(env_server, "rucio", "mount cms_opendata:ZZTo4mu --no-wait")
    assert no_wait.value["did"] == "cms_opendata:ZZTo4mu" and no_wait.value["id"] in repr(no_wait.value)
    await blocking(env_server.find_magic("rucio").__self__.client.wait_mount, no_wait.value["id"])
    await magic(env_server, "rucio", f"unmount {no_wait.value['id'][:8]}")
    assert not (Path(jp_root_dir) / no_wait.value["target"]).exists()


@pytest.mark.facility
async def test_stream_mount_gives_the_fileset(env_server, facility):
    xrd = facility.state.services.get("xrootd", {})
    if not xrd.get("available"):
        pytest.skip(f"XRootD is not available here: {xrd.get('reason', 'not started')}")
    run = await magic(env_server, "rucio", "mount cms_opendata:ZZTo4mu --mode stream")
    fileset = run.value
    assert list(fileset) == ["cms_opendata:ZZTo4mu"]
    files = fileset["cms_opendata:ZZTo4mu"]["files"]
    assert sorted(u.rsplit("/", 1)[1] for u in files) == sorted(originals(facility, "ZZTo4mu"))
    assert all(u.startswith("root://") and tree == "Events" for u, tree in files.items())


# ====================================================================== publish


@pytest.mark.facility
async def test_publish_a_file_and_find_its_did(env_server, fac, jp_root_dir, tmp_path):
    data = os.urandom(64 * 1024 + 3)
    local = Path(jp_root_dir) / "results" / f"hist_{RUN}.root"
    local.parent.mkdir(parents=True)
    local.write_bytes(data)
    name = f"magic_{RUN}.root"
    run = await magic(env_server, "rucio", f"publish {local} --scope user.jdoe --name {name} --lifetime 1")
    assert list(run.value) == [f"user.jdoe:{name}"] and run.value.did == f"user.jdoe:{name}"
    assert len({o.transient.get("display_id") for o in run.outputs}) == 1 and "done" in run.lines[-1]
    found = await blocking(fac.search, f"user.jdoe:magic_{RUN}*", type="file")
    assert [(d["did"], d["bytes"]) for d in found] == [(f"user.jdoe:{name}", len(data))]
    assert local.read_bytes() == data

    # A scope jdoe does not own: the server's answer, as it is.
    run = await magic(
        env_server, "rucio", f"publish {local} --scope cms_opendata --name x_{RUN}.root", raises=FacilityError
    )
    assert run.error.status == 403 and "does not own scope cms_opendata" in str(run.error)
    # Outside the workspace: refused before anything is sent.
    outside = tmp_path / "outside.root"
    outside.write_bytes(b"x")
    run = await magic(env_server, "rucio", f"publish {outside}", raises=FacilityError)
    assert "outside the Jupyter workspace" in str(run.error)


# ====================================================================== Dask clusters


async def test_cluster_new_client_scale_close(env_server, fac):
    from distributed import Client

    run = await magic(env_server, "af_cluster", "new --profile local --workers 1 --name magic")
    client = run.value
    try:
        assert isinstance(client, Client)
        assert await blocking(lambda: client.submit(sum, [1, 2, 3]).result(timeout=60)) == 6
        (cluster,) = await blocking(fac.clusters)
        assert cluster["name"] == "magic" and cluster["state"] == "running"
        assert client.scheduler.address == cluster["scheduler_address"]
        assert "magic" in run.stdout and cluster["id"][:8] in run.stdout
        # One dashboard link, the proxied one: printed by the magic and given by the client.
        assert "/dask/dashboard/" in cluster["dashboard_url"]
        assert client.dashboard_link == cluster["dashboard_url"]
        assert f"dashboard {cluster['dashboard_url']}" in run.stdout

        short = cluster["id"][:8]
        listed = (await magic(env_server, "af_cluster", "list")).value
        assert [c["id"] for c in listed] == [cluster["id"]] and short in repr(listed)
        scaled = (await magic(env_server, "af_cluster", f"scale {short} 2")).value
        assert scaled["requested_workers"] == 2
        adapting = (await magic(env_server, "af_cluster", "adapt magic 0 2")).value
        assert adapting["adapt"] == {"minimum": 0, "maximum": 2}
        same = (await magic(env_server, "af_cluster", "client")).value
        assert same is client  # the only running cluster, and this kernel's client for it

        await magic(env_server, "af_cluster", f"close {short}")
        assert client.status == "closed"
        assert list(await blocking(fac.clusters)) == []
        run = await magic(env_server, "af_cluster", "client", raises=FacilityError)
        assert "No cluster is running" in str(run.error)
        run = await magic(env_server, "af_cluster", f"scale {short} 1", raises=FacilityError)
        assert run.error.status == 404
    finally:
        await blocking(client.close)


# ====================================================================== discovery, tokens


@pytest.mark.facility
async def test_jupyterhub_environment(shell, server, monkeypatch):
    """Under JupyterHub the single-user server's URL and API token are in the environment."""
    monkeypatch.setenv("JUPYTERHUB_SERVICE_URL", server["url"].replace("127.0.0.1", "localhost"))
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", server["token"])
    run = await magic(shell, "rucio", "search cms_opendata:ZZTo4mu --type dataset")
    assert run.value.dids == ["cms_opendata:ZZTo4mu"]
    assert shell.find_magic("rucio").__self__.client.url == server["url"]


@pytest.mark.facility
async def test_no_output_repr_or_error_holds_the_token(env_server, server, fac):
    token = server["token"]
    seen = [repr(fac), repr(vars(fac)), str(fac.__dict__)]
    for magic_name, line in [
        ("rucio", "search cms_opendata:* --type dataset"),
        ("rucio", "ls cms_opendata:ZZTo4mu"),
        ("rucio", "mounts"),
        ("rucio", "ls cms_opendata:no_such_xyz"),
        ("rucio", "ls bad"),
        ("af_cluster", "list"),
    ]:
        run = await magic(
            env_server, magic_name, line, raises=(FacilityError if "xyz" in line or "bad" in line else None)
        )
        seen += [run.text(), repr(run.value), str(run.error or "")]
        if run.value is not None and hasattr(run.value, "_repr_html_"):
            seen.append(run.value._repr_html_())
        if run.error is not None:
            seen += run.error._render_traceback_() + [repr(run.error.details)]
    # Wrong token and unreachable server: the messages name neither token.
    wrong = FacilityClient(server["url"], "wrong-" + token[::-1])
    with pytest.raises(FacilityError) as err:
        await blocking(wrong.search, "cms_opendata:*")
    assert err.value.status == 403 and "token is missing or wrong" in str(err.value)
    seen += [str(err.value), repr(wrong)]
    gone = FacilityClient("http://127.0.0.1:9/", token)
    with pytest.raises(FacilityError) as err:
        await blocking(gone.instances)
    seen += [str(err.value), repr(err.value)]
    assert all(token not in s and token[::-1] not in s for s in seen)


# ====================================================================== a real kernel started by the server


def map_site2_only(cfg, facility, tmp_path):
    """Only SITE2 is mounted here: replica mode needs a rule for data on SITE1, and no transfer ever runs."""
    cfg["rucio_instances"][0]["rse_mounts"] = {SITE2: facility.state.services["rucio"]["rses"][SITE2]}


class KernelSession:
    """A BlockingKernelClient on a kernel the server started; every message it sends is kept."""

    def __init__(self, connection_file: str):
        from jupyter_client import BlockingKernelClient

        self.kc = BlockingKernelClient(connection_file=connection_file)
        self.kc.load_connection_file()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)
        self.seen: list[dict] = []

    def execute(self, code: str, on_output=None, timeout: float = 300) -> dict:
        """Run ``code``; returns {"status", "reply", "stdout", "stderr", "results", "displays", "error"}."""
        msg_id = self.kc.execute(code)
        out = {"stdout": "", "stderr": "", "results": [], "displays": [], "error": None}
        deadline = time.monotonic() + timeout
        while True:
            msg = self.kc.get_iopub_msg(timeout=max(1.0, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            self.seen.append(msg["content"])
            kind, content = msg["header"]["msg_type"], msg["content"]
            if kind == "stream":
                out[content["name"]] += content["text"]
            elif kind == "execute_result":
                out["results"].append(content["data"])
            elif kind in ("display_data", "update_display_data"):
                out["displays"].append((kind, content))
            elif kind == "error":
                out["error"] = content
            elif kind == "status" and content["execution_state"] == "idle":
                break
            if on_output:
                on_output(kind, content)
        reply = self.kc.get_shell_msg(timeout=60)
        out["status"], out["reply"] = reply["content"]["status"], reply["content"]
        return out

    def close(self):
        self.kc.stop_channels()


@pytest.mark.facility
@pytest.mark.parametrize("aflab_settings", [map_site2_only], indirect=True)
async def test_a_kernel_started_by_the_server_finds_it(jp_fetch, jp_serverapp, server, fac, facility, monkeypatch):
    # Nothing in the environment points at the server: the kernel must find it by its parent pid.
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    runtime = Path(os.environ["JUPYTER_RUNTIME_DIR"])
    assert (runtime / f"jpserver-{os.getpid()}.json").exists(), "the test server wrote no server info file"

    resp = await jp_fetch("api", "kernels", method="POST", body=json.dumps({"name": "python3"}))
    kid = json.loads(resp.body)["id"]
    session = None
    try:
        km = jp_serverapp.kernel_manager.get_kernel(kid)
        session = await blocking(KernelSession, km.connection_file)

        search = await blocking(session.execute, (
            "%load_ext af_lab\n"
            "import os, sys\n"
            "print('ENV', [k for k in os.environ if k.startswith(('AF_LAB_SERVER', 'JUPYTERHUB'))])\n"
            "print('SERVER', sorted(m for m in ('tornado.web', 'jupyter_server', 'af_lab.app') if m in sys.modules))\n"
            "r = %rucio search cms_opendata:* --type dataset\n"
            "print('COUNT', len(r), sorted(d['type'] for d in r)[0])\n"
            "r"
        ))  # fmt: skip
        assert search["status"] == "ok", search
        assert "ENV []" in search["stdout"] and "SERVER []" in search["stdout"]
        assert "COUNT " in search["stdout"] and " dataset" in search["stdout"]
        (result,) = search["results"]
        for did in DATASETS:
            assert did in result["text/plain"] and did in result["text/html"]

        usage = await blocking(session.execute, "%rucio frobnicate")
        # IPython prints a UsageError as one stderr line (no error output, no traceback).
        assert usage["status"] == "error" and usage["reply"]["ename"] == "UsageError"
        assert "UsageError: %rucio: unknown subcommand 'frobnicate'" in usage["stderr"] and usage["error"] is None

        bad = await blocking(session.execute, "%rucio ls not-a-did")
        assert bad["status"] == "error" and bad["error"]["ename"] == "FacilityError"
        shown = ANSI.sub("", "\n".join(bad["error"]["traceback"]))
        assert "'not-a-did' is not a valid DID" in shown and "Traceback" not in shown

        # Ctrl-C while waiting stops the wait, not the mount: a replica rule that never completes here.
        did = await blocking(register_on, facility, SITE1, f"magic_{RUN}_rule.bin", os.urandom(2048))
        waiting = threading.Event()

        def on_output(kind, content):
            if kind in ("display_data", "update_display_data") and "replicating" in content["data"]["text/plain"]:
                waiting.set()

        task = asyncio.ensure_future(blocking(
            session.execute, f"paths = %rucio mount {did} --mode replica --request-rule", on_output))  # fmt: skip
        for _ in range(600):
            if waiting.is_set() or task.done():
                break
            await asyncio.sleep(0.1)
        assert waiting.is_set(), (await task) if task.done() else "no progress line"
        await jp_fetch("api", "kernels", kid, "interrupt", method="POST", body="")
        stopped = await task
        assert stopped["status"] == "error" and stopped["error"]["ename"] == "StoppedWaiting"
        assert "was NOT cancelled" in stopped["error"]["evalue"]
        assert "Traceback" not in ANSI.sub("", "\n".join(stopped["error"]["traceback"]))
        (mount,) = [m for m in await blocking(fac.mounts) if m["did"] == did]
        assert mount["state"] == "replicating"  # still going on the server
        await blocking(fac.unmount, mount["id"])

        token = server["token"]
        assert token not in json.dumps(session.seen)
    finally:
        if session is not None:
            session.close()
        await jp_fetch("api", "kernels", kid, method="DELETE")
