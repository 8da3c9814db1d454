"""The README's promise: the demo facility comes up from a clone wherever it is, and stops cleanly.

A copy of this working tree (what ``git clone`` gives) is placed under a 0700
directory, like a clone in root's home. ``python -m af_facility up`` must bring
every service up (the xrootd and postgres users included) without opening the
home or any parent, record where it put what those users read, and reuse exactly
that on the next ``up``. Ctrl-C during ``up`` stops what was started, without a
traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from af_facility.facility import DEFAULT_SERVICES

pytestmark = pytest.mark.facility

REPO = Path(__file__).resolve().parent.parent


def _clone_into(parent: Path) -> Path:
    """The tracked and new files of this tree, as a clone would have them (no venvs, no state)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                            check=True).stdout.decode().split("\0")  # fmt: skip
    clone = parent / "af-lab"
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file() and not rel.startswith(("node_modules/", "ui-tests/")):
            (clone / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, clone / rel)
    return clone


def _facility(clone: Path, *args: str, **popen) -> subprocess.CompletedProcess | subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(clone), "AF_DEMO_BIG_FILES": "100",
           "AF_RUCIO_SERVER_VENV": os.environ.get("AF_RUCIO_SERVER_VENV", str(REPO / ".venv-rucio-server"))}  # fmt: skip
    argv = [sys.executable, "-m", "af_facility", "--dir", str(clone / ".facility"), *args]
    if popen:
        return subprocess.Popen(argv, cwd=clone, env=env, text=True, **popen)
    return subprocess.run(argv, cwd=clone, env=env, capture_output=True, text=True, timeout=900)


def _cleanup(clone: Path) -> None:
    _facility(clone, "down")
    state = clone / ".facility" / "facility.json"
    if state.exists():
        shared = json.loads(state.read_text()).get("placement", {}).get("shared")
        if shared and not Path(shared).is_relative_to(clone):
            shutil.rmtree(shared, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="the service users only matter when root starts the facility")
def test_the_demo_comes_up_from_a_clone_under_a_private_home():
    outer = Path(tempfile.mkdtemp(prefix="af-lab-home-"))
    home = outer / "home"
    home.mkdir(mode=0o700)
    clone = _clone_into(home)
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in (outer, home)}
    try:
        first = _facility(clone, "up")
        assert first.returncode == 0, first.stdout + first.stderr
        assert "Traceback" not in first.stdout + first.stderr
        data = json.loads((clone / ".facility" / "facility.json").read_text())
        services, placement = data["services"], data["placement"]
        assert all(services[name]["available"] for name in DEFAULT_SERVICES), services
        # Nothing was opened up; what the service users read lives outside the private home.
        assert {p: stat.S_IMODE(p.stat().st_mode) for p in modes} == modes
        for key in ("postgres", "rse", "xrootd"):
            assert not Path(placement[key]).is_relative_to(home), placement
        # Served for real by the xrootd user: a demo file through the origin.
        stat_file = subprocess.run(["xrdfs", services["xrootd"]["origin_url"], "stat", "/rse/SITE1_USERDISK"],
                                   capture_output=True, text=True, timeout=30)  # fmt: skip
        assert stat_file.returncode == 0, stat_file.stderr

        second = _facility(clone, "up")
        assert second.returncode == 0 and second.stdout.count("reused") == len(DEFAULT_SERVICES), second.stdout
        assert json.loads((clone / ".facility" / "facility.json").read_text())["placement"] == placement

        # Down and up again (the case that once moved PostgreSQL and crashed): same places, same data.
        assert _facility(clone, "down").returncode == 0
        third = _facility(clone, "up")
        assert third.returncode == 0, third.stdout + third.stderr
        assert json.loads((clone / ".facility" / "facility.json").read_text())["placement"] == placement
    finally:
        _cleanup(clone)
        shutil.rmtree(outer, ignore_errors=True)


def test_ctrl_c_during_up_stops_what_it_started_without_a_traceback():
    parent = Path(tempfile.mkdtemp(prefix="af-lab-ctrlc-"))
    clone = _clone_into(parent)
    try:
        proc = _facility(clone, "up", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        assert proc.stdout.readline().startswith("af-lab demo facility in")
        time.sleep(8)  # inside Rucio's start: PostgreSQL and memcached run, gunicorn is coming up
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal sends on Ctrl-C
        out, _ = proc.communicate(timeout=180)
        assert proc.returncode == 130, out
        assert "Traceback" not in out and "interrupted" in out, out
        time.sleep(1)
        left = []
        for p in psutil.process_iter(["pid", "cmdline"]):
            if str(clone) in " ".join(p.info["cmdline"] or []):
                left.append(p.info["cmdline"])
        assert left == [], f"still running after Ctrl-C: {left}"
    finally:
        _cleanup(clone)
        shutil.rmtree(parent, ignore_errors=True)


def test_a_failed_service_is_named_with_its_log_and_the_rest_comes_up(monkeypatch):
    from af_facility.facility import Facility
    from af_facility.procs import ServiceError

    root = Path(tempfile.mkdtemp(prefix="af-lab-partial-"))
    root.chmod(0o755)
    monkeypatch.setenv("AF_RUCIO_SERVER_VENV", str(root / "no-such-venv"))
    fac = Facility(root)
    lines: list[str] = []
    try:
        with pytest.raises(ServiceError) as err:
            fac.up(["rucio", "openbao", "demo"], log=lines.append)
        assert "rucio" in err.value.service and "demo" in err.value.service
        assert "no-such-venv" in str(err.value) and "needs rucio" in str(err.value)
        assert any(line.split()[:2] == ["openbao", "up"] for line in lines), lines
        assert fac.service("openbao").running(), "the service that could start is running"
        assert not fac.service("rucio").running()
    finally:
        fac.down(log=lambda *_: None)
        shutil.rmtree(root, ignore_errors=True)
