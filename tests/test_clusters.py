"""Dask clusters through af-lab's REST: the local profile, the options form, bad input, dask-labextension.

Real Dask schedulers and workers on 127.0.0.1 (no mocks). HTCondor tests are in
test_clusters_htcondor.py.
"""

from __future__ import annotations

import json
import os

import psutil
import pytest
from condor_standin.profiles import call, cluster_security, poll, server_config, settings
from distributed import Client

# dask-labextension and jupyter-server-proxy register handlers jupyter_server warns about; not ours.
pytestmark = pytest.mark.filterwarnings("ignore::jupyter_server.utils.JupyterServerAuthWarning")



@pytest.fixture
def cluster_settings() -> dict:
    return {}


@pytest.fixture
def jp_server_config(aflab_settings, cluster_settings):
    return server_config({**aflab_settings, **settings(**cluster_settings)})


def service(jp_serverapp):
    return jp_serverapp.web_app.settings["af_lab"].clusters


def worker_pids(address: str) -> list[int]:
    """Live local worker processes of the scheduler at ``address``."""
    pids = []
    for proc in psutil.process_iter(["pid", "status", "ppid"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            conns = proc.net_connections(kind="tcp")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        port = int(address.rsplit(":", 1)[1])
        if proc.pid != psutil.Process().pid and any(c.raddr and c.raddr.port == port for c in conns):
            pids.append(proc.pid)
    return pids


# ---------------------------------------------------------------------------- the form
async def test_profiles_describe_the_options_form(jp_fetch):
    _, data = await call(jp_fetch, "GET", "af-lab", "clusters", "profiles", expect=200)
    assert data["default"] == "local"
    assert data["errors"] == []
    by_name = {p["name"]: p for p in data["profiles"]}
    local, htc = by_name["local"], by_name["htcondor"]
    assert local["backend"] == "local" and htc["backend"] == "htcondor"
    props = htc["schema"]["properties"]
    assert props["cores"]["maximum"] == 2 and props["cores"]["default"] == 1
    assert props["memory"]["default"] == "256 MiB" and props["memory"]["x-maximum-bytes"] == 2 * 2**30
    assert props["image"]["enum"] == ["/cvmfs/unpacked.cern.ch/coffea:latest"]
    assert props["workers"]["maximum"] == 4
    assert "disk" not in local["schema"]["properties"]  # local workers have no disk request
    assert htc["limits"]["max_workers"] == 4


@pytest.mark.parametrize("cluster_settings", [{"cluster_profiles": {}}])
async def test_without_profiles_a_local_profile_sized_to_the_machine_exists(jp_fetch):
    _, data = await call(jp_fetch, "GET", "af-lab", "clusters", "profiles", expect=200)
    (local,) = data["profiles"]
    assert data["default"] == "local" and local["backend"] == "local"
    assert local["limits"]["max_workers"] == os.cpu_count()
    assert set(local["schema"]["properties"]) == {"cores", "memory", "workers", "adapt", "environment"}
    assert local["schema"]["properties"]["environment"]["enum"] == ["server"]  # no environments configured


@pytest.mark.parametrize(
    "cluster_settings",
    [{"cluster_profiles": {"ok": {"backend": "local", "defaults": {"memory": "256 MiB"}},
                           "typo": {"backend": "local", "defaults": {"memory": "1 GiB"}, "limts": {}},
                           "broken": {"backend": "pbs", "defaults": {"memory": "1 GiB"}},
                           "too-big": {"backend": "local", "defaults": {"memory": "8 GiB"},
                                       "limits": {"max_memory": "1 GiB"}}},
      "default_cluster_profile": "gone"}],
)
async def test_broken_profiles_are_reported_not_fatal(jp_fetch):
    _, data = await call(jp_fetch, "GET", "af-lab", "clusters", "profiles", expect=200)
    assert [p["name"] for p in data["profiles"]] == ["ok"]
    assert data["default"] == "ok"  # the configured default does not exist: the first one stands in
    text = "\n".join(data["errors"])
    assert "'typo'" in text and "limts" in text
    assert "'broken'" in text and "pbs" in text
    assert "'too-big'" in text and "max_memory" in text


# ---------------------------------------------------------------------------- local lifecycle
async def test_local_cluster_create_scale_adapt_shutdown(jp_fetch, jp_serverapp, jp_base_url, tmp_path):
    code, cluster = await call(jp_fetch, "POST", "af-lab", "clusters",
                               body={"profile": "local", "name": "dev", "workers": 1, "cores": 1}, expect=201)
    cid = cluster["id"]
    assert cluster["state"] == "running" and cluster["name"] == "dev"
    assert cluster["workers"] == 1 and cluster["cores"] == 1
    assert cluster["scheduler_address"].startswith("tls://127.0.0.1:")
    scheduler_pid = service(jp_serverapp)._clusters[cid].scheduler_info["pid"]
    assert scheduler_pid != os.getpid() and psutil.pid_exists(scheduler_pid)  # its own process
    assert cluster["dashboard_link"].startswith("http://127.0.0.1:")
    # The link a browser opens goes through the Jupyter server, under its base URL.
    assert cluster["dashboard_url"] == f"{jp_base_url}dask/dashboard/{cid}/status"
    assert cluster["token"] is None  # no credential service configured

    security = await cluster_security(jp_fetch, cid, tmp_path)
    async with Client(cluster["scheduler_address"], security=security, asynchronous=True) as client:
        assert await client.submit(sum, [1, 2, 3]) == 6

    _, cluster = await call(jp_fetch, "PATCH", "af-lab", "clusters", cid, body={"workers": 2}, expect=200)
    assert cluster["workers"] == 2 and cluster["requested_workers"] == 2

    _, cluster = await call(jp_fetch, "PATCH", "af-lab", "clusters", cid,
                            body={"adapt": {"minimum": 0, "maximum": 2}}, expect=200)
    assert cluster["adapt"] == {"minimum": 0, "maximum": 2}
    _, cluster = await call(jp_fetch, "PATCH", "af-lab", "clusters", cid, body={"adapt": None}, expect=200)
    assert cluster["adapt"] is None

    _, cluster = await call(jp_fetch, "PATCH", "af-lab", "clusters", cid, body={"workers": 1, "wait": 60}, expect=200)
    await poll(lambda: len(service(jp_serverapp)._clusters[cid].connected_workers()) == 1, what="1 worker")

    _, listed = await call(jp_fetch, "GET", "af-lab", "clusters", expect=200)
    assert [c["id"] for c in listed["clusters"]] == [cid]
    # Local workers are jobs too: process groups found by the cluster's tag.
    _, jobs = await call(jp_fetch, "GET", "af-lab", "clusters", cid, "jobs", expect=200)
    running = [j for j in jobs["jobs"] if j["status"] == "running"]
    assert jobs["counts"]["running"] == 1 and len(running) == 1 and running[0]["connected"]

    pids = worker_pids(cluster["scheduler_address"])
    assert pids, "the local workers should be connected to their scheduler"
    listening = {c.laddr.ip for p in pids for c in psutil.Process(p).net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN}
    assert listening == {"127.0.0.1"}
    await call(jp_fetch, "DELETE", "af-lab", "clusters", cid, expect=204)
    await call(jp_fetch, "GET", "af-lab", "clusters", cid, expect=404)
    _, listed = await call(jp_fetch, "GET", "af-lab", "clusters", expect=200)
    assert listed["clusters"] == []
    gone = psutil.wait_procs([psutil.Process(p) for p in [*pids, scheduler_pid] if psutil.pid_exists(p)],
                             timeout=15)[1]
    assert not gone, f"worker or scheduler processes left behind: {gone}"


async def test_cluster_changes_are_pushed_on_the_event_stream(jp_fetch, event_stream):
    """Created, running, scaled (workers connecting), stopping, removed: each reaches a listening
    browser on the one event stream, carrying the cluster's full model."""
    stream = await event_stream("clusters")
    _, cluster = await call(jp_fetch, "POST", "af-lab", "clusters",
                            body={"profile": "local", "name": "live", "workers": 1, "cores": 1}, expect=201)
    cid = cluster["id"]
    await call(jp_fetch, "PATCH", "af-lab", "clusters", cid, body={"workers": 2, "wait": 60}, expect=200)

    def models(received):
        return [e["data"] for e in received if e["topic"] == f"clusters/{cid}"]

    await stream.until(lambda r: any(m["workers"] == 2 for m in models(r)), seconds=10)
    await call(jp_fetch, "DELETE", "af-lab", "clusters", cid, expect=204)
    await stream.until(lambda r: any(m["state"] == "removed" for m in models(r)))

    seen = models(stream.received)
    states = [m["state"] for m in seen]
    assert states[0] == "starting" and states[-1] == "removed", states
    assert states.index("running") < states.index("stopping") < states.index("removed"), states
    assert any(m["state"] == "running" and m["workers"] == 2 and m["requested_workers"] == 2 for m in seen)
    assert all(m["id"] == cid for m in seen)
    assert not any(a == b for a, b in zip(seen, seen[1:], strict=False)), "an unchanged model was pushed twice"


# ---------------------------------------------------------------------------- dask-labextension
async def test_dask_labextension_lists_and_proxies_af_lab_clusters(jp_fetch):
    _, cluster = await call(jp_fetch, "POST", "af-lab", "clusters", body={"workers": 1}, expect=201)
    cid = cluster["id"]
    try:
        _, listing = await call(jp_fetch, "GET", "dask", "clusters", expect=200)
        assert [c["id"] for c in listing] == [cid]
        assert listing[0]["scheduler_address"] == cluster["scheduler_address"]
        # Its dashboard pane: the proxy finds the scheduler's dashboard from af-lab's model.
        resp = await jp_fetch("dask", "dashboard", cid, "individual-plots.json")
        assert any("Task Stream" in name for name in json.loads(resp.body))

        # Its scale dialog goes through af-lab, so the profile's limits hold there too.
        code, _ = await call(jp_fetch, "PATCH", "dask", "clusters", cid, body={"workers": 5})
        assert code == 500  # dask-labextension turns every error into a 500 with our message
        _, one = await call(jp_fetch, "PATCH", "dask", "clusters", cid, body={"workers": 2}, expect=200)
        assert one["workers"] == 2
        _, one = await call(jp_fetch, "PATCH", "dask", "clusters", cid,
                            body={"adapt": {"minimum": 1, "maximum": 2}}, expect=200)
        assert one["adapt"] == {"minimum": 1, "maximum": 2}
        _, mine = await call(jp_fetch, "GET", "af-lab", "clusters", cid, expect=200)
        assert mine["adapt"] == {"minimum": 1, "maximum": 2}
    finally:
        await call(jp_fetch, "DELETE", "dask", "clusters", cid, expect=204)
    await call(jp_fetch, "GET", "af-lab", "clusters", cid, expect=404)

    # Its "NEW" button makes an af-lab cluster of the default profile.
    _, new = await call(jp_fetch, "PUT", "dask", "clusters", body="", expect=200)
    _, mine = await call(jp_fetch, "GET", "af-lab", "clusters", new["id"], expect=200)
    assert mine["profile"] == "local" and mine["state"] == "running"
    await call(jp_fetch, "DELETE", "af-lab", "clusters", new["id"], expect=204)
    _, listing = await call(jp_fetch, "GET", "dask", "clusters", expect=200)
    assert listing == []


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "body, status, kind, expected",
    [
        ({"profile": "nope"}, 404, "not_found", "no cluster profile 'nope'"),
        ({"workers": 3}, 400, "over_limit", "limit max_workers = 2"),
        ({"cores": 4}, 400, "over_limit", "limit max_cores = 2"),
        ({"memory": "4 GiB"}, 400, "over_limit", "limit max_memory = 1.00 GiB"),
        ({"profile": "htcondor", "disk": "1 TiB"}, 400, "over_limit", "limit max_disk = 10.00 GiB"),
        ({"profile": "htcondor", "image": "docker.io/evil:latest"}, 400, "over_limit", "limit images"),
        ({"profile": "htcondor", "universe": "grid"}, 400, "over_limit", "limit universes"),
        ({"adapt": {"minimum": 0, "maximum": 9}}, 400, "over_limit", "adapt maximum 9"),
        ({"adapt": {"minimum": 2, "maximum": 1}}, 400, "bad_request", "above adapt maximum"),
        ({"adapt": [0, 1]}, 400, "bad_request", "adapt must be"),
        ({"cores": 0}, 400, "bad_request", "at least 1"),
        ({"cores": "two"}, 400, "bad_request", "whole number"),
        ({"memory": "lots"}, 400, "bad_request", "not an amount of bytes"),
        ({"disk": "1 GiB"}, 400, "bad_request", "unknown option(s) disk for profile 'local'"),
        ({"name": "x" * 65}, 400, "bad_request", "name must be"),
    ],
)
async def test_create_rejects_bad_options_and_names_the_limit(jp_fetch, jp_serverapp, body, status, kind, expected):
    code, data = await call(jp_fetch, "POST", "af-lab", "clusters", body=body)
    assert code == status, data
    assert data["error"]["type"] == kind
    assert expected in data["error"]["message"]
    if kind == "over_limit":
        assert data["error"]["limit"] in data["error"]["message"]
    assert service(jp_serverapp)._clusters == {}  # nothing was started
    _, listed = await call(jp_fetch, "GET", "af-lab", "clusters", expect=200)
    assert listed["clusters"] == []


async def test_bad_requests_on_an_existing_cluster_change_nothing(jp_fetch):
    code, data = await call(jp_fetch, "POST", "af-lab", "clusters", body="{not json")
    assert code == 400 and "not valid JSON" in data["error"]["message"]
    code, data = await call(jp_fetch, "POST", "af-lab", "clusters", body="[1]")
    assert code == 400 and "JSON object" in data["error"]["message"]

    _, cluster = await call(jp_fetch, "POST", "af-lab", "clusters", body={"workers": 1}, expect=201)
    cid = cluster["id"]
    try:
        for body, fragment in [
            ({"workers": 3}, "max_workers"),
            ({"workers": -1}, "at least 0"),
            ({"workers": 1, "adapt": None}, 'send {"workers": N}'),
            ({}, 'send {"workers": N}'),
            ({"adapt": {"minimum": 0, "maximum": 3}}, "max_workers"),
            ({"workers": 1, "wait": "soon"}, "wait must be a number"),
        ]:
            code, data = await call(jp_fetch, "PATCH", "af-lab", "clusters", cid, body=body)
            assert code == 400 and fragment in data["error"]["message"], (body, data)
        _, after = await call(jp_fetch, "GET", "af-lab", "clusters", cid, expect=200)
        assert after["workers"] == 1 and after["requested_workers"] == 1 and after["adapt"] is None

        # max_clusters = 2 for the local profile
        _, second = await call(jp_fetch, "POST", "af-lab", "clusters", body={}, expect=201)
        code, data = await call(jp_fetch, "POST", "af-lab", "clusters", body={})
        assert code == 400 and data["error"]["limit"] == "max_clusters"
        await call(jp_fetch, "DELETE", "af-lab", "clusters", second["id"], expect=204)
    finally:
        await call(jp_fetch, "DELETE", "af-lab", "clusters", cid, expect=204)

    unknown = "00000000-0000-4000-8000-000000000000"
    for method, path, body in [("GET", (unknown,), None), ("PATCH", (unknown,), {"workers": 1}),
                               ("DELETE", (unknown,), None), ("GET", (unknown, "jobs"), None),
                               ("GET", ("not-an-id",), None)]:
        code, data = await call(jp_fetch, method, "af-lab", "clusters", *path, body=body)
        assert code == 404 and data["error"]["type"] == "not_found", (method, path, data)


# ---------------------------------------------------------------------------- idle shutdown
@pytest.mark.parametrize("cluster_settings", [{"cluster_idle_timeout": 3.0}])
async def test_idle_local_cluster_is_shut_down(jp_fetch, jp_serverapp):
    _, cluster = await call(jp_fetch, "POST", "af-lab", "clusters", body={"workers": 1}, expect=201)
    cid = cluster["id"]
    pids = worker_pids(cluster["scheduler_address"])

    async def stopped():
        _, c = await call(jp_fetch, "GET", "af-lab", "clusters", cid, expect=200)
        return c if c["state"] == "stopped" else None

    cluster = await poll(stopped, what="the idle cluster to stop")
    assert "without tasks" in cluster["message"]
    assert cluster["workers"] == 0 and cluster["scheduler_address"] == ""
    gone = psutil.wait_procs([psutil.Process(p) for p in pids if psutil.pid_exists(p)], timeout=15)[1]
    assert not gone
    code, data = await call(jp_fetch, "PATCH", "af-lab", "clusters", cid, body={"workers": 1})
    assert code == 409 and data["error"]["state"] == "stopped"
    # The stopped cluster stays listed (so the user sees why) until dismissed.
    await call(jp_fetch, "DELETE", "af-lab", "clusters", cid, expect=204)
    await call(jp_fetch, "GET", "af-lab", "clusters", cid, expect=404)
