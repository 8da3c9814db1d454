"""A real SLURM on loopback: a private munged, slurmctld and one slurmd, all under ``<state>/slurm``.

Layout (``<state>`` is the facility's state root)::

    <state>/slurm/slurm.conf          the one config file (clients: ``SLURM_CONF=<this>``)
    <state>/slurm/munge/              private munged: its own key, socket, seed, pid (0700)
    <state>/slurm/state/, spool/      slurmctld state, slurmd spool (job scripts)
    <state>/slurm/logs/               the three daemons' logs
    <state>/slurm/bin/worker-python   the facility's worker wrapper (see below)

Nothing system-wide is touched: munged gets its own key and socket (slurm.conf's
``AuthInfo=socket=…`` points every SLURM program at it), the daemons run in the
foreground from this config (``-D -f``), on free ports, tracked by PID.

**Isolated workers.** A batch worker on a real site runs on another node: it sees
none of the notebook's disk. The facility reproduces that with ``worker-python``,
the ``python`` the demo ``slurm`` profile names: it enters a new mount and PID
namespace, mounts empty tmpfs over the facility's directories (the user's
workspace and cache, af-lab's state, the lab's runtime files, OpenBao's and
Rucio's state, slurmd's spool with the job scripts) and over any directory
listed in ``AF_HIDE_EXTRA`` at wrapper-creation time, gives the namespace its own
``/proc``, drops every capability (so the worker cannot unmount what hides the
directories) and execs the environment's python it was given. Jobs run as root here
(one machine, one user); only what af-lab ships in the job and what is reachable
by URL (root:// through the XCache) is available to the worker.

Stopping: every job is cancelled, the daemons are stopped by PID, then any
leftover process of this SLURM (slurmstepd, recognised by the instance's slurmd
log it keeps open, and every process below it) is killed by PID.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from .base import FacilityState, Service, Unavailable
from .procs import LOOPBACK, ManagedProcess, ServiceError, free_port, pid_alive, port_answers

SLURMCTLD = Path("/usr/sbin/slurmctld")
SLURMD = Path("/usr/sbin/slurmd")
MUNGED = Path("/usr/sbin/munged")
UNSHARE = Path("/usr/bin/unshare")
SETPRIV = Path("/usr/bin/setpriv")
NOT_INSTALLED = "SLURM is not installed (apt-get install slurm-wlm munge)"
PARTITION = "batch"
CLUSTER_NAME = "afdemo"
START_TIMEOUT_S = 30.0
# What the node offers. Deliberately more than this 2-core machine has (slurmd's config_overrides): demo
# workers mostly wait on I/O, and 8 one-core workers must fit for the scale benchmark.
NODE_CPUS = 16
NODE_MEMORY_MB = 16000
# The facility directories a worker must never see (relative to the state root).
HIDDEN_DIRS = ("workspace", "cache", "af-lab-state", "lab", "openbao", "rucio", "run", "logs", "slurm/spool",
               "slurm/state", "slurm/munge")
HIDE_EXTRA_ENV = "AF_HIDE_EXTRA"


class Slurm(Service):
    name = "slurm"

    def __init__(self, state: FacilityState):
        super().__init__(state)
        self.home = state.root / "slurm"
        self.conf = self.home / "slurm.conf"
        self.munge_dir = self.home / "munge"
        self.socket = self.munge_dir / "munge.socket"
        run, logs = state.root / "run", self.home / "logs"
        self.munged = ManagedProcess("munged (slurm)", run / "munged.pid", logs / "munged.log",
                                     f"--socket={self.socket}")
        self.slurmctld = ManagedProcess("slurmctld", run / "slurmctld.pid", logs / "slurmctld.out", f"-f {self.conf}")
        self.slurmd = ManagedProcess("slurmd", run / "slurmd.pid", logs / "slurmd.out", f"-f {self.conf}")

    # -- Service contract -----------------------------------------------------

    def running(self) -> bool:
        return all(p.is_running() for p in (self.munged, self.slurmctld, self.slurmd))

    def up(self) -> dict[str, Any]:
        if not all(p.exists() for p in (SLURMCTLD, SLURMD, MUNGED)) or shutil.which("sbatch") is None:
            raise Unavailable(NOT_INSTALLED)
        if self.running() and self.info.get("conf"):
            return dict(self.info)
        self.down()
        try:
            return self._start()
        except BaseException:
            self.down()  # never leave a daemon behind
            raise

    def down(self) -> None:
        if self.slurmctld.is_running() and self.munged.is_running():
            self._cancel_all_jobs()
        self.slurmctld.stop()
        self.slurmd.stop()
        self._kill_leftovers()
        self.munged.stop()

    # -- start --------------------------------------------------------------------

    def _start(self) -> dict[str, Any]:
        for sub in ("state", "spool", "logs", "bin", "jobs"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        self.home.chmod(0o755)
        self._start_munged()
        ctld_port = free_port()
        slurmd_port = free_port()
        while slurmd_port == ctld_port:
            slurmd_port = free_port()
        node = socket.gethostname().split(".")[0]
        self.conf.write_text(self._config(node, ctld_port, slurmd_port))
        self.conf.chmod(0o644)
        env = self.client_env()
        self.start_controller(ctld_port)
        self.slurmd.start([str(SLURMD), "-D", "-f", str(self.conf), "-N", node], env=env)
        self.slurmd.wait_until(self._node_idle, START_TIMEOUT_S, "node idle in sinfo")
        wrapper = self.write_worker_wrapper()
        return {
            "conf": str(self.conf),
            "env": {"SLURM_CONF": str(self.conf)},
            "partition": PARTITION,
            "node": node,
            "cpus": NODE_CPUS,
            "memory_mb": NODE_MEMORY_MB,
            "slurmctld_port": ctld_port,
            "slurmd_port": slurmd_port,
            "munge_socket": str(self.socket),
            "worker_python": str(wrapper),
            "job_dir": str(self.home / "jobs"),
        }

    def _start_munged(self) -> None:
        self.munge_dir.mkdir(parents=True, exist_ok=True)
        self.munge_dir.chmod(0o755)  # munged wants clients to reach the socket; the key stays 0400
        key = self.munge_dir / "munge.key"
        if not key.exists():
            fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
            with os.fdopen(fd, "wb") as f:
                f.write(os.urandom(1024))
        self.socket.unlink(missing_ok=True)
        self.munged.start(
            [str(MUNGED), "--foreground", "--force", f"--key-file={key}", f"--socket={self.socket}",
             f"--pid-file={self.munge_dir / 'munged.pid'}", f"--log-file={self.home / 'logs' / 'munged.log'}",
             f"--seed-file={self.munge_dir / 'munged.seed'}", "--num-threads=2"],
        )
        self.munged.wait_until(self.socket.exists, START_TIMEOUT_S, "listening on its socket")

    def _config(self, node: str, ctld_port: int, slurmd_port: int) -> str:
        h = self.home
        return f"""\
