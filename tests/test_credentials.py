"""Rucio credentials in Vault, against the real facility (Rucio 41 + OpenBao with JWT auth).

The facility's root token is used only by the tests, to look at (or prepare) what
Vault holds; af-lab itself logs in with the hub-issued JWT of the user.
"""

from __future__ import annotations

import copy
import json
import re
import time
import uuid

import hvac
import pytest
import requests
from tornado.httpclient import HTTPClientError

from af_facility import hub
from af_facility.lab import DEMO_INSTANCE, DEMO_USER, aflab_config, seed_rucio_password
from af_lab.config import AFLab
from af_lab.vault.credentials import CredentialService

pytestmark = pytest.mark.facility

OTHER = "asmith"


@pytest.fixture
def aflab_settings(request, facility, tmp_path):
    cfg = copy.deepcopy(aflab_config(facility.state)["AFLab"])
    cfg["state_dir"] = str(tmp_path / "state")
    edit = getattr(request, "param", None)
    if edit:
        edit(cfg, facility, tmp_path)
    return cfg


def root_vault(facility) -> hvac.Client:
    return facility.service("openbao").client()


def vault_read(facility, user: str, name: str) -> dict | None:
    try:
        resp = root_vault(facility).secrets.kv.v2.read_secret_version(
            path=f"users/{user}/{name}", mount_point="secret", raise_on_deleted_version=False)
    except hvac.exceptions.InvalidPath:
        return None
    return (resp.get("data") or {}).get("data")


def vault_write(facility, user: str, name: str, data: dict) -> None:
    root_vault(facility).secrets.kv.v2.create_or_update_secret(path=f"users/{user}/{name}", secret=data,
                                                               mount_point="secret")


def vault_delete(facility, user: str, name: str) -> None:
    root_vault(facility).secrets.kv.v2.delete_metadata_and_all_versions(path=f"users/{user}/{name}",
                                                                        mount_point="secret")


def rucio_password(facility) -> str:
    return facility.state.services["rucio"]["accounts"][DEMO_USER]["password"]


def rucio_login(facility) -> tuple[str, float]:
    rucio = facility.state.services["rucio"]
    resp = requests.get(rucio["url"] + "/auth/userpass", timeout=30, headers={
        "X-Rucio-Account": DEMO_USER, "X-Rucio-Username": DEMO_USER, "X-Rucio-Password": rucio_password(facility)})
    resp.raise_for_status()
    return resp.headers["X-Rucio-Auth-Token"], time.time() + 3600


async def fetch(jp_fetch, *parts, method="GET", body=None, **params):
    resp = await jp_fetch("af-lab", *parts, method=method, params=params,
                          body=None if body is None else json.dumps(body))
    return json.loads(resp.body) if resp.body else None


async def failure(jp_fetch, *parts, method="GET", body=None, **params):
    with pytest.raises(HTTPClientError) as err:
        await fetch(jp_fetch, *parts, method=method, body=body, **params)
    return err.value.code, json.loads(err.value.response.body)["error"]


def second_instance(cfg, facility, tmp_path):
    """The same Rucio as a second instance, for which jdoe has stored nothing yet."""
    inst = dict(cfg["rucio_instances"][0], name="other", display_name="Other")
    cfg["rucio_instances"] = [*cfg["rucio_instances"], inst]


# ---------------------------------------------------------------------- status
async def test_status_says_who_is_logged_in_and_never_a_secret(jp_fetch, facility):
    status = await fetch(jp_fetch, "credentials")
    assert status["vault"]["reachable"] and status["vault"]["logged_in"] and status["vault"]["user"] == DEMO_USER
    (demo,) = status["instances"]
    assert demo["instance"] == DEMO_INSTANCE and demo["auth_type"] == "userpass" and demo["logged_in"]
    assert demo["account"] == DEMO_USER and demo["vault_reachable"] is True
    assert time.time() < demo["expires_at"] <= time.time() + 3600  # Rucio's tokens live an hour
    text = json.dumps(status)
    assert rucio_password(facility) not in text and vault_read(facility, DEMO_USER, "tokens/rucio/demo")["token"] not in text

    rows = {s["id"]: s for s in (await fetch(jp_fetch, "status"))["services"]}
    row = rows[f"rucio:{DEMO_INSTANCE}"]
    assert row["state"] == "connected" and row["details"]["logged_in"] is True and "logged in as jdoe" in row["message"]


