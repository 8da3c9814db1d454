"""A real Rucio 41 server for the demo facility.

The server is PyPI ``rucio`` (not a mock) running in its *own* virtualenv, because
``rucio`` and ``rucio-clients`` must not share one (rucio pins an old urllib3 and
ships the whole client again). It is the Flask app under gunicorn, with SQLite (or,
socket-only cluster; ``AF_RUCIO_DB=sqlite`` for SQLite, which cannot store DID metadata) and a private
memcached on a unix socket; everything lives under ``<state>/rucio/``:

    rucio/etc/rucio.cfg            server config ([database] etc.; never given to clients)
    rucio/etc/client-{root,jdoe}.cfg   [client]-only configs, one token file each
    rucio/db/rucio.db              SQLite database (or rucio/pg/data: PostgreSQL cluster)
    rucio/logs/                    server, access, memcached, postgres and bootstrap logs
    rucio/instance.json            port and generated passwords (0600), reused by later ``up``
    <state>/rse/<RSE>/             posix storage of the two demo RSEs (world-readable:
                                   the XRootD origin, running as another user, exports it)

The first ``up`` builds the schema and the root account in the server venv, then
provisions (as root, through rucio-clients) the demo user, scopes and RSEs. Later
``up`` calls reuse the running server, or restart it on the same database.
"""

from __future__ import annotations

import configparser
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .base import FacilityState, Service
from .procs import LOOPBACK, ManagedProcess, ServiceError, cmdline, free_port, pid_alive, port_is_free

RUCIO_VERSION = "41.5.1"
REPO = Path(__file__).resolve().parent.parent
DEFAULT_VENV = REPO / ".venv-rucio-server"

USER_ACCOUNT = "jdoe"
RSES = ("SITE1_USERDISK", "SITE2_USERDISK")  # *_USERDISK: the generic policy lets admins' users write there
SCOPES = {"user.jdoe": "jdoe", "cms_opendata": "root", "cms_embargoed": "jdoe"}  # scope -> owner
ACCOUNT_LIMIT_BYTES = 10**15  # 1 PB: never the reason a demo rule is refused

# DEFAULT_ENDPOINTS of rucio 41 minus the opendata ones; 'traces' must stay out: its
# module opens /var/log/rucio/trace/trace at import and kills the worker on boot.
API_ENDPOINTS = (
    "accounts", "auth", "config", "credentials", "dids", "dirac", "export", "heartbeats",
    "identities", "import", "lifetime_exceptions", "locks", "meta_conventions", "ping",
    "redirect", "replicas", "requests", "rses", "rules", "scopes", "subscriptions",
)  # fmt: skip

