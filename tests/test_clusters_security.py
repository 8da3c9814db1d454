"""Clusters as another user on the machine sees them: TLS only with the cluster's certificate, private files,
no secret in any scheduler or worker environment; software environments and their version check;
dask-labextension's panes without touching its modules.

Real schedulers and workers (local profile). The "other user" is ``nobody`` (uid 65534) through
``setpriv``; it runs the system Python with the server's site-packages on its path (readable by all),
so it has the same Dask client a user would have.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import distributed
import psutil
import pytest
from condor_standin.profiles import LOCAL, PROFILES, call, cluster_security, server_config, settings
from distributed import Client

pytestmark = pytest.mark.filterwarnings("ignore::jupyter_server.utils.JupyterServerAuthWarning")

SECRETS = {
    "JUPYTER_TOKEN": "jupyter-token-s3cret",
    "JPY_API_TOKEN": "jpy-api-token-s3cret",
    "JUPYTERHUB_API_TOKEN": "hub-api-token-s3cret",
    "VAULT_TOKEN": "vault-token-s3cret",
    "AF_LAB_SERVER_TOKEN": "af-lab-server-token-s3cret",
}
MODULE = "af_only_in_special_env"
NOBODY = 65534
SYSTEM_PYTHON = "/usr/bin/python3"

OTHER_USER_SCRIPT = r'''
import json, sys
address, run_dir, pid = sys.argv[1], sys.argv[2], sys.argv[3]
out = {}
from distributed import Client
from distributed.security import Security
for label, kwargs in (("no certificate", {}), ("a certificate of its own", {"security": Security.temporary()})):
    try:
        with Client(address, timeout=5, **kwargs):
            out[label] = "connected"
    except Exception as exc:
        out[label] = "refused: " + type(exc).__name__
try:
    with Client(address.replace("tls://", "tcp://"), timeout=5):
        out["plain tcp"] = "connected"
except Exception as exc:
    out["plain tcp"] = "refused: " + type(exc).__name__
for name in ("tls/ca.pem", "tls/client-key.pem", "tls/worker-key.pem", "tls/scheduler-key.pem", "scheduler.json"):
    try:
        open(f"{run_dir}/{name}").read()
        out[name] = "read"
    except OSError as exc:
        out[name] = "denied: " + type(exc).__name__
try:
    open(f"/proc/{pid}/environ").read()
    out["environ"] = "read"
except OSError as exc:
    out["environ"] = "denied: " + type(exc).__name__
print(json.dumps(out))
'''


@pytest.fixture
def special_env(tmp_path_factory) -> Path:
    """A software environment the server does not have: a venv whose site-packages adds one module."""
    root = tmp_path_factory.mktemp("special-env")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True)
    site = next((root / "venv" / "lib").glob("python3*/site-packages"))
    (site / "server-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (site / f"{MODULE}.py").write_text("VALUE = 'only here'\n")
    return root / "venv" / "bin" / "python"


@pytest.fixture
def public_state_dir():
    """A state dir others can traverse to: what protects the cluster's files is af-lab's own modes."""
    d = Path(tempfile.mkdtemp(prefix="af-clusters-sec-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def jp_server_config(aflab_settings, special_env, public_state_dir):
    profiles = {
        **PROFILES,
        "special": {**LOCAL, "display_name": "Special", "environments": ["special", "server"],
                    "default_environment": "special"},
        "broken-workers": {**LOCAL, "death_timeout": "soon"},  # the worker's command line refuses it
    }
    environments = {"special": {"python": str(special_env), "display_name": "Special env"}}
    return server_config({**aflab_settings, **settings(cluster_profiles=profiles), "state_dir": str(public_state_dir),
                          "cluster_environments": environments})


def service(jp_serverapp):
    return jp_serverapp.web_app.settings["af_lab"].clusters


def as_nobody(script: str, *args: str) -> dict:
    """Run ``script`` as uid/gid 65534 with the system Python and the server's (world-readable) packages."""
    with tempfile.TemporaryDirectory(prefix="af-nobody-") as d:
        os.chmod(d, 0o755)
        path = Path(d) / "probe.py"
        path.write_text(script)
        os.chmod(path, 0o644)
        # The clone may sit under a 0700 home: the probe sees the server's packages at a path it can
        # traverse, bind-mounted in a private mount namespace of its own (nothing else is opened up).
        packages = Path(d) / "packages"
        packages.mkdir(mode=0o755)
        env = {"PATH": "/usr/bin:/bin", "HOME": d, "PYTHONPATH": str(packages)}
        proc = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", 'mount --bind "$1" "$2" && shift 2 && exec "$@"',
             "sh", sysconfig.get_paths()["purelib"], str(packages),
             "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", SYSTEM_PYTHON, str(path), *args],
            capture_output=True, text=True, timeout=120, env=env, cwd=d,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def environ_of(pid: int) -> str:
    return Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv") or not shutil.which("unshare")
                    or not os.path.exists(SYSTEM_PYTHON),
                    reason="needs root, setpriv and the system Python to act as another user")
