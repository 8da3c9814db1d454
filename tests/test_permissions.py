"""Another Unix user on the same machine reads nothing of the user's af-lab files.

A server runs a cache mount, a Rucio search (the listing cache), a publish check and
a local Dask cluster (its worker token), in a directory every user may traverse, so
only af-lab's own modes protect what it writes. Then a probe runs as ``nobody``
(``setpriv --reuid=65534 --regid=65534 --clear-groups``, with the system Python,
which that user can execute) and tries to read every file and list every folder of
the cache and state directories, and to open the mounted files through the
workspace. It must fail on each one.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.server_process import api, remove_tree, start, wait_mount

pytestmark = [
    pytest.mark.facility,
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv"),
]

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
PROBE = """
import json, os, sys
readable = []
for path in json.load(sys.stdin):
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            with open(path, "rb") as f:
                f.read(1)
        readable.append(path)
    except OSError:
        pass
print(json.dumps(readable))
"""
SYSTEM_PYTHON = "/usr/bin/python3"  # the venv's interpreter may sit under root's 0700 home


@pytest.fixture(scope="module")
def used_server(facility):
    home = Path(tempfile.mkdtemp(prefix="af-lab-perm-"))
    home.chmod(0o755)  # traversable by anyone: af-lab's modes are all that protect its files
    server = start(facility, home)
    (server.root_dir / "out").mkdir()
    (server.root_dir / "out" / "h.root").write_bytes(os.urandom(1000))
    try:
        code, body = api(server, "POST", "mounts", {"did": "cms_opendata:ZZTo4mu"})
        assert code in (200, 201), body
        mount = wait_mount(server, body["mount"]["id"])
        assert mount["state"] == "ready", mount
        assert api(server, "GET", "rucio/instances/demo/dids?q=cms_opendata:*&type=dataset")[0] == 200
        assert api(server, "POST", "publish/validate", {"paths": ["out/h.root"]})[0] == 200
        code, cluster = api(server, "POST", "clusters", {"profile": "local", "workers": 1})
        assert code == 201, cluster
        yield server, home, mount
        api(server, "DELETE", f"clusters/{cluster['id']}")
    finally:
        server.stop()
        remove_tree(home)


def _everything(*roots: Path) -> list[str]:
    found = []
    for root in roots:
        for dirpath, _dirnames, filenames in os.walk(root):
            found.append(dirpath)
            found += [os.path.join(dirpath, f) for f in filenames if not os.path.islink(os.path.join(dirpath, f))]
    return found


def test_nobody_reads_nothing_of_the_cache_databases_and_tokens(used_server):
    server, home, mount = used_server
    cache, state = home / "cache", home / "state"
    paths = _everything(cache, state)
    names = [os.path.basename(p) for p in paths]
    # What the scenario must have produced, so the probe covers each kind.
    assert any("/objects/" in p and os.path.isfile(p) for p in paths), "no cache object"
    for expected in ("mounts.sqlite", "mounts.sqlite-wal", "publish.sqlite3", "publish.sqlite3-wal"):
        assert expected in names, expected
    assert any(n.startswith("rucio-listings-") and n.endswith(".sqlite-wal") for n in names)
    assert any("/clusters/" in p for p in paths), "no cluster run directory"
    mounted = [str(server.root_dir / mount["target"] / name) for name in os.listdir(server.root_dir / mount["target"])]
    assert mounted

    # Modes: 0600 files (0400 read-only objects allowed), 0700 folders at the top.
    loose = [p for p in paths if os.path.isfile(p) and stat.S_IMODE(os.stat(p).st_mode) & 0o077]
    assert loose == [], f"readable by group/others: {loose[:10]}"
    for top in (cache, state):
        assert stat.S_IMODE(top.stat().st_mode) == 0o700, top

    probe = subprocess.run([*NOBODY, SYSTEM_PYTHON, "-c", PROBE], input=json.dumps(paths + mounted),
                           capture_output=True, text=True, timeout=120, cwd="/")  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    readable = json.loads(probe.stdout)
    print(f"\npermissions: {len(paths) + len(mounted)} paths checked as nobody "
          f"({sum(os.path.isfile(p) for p in paths)} files), readable: {len(readable)}")
    assert readable == [], f"nobody can read: {readable[:10]}"


def test_the_probe_does_read_what_is_open_to_all(used_server):
    """The same probe on a world-readable file succeeds: a failing probe is not mistaken for privacy."""
    _server, home, _mount = used_server
    public = home / "public.txt"
    public.write_text("anyone")
    public.chmod(0o644)
    probe = subprocess.run([*NOBODY, SYSTEM_PYTHON, "-c", PROBE], input=json.dumps([str(public), str(home)]),
                           capture_output=True, text=True, timeout=60, cwd="/")  # fmt: skip
    assert json.loads(probe.stdout) == [str(public), str(home)]


def test_a_replaced_password_leaves_no_older_version_in_vault(used_server, facility):
    """KV v2 keeps history by default: af-lab keeps one version of each secret it writes."""
    import hvac

    server, _home, _mount = used_server
    rucio, bao = facility.state.services["rucio"], facility.state.services["openbao"]
    body = {"auth_type": "userpass", "username": "jdoe", "password": rucio["accounts"]["jdoe"]["password"]}
    for _ in range(3):
        code, answer = api(server, "PUT", "credentials/demo", body)
        assert code == 200 and answer["logged_in"], answer
    root = hvac.Client(url=bao["addr"], token=bao["root_token"])
    checked = 0
    for name in ("rucio/demo", "tokens/rucio/demo"):
        path = f"{bao['user_prefix']}/jdoe/{name}"
        try:
            meta = root.secrets.kv.v2.read_secret_metadata(path=path, mount_point=bao["kv_mount"])["data"]
        except hvac.exceptions.InvalidPath:
            continue  # this secret is not kept in this version of af-lab
        versions = {int(v): info for v, info in meta["versions"].items()}
        live = [v for v, info in versions.items() if not info.get("destroyed") and not info.get("deletion_time")]
        assert live == [meta["current_version"]], (path, meta["versions"])
        older = meta["current_version"] - 1
        with pytest.raises(hvac.exceptions.InvalidPath):
            root.secrets.kv.v2.read_secret_version(path=path, version=older, mount_point=bao["kv_mount"],
                                                   raise_on_deleted_version=True)  # fmt: skip
        checked += 1
    assert checked >= 1