# PostgreSQL (AF_RUCIO_DB=postgres): Debian's server binaries, run as Debian's postgres
# user because postgres refuses to run as root.
PG_BIN = Path(os.environ.get("AF_RUCIO_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "postgres"
DATABASES = ("sqlite", "postgres")

# Seconds; generous because the machine has 2 cores shared with other builds.
PING_TIMEOUT = 90.0
BOOTSTRAP_TIMEOUT = 300.0

# Inherited variables that would silently redirect the server venv or rucio-clients.
_FOREIGN_ENV = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "RUCIO_HOME", "RUCIO_CONFIG", "RUCIO_ACCOUNT",
                "RUCIO_AUTH_TYPE", "RUCIO_VO", "RUCIO_CLIENT_MODE")  # fmt: skip

_BOOTSTRAP = """
from rucio.db.sqla.util import build_database, create_base_vo, create_root_account
build_database()
create_base_vo()
create_root_account()
print("bootstrapped")
"""


def server_venv() -> Path:
    return Path(os.environ.get("AF_RUCIO_SERVER_VENV") or DEFAULT_VENV)


def wanted_database() -> str:
    kind = os.environ.get("AF_RUCIO_DB", "postgres").lower().replace("postgresql", "postgres")
    if kind not in DATABASES:
        raise ServiceError("rucio", f"AF_RUCIO_DB={kind!r}: expected one of {', '.join(DATABASES)}")
    return kind


class RucioServer(Service):
    name = "rucio"

    def __init__(self, state: FacilityState):
        super().__init__(state)
        self.home = state.root / "rucio"
        self.etc = self.home / "etc"
        self.logs = self.home / "logs"
        self.rse_root = state.rse_root
        self.venv = server_venv()
        self.pg_data = self.pg_root / "data"
        run = state.root / "run"
        # The state path is the marker: it is in gunicorn's command line (--chdir, --name),
        # memcached's (-s) and postgres' (-D), so a recycled PID can never look like ours.
        self.server = ManagedProcess(self.name, run / "rucio-server.pid", self.logs / "server.log", str(self.home))
        self.memcached = ManagedProcess(
            self.name, run / "rucio-memcached.pid", self.logs / "memcached.log", str(self.memcached_socket)
        )
        self.postgres = ManagedProcess(
            self.name, run / "rucio-postgres.pid", self.logs / "postgres.log", str(self.pg_data)
        )

    # -- paths --------------------------------------------------------------------------------

    @property
    def server_config(self) -> Path:
        return self.etc / "rucio.cfg"

    @property
    def database(self) -> Path:
        return self.home / "db" / "rucio.db"

    @property
    def socket_dir(self) -> Path:
        """Where the unix sockets go. sun_path holds 107 bytes, so deep state dirs fall back
        to a short per-state directory in /tmp."""
        run = self.state.root / "run"
        if len(str(run / "rucio-pg" / ".s.PGSQL.5432")) <= 100:
            return run
        return Path("/tmp") / f"af-rucio-{hashlib.sha1(str(self.state.root).encode()).hexdigest()[:12]}"

    @property
    def memcached_socket(self) -> Path:
        return self.socket_dir / "rucio-memcached.sock"

    @property
    def pg_root(self) -> Path:
        """PostgreSQL's cluster (and, outside the state dir, its socket): where the postgres
        user can reach it. Decided once and recorded in the facility state; a cluster made by
        an older version (under the state dir or in /tmp) stays where it is."""
        at_home = self.home / "pg"
        digest = hashlib.sha1(str(self.state.root).encode()).hexdigest()[:12]
        legacy_tmp = Path("/tmp") / f"af-rucio-pg-{digest}"

        def choose() -> Path:
            for existing in (at_home, legacy_tmp):
                if (existing / "data" / "PG_VERSION").exists():
                    return existing
            return at_home if self.state.shared == self.state.root else self.state.shared / "pg"

        return self.state.placed("postgres", choose)

    @property
    def pg_socket_dir(self) -> Path:
        if self.pg_root != self.home / "pg":
            return self.pg_root / "sock"
        return self.socket_dir / "rucio-pg"

    def client_config(self, account: str) -> Path:
        return self.etc / f"client-{account}.cfg"

    def rse_path(self, rse: str) -> Path:
        return self.rse_root / rse

    # -- Service contract ---------------------------------------------------------------------

    def running(self) -> bool:
        return self.server.is_running()

    def up(self) -> dict[str, Any]:
        python = self._check_venv()
        instance = self._load_instance()
        postgres = instance["database"] == "postgres"
        if self.server.is_running() and postgres and not self.postgres.is_running():
            self._stop_server()  # its database is gone: start the pair afresh
        if self.server.is_running():
            # Reuse. wait_until (not a single probe) also covers a server still starting.
            self.server.wait_until(lambda: self._answers(instance.get("port")), PING_TIMEOUT, "answering GET /ping")
            self._ensure_memcached()  # a lost cache only slows listings down, but restore it
            return self._info(instance)

        for proc in (self.server, self.memcached, self.postgres):
            proc.clear_stale()
        started: list[ManagedProcess] = []
        try:
            instance["port"] = self._choose_port(instance.get("port"))
            self._save_instance(instance)
            self._write_configs(instance)
            if postgres and self._ensure_postgres(instance):
                started.append(self.postgres)
            if self._ensure_memcached():
                started.append(self.memcached)
            if not (self.home / "bootstrapped").exists():
                self._bootstrap()
            self._start_gunicorn(python, instance["port"], threads=4 if postgres else 1)
            if not (self.home / "provisioned").exists():
                self._provision(instance)
        except BaseException:
            self._stop_server()
            for proc in started:
                self._stop_other(proc)
            raise
        return self._info(instance)

    def down(self) -> None:
        self._stop_server()
        self._stop_other(self.postgres)
        self._stop_other(self.memcached)

    def _stop_server(self) -> None:
        pid = self.server.running_pid()
        self.server.stop()
        if pid:
            _kill_group_leftovers(self.server, pid)

    def _stop_other(self, proc: ManagedProcess) -> None:
        if proc is self.postgres:
            proc.stop(signal.SIGINT, timeout=30)  # "fast" shutdown; SIGTERM would wait for clients
        else:
            proc.stop()
            self.memcached_socket.unlink(missing_ok=True)

    # -- steps of up() ------------------------------------------------------------------------

    def _check_venv(self) -> Path:
        python = self.venv / "bin" / "python"
        fix = (
            f"create it with `python3.11 -m venv {self.venv} && {self.venv}/bin/pip install "
            f"rucio=={RUCIO_VERSION} gunicorn`, or point AF_RUCIO_SERVER_VENV at one"
        )
        if not python.exists():
            raise ServiceError(self.name, f"server virtualenv {self.venv} is missing: {fix}")
        if not (self.venv / "bin" / "gunicorn").exists() or not list(
            self.venv.glob("lib/python3*/site-packages/rucio-*.dist-info")
        ):
            raise ServiceError(self.name, f"server virtualenv {self.venv} lacks rucio or gunicorn: {fix}")
        return python

    def _load_instance(self) -> dict[str, Any]:
        """Port and passwords, generated once per state dir (the database keeps the hashes)."""
        path = self.home / "instance.json"
        if path.exists():
            instance = json.loads(path.read_text())
            instance.setdefault("database", "sqlite")
            return instance
        return {
            "port": self.info.get("port"),
            "database": wanted_database(),  # fixed at first up: the data lives there
            "root_password": secrets.token_urlsafe(18),
            "jdoe_password": secrets.token_urlsafe(18),
            "db_password": secrets.token_urlsafe(18),
        }

    def _save_instance(self, instance: dict[str, Any]) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        _write_private(self.home / "instance.json", json.dumps(instance, indent=2))

    def _choose_port(self, previous: int | None) -> int:
        wanted = os.environ.get("AF_RUCIO_PORT")
        if wanted:
            port = int(wanted)
            if not port_is_free(port):
                raise ServiceError(
                    self.name,
                    f"{LOOPBACK}:{port} (AF_RUCIO_PORT) is already in use by another process",
                    self.server.log_file,
                )
            return port
        if previous and port_is_free(int(previous)):
            return int(previous)  # same URL as last time, so saved lab configs stay valid
        return free_port()

    def _write_configs(self, instance: dict[str, Any]) -> None:
        for d in (self.etc, self.logs, self.home / "db", self.home / "tokens"):
            d.mkdir(parents=True, exist_ok=True)
        self.home.chmod(0o755)
        self.etc.chmod(0o700)  # passwords in plain text
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self.state.shared_dir()
        for rse in RSES:
            self.rse_path(rse).mkdir(parents=True, exist_ok=True)
            self.rse_path(rse).chmod(0o755)
        self.rse_root.chmod(0o755)

        migrate_repo = next(self.venv.glob("lib/python3*/site-packages/rucio/db/sqla/migrate_repo"))
        if instance["database"] == "postgres":
            # Socket only (no TCP port to collide); trust auth inside a private cluster.
            db_url = f"postgresql+psycopg://rucio:{instance['db_password']}@/rucio?host={self.pg_socket_dir}"
            schema = "schema = rucio\n"
        else:
            db_url, schema = f"sqlite:///{self.database}", ""
        _write_private(
            self.etc / "alembic.ini",
            ALEMBIC_INI.format(
                url=db_url, script_location=migrate_repo, schema=schema.replace("schema", "version_table_schema")
            ),
        )
        _write_private(
            self.server_config,
            SERVER_CFG.format(
                logs=self.logs,
                db_url=db_url,
                schema=schema,
                alembic_ini=self.etc / "alembic.ini",
                root_password=instance["root_password"],
                endpoints=", ".join(API_ENDPOINTS),
                cache_url=self.memcached_socket,
            ),
        )
        url = f"http://{LOOPBACK}:{instance['port']}"
        for account, password in (("root", instance["root_password"]), (USER_ACCOUNT, instance["jdoe_password"])):
            token_dir = self.home / "tokens" / account
            token_dir.mkdir(parents=True, exist_ok=True)
            token_dir.chmod(0o700)
            _write_private(
                self.client_config(account),
                CLIENT_CFG.format(
                    url=url, username=account, password=password, account=account, token=token_dir / "token"
                ),
            )

    def _server_env_argv(self) -> list[str]:
        """``env`` prefix that removes inherited variables (ManagedProcess can only add)."""
        drop = [arg for key in _FOREIGN_ENV if key in os.environ for arg in ("-u", key)]
        return ["env", *drop, f"RUCIO_CONFIG={self.server_config}"]

    def _ensure_memcached(self) -> bool:
        """Start the private memcached unless it runs. Returns True if this call started it.

        Private because rucio's cache keys are not namespaced per instance; without any
        memcached rucio silently disables caching and replica listings get ~4x slower.
        """
        if self.memcached.is_running():
            return False
        sock = self.memcached_socket
        sock.unlink(missing_ok=True)
        argv = ["memcached", "-s", str(sock), "-a", "0700", "-m", "64", "-t", "1"]
        if os.geteuid() == 0:
            argv += ["-u", "root"]  # memcached refuses to run as root without -u
        try:
            self.memcached.start(argv)
        except FileNotFoundError as exc:
            raise ServiceError(self.name, "memcached is not installed (apt-get install memcached)") from exc
        self.memcached.wait_until(sock.exists, 10, "creating its socket")
        return True

    def _ensure_postgres(self, instance: dict[str, Any]) -> bool:
        """Start the private cluster (initdb on first use). Returns True if this call started it.

        listen_addresses='' (unix socket only: no port to allocate or collide) and fsync off:
        this is demo data, speed matters more than surviving a power cut.
        """
        if self.postgres.is_running():
            return False
        missing = [tool for tool in ("initdb", "postgres", "pg_isready", "psql") if not (PG_BIN / tool).exists()]
        if missing:
            raise ServiceError(
                self.name, f"PostgreSQL server binaries missing in {PG_BIN} ({', '.join(missing)}): "
                "apt-get install postgresql-15, or set AF_RUCIO_PG_BIN, or use AF_RUCIO_DB=sqlite",
            )  # fmt: skip
        if not list(self.venv.glob("lib/python3*/site-packages/psycopg-*.dist-info")):
            raise ServiceError(self.name, f"psycopg missing: {self.venv}/bin/pip install 'psycopg[binary]'")
        as_pg_user: list[str] = []
        sock = self.pg_socket_dir
        self.state.shared_dir()
        for d in (self.pg_data.parent, sock):
            d.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            # setpriv execs (runuser would stay as a parent): the PID we record is postgres itself.
            as_pg_user = ["setpriv", f"--reuid={PG_USER}", f"--regid={PG_USER}", "--init-groups", "--"]
            for d in (self.pg_data.parent, sock):
                shutil.chown(d, PG_USER, PG_USER)
        log = self.postgres.log_file
        if not (self.pg_data / "PG_VERSION").exists():
            # A new, empty cluster: whatever the markers say was done in another database.
            for marker in (self.home / "bootstrapped", self.home / "provisioned", self.pg_data.parent / "database-created"):
                marker.unlink(missing_ok=True)
            self._run_logged(
                [*as_pg_user, str(PG_BIN / "initdb"), "-D", str(self.pg_data), "-U", "postgres",
                 "--auth=trust", "-E", "UTF8", "--no-sync"], log, "initdb",
            )  # fmt: skip
        self.postgres.start(
            [*as_pg_user, str(PG_BIN / "postgres"), "-D", str(self.pg_data), "-k", str(sock),
             "-c", "listen_addresses=", "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off"],
        )  # fmt: skip
        ready = [str(PG_BIN / "pg_isready"), "-q", "-h", str(sock)]
        self.postgres.wait_until(lambda: subprocess.run(ready, timeout=5).returncode == 0, 60, "accepting connections")
        marker = self.pg_data.parent / "database-created"
        if not marker.exists():
            self._run_logged(
                [str(PG_BIN / "psql"), "-h", str(sock), "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1",
                 "-c", f"CREATE ROLE rucio LOGIN PASSWORD '{instance['db_password']}'",
                 "-c", "CREATE DATABASE rucio OWNER rucio"], log, "creating the rucio database",
            )  # fmt: skip
            marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
        return True

    def _run_logged(self, argv: list[str], log: Path, what: str) -> None:
        with open(log, "ab") as out:
            result = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=120)
        if result.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-10:])
            raise ServiceError(self.name, f"{what} failed (exit {result.returncode}):\n{tail}", log)

    def _bootstrap(self) -> None:
        """Schema + base VO + root account: once per database (then marked)."""
        log = self.logs / "bootstrap.log"
        t0 = time.monotonic()
        self.run_in_venv(_BOOTSTRAP, log=log, what="bootstrap", timeout=BOOTSTRAP_TIMEOUT)
        if self.database.exists():
            self.database.chmod(0o600)
        (self.home / "bootstrapped").write_text(
            f"{time.strftime('%Y-%m-%dT%H:%M:%S')} in {time.monotonic() - t0:.1f} s\n"
        )

    def _start_gunicorn(self, python: Path, port: int, threads: int) -> None:
        argv = [
            *self._server_env_argv(),
            str(python), str(self.venv / "bin" / "gunicorn"),
            "--no-control-socket",  # else every instance shares ~/.gunicorn/gunicorn.ctl
            "--bind", f"{LOOPBACK}:{port}",
            # SQLite allows one writer: more threads give "database is locked".
            "--workers", "1", "--threads", str(threads), "--worker-class", "gthread",
            "--timeout", "600",  # a 50k-file replica listing takes tens of seconds on SQLite
            "--graceful-timeout", "5",
            "--chdir", str(self.home),
            "--name", f"af-rucio {self.home}",
            "--access-logfile", str(self.logs / "access.log"),
            "rucio.web.rest.flaskapi.v1.main:application",
        ]  # fmt: skip
        self.server.start(argv)
        self.server.wait_until(lambda: self._answers(port), PING_TIMEOUT, "answering GET /ping")

    def _provision(self, instance: dict[str, Any]) -> None:
        """Demo account, scopes, RSEs, limits and distances, as root through rucio-clients.

        Idempotent (every "already exists" is fine), so a half-done first run is simply redone.
        """
        from rucio.common.exception import Duplicate

        with rucio_client(self.client_config("root")) as root:
            with contextlib.suppress(Duplicate):
                root.add_account(USER_ACCOUNT, "USER", f"{USER_ACCOUNT}@localhost")
            with contextlib.suppress(Duplicate):
                root.add_identity(
                    USER_ACCOUNT, identity=USER_ACCOUNT, authtype="USERPASS", email=f"{USER_ACCOUNT}@localhost",
                    default=True, password=instance["jdoe_password"],
                )  # fmt: skip
            attributes = {a["key"]: a["value"] for a in next(iter(root.list_account_attributes(USER_ACCOUNT)), [])}
            if str(attributes.get("admin")) != "True":
                # The string 'True': a bool fails the API schema. Admin is needed by the
                # generic policy for update_replicas_states, which every upload calls.
                root.add_account_attribute(USER_ACCOUNT, "admin", "True")
            for scope, owner in SCOPES.items():
                with contextlib.suppress(Duplicate):
                    root.add_scope(owner, scope)
            for rse in RSES:
                with contextlib.suppress(Duplicate):
                    root.add_rse(rse)
                with contextlib.suppress(Duplicate):
                    root.add_protocol(rse, file_protocol(self.rse_path(rse)))
                for account in ("root", USER_ACCOUNT):
                    root.set_local_account_limit(account, rse, ACCOUNT_LIMIT_BYTES)
            # Distances both ways: without them transfers have "no sources" and rules get STUCK.
            for src in RSES:
                for dst in RSES:
                    if src != dst:
                        with contextlib.suppress(Duplicate):
                            root.add_distance(src, dst, {"distance": 1})
        (self.home / "provisioned").write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))

    def flush_cache(self) -> None:
        """Empty the private memcached: rucio caches RSE descriptions (protocols) for 15
        minutes and does not invalidate them when they change."""
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as s:
            s.settimeout(2)
            s.connect(str(self.memcached_socket))
            s.sendall(b"flush_all\r\n")
            s.recv(64)

    # -- helpers ------------------------------------------------------------------------------

    def run_in_venv(self, code: str, *, payload: Any = None, log: Path, what: str, timeout: float) -> Any:
        """Run ``code`` with the server venv's python against the server config (direct DB access).

        ``payload`` goes in as JSON on stdin; the last stdout line, if JSON, is returned.
        Used for the bootstrap and for bulk catalogue work that would be slow over REST.
        """
        env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_ENV}
        env["RUCIO_CONFIG"] = str(self.server_config)
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as err:
            try:
                proc = subprocess.run(
                    [str(self.venv / "bin" / "python"), "-c", code],
                    input=json.dumps(payload).encode(),
                    stdout=subprocess.PIPE,
                    stderr=err,
                    env=env,
                    cwd=self.home,
                    timeout=timeout,
                )
            except subprocess.TimeoutExpired as exc:
                raise ServiceError(self.name, f"{what} did not finish in {timeout:.0f} s", log) from exc
        out = proc.stdout.decode(errors="replace").strip()
        if proc.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise ServiceError(self.name, f"{what} failed (exit {proc.returncode}); last log lines:\n{tail}", log)
        last = out.splitlines()[-1] if out else ""
        try:
            return json.loads(last)
        except ValueError:
            return last

    def _answers(self, port: int | None) -> bool:
        if not port:
            return False
        try:
            with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/ping", timeout=2) as resp:
                return "version" in json.loads(resp.read())
        except (OSError, ValueError):
            return False

    def _info(self, instance: dict[str, Any]) -> dict[str, Any]:
        port = instance["port"]
        return {
            "url": f"http://{LOOPBACK}:{port}",
            "port": port,
            "version": RUCIO_VERSION,
            "accounts": {
                "root": {"username": "root", "password": instance["root_password"]},
                USER_ACCOUNT: {"username": USER_ACCOUNT, "password": instance["jdoe_password"]},
            },
            "rses": {rse: str(self.rse_path(rse)) for rse in RSES},
            "scopes": dict(SCOPES),
            "client_configs": {
                "root": str(self.client_config("root")),
                USER_ACCOUNT: str(self.client_config(USER_ACCOUNT)),
            },
            "server_config": str(self.server_config),
            "database": instance["database"],
            "venv": str(self.venv),
            "logs": {
                "server": str(self.server.log_file),
                "access": str(self.logs / "access.log"),
                "memcached": str(self.memcached.log_file),
                **({"postgres": str(self.postgres.log_file)} if instance["database"] == "postgres" else {}),
                "bootstrap": str(self.logs / "bootstrap.log"),
            },
        }


