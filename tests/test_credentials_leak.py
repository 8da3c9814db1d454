"""No secret leaves the credential service: not in a response, a log line or a file.

A full browsing session (every Rucio route, credential status and entry, errors,
the status panel, a rucio-clients client for mounts/publish) runs with DEBUG logging;
then every response body, every log record and every file af-lab wrote are searched
for the password, the Rucio tokens, the Vault token and the hub JWT.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from pathlib import Path

import hvac
import pytest
from tornado.httpclient import HTTPClientError

from af_facility.lab import DEMO_INSTANCE, DEMO_USER, aflab_config

pytestmark = pytest.mark.facility


def rucio_password(facility) -> str:
    return facility.state.services["rucio"]["accounts"][DEMO_USER]["password"]


def vault_read(facility, user: str, name: str) -> dict | None:
    try:
        resp = facility.service("openbao").client().secrets.kv.v2.read_secret_version(
            path=f"users/{user}/{name}", mount_point="secret", raise_on_deleted_version=False)
    except hvac.exceptions.InvalidPath:
        return None
    return (resp.get("data") or {}).get("data")


def vault_delete(facility, user: str, name: str) -> None:
    facility.service("openbao").client().secrets.kv.v2.delete_metadata_and_all_versions(
        path=f"users/{user}/{name}", mount_point="secret")


@pytest.fixture
def aflab_settings(facility, tmp_path):
    cfg = copy.deepcopy(aflab_config(facility.state)["AFLab"])
    cfg["state_dir"] = str(tmp_path / "state")
    cfg["rucio_instances"] = [*cfg["rucio_instances"], dict(cfg["rucio_instances"][0], name="other")]
    return cfg


async def test_no_secret_in_responses_logs_or_files(jp_fetch, jp_serverapp, facility, caplog, aflab_settings):
    caplog.set_level(logging.DEBUG)
    bodies: list[str] = []

    async def call(*parts, method="GET", body=None, **params):
        try:
            resp = await jp_fetch("af-lab", *parts, method=method, params=params,
                                  body=None if body is None else json.dumps(body))
        except HTTPClientError as exc:
            bodies.append(exc.response.body.decode())
            return None
        bodies.append(resp.body.decode())
        return json.loads(resp.body) if resp.body else None

    demo = ("rucio", "instances", DEMO_INSTANCE)
    environ = dict(os.environ)
    try:
        await call("credentials")
        await call("rucio", "instances")
        await call(*demo, "scopes")
        await call(*demo, "rses")
        await call(*demo, "dids", q="cms_opendata:*", type="all")
        await call(*demo, "dids", q="cms_opendata:*", filter="type=dataset")
        for did in ("cms_opendata:DAC21_CMS_opendata", "cms_opendata:ZZTo4mu", "cms_opendata:ZZTo4mu_000.root"):
            await call(*demo, "dids", did, wait=10)
            await call(*demo, "dids", did, "replicas")
        await call(*demo, "dids", "cms_opendata:DAC21_CMS_opendata", "content")
        page = await call(*demo, "dids", "cms_opendata:SingleMu_50k", "content", limit=1000)
        await call(*demo, "dids", "cms_opendata:SingleMu_50k", "content", cursor=page["cursor"], limit=1000)
        await call(*demo, "dids", "cms_opendata:nope")  # 404
        await call(*demo, "dids", "nope")  # 400
        # Entering credentials: a wrong one (401), then the right one, then the status panel.
        await call("credentials", "other", method="PUT", body={"username": DEMO_USER, "password": "wrong-" + "x" * 8})
        await call("credentials", "other", method="PUT",
                   body={"username": DEMO_USER, "password": rucio_password(facility)})
        await call("rucio", "instances", "other", "scopes")
        await call("credentials")
        await call("status")

        services = jp_serverapp.web_app.settings["af_lab"]
        # What mounts and publish use: the gateway's REST calls, the token in a header, never a file.
        assert "cms_opendata" in await services.gateway.scopes(DEMO_INSTANCE, refresh=True)
        assert not list((Path(aflab_settings["state_dir"]) / "run").glob("rucio-*.token"))

        secrets = {
            "rucio password": rucio_password(facility),
            "rucio token demo": vault_read(facility, DEMO_USER, "tokens/rucio/demo")["token"],
            "rucio token other": vault_read(facility, DEMO_USER, "tokens/rucio/other")["token"],
            "vault token": services.credentials._client.token,
            "hub jwt": Path(aflab_settings["vault_jwt_file"]).read_text().strip(),
        }
        assert all(len(v) > 8 for v in secrets.values())
        logs = "\n".join([caplog.text, *(r.getMessage() for r in caplog.records)])
        written = [p for p in Path(aflab_settings["state_dir"]).rglob("*") if p.is_file()]
        assert any(p.suffix == ".sqlite" for p in written)  # the listing cache is among the files searched
        files = {str(p): p.read_bytes().decode(errors="replace") for p in written}
        assert len(bodies) >= 20 and len(caplog.records) > 50
        for what, value in secrets.items():
            for i, body in enumerate(bodies):
                assert value not in body, f"{what} in response {i}"
            assert value not in logs, f"{what} in the server log"
            for path, text in files.items():
                assert value not in text, f"{what} in {path}"
        assert dict(os.environ) == environ  # browsing and logging in never touch the environment

    finally:
        for name in ("rucio/other", "tokens/rucio/other"):
            vault_delete(facility, DEMO_USER, name)
