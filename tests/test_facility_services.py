"""The demo facility's OpenBao, hub JWT issuer and XRootD origin + XCache, run for real.

Every server listens on 127.0.0.1 only, lives in a fresh temporary state
directory and is stopped by PID when its fixture ends.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import hvac
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from af_facility import hub
from af_facility import openbao as openbao_module
from af_facility import xrootd as xrootd_module
from af_facility.base import FacilityState, Unavailable
from af_facility.openbao import OpenBao, loopback_session
from af_facility.procs import ServiceError, cmdline, pid_alive, port_is_free
from af_facility.xrootd import XRootD

# -- helpers ---------------------------------------------------------------------


def make_state_root() -> Path:
    """A fresh state dir the ``xrootd`` user can traverse (pytest's tmp_path is 0700)."""
    root = Path(tempfile.mkdtemp(prefix="af-facility-test-"))
    root.chmod(0o755)
    return root


def listening_addresses(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket ``pid`` listens on, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = set()
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A = LISTEN
                continue
            hex_addr, hex_port = local.split(":")
            raw = bytes.fromhex(hex_addr)
            # /proc prints the address as host-order 32-bit words.
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.add((socket.inet_ntop(family, raw), int(hex_port, 16)))
    return found


def is_loopback(address: str) -> bool:
    # The XCache listens on 127.0.0.2 (ROOT takes 127.0.0.1 for a local file).
    return address.removeprefix("::ffff:") in ("127.0.0.1", "127.0.0.2")


def process_uids(pid: int) -> set[int]:
    """Real, effective, saved and filesystem uid of ``pid``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return {int(u) for u in line.split()[1:]}
    raise AssertionError(f"no Uid line for PID {pid}")


def jwt_client(info: dict, token: str) -> hvac.Client:
    client = hvac.Client(url=info["addr"], session=loopback_session())
    client.auth.jwt.jwt_login(role=info["jwt_role"], jwt=token, path=info["jwt_mount"])
    return client


def kv(client: hvac.Client):
    return client.secrets.kv.v2


def user_path(info: dict, user: str, leaf: str) -> str:
    return f"{info['user_prefix']}/{user}/{leaf}"


# -- OpenBao fixtures --------------------------------------------------------------


@pytest.fixture(scope="module")
def bao_root() -> Iterator[Path]:
    root = make_state_root()
    yield root
    OpenBao(FacilityState.load(root)).down()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def bao(bao_root: Path) -> dict:
    return OpenBao(FacilityState.load(bao_root)).up()


@pytest.fixture
def root_client(bao: dict) -> hvac.Client:
    return hvac.Client(url=bao["addr"], token=bao["root_token"], session=loopback_session())


# -- hub -------------------------------------------------------------------------------


def test_hub_key_is_created_once_and_private(bao_root: Path) -> None:
    private, public = hub.ensure_signing_key(bao_root)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    before = private.read_bytes(), public.read_bytes()
    assert hub.ensure_signing_key(bao_root) == (private, public)
    assert (private.read_bytes(), public.read_bytes()) == before


@pytest.mark.parametrize("user", sorted(hub.DEMO_USERS))
def test_hub_jwt_claims(bao_root: Path, user: str) -> None:
    before = int(time.time())
    token = hub.mint_jwt(bao_root, user, ttl_s=600)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    assert header["kid"] == hub.key_id(bao_root)
    claims = jwt.decode(
        token, hub.public_key_pem(bao_root), algorithms=["RS256"], audience=hub.DEFAULT_AUDIENCE, issuer=hub.HUB_ISSUER
    )
    assert claims["sub"] == user
    assert before <= claims["iat"] == claims["nbf"] <= int(time.time())
    assert claims["exp"] - claims["iat"] == 600
    assert claims["wlcg.groups"] == claims["groups"] == list(hub.DEMO_USERS[user])


def test_hub_groups_and_extra_claims_override(bao_root: Path) -> None:
    token = hub.mint_jwt(bao_root, "someone", groups=["/atlas"], audience="other", extra_claims={"scope": "x"})
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["groups"] == ["/atlas"] and claims["aud"] == "other" and claims["scope"] == "x"


def test_write_user_jwt_is_0600(bao_root: Path) -> None:
    path = hub.write_user_jwt(bao_root, "jdoe", ttl_s=60)
    assert path == bao_root / "hub" / "jdoe.jwt"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert jwt.decode(path.read_text().strip(), options={"verify_signature": False})["sub"] == "jdoe"


# -- OpenBao -------------------------------------------------------------------------------


def test_bao_info_and_process(bao: dict, bao_root: Path) -> None:
    service = OpenBao(FacilityState.load(bao_root))
    pid = service.process.running_pid()
    assert pid is not None and service.running()
    assert bao["addr"] == f"http://127.0.0.1:{bao['port']}"
    assert bao["hub_issuer"] == hub.HUB_ISSUER
    assert Path(bao["hub_public_key_file"]).read_text() == hub.public_key_pem(bao_root)
    # Listens on loopback only: the API port and its cluster port (+1).
    addresses = listening_addresses(pid)
    assert {port for _, port in addresses} == {bao["port"], bao["port"] + 1}
    assert all(is_loopback(address) for address, _ in addresses), addresses
    # The root token is neither on the command line nor readable by other users.
    assert bao["root_token"] not in cmdline(pid)
    assert stat.S_IMODE((bao_root / "openbao").stat().st_mode) == 0o700


def test_kv_v2_is_mounted_at_secret(root_client: hvac.Client, bao: dict) -> None:
    mount = root_client.sys.list_mounted_secrets_engines()["data"][f"{bao['kv_mount']}/"]
    assert mount["type"] == "kv"
    assert mount["options"]["version"] == "2"


def test_jwt_login_gets_templated_policy(bao: dict, bao_root: Path, root_client: hvac.Client) -> None:
    client = hvac.Client(url=bao["addr"], session=loopback_session())
    auth = client.auth.jwt.jwt_login(role=bao["jwt_role"], jwt=hub.mint_jwt(bao_root, "jdoe"), path=bao["jwt_mount"])[
        "auth"
    ]
    assert bao["user_policy"] in auth["policies"]
    assert auth["lease_duration"] == 15 * 60  # the role's default token_ttl
    # The policy is templated on the JWT method's alias name, i.e. on `sub`.
    accessor = root_client.sys.list_auth_methods()["data"][f"{bao['jwt_mount']}/"]["accessor"]
    policy = root_client.sys.read_policy(bao["user_policy"])["data"]["rules"]
    assert f"{{{{identity.entity.aliases.{accessor}.name}}}}" in policy
    entity = root_client.secrets.identity.read_entity(auth["entity_id"])["data"]
    assert [(a["mount_accessor"], a["name"]) for a in entity["aliases"]] == [(accessor, "jdoe")]


# hvac's own kv.v2.patch() reads the secret without raise_on_deleted_version.
@pytest.mark.filterwarnings("ignore:The raise_on_deleted_version parameter:DeprecationWarning")
def test_user_writes_and_reads_own_secrets(bao: dict, bao_root: Path) -> None:
    jdoe = jwt_client(bao, hub.mint_jwt(bao_root, "jdoe"))
    secret = {"password": secrets.token_hex(8)}
    path = user_path(bao, "jdoe", "dms")
    kv(jdoe).create_or_update_secret(path=path, secret=secret, mount_point=bao["kv_mount"])
    read = kv(jdoe).read_secret_version(path=path, mount_point=bao["kv_mount"], raise_on_deleted_version=True)
    assert read["data"]["data"] == secret
    kv(jdoe).patch(path=path, secret={"user": "jdoe"}, mount_point=bao["kv_mount"])
    read = kv(jdoe).read_secret_version(path=path, mount_point=bao["kv_mount"], raise_on_deleted_version=True)
    assert read["data"]["data"] == {**secret, "user": "jdoe"}
    listing = kv(jdoe).list_secrets(path=f"{bao['user_prefix']}/jdoe", mount_point=bao["kv_mount"])
    assert "dms" in listing["data"]["keys"]


def test_other_user_is_forbidden(bao: dict, bao_root: Path, root_client: hvac.Client) -> None:
    path = user_path(bao, "jdoe", "private")
    kv(root_client).create_or_update_secret(path=path, secret={"k": "v"}, mount_point=bao["kv_mount"])
    asmith = jwt_client(bao, hub.mint_jwt(bao_root, "asmith"))
    with pytest.raises(hvac.exceptions.Forbidden):
        kv(asmith).read_secret_version(path=path, mount_point=bao["kv_mount"], raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.Forbidden):
        kv(asmith).create_or_update_secret(path=path, secret={"k": "stolen"}, mount_point=bao["kv_mount"])
    with pytest.raises(hvac.exceptions.Forbidden):
        kv(asmith).list_secrets(path=bao["user_prefix"], mount_point=bao["kv_mount"])
    # ... while asmith's own directory works.
    own = user_path(bao, "asmith", "dms")
    kv(asmith).create_or_update_secret(path=own, secret={"k": "mine"}, mount_point=bao["kv_mount"])
    unchanged = kv(root_client).read_secret_version(
        path=path, mount_point=bao["kv_mount"], raise_on_deleted_version=True
    )
    assert unchanged["data"]["data"] == {"k": "v"}


def _expired(root: Path) -> str:
    # Further in the past than OpenBao's default 150 s expiration leeway.
    long_ago = int(time.time()) - 3 * 3600
    return hub.mint_jwt(root, "jdoe", extra_claims={"iat": long_ago, "nbf": long_ago, "exp": long_ago + 3600})


def _foreign_key(root: Path) -> str:
    claims = jwt.decode(hub.mint_jwt(root, "jdoe"), options={"verify_signature": False})
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, impostor, algorithm="RS256", headers={"kid": hub.key_id(root)})


REFUSED_JWTS = {
    "expired": _expired,
    "wrong audience": lambda root: hub.mint_jwt(root, "jdoe", audience="some-other-service"),
    "wrong issuer": lambda root: hub.mint_jwt(root, "jdoe", extra_claims={"iss": "https://evil.test/"}),
    "foreign signing key": _foreign_key,
}


@pytest.mark.parametrize("case", REFUSED_JWTS)
def test_bad_jwt_is_refused(bao: dict, bao_root: Path, case: str) -> None:
    client = hvac.Client(url=bao["addr"], session=loopback_session())
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.auth.jwt.jwt_login(role=bao["jwt_role"], jwt=REFUSED_JWTS[case](bao_root), path=bao["jwt_mount"])
    assert not client.is_authenticated()


def test_demo_user_jwt_files_log_in(bao: dict) -> None:
    assert set(bao["user_jwt_files"]) == set(hub.DEMO_USERS)
    for user, file in bao["user_jwt_files"].items():
        assert stat.S_IMODE(Path(file).stat().st_mode) == 0o600
        client = jwt_client(bao, Path(file).read_text().strip())
        assert client.auth.token.lookup_self()["data"]["meta"]["role"] == bao["jwt_role"]
        kv(client).create_or_update_secret(path=user_path(bao, user, "probe"), secret={"ok": "1"}, mount_point="secret")


def test_second_up_reuses_running_server(bao: dict, bao_root: Path, root_client: hvac.Client) -> None:
    service = OpenBao(FacilityState.load(bao_root))
    pid = service.process.running_pid()
    kv(root_client).create_or_update_secret(path="users/jdoe/marker", secret={"m": "1"}, mount_point="secret")
    again = service.up()
    assert service.process.running_pid() == pid
    assert (again["addr"], again["root_token"]) == (bao["addr"], bao["root_token"])
    # Same in-memory server: what was written before is still there.
    read = kv(root_client).read_secret_version(
        path="users/jdoe/marker", mount_point="secret", raise_on_deleted_version=True
    )
    assert read["data"]["data"] == {"m": "1"}


def test_token_ttl_from_environment(
    bao: dict, bao_root: Path, monkeypatch: pytest.MonkeyPatch, root_client: hvac.Client
) -> None:
    service = OpenBao(FacilityState.load(bao_root))
    monkeypatch.setenv(openbao_module.TOKEN_TTL_ENV, "3s")
    try:
        assert service.up()["token_ttl"] == "3s"  # a reused server is re-configured
        client = hvac.Client(url=bao["addr"], session=loopback_session())
        auth = client.auth.jwt.jwt_login(role="jupyter", jwt=hub.mint_jwt(bao_root, "jdoe"), path="jwt")["auth"]
        assert auth["lease_duration"] == 3
        assert client.is_authenticated()
        time.sleep(4)
        assert not client.is_authenticated()
    finally:
        monkeypatch.delenv(openbao_module.TOKEN_TTL_ENV)
        service.up()
    role = root_client.auth.jwt.read_role("jupyter", path="jwt")["data"]
    assert role["token_ttl"] == 15 * 60


def test_down_then_up_reconfigures_a_new_server() -> None:
    root = make_state_root()
    service = OpenBao(FacilityState.load(root))
    try:
        first = service.up()
        pid = service.process.running_pid()
        root_client = hvac.Client(url=first["addr"], token=first["root_token"], session=loopback_session())
        kv(root_client).create_or_update_secret(path="users/jdoe/gone", secret={"x": "1"}, mount_point="secret")

        service.down()
        assert not service.running()
        assert not pid_alive(pid)
        assert port_is_free(first["port"]) and port_is_free(first["port"] + 1)
        assert not service.instance_file.exists()

        second = service.up()
        assert second["root_token"] != first["root_token"]
        jdoe = jwt_client(second, hub.mint_jwt(root, "jdoe"))
        # Dev mode is in memory: the old secret is gone, the configuration is back.
        with pytest.raises(hvac.exceptions.InvalidPath):
            kv(jdoe).read_secret_version(path="users/jdoe/gone", mount_point="secret", raise_on_deleted_version=True)
        kv(jdoe).create_or_update_secret(path="users/jdoe/new", secret={"x": "2"}, mount_point="secret")
    finally:
        service.down()
        shutil.rmtree(root, ignore_errors=True)
    assert not service.running()


@pytest.fixture
def taken_cluster_port() -> Iterator[int]:
    """Hold API port + 1 of a port pair that is otherwise free; yields the API port."""
    for _ in range(50):
        holder = socket.socket()
        try:
            holder.bind(("127.0.0.1", 0))
        except OSError:
            holder.close()
            continue
        port = holder.getsockname()[1] - 1
        if port > 1024 and port_is_free(port):
            holder.listen()
            try:
                yield port
            finally:
                holder.close()
            return
        holder.close()
    pytest.fail("found no free port below a bound one")


@pytest.mark.parametrize("seen_by", ["pre-start check", "bao's own log"])
def test_taken_cluster_port_is_a_clear_error(
    taken_cluster_port: int, monkeypatch: pytest.MonkeyPatch, seen_by: str
) -> None:
    monkeypatch.setattr(openbao_module, "free_port", lambda count=1: taken_cluster_port)
    if seen_by == "bao's own log":
        # Simulate losing the race: the port looked free, then bao found it taken.
        monkeypatch.setattr(openbao_module, "port_is_free", lambda port, host="127.0.0.1": True)
    root = make_state_root()
    service = OpenBao(FacilityState.load(root))
    try:
        with pytest.raises(ServiceError) as caught:
            service.up()
        err = caught.value
        assert err.service == "openbao"
        assert str(taken_cluster_port + 1) in err.reason
        assert err.log == service.process.log_file and str(err.log) in str(err)
        assert err.log.exists()
        if seen_by == "bao's own log":
            assert "address already in use" in err.log.read_text()
        assert not service.running()
    finally:
        service.down()
        shutil.rmtree(root, ignore_errors=True)


# -- XRootD origin + XCache --------------------------------------------------------------

needs_xrootd = pytest.mark.skipif(
    not xrootd_module.XROOTD_BIN.exists(),
    reason=f"{xrootd_module.XROOTD_BIN} is absent (apt-get install xrootd-server xrootd-client)",
)


@pytest.fixture(scope="module")
def xrd_root() -> Iterator[Path]:
    root = make_state_root()
    yield root
    XRootD(FacilityState.load(root)).down()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def xrd(xrd_root: Path) -> dict:
    if not xrootd_module.XROOTD_BIN.exists():
        pytest.skip(f"{xrootd_module.XROOTD_BIN} is absent (apt-get install xrootd-server xrootd-client)")
    return XRootD(FacilityState.load(xrd_root)).up()


def put_rse_file(root: Path, name: str, size: int = 3 * 1024 * 1024 + 17) -> tuple[str, bytes]:
    """Write random bytes where the Rucio service keeps RSE data; return the logical path."""
    data = os.urandom(size)
    path = root / "rse" / "SITE1_USERDISK" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return f"/rse/SITE1_USERDISK/{name}", data


def read_root(url: str, logical_path: str) -> bytes:
    from XRootD import client as xrd_client

    with xrd_client.File() as f:
        status, _ = f.open(f"{url}/{logical_path}", timeout=10)
        assert status.ok, status.message
        status, data = f.read(timeout=10)
        assert status.ok, status.message
    return data


def origin_opens(info: dict, logical_path: str) -> int:
    """How often the origin opened ``logical_path`` (its ofs trace logs each open)."""
    lines = Path(info["origin_log"]).read_text(errors="replace").splitlines()
    return sum(1 for line in lines if "ofs_open" in line and f"fn={logical_path}" in line)


def test_xrootd_unavailable_without_binary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(xrootd_module, "XROOTD_BIN", tmp_path / "no-xrootd")
    with pytest.raises(Unavailable, match="apt-get install xrootd-server"):
        XRootD(FacilityState.load(tmp_path)).up()


def test_origin_serves_rse_files(xrd: dict, xrd_root: Path) -> None:
    logical, data = put_rse_file(xrd_root, "direct.bin")
    assert xrd["origin_url"] == f"root://127.0.0.1:{xrd['origin_port']}"
    assert read_root(xrd["origin_url"], logical) == data


def test_cache_serves_second_read_without_the_origin(xrd: dict, xrd_root: Path) -> None:
    logical, data = put_rse_file(xrd_root, "cached.bin")
    assert read_root(xrd["cache_url"], logical) == data
    opens_after_first = origin_opens(xrd, logical)
    assert opens_after_first >= 1, "the cold read must have gone to the origin (is the trace on?)"
    assert read_root(xrd["cache_url"], logical) == data
    assert origin_opens(xrd, logical) == opens_after_first
    # The cache keeps the file under its own root, in the origin's layout.
    assert (Path(xrd["cache_dir"]) / logical.lstrip("/")).exists()


def test_fsspec_reads_through_the_cache(xrd: dict, xrd_root: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    pytest.importorskip("fsspec_xrootd")
    logical, data = put_rse_file(xrd_root, "fsspec.bin", size=123_457)
    fs = fsspec.filesystem("root", hostid=xrd["cache_url"].removeprefix("root://"))
    # fsspec-xrootd 0.5.5 needs start/end spelled out.
    assert fs.cat_file(logical, start=None, end=None) == data


def test_servers_run_as_xrootd_on_loopback_only(xrd: dict, xrd_root: Path) -> None:
    service = XRootD(FacilityState.load(xrd_root))
    expected_uid = pwd.getpwnam("xrootd").pw_uid if os.geteuid() == 0 else os.geteuid()
    for server, port in ((service.origin, xrd["origin_port"]), (service.cache, xrd["cache_port"])):
        pid = server.running_pid()
        assert pid is not None, f"{server.name} is not running"
        assert process_uids(pid) == {expected_uid}
        addresses = listening_addresses(pid)
        assert port in {p for _, p in addresses}
        assert all(is_loopback(address) for address, _ in addresses), addresses


def test_second_xrootd_up_reuses(xrd: dict, xrd_root: Path) -> None:
    service = XRootD(FacilityState.load(xrd_root))
    pids = service.origin.running_pid(), service.cache.running_pid()
    assert service.up() == xrd
    assert (service.origin.running_pid(), service.cache.running_pid()) == pids


@needs_xrootd
def test_cache_survives_origin_stop_and_down_is_clean() -> None:
    root = make_state_root()
    service = XRootD(FacilityState.load(root))
    try:
        info = service.up()
        logical, data = put_rse_file(root, "survivor.bin")
        assert read_root(info["cache_url"], logical) == data
        service.origin.stop()
        assert read_root(info["cache_url"], logical) == data  # no origin left to ask

        # Half a facility is restarted whole by the next `up`.
        assert not service.running()
        info = service.up()
        assert service.running()
        assert read_root(info["cache_url"], logical) == data

        pids = [service.origin.running_pid(), service.cache.running_pid()]
        service.down()
        assert not any(pid_alive(pid) for pid in pids)
        assert port_is_free(info["origin_port"]) and port_is_free(info["cache_port"], info["cache_host"])
        assert not service.origin.pid_file.exists() and not service.cache.pid_file.exists()
    finally:
        service.down()
        shutil.rmtree(root, ignore_errors=True)


@needs_xrootd
@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the servers to another user")
def test_a_private_state_dir_keeps_what_xrootd_reads_outside_it() -> None:
    """A state dir user xrootd cannot enter (a clone under a 0700 home): the servers' files and the
    RSE data go to the facility's shared root instead, the state dir stays private, and it serves."""
    root = Path(tempfile.mkdtemp(prefix="af-facility-test-"))  # 0700: user xrootd cannot enter
    state = FacilityState.load(root)
    service = XRootD(state)
    try:
        info = service.up()
        assert service.running()
        assert stat.S_IMODE(root.stat().st_mode) == 0o700
        assert not Path(info["data_dir"]).is_relative_to(root) and not service.home.is_relative_to(root)
        assert FacilityState.load(root).placement["xrootd"] == str(service.home)  # recorded for every later up
        (Path(info["data_dir"]) / "probe.txt").write_text("served")
        (Path(info["data_dir"]) / "probe.txt").chmod(0o644)
        assert read_root(info["origin_url"], "/rse/probe.txt") == b"served"
    finally:
        service.down()
        shutil.rmtree(root, ignore_errors=True)
        if state.placement.get("shared") and not Path(state.placement["shared"]).is_relative_to(root):
            shutil.rmtree(state.placement["shared"], ignore_errors=True)
