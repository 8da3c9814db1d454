"""The slurm profile end to end on the facility's real SLURM (slurmctld + slurmd + munged).

The Jupyter server under test is configured like the demo facility: workspace, cache
and af-lab state under the facility's directory, and the ``slurm`` profile's worker launcher is
the facility's isolating wrapper, so the workers see none of those directories.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from condor_standin.profiles import call, cluster_security, server_config
from distributed import Client

from af_facility.lab import demo_cluster_profiles

pytestmark = [pytest.mark.facility,
              pytest.mark.filterwarnings("ignore::jupyter_server.utils.JupyterServerAuthWarning")]


@pytest.fixture
def slurm(facility):
    info = facility.state.services.get("slurm") or {}
    if not info.get("available", True) or not info.get("conf"):
        pytest.skip(f"no SLURM in this facility: {info.get('reason')}")
    return facility.service("slurm")


def profiles(facility, **extra_slurm_profiles) -> dict:
    out = demo_cluster_profiles(facility.state)
    base = out["slurm"]
    out["slurm"] = {**base, "worker_extra_args": ["--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0"]}
    for name, overrides in extra_slurm_profiles.items():
        out[name] = {**out["slurm"], **overrides}
    return out


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def jp_root_dir(facility, unique):
    """The user's workspace, where the demo facility keeps it (hidden from batch workers)."""
    path = facility.root / "workspace" / f"t-{unique}"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def jp_server_config(facility, slurm, unique):
    aflab = {
        "cache_dir": str(facility.root / "cache"),
        "state_dir": str(facility.root / "af-lab-state" / f"t-{unique}"),
        "cluster_profiles": profiles(
            facility,
            **{
                "slurm-later": {"job_extra_directives": ["--begin=now+3600"]},
                "slurm-broken": {"worker_launcher": "/nonexistent/launcher"},
            },
        ),
        "default_cluster_profile": "slurm",
        "cluster_monitor_interval": 0.5,
        "cluster_idle_timeout": 0.0,
        "cluster_survive_restart": False,
    }
    return server_config(aflab)


def squeue(slurm, cluster_id: str) -> dict[str, str]:
    """{job id: state} of the cluster's jobs, asked of SLURM by the cluster's tag (job name)."""
    out = subprocess.run(["squeue", "-h", f"--name=af-{cluster_id}", "-o", "%i %T"],
                         env={**os.environ, **slurm.client_env()}, capture_output=True, text=True, check=True)
    return dict(line.split() for line in out.stdout.splitlines())


def wait_for(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


async def wait_async(predicate, timeout=60.0, what="condition"):
    import asyncio

    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.3)


# ---------------------------------------------------------------------------- happy path + isolation
async def test_slurm_cluster_runs_on_isolated_workers(jp_fetch, facility, slurm, jp_root_dir, monkeypatch, tmp_path,
                                                     event_stream):
    monkeypatch.setenv("JUPYTER_TOKEN", "server-secret-not-for-workers")
    (jp_root_dir / "analysis.ipynb").write_text("{}")
    cache = facility.root / "cache"
    cache.mkdir(exist_ok=True)
    (cache / "cached.txt").write_text("cached bytes")
    rse = facility.root / "rse" / "SLURMTEST"
    rse.mkdir(parents=True, exist_ok=True, mode=0o755)
    (rse / "hello.txt").write_text("hello through the cache")
    (rse / "hello.txt").chmod(0o644)
    url = f"{facility.state.services['xrootd']['cache_url']}//rse/SLURMTEST/hello.txt"

    stream = await event_stream("clusters")
    _, cluster = await call(jp_fetch, "POST", "af-lab", "clusters", body={"profile": "slurm"}, expect=201)
    cid = cluster["id"]
    assert cluster["backend"] == "slurm"
    _, cluster = await call(jp_fetch, "PATCH", "af-lab", "clusters", cid, body={"workers": 2, "wait": 120}, expect=200)
    assert cluster["workers"] == 2
    # The job states reach a listening browser on the event stream, read from squeue by tag.
    def job_events(received):
        return [e["data"] for e in received if e["topic"] == f"clusters/{cid}/jobs"]

    await stream.until(lambda r: any(j["counts"]["running"] == 2 for j in job_events(r)), seconds=30)
    pushed = job_events(stream.received)
    assert pushed and pushed[-1]["counts"]["running"] == 2, pushed
    assert all(row["status"] in ("pending", "running") for j in pushed for row in j["jobs"]), pushed

    _, jobs = await call(jp_fetch, "GET", "af-lab", "clusters", cid, "jobs", expect=200)
    queued = squeue(slurm, cid)
    assert {j["job_id"] for j in jobs["jobs"]} == set(queued), "af-lab's jobs are the ones SLURM has by tag"
    assert set(queued.values()) == {"RUNNING"}
    assert all(j["status"] == "running" and j["connected"] for j in jobs["jobs"])
    assert jobs["counts"]["running"] == 2

    def probe(workspace, cached, url):
        import os

        from XRootD import client as xrd

        out = {"env_token": "JUPYTER_TOKEN" in os.environ, "pid1": os.getpid()}
        for key, path in (("workspace", workspace), ("cache", cached)):
            try:
                out[key] = os.listdir(path) if os.path.isdir(path) else open(path).read()
            except OSError as exc:
                out[key] = type(exc).__name__
        with xrd.File() as f:
            status, _ = f.open(url)
            out["url"] = f.read()[1].decode() if status.ok else status.message
        return out

    security = await cluster_security(jp_fetch, cid, tmp_path / "runtime")
    async with Client(cluster["scheduler_address"], security=security, asynchronous=True) as client:
        results = await client.run(probe, str(jp_root_dir), str(cache / "cached.txt"), url)
    assert len(results) == 2
    for seen in results.values():
        assert seen["workspace"] == "PermissionError", seen
        assert seen["cache"] == "PermissionError", seen
        assert seen["url"] == "hello through the cache", seen
        assert seen["env_token"] is False

    _, cluster = await call(jp_fetch, "PATCH", "af-lab", "clusters", cid, body={"workers": 0}, expect=200)
    wait_for(lambda: set(squeue(slurm, cid).values()) <= {"CANCELLED", "COMPLETED"}, what="jobs cancelled")
    await call(jp_fetch, "DELETE", "af-lab", "clusters", cid, expect=204)
    assert set(squeue(slurm, cid).values()) <= {"CANCELLED", "COMPLETED"}
    wait_for(lambda: not slurm.leftover_pids(), what="no job process left")