def file_protocol(prefix: Path) -> dict[str, Any]:
    """Posix protocol of a demo RSE: PFNs file://localhost/<prefix>/<scope>/<hash>/<name>."""
    rw = {"read": 1, "write": 1, "delete": 1}
    return {
        "scheme": "file",
        "hostname": "localhost",
        "port": 0,
        "prefix": f"{prefix}/",
        "impl": "rucio.rse.protocols.posix.Default",
        "domains": {"lan": rw, "wan": {**rw, "third_party_copy_read": 1, "third_party_copy_write": 1}},
    }


# -- rucio-clients in this process ----------------------------------------------------------------

_CLIENT_LOCK = threading.RLock()


@contextlib.contextmanager
def rucio_client(config: Path | str) -> Iterator[Any]:
    """Yield a ``rucio.client.Client`` for a facility ``client-*.cfg``.

    rucio-clients reads ``RUCIO_CONFIG`` through a process-wide cached parser, and
    ``rsemanager`` (used by Upload/DownloadClient) caches RSE descriptions in memory and
    builds its own RSEClient from that config. With two facilities in one process (tests)
    the second would otherwise talk to the first one's server and write into its RSEs.
    So for the duration of the block the config is switched and both caches are
    dropped, on entry and on exit. Host, account and credentials are also passed
    explicitly so RUCIO_ACCOUNT & co. in the environment cannot override them.
    """
    parser = configparser.ConfigParser()
    if not parser.read(config):
        raise FileNotFoundError(f"rucio client config {config} not found")
    section = parser["client"]
    with _CLIENT_LOCK:
        saved = {key: os.environ.get(key) for key in _FOREIGN_ENV}
        for key in _FOREIGN_ENV:
            os.environ.pop(key, None)
        os.environ["RUCIO_CONFIG"] = str(config)
        _forget_rucio_client_caches()
        try:
            from rucio.client import Client

            yield Client(
                rucio_host=section["rucio_host"],
                auth_host=section["auth_host"],
                account=section["account"],
                auth_type="userpass",
                creds={"username": section["username"], "password": section["password"]},
            )
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            _forget_rucio_client_caches()