async def test_another_user_can_neither_connect_nor_read_nor_find_secrets(
    jp_fetch, jp_serverapp, public_state_dir, tmp_path, monkeypatch
):
    for key, value in SECRETS.items():  # what a hub-spawned server holds
        monkeypatch.setenv(key, value)
    _, cluster = await call(jp_fetch, "POST", "af-lab", "clusters",
                            body={"profile": "local", "workers": 1, "environment": "server"}, expect=201)
    cid = cluster["id"]
    try:
        mc = service(jp_serverapp)._clusters[cid]
        scheduler_pid = mc.scheduler_info["pid"]
        assert scheduler_pid != os.getpid()
        _, jobs = await call(jp_fetch, "GET", "af-lab", "clusters", cid, "jobs", expect=200)
        worker_pids = [int(j["job_id"]) for j in jobs["jobs"] if j["status"] == "running"]
        assert len(worker_pids) == 1
        worker_tree = [worker_pids[0], *(p.pid for p in psutil.Process(worker_pids[0]).children(recursive=True))]

        # The owner, with the certificate from af-lab's REST API, computes.
        security = await cluster_security(jp_fetch, cid, tmp_path / "runtime")
        async with Client(cluster["scheduler_address"], security=security, asynchronous=True) as client:
            assert await client.submit(sum, [1, 2, 3]) == 6
        kernel_dir = tmp_path / "runtime" / "af-lab-clusters" / cid
        assert stat.S_IMODE(kernel_dir.stat().st_mode) == 0o700
        assert {stat.S_IMODE(p.stat().st_mode) for p in kernel_dir.iterdir()} == {0o600}

        # Another user: refused at the first step, and no file to read.
        seen = as_nobody(OTHER_USER_SCRIPT, cluster["scheduler_address"], str(mc.run_dir), str(scheduler_pid))
        assert all(v.startswith(("refused", "denied")) for v in seen.values()), seen
        tls_dir = mc.run_dir / "tls"
        assert stat.S_IMODE(tls_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE((public_state_dir / "clusters").stat().st_mode) == 0o700
        assert {stat.S_IMODE(p.stat().st_mode) for p in tls_dir.iterdir()} == {0o600}

        # No secret of the server's in the scheduler's or any worker's environment (an allow-list builds them).
        for pid in [scheduler_pid, *worker_tree]:
            environ = environ_of(pid)
            for key, value in SECRETS.items():
                assert value not in environ and f"{key}=" not in environ, f"{key} reached pid {pid}"
            assert "PATH=" in environ and "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION=True" in environ
    finally:
        await call(jp_fetch, "DELETE", "af-lab", "clusters", cid, expect=204)


async def test_a_graph_needing_a_module_only_the_cluster_environment_has_runs(jp_fetch, jp_serverapp, tmp_path,
                                                                              special_env):
    assert importlib.util.find_spec(MODULE) is None  # the server (and this client) lack it
    _, profiles = await call(jp_fetch, "GET", "af-lab", "clusters", "profiles", expect=200)
    form = next(p for p in profiles["profiles"] if p["name"] == "special")
    assert form["schema"]["properties"]["environment"]["enum"] == ["special", "server"]
    assert form["schema"]["properties"]["environment"]["default"] == "special"

    # A kernel sends its sys.prefix: the environment with that prefix is chosen.
    prefix = str(special_env.parent.parent)
    _, cluster = await call(jp_fetch, "POST", "af-lab", "clusters",
                            body={"profile": "special", "workers": 1, "environment": prefix,
                                  "client_distributed": distributed.__version__}, expect=201)
    cid = cluster["id"]
    try:
        assert cluster["options"]["environment"] == "special"
        mc = service(jp_serverapp)._clusters[cid]
        assert psutil.Process(mc.scheduler_info["pid"]).cmdline()[0] == str(special_env)
        security = await cluster_security(jp_fetch, cid, tmp_path)
        async with Client(cluster["scheduler_address"], security=security, asynchronous=True) as client:
            value = await client.submit(eval, f"__import__({MODULE!r}).VALUE")
            where = await client.run(lambda: __import__("sys").executable)
        assert value == "only here"
        assert list(where.values()) == [str(special_env)]
    finally:
        await call(jp_fetch, "DELETE", "af-lab", "clusters", cid, expect=204)


@pytest.mark.parametrize(
    "body, expected",
    [
        ({"environment": "nope"}, "environment 'nope' is not offered by this profile"),
        ({"client_distributed": "2000.1.0"}, f"your kernel has distributed 2000.1.0 but environment 'special' has "
                                             f"distributed {distributed.__version__}"),
        ({"environment": 3}, "environment must be a string (an environment name or a Python prefix)"),
    ],
)
async def test_a_bad_or_mismatched_environment_is_refused_before_anything_starts(
    jp_fetch, jp_serverapp, public_state_dir, body, expected
):
    code, err = await call(jp_fetch, "POST", "af-lab", "clusters", body={"profile": "special", "workers": 1, **body})
    assert code == 400 and err["error"]["field"] == "environment", err
    assert expected in err["error"]["message"]
    _, listed = await call(jp_fetch, "GET", "af-lab", "clusters", expect=200)
    assert listed["clusters"] == []
    assert not list(public_state_dir.glob("clusters/*.json")), "nothing was started or recorded"


@pytest.mark.parametrize("without_manager_global", [False, True])
async def test_dask_labextension_panes_without_its_manager_global(jp_fetch, monkeypatch, without_manager_global):
    """dask-labextension 7.0.0 as installed, and with the module-level ``manager`` gone (its main branch)."""
    import dask_labextension.manager as dle_manager

    if without_manager_global:
        monkeypatch.delattr(dle_manager, "manager")
    _, cluster = await call(jp_fetch, "POST", "af-lab", "clusters", body={"workers": 1}, expect=201)
    cid = cluster["id"]
    try:
        _, listing = await call(jp_fetch, "GET", "dask", "clusters", expect=200)
        assert [c["id"] for c in listing] == [cid]
        resp = await jp_fetch("dask", "dashboard", cid, "individual-plots.json")
        assert any("Task Stream" in name for name in json.loads(resp.body))
        _, one = await call(jp_fetch, "PATCH", "dask", "clusters", cid, body={"workers": 2}, expect=200)
        assert one["workers"] == 2
    finally:
        await call(jp_fetch, "DELETE", "dask", "clusters", cid, expect=204)


async def test_a_local_worker_that_fails_at_start_shows_its_log_and_leaves_nothing(jp_fetch, public_state_dir):
    code, err = await call(jp_fetch, "POST", "af-lab", "clusters", body={"profile": "broken-workers", "workers": 1})
    assert code == 503, err
    assert "did not start" in err["error"]["message"] and "soon" in err["error"]["message"]  # the log's tail
    _, listed = await call(jp_fetch, "GET", "af-lab", "clusters", expect=200)
    assert listed["clusters"] == []
    assert not [p for p in psutil.process_iter(["cmdline"]) if str(public_state_dir) in " ".join(p.info["cmdline"] or [])]