# ---------------------------------------------------------------------------- states and failures
async def test_pending_job_shows_slurms_reason(jp_fetch, slurm):
    _, cluster = await call(jp_fetch, "POST", "af-lab", "clusters",
                            body={"profile": "slurm-later", "workers": 1}, expect=201)
    cid = cluster["id"]
    _, jobs = await call(jp_fetch, "GET", "af-lab", "clusters", cid, "jobs", expect=200)
    assert [(j["status"], j["reason"]) for j in jobs["jobs"]] == [("pending", "BeginTime")]
    assert jobs["message"] == "1 pending (BeginTime)"
    await call(jp_fetch, "DELETE", "af-lab", "clusters", cid, expect=204)
    assert set(squeue(slurm, cid).values()) <= {"CANCELLED"}


async def test_job_failing_at_start_shows_exit_code_and_stderr(jp_fetch, slurm):
    _, cluster = await call(jp_fetch, "POST", "af-lab", "clusters",
                            body={"profile": "slurm-broken", "workers": 1}, expect=201)
    cid = cluster["id"]

    async def failed():
        _, jobs = await call(jp_fetch, "GET", "af-lab", "clusters", cid, "jobs", expect=200)
        return [j for j in jobs["jobs"] if j["status"] == "failed"] and jobs

    jobs = await wait_async(failed, what="the job to fail")
    job = jobs["jobs"][0]
    assert job["exit_code"] == 127
    assert "/nonexistent/launcher" in job["reason"]  # the tail of the job's stderr
    assert "exit code 127: " in jobs["message"] and "/nonexistent/launcher" in jobs["message"]
    status, body = await call(jp_fetch, "PATCH", "af-lab", "clusters", cid, body={"workers": 1, "wait": 1})
    assert status == 504 and "/nonexistent/launcher" in body["error"]["message"]
    await call(jp_fetch, "DELETE", "af-lab", "clusters", cid, expect=204)


async def test_gpu_capacity_is_chosen_in_the_form_and_refused_at_once_without_gpus(jp_fetch, slurm):
    _, listed = await call(jp_fetch, "GET", "af-lab", "clusters", "profiles", expect=200)
    form = next(p for p in listed["profiles"] if p["name"] == "slurm")
    assert "gpus" in json.dumps(form)
    status, body = await call(jp_fetch, "POST", "af-lab", "clusters", body={"profile": "slurm", "gpus": 2})
    assert status == 400 and body["error"]["limit"] == "max_gpus"
    status, body = await call(jp_fetch, "POST", "af-lab", "clusters", body={"profile": "slurm", "gpus": 1, "workers": 1})
    assert status == 502, body
    assert body["error"]["type"] == "slurm" and "Requested node configuration is not available" in body["error"]["message"]
    _, listed = await call(jp_fetch, "GET", "af-lab", "clusters", expect=200)
    assert listed["clusters"] == []  # a failed create leaves nothing behind


