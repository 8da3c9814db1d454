"""Process plumbing shared by every facility service.

Each service process is started detached (own session, stdio to a log file),
tracked by a PID file under ``<state>/run/`` and stopped by that PID only after
checking ``/proc/PID/cmdline`` still looks like the process we started, so a
stale PID file can never make us kill an unrelated process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"


class ServiceError(RuntimeError):
    """A facility service failed; the message names the service and its log."""

    def __init__(self, service: str, reason: str, log: Path | None = None):
        self.service = service
        self.reason = reason
        self.log = log
        where = f" (log: {log})" if log else ""
        super().__init__(f"{service}: {reason}{where}")


def free_port(count: int = 1) -> int:
    """Return a loopback port P such that P..P+count-1 are all free now."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind((LOOPBACK, 0))
            base = s.getsockname()[1]
        if base + count > 65535:
            continue
        if all(port_is_free(base + i) for i in range(count)):
            return base
    raise RuntimeError(f"no run of {count} free loopback ports found")


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def port_answers(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "Z":
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            return False
    return True


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@dataclass
class ManagedProcess:
    """One long-running service process with a PID file and a log file.

    ``marker`` is a substring that must appear in the process's command line
    for it to be considered ours (protects against PID reuse).
    """

    name: str
    pid_file: Path
    log_file: Path
    marker: str

    def read_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def running_pid(self) -> int | None:
        pid = self.read_pid()
        if pid and pid_alive(pid) and self.marker in cmdline(pid):
            return pid
        return None

    def is_running(self) -> bool:
        return self.running_pid() is not None

    def clear_stale(self) -> bool:
        """Remove a PID file whose process is gone. Returns True if it was stale."""
        if self.pid_file.exists() and not self.is_running():
            self.pid_file.unlink(missing_ok=True)
            return True
        return False

    def start(
        self,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        pid_from_file: Path | None = None,
    ) -> int:
        """Start ``argv`` detached. ``pid_from_file``: the program writes its own PID there
        (e.g. it daemonizes); otherwise the child's PID is recorded."""
        if self.is_running():
            raise ServiceError(self.name, f"already running as PID {self.read_pid()}", self.log_file)
        self.clear_stale()
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        full_env = {**os.environ, **(env or {})}
        if user:
            argv = ["runuser", "-u", user, "--", *argv]
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=full_env,
                cwd=cwd,
                start_new_session=True,
            )
        pid = proc.pid
        if pid_from_file is None:
            self.pid_file.write_text(f"{pid}\n")
        else:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with contextlib.suppress(OSError, ValueError):
                    pid = int(pid_from_file.read_text().strip())
                    break
                if proc.poll() is not None and proc.returncode != 0:
                    raise ServiceError(self.name, f"exited with code {proc.returncode}", self.log_file)
                time.sleep(0.05)
            self.pid_file.write_text(f"{pid}\n")
        self._popen = proc
        wait_for_exec(self)
        return pid

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``ready`` until true; fail fast (and clean up) if the process dies."""
        deadline = time.monotonic() + timeout
        pid = self.read_pid()
        while time.monotonic() < deadline:
            # Only "is the PID we just started gone" here, not is_running(): a wrapper
            # that execs (setpriv -> postgres) has an empty cmdline for a moment.
            if pid is None or not pid_alive(pid):
                raise ServiceError(self.name, f"exited before {what}; last log lines:\n{self.tail()}", self.log_file)
            with contextlib.suppress(Exception):
                if ready():
                    return
            time.sleep(0.1)
        self.stop()
        raise ServiceError(self.name, f"not {what} after {timeout:.0f} s; last log lines:\n{self.tail()}", self.log_file)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> bool:
        """Stop the process (and its process group). Returns True if something was stopped."""
        pid = self.running_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.05)
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while pid_alive(pid):
                time.sleep(0.05)
        # Reap our own child if we are its parent (avoids zombies in long test sessions).
        popen = getattr(self, "_popen", None)
        if popen is not None:
            with contextlib.suppress(Exception):
                popen.wait(timeout=1)
        self.pid_file.unlink(missing_ok=True)
        return True

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def wait_for_exec(process: ManagedProcess, timeout: float = 10.0) -> None:
    """Wait until the PID ``process`` just recorded shows its ``marker`` in /proc/PID/cmdline.

    ``Popen`` returns once the child's close-on-exec pipe closes, which the kernel
    does a moment *before* it installs the new program's arguments: for that
    moment cmdline is still the parent's (or empty), so ``is_running()`` (and
    ``wait_until``, which checks it first) can report a fresh process as gone.
    Returns early if the process really exits; ``wait_until`` then reports it.
    """
    pid = process.read_pid()
    if pid is None:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid) and process.marker not in cmdline(pid):
        time.sleep(0.005)
