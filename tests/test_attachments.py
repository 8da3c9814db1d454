"""Notebook attachments against the real facility: Rucio 41 (its own undertaker deletes a DID), mounts.

``POST attachments/resolve`` says, per DID a notebook recorded, whether it is mounted here, being
mounted, stale (Rucio's content changed, or the mount failed), not mounted, or gone from Rucio.
The DIDs are registered here under unique names in user.jdoe (the demo data is never touched).
"""

from __future__ import annotations

import json
import uuid

import pytest

from af_facility.rucio_server import RucioServer
from tests.test_mounts import aflab_settings, api, mount, register, root_client, wait_for  # noqa: F401

pytestmark = pytest.mark.facility

RUN = uuid.uuid4().hex[:8]


async def resolve(jp_fetch, *items: dict, refresh: bool = True) -> list[dict]:
    _code, data = await api(jp_fetch, "POST", "attachments/resolve", {"attachments": list(items), "refresh": refresh},
                            expect=200)  # fmt: skip
    assert len(data["attachments"]) == len(items)
    return data["attachments"]


async def session_dids(jp_fetch, notebook: str, kernel: str | None = None) -> dict:
    params = {"notebook": notebook, **({"kernel": kernel} if kernel else {})}
    resp = await jp_fetch("af-lab", "attachments", "session", params=params)
    return json.loads(resp.body)


def delete_from_rucio(facility, scope: str, name: str) -> None:
    """Delete a DID the way Rucio does: expire it, then let Rucio's undertaker daemon remove it."""
    with root_client(facility) as root:
        root.set_metadata(scope, name, "lifetime", -3600)
    code = (
        "from rucio.daemons.undertaker.undertaker import undertaker\n"
        "undertaker(once=True)\n"
        "from rucio.client import Client\n"
        "print('done')\n"
    )
    server = RucioServer(facility.state)
    server.run_in_venv(code, log=server.logs / "undertaker.log", what="the undertaker", timeout=120)
    with root_client(facility) as root:
        from rucio.common.exception import DataIdentifierNotFound

        with pytest.raises(DataIdentifierNotFound):
            root.get_did(scope, name)


async def test_resolve_mounted_not_mounted_stale_and_deleted(jp_fetch, facility):
    mounted, other = f"att_{RUN}_mounted", f"att_{RUN}_other"
    register(facility, {f"{mounted}.a.root": b"a" * 100, f"{mounted}.b.root": b"b" * 50}, dataset=mounted)
    register(facility, {f"{other}.a.root": b"c" * 10}, dataset=other)
    m = await mount(jp_fetch, did=f"user.jdoe:{mounted}", mode="cache")
    m = await wait_for(jp_fetch, m["id"])
    assert m["state"] == "ready"

    a, b, bad, unknown_instance = await resolve(
        jp_fetch, {"did": f"user.jdoe:{mounted}", "mode": "cache"}, {"did": f"user.jdoe:{other}"},
        {"did": "no colon here"}, {"did": f"user.jdoe:{other}", "instance": "nowhere"},
    )  # fmt: skip
    assert a["state"] == "mounted", a
    assert a["mount"]["id"] == m["id"] and a["mount"]["target"] == m["target"] and a["mount"]["mode"] == "cache"
    assert a["rucio"] == {"type": "dataset", "files": 2, "bytes": 150}
    assert b["state"] == "not_mounted" and b["mount"] is None and b["rucio"]["files"] == 1
    assert bad["state"] == "invalid" and "':'" in bad["message"]
    assert unknown_instance["state"] == "invalid" and "nowhere" in unknown_instance["message"]

    # Rucio's content changes under the mount: stale, with both counts.
    register(facility, {f"{mounted}.c.root": b"d" * 7})
    with root_client(facility) as root:
        root.attach_dids("user.jdoe", mounted, [{"scope": "user.jdoe", "name": f"{mounted}.c.root"}])
    (a,) = await resolve(jp_fetch, {"did": f"user.jdoe:{mounted}", "mode": "cache"})
    assert a["state"] == "stale", a
    assert "3 file(s)" in a["message"] and a["mount"]["files"] == 2

    # Deleted from Rucio: gone, said clearly, the mount still shown; one request answers every item.
    delete_from_rucio(facility, "user.jdoe", mounted)
    a, b = await resolve(jp_fetch, {"did": f"user.jdoe:{mounted}"}, {"did": f"user.jdoe:{other}"}, refresh=False)
    assert a["state"] == "gone" and "no longer exists in Rucio" in a["message"] and a["mount"]["id"] == m["id"]
    assert b["state"] == "not_mounted"