# Written by af_facility.slurm; one private SLURM on loopback.
ClusterName={CLUSTER_NAME}
SlurmctldHost={node}({LOOPBACK})
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.socket}
SlurmUser=root
SlurmdUser=root
StateSaveLocation={h / 'state'}
SlurmdSpoolDir={h / 'spool'}
SlurmctldPidFile={h / 'state' / 'slurmctld.pid'}
SlurmdPidFile={h / 'spool' / 'slurmd.pid'}
SlurmctldLogFile={h / 'logs' / 'slurmctld.log'}
SlurmdLogFile={h / 'logs' / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
ReturnToService=2
SlurmdParameters=config_overrides
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
MinJobAge=300
KillWait=5
MessageTimeout=5
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName={node} NodeAddr={LOOPBACK} CPUs={NODE_CPUS} RealMemory={NODE_MEMORY_MB} State=UNKNOWN
PartitionName={PARTITION} Nodes={node} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
"""

    def start_controller(self, port: int | None = None) -> None:
        """Start slurmctld (also again after :meth:`stop_controller`, keeping its state: jobs survive)."""
        port = port or self.info["slurmctld_port"]
        self.slurmctld.start([str(SLURMCTLD), "-D", "-i", "-f", str(self.conf)], env=self.client_env())
        self.slurmctld.wait_until(lambda: port_answers(port), START_TIMEOUT_S, "accepting connections")

    def stop_controller(self) -> None:
        """Stop slurmctld only (an outage: slurmd and running jobs stay)."""
        self.slurmctld.stop()

    def client_env(self) -> dict[str, str]:
        """What a SLURM client (sbatch, squeue, a Jupyter server) needs in its environment."""
        return {"SLURM_CONF": str(self.conf)}

    def _run(self, *argv: str, timeout: float = 10) -> subprocess.CompletedProcess:
        return subprocess.run(list(argv), env={**os.environ, **self.client_env()}, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def _node_idle(self) -> bool:
        out = self._run("sinfo", "-h", "-o", "%t").stdout.split()
        return bool(out) and all(s in ("idle", "mix", "alloc") for s in out)

    def write_worker_wrapper(self) -> Path:
        """``bin/worker-python``: run python with the facility's directories hidden (see the module doc)."""
        if not UNSHARE.exists() or not SETPRIV.exists():
            raise ServiceError(self.name, "util-linux unshare/setpriv are needed for isolated workers")
        root = self.state.root
        hidden = [str(root / d) for d in HIDDEN_DIRS]
        hidden += [d for d in os.environ.get(HIDE_EXTRA_ENV, "").split(":") if d]
        mounts = "; ".join(
            f'if [ -d {shlex.quote(d)} ]; then mount -t tmpfs -o size=64k,mode=000 af-hidden {shlex.quote(d)} || exit 70; fi'
            for d in hidden
        )
        facility_json = shlex.quote(str(self.state.path))
        inner = (
            f"{mounts}; "
            f"if [ -e {facility_json} ]; then mount --bind /dev/null {facility_json} || exit 70; fi; "
            "cd / && exec setpriv --bounding-set=-all --inh-caps=-all --no-new-privs -- \"$@\""
        )
        text = f"""#!/bin/sh
# Written by af_facility.slurm: run a program (a batch worker's python) so that it sees none of the
# notebook's files. Usage: worker-python PROGRAM [ARGS...]  (af-lab's profile setting `worker_launcher`).
exec {UNSHARE} --mount --propagation private --pid --fork --mount-proc -- /bin/sh -c {shlex.quote(inner)} \\
    worker "$@"
"""
        path = self.home / "bin" / "worker-python"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.chmod(0o755)
        os.replace(tmp, path)
        return path

    # -- stop ---------------------------------------------------------------------

    def _cancel_all_jobs(self) -> None:
        with contextlib.suppress(Exception):
            ids = self._run("squeue", "-h", "-o", "%A").stdout.split()
            if not ids:
                return
            self._run("scancel", "--full", *ids)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self._run("squeue", "-h", "-t", "R,CG", "-o", "%A").stdout.split():
                time.sleep(0.2)

    def leftover_pids(self) -> list[int]:
        """Processes of this SLURM still alive: slurmstepd (it keeps this instance's slurmd log open; it blanks
        its own environment) and every process below one (job scripts and what they started)."""
        our_log = str(self.home / "logs" / "slurmd.log")
        parents: dict[int, int] = {}
        stepds = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            try:
                parents[pid] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if (entry / "cmdline").read_bytes().startswith(b"slurmstepd") and _has_open(entry, our_log):
                    stepds.add(pid)
            except (OSError, ValueError, IndexError):
                continue
        found = []
        for pid in parents:
            seen, p = 0, pid
            while p > 1 and seen < 64:
                if p in stepds:
                    found.append(pid)
                    break
                p, seen = parents.get(p, 0), seen + 1
        return found

    def _kill_leftovers(self) -> None:
        for _ in range(3):
            pids = self.leftover_pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
                time.sleep(0.05)


def _has_open(proc: Path, path: str) -> bool:
    for fd in (proc / "fd").iterdir():
        with contextlib.suppress(OSError):
            if os.readlink(fd) == path:
                return True
    return False