def _forget_rucio_client_caches() -> None:
    config = sys.modules.get("rucio.common.config")
    if config is not None:
        config.clean_cached_config()
    rse = sys.modules.get("rucio.rse")
    region = getattr(rse, "RSE_REGION", None) if rse is not None else None
    if region is not None:
        region.invalidate(hard=True)


# -- small helpers --------------------------------------------------------------------------------


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    path.chmod(0o600)


def _kill_group_leftovers(proc: ManagedProcess, pgid: int | None = None) -> None:
    """SIGKILL what is left of a stopped process's group (gunicorn workers, if the master
    was killed before it could stop them). Only processes whose command line still
    carries our marker are touched."""
    if pgid is None:
        return
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        with contextlib.suppress(OSError, ValueError):
            if os.getpgid(pid) == pgid and proc.marker in cmdline(pid) and pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


SERVER_CFG = """\
# Written by af_facility.rucio_server; rewritten on every start.
[common]
logdir = {logs}
loglevel = WARNING

[database]
default = {db_url}
{schema}pool_reset_on_return = rollback
echo = 0

[alembic]
cfg = {alembic_ini}

[bootstrap]
# The plain password: create_root_account salts and hashes it.
userpass_identity = root
userpass_pwd = {root_password}
userpass_email = root@localhost

[policy]
permission = generic
schema = generic
lfn2pfn_algorithm_default = hash

[api]
endpoints = {endpoints}

[cache]
url = {cache_url}
"""

ALEMBIC_INI = """\
[alembic]
sqlalchemy.url = {url}
{schema}script_location = {script_location}

[loggers]
keys = root,sqlalchemy,alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARN
handlers = console
qualname =

[logger_sqlalchemy]
level = WARN
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
"""

# [client] only: a [database] section would switch rucio into server mode.
CLIENT_CFG = """\
[client]
rucio_host = {url}
auth_host = {url}
auth_type = userpass
username = {username}
password = {password}
account = {account}
request_retries = 3
auth_token_file_path = {token}
"""
