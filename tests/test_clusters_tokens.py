"""The user's data-access token reaches the workers, is refreshed on them, and is never exposed on the way.

Only the data-access token stored in Vault ever reaches workers: without one, they get none (the model
says so) — never the hub JWT the server logs in to Vault with.

Against the real facility (OpenBao; the credential service logs in with the
hub-issued JWT) with real Dask workers as HTCondor stand-in jobs.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from pathlib import Path

import cloudpickle
import condor_standin
import psutil
import pytest
from condor_standin.profiles import call, cluster_security, poll, server_config, settings
from distributed import Client

from af_facility import hub

# Workers (the stand-in's jobs) cannot import this test module: ship read_token_file by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

pytestmark = [
    pytest.mark.facility,
    pytest.mark.filterwarnings("ignore::jupyter_server.utils.JupyterServerAuthWarning"),
]


@pytest.fixture
def condor_dir(tmp_path, monkeypatch):
    queue = tmp_path / "condor"
    for key, value in condor_standin.environment(queue).items():
        monkeypatch.setenv(key, value)
    yield queue
    # Safety net only (by pid): the tests assert on their own that nothing is left.
    condor_standin.kill_all(condor_standin.job_processes(queue))
    condor_standin.kill_all(condor_standin.processes_mentioning(str(tmp_path / "state")))


@pytest.fixture
def state_dir(tmp_path):
    return tmp_path / "state"


@pytest.fixture
def jp_server_config(aflab_settings, condor_dir, state_dir):
    # The facility's c.AFLab (Vault, JWT file) plus the cluster settings; a private state dir per test.
    return server_config({**aflab_settings, **settings(), "state_dir": str(state_dir)})


def read_token_file() -> dict:
    """Runs on a worker: what its tasks see."""
    path = os.environ["BEARER_TOKEN_FILE"]
    return {"path": path, "token": Path(path).read_text().strip(), "mode": stat.S_IMODE(os.stat(path).st_mode),
            "cwd": os.getcwd()}


async def worker_tokens(client) -> dict:
    return await client.run(read_token_file)


def assert_not_exposed(secrets_: list[str], places: dict[str, str]) -> None:
    for where, text in places.items():
        for secret in secrets_:
            assert secret not in text, f"the bearer token leaked into {where}"


def process_texts(procs) -> dict[str, str]:
    out = {}
    for p in procs:
        try:
            out[f"argv of pid {p.pid}"] = "\0".join(p.cmdline())
            out[f"environment of pid {p.pid}"] = Path(f"/proc/{p.pid}/environ").read_bytes().decode(errors="replace")
        except (OSError, psutil.Error):
            continue
    return out


def file_texts(root: Path, skip_name: str = "bearer_token") -> dict[str, str]:
    """Every file under ``root`` except the token files themselves (they are meant to hold it)."""
    out = {}
    for path in root.rglob("*"):
        if path.is_file() and not path.name.startswith(skip_name) and not path.name.startswith(".bearer_token"):
            out[str(path)] = path.read_text(errors="replace")
    return out


async def test_token_reaches_htcondor_workers_and_is_refreshed(
    jp_fetch, jp_serverapp, facility, condor_dir, state_dir, caplog, tmp_path
):
    credentials = jp_serverapp.web_app.settings["af_lab"].credentials
    await credentials.set_bearer_token(hub.mint_jwt(facility.root, "jdoe", ttl_s=1200))  # the site's refresher
    try:
        await _token_round_trip(jp_fetch, credentials, facility, condor_dir, state_dir, caplog, tmp_path)
    finally:
        # Other tests share this Vault: leave the user's bearer token as it was (none: the hub JWT).
        await credentials.delete_secret(credentials.BEARER_SECRET)


async def _token_round_trip(jp_fetch, credentials, facility, condor_dir, state_dir, caplog, tmp_path):
    first, first_exp = await credentials.bearer_token(hub_fallback=False)

    _, cluster = await call(jp_fetch, "POST", "af-lab", "clusters", body={"profile": "htcondor"}, expect=201)
    cid = cluster["id"]
    assert cluster["token"]["state"] == "ok" and cluster["token"]["expires_at"] == first_exp
    _, cluster = await call(jp_fetch, "PATCH", "af-lab", "clusters", cid, body={"workers": 2, "wait": 120}, expect=200)

    security = await cluster_security(jp_fetch, cid, tmp_path / "runtime")
    async with Client(cluster["scheduler_address"], security=security, asynchronous=True) as client:
        seen = await worker_tokens(client)
        assert len(seen) == 2
        for info in seen.values():
            assert info["token"] == first
            assert info["mode"] == 0o600
            # The file HTCondor transferred into the job's scratch directory (and the plugin rewrites).
            assert info["path"] == os.path.join(info["cwd"], "bearer_token")
            assert info["cwd"].startswith(str(condor_dir))

        # The site's refresher puts a fresh token in Vault; running workers get it.
        fresh = hub.mint_jwt(facility.root, "jdoe", ttl_s=1800)
        await credentials.set_bearer_token(fresh)
        fresh_exp = (await credentials.bearer_token())[1]

        async def refreshed():
            return all(i["token"] == fresh for i in (await worker_tokens(client)).values())

        await poll(refreshed, timeout=60, what="the refreshed token on the workers")
        _, model = await call(jp_fetch, "GET", "af-lab", "clusters", cid, expect=200)
        assert model["token"]["state"] == "ok" and model["token"]["expires_at"] == fresh_exp

        # A worker that joins later starts with the fresh token (transferred file and plugin).
        await call(jp_fetch, "PATCH", "af-lab", "clusters", cid, body={"workers": 3, "wait": 120}, expect=200)
        seen = await worker_tokens(client)
        assert len(seen) == 3 and {i["token"] for i in seen.values()} == {fresh}
        transferred = [p for p in condor_dir.glob("execute/*/bearer_token")]
        assert len(transferred) == 3

    # Never in arguments, environments or logs.
    places = {}
    places.update(process_texts(condor_standin.job_processes(condor_dir)))
    places.update(process_texts(condor_standin.processes_mentioning(str(state_dir))))
    places.update(file_texts(condor_dir))  # the queue: submit arguments, environment, job ads
    places.update(file_texts(state_dir))  # cluster record, scheduler log, worker logs
    places["server log"] = caplog.text
    assert any("scheduler.log" in k for k in places) and any(k.endswith(".err") for k in places)
    assert_not_exposed([first, fresh], places)

    await call(jp_fetch, "DELETE", "af-lab", "clusters", cid, expect=204)
    assert not (state_dir / "clusters" / cid).exists(), "the token file goes with the cluster"
    assert not condor_standin.wait_until_gone(condor_standin.job_processes(condor_dir))
    assert not condor_standin.wait_until_gone(condor_standin.processes_mentioning(str(state_dir)))


async def test_token_reaches_local_workers(jp_fetch, jp_serverapp, facility, tmp_path):
    credentials = jp_serverapp.web_app.settings["af_lab"].credentials
    token = hub.mint_jwt(facility.root, "jdoe", ttl_s=1200)
    await credentials.set_bearer_token(token)
    _, cluster = await call(jp_fetch, "POST", "af-lab", "clusters", body={"workers": 1}, expect=201)
    try:
        security = await cluster_security(jp_fetch, cluster["id"], tmp_path)
        async with Client(cluster["scheduler_address"], security=security, asynchronous=True) as client:
            (info,) = (await worker_tokens(client)).values()
        assert info["token"] == token and info["mode"] == 0o600
    finally:
        await call(jp_fetch, "DELETE", "af-lab", "clusters", cluster["id"], expect=204)
        await credentials.delete_secret(credentials.BEARER_SECRET)


def token_env() -> str | None:
    """Runs on a worker."""
    return os.environ.get("BEARER_TOKEN_FILE")


async def test_without_a_data_token_workers_get_none_never_the_hub_jwt(
    jp_fetch, jp_serverapp, facility, condor_dir, state_dir, tmp_path
):
    credentials = jp_serverapp.web_app.settings["af_lab"].credentials
    config = jp_serverapp.web_app.settings["af_lab"].config
    hub_jwt = Path(config.vault_jwt_file).read_text().strip() if config.vault_jwt_file else \
        os.environ[config.vault_jwt_env].strip()
    assert hub_jwt, "the server logs in to Vault with the hub JWT"
    # An expired data token counts as none.
    stale = hub.mint_jwt(facility.root, "jdoe", ttl_s=60, extra_claims={"exp": int(time.time()) - 10})
    await credentials.set_bearer_token(stale)
    try:
        _, cluster = await call(jp_fetch, "POST", "af-lab", "clusters", body={"profile": "htcondor", "workers": 1},
                                expect=201)
        cid = cluster["id"]
        assert cluster["token"]["state"] == "none" and "expired" in cluster["token"]["message"]
        _, cluster = await call(jp_fetch, "PATCH", "af-lab", "clusters", cid, body={"workers": 1, "wait": 120},
                                expect=200)
        security = await cluster_security(jp_fetch, cid, tmp_path / "runtime")
        async with Client(cluster["scheduler_address"], security=security, asynchronous=True) as client:
            assert list((await client.run(token_env)).values()) == [None]
        assert not list(condor_dir.glob("execute/*/bearer_token"))
        places = {}
        places.update(process_texts(condor_standin.job_processes(condor_dir)))
        places.update(process_texts(condor_standin.processes_mentioning(str(state_dir))))
        places.update(file_texts(condor_dir, skip_name="\0"))
        places.update(file_texts(state_dir, skip_name="\0"))
        assert_not_exposed([hub_jwt], places)
        await call(jp_fetch, "DELETE", "af-lab", "clusters", cid, expect=204)
    finally:
        await credentials.delete_secret(credentials.BEARER_SECRET)
