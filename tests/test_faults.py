"""Faults of the services around af-lab: each ends in a clear state that names its cause.

OpenBao refusing connections and OpenBao frozen (a port that accepts and never
answers), the real Rucio server frozen with SIGSTOP and then killed, a full cache,
and the Jupyter server itself killed in the middle of a publish. Each case runs a
real af-lab server process against the session's facility and asks it what a user
would: the status panel, a search, a publish check, a mount.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from tests.server_process import api, remove_tree, start

pytestmark = pytest.mark.facility


@pytest.fixture
def home():
    path = Path(tempfile.mkdtemp(prefix="af-lab-faults-"))
    yield path
    remove_tree(path)


@contextlib.contextmanager
def black_hole():
    """A loopback port that accepts connections and never answers: a frozen service."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


def refused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once closed


def status_of(server) -> dict[str, dict]:
    code, body = api(server, "GET", "status?refresh=1", timeout=60)
    assert code == 200, body
    return {s["id"]: s for s in body["services"]}


@pytest.mark.parametrize("vault", ["refused", "frozen"])
def test_openbao_down_is_named_as_vault_never_as_rucio(facility, home, vault):
    with black_hole() as frozen:
        address = refused_url() if vault == "refused" else frozen
        server = start(facility, home, vault_address=address, status_timeout=2.0)
        try:
            status = status_of(server)
            assert status["vault"]["state"] == "unreachable" and address.split("//")[1] in status["vault"]["message"]
            rucio = status["rucio:demo"]
            # Rucio answers its ping: it is not "unreachable"; what is missing is the login kept in Vault.
            assert rucio["state"] == "connected", rucio
            assert "Vault" in rucio["message"] and rucio["details"]["logged_in"] is False, rucio

            code, creds = api(server, "GET", "credentials", timeout=60)
            assert code == 200 and creds["vault"]["reachable"] is False

            code, err = api(server, "GET", "rucio/instances/demo/dids?q=cms_opendata:*", timeout=60)
            assert code == 503 and err["error"].get("service") == "vault", err
            assert "Vault" in err["error"]["message"]
        finally:
            server.stop()


def _gunicorn(facility) -> list[psutil.Process]:
    pid = facility.service("rucio").server.running_pid()
    master = psutil.Process(pid)
    return [master, *master.children(recursive=True)]


def test_rucio_frozen_then_killed_is_named_as_rucio(facility, home):
    server = start(facility, home, rucio_timeout=4.0, status_timeout=2.0)
    (server.root_dir / "h.root").write_bytes(os.urandom(100))
    try:
        procs = _gunicorn(facility)
        for p in procs:
            p.send_signal(signal.SIGSTOP)
        try:
            rucio = status_of(server)["rucio:demo"]
            assert rucio["state"] == "unreachable" and "does not answer" in rucio["message"], rucio
            code, err = api(server, "GET", "rucio/instances/demo/dids?q=cms_opendata:*&refresh=1", timeout=60)
            assert code == 503 and err["error"]["instance"] == "demo", err
            code, err = api(server, "POST", "publish/validate", {"paths": ["h.root"]}, timeout=60)
            assert code == 503 and "demo" in err["error"]["message"], err
        finally:
            for p in procs:
                with contextlib.suppress(psutil.NoSuchProcess):
                    p.send_signal(signal.SIGCONT)

        rucio_service = facility.service("rucio")
        rucio_service.down()
        try:
            rucio = status_of(server)["rucio:demo"]
            assert rucio["state"] == "unreachable", rucio
            code, err = api(server, "GET", "rucio/instances/demo/dids?q=cms_opendata:*&refresh=1", timeout=60)
            assert code == 503 and err["error"]["instance"] == "demo" and "unreachable" in err["error"]["message"]
            code, err = api(server, "POST", "publish/validate", {"paths": ["h.root"]}, timeout=60)
            assert code == 503 and "demo" in err["error"]["message"], err
            # What af-lab holds itself still answers.
            assert api(server, "GET", "mounts")[0] == 200
            assert status_of(server)["vault"]["state"] == "connected"
        finally:
            rucio_service.up()
        # Back: the same server process works again.
        code, page = api(server, "GET", "rucio/instances/demo/dids?q=cms_opendata:*&refresh=1", timeout=60)
        assert code == 200 and page["items"]
    finally:
        server.stop()


def test_a_full_cache_refuses_the_mount_with_the_numbers(facility, home):
    server = start(facility, home, cache_quota_bytes=1000)
    try:
        code, err = api(server, "POST", "mounts", {"did": "cms_opendata:ZZTo4mu"})
        assert code == 507 and err["error"]["type"] == "insufficient_storage", err
        assert err["error"]["needed_bytes"] > err["error"]["available_bytes"]
        assert api(server, "GET", "mounts")[1]["mounts"] == []
        assert status_of(server)["cache"]["state"] == "connected"
    finally:
        server.stop()


def test_jupyter_server_killed_mid_publish_resumes_the_job_after_restart(facility, home):
    folder = home / "ws" / f"run-{os.getpid()}-{int(time.time())}"
    folder.mkdir(parents=True)
    for i in range(40):
        (folder / f"part{i:02d}.root").write_bytes(os.urandom(200_000))
    server = start(facility, home)
    try:
        code, job = api(server, "POST", "publish/jobs", {"paths": [folder.name], "lifetime_days": 1,
                                                      "name_prefix": f"{folder.name}."})
        assert code == 202, job
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            now = api(server, "GET", f"publish/jobs/{job['id']}")[1]["job"]
            if now["progress"]["files_done"] >= 1 or now["state"] in ("done", "failed"):
                break
            time.sleep(0.05)
        os.kill(server.proc.pid, signal.SIGKILL)  # no shutdown hook runs: a crash
        server.proc.wait()
    finally:
        server.stop()

    server = start(facility, home)  # same workspace, cache and state
    try:
        # The new server resumes the job it finds unfinished (or it says why it cannot, and a retry resumes it).
        deadline = time.monotonic() + 180
        job = api(server, "GET", f"publish/jobs/{job['id']}")[1]["job"]
        while job["state"] not in ("done", "failed") and time.monotonic() < deadline:
            if job["state"] == "interrupted":
                assert job["resumable"] and job["message"], job
                code, job = api(server, "POST", f"publish/jobs/{job['id']}/retry")
                assert code == 202, job
            time.sleep(0.2)
            job = api(server, "GET", f"publish/jobs/{job['id']}")[1]["job"]
        assert job["state"] == "done" and job["progress"]["files_done"] == 40, (job["message"], job.get("error"))
    finally:
        server.stop()
