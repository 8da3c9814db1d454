"""The Jupyter server restarting while clusters run: reattach to a live scheduler, or remove the jobs.

These tests run real ``jupyter server`` processes (af-lab and dask-labextension
enabled, 127.0.0.1, the HTCondor stand-in on $PATH) and stop them the way a
hub does (SIGTERM) or the way a crash does (SIGKILL), then start a new one on
the same state directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import condor_standin
import psutil
import pytest
import requests
from condor_standin.profiles import settings
from distributed import Client

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """One ``jupyter server`` process with af-lab configured; stopped by pid."""

    def __init__(self, root: Path, aflab: dict, env: dict[str, str], name: str):
        self.root, self.name = root, name
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "ServerApp": {
                "jpserver_extensions": {"af_lab": True, "dask_labextension": True, "jupyter_server_proxy": True},
                "ip": "127.0.0.1", "port": self.port, "port_retries": 0, "open_browser": False,
                "root_dir": str(root / "work"), "allow_root": True,
                "IdentityProvider": {"token": self.token},
            },
            "IdentityProvider": {"token": self.token},
            "AFLab": aflab,
        }
        (root / "work").mkdir(exist_ok=True)
        self.config_file = root / f"{name}.json"
        self.config_file.write_text(json.dumps(config))
        self.env = {
            **os.environ, **env,
            "PYTHONPATH": str(REPO),
            "JUPYTER_CONFIG_DIR": str(root / "jupyter-config"),
            "JUPYTER_DATA_DIR": str(root / "jupyter-data"),
            "JUPYTER_RUNTIME_DIR": str(root / "jupyter-runtime"),
        }
        self.proc: subprocess.Popen | None = None

    def start(self) -> LabServer:
        self.log = open(self.root / f"{self.name}.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", f"--config={self.config_file}"],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.root,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"{self.name} exited:\n{self.log_text()}"
            try:
                if requests.get(f"{self.url}/api/status", headers=self.headers, timeout=2).ok:
                    return self
            except (requests.ConnectionError, requests.Timeout):  # not up yet, or a busy machine
                pass
            time.sleep(0.2)
        raise AssertionError(f"{self.name} did not start:\n{self.log_text()}")

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def log_text(self) -> str:
        return (self.root / f"{self.name}.log").read_text(errors="replace")[-4000:]

    def api(self, method: str, path: str, body=None, expect: int | None = None):
        resp = requests.request(method, f"{self.url}/af-lab/{path}", headers=self.headers,
                                data=None if body is None else json.dumps(body), timeout=180)
        data = resp.json() if resp.content else None
        if expect is not None:
            assert resp.status_code == expect, f"{method} {path} -> {resp.status_code}: {data}"
        return data

    def stop(self, sig: int) -> None:
        """SIGTERM: a hub stopping the server; SIGKILL: a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def lab(tmp_path):
    """Start servers on one state directory; everything they or their clusters started dies with the test."""
    queue = tmp_path / "condor"
    env = condor_standin.environment(queue)
    aflab = {**settings(cluster_survive_restart=True), "state_dir": str(tmp_path / "state"),
             "cache_dir": str(tmp_path / "cache")}
    servers: list[LabServer] = []

    def start(name: str, **overrides) -> LabServer:
        server = LabServer(tmp_path, {**aflab, **overrides}, env, name).start()
        servers.append(server)
        return server

    start.queue, start.state_dir, start.env = queue, tmp_path / "state", env
    yield start
    for server in servers:
        server.stop(signal.SIGKILL)
    condor_standin.kill_all(condor_standin.job_processes(queue))
    condor_standin.kill_all(condor_standin.processes_mentioning(str(tmp_path / "state")))


def condor_q(lab) -> list[str]:
    return condor_standin.run("condor_q", "-af:j", "JobStatus", env=lab.env).stdout.split()[::2]


