"""The facility command and what the sidebar's status panel reports against it."""

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from af_facility.procs import cmdline, pid_alive

pytestmark = pytest.mark.facility
REPO = Path(__file__).resolve().parents[1]


def run_cli(facility, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "af_facility", "--dir", str(facility.root), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=600)


async def test_status_panel_shows_every_service_connected(jp_fetch, facility):
    resp = await jp_fetch("af-lab", "status")
    services = {s["id"]: s for s in json.loads(resp.body)["services"]}
    expected = {"rucio:demo", "vault", "cache", "dask"}
    if facility.state.services.get("xrootd", {}).get("available"):
        expected.add("xcache")
    assert expected <= set(services)
    for sid in expected:
        assert services[sid]["state"] == "connected", services[sid]
    assert services["dask"]["details"]["workers"] >= 1
    assert services["vault"]["details"]["user"] == "jdoe"


def test_second_up_reuses_running_services(facility):
    pids_before = {p.name: p.read_text() for p in (facility.root / "run").glob("*.pid")}
    t0 = time.monotonic()
    result = run_cli(facility, "up")
    assert result.returncode == 0, result.stderr
    assert "reused" in result.stdout
    pids_after = {p.name: p.read_text() for p in (facility.root / "run").glob("*.pid")}
    assert pids_after == pids_before  # nothing restarted
    print(f"warm up: {time.monotonic() - t0:.1f} s")


def test_status_command_lists_running_services(facility):
    result = run_cli(facility, "status")
    assert result.returncode == 0
    lines = dict(line.split() for line in result.stdout.splitlines())
    for name in ("rucio", "openbao", "dask"):
        assert lines[name] == "running"


def test_every_tracked_process_is_alive_and_ours(facility):
    for pid_file in (facility.root / "run").glob("*.pid"):
        pid = int(pid_file.read_text())
        assert pid_alive(pid), pid_file.name
        assert cmdline(pid), pid_file.name


def test_demo_lab_comes_up_with_every_service_connected(facility):
    """What ``./dev.sh demo`` gives a user: JupyterLab whose af-lab status shows the facility connected."""
    import requests

    result = run_cli(facility, "up", "--only", "lab")
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        lab = facility.state.load(facility.root).services["lab"]
        assert lab["url"] in result.stdout
        base = lab["url"].split("/lab?")[0]
        headers = {"Authorization": f"token {lab['token']}"}
        services = requests.get(f"{base}/af-lab/status", headers=headers, timeout=30).json()["services"]
        states = {s["id"]: s["state"] for s in services}
        assert all(state == "connected" for state in states.values()), states
        assert requests.get(f"{base}/af-lab/status", timeout=30).status_code == 403  # no token, no answer
        labext = requests.get(f"{base}/lab/api/extensions", headers=headers, timeout=30).json()
        assert any(ext["name"] == "af-lab" and ext["enabled"] for ext in labext)
    finally:
        run_cli(facility, "down", "--only", "lab")
    assert not (facility.root / "run" / "lab.pid").exists()


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() != 0, reason="needs root")
def test_postgres_lives_where_its_user_can_reach_it():
    """A repo cloned under a private directory (a 0700 home, a mktemp dir): postgres runs as
    its own user and could not reach a cluster under the state dir (initdb: Permission denied)."""
    from af_facility.base import FacilityState, traversable_by
    from af_facility.rucio_server import RucioServer

    root = Path(tempfile.mkdtemp(prefix="af-lab-pgpath-"))  # pytest's tmp_path is itself private
    root.chmod(0o755)
    open_parent, private_parent = root / "open", root / "private"
    open_parent.mkdir()
    private_parent.mkdir()
    private_parent.chmod(0o700)
    assert traversable_by("postgres", open_parent / "facility")
    assert not traversable_by("postgres", private_parent / "facility")

    at_home = RucioServer(FacilityState(open_parent / "facility"))
    assert at_home.pg_data.is_relative_to(open_parent)
    moved = RucioServer(FacilityState(private_parent / "facility"))
    assert not moved.pg_data.is_relative_to(private_parent) and traversable_by("postgres", moved.pg_data)
    assert not moved.pg_socket_dir.is_relative_to(private_parent)
    shutil.rmtree(root)
