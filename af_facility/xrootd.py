"""An XRootD origin serving the Rucio RSE directories, and an XCache in front of it.

Layout (``<state>`` is the facility's state root)::

    <state>/rse/<RSE>/...        data, written by the Rucio service; the origin
                                 serves it as root://127.0.0.1:O//rse/<RSE>/...
    <state>/xrootd/origin.cfg    origin config (oss.localroot <state>, export /rse)
    <state>/xrootd/cache.cfg     XCache config (Pss proxy + Pfc file cache)
    <state>/xrootd/cache/data    what the cache keeps (same layout as the origin)
    <state>/xrootd/logs/         both servers' logs
    <state>/xrootd/lib/          the loopback bind shim, built here on first use

Debian's xrootd 5.5 cannot be told where to listen and refuses to run as root,
so the servers start with an LD_PRELOAD shim (``loopback_bind.c``) that turns
wildcard binds into 127.0.0.1, and as the package's system user ``xrootd``.
See shared/notes/openbao-and-xcache.md for the measurements.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pwd
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

from .base import FacilityState, Service, Unavailable
from .procs import LOOPBACK, ManagedProcess, ServiceError, free_port, port_answers, port_is_free

XROOTD_BIN = Path("/usr/bin/xrootd")
XRDFS_BIN = Path("/usr/bin/xrdfs")
SETPRIV_BIN = Path("/usr/bin/setpriv")  # util-linux
RUN_AS_USER = "xrootd"  # created by Debian's xrootd-server package
EXPORT = "/rse"
TRACE_ENV = "AF_XROOTD_TRACE"
START_TIMEOUT_S = 30.0
SHIM_SOURCE = Path(__file__).with_name("loopback_bind.c")
# Without these, xrdfs keeps retrying a closed port for minutes.
XRD_CLIENT_FAIL_FAST = {"XRD_CONNECTIONRETRY": "1", "XRD_CONNECTIONWINDOW": "2", "XRD_REQUESTTIMEOUT": "3"}
NOT_INSTALLED = "xrootd is not installed (apt-get install xrootd-server xrootd-client)"
# ROOT (RDataFrame, TChain) opens root://127.0.0.1/... as a local file; another loopback address is remote to it.
CACHE_HOST = "127.0.0.2"


class XRootD(Service):
    name = "xrootd"
    optional = True

    def __init__(self, state: FacilityState):
        super().__init__(state)
        # Configs, logs, admin dirs and the cache's data: all read or written by the xrootd user,
        # so they live in the facility's shared root (the state dir when xrootd can reach it).
        legacy = state.root / "xrootd"
        self.home = state.placed("xrootd", lambda: legacy if legacy.exists() or state.shared == state.root
                                 else state.shared / "xrootd")
        self.data_dir = state.rse_root
        self.logs = self.home / "logs"
        self.cache_data = self.home / "cache" / "data"
        self.origin = self._server("origin")
        self.cache = self._server("cache")

    def _server(self, role: str) -> ManagedProcess:
        # The config path is unique per state dir and role: a safe cmdline marker.
        # stdout/stderr share the file xrootd logs to (-l), so early errors land there too.
        return ManagedProcess(
            name=f"{self.name} {role}",
            pid_file=self.state.root / "run" / f"xrootd-{role}.pid",
            log_file=self.logs / f"{role}.log",
            marker=f"-c {self.home / f'{role}.cfg'}",
        )

    @property
    def instance_file(self) -> Path:
        return self.home / "instance.json"

    @property
    def trace(self) -> bool:
        """Trace the origin's opens/reads/closes (one log line each), so tests can
        prove a read was served by the cache. Cheap; on unless AF_XROOTD_TRACE=0."""
        return os.environ.get(TRACE_ENV, "").strip().lower() not in ("0", "false", "no", "off")

    # -- Service contract -----------------------------------------------------

    def running(self) -> bool:
        return self.origin.is_running() and self.cache.is_running()

    def up(self) -> dict[str, Any]:
        self._check_installed()
        instance = self._reusable_instance()
        if instance is None:
            try:
                instance = self._start()
            except BaseException:
                self.down()  # never leave one of the two behind
                raise
        return self._info(instance)

    def down(self) -> None:
        # With clients connected xrootd can take 1-2 s to act on SIGTERM: stop both at once.
        errors: list[BaseException] = []

        def stop(server: ManagedProcess) -> None:
            try:
                server.stop()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=stop, args=(server,)) for server in (self.cache, self.origin)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    # -- checks -----------------------------------------------------------------

    def _check_installed(self) -> None:
        if not (XROOTD_BIN.exists() and XRDFS_BIN.exists()):
            raise Unavailable(NOT_INSTALLED)
        if shutil.which("gcc") is None:
            raise Unavailable("gcc is needed to build the loopback bind shim for xrootd")
        if self._as_root:
            try:
                pwd.getpwnam(RUN_AS_USER)
            except KeyError:
                raise Unavailable(f"user {RUN_AS_USER!r} is missing (reinstall xrootd-server)") from None

    @property
    def _as_root(self) -> bool:
        """xrootd refuses to run as root; as any other user it simply runs as that user."""
        return os.geteuid() == 0

    def _check_reachable(self, data_dir: Path) -> None:
        """The servers run as ``xrootd``: they must traverse every parent of the state
        root (pytest's 0700 tmp_path does not qualify), read the data and write logs."""
        if not self._as_root:
            return
        test = ["test", "-r", str(data_dir), "-a", "-x", str(data_dir), "-a", "-w", str(self.logs)]
        result = subprocess.run(["runuser", "-u", RUN_AS_USER, "--", *test], capture_output=True, timeout=10)
        if result.returncode != 0:
            raise ServiceError(
                self.name,
                f"user {RUN_AS_USER!r} cannot read {data_dir} or write {self.logs}: "
                f"{data_dir.parent} and all its parents must be traversable by others (a facility "
                f"started first with an older version keeps its layout: start it afresh with another --dir)",
            )

    # -- starting ---------------------------------------------------------------

    def _reusable_instance(self) -> dict[str, Any] | None:
        origin_pid, cache_pid = self.origin.running_pid(), self.cache.running_pid()
        if origin_pid and cache_pid:
            with contextlib.suppress(OSError, ValueError, KeyError):
                instance = json.loads(self.instance_file.read_text())
                if port_answers(instance["origin_port"]) and port_answers(instance["cache_port"], CACHE_HOST):
                    return instance
        if origin_pid or cache_pid:
            # Half a facility (one server died): start both afresh rather than patch it up.
            self.down()
        self.origin.clear_stale()
        self.cache.clear_stale()
        return None

    def _start(self) -> dict[str, Any]:
        self.state.shared_dir()
        data_dir = self.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        for d in (self.logs, self.home / "origin" / "admin", self.home / "cache" / "admin", self.cache_data):
            d.mkdir(parents=True, exist_ok=True)
        if self._as_root:
            # Only the directories we create: what xrootd creates inside is its own already.
            self._chown_to_server_user(
                self.logs,
                self.home / "origin",
                self.home / "origin" / "admin",
                self.home / "cache",
                self.home / "cache" / "admin",
                self.cache_data,
            )
        self._check_reachable(data_dir)
        shim = self._build_shim()

        origin_port = free_port()
        cache_port = free_port()
        while cache_port == origin_port or not port_is_free(cache_port, CACHE_HOST):
            cache_port = free_port()
        origin_cfg = self._write_config("origin", self._origin_config(origin_port))
        cache_cfg = self._write_config("cache", self._cache_config(cache_port, origin_port))

        self._launch(self.origin, "origin", origin_cfg, origin_port, shim)
        # The cache's stat goes through to the origin, so this also proves the chain.
        self._launch(self.cache, "cache", cache_cfg, cache_port, shim, host=CACHE_HOST)

        instance = {"origin_port": origin_port, "cache_port": cache_port}
        self.instance_file.write_text(json.dumps(instance))
        return instance

    def _launch(self, server: ManagedProcess, role: str, cfg: Path, port: int, shim: Path, host: str = LOOPBACK) -> None:
        if not port_is_free(port, host):
            raise ServiceError(server.name, f"port {port} on {host} is in use", server.log_file)
        admin = self.home / role / "admin"
        own_pid_file = admin / "xrootd.pid"
        own_pid_file.unlink(missing_ok=True)  # a stale one would be taken for the new server's PID
        self._prepare_log(server.log_file)
        prefix, user_flags = self._user_switch()
        # -s also moves xrootd's env file from the shared /tmp/xrootd.anon.env to admin/.
        argv = [*prefix, str(XROOTD_BIN), *user_flags]
        argv += ["-c", str(cfg), "-l", str(server.log_file), "-s", str(own_pid_file)]
        # HOME: the proxy's client must not look for configuration in root's home.
        env = {"LD_PRELOAD": str(shim), "HOME": str(admin), "LOOPBACK_BIND_ADDRESS": host}
        try:
            server.start(argv, env=env, cwd=admin, pid_from_file=own_pid_file)
        except ServiceError as exc:  # exited at once: the reason is in the log, show it
            raise ServiceError(server.name, f"{exc.reason}; last log lines:\n{server.tail()}", server.log_file) from exc
        server.wait_until(lambda: self._answers(port, host), START_TIMEOUT_S, f"answering on {host}:{port}")

    def _user_switch(self) -> tuple[list[str], list[str]]:
        """(command prefix, xrootd flags) that make the server run as ``xrootd`` when we are root.

        ``xrootd -R xrootd`` only changes the *effective* uid: the real and saved
        uids stay 0 and all capabilities stay permitted, so the server could turn
        root again. setpriv sets every uid and gid for good and then execs xrootd
        in place, so the PID we record is still the server's (runuser would fork).
        ``-R`` remains the fallback where setpriv is missing.
        """
        if not self._as_root:
            return [], []
        if SETPRIV_BIN.exists():
            return [str(SETPRIV_BIN), f"--reuid={RUN_AS_USER}", f"--regid={RUN_AS_USER}", "--init-groups", "--"], []
        return [], ["-R", RUN_AS_USER]

    def _answers(self, port: int, host: str = LOOPBACK) -> bool:
        if not port_answers(port, host):
            return False
        result = subprocess.run(
            [str(XRDFS_BIN), f"root://{host}:{port}", "stat", EXPORT],
            env={**os.environ, **XRD_CLIENT_FAIL_FAST},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=15,
        )
        return result.returncode == 0

    def _prepare_log(self, log: Path) -> None:
        """xrootd opens its -l log after dropping privileges, so the file must be its own."""
        log.touch(exist_ok=True)
        if self._as_root:
            self._chown_to_server_user(log)

    def _chown_to_server_user(self, *paths: Path) -> None:
        user = pwd.getpwnam(RUN_AS_USER)
        for path in paths:
            os.chown(path, user.pw_uid, user.pw_gid, follow_symlinks=False)

    # -- configuration ----------------------------------------------------------

    def _origin_config(self, port: int) -> str:
        admin = self.home / "origin" / "admin"
        lines = [
            f"xrd.port {port}",
            # Belt and braces with the bind shim: refuse any client that is not this host.
            "xrd.allow host localhost",
            # Read-only: the Rucio service writes the RSE directories on disk directly.
            f"all.export {EXPORT} r/o",
            f"oss.localroot {self.data_dir.parent}",
            f"all.adminpath {admin}",
            f"all.pidpath {admin}",
        ]
        if self.trace:
            lines.append("ofs.trace open read close")
        return "\n".join(lines) + "\n"

    def _cache_config(self, port: int, origin_port: int) -> str:
        admin = self.home / "cache" / "admin"
        lines = [
            f"xrd.port {port}",
            "xrd.allow host localhost",
            f"all.export {EXPORT}",
            # Pss: forward misses to the origin; Pfc: keep what was read on local disk.
            "ofs.osslib libXrdPss.so",
            f"pss.origin {LOOPBACK}:{origin_port}",
            "pss.cachelib libXrdPfc.so",
            f"oss.localroot {self.cache_data}",
            "pfc.ram 1g",  # Pfc refuses anything below 1g
            # Fractions of the whole filesystem the cache dir is on, not of a quota.
            "pfc.diskusage 0.90 0.95",
            "pfc.blocksize 1m",
            f"all.adminpath {admin}",
            f"all.pidpath {admin}",
            # One line per open, naming the client (user.pid): shows which process read what.
            "ofs.trace open",
        ]
        return "\n".join(lines) + "\n"

    def _write_config(self, role: str, text: str) -> Path:
        path = self.home / f"{role}.cfg"
        path.write_text(text)
        path.chmod(0o644)
        return path

    def _build_shim(self) -> Path:
        """Compile loopback_bind.c once per source version (the digest is in the name)."""
        source = SHIM_SOURCE.read_bytes()
        lib_dir = self.home / "lib"
        lib = lib_dir / f"libloopback_bind-{hashlib.sha256(source).hexdigest()[:12]}.so"
        if lib.exists():
            return lib
        lib_dir.mkdir(parents=True, exist_ok=True)
        tmp = lib.with_name(f".{lib.name}.{os.getpid()}.tmp")
        cmd = ["gcc", "-shared", "-fPIC", "-O2", "-Wall", "-o", str(tmp), str(SHIM_SOURCE), "-ldl"]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise ServiceError(self.name, f"building the loopback bind shim failed:\n{result.stderr.strip()}")
        tmp.chmod(0o755)
        os.replace(tmp, lib)
        return lib

    def _info(self, instance: dict[str, Any]) -> dict[str, Any]:
        origin_port, cache_port = instance["origin_port"], instance["cache_port"]
        return {
            "origin_url": f"root://{LOOPBACK}:{origin_port}",
            "origin_port": origin_port,
            "cache_url": f"root://{CACHE_HOST}:{cache_port}",
            "cache_host": CACHE_HOST,
            "cache_port": cache_port,
            "export": EXPORT,
            "data_dir": str(self.data_dir),
            "cache_dir": str(self.cache_data),
            "origin_log": str(self.origin.log_file),
            "cache_log": str(self.cache.log_file),
            "origin_trace": self.trace,
        }