def wait_for(predicate, timeout=90.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def scheduler_pid(lab, cluster_id: str) -> int:
    record = json.loads((lab.state_dir / "clusters" / f"{cluster_id}.json").read_text())
    return record["scheduler"]["pid"]


def tls_client(server: LabServer, cluster: dict, runtime: Path) -> Client:
    """A Client as a kernel makes one: the cluster's certificate comes from af-lab's REST API."""
    from af_lab.kernel.cluster_tls import client_security

    data = server.api("GET", f"clusters/{cluster['id']}/client", expect=200)
    return Client(data["address"], security=client_security(cluster["id"], data, str(runtime)), timeout=30)


def job_pids(server: LabServer, cluster: dict) -> list[int]:
    """A local cluster's workers: process groups found by the cluster's tag (job id = pid)."""
    jobs = server.api("GET", f"clusters/{cluster['id']}/jobs", expect=200)["jobs"]
    return [int(j["job_id"]) for j in jobs if j["status"] == "running"]


def test_restart_reattaches_to_the_running_scheduler(lab, tmp_path):
    a = lab("server-a")
    htc = a.api("POST", "clusters", {"profile": "htcondor"}, expect=201)
    a.api("PATCH", f"clusters/{htc['id']}", {"workers": 2, "wait": 120}, expect=200)
    with tls_client(a, htc, tmp_path / "rt") as client:
        client.publish_dataset(answer=client.scatter(42))  # state on the scheduler that must survive
    local = a.api("POST", "clusters", {"profile": "local", "workers": 1}, expect=201)
    local_pids = job_pids(a, local)
    assert len(local_pids) == 1

    # 1. The hub stops the server (SIGTERM): both clusters stay (schedulers and workers are their own processes).
    a.stop(signal.SIGTERM)
    assert psutil.pid_exists(scheduler_pid(lab, htc["id"])) and psutil.pid_exists(scheduler_pid(lab, local["id"]))
    assert len(condor_q(lab)) == 2
    assert all(psutil.pid_exists(p) for p in local_pids)

    b = lab("server-b")
    listed = {c["id"]: c for c in b.api("GET", "clusters", expect=200)["clusters"]}
    assert set(listed) == {htc["id"], local["id"]}
    cluster = listed[htc["id"]]
    assert cluster["state"] == "running"
    assert cluster["message"] == "Reattached after a server restart (2 running job(s) kept)."
    assert cluster["scheduler_address"] == htc["scheduler_address"]
    assert listed[local["id"]]["message"] == "Reattached after a server restart (1 running job(s) kept)."
    wait_for(lambda: b.api("GET", f"clusters/{htc['id']}")["workers"] == 2, what="2 workers after reattach")
    with tls_client(b, htc, tmp_path / "rt") as client:
        assert client.get_dataset("answer").result() == 42
        assert client.submit(sum, [1, 2]).result() == 3
    with tls_client(b, local, tmp_path / "rt") as client:
        assert client.submit(sum, [1, 2, 3]).result() == 6
    jobs = b.api("GET", f"clusters/{htc['id']}/jobs", expect=200)
    assert jobs["counts"] == {"submitted": 2, "idle": 0, "running": 2, "held": 0, "done": 0}
    # dask-labextension lists the reattached clusters too.
    resp = requests.get(f"{b.url}/dask/clusters", headers=b.headers, timeout=30)
    assert {c["id"] for c in resp.json()} == {htc["id"], local["id"]}

    # 2. The server crashes (SIGKILL) right after a condor_submit returned: that job's id never reached
    #    the record. The next server reattaches, finds the untracked job by its tag and removes it.
    b.stop(signal.SIGKILL)
    record_file = lab.state_dir / "clusters" / f"{htc['id']}.json"
    record = json.loads(record_file.read_text())
    dropped = sorted(record["jobs"])[-1]
    del record["jobs"][dropped]
    record_file.write_text(json.dumps(record))
    c = lab("server-c")
    listed = {x["id"]: x for x in c.api("GET", "clusters", expect=200)["clusters"]}
    assert listed[htc["id"]]["state"] == "running" and listed[local["id"]]["state"] == "running"
    assert listed[htc["id"]]["message"] == "Reattached after a server restart (1 running job(s) kept)."
    assert dropped not in condor_q(lab)
    # It asked for 2 workers: the reattached cluster submits a replacement for the removed job.
    wait_for(lambda: len(condor_q(lab)) == 2, what="a replacement job")

    # Scaling after the reattach reaches the adopted jobs.
    c.api("PATCH", f"clusters/{htc['id']}", {"workers": 1}, expect=200)
    assert len(condor_q(lab)) == 1
    c.api("DELETE", f"clusters/{htc['id']}", expect=204)
    c.api("DELETE", f"clusters/{local['id']}", expect=204)
    assert condor_q(lab) == []
    assert not condor_standin.wait_until_gone([psutil.Process(p) for p in local_pids if psutil.pid_exists(p)])
    assert not condor_standin.wait_until_gone(condor_standin.job_processes(lab.queue))
    assert not condor_standin.wait_until_gone(condor_standin.processes_mentioning(str(lab.state_dir)))


def test_restart_without_a_live_scheduler_removes_every_job(lab):
    a = lab("server-a")
    running = a.api("POST", "clusters", {"profile": "htcondor"}, expect=201)
    a.api("PATCH", f"clusters/{running['id']}", {"workers": 1, "wait": 120}, expect=200)
    queued = a.api("POST", "clusters", {"profile": "htcondor-stuck", "workers": 1}, expect=201)
    assert len(condor_q(lab)) == 2

    a.stop(signal.SIGKILL)
    for cluster in (running, queued):
        os.kill(scheduler_pid(lab, cluster["id"]), signal.SIGKILL)
    # A crash right after condor_submit returned: the job id never reached the record.
    record_file = lab.state_dir / "clusters" / f"{queued['id']}.json"
    record = json.loads(record_file.read_text())
    record["jobs"] = {}
    record_file.write_text(json.dumps(record))

    b = lab("server-b")
    listed = {c["id"]: c for c in b.api("GET", "clusters", expect=200)["clusters"]}
    assert listed[running["id"]]["state"] == "failed"
    assert listed[running["id"]]["message"] == (
        "It could not be reattached after a server restart: its scheduler process is gone. "
        "Its 1 batch job(s) were removed."
    )
    assert listed[queued["id"]]["state"] == "failed"
    # Found and removed by its AFLabClusterId attribute, although af-lab never recorded its id.
    assert condor_q(lab) == []
    assert not condor_standin.wait_until_gone(condor_standin.job_processes(lab.queue))
    assert not condor_standin.wait_until_gone(condor_standin.processes_mentioning(str(lab.state_dir)))
    for cluster in (running, queued):
        b.api("DELETE", f"clusters/{cluster['id']}", expect=204)
    assert b.api("GET", "clusters", expect=200)["clusters"] == []


def test_a_cluster_nobody_comes_back_for_ends_by_itself(lab):
    """The server stops and no new one starts: the scheduler still applies the idle timeout."""
    a = lab("server-a", cluster_idle_timeout=3.0)
    htc = a.api("POST", "clusters", {"profile": "htcondor", "workers": 1}, expect=201)
    pid = scheduler_pid(lab, htc["id"])
    a.stop(signal.SIGTERM)
    assert not condor_standin.wait_until_gone([psutil.Process(pid)], timeout=60), "the idle scheduler must exit"
    # (Its worker would exit after its death timeout; the next server does not wait for that.)

    b = lab("server-b", cluster_idle_timeout=3.0)
    (cluster,) = b.api("GET", "clusters", expect=200)["clusters"]
    assert cluster["state"] == "stopped"
    assert cluster["message"].startswith("It was shut down after 3 s without tasks while the server was stopped.")
    assert condor_q(lab) == []
    assert not condor_standin.wait_until_gone(condor_standin.job_processes(lab.queue))
    b.api("DELETE", f"clusters/{htc['id']}", expect=204)


def test_kill_9_during_condor_submit_leaves_no_untracked_job(lab, tmp_path):
    """The server dies while condor_submit runs (the job is queued, its id never reached af-lab)."""
    slow = tmp_path / "slow-bin"
    slow.mkdir()
    flag = tmp_path / "slow-submit"
    wrapper = slow / "condor_submit"
    wrapper.write_text(f'#!/bin/sh\n"{condor_standin.BIN}/condor_submit" "$@"\nrc=$?\n'
                       f'[ -e "{flag}" ] && sleep 30\nexit $rc\n')
    wrapper.chmod(0o755)
    lab.env["PATH"] = f"{slow}{os.pathsep}{lab.env['PATH']}"

    a = lab("server-a")
    htc = a.api("POST", "clusters", {"profile": "htcondor"}, expect=201)
    flag.touch()
    def scale():
        with contextlib.suppress(requests.RequestException):  # the server dies under it
            requests.patch(f"{a.url}/af-lab/clusters/{htc['id']}", headers=a.headers,
                           data=json.dumps({"workers": 2}), timeout=120)

    scaling = threading.Thread(target=scale, daemon=True)
    scaling.start()
    wait_for(lambda: len(condor_q(lab)) >= 1, what="a job queued while condor_submit still runs")
    a.stop(signal.SIGKILL)
    flag.unlink()
    record = json.loads((lab.state_dir / "clusters" / f"{htc['id']}.json").read_text())
    queued_while_killed = set(condor_q(lab))
    assert queued_while_killed and not queued_while_killed & set(record["jobs"]), "af-lab never got these ids"

    b = lab("server-b")
    cluster = b.api("GET", f"clusters/{htc['id']}", expect=200)
    assert cluster["state"] == "running"
    # Every job carrying the cluster's tag is one af-lab tracks: the untracked ones were removed.
    wait_for(lambda: not (set(condor_q(lab)) & queued_while_killed), what="the untracked jobs removed")
    jobs = b.api("GET", f"clusters/{htc['id']}/jobs", expect=200)["jobs"]
    live = {j["job_id"] for j in jobs if j["status"] in ("idle", "running", "held")}
    assert set(condor_q(lab)) == live
    b.api("DELETE", f"clusters/{htc['id']}", expect=204)
    assert condor_q(lab) == []
    assert not condor_standin.wait_until_gone(condor_standin.job_processes(lab.queue))
    assert not condor_standin.wait_until_gone(condor_standin.processes_mentioning(str(lab.state_dir)))
