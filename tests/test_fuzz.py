"""Every af-lab route under generated input (hypothesis), against a real server and facility.

A Jupyter server with af-lab runs as a subprocess against the session's facility
(real Rucio, OpenBao, XRootD, Dask), with its own workspace, cache and state. Each
generated request (method, path parameters, query, JSON body or broken bytes) must
get an answer below 500 whose body holds no traceback and no path of the server's
code; at the end the server's log holds no uncaught exception and nothing was
written outside the server's own directories. Then every 500 the hardening issue
reported is replayed and must be a 400 naming the field.

Side effects are kept out on purpose: credential writes and deletes go to instance
names that are not configured, and cluster creation always names a profile that
does not exist, so a generated body cannot log the user out or start clusters.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from af_lab.app import route_table
from af_lab.handlers import AFLabHandler
from af_lab.validation import BODY_SCHEMAS
from tests import server_process

pytestmark = pytest.mark.facility

EXAMPLES = int(os.environ.get("AF_FUZZ_EXAMPLES", "2100"))
METHODS = ("get", "post", "put", "patch", "delete")
CONFIGURED_INSTANCE = "demo"
SOURCE_DIRS = [str(Path(__file__).resolve().parent.parent / "af_lab"), "site-packages", sys.prefix]
ANSWERED: dict[str, int] = {}  # "METHOD route" -> requests sent; read by the summary test
STATUSES: dict[int, int] = {}


def _endpoints() -> list[tuple[str, str, type]]:
    out = []
    for pattern, handler in route_table():
        for method in METHODS:
            if getattr(handler, method) is not getattr(AFLabHandler, method):
                out.append((method.upper(), pattern, handler))
    return out


ENDPOINTS = _endpoints()
GROUP = re.compile(r"\(\?P<(\w+)>([^)]*)\)")

text = st.text(st.characters(codec="utf-8"), max_size=40)
odd = st.sampled_from([
    "", " ", "..", "../..", "%2e%2e", "\x00", "a\nb", "€", "\ud7ff", "x" * 5000, "9" * 400, "-1", "1e400", "nan",
    "inf", "0x10", "cms_opendata:*", "user.jdoe:../../etc/passwd", "/".join(["d"] * 3000), "scope:" + "n" * 600,
])  # fmt: skip
value = st.one_of(text, odd, st.integers().map(str), st.floats(allow_nan=True).map(str))
QUERY_KEYS = ["offset", "limit", "state", "format", "refresh", "q", "type", "filter", "cursor", "wait", "availability",
              "instance", "did", "expression", "topic", "x"]  # fmt: skip
query = st.dictionaries(st.sampled_from(QUERY_KEYS), value, max_size=4)

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), text,
                      odd)  # fmt: skip
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
                          max_leaves=12)  # fmt: skip


def _fields(method: str, handler: type) -> list[str]:
    schema = BODY_SCHEMAS.get(f"{handler.__module__}.{handler.__name__}.{method.lower()}", {})
    return sorted(schema.get("properties", {}))


@st.composite
def body(draw, method: str, handler: type):
    kind = draw(st.sampled_from(["fields", "fields", "json", "raw"]))
    if kind == "raw":
        depth = draw(st.integers(1, 100_000))
        return draw(st.sampled_from([
            b"", b"{", b"\xff\xfe\x00", b"[1, 2]", b'"text"', b"null", ('{"a": ' + "9" * 5000 + "}").encode(),
            ('{"did": ' + "[" * depth + "]" * depth + "}").encode(), ('{"x": ' + "{\"a\": " * depth + "1" + "}" * depth + "}").encode(),
        ]))  # fmt: skip
    if kind == "json":
        data = draw(json_value)
    else:
        names = _fields(method, handler) or ["x"]
        data = draw(st.dictionaries(st.sampled_from(names), json_value, max_size=len(names)))
    return json.dumps(data).encode()


@st.composite
def request_case(draw):
    method, pattern, handler = draw(st.sampled_from(ENDPOINTS))
    values = {}
    for name, _alternatives in GROUP.findall(pattern):
        if name == "action":
            values[name] = draw(st.sampled_from(["cancel", "retry"]))
            continue
        choice = draw(st.one_of(text, odd, st.sampled_from(["demo", "cms_opendata:x", "user.jdoe:nothing.root"])))
        if name == "instance" and pattern.startswith("credentials") and choice == CONFIGURED_INSTANCE:
            choice = "not-" + choice  # never log the shared test user out
        values[name] = quote(choice, safe="") or "x"
    path = GROUP.sub(lambda m: values[m.group(1)], pattern).replace("/?", "")
    payload = draw(body(method, handler)) if method in ("POST", "PUT", "PATCH") else None
    if handler.__name__ == "ClustersHandler" and method == "POST" and payload:
        try:
            data = json.loads(payload)
        except (ValueError, RecursionError):  # a deeply nested body is a case too, not a test error
            data = None
        if isinstance(data, dict):  # a profile that does not exist: validation runs, no cluster starts
            data["profile"] = "no-such-profile-" + str(data.get("profile"))[:20]
            payload = json.dumps(data).encode()
    return method, pattern, path, draw(query), payload


def _snapshot(directory: Path, skip: set[str]) -> set[str]:
    found = set()
    for dirpath, dirnames, filenames in os.walk(directory):
        rel = os.path.relpath(dirpath, directory)
        if rel.split(os.sep)[0] in skip:
            dirnames[:] = []
            continue
        found.update(os.path.join(rel, f) for f in filenames)
    return found


WRITABLE = {"ws", "cache", "state", "runtime", "data", "etc"}


@pytest.fixture(scope="module")
def fuzz_server(facility, tmp_path_factory):
    home = tmp_path_factory.mktemp("fuzz")
    server = server_process.start(facility, home)
    server.before = (_snapshot(home, WRITABLE | {"server.log"}), _snapshot(facility.state.rse_root, set()))
    yield server
    # A generated body may well be a valid cluster request: nothing it started may outlive the suite.
    assert server_process.stop_leaving_nothing(server, home) == []


def send(server, method: str, path: str, query: dict | None = None, payload: bytes | None = None):
    url = server.url(f"/af-lab/{path}")
    if path.startswith("events"):  # a stream: the first line is the answer
        with server.session.get(url, params=query, stream=True, timeout=20) as resp:
            first = next(resp.iter_lines(), b"") if resp.status_code == 200 else resp.content
            return resp.status_code, first.decode(errors="replace")
    resp = server.session.request(method, url, params=query, data=payload, timeout=120,
                                  headers={"Content-Type": "application/json"})  # fmt: skip
    return resp.status_code, resp.text


def check_answer(status: int, text: str, what: str) -> None:
    assert status < 500, f"{what} -> {status}: {text[:500]}"
    assert "Traceback" not in text and 'File "' not in text, f"{what} leaks a traceback: {text[:500]}"
    for source in SOURCE_DIRS:
        assert source not in text, f"{what} leaks an internal path ({source}): {text[:500]}"


@settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
          suppress_health_check=list(HealthCheck))  # fmt: skip
@given(case=request_case())
def _fuzz_once(server, case):
    method, pattern, path, query, payload = case
    status, answer = send(server, method, path, query, payload)
    ANSWERED[f"{method} {pattern}"] = ANSWERED.get(f"{method} {pattern}", 0) + 1
    STATUSES[status] = STATUSES.get(status, 0) + 1
    check_answer(status, answer, f"{method} /af-lab/{path[:200]} query={str(query)[:200]} body={(payload or b'')[:200]!r}")


def test_generated_requests_on_every_route_never_fail_the_server(fuzz_server, facility):
    _fuzz_once(fuzz_server)
    total = sum(ANSWERED.values())
    print(f"\nfuzz: {total} generated requests over {len(ANSWERED)} of {len(ENDPOINTS)} route/verb pairs; "
          f"statuses {dict(sorted(STATUSES.items()))}")
    assert total >= EXAMPLES
    assert set(ANSWERED) == {f"{m} {p}" for m, p, _ in ENDPOINTS}, "some route was never generated"
    log = (fuzz_server.dir / "server.log").read_text(errors="replace")
    assert "Uncaught exception" not in log and "Traceback" not in log, log[-3000:]
    files, rse = fuzz_server.before
    assert _snapshot(fuzz_server.dir, WRITABLE | {"server.log"}) == files, "written outside the server's own dirs"
    assert _snapshot(facility.state.rse_root, set()) == rse, "written to storage"


# ----------------------------------------------------------------- the 500s reported in the issue


def test_each_reported_500_is_a_400_naming_the_field(fuzz_server):
    ws = fuzz_server.root_dir
    (ws / "dangling").symlink_to(ws / "nowhere")
    (ws / "loop").symlink_to(ws / "loop")
    deep = "{\"did\": " + "[" * 100_000 + "]" * 100_000 + "}"
    cases = [
        ("PUT", "credentials/demo", {"auth_type": "userpass", "username": "jdoe", "password": "pa€€word"}, "password"),
        ("PUT", "credentials/demo", {"auth_type": "userpass", "username": "jdoe\r\nX-Evil: 1", "password": "p"}, "username"),
        ("PUT", "credentials/demo", {"auth_type": "userpass", "username": "jdoe", "password": "p" * 20_000}, "password"),
        ("PUT", "credentials/demo", {"auth_type": "oidc", "token": "t" * 40_000}, "token"),
        ("POST", "mounts", deep, "body"),
        ("POST", "publish/validate", deep, "body"),
        ("POST", "mounts", {"did": "user.jdoe:x.root", "target": "dangling/x"}, "target"),
        ("POST", "mounts", {"did": "user.jdoe:x.root", "target": "loop/x"}, "target"),
        ("POST", "mounts", {"did": "user.jdoe:x.root", "target": "t" * 5000}, "target"),
        ("POST", "mounts", {"did": "user.jdoe:x.root", "target": "/".join(["s"] * 3000)}, "target"),
        ("POST", "mounts", {"did": "user.jdoe:x.root", "target": "/".join(["s"] * 200)}, "target"),
        ("GET", "mounts/x/files?offset=" + "9" * 400, None, "offset"),
        ("GET", "publish/jobs/x?offset=" + "9" * 400, None, "offset"),
        ("POST", "clusters", {"profile": ["local"]}, "profile"),
        ("POST", "clusters", {"profile": "local", "memory": "9" * 5000}, "memory"),
        ("POST", "clusters", {"profile": "local", "memory": "9" * 300 + " GiB"}, "memory"),
        ("POST", "clusters", {"profile": "local", "memory": "1e400 GiB"}, "memory"),
        ("POST", "publish/validate", {"paths": ["loop"]}, "paths"),
        ("POST", "publish/validate", {"paths": ["loop/x.root"]}, "paths"),
    ]
    before = fuzz_server.session.get(fuzz_server.url("/af-lab/clusters")).json()["clusters"]
    for method, path, data, field in cases:
        payload = data.encode() if isinstance(data, str) else json.dumps(data).encode() if data is not None else None
        status, answer = send(fuzz_server, method, path, None, payload)
        what = f"{method} {path[:60]} {str(data)[:80]}"
        check_answer(status, answer, what)
        assert status == 400, f"{what} -> {status} {answer[:300]}"
        error = json.loads(answer)["error"]
        assert error["field"] == field and error["message"], (what, error)
    after = fuzz_server.session.get(fuzz_server.url("/af-lab/clusters")).json()["clusters"]
    assert len(after) == len(before), "a refused cluster request started a cluster"