# ---------------------------------------------------------------------- entering credentials
@pytest.mark.parametrize("aflab_settings", [second_instance], indirect=True)
async def test_enter_credentials_validated_by_rucio_then_stored(jp_fetch, facility):
    try:
        code, err = await failure(jp_fetch, "rucio", "instances", "other", "scopes")
        assert code == 401 and err["action"] == "enter_credentials" and "PUT /af-lab/credentials/other" in err["message"]
        other = {i["instance"]: i for i in (await fetch(jp_fetch, "credentials"))["instances"]}["other"]
        assert other["logged_in"] is False and "No Rucio credentials" in other["message"]

        code, err = await failure(jp_fetch, "credentials", "other", method="PUT",
                                  body={"username": DEMO_USER, "password": "not-the-password"})
        assert code == 401 and "refused" in err["message"] and "not-the-password" not in json.dumps(err)
        assert vault_read(facility, DEMO_USER, "rucio/other") is None  # a refused password is never kept

        code, err = await failure(jp_fetch, "credentials", "other", method="PUT", body={"username": DEMO_USER})
        assert code == 400 and "password" in err["message"]
        code, err = await failure(jp_fetch, "credentials", "other", method="PUT",
                                  body={"auth_type": "x509_proxy"})
        assert code == 400

        status = await fetch(jp_fetch, "credentials", "other", method="PUT",
                             body={"username": DEMO_USER, "password": rucio_password(facility)})
        assert status["logged_in"] and status["instance"] == "other" and rucio_password(facility) not in json.dumps(status)
        stored = vault_read(facility, DEMO_USER, "rucio/other")
        assert stored == {"auth_type": "userpass", "username": DEMO_USER, "password": rucio_password(facility)}
        assert vault_read(facility, DEMO_USER, "tokens/rucio/other")["token"]
        assert "cms_opendata" in (await fetch(jp_fetch, "rucio", "instances", "other", "scopes"))["scopes"]

        assert await fetch(jp_fetch, "credentials", "other", method="DELETE") is None
        assert vault_read(facility, DEMO_USER, "rucio/other") is None
        assert vault_read(facility, DEMO_USER, "tokens/rucio/other") is None
        code, err = await failure(jp_fetch, "rucio", "instances", "other", "scopes", refresh="1")
        assert code == 401
    finally:
        for name in ("rucio/other", "tokens/rucio/other"):
            vault_delete(facility, DEMO_USER, name)


def oidc_instance(cfg, facility, tmp_path):
    inst = dict(cfg["rucio_instances"][0], name="oidc", auth_type="oidc")
    cfg["rucio_instances"] = [*cfg["rucio_instances"], inst]


@pytest.mark.parametrize("aflab_settings", [oidc_instance], indirect=True)
async def test_oidc_token_that_rucio_does_not_accept_is_refused(jp_fetch, facility):
    # The facility's Rucio trusts no IdP: a well-formed, unexpired JWT must still get a clear 401.
    token = hub.mint_jwt(facility.root, DEMO_USER, ttl_s=600, audience="rucio")
    code, err = await failure(jp_fetch, "credentials", "oidc", method="PUT", body={"auth_type": "oidc", "token": token})
    assert code == 401 and "does not accept this OIDC token" in err["message"] and token not in json.dumps(err)
    assert vault_read(facility, DEMO_USER, "rucio/oidc") is None
    expired = hub.mint_jwt(facility.root, DEMO_USER, ttl_s=-60, audience="rucio")
    code, err = await failure(jp_fetch, "credentials", "oidc", method="PUT", body={"auth_type": "oidc", "token": expired})
    assert code == 401 and "expired" in err["message"]
    code, err = await failure(jp_fetch, "rucio", "instances", "oidc", "scopes")
    assert code == 401 and err["action"] == "enter_credentials"


