"""Publish's pure parts: naming rules, request parsing, workspace paths, checksums, the job store.

No facility: these run first and fail fast. The end-to-end behaviour against the
real Rucio server is in test_publish.py.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import pytest
from rucio.common.checksum import adler32 as rucio_adler32

from af_lab.errors import BadRequest, Forbidden, NotFound
from af_lab.publish import naming, plan, workspace
from af_lab.publish.service import PublishService
from af_lab.publish.store import JobStore
from af_lab.rucio.upload import same_adler

INSTANCE = {"name": "demo", "account": "jdoe", "default_rse": "SITE1_USERDISK"}
DEFAULTS = {"rse": "SITE1_USERDISK", "lifetime_days": 30, "scope": "user.jdoe"}


def parse(body: dict, defaults: dict = DEFAULTS) -> plan.Request:
    return plan.parse(body, defaults, "jdoe", INSTANCE)


# ---------------------------------------------------------------------- naming


@pytest.mark.parametrize("name", ["hist.root", "a", "run_2024-07.v2.root", "x" * 250])
def test_valid_names(name):
    assert naming.check_name(name) == name


@pytest.mark.parametrize("name", ["", "bad name.root", ".hidden", "-dash", "é.root", "x" * 251, "a;b", None, 3])
def test_invalid_names_are_refused_with_a_suggestion(name):
    with pytest.raises(BadRequest) as err:
        naming.check_name(name)
    assert err.value.details["field"] == "name"
    if isinstance(name, str) and name and len(name) <= 250:
        assert naming.check_name(err.value.details["suggestion"])  # the suggestion itself is valid


def test_suggest_skips_taken_names_in_one_bulk_question():
    asked = []

    def taken(candidates):
        asked.append(list(candidates))
        return {"hist_v2.root", "hist_v3.root"}

    assert naming.suggest("hist.root", taken) == "hist_v4.root"
    assert naming.suggest("hist_v7.root", lambda c: set()) == "hist_v8.root"
    assert naming.suggest("data", lambda c: set()) == "data_v2"
    assert len(asked) == 1


def test_parse_did_defaults_the_scope_and_checks_both_parts():
    assert naming.parse_did("ds1", "user.jdoe", "dataset") == ("user.jdoe", "ds1")
    assert naming.parse_did("cms_embargoed:ds1", "user.jdoe", "dataset") == ("cms_embargoed", "ds1")
    with pytest.raises(BadRequest):
        naming.parse_did("user.jdoe:bad name", "user.jdoe", "dataset")
    with pytest.raises(BadRequest):
        naming.parse_did("bad scope!:x", "user.jdoe", "dataset")


# ---------------------------------------------------------------------- request parsing


def test_request_defaults_come_from_the_configuration():
    req = parse({"paths": ["out/hist.root"]})
    assert (req.scope, req.rse, req.lifetime_days, req.lifetime_s) == ("user.jdoe", "SITE1_USERDISK", 30, 30 * 86400)
    assert req.dataset is None and not req.dataset_given


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "paths"),
        ({"paths": []}, "paths"),
        ({"paths": [""]}, "paths"),
        ({"paths": ["a"], "lifetime_days": 0}, "lifetime_days"),
        ({"paths": ["a"], "lifetime_days": -3}, "lifetime_days"),
        ({"paths": ["a"], "lifetime_days": "30"}, "lifetime_days"),
        ({"paths": ["a"], "lifetime_days": True}, "lifetime_days"),
        ({"paths": ["a"], "lifetime_days": 10**9}, "lifetime_days"),
        ({"paths": ["a"], "scope": "no such scope"}, "scope"),
        ({"paths": ["a"], "dataset": "user.jdoe:bad name"}, "dataset"),
        ({"paths": ["a"], "dataset": None, "container": "c1"}, "container"),
        ({"paths": ["a"], "name": "bad/../name!"}, "name"),
        ({"paths": ["a"], "inputs": ["not-a-did"]}, "inputs"),
        ({"paths": ["a"], "allow_empty": "yes"}, "allow_empty"),
        ({"paths": ["a"], "surprise": 1}, "surprise"),
    ],
)
def test_bad_requests_name_the_field(body, field):
    with pytest.raises(BadRequest) as err:
        parse(body)
    assert err.value.details.get("field") == field, err.value.message


def test_no_lifetime_only_where_policy_allows_it():
    with pytest.raises(Forbidden) as err:
        parse({"paths": ["a"], "lifetime_days": None})
    assert "lifetime" in err.value.message
    assert parse({"paths": ["a"], "lifetime_days": None}, {**DEFAULTS, "allow_no_lifetime": True}).lifetime_s is None
    assert parse({"paths": ["a"], "lifetime_days": 0.5}).lifetime_s == 43200


def test_names_for_files_and_folders():
    req = parse({"paths": ["out"]})
    names = plan.names_for(req, [("out/a.root", "a.root", True), ("out/sub/b.root", "sub/b.root", True)])
    assert names == ["a.root", "sub.b.root"]
    req = parse({"paths": ["out"], "name_prefix": "v2."})
    assert plan.names_for(req, [("out/a.root", "a.root", True)]) == ["v2.a.root"]
    req = parse({"paths": ["x/hist.root"], "name": "zmumu.root"})
    assert plan.names_for(req, [("x/hist.root", "hist.root", False)]) == ["zmumu.root"]
    with pytest.raises(BadRequest, match="single file"):
        plan.names_for(req, [("a", "a", False), ("b", "b", False)])
    with pytest.raises(BadRequest, match="same DID name"):
        plan.names_for(parse({"paths": ["a", "b"]}), [("a/x.root", "x.root", False), ("b/x.root", "x.root", False)])
    with pytest.raises(BadRequest, match="not valid Rucio DID names") as err:
        plan.names_for(parse({"paths": ["out"]}), [("out/my file.root", "my file.root", True)])
    assert err.value.details["suggestion"] == "my_file.root"


def test_a_folder_defaults_to_a_dataset_named_after_it():
    req = parse({"paths": ["results/zmumu"]})
    assert plan.default_dataset(req, ["results/zmumu"]) == ("user.jdoe", "zmumu")
    assert plan.default_dataset(parse({"paths": ["a.root"]}), []) is None
    assert plan.default_dataset(parse({"paths": ["results/zmumu"], "dataset": None}), ["results/zmumu"]) is None


# ---------------------------------------------------------------------- workspace


@pytest.fixture
def ws(tmp_path) -> Path:
    root = tmp_path / "ws"
    (root / "out" / "sub").mkdir(parents=True)
    (root / "out" / "a.root").write_bytes(b"a" * 10)
    (root / "out" / "sub" / "b.root").write_bytes(b"b" * 20)
    (root / "out" / ".hidden").write_bytes(b"h")
    (root / "out" / ".ipynb_checkpoints").mkdir()
    (root / "out" / ".ipynb_checkpoints" / "x-checkpoint.ipynb").write_text("{}")
    (tmp_path / "secret.txt").write_text("not yours")
    return root


@pytest.mark.parametrize("rel", ["../secret.txt", "/etc/passwd", "out/../../secret.txt", "a\x00b"])
def test_paths_that_leave_the_workspace_are_refused(ws, rel):
    with pytest.raises(BadRequest, match="workspace"):
        workspace.resolve(ws, rel)


def test_symlinks_out_of_the_workspace_are_refused(ws, tmp_path):
    (ws / "link.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(BadRequest, match="outside the workspace"):
        workspace.collect(ws, ["link.txt"], 100)
    (ws / "out" / "inner-link").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(BadRequest, match="outside the workspace"):
        workspace.collect(ws, ["out"], 100)


def test_collect_walks_folders_and_skips_hidden_entries(ws):
    files, skipped = workspace.collect(ws, ["out", "out/a.root"], 100)
    assert [(f.rel, f.member, f.bytes, f.folder) for f in files] == [
        ("out/a.root", "a.root", 10, True),
        ("out/sub/b.root", "sub/b.root", 20, True),
    ]
    assert "out/.hidden" in skipped and "out/.ipynb_checkpoints/" in skipped


def test_collect_errors(ws):
    with pytest.raises(NotFound):
        workspace.collect(ws, ["nope.root"], 100)
    (ws / "empty").mkdir()
    with pytest.raises(BadRequest, match="no files"):
        workspace.collect(ws, ["empty"], 100)
    with pytest.raises(BadRequest, match="more than 1 files"):
        workspace.collect(ws, ["out"], 1)


def test_checksums_match_rucio_clients(tmp_path):
    for size in (0, 1, 4 * 1024 * 1024 + 7, 17 * 1024 * 1024 + 3):  # across read-size boundaries
        path = tmp_path / f"f{size}"
        data = os.urandom(size)
        path.write_bytes(data)
        seen = []
        adler, md5, n = workspace.checksums(path, seen.append)
        assert n == size == sum(seen)
        assert adler == rucio_adler32(str(path)) == f"{zlib.adler32(data) & 0xFFFFFFFF:08x}"
    assert same_adler("0001abcd", "1abcd") and not same_adler("1abcd", None)


def test_notebook_inputs_from_metadata(ws):
    (ws / "nb.ipynb").write_text(
        '{"cells": [], "metadata": {"af-lab": {"inputs": ["cms_opendata:a"], "mounts": [{"did": "cms_opendata:b"}]}}}'
    )
    assert workspace.notebook_inputs(ws, "nb.ipynb") == ["cms_opendata:a", "cms_opendata:b"]
    assert workspace.notebook_inputs(ws, "missing.ipynb") == []
    assert workspace.notebook_inputs(ws, "../x.ipynb") == []


async def test_git_commit_of_a_repository(tmp_path):
    assert await workspace.git_commit(tmp_path) is None
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
    }
    import subprocess

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, env=env)
    (tmp_path / "a.txt").write_text("1")
    subprocess.run(["git", "-C", str(tmp_path), "add", "a.txt"], check=True, env=env)
    subprocess.run(["git", "-C", str(tmp_path), "commit", "-qm", "x"], check=True, env=env)
    info = await workspace.git_commit(tmp_path)
    assert len(info["commit"]) == 40 and info["dirty"] is False
    (tmp_path / "a.txt").write_text("2")
    assert (await workspace.git_commit(tmp_path))["dirty"] is True


# ---------------------------------------------------------------------- embargo and store


@pytest.mark.parametrize(
    ("groups", "ok"),
    [
        (["/cms"], False),
        (["/cms/embargo"], True),
        (["/cms", "/cms/embargo/"], True),
        (["/cms/embargo/sub"], True),
        (["/cms/embargoX"], False),
        ([], False),
    ],
)
def test_group_membership_for_embargoed_scopes(groups, ok):
    assert PublishService._member(groups, "/cms/embargo") is ok


def test_job_store_round_trip(tmp_path):
    store = JobStore(tmp_path / "p.sqlite3")
    job = {
        "id": "j1",
        "state": "running",
        "request": {"scope": "user.jdoe"},
        "dataset": {"did": "user.jdoe:ds", "new": True},
    }
    store.create(
        job,
        [
            {"rel": "a", "name": "a", "bytes": 1, "mtime_ns": 2, "taken": True},
            {"rel": "b", "name": "b", "bytes": 3, "mtime_ns": 4},
        ],
    )
    store.update_files("j1", [(0, {"state": "stored", "pfn": "file://x"}), (1, {"adler32": "00000001"})])
    rows = store.files("j1")
    assert [(r["state"], r["pfn"], r["taken"], r["adler32"]) for r in rows] == [
        ("stored", "file://x", True, None),
        ("pending", None, False, "00000001"),
    ]
    assert store.counts("j1") == {"stored": (1, 1), "pending": (1, 3)}
    assert store.active_names() == {("user.jdoe", "a"): "j1", ("user.jdoe", "b"): "j1", ("user.jdoe", "ds"): "j1"}
    job["state"] = "done"
    store.save(job)
    assert store.active_names() == {}
    assert store.get("j1")["state"] == "done" and oct(os.stat(store.path).st_mode & 0o777) == "0o600"
    store.delete("j1")
    assert store.get("j1") is None and store.files("j1") == []
    store.close()
