"""Credential logic that needs no facility: private files, OIDC tokens from a file or the environment."""

from __future__ import annotations

import socket
import stat
import time

import jwt
import pytest

from af_lab.config import AFLab
from af_lab.errors import BadRequest, ServiceUnavailable, Unauthorized
from af_lab.rucio.gateway import RucioGateway
from af_lab.rucio.service import RucioService
from af_lab.vault.credentials import PrivateFiles
from af_lab.vault.rucio_auth import RucioAuth


def make_jwt(exp_in: float, iat_ago: float = 0.0, sub: str = "jdoe") -> str:
    now = time.time()
    return jwt.encode({"sub": sub, "iat": int(now - iat_ago), "exp": int(now + exp_in)}, "k" * 32, algorithm="HS256")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def oidc_config(tmp_path, **inst) -> AFLab:
    instance = {"name": "x", "rucio_host": f"http://127.0.0.1:{closed_port()}", "auth_type": "oidc",
                "account": "jdoe", **inst}
    return AFLab(rucio_instances=[instance], state_dir=str(tmp_path / "state"), rucio_timeout=3.0)


def test_private_files_are_0600_in_a_0700_dir_removed_at_close(tmp_path):
    files = PrivateFiles(tmp_path / "run")
    path = files.write("token", "secret-1")
    assert path.read_text() == "secret-1"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    files.write("token", "secret-2")
    assert path.read_text() == "secret-2" and [p.name for p in path.parent.iterdir()] == ["token"]
    with pytest.raises(ValueError):
        files.write("../escape", "x")
    files.close()
    assert not path.parent.exists()


async def test_oidc_token_from_file_is_reread_before_it_expires(tmp_path):
    token_file = tmp_path / "access_token"
    first = make_jwt(exp_in=100, iat_ago=3500)  # an hour-long token with 100 s left: inside the margin
    token_file.write_text(first)
    auth = RucioAuth(oidc_config(tmp_path, oidc_token_file=str(token_file)), credentials=None)
    session = await auth.session("x")
    assert first not in repr(session) and session.account == "jdoe"
    assert auth._tokens["x"].value == first and not auth._tokens["x"].fresh()
    second = make_jwt(exp_in=3600)
    token_file.write_text(second)  # the hub refreshed the file
    await auth.session("x")
    assert auth._tokens["x"].value == second and auth._tokens["x"].fresh()
    await auth.close()


async def test_oidc_token_from_environment(tmp_path, monkeypatch):
    token = make_jwt(exp_in=3600)
    monkeypatch.setenv("AF_TEST_RUCIO_TOKEN", token)
    auth = RucioAuth(oidc_config(tmp_path, oidc_token_env="AF_TEST_RUCIO_TOKEN"), credentials=None)
    await auth.session("x")
    assert auth._tokens["x"].value == token and auth._tokens["x"].source == "env"


async def test_oidc_token_expired_missing_or_malformed(tmp_path):
    token_file = tmp_path / "access_token"
    auth = RucioAuth(oidc_config(tmp_path, oidc_token_file=str(token_file)), credentials=None)
    with pytest.raises(Unauthorized) as err:
        await auth.session("x")
    assert err.value.details["action"] == "enter_credentials" and str(token_file) in err.value.message
    expired = make_jwt(exp_in=-10)
    token_file.write_text(expired)
    with pytest.raises(Unauthorized) as err:
        await auth.session("x")
    assert "expired" in err.value.message and expired not in err.value.message
    token_file.write_text("not-a-jwt")
    with pytest.raises(BadRequest):
        await auth.session("x")
    status = await auth.status_one("x")
    assert status["logged_in"] is False and status["vault_reachable"] is None


async def test_unreachable_rucio_is_a_503_naming_the_instance(tmp_path):
    token_file = tmp_path / "access_token"
    token_file.write_text(make_jwt(exp_in=3600))
    config = oidc_config(tmp_path, oidc_token_file=str(token_file))
    auth = RucioAuth(config, credentials=None)
    gateway = RucioGateway(config, auth)
    rucio = RucioService(config, gateway, user="jdoe")
    try:
        for call in (rucio.scopes("x"), rucio.content("x", "cms:ds"), rucio.did("x", "cms:ds"),
                     gateway.did_files("x", "cms", "ds"), gateway.rule("x", "abc")):
            with pytest.raises(ServiceUnavailable) as err:
                await call
            assert err.value.details["instance"] == "x" and "'x'" in err.value.message
    finally:
        await rucio.close()
        await gateway.close()
        await auth.close()


async def test_userpass_without_vault_says_what_to_do(tmp_path):
    config = AFLab(rucio_instances=[{"name": "x", "rucio_host": "http://127.0.0.1:9", "auth_type": "userpass",
                                     "username": "jdoe"}], state_dir=str(tmp_path))
    auth = RucioAuth(config, credentials=None)
    with pytest.raises(Unauthorized) as err:
        await auth.session("x")
    assert "PUT /af-lab/credentials/x" in err.value.message
    with pytest.raises(ServiceUnavailable) as err:
        await auth.put_credentials("x", {"username": "jdoe", "password": "pw"})
    assert "Vault" in err.value.message


async def test_missing_x509_proxy_says_what_to_do(tmp_path):
    config = AFLab(rucio_instances=[{"name": "x", "rucio_host": "https://127.0.0.1:9", "auth_type": "x509_proxy",
                                     "account": "jdoe", "x509_proxy_file": str(tmp_path / "x509up_u0")}],
                   state_dir=str(tmp_path))
    auth = RucioAuth(config, credentials=None)
    with pytest.raises(Unauthorized) as err:
        await auth.session("x")
    assert "voms-proxy-init" in err.value.message and err.value.details["action"] == "renew_proxy"
    with pytest.raises(BadRequest):
        await auth.put_credentials("x", {"auth_type": "x509_proxy"})