async def test_slurmctld_down_is_a_503_naming_slurm(jp_fetch, slurm):
    _, cluster = await call(jp_fetch, "POST", "af-lab", "clusters", body={"profile": "slurm"}, expect=201)
    cid = cluster["id"]
    slurm.stop_controller()
    try:
        status, body = await call(jp_fetch, "GET", "af-lab", "clusters", cid, "jobs")
        assert status == 503 and "SLURM is unavailable" in body["error"]["message"], body
        status, body = await call(jp_fetch, "PATCH", "af-lab", "clusters", cid, body={"workers": 1})
        assert status == 503 and "SLURM is unavailable" in body["error"]["message"], body
    finally:
        slurm.start_controller()
    await call(jp_fetch, "DELETE", "af-lab", "clusters", cid, expect=204)
    assert squeue(slurm, cid) == {}


def test_slurm_profile_needs_no_disk(facility, slurm):
    from af_lab.clusters.profiles import load_profiles

    loaded, errors = load_profiles(profiles(facility))
    assert errors == [] and loaded["slurm"].fields == ("cores", "memory", "gpus", "workers", "adapt")
    assert Path(loaded["slurm"].settings["worker_launcher"]).name == "worker-python"


# ---------------------------------------------------------------------------- server killed mid-submit
@pytest.fixture
def restartable(facility, slurm, unique, tmp_path):
    """Real ``jupyter server`` processes on one state dir (see test_clusters_restart.py); cleaned up by pid/tag."""
    import condor_standin
    from test_clusters_restart import LabServer

    state_dir = facility.root / "af-lab-state" / f"r-{unique}"
    aflab = {"state_dir": str(state_dir), "cache_dir": str(facility.root / "cache"),
             "cluster_profiles": profiles(facility), "default_cluster_profile": "slurm",
             "cluster_monitor_interval": 0.5, "cluster_idle_timeout": 0.0, "cluster_survive_restart": True}
    servers: list = []

    def start(name: str):
        server = LabServer(tmp_path, aflab, {}, name).start()
        servers.append(server)
        return server

    start.state_dir = state_dir
    yield start
    import signal

    for server in servers:
        server.stop(signal.SIGKILL)
    condor_standin.kill_all(condor_standin.processes_mentioning(str(state_dir)))


def active(slurm, cluster_id: str) -> set[str]:
    return {j for j, s in squeue(slurm, cluster_id).items() if s in ("PENDING", "RUNNING", "CONFIGURING")}


def kill_when(server, predicate, request):
    """Run ``request`` in a thread and SIGKILL the server as soon as ``predicate`` holds."""
    import signal
    import threading

    thread = threading.Thread(target=lambda: _swallow(request), daemon=True)
    thread.start()
    wait_for(predicate, timeout=60, what="the submit to start")
    server.stop(signal.SIGKILL)
    thread.join(30)


def _swallow(request):
    try:
        request()
    except Exception:  # the server is killed under it
        pass


def test_server_killed_during_create_and_scale_leaves_no_untracked_job(restartable, slurm):
    import condor_standin

    a = restartable("server-a")
    cluster = a.api("POST", "clusters", {"profile": "slurm"}, expect=201)
    cid = cluster["id"]
    a.api("PATCH", f"clusters/{cid}", {"workers": 1, "wait": 120}, expect=200)
    # 1. Killed while scaling 1 -> 4: some sbatch calls done, maybe not recorded, others never made.
    kill_when(a, lambda: len(active(slurm, cid)) >= 2, lambda: a.api("PATCH", f"clusters/{cid}", {"workers": 4}))

    b = restartable("server-b")
    listed = {c["id"]: c for c in b.api("GET", "clusters", expect=200)["clusters"]}
    assert listed[cid]["state"] == "running", listed[cid]
    assert settled(b, slurm, cid), "what af-lab tracks is exactly what SLURM runs under the cluster's tag"
    b.api("PATCH", f"clusters/{cid}", {"workers": 2, "wait": 120}, expect=200)
    assert len(settled(b, slurm, cid)) == 2

    # 2. Killed while creating (submitting its first workers): the next server removes all of it.
    kill_when(b, lambda: bool(_new_tagged_jobs(slurm, {cid})),
              lambda: b.api("POST", "clusters", {"profile": "slurm", "workers": 3}))
    new_ids = _new_tagged_jobs(slurm, {cid})
    c = restartable("server-c")
    listed = {x["id"]: x for x in c.api("GET", "clusters", expect=200)["clusters"]}
    for other in new_ids:
        if other in listed:  # its record was saved: it is listed, and its jobs follow what it says
            assert settled(c, slurm, other) is not None
        else:
            assert active(slurm, other) == set()
    for cluster_id in [cid, *[o for o in new_ids if o in listed]]:
        c.api("DELETE", f"clusters/{cluster_id}", expect=204)
    for cluster_id in [cid, *new_ids]:
        assert active(slurm, cluster_id) == set()
    assert not condor_standin.wait_until_gone(condor_standin.processes_mentioning(str(restartable.state_dir)))


