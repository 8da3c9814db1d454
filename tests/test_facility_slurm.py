"""The facility's SLURM, run for real: private munged + slurmctld + slurmd under the state dir.

Each test module brings up its own SLURM in a fresh directory and stops it by PID.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from af_facility.base import FacilityState
from af_facility.procs import cmdline, pid_alive
from af_facility.slurm import Slurm

pytestmark = pytest.mark.skipif(shutil.which("slurmctld") is None and not Path("/usr/sbin/slurmctld").exists(),
                                reason="slurm-wlm is not installed")


@pytest.fixture(scope="module")
def slurm():
    root = Path(tempfile.mkdtemp(prefix="af-facility-slurm-"))
    root.chmod(0o755)
    state = FacilityState.load(root)
    svc = Slurm(state)
    try:
        state.services["slurm"] = svc.up()
        state.save()
        yield svc
    finally:
        svc.down()
        shutil.rmtree(root, ignore_errors=True)


def run(svc: Slurm, *argv: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), env={**os.environ, **svc.client_env()}, capture_output=True, text=True,
                          timeout=30, check=False, **kw)


def wait_job(svc: Slurm, job_id: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = run(svc, "scontrol", "-o", "show", "job", job_id).stdout
        state = next((f.split("=", 1)[1] for f in out.split() if f.startswith("JobState=")), "")
        if state in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL"):
            return out
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not end: {out}")


def test_daemons_run_privately_on_free_ports(slurm):
    info = slurm.info
    pids = {n: p.read_pid() for n, p in (("munged", slurm.munged), ("slurmctld", slurm.slurmctld), ("slurmd", slurm.slurmd))}
    assert all(pid and pid_alive(pid) for pid in pids.values()), pids
    assert str(slurm.conf) in cmdline(pids["slurmctld"]) and str(slurm.conf) in cmdline(pids["slurmd"])
    # The private munged: its own socket and key under the state dir, nothing system-wide.
    assert f"--socket={slurm.socket}" in cmdline(pids["munged"])
    key = slurm.munge_dir / "munge.key"
    assert key.stat().st_mode & 0o077 == 0
    assert f"AuthInfo=socket={slurm.socket}" in slurm.conf.read_text()
    assert info["slurmctld_port"] != info["slurmd_port"]
    assert f"SlurmctldPort={info['slurmctld_port']}" in slurm.conf.read_text()
    assert run(slurm, "sinfo", "-h", "-o", "%P %t").stdout.split() == [f"{info['partition']}*", "idle"]


def test_a_job_runs_and_reports_its_exit_code(slurm):
    out_dir = Path(slurm.info["job_dir"])
    ok = run(slurm, "sbatch", "--parsable", "-o", f"{out_dir}/%j.out", "--wrap", "echo hello-from-slurm")
    assert ok.returncode == 0, ok.stderr
    job = ok.stdout.strip().split(";")[0]
    assert "JobState=COMPLETED" in wait_job(slurm, job)
    assert (out_dir / f"{job}.out").read_text().strip() == "hello-from-slurm"
    bad = run(slurm, "sbatch", "--parsable", "-o", f"{out_dir}/%j.out", "--wrap", "exit 3")
    assert "ExitCode=3:0" in wait_job(slurm, bad.stdout.strip())


def test_a_gpu_request_is_refused_at_once_on_this_gpu_less_node(slurm):
    res = run(slurm, "sbatch", "--gres=gpu:1", "--wrap", "true")
    assert res.returncode != 0
    assert "Requested node configuration is not available" in res.stderr


def test_worker_wrapper_hides_the_facility_directories(slurm):
    root = slurm.state.root
    (root / "workspace").mkdir(exist_ok=True)
    (root / "workspace" / "notes.txt").write_text("private")
    (root / "cache").mkdir(exist_ok=True)
    probe = (
        "import os, sys\n"
        "for d in sys.argv[1:]:\n"
        "    try:\n"
        "        print(d, 'LISTED', os.listdir(d))\n"
        "    except OSError as e:\n"
        "        print(d, 'HIDDEN', type(e).__name__)\n"
        "print('pid', os.getpid())\n"
    )
    out_dir = Path(slurm.info["job_dir"])
    wrapper = slurm.info["worker_python"]
    cmd = f"{wrapper} {sys.executable} -c \"{probe}\" {root / 'workspace'} {root / 'cache'} /usr"
    sub = run(slurm, "sbatch", "--parsable", "--export=NONE", "-o", f"{out_dir}/%j.out", "--wrap", cmd)
    assert sub.returncode == 0, sub.stderr
    job = sub.stdout.strip()
    assert "JobState=COMPLETED" in wait_job(slurm, job)
    text = (out_dir / f"{job}.out").read_text()
    assert f"{root / 'workspace'} HIDDEN" in text, text
    assert f"{root / 'cache'} HIDDEN" in text, text
    assert "/usr LISTED" in text, text  # the rest of the machine (the software) is there
    assert "pid 1\n" in text  # its own PID namespace: no /proc/<pid>/root of the notebook's processes


def test_down_leaves_no_process_even_with_a_running_job(slurm):
    out_dir = Path(slurm.info["job_dir"])
    sub = run(slurm, "sbatch", "--parsable", "--export=NONE", "-o", f"{out_dir}/%j.out", "--wrap", "sleep 300")
    job = sub.stdout.strip()
    deadline = time.monotonic() + 20
    while "RUNNING" not in run(slurm, "squeue", "-h", "-j", job, "-o", "%T").stdout and time.monotonic() < deadline:
        time.sleep(0.2)
    while not slurm.leftover_pids() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert slurm.leftover_pids(), "the running job's processes are recognised as this SLURM's"
    pids = [p.read_pid() for p in (slurm.munged, slurm.slurmctld, slurm.slurmd)]
    job_pids = slurm.leftover_pids()
    slurm.down()
    assert not any(pid_alive(p) for p in [*pids, *job_pids])
    assert not slurm.running()
    # up again on the same directory (what a second `up` does), for the module's other tests
    slurm.state.services["slurm"] = slurm.up()
    assert slurm.running()
