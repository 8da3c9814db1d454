"""The htcondor profile end to end: real Dask scheduler and workers, HTCondor played by the stand-in.

``tests/condor_standin`` provides condor_submit/condor_q/condor_rm/condor_hold on
$PATH (it is not HTCondor: see its docstring). Each test gets its own queue
directory; a finalizer kills anything a failed test left behind, and the
tests themselves assert that nothing was.
"""

from __future__ import annotations

import os
import signal

import condor_standin
import psutil
import pytest
from condor_standin.profiles import call, cluster_security, poll, server_config, settings
from distributed import Client

pytestmark = pytest.mark.filterwarnings("ignore::jupyter_server.utils.JupyterServerAuthWarning")


@pytest.fixture
def condor_dir(tmp_path, monkeypatch):
    queue = tmp_path / "condor"
    for key, value in condor_standin.environment(queue).items():
        monkeypatch.setenv(key, value)
    yield queue
    # Safety net only (by pid): tests assert on their own that nothing is left.
    condor_standin.kill_all(condor_standin.job_processes(queue))
    condor_standin.kill_all(condor_standin.processes_mentioning(str(tmp_path / "state")))


@pytest.fixture
def cluster_settings() -> dict:
    return {}


@pytest.fixture
def jp_server_config(aflab_settings, cluster_settings, condor_dir):
    return server_config({**aflab_settings, **settings(**cluster_settings)})


def service(jp_serverapp):
    return jp_serverapp.web_app.settings["af_lab"].clusters


def queue_ids(condor_dir) -> list[str]:
    out = condor_standin.run("condor_q", "-af:j", "JobStatus").stdout.split()
    return out[::2]


def assert_nothing_left(condor_dir, state_dir):
    assert queue_ids(condor_dir) == [], "jobs left in the queue"
    left = condor_standin.wait_until_gone(condor_standin.job_processes(condor_dir))
    assert not left, f"job processes left: {[p.pid for p in left]}"
    left = condor_standin.wait_until_gone(condor_standin.processes_mentioning(str(state_dir)))
    assert not left, f"scheduler processes left: {[p.pid for p in left]}"


