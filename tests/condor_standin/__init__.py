"""Helpers for tests that drive the HTCondor stand-in (see ``standin.py``; it is not HTCondor).

``environment(dir)`` is what a test puts in ``os.environ`` so that ``condor_*``
on ``$PATH`` are the stand-in's; the other helpers read its queue and find the
processes its jobs started, so a test can prove nothing was left behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
BIN = HERE / "bin"


def environment(state_dir: Path, slots: int | None = None) -> dict[str, str]:
    state_dir.mkdir(parents=True, exist_ok=True)
    if slots is not None:
        set_slots(state_dir, slots)
    return {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "FAKE_CONDOR_DIR": str(state_dir),
        "FAKE_CONDOR_PYTHON": sys.executable,
    }


def set_slots(state_dir: Path, slots: int | None) -> None:
    (state_dir / "config.json").write_text(json.dumps({} if slots is None else {"slots": slots}))


def run(command: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / command), *args], capture_output=True, text=True, env={**os.environ, **(env or {})})


def _read(paths) -> list[dict]:
    out = []
    for p in sorted(paths):
        try:
            out.append(json.loads(p.read_text()))
        except (OSError, ValueError):
            pass
    return out


def queued(state_dir: Path) -> list[dict]:
    """Jobs still in the queue (as last written; ``condor_q`` would also advance the queue)."""
    return _read(Path(state_dir).glob("queue/*.json"))


def history(state_dir: Path) -> list[dict]:
    return _read(Path(state_dir).glob("history/*.json"))


def job_processes(state_dir: Path) -> list[psutil.Process]:
    """Live processes (job shells, dask nannies and workers) started by the stand-in's jobs."""
    root = str(Path(state_dir).resolve())
    found = []
    for proc in psutil.process_iter(["pid", "cwd", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if (proc.info["cwd"] or "").startswith(root):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def processes_mentioning(text: str) -> list[psutil.Process]:
    """Live processes whose command line contains ``text`` (e.g. a scheduler file path)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and any(text in a for a in proc.info["cmdline"] or ()):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def wait_until_gone(procs: list[psutil.Process], timeout: float = 15.0) -> list[psutil.Process]:
    """Wait for processes to exit; returns those still alive (zombies count as gone)."""
    deadline = time.monotonic() + timeout
    alive = list(procs)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _alive(p)]
        if alive:
            time.sleep(0.1)
    return alive


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def kill_all(procs: list[psutil.Process]) -> None:
    """Last-resort cleanup of processes a failed test left behind (by pid, never by name)."""
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
