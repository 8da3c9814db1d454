"""Publish against the real facility: Rucio 41 (posix RSEs), OpenBao, the hub's JWTs.

Every test has its own workspace (pytest-jupyter's root dir) and state dir, and
publishes under names unique to the run, so tests never see each other's DIDs.
What is published is checked with plain rucio-clients (the facility's client
configs), never through af-lab: downloads are byte-compared, rules and replica
states read back. Faults are real: files are changed or removed mid-job, the
Rucio server is stopped mid-job, the job's credentials are broken, the Jupyter
server is killed with SIGKILL and started again.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import datetime as dt
import filecmp
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests
from tornado.httpclient import HTTPClientError

from af_facility import hub
from af_facility.lab import aflab_config
from af_facility.rucio_server import RucioServer, file_protocol, rucio_client

pytestmark = pytest.mark.facility

SITE1, SITE2 = "SITE1_USERDISK", "SITE2_USERDISK"
RUN = uuid.uuid4().hex[:6]
ENDED = ("done", "failed", "cancelled", "interrupted")


# ====================================================================== fixtures and helpers


@pytest.fixture
def aflab_settings(request, facility, tmp_path):
    """The facility's c.AFLab with a private state dir; ``request.param(cfg, facility, tmp_path)`` may edit it."""
    cfg = copy.deepcopy(aflab_config(facility.state)["AFLab"])
    cfg.update(cache_dir=str(tmp_path / "cache"), state_dir=str(tmp_path / "state"))
    edit = getattr(request, "param", None)
    if edit:
        edit(cfg, facility, tmp_path)
    return cfg


def settings(edit):
    return pytest.mark.parametrize("aflab_settings", [edit], indirect=True, ids=[edit.__name__])


@pytest.fixture
def services(jp_serverapp):
    return jp_serverapp.web_app.settings["af_lab"]


@pytest.fixture
def ws(jp_root_dir, services) -> Path:
    return Path(jp_root_dir)


@pytest.fixture
def uid() -> str:
    return f"{RUN}{uuid.uuid4().hex[:6]}"


async def api(jp_fetch, method: str, path: str, body=None, expect: int | None = None, params=None):
    try:
        resp = await jp_fetch(
            "af-lab",
            *path.split("/"),
            method=method,
            params=params,
            body=json.dumps(body) if body is not None else None,
            allow_nonstandard_methods=True,
        )
        code, data = resp.code, json.loads(resp.body or b"{}")
    except HTTPClientError as err:
        code, data = err.code, json.loads(err.response.body)
    if expect is not None:
        assert code == expect, f"{method} {path} -> {code}: {data}"
    return code, data


async def submit(jp_fetch, **body) -> dict:
    return (await api(jp_fetch, "POST", "publish/jobs", body, expect=202))[1]


