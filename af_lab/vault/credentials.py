"""The credential service: the only code in af-lab that talks to Vault or holds a secret.

The server logs in to Vault on the user's behalf, with a Vault token or a
hub-issued JWT (Vault's JWT auth method), renews its token before it expires
and re-logs in when renewal is no longer possible. Secrets live in KV v2 under
``<kv_mount>/<user_prefix>/<user>/``; memory holds them for at most
``secret_cache_ttl`` seconds. Nothing here logs or returns a secret: errors say
what failed and what to do, in words.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import jwt
import requests

from ..config import AFLab
from ..errors import AFLabError, Forbidden, ServiceUnavailable, Unauthorized


class CredentialService:
    def __init__(self, config: AFLab, log: logging.Logger | None = None):
        self.config = config
        self.log = log or logging.getLogger("af_lab")
        self._client: hvac.Client | None = None
        self._token_expires: float = 0.0  # monotonic deadline of the Vault token; 0 = unknown/none
        self._token_ttl: float = 0.0
        self._renewable = False
        self._lock = asyncio.Lock()
        self._cache: dict[str, tuple[float, dict | None]] = {}
        self._single_version: set[str] = set()  # paths whose KV metadata says max_versions = 1
        self._user: str | None = None
        self.files = PrivateFiles(Path(config.state_dir) / "run")

    # ------------------------------------------------------------------ identity
    @property
    def user(self) -> str:
        if self._user is None:
            self._user = self.config.vault_user or self._jwt_claims().get("sub") or getpass.getuser()
        return self._user

    def _read_source(self, env_name: str, file_name: str) -> str | None:
        if file_name:
            try:
                value = Path(file_name).read_text().strip()
            except OSError:
                value = ""
            if value:
                return value
        value = os.environ.get(env_name, "").strip() if env_name else ""
        return value or None

    def _hub_jwt(self) -> str | None:
        return self._read_source(self.config.vault_jwt_env, self.config.vault_jwt_file)

    def _jwt_claims(self) -> dict[str, Any]:
        """Claims of the hub-issued JWT, unverified: Vault verifies it; we only read sub/groups/exp."""
        token = self._hub_jwt() if self.config.vault_auth == "jwt" else None
        if not token:
            return {}
        try:
            return jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return {}

    def user_claims(self) -> dict[str, Any]:
        """Public identity claims (sub, groups) for policy checks such as embargoed scopes."""
        claims = self._jwt_claims()
        groups = claims.get("wlcg.groups") or claims.get("groups") or []
        return {"sub": claims.get("sub", self.user), "groups": list(groups)}

    # ------------------------------------------------------------------ login
    def _new_client(self) -> hvac.Client:
        verify: bool | str = self.config.vault_ca_cert or True
        return hvac.Client(url=self.config.vault_address, verify=verify, timeout=self.config.status_timeout + 2)

    def _login_sync(self) -> None:
        client = self._new_client()
        try:
            if self.config.vault_auth == "token":
                token = self._read_source(self.config.vault_token_env, self.config.vault_token_file)
                if not token:
                    raise Unauthorized(
                        "No Vault token was handed to this session "
                        f"(expected in ${self.config.vault_token_env} or {self.config.vault_token_file or 'a token file'}). "
                        "Restart your server from the hub."
                    )
                client.token = token
            else:
                hub_jwt = self._hub_jwt()
                if not hub_jwt:
                    raise Unauthorized(
                        "No hub-issued identity token was handed to this session "
                        f"(expected in ${self.config.vault_jwt_env} or {self.config.vault_jwt_file or 'a JWT file'}). "
                        "Restart your server from the hub."
                    )
                exp = self._jwt_claims().get("exp")
                if exp is not None and exp < time.time():
                    raise Unauthorized("Your hub identity token has expired. Restart your server from the hub to get a new one.")
                client.auth.jwt.jwt_login(role=self.config.vault_jwt_role, jwt=hub_jwt, path=self.config.vault_jwt_mount)
            info = client.auth.token.lookup_self()["data"]
        except hvac.exceptions.InvalidRequest as exc:
            raise Unauthorized(f"Vault refused the login: {_vault_reason(exc)}") from None
        except hvac.exceptions.Forbidden:
            raise Unauthorized("Vault refused the session's token (expired or revoked). Restart your server from the hub.") from None
        except hvac.exceptions.VaultDown:
            raise ServiceUnavailable(f"Vault at {self.config.vault_address} is sealed.") from None
        except (requests.ConnectionError, requests.Timeout):
            raise ServiceUnavailable(f"Vault at {self.config.vault_address} is unreachable.") from None
        except hvac.exceptions.VaultError as exc:
            raise ServiceUnavailable(f"Vault error during login: {type(exc).__name__}") from None
        ttl = float(info.get("ttl") or 0)
        self._client = client
        self._token_ttl = ttl
        self._renewable = bool(info.get("renewable"))
        self._token_expires = time.monotonic() + ttl if ttl else 0.0
        if self.config.vault_auth == "jwt":
            self._user = self.config.vault_user or self._jwt_claims().get("sub") or self._user
        self.log.info("af-lab: logged in to Vault as %s (token ttl %.0f s)", self.user, ttl)

    def _renew_sync(self) -> None:
        assert self._client is not None
        try:
            data = self._client.auth.token.renew_self()["auth"]
        except hvac.exceptions.VaultError:
            self._login_sync()
            return
        ttl = float(data.get("lease_duration") or 0)
        # Renewal is capped by the token's max TTL: once it stops growing, log in afresh instead.
        if ttl < self._token_ttl * self.config.vault_renew_margin:
            self._login_sync()
            return
        self._token_expires = time.monotonic() + ttl
        self.log.debug("af-lab: renewed Vault token (ttl %.0f s)", ttl)

    def _ensure_sync(self) -> hvac.Client:
        if self._client is None:
            self._login_sync()
        elif self._token_expires:
            remaining = self._token_expires - time.monotonic()
            if remaining <= self._token_ttl * self.config.vault_renew_margin:
                if self._renewable and remaining > 1:
                    self._renew_sync()
                else:
                    self._login_sync()
        assert self._client is not None
        return self._client

    async def _call(self, fn, *args, **kwargs):
        """Run ``fn(client, ...)`` in a thread with a valid token; retry once after a fresh login on 403."""
        async with self._lock:
            return await asyncio.to_thread(self._call_sync, fn, *args, **kwargs)

    def _call_sync(self, fn, *args, **kwargs):
        client = self._ensure_sync()
        try:
            return fn(client, *args, **kwargs)
        except hvac.exceptions.Forbidden:
            # Token revoked or expired under us: one fresh login, then give up with a clear error.
            self._client = None
            client = self._ensure_sync()
            try:
                return fn(client, *args, **kwargs)
            except hvac.exceptions.Forbidden:
                raise Forbidden("Vault denied access to your secret store.") from None
        except hvac.exceptions.VaultDown:
            raise ServiceUnavailable(f"Vault at {self.config.vault_address} is sealed.") from None
        except (requests.ConnectionError, requests.Timeout):
            self._client = None
            raise ServiceUnavailable(f"Vault at {self.config.vault_address} is unreachable.") from None

    # ------------------------------------------------------------------ secrets
    def _path(self, name: str) -> str:
        return f"{self.config.vault_user_prefix}/{self.user}/{name}"

    async def read_secret(self, name: str) -> dict | None:
        cached = self._cache.get(name)
        if cached and cached[0] > time.monotonic():
            return cached[1]

        def read(client: hvac.Client):
            try:
                resp = client.secrets.kv.v2.read_secret_version(
                    path=self._path(name), mount_point=self.config.vault_kv_mount, raise_on_deleted_version=False
                )
            except hvac.exceptions.InvalidPath:
                return None
            return (resp.get("data") or {}).get("data")

        value = await self._call(read)
        self._cache[name] = (time.monotonic() + self.config.secret_cache_ttl, value)
        return value

    async def write_secret(self, name: str, data: dict) -> None:
        """Write ``data`` as the only version: a replaced password or token is destroyed, not kept as history."""

        def write(client: hvac.Client):
            path, mount = self._path(name), self.config.vault_kv_mount
            if path not in self._single_version:
                try:  # KV v2 then deletes older versions permanently on every write
                    client.secrets.kv.v2.update_metadata(path=path, max_versions=1, mount_point=mount)
                    self._single_version.add(path)
                except hvac.exceptions.Forbidden:
                    pass  # the site's policy does not allow it: old versions are destroyed below instead
            resp = client.secrets.kv.v2.create_or_update_secret(path=path, secret=data, mount_point=mount)
            version = ((resp or {}).get("data") or {}).get("version") or 1
            if version > 1 and path not in self._single_version:
                try:
                    client.secrets.kv.v2.destroy_secret_versions(
                        path=path, versions=list(range(max(1, version - 20), version)), mount_point=mount
                    )
                except hvac.exceptions.Forbidden:
                    self.log.warning("af-lab: Vault keeps older versions of %s (the policy allows neither "
                                     "max_versions nor destroy on it)", name)

        await self._call(write)
        self._cache[name] = (time.monotonic() + self.config.secret_cache_ttl, dict(data))

    async def delete_secret(self, name: str) -> None:
        def delete(client: hvac.Client):
            try:
                client.secrets.kv.v2.delete_metadata_and_all_versions(
                    path=self._path(name), mount_point=self.config.vault_kv_mount
                )
            except hvac.exceptions.InvalidPath:
                pass

        await self._call(delete)
        self._cache.pop(name, None)

    # ------------------------------------------------------------------ bearer token
    BEARER_SECRET = "tokens/bearer"

    async def bearer_token(self, hub_fallback: bool = True) -> tuple[str, float | None]:
        """The user's storage/compute bearer token and its expiry (epoch s, from its ``exp``).

        Kept in Vault at ``tokens/bearer`` (put there by the site's token refresher
        or by :meth:`set_bearer_token`); without one, the hub-issued JWT stands in,
        unless ``hub_fallback`` is False (Dask workers: the hub JWT opens Vault, it is
        never shipped). Raises Unauthorized when there is none or it has expired.
        """
        secret = await self.read_secret(self.BEARER_SECRET)
        hub = self._hub_jwt() if hub_fallback and self.config.vault_auth == "jwt" else None
        token = (secret or {}).get("token") or hub
        if not token:
            raise Unauthorized("No bearer token is available for this session. Restart your server from the hub.")
        exp = _jwt_exp(token)
        if exp is not None and exp < time.time():
            raise Unauthorized("Your bearer token has expired and no fresh one is in Vault.")
        return token, exp

    async def set_bearer_token(self, token: str) -> None:
        await self.write_secret(self.BEARER_SECRET, {"token": token})

    # ------------------------------------------------------------------ status
    async def status(self) -> dict[str, Any]:
        """Public facts only: reachable, logged in, user, auth kind, expiry. Never a token."""
        base = {"auth": self.config.vault_auth, "address": self.config.vault_address}
        try:
            health = await asyncio.to_thread(self._health)
        except ServiceUnavailable as exc:
            return {**base, "reachable": False, "logged_in": False, "message": exc.message}
        if health.get("sealed"):
            return {**base, "reachable": True, "logged_in": False, "message": "Vault is sealed."}
        try:
            async with self._lock:
                await asyncio.to_thread(self._ensure_sync)
        except AFLabError as exc:
            return {**base, "reachable": True, "logged_in": False, "message": exc.message}
        expires_at = time.time() + (self._token_expires - time.monotonic()) if self._token_expires else None
        return {
            **base,
            "reachable": True,
            "logged_in": True,
            "user": self.user,
            "expires_at": expires_at,
            "message": f"logged in as {self.user} ({self.config.vault_auth})",
        }

    def _health(self) -> dict:
        try:
            resp = requests.get(
                self.config.vault_address.rstrip("/") + "/v1/sys/health",
                params={"sealedcode": 200, "uninitcode": 200, "standbyok": "true"},
                timeout=self.config.status_timeout,
                verify=self.config.vault_ca_cert or True,
            )
            return resp.json()
        except (requests.RequestException, ValueError):
            raise ServiceUnavailable(f"Vault at {self.config.vault_address} is unreachable.") from None

    async def start(self) -> None:
        """Nothing to do before a request: Vault is logged into when a call first needs it."""

    async def close(self) -> None:
        self._client = None
        self._cache.clear()
        self.files.close()


class PrivateFiles:
    """0600 files in a private 0700 directory, removed by :meth:`close` (at server shutdown).

    Only for a library that insists on reading a secret from a file (rucio-clients'
    token file, ``BEARER_TOKEN_FILE``); everything else stays in Vault and memory.
    """

    def __init__(self, parent: Path):
        self.parent = Path(parent)
        self._dir: Path | None = None

    @property
    def dir(self) -> Path:
        if self._dir is None:
            self.parent.mkdir(parents=True, exist_ok=True)
            # mkdtemp makes it 0700 and unique per process, so two servers never share a file.
            self._dir = Path(tempfile.mkdtemp(prefix=f"secrets-{os.getpid()}-", dir=self.parent))
        return self._dir

    def write(self, name: str, content: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"not a plain file name: {name!r}")
        path = self.dir / name
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".tmp-")  # mkstemp: 0600 from the start
        with os.fdopen(fd, "w") as f:
            f.write(content)
        os.replace(tmp, path)  # atomic: a reader never sees half a token
        return path

    def close(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def _vault_reason(exc: Exception) -> str:
    # hvac puts Vault's own error strings in args[0]; they never contain the JWT or token.
    text = str(exc).split(", on ")[0].strip()
    return text or type(exc).__name__


def _jwt_exp(token: str) -> float | None:
    """``exp`` of a JWT (unverified: the storage or scheduler verifies it), None for opaque tokens."""
    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        return None
    return float(exp) if exp is not None else None