async def test_failed_mount_is_stale_and_bad_bodies_name_the_field(jp_fetch, facility):
    name = f"att_{RUN}_nofile"
    # A file registered without bytes on disk: the mount fails (checksum/missing), the attachment is stale.
    with root_client(facility) as root:
        root.add_replicas("SITE1_USERDISK", [{"scope": "user.jdoe", "name": name, "bytes": 5, "adler32": "0000abcd"}])
    m = await mount(jp_fetch, did=f"user.jdoe:{name}", mode="cache")
    m = await wait_for(jp_fetch, m["id"])
    (a,) = await resolve(jp_fetch, {"did": f"user.jdoe:{name}"})
    assert m["state"] == "failed" and a["state"] == "stale" and "failed" in a["message"], (m, a)
    for body, field in [
        ({"attachments": [{"did": 5}]}, "attachments[0].did"),
        ({"attachments": [{"did": "a:b", "mode": "teleport"}]}, "attachments[0].mode"),
        ({"attachments": [{"did": "a:b", "extra": 1}]}, "attachments[0].extra"),
        ({"attachments": "a:b"}, "attachments"),
        ({"attachments": [{"did": "a:b"}] * 501}, "attachments"),
    ]:
        code, data = await api(jp_fetch, "POST", "attachments/resolve", body)
        assert code == 400 and data["error"]["field"] == field, (body, data)


async def test_session_lists_what_the_notebooks_kernel_mounted(jp_fetch, facility):
    name = f"att_{RUN}_session"
    register(facility, {f"{name}.a.root": b"s" * 20}, dataset=name)
    m = await mount(jp_fetch, did=f"user.jdoe:{name}", mode="stream")
    await wait_for(jp_fetch, m["id"])
    resp = await jp_fetch("api", "sessions", method="POST", body=json.dumps(
        {"path": "ana/nb.ipynb", "type": "notebook", "name": "nb.ipynb", "kernel": {"name": "python3"}}))  # fmt: skip
    session = json.loads(resp.body)
    try:
        kernel = session["kernel"]["id"]
        await api(jp_fetch, "PUT", f"publish/sessions/{kernel}", {"inputs": [f"user.jdoe:{name}"]}, expect=200)
        data = await session_dids(jp_fetch, "ana/nb.ipynb")
        assert data["kernel_id"] == kernel
        assert data["dids"] == [{"did": f"user.jdoe:{name}", "mode": "stream", "instance": m["instance"]}]
        other = await session_dids(jp_fetch, "elsewhere.ipynb")
        assert other["dids"] == [] and other["kernel_id"] is None
        # By kernel id: found under whatever path the report was filed (the notebook was renamed since).
        renamed = await session_dids(jp_fetch, "ana/renamed.ipynb", kernel=kernel)
        assert renamed["dids"] == data["dids"] and renamed["kernel_id"] == kernel
        assert (await session_dids(jp_fetch, "ana/nb.ipynb", kernel="no-such-kernel"))["dids"] == []
        code, err = await api(jp_fetch, "GET", "attachments/session")
        assert code == 400 and err["error"]["field"] == "notebook"
    finally:
        await jp_fetch("api", "sessions", session["id"], method="DELETE")