async def wait(jp_fetch, job_id: str, until=ENDED, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = (await api(jp_fetch, "GET", f"publish/jobs/{job_id}", expect=200))[1]["job"]
        if job["state"] in until:
            return job
        assert time.monotonic() < deadline, f"job stayed {job['state']}/{job['phase']}: {job['message']}"
        await asyncio.sleep(0.05)


async def publish(jp_fetch, **body) -> dict:
    job = await wait(jp_fetch, (await submit(jp_fetch, **body))["id"])
    assert job["state"] == "done", job
    return job


def client_cfg(facility, account="jdoe") -> str:
    return facility.state.services["rucio"]["client_configs"][account]


def in_rucio(facility, fn, account="jdoe"):
    """``fn(client)`` with plain rucio-clients as ``account`` (run it in a thread from async tests)."""
    with rucio_client(client_cfg(facility, account)) as c:
        return fn(c)


async def rucio(facility, fn, account="jdoe"):
    return await asyncio.to_thread(in_rucio, facility, fn, account)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def download(facility, did: str, dest: Path) -> Path:
    from rucio.client.downloadclient import DownloadClient

    def go(c):
        DownloadClient(client=c).download_dids([{"did": did, "base_dir": str(dest), "no_subdir": True}])

    in_rucio(facility, go)
    return dest


def replica_states(c, scope: str, names: list[str]) -> dict[str, dict]:
    reps = c.list_replicas([{"scope": scope, "name": n} for n in names], all_states=True)
    return {r["name"]: r["states"] for r in reps}


def rse_dir(facility, rse: str) -> Path:
    return Path(facility.state.services["rucio"]["rses"][rse])


def leftovers(facility, rse: str, names: list[str]) -> list[Path]:
    """Files on the RSE's disk for ``names`` (final or temporary)."""
    root = rse_dir(facility, rse)
    wanted = set(names) | {n + ".rucio.upload" for n in names}
    return [p for p in root.rglob("*") if p.name in wanted]


def json_metadata_supported(facility) -> bool:
    from rucio.common.exception import InvalidMetadata

    def probe(c):
        name = f"probe{uuid.uuid4().hex[:8]}"
        c.add_dataset("user.jdoe", name)
        try:
            c.set_metadata("user.jdoe", name, "af_probe", "1")
            return True
        except InvalidMetadata:
            return False

    return in_rucio(facility, probe)


# ====================================================================== the dialog's options


async def test_options_offer_owned_scopes_writable_rses_and_defaults(jp_fetch, services):
    _, opts = await api(jp_fetch, "GET", "publish/options", expect=200)
    scopes = {s["scope"]: s for s in opts["scopes"]}
    assert set(scopes) == {"user.jdoe", "cms_embargoed"}  # cms_opendata is root's
    assert scopes["cms_embargoed"]["embargoed"] and not scopes["cms_embargoed"]["allowed"]
    assert scopes["cms_embargoed"]["group"] == "/cms/embargo"
    assert scopes["user.jdoe"]["allowed"]
    rses = {r["rse"]: r for r in opts["rses"]}
    assert {SITE1, SITE2} <= set(rses) and rses[SITE1]["default"] and not rses[SITE2]["default"]
    assert opts["defaults"] == {"scope": "user.jdoe", "rse": SITE1, "lifetime_days": 30, "allow_no_lifetime": False}
    assert opts["naming"]["max_length"] == 250 and opts["account"] == "jdoe"


# ====================================================================== publish, then read back with rucio-clients


async def test_publish_a_file_then_download_it_with_rucio_clients(jp_fetch, ws, facility, uid, tmp_path, services):
    environment_before = dict(os.environ)
    data = os.urandom(3 * 1024 * 1024 + 17)
    write(ws / "results" / "hist.root", data)
    events = []

    subscription = services.events.subscribe(["publish"])

    async def listen():
        with subscription:
            async for ev in subscription:
                events.append(ev["data"])

    listener = asyncio.ensure_future(listen())
    name = f"hist_{uid}.root"
    job = await publish(jp_fetch, paths=["results/hist.root"], name=name, lifetime_days=7)
    listener.cancel()
    assert job["did"] == f"user.jdoe:{name}" and job["dataset"] is None
    assert "Published 1 file(s)" in job["message"] and job["noop"] is False
    assert (ws / "results" / "hist.root").read_bytes() == data  # never moved or deleted

    got = await asyncio.to_thread(download, facility, f"user.jdoe:{name}", tmp_path / "dl")
    assert (got / name).read_bytes() == data

    def check(c):
        rules = list(c.list_did_rules("user.jdoe", name))
        meta = c.get_metadata("user.jdoe", name)
        return rules, meta, replica_states(c, "user.jdoe", [name])

    rules, meta, states = await rucio(facility, check)
    assert len(rules) == 1 and rules[0]["rse_expression"] == SITE1 and rules[0]["state"] == "OK"
    lifetime = rules[0]["expires_at"] - rules[0]["created_at"]
    assert abs(lifetime - dt.timedelta(days=7)) < dt.timedelta(minutes=5)
    assert rules[0]["comments"] == f"af-lab publish {job['id']}" and job["rule_ids"] == [rules[0]["id"]]
    assert meta["bytes"] == len(data) and states[name] == {SITE1: "AVAILABLE"}

    # Progress went out on the bus: phases in order, the final state last.
    phases = [e["phase"] for e in events if e["id"] == job["id"]]
    order = ["checking", "copying", "registering", "protecting", "finishing", "ended"]
    seen = [p for p in dict.fromkeys(phases) if p in order]
    assert seen == order and events[-1]["state"] == "done"
    # Kernels and terminals inherit the server's environment: publishing must not change it.
    assert dict(os.environ) == environment_before


async def test_publish_a_folder_as_a_dataset_in_a_container(jp_fetch, ws, facility, uid, tmp_path):
    files = {f"out/part{i}.root": os.urandom(200_000 + i) for i in range(5)}
    files["out/plots/mass.png"] = os.urandom(5000)
    for rel, data in files.items():
        write(ws / rel, data)
    write(ws / "out" / ".ipynb_checkpoints" / "x-checkpoint.ipynb", b"{}")
    write(ws / "out" / ".DS_Store", b"junk")
    ds, cont = f"zmumu_{uid}", f"analysis_{uid}"

    _, plan = await api(
        jp_fetch,
        "POST",
        "publish/validate",
        {"paths": ["out"], "dataset": ds, "container": cont, "name_prefix": f"{uid}."},
        expect=200,
    )
    assert plan["dataset"] == {"did": f"user.jdoe:{ds}", "new": True}
    assert plan["files_total"] == 6 and plan["bytes_total"] == sum(map(len, files.values()))
    assert f"{uid}.plots.mass.png" in plan["names"] and "out/.DS_Store" in plan["skipped"]

    job = await publish(jp_fetch, paths=["out"], dataset=ds, container=cont, name_prefix=f"{uid}.")
    assert job["did"] == f"user.jdoe:{ds}" and job["container"] == {"did": f"user.jdoe:{cont}", "new": True}

    got = await asyncio.to_thread(download, facility, f"user.jdoe:{ds}", tmp_path / "dl")
    for rel, data in files.items():
        member = rel.removeprefix("out/").replace("/", ".")
        assert (got / f"{uid}.{member}").read_bytes() == data

    def check(c):
        content = [d["name"] for d in c.list_content("user.jdoe", ds)]
        rules = list(c.list_did_rules("user.jdoe", ds))
        in_container = [d["name"] for d in c.list_content("user.jdoe", cont)]
        return content, rules, replica_states(c, "user.jdoe", content), in_container

    content, rules, states, in_container = await rucio(facility, check)
    assert len(content) == 6 and all(n.startswith(f"{uid}.") for n in content) and in_container == [ds]
    assert len(rules) == 1 and rules[0]["state"] == "OK" and rules[0]["locks_ok_cnt"] == 6
    assert abs((rules[0]["expires_at"] - rules[0]["created_at"]) - dt.timedelta(days=30)) < dt.timedelta(minutes=5)
    assert all(s == {SITE1: "AVAILABLE"} for s in states.values())  # no COPYING replica, ever
    assert not [p for p in rse_dir(facility, SITE1).rglob("*.rucio.upload")]


async def test_provenance_is_readable_with_get_metadata(jp_fetch, ws, facility, uid, services):
    if not await asyncio.to_thread(json_metadata_supported, facility):
        pytest.skip(
            "this Rucio server keeps no custom metadata: its JSON plugin is off on SQLite "
            "(needs PostgreSQL/Oracle); test_provenance_api covers what af-lab keeps instead"
        )
    await _git_workspace(ws)
    nb = {"cells": [], "metadata": {"af-lab": {"inputs": ["cms_opendata:DAC21_CMS_opendata"]}}}
    write(ws / "ana" / "zmumu.ipynb", json.dumps(nb).encode())
    write(ws / "ana" / "out" / "h.root", os.urandom(1000))
    job = await publish(
        jp_fetch,
        paths=["ana/out"],
        dataset=f"prov_{uid}",
        name_prefix=f"{uid}.",
        notebook="ana/zmumu.ipynb",
        cluster_profile="local",
        inputs=["cms_opendata:SingleMu_50k"],
    )
    assert job["provenance_in_rucio"] is True

    def read(c):
        return (
            c.get_metadata("user.jdoe", f"{uid}.h.root", plugin="JSON"),
            c.get_metadata("user.jdoe", f"prov_{uid}", plugin="JSON"),
        )

    file_meta, ds_meta = await rucio(facility, read)
    head = subprocess.run(["git", "-C", str(ws), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert file_meta["af_notebook"] == "ana/zmumu.ipynb" and file_meta["af_source"] == "ana/out/h.root"
    assert file_meta["af_git_commit"] == head and file_meta["af_git_dirty"] is True
    # The request's inputs (and a kernel session's, none here); not what the notebook's metadata lists.
    assert set(file_meta["af_inputs"]) == {"cms_opendata:SingleMu_50k"}
    assert file_meta["af_cluster_profile"] == "local" and file_meta["af_publish_job"] == job["id"]
    assert file_meta["af_lab_version"] and file_meta["af_published_at"].startswith(str(dt.date.today().year))
    assert ds_meta["af_notebook"] == "ana/zmumu.ipynb" and "af_source" not in ds_meta


async def _git_workspace(ws: Path) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
    }
    write(ws / "README.md", b"analysis\n")
    for args in (["init", "-q"], ["add", "README.md"], ["commit", "-qm", "start"]):
        subprocess.run(["git", "-C", str(ws), *args], check=True, env=env, capture_output=True)
    write(ws / "README.md", b"analysis, edited\n")  # a tracked change: the tree is dirty


async def test_provenance_api(jp_fetch, ws, uid, facility):
    write(ws / "o" / "a.txt", b"payload")
    job = await publish(
        jp_fetch, paths=["o/a.txt"], name=f"a_{uid}.txt", notebook="nb.ipynb", cluster_profile="htcondor-small"
    )
    _, prov = await api(jp_fetch, "GET", "publish/provenance", params={"did": f"user.jdoe:a_{uid}.txt"}, expect=200)
    expected = "rucio" if job["provenance_in_rucio"] else "af-lab"
    assert prov["source"] == expected
    assert prov["provenance"]["notebook"] == "nb.ipynb" and prov["provenance"]["cluster_profile"] == "htcondor-small"
    assert prov["provenance"]["publish_job"] == job["id"] and prov["provenance"]["source"] == "o/a.txt"
    if not job["provenance_in_rucio"]:
        assert any("custom metadata" in w for w in job["warnings"])
    code, err = await api(jp_fetch, "GET", "publish/provenance", params={"did": f"user.jdoe:never_{uid}"})
    assert code == 404


# ====================================================================== embargoed scopes


async def test_embargoed_scope_is_refused_without_the_group_claim(jp_fetch, ws, uid, facility):
    write(ws / "e.root", b"embargoed payload")
    code, err = await api(
        jp_fetch, "POST", "publish/jobs", {"paths": ["e.root"], "scope": "cms_embargoed", "name": f"e_{uid}.root"}
    )
    assert code == 403 and err["error"]["required_group"] == "/cms/embargo"
    assert "embargoed" in err["error"]["message"] and "/cms/embargo" in err["error"]["message"]
    assert "your groups: /cms" in err["error"]["message"]
    # Also as the dataset's scope, with the files elsewhere.
    code, err = await api(
        jp_fetch, "POST", "publish/validate", {"paths": ["e.root"], "dataset": f"cms_embargoed:ds_{uid}"}
    )
    assert code == 403 and err["error"]["field"] == "scope"
    assert not await rucio(
        facility, lambda c: list(c.get_metadata_bulk([{"scope": "cms_embargoed", "name": f"e_{uid}.root"}]))
    )


def embargo_member(cfg, facility, tmp_path):
    """jdoe's session with a hub JWT that carries /cms/embargo (same user, so the same Vault path)."""
    token = hub.mint_jwt(facility.state.root, "jdoe", groups=["/cms", "/cms/embargo"])
    path = tmp_path / "jdoe-embargo.jwt"
    path.write_text(token + "\n")
    path.chmod(0o600)
    cfg["vault_jwt_file"] = str(path)


@settings(embargo_member)
async def test_embargoed_scope_is_accepted_with_the_group_claim(jp_fetch, ws, uid, facility, tmp_path):
    data = os.urandom(4096)
    write(ws / "e.root", data)
    _, opts = await api(jp_fetch, "GET", "publish/options", expect=200)
    assert {s["scope"]: s["allowed"] for s in opts["scopes"]}["cms_embargoed"] is True
    job = await publish(jp_fetch, paths=["e.root"], scope="cms_embargoed", name=f"e_{uid}.root")
    assert job["did"] == f"cms_embargoed:e_{uid}.root"
    got = await asyncio.to_thread(download, facility, f"cms_embargoed:e_{uid}.root", tmp_path / "dl")
    assert (got / f"e_{uid}.root").read_bytes() == data


# ====================================================================== same DID, same or other content


async def test_same_content_under_the_same_did_is_a_noop(jp_fetch, ws, uid, facility):
    write(ws / "r" / "a.root", os.urandom(2000))
    write(ws / "r" / "b.root", os.urandom(3000))
    first = await publish(jp_fetch, paths=["r"], dataset=f"same_{uid}", name_prefix=f"{uid}.")
    again = await publish(jp_fetch, paths=["r"], dataset=f"same_{uid}", name_prefix=f"{uid}.")
    assert (
        again["noop"] is True and "Already published" in again["message"] and "nothing was copied" in again["message"]
    )
    single = await publish(jp_fetch, paths=["r/a.root"], name=f"{uid}.a.root", dataset=None)
    assert single["noop"] and "Already published" in single["message"] and f"{uid}.a.root" in single["message"]
    rules = await rucio(facility, lambda c: list(c.list_did_rules("user.jdoe", f"same_{uid}")))
    assert [r["id"] for r in rules] == first["rule_ids"]  # no second rule


async def test_other_content_under_an_existing_did_is_refused_with_a_suggestion(jp_fetch, ws, uid, facility):
    write(ws / "h.root", os.urandom(1000))
    await publish(jp_fetch, paths=["h.root"], name=f"h_{uid}.root")
    # Different size: refused at once, before anything runs.
    write(ws / "h.root", os.urandom(1001))
    code, err = await api(jp_fetch, "POST", "publish/jobs", {"paths": ["h.root"], "name": f"h_{uid}.root"})
    assert code == 409 and "immutable" in err["error"]["message"]
    assert err["error"]["suggestion"] == f"h_{uid}_v2.root" and err["error"]["field"] == "name"
    # Same size, other bytes: found by the checksum, refused before any copy.
    write(ws / "h.root", os.urandom(1000))
    job = await wait(jp_fetch, (await submit(jp_fetch, paths=["h.root"], name=f"h_{uid}.root"))["id"])
    assert job["state"] == "failed" and job["error"]["type"] == "conflict"
    assert "different content" in job["message"] and f"h_{uid}_v2.root" in job["message"]
    # The suggestion works.
    await publish(jp_fetch, paths=["h.root"], name=f"h_{uid}_v2.root")


async def test_unknown_bytes_already_at_the_target_pfn_are_never_overwritten(jp_fetch, ws, uid, facility):
    """Dark data (on the RSE, unknown to Rucio) where a new DID's deterministic PFN points."""
    name = f"dark_{uid}.root"
    pfn = await rucio(
        facility,
        lambda c: c.lfns2pfns(SITE1, [f"user.jdoe:{name}"], operation="write", scheme="file")[f"user.jdoe:{name}"],
    )
    dark = write(Path(urlparse(pfn).path), b"somebody else's bytes")
    write(ws / "mine.root", b"my result, other bytes")
    job = await wait(jp_fetch, (await submit(jp_fetch, paths=["mine.root"], name=name))["id"])
    assert job["state"] == "failed" and "already holds a different file" in job["message"]
    assert dark.read_bytes() == b"somebody else's bytes"
    # The same bytes as ours at that PFN (our own copy from a crashed run, say) are taken as they are.
    dark.write_bytes(b"my result, other bytes")
    job = await publish(jp_fetch, paths=["mine.root"], name=name)
    assert dark.read_bytes() == b"my result, other bytes" and job["progress"]["files_done"] == 1


# ====================================================================== bad input


@pytest.mark.parametrize(
    ("body", "code", "field", "words"),
    [
        ({"scope": "cms_opendata"}, 403, "scope", "does not own scope cms_opendata"),
        ({"scope": "nosuchscope"}, 403, "scope", "does not own"),
        ({"rse": "NOPE_USERDISK"}, 400, "rse", "no RSE called NOPE_USERDISK"),
        ({"name": "bad name!.root"}, 400, "name", "not valid"),
        ({"paths": ["../outside.root"]}, 400, "paths", "inside the workspace"),
        ({"paths": ["/etc/passwd"]}, 400, "paths", "inside the workspace"),
        ({"paths": ["nope.root"]}, 404, "paths", "does not exist"),
        ({"paths": ["empty.root"]}, 400, "paths", "empty (0 bytes)"),
        ({"lifetime_days": None}, 403, "lifetime_days", "lifetime is required"),
        ({"lifetime_days": -1}, 400, "lifetime_days", "positive"),
        ({"dataset": None, "container": "c"}, 400, "container", "holds datasets"),
        ({"paths": ["ok.root", "sub/ok.root"]}, 400, "paths", "same DID name"),
    ],
    ids=[
        "scope-not-owned",
        "scope-unknown",
        "rse-unknown",
        "name-invalid",
        "traversal",
        "absolute",
        "missing",
        "zero-bytes",
        "no-lifetime",
        "negative-lifetime",
        "container-without-dataset",
        "duplicate-names",
    ],
)
async def test_bad_input_gets_a_clear_answer(jp_fetch, ws, uid, body, code, field, words, facility):
    write(ws / "ok.root", b"ok")
    write(ws / "sub" / "ok.root", b"ok2")
    write(ws / "empty.root", b"")
    request = {"paths": ["ok.root"], "name_prefix": f"{uid}.", **body}
    if "name" in body:
        request.pop("name_prefix")
    for route in ("publish/validate", "publish/jobs"):
        got, err = await api(jp_fetch, "POST", route, request)
        assert got == code, err
        assert err["error"]["field"] == field and words in err["error"]["message"], err
    _, jobs = await api(jp_fetch, "GET", "publish/jobs", expect=200)
    assert jobs["jobs"] == []  # nothing was started


async def test_a_zero_byte_file_is_published_when_asked_explicitly(jp_fetch, ws, uid, facility, tmp_path):
    write(ws / "empty.root", b"")
    job = await publish(jp_fetch, paths=["empty.root"], name=f"empty_{uid}.root", allow_empty=True)
    got = await asyncio.to_thread(download, facility, job["did"], tmp_path / "dl")
    assert (got / f"empty_{uid}.root").read_bytes() == b""


async def test_existing_datasets_closed_or_of_another_type_are_refused(jp_fetch, ws, uid, facility):
    write(ws / "a.root", b"a")

    def prepare(c):
        c.add_dataset("user.jdoe", f"closed_{uid}")
        c.close("user.jdoe", f"closed_{uid}")
        c.add_container("user.jdoe", f"cont_{uid}")

    await rucio(facility, prepare)
    code, err = await api(jp_fetch, "POST", "publish/jobs", {"paths": ["a.root"], "dataset": f"closed_{uid}"})
    assert code == 409 and "closed" in err["error"]["message"]
    code, err = await api(jp_fetch, "POST", "publish/jobs", {"paths": ["a.root"], "dataset": f"cont_{uid}"})
    assert code == 409 and "not a dataset" in err["error"]["message"]


async def test_publishing_into_an_existing_open_dataset_adds_files_with_their_own_rule(jp_fetch, ws, uid, facility):
    write(ws / "one" / "a.root", os.urandom(100))
    await publish(jp_fetch, paths=["one"], dataset=f"grow_{uid}", name_prefix=f"{uid}.")
    write(ws / "two" / "b.root", os.urandom(100))
    job = await publish(jp_fetch, paths=["two"], dataset=f"grow_{uid}", name_prefix=f"{uid}.", lifetime_days=2)
    assert job["dataset"] == {"did": f"user.jdoe:grow_{uid}", "new": False}

    def check(c):
        return (
            [d["name"] for d in c.list_content("user.jdoe", f"grow_{uid}")],
            list(c.list_did_rules("user.jdoe", f"{uid}.b.root")),
        )

    content, rules = await rucio(facility, check)
    assert sorted(content) == [f"{uid}.a.root", f"{uid}.b.root"]
    assert len(rules) == 1 and rules[0]["state"] == "OK"


# ====================================================================== RSEs: closed for writes, quota


def _test_rse(facility, name: str, limit: int | None, writable: bool = True) -> None:
    def setup(root):
        from rucio.common.exception import Duplicate, RSEProtocolPriorityError

        try:
            root.add_rse(name)
        except Duplicate:
            pass
        path = rse_dir(facility, SITE1).parent / name
        path.mkdir(parents=True, exist_ok=True)
        try:
            root.add_protocol(name, file_protocol(path))
        except (Duplicate, RSEProtocolPriorityError):
            pass
        if limit is not None:
            root.set_local_account_limit("jdoe", name, limit)
        root.update_rse(name, {"availability_write": writable})

    in_rucio(facility, setup, account="root")


async def test_an_rse_closed_for_writes_is_refused(jp_fetch, ws, uid, facility):
    rse = f"PUBCLOSED{uid.upper()}_USERDISK"
    await asyncio.to_thread(_test_rse, facility, rse, 10**12, writable=False)
    write(ws / "a.root", b"a")
    code, err = await api(jp_fetch, "POST", "publish/jobs", {"paths": ["a.root"], "rse": rse, "name": f"a_{uid}"})
    assert code == 403 and "not accepting writes" in err["error"]["message"]
    _, opts = await api(jp_fetch, "GET", "publish/options", expect=200)
    assert rse not in {r["rse"] for r in opts["rses"]}


async def test_quota_is_checked_before_anything_is_copied(jp_fetch, ws, uid, facility):
    rse = f"PUBQUOTA{uid.upper()}_USERDISK"
    await asyncio.to_thread(_test_rse, facility, rse, 5000)
    write(ws / "big.root", os.urandom(8000))
    code, err = await api(jp_fetch, "POST", "publish/jobs", {"paths": ["big.root"], "rse": rse, "name": f"b_{uid}"})
    assert code == 507 and "Not enough quota" in err["error"]["message"] and "7.8 KiB" in err["error"]["message"]
    assert err["error"]["limit_bytes"] == 5000 and err["error"]["needed_bytes"] == 8000
    _, opts = await api(jp_fetch, "GET", "publish/options", expect=200)
    assert {r["rse"]: r for r in opts["rses"]}[rse]["free_bytes"] == 5000
    write(ws / "small.root", os.urandom(4000))
    await publish(jp_fetch, paths=["small.root"], rse=rse, name=f"s_{uid}")


# ====================================================================== files that change under the job


def slow(cfg, facility, tmp_path):
    cfg["publish_defaults"] = {**cfg["publish_defaults"], "concurrency": 1}


@settings(slow)
@pytest.mark.parametrize("fault", ["changed", "vanished"])
async def test_a_file_that_changes_or_vanishes_during_the_job_fails_it_cleanly(jp_fetch, ws, uid, facility, fault):
    # Thirty 10 MB files ahead of the victim, one at a time: the job is busy long after the POST returns.
    for i in range(30):
        write(ws / "run" / f"a{i:02d}.root", os.urandom(10 * 1024 * 1024))
    victim = write(ws / "run" / "z_last.root", os.urandom(5000))
    job = await submit(jp_fetch, paths=["run"], dataset=f"fault_{uid}", name_prefix=f"{uid}.")
    if fault == "changed":
        with victim.open("ab") as f:
            f.write(b"more")
    else:
        victim.unlink()
    job = await wait(jp_fetch, job["id"])
    assert job["state"] == "failed" and job["error"]["type"] == "file_changed"
    assert "z_last.root" in job["message"] and fault in job["message"]
    assert "Nothing was registered in Rucio" in job["message"]
    names = [f"{uid}.a{i:02d}.root" for i in range(30)] + [f"{uid}.z_last.root"]
    found = await rucio(
        facility,
        lambda c: list(c.get_metadata_bulk([{"scope": "user.jdoe", "name": n} for n in [*names, f"fault_{uid}"]])),
    )
    assert found == []  # no DID at all: neither files nor the dataset
    assert leftovers(facility, SITE1, names) == []  # copies made so far were removed
    assert len(list((ws / "run").iterdir())) == (31 if fault == "changed" else 30)  # local files untouched


@settings(slow)
async def test_cancel_during_the_copy_rolls_back(jp_fetch, ws, uid, facility):
    for i in range(30):
        write(ws / "c" / f"f{i:02d}.root", os.urandom(10 * 1024 * 1024))
    job = await submit(jp_fetch, paths=["c"], dataset=f"cancel_{uid}", name_prefix=f"{uid}.")
    await wait(jp_fetch, job["id"], until=("running",))
    deadline = time.monotonic() + 120
    while (await api(jp_fetch, "GET", f"publish/jobs/{job['id']}"))[1]["job"]["progress"]["files_done"] < 2:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    _, cancelled = await api(jp_fetch, "POST", f"publish/jobs/{job['id']}/cancel", {}, expect=200)
    assert cancelled["state"] == "cancelled" and "removed from the RSE" in cancelled["message"]
    names = [f"{uid}.f{i:02d}.root" for i in range(30)]
    assert leftovers(facility, SITE1, names) == []
    assert (
        await rucio(facility, lambda c: list(c.get_metadata_bulk([{"scope": "user.jdoe", "name": n} for n in names])))
        == []
    )
    code, _ = await api(jp_fetch, "POST", f"publish/jobs/{job['id']}/cancel", {})
    assert code == 409  # already ended
    _, again = await api(jp_fetch, "POST", f"publish/jobs/{job['id']}/retry", {}, expect=202)
    assert again["id"] != job["id"]
    done = await wait(jp_fetch, again["id"])
    assert done["state"] == "done" and done["files_total"] == 30
    await api(jp_fetch, "DELETE", f"publish/jobs/{job['id']}", expect=204)


# ====================================================================== Rucio down, expired credentials


def quick_retry(cfg, facility, tmp_path):
    cfg["publish_defaults"] = {**cfg["publish_defaults"], "retry_seconds": 3, "concurrency": 1}


@settings(quick_retry)
async def test_rucio_down_mid_upload_pauses_the_job_and_retry_completes_it(jp_fetch, ws, uid, facility, tmp_path):
    files = {f"d/f{i:02d}.root": os.urandom(4 * 1024 * 1024) for i in range(20)}
    for rel, data in files.items():
        write(ws / rel, data)
    server = RucioServer(facility.state)
    job = await submit(jp_fetch, paths=["d"], dataset=f"down_{uid}", name_prefix=f"{uid}.")
    try:
        deadline = time.monotonic() + 120
        while (await api(jp_fetch, "GET", f"publish/jobs/{job['id']}"))[1]["job"]["phase"] != "copying":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        await asyncio.to_thread(server.down)  # the copies go on; registration finds no Rucio
        paused = await wait(jp_fetch, job["id"])
        assert paused["state"] == "interrupted" and paused["resumable"] is True
        assert "could not be reached" in paused["message"] and "nothing is lost" in paused["message"]
        code, err = await api(jp_fetch, "POST", "publish/validate", {"paths": ["d"], "dataset": f"x_{uid}"})
        assert code == 503 and "could not be reached" in err["error"]["message"]
    finally:
        await asyncio.to_thread(server.up)
    _, resumed = await api(jp_fetch, "POST", f"publish/jobs/{job['id']}/retry", {}, expect=202)
    assert resumed["id"] == job["id"]
    done = await wait(jp_fetch, job["id"])
    assert done["state"] == "done", done
    got = await asyncio.to_thread(download, facility, f"user.jdoe:down_{uid}", tmp_path / "dl")
    for rel, data in files.items():
        assert (got / f"{uid}.{Path(rel).name}").read_bytes() == data
    rules = await rucio(facility, lambda c: list(c.list_did_rules("user.jdoe", f"down_{uid}")))
    assert len(rules) == 1 and rules[0]["state"] == "OK" and rules[0]["locks_ok_cnt"] == 20


async def test_expired_credentials_mid_upload_are_refreshed_and_the_job_continues(
    jp_fetch, ws, uid, services, facility
):
    for i in range(8):
        write(ws / "t" / f"f{i}.root", os.urandom(2 * 1024 * 1024))
    job = await submit(jp_fetch, paths=["t"], dataset=f"tok_{uid}", name_prefix=f"{uid}.")
    deadline = time.monotonic() + 60
    while (await api(jp_fetch, "GET", f"publish/jobs/{job['id']}"))[1]["job"]["phase"] not in ("copying",
                                                                                           "registering"):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.005)
    # The session's token dies mid-job (expired, revoked): Rucio answers 401 to it from now on.
    tokens = services.rucio_auth._tokens
    instance = services.config.rucio_instance()["name"]  # the job's: the default instance
    tokens[instance] = dataclasses.replace(tokens[instance], value="expired")
    done = await wait(jp_fetch, job["id"])
    assert done["state"] == "done", done
    assert tokens[instance].value != "expired"  # one fresh login through the gateway, then on
    content = await rucio(facility, lambda c: [d["name"] for d in c.list_content("user.jdoe", f"tok_{uid}")])
    assert len(content) == 8


# ====================================================================== many files


def big_folder(cfg, facility, tmp_path):
    cfg["publish_defaults"] = {**cfg["publish_defaults"], "concurrency": 8}


@settings(big_folder)
async def test_a_folder_with_thousands_of_files(jp_fetch, ws, uid, facility, tmp_path):
    n = 2200  # > 4 registration chunks of 500
    for i in range(n):
        write(ws / "many" / f"s{i // 500}" / f"f{i:05d}.txt", f"{uid}-{i}\n".encode())
    job = await publish(jp_fetch, paths=["many"], dataset=f"many_{uid}", name_prefix=f"{uid}.")
    assert job["files_total"] == n and job["progress"]["files_done"] == n

    def check(c):
        files = list(c.list_files("user.jdoe", f"many_{uid}"))
        rules = list(c.list_did_rules("user.jdoe", f"many_{uid}"))
        return files, rules

    files, rules = await rucio(facility, check)
    assert len(files) == n and rules[0]["locks_ok_cnt"] == n and rules[0]["state"] == "OK"
    _, page = await api(jp_fetch, "GET", f"publish/jobs/{job['id']}", params={"offset": 2000, "limit": 500}, expect=200)
    assert len(page["files"]) == 200 and all(f["state"] == "registered" for f in page["files"])
    sample = f"{uid}.s4.f02100.txt"
    got = await asyncio.to_thread(download, facility, f"user.jdoe:{sample}", tmp_path / "dl")
    assert (got / sample).read_bytes() == f"{uid}-2100\n".encode()


# ====================================================================== a restart mid-upload


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabProcess:
    """A real Jupyter server with af-lab in its own process, so it can be SIGKILLed mid-job."""

    def __init__(self, workdir: Path, root: Path, aflab: dict):
        self.workdir, self.root, self.port, self.token = workdir, root, free_port(), uuid.uuid4().hex
        self.proc: subprocess.Popen | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "jupyter_server_config.json"
        self.config.write_text(json.dumps({"ServerApp": {"jpserver_extensions": {"af_lab": True}}, "AFLab": aflab}))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/af-lab/"

    def start(self) -> None:
        env = {
            **os.environ,
            "JUPYTER_TOKEN": self.token,
            "JUPYTER_RUNTIME_DIR": str(self.workdir / "runtime"),
            "JUPYTER_DATA_DIR": str(self.workdir / "data"),
            "JUPYTER_CONFIG_DIR": str(self.workdir / "cfg"),
            "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
        }
        self.log = open(self.workdir / "server.log", "ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter_server",
                "--no-browser",
                "--allow-root",
                "--ip=127.0.0.1",
                f"--port={self.port}",
                "--ServerApp.port_retries=0",
                f"--ServerApp.root_dir={self.root}",
                f"--config={self.config}",
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(self.url + "status", headers=self.headers, timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            assert self.proc.poll() is None, (self.workdir / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the Jupyter server did not come up"
            time.sleep(0.2)

    @property
    def headers(self) -> dict:
        return {"Authorization": f"token {self.token}"}

    def api(self, method: str, path: str, body=None) -> dict:
        resp = requests.request(
            method,
            self.url + path,
            headers=self.headers,
            timeout=60,
            data=json.dumps(body) if body is not None else None,
        )
        assert resp.ok, resp.text
        return resp.json()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)  # no shutdown hook runs: a crash
            self.proc.wait(30)
        self.log.close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        if not self.log.closed:
            self.log.close()


@pytest.mark.parametrize("kill_in", ["checking", "copying"])
def test_a_server_killed_mid_upload_resumes_the_job_after_restart(facility, tmp_path, uid, kill_in):
    root = tmp_path / "ws"
    files = {f"big/f{i:02d}.root": os.urandom(8 * 1024 * 1024) for i in range(24)}
    for rel, data in files.items():
        write(root / rel, data)
    aflab = copy.deepcopy(aflab_config(facility.state)["AFLab"])
    aflab.update(
        state_dir=str(tmp_path / "state"),
        cache_dir=str(tmp_path / "cache"),
        publish_defaults={**aflab["publish_defaults"], "concurrency": 1},
    )
    lab = LabProcess(tmp_path / "lab", root, aflab)
    try:
        lab.start()
        job = lab.api("POST", "publish/jobs", {"paths": ["big"], "dataset": f"crash_{uid}", "name_prefix": f"{uid}."})
        deadline = time.monotonic() + 120
        while True:
            state = lab.api("GET", f"publish/jobs/{job['id']}")["job"]
            if kill_in == "checking" and state["phase"] in ("checking", "copying"):
                break  # (hashing 200 MB is quick: if it was missed, the copy is as good a moment)
            if kill_in == "copying" and state["phase"] == "copying" and state["progress"]["files_done"] >= 3:
                break
            assert state["state"] in ("queued", "running") and time.monotonic() < deadline, state
            time.sleep(0.01)
        lab.kill()
        lab.start()  # same state dir: the job is picked up without any request
        deadline = time.monotonic() + 300
        while True:
            state = lab.api("GET", f"publish/jobs/{job['id']}")["job"]
            if state["state"] not in ("queued", "running"):
                break
            assert time.monotonic() < deadline, state
            time.sleep(0.1)
        assert state["state"] == "done", state
    finally:
        lab.stop()

    names = [f"{uid}.{Path(rel).name}" for rel in files]

    def check(c):
        rules = list(c.list_did_rules("user.jdoe", f"crash_{uid}"))
        return rules, replica_states(c, "user.jdoe", names)

    rules, states = in_rucio(facility, check)
    assert len(rules) == 1 and rules[0]["state"] == "OK" and rules[0]["locks_ok_cnt"] == len(files)
    assert all(s == {SITE1: "AVAILABLE"} for s in states.values()) and len(states) == len(files)
    assert not [p for p in rse_dir(facility, SITE1).rglob(f"{uid}.*.rucio.upload")]
    got = download(facility, f"user.jdoe:crash_{uid}", tmp_path / "dl")
    for rel in files:
        assert filecmp.cmp(got / f"{uid}.{Path(rel).name}", root / rel, shallow=False)
