"""The HTCondor stand-in itself: it must reject what HTCondor rejects, so the cluster tests mean something."""

from __future__ import annotations

import json

import condor_standin
import pytest
from dask_jobqueue.htcondor import quote_arguments

SUBMIT = """\
MY.DaskWorkerName = "htcondor--$F(MY.JobId)--"
RequestCpus = MY.DaskWorkerCores
RequestMemory = floor(MY.DaskWorkerMemory / 1048576)
RequestDisk = floor(MY.DaskWorkerDisk / 1024)
MY.JobId = "$(ClusterId).$(ProcId)"
MY.DaskWorkerCores = 2
MY.DaskWorkerMemory = 2147483648
MY.DaskWorkerDisk = 1073741824
{extra}
Arguments = "{args}"
Executable = /bin/sh
Queue
"""


@pytest.fixture
def condor(tmp_path):
    env = condor_standin.environment(tmp_path / "q")

    def run(command, *args):
        return condor_standin.run(command, *args, env=env)

    def submit(args=("-c", "sleep 60"), extra=""):
        path = tmp_path / f"job{len(list(tmp_path.glob('job*')))}.sub"
        path.write_text(SUBMIT.format(args=quote_arguments(list(args)), extra=extra))
        return run("condor_submit", str(path))

    run.submit, run.dir = submit, tmp_path / "q"
    yield run
    run("condor_rm", "-all")
    condor_standin.kill_all(condor_standin.job_processes(tmp_path / "q"))


def test_arguments_round_trip_dask_jobqueue_quoting(condor, tmp_path):
    tricky = "it's \"quoted\"; echo 'a  b'"
    out = tmp_path / "args.json"
    script = f"import json,sys; json.dump(sys.argv[1:], open({str(out)!r}, 'w'))"
    result = condor.submit(args=("-c", f"exec python3 -c \"{script}\" \"$@\"", "sh", tricky, "x y"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("1 job(s) submitted to cluster 1.")
    condor_standin.wait_until_gone(condor_standin.job_processes(condor.dir))
    assert json.loads(out.read_text()) == [tricky, "x y"]


def test_requests_are_evaluated_and_reported_by_condor_q(condor):
    assert condor.submit(extra='MY.Note = "two words"').returncode == 0
    q = condor("condor_q", "-af:jt", "RequestCpus", "RequestMemory", "RequestDisk", "DaskWorkerName", "Note",
               "NoSuchAttr", "JobStatus == 2")
    assert q.stdout == "1.0\t2\t2048\t1048576\thtcondor--1.0--\ttwo words\tundefined\ttrue\n"
    assert condor("condor_q", "-constraint", 'Note == "other"', "-af", "ClusterId").stdout == ""


@pytest.mark.parametrize(
    "extra, error",
    [
        ("this is not a submit command", "malformed"),
        ("MY.Broken = floor((", "Parse error of ClassAd expression"),
        ("RequestMemory = MY.Nope * 2", "does not evaluate to a number"),
        ("transfer_input_files = /no/such/file", "Can't open"),
        ("encrypt_input_files = /etc/hostname", "not in transfer_input_files"),
        ('environment = "A=1 B', "missing closing double quote"),
    ],
)
def test_malformed_descriptions_fail_like_condor_submit(condor, extra, error):
    result = condor.submit(extra=extra)
    assert result.returncode == 1
    assert result.stderr.startswith("ERROR: ") and error in result.stderr
    assert condor("condor_q", "-af", "ClusterId").stdout == ""


def test_unknown_schedd_and_bad_arguments_fail(condor, tmp_path):
    path = tmp_path / "ok.sub"
    path.write_text(SUBMIT.format(args="-c true", extra=""))
    result = condor("condor_submit", "-name", "elsewhere", str(path))
    assert result.returncode == 1 and "Can't find address of schedd elsewhere" in result.stderr
    path.write_text(SUBMIT.format(args="-c 'unterminated", extra=""))
    result = condor("condor_submit", str(path))
    assert result.returncode == 1 and "unterminated single quote" in result.stderr
    path.write_text("Executable = /bin/true\n")
    assert "no 'queue' statement" in condor("condor_submit", str(path)).stderr


def test_slots_hold_release_and_remove(condor):
    condor_standin.set_slots(condor.dir, 1)
    for _ in range(2):
        assert condor.submit().returncode == 0
    assert condor("condor_q", "-af:j", "JobStatus").stdout == "1.0 2\n2.0 1\n"
    assert condor("condor_hold", "-reason", "too big", "2.0").returncode == 0
    assert condor("condor_q", "-af:jt", "JobStatus", "HoldReason").stdout == "1.0\t2\tundefined\n2.0\t5\ttoo big\n"
    assert condor("condor_rm", "1").returncode == 0
    assert condor("condor_release", "2.0").returncode == 0
    assert condor("condor_q", "-af:j", "JobStatus").stdout == "2.0 2\n"  # the freed slot runs it
    missing = condor("condor_rm", "-constraint", "ClusterId == 99")
    assert missing.returncode == 1 and "Couldn't find" in missing.stderr
    assert condor("condor_rm", "7.0").returncode == 1
    assert condor("condor_rm", "-constraint", "ClusterId == 2").returncode == 0
    assert condor("condor_q", "-af", "ClusterId").stdout == ""
    assert not condor_standin.wait_until_gone(condor_standin.job_processes(condor.dir))


def test_stay_idle_and_submit_time_hold_attributes(condor):
    assert condor.submit(extra="MY.FakeCondorStayIdle = True").returncode == 0
    assert condor.submit(extra='MY.FakeCondorHoldReason = "policy"').returncode == 0
    assert condor("condor_q", "-af:jt", "JobStatus", "HoldReason").stdout == "1.0\t1\tundefined\n2.0\t5\tpolicy\n"