# ---------------------------------------------------------------------- tokens: Vault + memory, refresh
async def test_valid_rucio_token_in_vault_is_reused(jp_fetch, facility):
    token, expires = rucio_login(facility)
    vault_write(facility, DEMO_USER, "tokens/rucio/demo", {"token": token, "expires_at": expires,
                "obtained_at": time.time(), "account": DEMO_USER, "auth_type": "userpass"})
    assert (await fetch(jp_fetch, "rucio", "instances", DEMO_INSTANCE, "scopes"))["scopes"]
    assert vault_read(facility, DEMO_USER, "tokens/rucio/demo")["token"] == token  # no new login


async def test_rucio_token_refreshed_before_it_expires(jp_fetch, facility):
    token, _ = rucio_login(facility)
    now = time.time()
    # An hour-long token with 60 s left: inside the refresh margin, so af-lab logs in anew now.
    vault_write(facility, DEMO_USER, "tokens/rucio/demo", {"token": token, "expires_at": now + 60,
                "obtained_at": now - 3540, "account": DEMO_USER, "auth_type": "userpass"})
    assert (await fetch(jp_fetch, "rucio", "instances", DEMO_INSTANCE, "scopes"))["scopes"]
    cached = vault_read(facility, DEMO_USER, "tokens/rucio/demo")
    assert cached["token"] != token and cached["expires_at"] - time.time() > 3000
    status = (await fetch(jp_fetch, "credentials"))["instances"][0]
    assert abs(status["expires_at"] - cached["expires_at"]) < 1


async def test_rejected_rucio_token_means_one_fresh_login(jp_fetch, facility):
    bogus = f"{DEMO_USER}-{DEMO_USER}-unknown-{uuid.uuid4().hex}"
    vault_write(facility, DEMO_USER, "tokens/rucio/demo", {"token": bogus, "expires_at": time.time() + 3000,
                "obtained_at": time.time(), "account": DEMO_USER, "auth_type": "userpass"})
    assert (await fetch(jp_fetch, "rucio", "instances", DEMO_INSTANCE, "scopes"))["scopes"]
    assert vault_read(facility, DEMO_USER, "tokens/rucio/demo")["token"] != bogus


async def test_vault_token_renewed_before_expiry(jp_fetch, facility, monkeypatch, jp_serverapp):
    """A 6 s Vault token (AF_BAO_TOKEN_TTL): requests over 12 s keep working and the token is renewed."""
    monkeypatch.setenv("AF_BAO_TOKEN_TTL", "6s")
    facility.service("openbao").up()  # re-applies the role with the short TTL (same server, same data)
    try:
        creds = jp_serverapp.web_app.settings["af_lab"].credentials
        creds._client = None  # log in again under the new role TTL
        creds.config.secret_cache_ttl = 0  # every request reads Vault
        first = await fetch(jp_fetch, "credentials")
        assert first["vault"]["logged_in"]
        assert first["vault"]["expires_at"] - time.time() <= 6.5
        seen, deadline = [], time.time() + 12
        while time.time() < deadline:
            state = await fetch(jp_fetch, "credentials")
            assert state["vault"]["logged_in"], state["vault"]
            await creds.read_secret("rucio/demo")
            seen.append(state["vault"]["expires_at"])
            time.sleep(0.5)  # block the loop on purpose: renewal must not depend on a background task
        assert seen[-1] > first["vault"]["expires_at"] + 5  # renewed (or re-logged) past the first TTL
        assert await creds.read_secret("rucio/demo")
    finally:
        monkeypatch.delenv("AF_BAO_TOKEN_TTL")
        facility.service("openbao").up()


# ---------------------------------------------------------------------- isolation
def as_asmith_reading_jdoe(cfg, facility, tmp_path):
    jwt_file = tmp_path / "asmith.jwt"
    jwt_file.write_text(hub.mint_jwt(facility.root, OTHER))
    jwt_file.chmod(0o600)
    cfg.update(vault_jwt_file=str(jwt_file), vault_user=DEMO_USER)  # asmith's identity, jdoe's path


