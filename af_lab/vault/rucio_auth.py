"""Rucio credentials and auth tokens, per instance: the Rucio half of the credential service.

Where each auth type's secret comes from:

* ``userpass``: the username/password the user entered (Vault ``rucio/<instance>``),
  exchanged for a Rucio token at ``/auth/userpass``.
* ``oidc``: a JWT from the instance's ``oidc_token_file`` or ``oidc_token_env`` (a hub
  keeps those fresh), else one the user entered (Vault). Rucio accepts the JWT itself
  as its token; its ``exp`` (read with pyjwt, unverified: Rucio verifies) decides when
  the source is read again.
* ``x509_proxy``: the proxy file named in the instance config (``x509_proxy_file``, or
  the variable named by ``x509_proxy_env``), exchanged at ``/auth/x509_proxy``.

Rucio tokens live in memory and in Vault ``tokens/rucio/<instance>`` (so a restarted
server does not log in again) and are replaced when less than a quarter of their life,
at most :data:`REFRESH_MARGIN_S`, remains. Nothing is written to disk, and nothing here
touches ``os.environ``: every request carries its own headers.

:class:`RucioSession` is what the Rucio service gets: an object that sends requests with
the token attached and never hands the token out.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import jwt
import requests
from requests.adapters import HTTPAdapter

from ..config import AFLab
from ..errors import AFLabError, BadRequest, Forbidden, ServiceUnavailable, Unauthorized
from ..units import utc_time
from .credentials import CredentialService

REFRESH_MARGIN_S = 300.0  # replace a token this long before it expires (or at 3/4 of a short life)
TOKEN_HEADER = "X-Rucio-Auth-Token"
APP_ID = "af-lab"


class TokenRejected(Exception):
    """Rucio answered 401 to a token we believed valid: log in again once, then give up."""


@dataclass
class _Token:
    value: str = field(repr=False)
    expires_at: float | None  # epoch seconds; None: unknown (treated as valid until rejected)
    obtained_at: float
    account: str
    auth_type: str
    source: str  # where the credential came from: "vault", "file", "env"

    def fresh(self, now: float | None = None) -> bool:
        if self.expires_at is None:
            return True
        now = time.time() if now is None else now
        life = max(self.expires_at - self.obtained_at, 0.0)
        return self.expires_at - now > min(REFRESH_MARGIN_S, life / 4)


class RucioSession:
    """Sends authenticated requests to one Rucio instance. Holds the token; never exposes it."""

    __slots__ = ("instance", "host", "_token", "_http", "_verify", "_timeout")

    def __init__(self, instance: str, host: str, token: _Token, http: requests.Session, verify, timeout: float):
        self.instance = instance
        self.host = host.rstrip("/")
        self._token = token
        self._http = http
        self._verify = verify
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"<RucioSession {self.instance} {self._token.auth_type} account={self._token.account}>"

    @property
    def account(self) -> str:
        return self._token.account

    def request(self, method: str, path: str, *, params=None, json=None, data=None,
                stream: bool = False, accept: str | None = None) -> requests.Response:
        """One HTTP request (blocking: call it from a worker thread). 401 raises TokenRejected."""
        headers = {TOKEN_HEADER: self._token.value, "X-Rucio-AppID": APP_ID}
        headers["Accept"] = accept or ("application/x-json-stream" if stream else "application/json")
        resp = send(self._http, self.instance, self.host, method, self.host + path, timeout=self._timeout,
                    params=params, json=json, data=data, headers=headers, stream=stream, verify=self._verify)
        resp.request.headers.pop(TOKEN_HEADER, None)  # a response kept for debugging must not carry it
        rejected = resp.headers.get("ExceptionClass") == "CannotAuthenticate"
        if rejected or (resp.status_code == 401 and "ExceptionClass" not in resp.headers):
            resp.close()
            raise TokenRejected(self.instance)
        return resp


def send(http: requests.Session, instance: str, host: str, method: str, url: str, *, timeout: float, **kwargs):
    """``http.request`` with transport failures turned into a 503 naming the instance."""
    try:
        return http.request(method, url, timeout=(min(timeout, 10.0), timeout), allow_redirects=False, **kwargs)
    except requests.Timeout:
        raise ServiceUnavailable(
            f"Rucio instance '{instance}' ({host}) could not be reached: no answer within {timeout:.0f} s "
            "(unreachable or overloaded). Try again later.",
            instance=instance, service="rucio",
        ) from None
    except requests.RequestException as exc:
        raise ServiceUnavailable(
            f"Rucio instance '{instance}' ({host}) is unreachable: it could not be reached ({type(exc).__name__}). "
            "Try again later; if it persists, tell your facility's admins.",
            instance=instance, service="rucio",
        ) from None


class RucioAuth:
    CREDS_SECRET = "rucio/{instance}"
    TOKEN_SECRET = "tokens/rucio/{instance}"

    def __init__(self, config: AFLab, credentials: CredentialService | None, log: logging.Logger | None = None):
        self.config = config
        self.credentials = credentials
        self.log = log or logging.getLogger("af_lab")
        self._tokens: dict[str, _Token] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._http: dict[str, requests.Session] = {}

    # ------------------------------------------------------------------ instances
    def instance(self, name: str | None) -> dict[str, Any]:
        from ..rucio.names import instance  # the one resolver (pure; no cycle at import time)

        return instance(self.config, name)

    def _auth_type(self, inst: dict, stored: dict | None = None) -> str:
        return (stored or {}).get("auth_type") or inst.get("auth_type", "userpass")

    def _verify(self, inst: dict):
        ca = inst.get("ca_cert", True)
        return ca if isinstance(ca, str) and ca else True

    def http(self, inst: dict) -> requests.Session:
        name = inst["name"]
        if name not in self._http:
            s = requests.Session()
            # No retries inside requests: a failure is reported, never looped on.
            size = max(2, self.config.rucio_concurrency * 2)
            s.mount("http://", HTTPAdapter(pool_maxsize=size, max_retries=0))
            s.mount("https://", HTTPAdapter(pool_maxsize=size, max_retries=0))
            self._http[name] = s
        return self._http[name]

    # ------------------------------------------------------------------ sessions
    async def session(self, name: str | None) -> RucioSession:
        inst = self.instance(name)
        token = await self._token(inst)
        return RucioSession(inst["name"], inst["rucio_host"], token, self.http(inst), self._verify(inst),
                            self.config.rucio_timeout)

    async def renew(self, name: str, stale: RucioSession) -> RucioSession:
        """After Rucio rejected ``stale``'s token: forget it everywhere and log in once more."""
        inst = self.instance(name)
        if self._tokens.get(inst["name"]) is stale._token:
            self._tokens.pop(inst["name"], None)
            await self._forget_vault_token(inst["name"], stale._token)
        return await self.session(name)

    async def _token(self, inst: dict) -> _Token:
        name = inst["name"]
        token = self._tokens.get(name)
        if token and token.fresh():
            return token
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:  # concurrent requests share one login
            token = self._tokens.get(name)
            if token and token.fresh():
                return token
            token = await self._acquire(inst)
            self._tokens[name] = token
            return token

    async def _acquire(self, inst: dict) -> _Token:
        name = inst["name"]
        auth_type = inst.get("auth_type", "userpass")
        if auth_type == "oidc":
            external = await asyncio.to_thread(self._oidc_from_config, inst)
            if external:
                return external
        if auth_type != "oidc":  # a cached Rucio token first: one Vault read on a server restart
            cached = await self._read(self.TOKEN_SECRET.format(instance=name))
            if cached and cached.get("token") and cached.get("auth_type") == auth_type:
                token = _Token(cached["token"], cached.get("expires_at"), cached.get("obtained_at") or time.time(),
                               cached.get("account", ""), auth_type, "vault")
                if token.fresh():
                    return token
        stored = await self._read(self.CREDS_SECRET.format(instance=name))
        auth_type = self._auth_type(inst, stored)
        if auth_type == "oidc":
            return self._oidc_token(inst, (stored or {}).get("token"), "vault")
        if auth_type == "userpass":
            if not stored or not stored.get("password"):
                raise self._missing(inst)
            token = await asyncio.to_thread(self._login_userpass, inst, stored)
        else:
            token = await asyncio.to_thread(self._login_x509, inst)
        await self._store_token(name, token)
        return token

    def _missing(self, inst: dict) -> Unauthorized:
        return Unauthorized(
            f"No Rucio credentials are stored for instance '{inst['name']}'. Enter your Rucio "
            f"username and password in the Data panel (PUT /af-lab/credentials/{inst['name']}).",
            instance=inst["name"], auth_type=inst.get("auth_type", "userpass"), action="enter_credentials",
        )

    # ------------------------------------------------------------------ logins (blocking)
    def _login_userpass(self, inst: dict, creds: dict) -> _Token:
        username = creds.get("username") or inst.get("username")
        account = creds.get("account") or inst.get("account") or username
        if not username:
            raise BadRequest(f"Rucio instance '{inst['name']}' needs a username.", instance=inst["name"])
        headers = {"X-Rucio-Account": account, "X-Rucio-Username": username,
                   "X-Rucio-Password": creds["password"], "X-Rucio-AppID": APP_ID}
        return self._login(inst, "/auth/userpass", headers, "userpass", account,
                           f"Rucio instance '{inst['name']}' refused the username/password for account '{account}'. "
                           "Enter them again in the Data panel.")

    def _login_x509(self, inst: dict) -> _Token:
        env = inst.get("x509_proxy_env")  # e.g. X509_USER_PROXY, when the instance names one
        proxy = inst.get("x509_proxy_file") or (os.environ.get(env, "") if env else "")
        if not proxy or not Path(proxy).is_file():
            raise Unauthorized(
                f"The X.509 proxy for Rucio instance '{inst['name']}' ({proxy or 'x509_proxy_file not set'}) "
                "does not exist. Create one (voms-proxy-init) and try again.",
                instance=inst["name"], auth_type="x509_proxy", action="renew_proxy",
            )
        account = inst.get("account") or ""
        headers = {"X-Rucio-Account": account, "X-Rucio-AppID": APP_ID}
        return self._login(inst, "/auth/x509_proxy", headers, "x509_proxy", account,
                           f"Rucio instance '{inst['name']}' refused your X.509 proxy for account '{account}'. "
                           "Renew the proxy (voms-proxy-init) and try again.", cert=(proxy, proxy))

    def _login(self, inst, path, headers, auth_type, account, refused, cert=None) -> _Token:
        host = (inst.get("auth_host") or inst["rucio_host"]).rstrip("/")
        if inst.get("vo"):
            headers["X-Rucio-VO"] = inst["vo"]
        for key, value in headers.items():  # a header cannot carry them: the user's input is at fault
            field = key.removeprefix("X-Rucio-").lower()
            if any(c in str(value) for c in "\r\n\x00"):
                headers.clear()
                raise BadRequest(f"The {field} must not contain line breaks or NUL characters.", field=field,
                                 instance=inst["name"])
            try:
                str(value).encode("latin-1")  # what HTTP headers carry; Rucio reads them as such
            except UnicodeEncodeError:
                headers.clear()
                raise BadRequest(f"The {field} contains characters Rucio's login cannot carry (only Latin-1, "
                                 "e.g. no '€').", field=field, instance=inst["name"]) from None
        resp = send(self.http(inst), inst["name"], host, "GET", host + path, timeout=self.config.rucio_timeout,
                    headers=headers, verify=self._verify(inst), cert=cert)
        headers.clear()  # drop our reference to the password early
        with resp:
            if resp.status_code == 401:
                raise Unauthorized(refused, instance=inst["name"], auth_type=auth_type, action="enter_credentials")
            if resp.status_code == 431:
                raise BadRequest(f"Rucio instance '{inst['name']}' refused the login: the credentials are too long "
                                 "(HTTP 431).", field="password" if auth_type == "userpass" else "token",
                                 instance=inst["name"])
            if resp.status_code >= 500:
                raise ServiceUnavailable(f"Rucio instance '{inst['name']}' failed to log you in "
                                         f"(HTTP {resp.status_code}). Try again later.", instance=inst["name"],
                                         service="rucio")
            value = resp.headers.get(TOKEN_HEADER)
            if resp.status_code != 200 or not value:
                raise ServiceUnavailable(f"Rucio instance '{inst['name']}' answered the login with HTTP "
                                         f"{resp.status_code} and no token.", instance=inst["name"], service="rucio")
            expires = _http_date(resp.headers.get("X-Rucio-Auth-Token-Expires"))
            account = resp.headers.get("X-Rucio-Auth-Account") or account
        self.log.info("af-lab: logged in to Rucio instance %s as %s (%s)", inst["name"], account, auth_type)
        return _Token(value, expires, time.time(), account, auth_type, "vault" if auth_type == "userpass" else "file")

    # ------------------------------------------------------------------ OIDC
    def _oidc_from_config(self, inst: dict) -> _Token | None:
        """The JWT a hub hands over (file first, then environment), or None when neither is set."""
        path, env = inst.get("oidc_token_file"), inst.get("oidc_token_env")
        if path:
            try:
                value = Path(path).read_text().strip()
            except OSError:
                value = ""
            if value:
                return self._oidc_token(inst, value, "file")
        if env and os.environ.get(env, "").strip():
            return self._oidc_token(inst, os.environ[env].strip(), "env")
        return None

    def _oidc_token(self, inst: dict, value: str | None, source: str) -> _Token:
        name = inst["name"]
        if not value:
            where = inst.get("oidc_token_file") or (inst.get("oidc_token_env") and f"${inst['oidc_token_env']}")
            raise Unauthorized(
                f"No OIDC token for Rucio instance '{name}'"
                + (f" (looked in {where})" if where else "")
                + ". Paste an access token in the Data panel, or restart your server from the hub.",
                instance=name, auth_type="oidc", action="enter_credentials",
            )
        try:
            claims = jwt.decode(value, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise BadRequest(f"The OIDC token for Rucio instance '{name}' is not a JWT.", instance=name) from None
        exp = claims.get("exp")
        now = time.time()
        if exp is not None and float(exp) <= now:
            raise Unauthorized(
                f"Your OIDC token for Rucio instance '{name}' expired at "
                f"{utc_time(exp)}. "
                + ("Restart your server from the hub to get a fresh one." if source != "vault"
                   else "Paste a fresh token in the Data panel."),
                instance=name, auth_type="oidc", action="refresh_token",
            )
        iat = float(claims.get("iat") or claims.get("nbf") or now)
        account = inst.get("account") or claims.get("preferred_username") or claims.get("sub", "")
        return _Token(value, float(exp) if exp is not None else None, min(iat, now), account, "oidc", source)

    def _validate_sync(self, inst: dict, token: _Token) -> None:
        host = (inst.get("auth_host") or inst["rucio_host"]).rstrip("/")
        resp = send(self.http(inst), inst["name"], host, "GET", host + "/auth/validate",
                    timeout=self.config.rucio_timeout, headers={TOKEN_HEADER: token.value, "X-Rucio-AppID": APP_ID},
                    verify=self._verify(inst))
        with resp:
            # Rucio answers an untrusted JWT with 500 + CannotAuthenticate when it has no IdP configured.
            if resp.status_code == 401 or resp.headers.get("ExceptionClass") == "CannotAuthenticate":
                raise Unauthorized(f"Rucio instance '{inst['name']}' does not accept this OIDC token. "
                                   "Check that it was issued for Rucio (audience, scope) and paste another.",
                                   instance=inst["name"], auth_type="oidc", action="enter_credentials")
            if resp.status_code != 200:
                raise ServiceUnavailable(f"Rucio instance '{inst['name']}' could not validate the token "
                                         f"(HTTP {resp.status_code}).", instance=inst["name"], service="rucio")

    # ------------------------------------------------------------------ user-entered credentials
    async def put_credentials(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Check new credentials by logging in to Rucio, then keep them in Vault. Returns the status."""
        inst = self.instance(name)
        name = inst["name"]
        configured = inst.get("auth_type", "userpass")
        auth_type = body.get("auth_type") or configured
        if auth_type not in ("userpass", "oidc"):
            raise BadRequest(f"auth_type must be 'userpass' or 'oidc' (got {auth_type!r}); an X.509 proxy "
                             "is read from the file named in the instance's configuration.", instance=name)
        if auth_type != configured:
            raise BadRequest(f"Rucio instance '{name}' is configured for {configured} authentication.", instance=name)
        if self.credentials is None:
            raise ServiceUnavailable("No Vault is configured, so af-lab cannot keep your Rucio credentials "
                                     "(c.AFLab.vault_address).", instance=name, service="vault")
        for key in ("username", "password", "account", "token"):
            _check_header_safe(body.get(key), key, name)
        if auth_type == "userpass":
            password = body.get("password")
            username = body.get("username") or inst.get("username")
            if not isinstance(password, str) or not password or not isinstance(username, str) or not username:
                raise BadRequest("userpass credentials need 'username' and 'password' (non-empty strings).",
                                 instance=name)
            secret = {"auth_type": "userpass", "username": username, "password": password}
            if isinstance(body.get("account"), str) and body["account"]:
                secret["account"] = body["account"]
            token = await asyncio.to_thread(self._login_userpass, inst, secret)
        else:
            value = body.get("token")
            if not isinstance(value, str) or not value.strip():
                raise BadRequest("oidc credentials need 'token' (the access token, a JWT).", instance=name)
            secret = {"auth_type": "oidc", "token": value.strip()}
            token = self._oidc_token(inst, secret["token"], "vault")
            await asyncio.to_thread(self._validate_sync, inst, token)
        await self._write(self.CREDS_SECRET.format(instance=name), secret)
        if auth_type == "userpass":
            await self._store_token(name, token)
        self._tokens[name] = token
        return await self.status_one(name, login=False)

    async def forget(self, name: str) -> None:
        """Remove the user's stored credentials and tokens for an instance (log out)."""
        inst = self.instance(name)
        self._tokens.pop(inst["name"], None)
        if self.credentials is not None:
            await self._vault(self.credentials.delete_secret(self.CREDS_SECRET.format(instance=inst["name"])))
            await self._vault(self.credentials.delete_secret(self.TOKEN_SECRET.format(instance=inst["name"])))

    # ------------------------------------------------------------------ Vault
    async def _vault(self, coro):
        try:
            return await coro
        except (ServiceUnavailable, Forbidden) as exc:
            exc.details.setdefault("service", "vault")
            raise

    async def _read(self, path: str) -> dict | None:
        if self.credentials is None:
            return None
        return await self._vault(self.credentials.read_secret(path))

    async def _write(self, path: str, data: dict) -> None:
        await self._vault(self.credentials.write_secret(path, data))

    async def _store_token(self, name: str, token: _Token) -> None:
        if self.credentials is None or token.auth_type == "oidc":
            return
        data = {"token": token.value, "expires_at": token.expires_at, "obtained_at": token.obtained_at,
                "account": token.account, "auth_type": token.auth_type}
        try:
            await self._write(self.TOKEN_SECRET.format(instance=name), data)
        except AFLabError as exc:  # the token still works from memory; only a restart pays a login
            self.log.warning("af-lab: could not cache the Rucio token of %s in Vault: %s", name, exc.message)

    async def _forget_vault_token(self, name: str, token: _Token) -> None:
        if self.credentials is None or token.auth_type == "oidc":
            return
        try:
            await self.credentials.delete_secret(self.TOKEN_SECRET.format(instance=name))
        except AFLabError as exc:
            self.log.warning("af-lab: could not drop the rejected Rucio token of %s from Vault: %s", name, exc.message)

    # ------------------------------------------------------------------ status
    async def status(self) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(self.status_one(i["name"]) for i in self.config.rucio_instances)))

    async def status_one(self, name: str, login: bool = True) -> dict[str, Any]:
        """Public facts only (never a secret). ``login``: try stored credentials when no token is held."""
        inst = self.instance(name)
        name = inst["name"]
        out: dict[str, Any] = {
            "instance": name,
            "display_name": inst.get("display_name") or name,
            "auth_type": inst.get("auth_type", "userpass"),
            "account": inst.get("account"),
            "logged_in": False,
            "expires_at": None,
            "vault_reachable": None if self.credentials is None else True,
            "message": "",
        }
        token = self._tokens.get(name)
        try:
            if not (token and token.fresh()):
                if not login:
                    raise self._missing(inst)
                token = await self._token(inst)
        except AFLabError as exc:
            out["message"] = exc.message
            if exc.details.get("service") == "vault":
                out["vault_reachable"] = False
            return out
        out.update(logged_in=True, auth_type=token.auth_type, account=token.account or out["account"],
                   expires_at=token.expires_at, source=token.source,
                   message=f"logged in as {token.account or '?'} ({token.auth_type})")
        return out

    async def start(self) -> None:
        """Nothing to do before a request: tokens are fetched when a call first needs one."""

    async def close(self) -> None:
        self._tokens.clear()
        for s in self._http.values():
            s.close()
        self._http.clear()


# Rucio takes credentials in HTTP headers: latin-1 only, no line breaks, and servers refuse
# headers of several KiB (431). Checked here so the user hears which field breaks which rule.
_MAX_CREDENTIAL_CHARS = {"username": 256, "password": 1024, "account": 256, "token": 16_384}


def _check_header_safe(value: Any, field: str, instance: str) -> None:
    if value is None or value == "":
        return
    if not isinstance(value, str):
        raise BadRequest(f"'{field}' must be a string.", field=field, rule="string", instance=instance)
    limit = _MAX_CREDENTIAL_CHARS[field]
    if len(value) > limit:
        raise BadRequest(f"'{field}' is longer than {limit} characters.", field=field,
                         rule=f"at most {limit} characters", instance=instance)
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise BadRequest(f"'{field}' contains a line break or another control character, which Rucio cannot "
                         "receive.", field=field, rule="no control characters", instance=instance)
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise BadRequest(f"'{field}' contains characters outside Latin-1 (e.g. '€'), which Rucio's login "
                         "cannot receive.", field=field, rule="Latin-1 characters only", instance=instance) from None


def _http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value.replace(" UTC", " GMT")).timestamp()
    except (TypeError, ValueError):
        return None