def listening_ips(procs) -> set[str]:
    ips = set()
    for proc in procs:
        try:
            ips |= {c.laddr.ip for c in proc.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
        except psutil.NoSuchProcess:
            continue
    return ips


async def get(jp_fetch, cid):
    return (await call(jp_fetch, "GET", "af-lab", "clusters", cid, expect=200))[1]


# ---------------------------------------------------------------------------- happy path
async def test_scale_compute_and_scale_to_zero(jp_fetch, condor_dir, aflab_settings, tmp_path):
    _, cluster = await call(jp_fetch, "POST", "af-lab", "clusters", body={"profile": "htcondor"}, expect=201)
    cid = cluster["id"]
    assert cluster["backend"] == "htcondor" and cluster["workers"] == 0
    assert cluster["scheduler_address"].startswith("tls://127.0.0.1:")
    assert cluster["dashboard_link"].startswith("http://127.0.0.1:")

    _, cluster = await call(jp_fetch, "PATCH", "af-lab", "clusters", cid, body={"workers": 2, "wait": 120}, expect=200)
    assert cluster["workers"] == 2 and cluster["cores"] == 2 and cluster["requested_workers"] == 2

    job_pids = {p.pid for p in condor_standin.job_processes(condor_dir)}
    # Scheduler, its dashboard, nannies and workers all listen on loopback only.
    procs = condor_standin.job_processes(condor_dir) + condor_standin.processes_mentioning(aflab_settings["state_dir"])
    assert listening_ips(procs) == {"127.0.0.1"}
    security = await cluster_security(jp_fetch, cid, tmp_path / "runtime")
    async with Client(cluster["scheduler_address"], security=security, asynchronous=True) as client:
        results = await client.gather(client.map(lambda x: x * x, range(20)))
        assert results == [x * x for x in range(20)]
        worker_pids = await client.run(os.getpid)
    assert len(set(worker_pids.values())) == 2
    assert set(worker_pids.values()) <= job_pids, "the workers must be the stand-in's jobs"

    _, jobs = await call(jp_fetch, "GET", "af-lab", "clusters", cid, "jobs", expect=200)
    assert jobs["counts"] == {"submitted": 2, "idle": 0, "running": 2, "held": 0, "done": 0}
    assert all(j["connected"] and j["status"] == "running" for j in jobs["jobs"])
    # What reached condor_submit: the cluster tag, the resource requests, loopback workers.
    ads = {f"{j['ad']['ClusterId']}.{j['ad']['ProcId']}": j for j in condor_standin.queued(condor_dir)}
    assert set(ads) == {j["job_id"] for j in jobs["jobs"]}
    for job in ads.values():
        assert job["exprs"]["AFLabClusterId"] == f'"{cid}"'
        assert job["ad"]["RequestCpus"] == 1 and job["ad"]["RequestMemory"] == 256
        assert "--host 127.0.0.1" in job["arguments"][1]
        # The worker's TLS files travel with the job, encrypted; only their paths are in the job.
        shipped = {os.path.basename(f) for f in job["transfer_input_files"]}
        assert {"ca.pem", "worker.pem", "worker-key.pem"} <= shipped
        assert "BEGIN" not in job["arguments"][1]

    _, cluster = await call(jp_fetch, "PATCH", "af-lab", "clusters", cid, body={"workers": 0}, expect=200)
    assert cluster["requested_workers"] == 0
    assert queue_ids(condor_dir) == []  # scale(0) returns after condor_rm
    _, jobs = await call(jp_fetch, "GET", "af-lab", "clusters", cid, "jobs", expect=200)
    assert jobs["counts"] == {"submitted": 2, "idle": 0, "running": 0, "held": 0, "done": 2}
    assert not condor_standin.wait_until_gone(condor_standin.job_processes(condor_dir))

    await call(jp_fetch, "DELETE", "af-lab", "clusters", cid, expect=204)
    assert_nothing_left(condor_dir, aflab_settings["state_dir"])


async def test_adapt_and_labextension_view_of_an_htcondor_cluster(jp_fetch, condor_dir, aflab_settings):
    _, cluster = await call(jp_fetch, "POST", "af-lab", "clusters",
                            body={"profile": "htcondor", "adapt": {"minimum": 1, "maximum": 2}}, expect=201)
    cid = cluster["id"]
    assert cluster["adapt"] == {"minimum": 1, "maximum": 2}
    await poll(lambda: get(jp_fetch, cid), what="model")
    cluster = await poll(lambda: _with_workers(jp_fetch, cid, 1), timeout=120, what="the adaptive minimum")
    _, listing = await call(jp_fetch, "GET", "dask", "clusters", expect=200)
    assert listing[0]["id"] == cid and listing[0]["adapt"] == {"minimum": 1, "maximum": 2}
    await call(jp_fetch, "DELETE", "af-lab", "clusters", cid, expect=204)
    assert_nothing_left(condor_dir, aflab_settings["state_dir"])


async def _with_workers(jp_fetch, cid, n):
    cluster = await get(jp_fetch, cid)
    return cluster if cluster["workers"] >= n else None


# ---------------------------------------------------------------------------- job states
@pytest.mark.parametrize("cluster_settings", [{"cluster_worker_start_timeout": 2.0}])
async def test_job_status_shows_idle_and_held_jobs(jp_fetch, condor_dir, aflab_settings):
    condor_standin.set_slots(condor_dir, 1)  # one slot: one job runs, the others wait Idle
    _, cluster = await call(jp_fetch, "POST", "af-lab", "clusters", body={"profile": "htcondor"}, expect=201)
    cid = cluster["id"]
    _, cluster = await call(jp_fetch, "PATCH", "af-lab", "clusters", cid, body={"workers": 3}, expect=200)
    assert cluster["requested_workers"] == 3

    _, jobs = await call(jp_fetch, "GET", "af-lab", "clusters", cid, "jobs", expect=200)
    idle = [j["job_id"] for j in jobs["jobs"] if j["status"] == "idle"]
    assert len(idle) == 2
    reason = "Job has gone over memory limit of 256 megabytes (test)"
    held = condor_standin.run("condor_hold", "-reason", reason, idle[0])
    assert held.returncode == 0, held.stderr

    _, jobs = await call(jp_fetch, "GET", "af-lab", "clusters", cid, "jobs", expect=200)
    assert jobs["counts"] == {"submitted": 3, "idle": 1, "running": 1, "held": 1, "done": 0}
    by_id = {j["job_id"]: j for j in jobs["jobs"]}
    assert by_id[idle[0]]["status"] == "held" and by_id[idle[0]]["hold_reason"] == reason
    assert by_id[idle[1]]["status"] == "idle" and not by_id[idle[1]]["connected"]
    assert reason in jobs["message"]

    # The user who sees "1 worker" learns why, in the cluster model itself.
    cluster = await poll(lambda: _warned(jp_fetch, cid, "held"), timeout=60, what="the start-timeout warning")
    warning = cluster["warnings"][0]
    assert "of 3 requested workers have not connected after 2 s" in warning
    assert "1 held" in warning and "1 idle" in warning and reason in warning
    assert cluster["pending"]["workers"] >= 2

    code, err = await call(jp_fetch, "PATCH", "af-lab", "clusters", cid, body={"workers": 3, "wait": 3})
    assert code == 504 and err["error"]["type"] == "timeout"
    assert "of 3 workers connected within 3 s" in err["error"]["message"] and reason in err["error"]["message"]
    assert {j["status"] for j in err["error"]["jobs"]} == {"running", "idle", "held"}

    await call(jp_fetch, "DELETE", "af-lab", "clusters", cid, expect=204)  # removes held and idle jobs too
    assert_nothing_left(condor_dir, aflab_settings["state_dir"])


async def _warned(jp_fetch, cid, word):
    cluster = await get(jp_fetch, cid)
    return cluster if cluster["warnings"] and word in cluster["warnings"][0] else None


async def test_workers_that_never_connect_time_out_with_their_job_state(jp_fetch, condor_dir, aflab_settings):
    _, cluster = await call(jp_fetch, "POST", "af-lab", "clusters",
                            body={"profile": "htcondor-stuck", "workers": 2}, expect=201)
    cid = cluster["id"]
    code, err = await call(jp_fetch, "PATCH", "af-lab", "clusters", cid, body={"workers": 2, "wait": 2})
    assert code == 504
    assert err["error"]["message"] == "0 of 2 workers connected within 2 s; the cluster's jobs: 2 idle"
    assert err["error"]["workers"] == 0 and err["error"]["requested"] == 2
    cluster = await poll(lambda: _warned(jp_fetch, cid, "idle"), timeout=60, what="the start-timeout warning")
    assert cluster["warnings"][0] == ("2 of 2 requested workers have not connected after 1 s; "
                                      "the cluster's jobs: 2 idle")
    await call(jp_fetch, "DELETE", "af-lab", "clusters", cid, expect=204)
    assert_nothing_left(condor_dir, aflab_settings["state_dir"])


# ---------------------------------------------------------------------------- condor_submit failing
async def test_failed_create_shows_condor_submit_stderr_and_leaves_nothing(jp_fetch, condor_dir, aflab_settings):
    code, err = await call(jp_fetch, "POST", "af-lab", "clusters",
                           body={"profile": "htcondor-wrong-schedd", "workers": 1})
    assert code == 502, err
    assert err["error"]["type"] == "condor" and err["error"]["command"] == "condor_submit"
    assert err["error"]["stderr"] == "ERROR: Can't find address of schedd no-such-schedd.example.org"
    assert "Can't find address of schedd" in err["error"]["message"]

    # A malformed submit description (an admin's broken directive) fails in HTCondor's own parser.
    code, err = await call(jp_fetch, "POST", "af-lab", "clusters",
                           body={"profile": "htcondor-bad-directive", "workers": 1})
    assert code == 502 and "MY.Broken = floor((" in err["error"]["stderr"]

    _, listed = await call(jp_fetch, "GET", "af-lab", "clusters", expect=200)
    assert listed["clusters"] == []  # all or nothing
    assert_nothing_left(condor_dir, aflab_settings["state_dir"])


async def test_failed_scale_and_adapt_keep_the_cluster_and_show_stderr(jp_fetch, condor_dir, aflab_settings):
    _, cluster = await call(jp_fetch, "POST", "af-lab", "clusters",
                            body={"profile": "htcondor-wrong-schedd"}, expect=201)
    cid = cluster["id"]
    code, err = await call(jp_fetch, "PATCH", "af-lab", "clusters", cid, body={"workers": 2})
    assert code == 502 and "Can't find address of schedd" in err["error"]["stderr"]
    cluster = await get(jp_fetch, cid)
    assert cluster["state"] == "running" and cluster["requested_workers"] == 0
    assert any("Can't find address of schedd" in w for w in cluster["warnings"])

    # Adaptive scaling submits in the background: its failures land in the model's warnings, and it
    # stops after three in a row instead of hammering the schedd every second.
    await call(jp_fetch, "PATCH", "af-lab", "clusters", cid, body={"adapt": {"minimum": 1, "maximum": 2}}, expect=200)
    cluster = await poll(lambda: _warned_any(jp_fetch, cid, "Adaptive scaling was stopped"), timeout=60,
                         what="adaptive scaling to give up")
    assert any("Can't find address of schedd" in w for w in cluster["warnings"])
    assert cluster["state"] == "running" and cluster["adapt"] is None
    await call(jp_fetch, "DELETE", "af-lab", "clusters", cid, expect=204)
    assert_nothing_left(condor_dir, aflab_settings["state_dir"])


async def _warned_any(jp_fetch, cid, text):
    cluster = await get(jp_fetch, cid)
    return cluster if any(text in w for w in cluster["warnings"]) else None


# ---------------------------------------------------------------------------- scheduler death, idle
async def test_scheduler_death_removes_the_jobs(jp_fetch, jp_serverapp, condor_dir, aflab_settings):
    _, cluster = await call(jp_fetch, "POST", "af-lab", "clusters", body={"profile": "htcondor"}, expect=201)
    cid = cluster["id"]
    await call(jp_fetch, "PATCH", "af-lab", "clusters", cid, body={"workers": 1, "wait": 120}, expect=200)
    pid = service(jp_serverapp)._clusters[cid].scheduler_info["pid"]
    os.kill(pid, signal.SIGKILL)

    cluster = await poll(lambda: _in_state(jp_fetch, cid, "failed"), timeout=60, what="the failed state")
    assert cluster["message"] == "Its scheduler died (signal 9). Its 1 batch job(s) were removed."
    assert cluster["workers"] == 0 and cluster["scheduler_address"] == ""
    assert queue_ids(condor_dir) == []
    code, err = await call(jp_fetch, "PATCH", "af-lab", "clusters", cid, body={"workers": 1})
    assert code == 409 and "died" in err["error"]["message"]
    _, jobs = await call(jp_fetch, "GET", "af-lab", "clusters", cid, "jobs", expect=200)
    assert jobs["counts"]["done"] == 1
    await call(jp_fetch, "DELETE", "af-lab", "clusters", cid, expect=204)
    assert_nothing_left(condor_dir, aflab_settings["state_dir"])


async def _in_state(jp_fetch, cid, state):
    cluster = await get(jp_fetch, cid)
    return cluster if cluster["state"] == state else None


@pytest.mark.parametrize("cluster_settings", [{"cluster_idle_timeout": 4.0}])
async def test_idle_htcondor_cluster_is_shut_down_with_its_jobs(jp_fetch, condor_dir, aflab_settings):
    _, cluster = await call(jp_fetch, "POST", "af-lab", "clusters",
                            body={"profile": "htcondor", "workers": 1}, expect=201)
    cid = cluster["id"]
    cluster = await poll(lambda: _in_state(jp_fetch, cid, "stopped"), timeout=90, what="the idle shutdown")
    assert cluster["message"].startswith("It was shut down after 4 s without tasks.")
    assert_nothing_left(condor_dir, aflab_settings["state_dir"])
    await call(jp_fetch, "DELETE", "af-lab", "clusters", cid, expect=204)