@pytest.mark.parametrize("aflab_settings", [as_asmith_reading_jdoe], indirect=True)
async def test_a_session_cannot_read_another_users_vault_path(jp_fetch, facility, aflab_settings):
    # asmith's session pointed at jdoe's path: Vault itself says no (the policy is per JWT sub).
    code, err = await failure(jp_fetch, "rucio", "instances", DEMO_INSTANCE, "scopes")
    assert code == 403 and rucio_password(facility) not in json.dumps(err)
    status = (await fetch(jp_fetch, "credentials"))["instances"][0]
    assert status["logged_in"] is False and rucio_password(facility) not in json.dumps(status)

    # And the same with the credential service directly, in both directions.
    marker = f"asmith-secret-{uuid.uuid4().hex}"
    vault_write(facility, OTHER, "rucio/demo", {"auth_type": "userpass", "username": OTHER, "password": marker})
    try:
        own = CredentialService(AFLab(**{**aflab_settings, "vault_user": ""}))
        assert own.user == OTHER and (await own.read_secret("rucio/demo"))["password"] == marker
        jdoe = CredentialService(AFLab(**{**aflab_settings, "vault_user": "",
                                          "vault_jwt_file": facility.state.services["openbao"]["user_jwt_files"][DEMO_USER]}))
        assert jdoe.user == DEMO_USER and (await jdoe.read_secret("rucio/demo"))["password"] != marker
        # jdoe's Vault token on asmith's path, bypassing af-lab's path building: 403 from Vault.
        client = jdoe._client
        with pytest.raises(hvac.exceptions.Forbidden):
            client.secrets.kv.v2.read_secret_version(path=f"users/{OTHER}/rucio/demo", mount_point="secret",
                                                     raise_on_deleted_version=False)
        await own.close()
        await jdoe.close()
    finally:
        vault_delete(facility, OTHER, "rucio/demo")


# ---------------------------------------------------------------------- Vault sealed or down
async def test_vault_sealed_then_down_gives_503(jp_fetch, facility, jp_serverapp):
    bao = facility.service("openbao")
    root = root_vault(facility)
    key = _unseal_key(bao)
    if key is None:
        pytest.skip("the dev server's unseal key is not in its log")
    root.sys.seal()
    try:
        code, err = await failure(jp_fetch, "rucio", "instances", DEMO_INSTANCE, "scopes")
        assert code == 503 and "sealed" in err["message"] and err.get("service") == "vault"
        status = await fetch(jp_fetch, "credentials")
        assert status["vault"]["logged_in"] is False and "sealed" in status["vault"]["message"]
    finally:
        root.sys.submit_unseal_key(key)
    assert (await fetch(jp_fetch, "rucio", "instances", DEMO_INSTANCE, "scopes"))["scopes"]

    # Down: a token already held keeps browsing alive; anything needing Vault is a clear 503.
    bao.down()
    try:
        assert (await fetch(jp_fetch, "rucio", "instances", DEMO_INSTANCE, "scopes", refresh="1"))["scopes"]
        status = await fetch(jp_fetch, "credentials")
        assert status["vault"]["reachable"] is False
        code, err = await failure(jp_fetch, "credentials", DEMO_INSTANCE, method="PUT",
                                  body={"username": DEMO_USER, "password": rucio_password(facility)})
        assert code == 503 and "Vault" in err["message"] and "unreachable" in err["message"]
        services = jp_serverapp.web_app.settings["af_lab"]
        services.rucio_auth._tokens.clear()  # as after a server restart: nothing in memory
        services.credentials._cache.clear()
        code, err = await failure(jp_fetch, "rucio", "instances", DEMO_INSTANCE, "scopes", refresh="1")
        assert code == 503 and "unreachable" in err["message"]
    finally:
        facility.up(["openbao"], log=lambda *_: None)
        seed_rucio_password(facility.state)


def _unseal_key(bao) -> str | None:
    text = bao.process.log_file.read_text(errors="replace")
    found = re.findall(r"Unseal Key: (\S+)", text)
    return found[-1] if found else None
