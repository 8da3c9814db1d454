"""Bad input and faults of the analysis workflow, against the real facility.

- A cluster asked to ``--require`` a framework its environment lacks is refused before anything is
  submitted, naming the module and the profile's environment that has it.
- A stream mount's fileset is re-checked whenever it is handed out: an XCache that went down is
  named (503) instead of URLs that would not open, and after the XCache came back on another port
  the URLs point at the new one, in the workspace's fileset file too.
- The mounts list warns on a stream mount while its XCache does not answer (from the status
  service's last probe) and stops warning once it is back.
- What a notebook's kernel reported for provenance survives a server restart, in a private file.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import socket
import stat
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from test_mounts import Relay, needs_xrootd

from af_facility.lab import aflab_config

pytestmark = pytest.mark.facility

STREAM_DID = "cms_opendata:ZZTo4mu"


def services_for(facility, tmp_path: Path, xcache_url: str):
    """af-lab's services as a server with this config builds them (state, cache and workspace kept in tmp_path)."""
    from traitlets.config import Config

    from af_lab.config import AFLab
    from af_lab.services import Services

    cfg = copy.deepcopy(aflab_config(facility.state)["AFLab"])
    cfg.update(cache_dir=str(tmp_path / "cache"), state_dir=str(tmp_path / "state"), xcache_url=xcache_url)
    (tmp_path / "ws").mkdir(exist_ok=True)
    return Services(AFLab(config=Config({"AFLab": cfg})), root_dir=str(tmp_path / "ws"))


def stop(relay: Relay) -> None:
    """The relay's port stops accepting, as a stopped XCache's would (a listener closed while another
    thread waits in accept() keeps listening on Linux: shut it down first)."""
    with contextlib.suppress(OSError):
        relay.listener.shutdown(socket.SHUT_RDWR)
    relay.close()


async def stream_fileset(services) -> dict:
    mount, _ = await services.mounts.create({"did": STREAM_DID, "mode": "stream", "source": "xcache"})
    assert mount["state"] == "ready", mount
    body, _fmt = await services.mounts.fileset(mount["id"], "json", "remote")
    return json.loads(body)


async def test_a_stream_fileset_names_a_dead_xcache_and_follows_it_after_a_restart(facility, tmp_path):
    from XRootD import client as xrd

    from af_lab.errors import ServiceUnavailable

    xrd_info = needs_xrootd(facility)
    before = Relay(xrd_info["cache_port"])  # the site XCache as the server knows it
    services = services_for(facility, tmp_path, before.url)
    try:
        (entry,) = (await stream_fileset(services)).values()
        assert entry["files"] and all(u.startswith(before.url + "/") for u in entry["files"])
        mount_id = (await services.mounts.list())["mounts"][0]["id"]
        in_workspace = tmp_path / "ws" / (await services.mounts.get(mount_id))["target"]
        made = json.loads(in_workspace.read_text())
        assert made[STREAM_DID]["metadata"]["xcache"] == before.url

        stop(before)  # the XCache goes down: the mount stays, its fileset is not handed out as if fine
        with pytest.raises(ServiceUnavailable) as err:
            await services.mounts.fileset(mount_id, "json", "remote")
        assert err.value.details["service"] == "xcache" and before.url in err.value.message
        assert "does not answer" in err.value.message
    finally:
        await services.close()

    # The XCache is back on another port and the server restarted with it: the same mount's
    # fileset now names the new XCache, and its URLs open there.
    after = Relay(xrd_info["cache_port"])
    services = services_for(facility, tmp_path, after.url)
    try:
        body, _ = await services.mounts.fileset(mount_id, "json", "remote")
        (entry,) = json.loads(body).values()
        assert all(u.startswith(after.url + "/") for u in entry["files"]), entry["files"]
        assert entry["metadata"]["xcache"] == after.url
        url = next(iter(entry["files"]))
        status, info = xrd.FileSystem(after.url).stat("/" + urlsplit(url).path.lstrip("/"))
        assert status.ok and info.size > 0, status.message
        # A notebook reading the workspace's fileset file directly gets the same working URLs, in the
        # file's own format (rewritten atomically when the fileset was re-checked).
        rewritten = json.loads(in_workspace.read_text())
        assert rewritten == json.loads(body) and rewritten.keys() == made.keys()
        assert len(rewritten[STREAM_DID]["files"]) == len(made[STREAM_DID]["files"])
        assert not list(in_workspace.parent.glob(".af-mount-staging-*"))
    finally:
        stop(after)
        await services.close()