def settled(server, slurm, cluster_id: str) -> set[str] | None:
    """af-lab's live jobs once they equal SLURM's active jobs by tag (a cancel takes SLURM a moment)."""
    def same():
        jobs = server.api("GET", f"clusters/{cluster_id}/jobs", expect=200)["jobs"]
        tracked = {j["job_id"] for j in jobs if j["status"] in ("pending", "running")}
        return (tracked,) if tracked == active(slurm, cluster_id) else None

    return wait_for(same, timeout=30, what="af-lab's job list to match squeue")[0]


def _new_tagged_jobs(slurm, known: set[str]) -> set[str]:
    """Cluster ids (from job names af-<id>) of af-lab jobs in SLURM other than ``known``."""
    out = subprocess.run(["squeue", "-h", "-o", "%j"], env={**os.environ, **slurm.client_env()},
                         capture_output=True, text=True, check=True).stdout.split()
    return {name[3:] for name in out if name.startswith("af-") and name[3:] not in known}


# ---------------------------------------------------------------------------- files shipped in the job
async def test_shipped_files_reach_the_job_readable_only_by_its_user(facility, slurm, tmp_path):
    """TLS files and the token travel inside the job script and land 0600 in a 0700 job directory; a local
    path of a shipped file in the script points at the job's copy; no secret is in the environment."""
    import stat
    import sys

    from af_lab.clusters import tls
    from af_lab.clusters.backend import BackendContext
    from af_lab.clusters.profiles import ClusterOptions, Profile
    from af_lab.clusters.slurm import SlurmBackend

    token = tmp_path / "bearer_token"
    token.write_text("tok-" + uuid.uuid4().hex)
    token.chmod(0o600)
    # As dask-jobqueue would write --tls-*-file <path>: a server path of a shipped file, rewritten for the job.
    profile = Profile("slurm", "slurm", "SLURM", "", {}, {}, {
        **profiles(facility)["slurm"], "job_script_prologue": [f"export TOKEN_COPY={token}"],
    })
    submitted: dict[str, str] = {}
    cluster_id = str(uuid.uuid4())
    ctx = BackendContext(
        cluster_id=cluster_id, dask_name="ship-test", profile=profile,
        options=ClusterOptions(1, 2**28, None, 0, None, None, 0, None), run_dir=tmp_path / "run",
        python=sys.executable, env={"LANG": "C.UTF-8"}, tls=tls.create(tmp_path / "run" / "tls", cluster_id),
        token_file=token, on_submitted=submitted.__setitem__,
    )
    cluster = SlurmBackend().build(ctx)
    script = cluster.job_script()
    assert str(token) not in script and str(ctx.tls.ca) not in script  # the job never reads the server's copies
    assert f"-J af-{cluster_id}" in script and f"--comment=af-lab:{cluster_id}" in script
    await cluster
    try:
        cluster.scale(1)
        async with Client(cluster, asynchronous=True) as client:
            await client.wait_for_workers(1, timeout=120)

            def look():
                import os
                import stat as st

                job_dir = os.environ["AF_LAB_JOB_DIR"]
                names = ("bearer_token", "ca.pem", "worker.pem", "worker-key.pem")
                return {"token": open(os.environ["BEARER_TOKEN_FILE"]).read(),
                        "copy": os.environ["TOKEN_COPY"], "job_dir": job_dir,
                        "modes": {n: st.S_IMODE(os.stat(f"{job_dir}/{n}").st_mode) for n in names},
                        "dir_mode": st.S_IMODE(os.stat(job_dir).st_mode),
                        "ca_conf": os.environ["DASK_DISTRIBUTED__COMM__TLS__CA_FILE"],
                        "secret_in_env": any("tok-" in v or "PRIVATE KEY" in v for v in os.environ.values())}

            (seen,) = (await client.run(look)).values()
        assert seen["token"] == token.read_text()
        assert seen["copy"] == f"{seen['job_dir']}/bearer_token"
        assert seen["ca_conf"] == f"{seen['job_dir']}/ca.pem"
        assert set(seen["modes"].values()) == {stat.S_IRUSR | stat.S_IWUSR} and seen["dir_mode"] == stat.S_IRWXU
        assert seen["secret_in_env"] is False
        assert len(submitted) == 1
    finally:
        await cluster.close()
    wait_for(lambda: not slurm.leftover_pids(), what="the job to end")
