"""Edge validation without servers: JSON bodies against their schemas, and safe workspace paths."""

from __future__ import annotations

import json
import os
import stat

import pytest

from af_lab.errors import BadRequest
from af_lab.paths import MAX_SEGMENTS, private_sqlite, resolve_inside
from af_lab.validation import BODY_SCHEMAS, MAX_DEPTH, parse_body

MOUNT = "af_lab.mounts.handlers.MountsHandler.post"
CLUSTER = "af_lab.clusters.handlers.ClustersHandler.post"
CREDS = "af_lab.vault.handlers.InstanceCredentialsHandler.put"


def refused(raw, key=MOUNT) -> BadRequest:
    with pytest.raises(BadRequest) as err:
        parse_body(raw if isinstance(raw, bytes) else json.dumps(raw).encode(), key)
    return err.value


def test_every_schema_names_handlers_that_exist():
    import importlib

    for key in BODY_SCHEMAS:
        module, cls, verb = key.rsplit(".", 2)
        handler = getattr(importlib.import_module(module), cls)
        assert callable(getattr(handler, verb)), key


def test_a_valid_body_passes_unchanged():
    body = {"did": "scope:name", "mode": "stream", "prefer_rses": ["A"], "lifetime_days": 3}
    assert parse_body(json.dumps(body).encode(), MOUNT) == body


@pytest.mark.parametrize(
    "body, field, rule",
    [
        ({"did": 5}, "did", "must be of type string"),
        ({"did": "a:b", "mode": "fast"}, "mode", 'one of "cache", "stream", "replica"'),
        ({"did": "a:b", "prefer_rses": ["x"] * 65}, "prefer_rses", "at most 64 items"),
        ({"did": "a:b", "prefer_rses": [1]}, "prefer_rses[0]", "must be of type string"),
        ({"did": "a:b", "lifetime_days": 1000}, "lifetime_days", "at most 365"),
        ({"did": "a:b", "target": "x" * 5000}, "target", "at most 1024 characters"),
        ({"did": "a:b", "bogus": 1}, "bogus", "unknown field"),
        ({}, "did", "required"),
    ],
)
def test_a_bad_field_is_named_with_its_rule(body, field, rule):
    err = refused(body)
    assert err.details["field"] == field and rule in err.details["rule"], err.to_json()
    assert err.status == 400


def test_cluster_profile_as_a_list_and_memory_of_thousands_of_digits():
    assert refused({"profile": ["local"]}, CLUSTER).details["field"] == "profile"
    assert refused({"memory": "9" * 5000}, CLUSTER).details["field"] == "memory"
    assert refused({"adapt": {"minimum": -1}}, CLUSTER).details["field"] == "adapt.minimum"


def test_credentials_are_bounded_in_length():
    assert refused({"auth_type": "userpass", "username": "u", "password": "p" * 5000}, CREDS).details["field"] == "password"


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000, 200_000])
def test_deep_nesting_is_a_400_not_a_recursion_error(depth):
    raw = ('{"did": ' + "[" * depth + "]" * depth + "}").encode()
    err = refused(raw)
    assert err.details["field"] == "body" and "nest" in err.details["rule"]


@pytest.mark.parametrize("raw", [b"[1]", b'"x"', b"\xff\xfe", b"{", ("{\"a\": " + "9" * 5000 + "}").encode()])
def test_non_objects_and_broken_json_are_400(raw):
    assert refused(raw).details["field"] == "body"


def test_a_path_that_leaves_or_breaks_is_refused(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    (root / "dangling").symlink_to(tmp_path / "nowhere")
    (root / "loop").symlink_to(root / "loop")
    (root / "out").symlink_to(tmp_path)
    (root / "dir").mkdir()
    cases = {
        "dangling/x": "links must resolve",
        "loop/x": "links must resolve",
        "loop": "links must resolve",
        "out/x": "inside the workspace",
        "../x": "no '..'",
        "a\nb": "no control characters",
        "x" * 5000: "characters",
        "/".join(["d"] * 3000): "characters",
        "/".join(["d"] * (MAX_SEGMENTS + 1)): "segments",
        "n" * 300: "bytes",
        "": "non-empty",
    }
    for value, rule in cases.items():
        with pytest.raises(BadRequest) as err:
            resolve_inside(root, value, "target")
        assert rule in err.value.details["rule"], (value[:40], err.value.details)
        assert err.value.details["field"] == "target"
    assert resolve_inside(root, "dir/new/file", "target") == root / "dir" / "new" / "file"
    # The last name itself may be a link af-lab made; only its parents are resolved then.
    assert resolve_inside(root, "dangling", "target", follow_last=False) == root / "dangling"


def test_a_database_and_its_wal_are_private_from_the_start(tmp_path):
    import sqlite3

    os.umask(0o022)
    db = private_sqlite(tmp_path / "state" / "x.sqlite")
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    companions = [p for p in db.parent.iterdir()]
    assert {p.name for p in companions} >= {"x.sqlite", "x.sqlite-wal", "x.sqlite-shm"}
    for p in companions:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    conn.close()