async def test_the_mounts_list_warns_while_a_stream_mounts_xcache_is_down_and_not_after_it_is_back(
    facility, tmp_path
):
    from af_lab.kernel.magics import mount_line

    xrd_info = needs_xrootd(facility)
    relay = Relay(xrd_info["cache_port"])
    services = services_for(facility, tmp_path, relay.url)

    async def probe_and_list() -> dict[str, str | None]:
        await services.status.all(refresh=True)  # one probe round, as the status panel's poll makes
        return {m["mode"]: m["warning"] for m in (await services.mounts.list())["mounts"]}

    def pushed_warnings(sub) -> list[str | None]:
        events = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
        return [e["data"]["warning"] for e in events if e["data"]["mode"] == "stream"]

    try:
        await services.start()
        await stream_fileset(services)
        await services.mounts.create({"did": STREAM_DID, "mode": "cache", "source": "direct", "target": "copied"})
        assert await probe_and_list() == {"stream": None, "cache": None}

        with services.events.subscribe(["mounts/"]) as sub:  # an open Mounts panel
            stop(relay)  # the XCache goes down: the ready stream mount says its reads will fail
            listed = await probe_and_list()
            assert listed["cache"] is None, listed  # copies in the cache do not need the XCache
            assert relay.url in listed["stream"] and "does not answer" in listed["stream"], listed
            assert "reads will fail until it is back" in listed["stream"]
            assert pushed_warnings(sub) == [listed["stream"]]  # the panel is told, once
            row = next(m for m in (await services.mounts.list())["mounts"] if m["mode"] == "stream")
            assert mount_line(row).endswith(f"warning: {listed['stream']}")  # %rucio mounts says it too

            relay = Relay(xrd_info["cache_port"], listen_port=relay.port)  # back where it was
            assert await probe_and_list() == {"stream": None, "cache": None}
            assert pushed_warnings(sub) == [None]
    finally:
        stop(relay)
        await services.close()


async def test_a_cluster_lacking_the_required_framework_is_refused_before_submitting(facility, tmp_path):
    from af_lab.clusters.environments import EnvironmentMismatch

    services = services_for(facility, tmp_path, "")
    clusters = services.clusters
    profile = "slurm" if "slurm" in clusters.profiles else "local"
    try:
        with pytest.raises(EnvironmentMismatch) as err:
            await clusters.create(profile, {"workers": 1}, environment="server", require=["coffea", "ROOT"])
        msg = err.value.message
        assert err.value.details["field"] == "require" and err.value.status == 400
        assert "cannot import coffea, ROOT" in msg and "--environment analysis" in msg, msg
        assert (await clusters.list()) == []  # nothing was started nor submitted
        # The analysis environment has them: no refusal on that account (the check passes).
        env = clusters.environments.choose("analysis", clusters.profiles[profile].settings.get("environments"), None)
        assert await clusters.environments.missing_modules(env, ["coffea", "uproot", "ROOT", "dask_awkward"]) == []
    finally:
        await services.close()


def test_session_reports_survive_a_restart_in_a_private_file(tmp_path):
    from af_lab.publish.sessions import SessionFacts

    path = tmp_path / "state" / "publish-sessions.json"
    os.umask(0o022)
    first = SessionFacts(path)
    first.report("k1", "examples/a.ipynb", {"inputs": ["cms_opendata:X"], "cluster_profile": "slurm",
                                            "environment": "analysis", "packages": {"uproot": "5.6"}})  # fmt: skip
    first.report("k2", None, {"inputs": ["cms_opendata:Y"]})  # no notebook: nothing to keep
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700

    again = SessionFacts(path)  # a new server process reads what the last one kept
    facts = again.for_notebook("examples/a.ipynb")
    assert facts["inputs"] == ["cms_opendata:X"] and facts["kernel_id"] == "k1"
    assert (facts["cluster_profile"], facts["environment"]) == ("slurm", "analysis")
    assert facts["packages"] == {"uproot": "5.6"}
    assert again.for_notebook("examples/b.ipynb") is None

    path.write_text("{not json")  # a damaged file loses the old reports, not the server
    assert SessionFacts(path).for_notebook("examples/a.ipynb") is None
