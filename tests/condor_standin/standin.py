"""A STAND-IN for HTCondor's command-line tools, for tests only. It is not HTCondor.

HTCondor daemons cannot be installed on the machines that run af-lab's tests, so
``condor_submit``, ``condor_q``, ``condor_rm``, ``condor_hold`` and
``condor_release`` (the wrappers in ``bin/``) all run this file. af-lab and
dask-jobqueue call them exactly as they call the real tools on a real submit
host; nothing in the product knows it is talking to a stand-in.

What is real
    * The submit description is parsed by HTCondor's own ``htcondor2.Submit``
      (macro expansion, ``$(ClusterId)``/``$(ProcId)``, ``$F()``), so a malformed
      description fails as it would on a real pool.
    * ``MY.*``/``+*`` attributes and the ``Request*`` expressions are parsed and
      evaluated with ``classad2``; ``condor_q -af`` and ``-constraint`` evaluate
      ClassAd expressions against the job ad.
    * ``Arguments`` and ``environment`` use HTCondor's "new syntax" quoting.
    * The output formats the callers parse (``N job(s) submitted to cluster C.``,
      ``-af`` columns, ``undefined``) and the exit codes (1 on failure, with the
      message on stderr).
    * Job lifecycle: Idle -> Running (the executable runs as a local process in a
      new session, in its own scratch directory with a condor-like minimal
      environment unless ``getenv = True``) -> Completed when it exits; Removed by
      ``condor_rm`` (process group SIGTERM, then SIGKILL); Held by ``condor_hold``
      (process killed, ``HoldReason`` set) and back to Idle by ``condor_release``.
    * ``transfer_input_files`` are copied into the scratch directory at job start
      (so a file rewritten after submit reaches a job that starts later).

What it does NOT emulate
    * No schedd, negotiator or matchmaking: an Idle job starts as soon as a slot
      is free, and the queue only advances when one of the commands runs.
      ``Requirements``, ``Rank``, universes (docker/container images) and the
      ``Request*`` limits are parsed but not enforced; there is one machine.
    * No real file transfer: ``encrypt_input_files`` is checked for consistency
      but nothing is encrypted; no output transfer, no spooling (``-spool`` is
      accepted and ignored), no ``Log`` event file.
    * No authentication, users, accounting groups, credmon or ``condor_history``;
      exit codes of finished jobs are unknown (they are reported Completed).
    * Only ``queue [N]`` queue statements.

Test controls (so the job-status view can be tested)
    * ``$FAKE_CONDOR_DIR`` (required): all state lives there.
    * ``$FAKE_CONDOR_DIR/config.json`` ``{"slots": N}`` or ``$FAKE_CONDOR_SLOTS``:
      at most N jobs run at once, the rest stay Idle (default: unlimited).
    * ``MY.FakeCondorStayIdle = True`` in a submit description: the job never
      matches a slot and stays Idle (like unsatisfiable Requirements).
    * ``MY.FakeCondorHoldReason = "..."``: the job is put on hold at submit with
      that HoldReason (like a submit-side policy hold).
    * ``condor_hold -reason "..." ID`` holds a queued or running job.
    * ``-name SCHEDD`` on any command fails unless SCHEDD is ``$FAKE_CONDOR_SCHEDD``
      (default ``standin``), like a real submit host that cannot locate a schedd.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

IDLE, RUNNING, REMOVED, COMPLETED, HELD = 1, 2, 3, 4, 5
KILL_GRACE_S = 3.0
# The environment a vanilla-universe job gets without getenv (plus _CONDOR_* and the job's own).
CONDOR_JOB_PATH = "/usr/local/bin:/usr/bin:/bin"


class CondorError(Exception):
    """Printed to stderr as ``ERROR: ...`` with exit code 1, like the real tools."""


# --------------------------------------------------------------------------- state
class Queue:
    """The job queue: one JSON file per job under ``queue/``, finished jobs under ``history/``."""

    def __init__(self, root: Path):
        self.root = root
        for sub in ("queue", "history", "execute"):
            (root / sub).mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def locked(self):
        with open(self.root / "lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def config(self) -> dict:
        path = self.root / "config.json"
        cfg = json.loads(path.read_text()) if path.exists() else {}
        if os.environ.get("FAKE_CONDOR_SLOTS"):
            cfg["slots"] = int(os.environ["FAKE_CONDOR_SLOTS"])
        return cfg

    def next_cluster_id(self) -> int:
        path = self.root / "next_cluster_id"
        cid = int(path.read_text()) if path.exists() else 1
        path.write_text(str(cid + 1))
        return cid

    def jobs(self) -> list[dict]:
        found = []
        for path in sorted(self.root.glob("queue/*.json")):
            with contextlib.suppress(OSError, ValueError):
                found.append(json.loads(path.read_text()))
        return sorted(found, key=lambda j: (j["ad"]["ClusterId"], j["ad"]["ProcId"]))

    def save(self, job: dict) -> None:
        path = self.root / "queue" / f"{job_id(job)}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(job))
        os.replace(tmp, path)

    def retire(self, job: dict) -> None:
        """The job leaves the queue (removed or completed)."""
        (self.root / "history" / f"{job_id(job)}.json").write_text(json.dumps(job))
        (self.root / "queue" / f"{job_id(job)}.json").unlink(missing_ok=True)


def job_id(job: dict) -> str:
    return f"{job['ad']['ClusterId']}.{job['ad']['ProcId']}"


def set_status(job: dict, status: int, **attrs) -> None:
    job["ad"]["JobStatus"] = status
    job["ad"]["EnteredCurrentStatus"] = int(time.time())
    job["ad"].update(attrs)


# --------------------------------------------------------------------------- processes
def _proc_start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks, or None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def process_alive(job: dict) -> bool:
    pid = job.get("pid")
    return bool(pid) and _proc_start_ticks(pid) == job.get("start_ticks")


def kill_job(job: dict) -> None:
    """SIGTERM the job's process group; the caller waits with :func:`reap`."""
    if process_alive(job):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(job["pid"], signal.SIGTERM)


def reap(jobs: list[dict]) -> None:
    """Wait up to KILL_GRACE_S for the jobs' processes to exit, then SIGKILL their groups."""
    deadline = time.monotonic() + KILL_GRACE_S
    while any(process_alive(j) for j in jobs) and time.monotonic() < deadline:
        time.sleep(0.05)
    for job in jobs:
        if process_alive(job):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(job["pid"], signal.SIGKILL)


def start_job(queue: Queue, job: dict) -> None:
    scratch = queue.root / "execute" / f"dir_{job_id(job)}_{int(time.time() * 1000)}"
    scratch.mkdir(parents=True)
    for src in job["transfer_input_files"]:
        shutil.copy2(src, scratch / Path(src).name)  # at start, like the shadow does
    (scratch / ".job.ad").write_text(str(make_ad(job)))
    if job["getenv"]:
        env = dict(os.environ)
    else:
        env = {"PATH": CONDOR_JOB_PATH, "HOME": str(scratch)}
    env.update(
        _CONDOR_SCRATCH_DIR=str(scratch),
        _CONDOR_JOB_AD=str(scratch / ".job.ad"),
        TMPDIR=str(scratch),
        TEMP=str(scratch),
        TMP=str(scratch),
        BATCH_SYSTEM="HTCondor",
    )
    env.update(job["environment"])
    with open(job["output"], "ab") as out, open(job["error"], "ab") as err:
        proc = subprocess.Popen(
            [job["executable"], *job["arguments"]],
            cwd=scratch,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,  # its own process group: condor_rm kills the whole job
        )
    job["pid"] = proc.pid
    job["start_ticks"] = _proc_start_ticks(proc.pid)
    job["scratch"] = str(scratch)
    set_status(job, RUNNING, JobCurrentStartDate=int(time.time()), RemoteHost="slot1@standin")


def advance(queue: Queue) -> None:
    """What the schedd would have done since the last command: notice finished jobs, start idle ones."""
    slots = queue.config().get("slots")
    running = 0
    for job in queue.jobs():
        if job["ad"]["JobStatus"] == RUNNING:
            if process_alive(job):
                running += 1
            else:
                set_status(job, COMPLETED, CompletionDate=int(time.time()))
                queue.retire(job)
    for job in queue.jobs():
        if job["ad"]["JobStatus"] != IDLE or evaluate(job, "FakeCondorStayIdle") is True:
            continue
        if slots is not None and running >= slots:
            break
        start_job(queue, job)
        queue.save(job)
        running += 1


# --------------------------------------------------------------------------- parsing
def split_new_syntax(text: str, what: str) -> list[str]:
    """HTCondor "new syntax" (the value is in double quotes): whitespace separates,
    single quotes group, and a doubled quote stands for itself."""
    out: list[str] = []
    cur: list[str] = []
    have = False
    in_single = False
    i = 0
    while i < len(text):
        c = text[i]
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if c == '"':
            if nxt != '"':
                raise CondorError(f"{what}: unescaped double quote inside a quoted value")
            cur.append('"')
            have = True
            i += 2
            continue
        if c == "'":
            if in_single and nxt == "'":
                cur.append("'")
                i += 2
                continue
            in_single = not in_single
            have = True
            i += 1
            continue
        if c.isspace() and not in_single:
            if have:
                out.append("".join(cur))
                cur, have = [], False
            i += 1
            continue
        cur.append(c)
        have = True
        i += 1
    if in_single:
        raise CondorError(f"{what}: unterminated single quote")
    if have:
        out.append("".join(cur))
    return out


def parse_arguments(raw: str) -> list[str]:
    raw = raw.strip()
    if not raw:
        return []
    if raw.startswith('"'):
        if len(raw) < 2 or not raw.endswith('"'):
            raise CondorError("Arguments: missing closing double quote")
        return split_new_syntax(raw[1:-1], "Arguments")
    return raw.split()  # old syntax


def parse_environment(raw: str) -> dict[str, str]:
    raw = raw.strip()
    if not raw:
        return {}
    if raw.startswith('"'):
        if len(raw) < 2 or not raw.endswith('"'):
            raise CondorError("environment: missing closing double quote")
        items = split_new_syntax(raw[1:-1], "environment")
    else:
        items = [s for s in raw.split(";") if s.strip()]
    env = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise CondorError(f"environment: {item!r} is not NAME=VALUE")
        env[name.strip()] = value
    return env


def make_ad(job: dict):
    """The job's ClassAd: plain attributes as values, ``MY.*`` attributes as expressions."""
    import classad2

    ad = classad2.ClassAd()
    for key, value in job["ad"].items():
        if value is not None:
            ad[key] = value
    for key, expr in job.get("exprs", {}).items():
        ad[key] = classad2.ExprTree(expr)
    return ad


def evaluate(job: dict, expr: str):
    """``expr`` evaluated in the job's ad; None when undefined."""
    import classad2

    value = classad2.ExprTree(expr).eval(make_ad(job))
    return None if isinstance(value, classad2.Value) else value  # Undefined or Error


REQUEST_NAMES = {
    "request_cpus": "RequestCpus",
    "requestcpus": "RequestCpus",
    "request_memory": "RequestMemory",
    "requestmemory": "RequestMemory",
    "request_disk": "RequestDisk",
    "requestdisk": "RequestDisk",
    "request_gpus": "RequestGPUs",
    "requestgpus": "RequestGPUs",
}
# request_memory is in MiB and request_disk in KiB when given with a unit suffix.
UNIT_SCALE = {"RequestMemory": 1024**2, "RequestDisk": 1024}
UNITS = {"": None, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def evaluate_request(name: str, expr: str, ad) -> int:
    import classad2

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)B?\s*", expr, re.IGNORECASE)
    if m and m.group(2) and name in UNIT_SCALE:
        return int(float(m.group(1)) * UNITS[m.group(2).upper()] // UNIT_SCALE[name])
    try:
        value = classad2.ExprTree(expr).eval(ad)
    except Exception as exc:
        raise CondorError(f"{name} = {expr}: not a valid ClassAd expression ({exc})") from None
    # classad2.Value (Undefined, Error) is an IntEnum: rule it out before the number check.
    if isinstance(value, (bool, classad2.Value)) or not isinstance(value, (int, float)):
        raise CondorError(f"{name} = {expr} does not evaluate to a number (got {value!r})")
    return int(value)


def check_schedd(args: list[str]) -> list[str]:
    """Strip -name/-pool (and their values); -name must be the stand-in's schedd."""
    rest = []
    it = iter(args)
    for arg in it:
        if arg in ("-name", "-pool"):
            value = next(it, None)
            if value is None:
                raise CondorError(f"{arg} requires an argument")
            wanted = os.environ.get("FAKE_CONDOR_SCHEDD", "standin")
            if arg == "-name" and value != wanted:
                raise CondorError(f"Can't find address of schedd {value}")
            continue
        rest.append(arg)
    return rest


# --------------------------------------------------------------------------- commands
def condor_submit(queue: Queue, args: list[str]) -> int:
    args = check_schedd(args)
    files = []
    for arg in args:
        if arg in ("-spool", "-terse", "-verbose", "-disable"):
            continue
        if arg.startswith("-"):
            raise CondorError(f"condor_submit: unknown option {arg} (the stand-in knows -name, -pool, -spool)")
        files.append(arg)
    if len(files) != 1:
        raise CondorError("condor_submit: exactly one submit description file is required")
    path = Path(files[0])
    try:
        text = path.read_text()
    except OSError as exc:
        raise CondorError(f"Can't open \"{path}\" with flags 00 ({exc.strerror})") from None
    if not re.search(r"^\s*queue\b", text, re.IGNORECASE | re.MULTILINE):
        raise CondorError(f"{path}: no 'queue' statement; nothing to submit")

    import classad2
    import htcondor2

    try:
        submit = htcondor2.Submit(text)
    except Exception as exc:
        raise CondorError(f"Submit description {path} is malformed: {exc}") from None
    qargs = (submit.getQArgs() or "").strip()
    if qargs and not qargs.isdigit():
        raise CondorError(f"queue {qargs}: the stand-in only supports 'queue [N]'")
    count = int(qargs or 1)
    iwd = Path(submit.get("initialdir") or submit.get("Iwd") or os.getcwd())

    with queue.locked():
        cid = queue.next_cluster_id()
        jobs = []
        for proc in range(count):
            submit["ClusterId"] = str(cid)
            submit["ProcId"] = str(proc)
            jobs.append(_build_job(submit, cid, proc, iwd, classad2))
        for job in jobs:
            queue.save(job)
        advance(queue)
    print("Submitting job(s)" + "." * count)
    print(f"{count} job(s) submitted to cluster {cid}.")
    return 0


def _build_job(submit, cid: int, proc: int, iwd: Path, classad2) -> dict:
    def get(*names: str) -> str:
        lowered = {k.lower(): k for k in submit.keys()}
        for n in names:
            if n.lower() in lowered:
                return submit.expand(lowered[n.lower()])
        return ""

    ad: dict = {"ClusterId": cid, "ProcId": proc, "QDate": int(time.time()), "Owner": os.environ.get("USER", "user")}
    exprs: dict[str, str] = {}
    for key in submit.keys():
        if key.startswith("MY.") or key.startswith("+"):
            name = key[3:] if key.startswith("MY.") else key[1:]
            expr = submit.expand(key)
            try:
                classad2.ExprTree(expr)
            except Exception as exc:
                raise CondorError(f"{key} = {expr}: Parse error of ClassAd expression ({exc})") from None
            exprs[name] = expr
    for key in submit.keys():
        canonical = REQUEST_NAMES.get(key.lower())
        if canonical:
            ad[canonical] = evaluate_request(canonical, submit.expand(key), make_ad({"ad": ad, "exprs": exprs}))
    ad.setdefault("RequestCpus", 1)

    executable = get("executable")
    if not executable:
        raise CondorError("No 'executable' parameter was provided")
    exe = Path(executable) if Path(executable).is_absolute() else iwd / executable
    if not os.access(exe, os.X_OK):
        raise CondorError(f"Executable file {exe} does not exist or is not executable")

    transfer = [s.strip() for s in get("transfer_input_files").split(",") if s.strip()]
    transfer = [str(Path(t) if Path(t).is_absolute() else iwd / t) for t in transfer]
    for t in transfer:
        if not Path(t).is_file():
            raise CondorError(f"Can't open \"{t}\" (listed in transfer_input_files)")
    encrypted = [s.strip() for s in get("encrypt_input_files").split(",") if s.strip()]
    names = {Path(t).name for t in transfer}
    for e in encrypted:
        if Path(e).name not in names:
            raise CondorError(f"encrypt_input_files lists {e}, which is not in transfer_input_files")
    if transfer and get("should_transfer_files").upper() == "NO":
        raise CondorError("transfer_input_files needs should_transfer_files = YES or IF_NEEDED")

    ad.update(
        Cmd=str(exe),
        Iwd=str(iwd),
        JobStatus=IDLE,
        EnteredCurrentStatus=int(time.time()),
        JobBatchName=get("batch_name") or None,
        TransferInput=",".join(transfer) or None,
        EncryptInputFiles=",".join(encrypted) or None,
    )
    job = {
        "ad": ad,
        "exprs": exprs,
        "executable": str(exe),
        "arguments": parse_arguments(get("arguments")),
        "environment": parse_environment(get("environment")),
        "getenv": get("getenv").strip().lower() in ("true", "yes", "1"),
        "transfer_input_files": transfer,
        "output": _output_path(get("output"), iwd),
        "error": _output_path(get("error"), iwd),
    }
    reason = evaluate(job, "FakeCondorHoldReason")
    if reason:
        set_status(job, HELD, HoldReason=str(reason), HoldReasonCode=26)  # 26: SubmittedOnHold-like policy
    return job


def _output_path(value: str, iwd: Path) -> str:
    if not value:
        return os.devnull
    p = Path(value)
    return str(p if p.is_absolute() else iwd / p)


def select(queue: Queue, ids: list[str], constraint: str | None) -> list[dict]:
    """The queued jobs matching any of ``ids`` ('C' or 'C.P') and the constraint."""
    for i in ids:
        if not re.fullmatch(r"\d+(\.\d+)?", i):
            raise CondorError(f"{i!r} is not a job id (CLUSTER or CLUSTER.PROC)")
    chosen = []
    for job in queue.jobs():
        jid, cid = job_id(job), str(job["ad"]["ClusterId"])
        if ids and jid not in ids and cid not in ids:
            continue
        if constraint and not _matches(job, constraint):
            continue
        chosen.append(job)
    return chosen


def _matches(job: dict, constraint: str) -> bool:
    import classad2

    try:
        return classad2.ExprTree(constraint).eval(make_ad(job)) is True
    except Exception as exc:
        raise CondorError(f"Invalid constraint {constraint!r}: {exc}") from None


def _split_options(args: list[str], with_value: tuple[str, ...]) -> tuple[list[str], dict[str, str], list[str]]:
    """(positional ids, options with values, -af attribute list)."""
    ids: list[str] = []
    opts: dict[str, str] = {}
    af: list[str] = []
    it = iter(args)
    for arg in it:
        if arg.startswith("-af") or arg.startswith("-autoformat"):
            opts["af"] = arg.partition(":")[2]
            af = list(it)
            break
        if arg in with_value:
            value = next(it, None)
            if value is None:
                raise CondorError(f"{arg} requires an argument")
            opts[arg] = value
        elif arg in ("-all", "-nobatch", "-allusers"):
            opts[arg] = "1"
        elif arg.startswith("-"):
            raise CondorError(f"unknown option {arg}")
        else:
            ids.append(arg)
    return ids, opts, af


def condor_q(queue: Queue, args: list[str]) -> int:
    ids, opts, attrs = _split_options(check_schedd(args), ("-constraint",))
    with queue.locked():
        advance(queue)
        jobs = select(queue, ids, opts.get("-constraint"))
    if "af" in opts:
        flags = opts["af"]
        sep = "\t" if "t" in flags else ("," if "," in flags else " ")
        for job in jobs:
            ad = make_ad(job)
            cols = [_format_af(ad, a) for a in attrs]
            if "j" in flags:
                cols.insert(0, job_id(job))
            print(sep.join(cols))
        return 0
    letters = {IDLE: "I", RUNNING: "R", REMOVED: "X", COMPLETED: "C", HELD: "H"}
    print(" ID        OWNER  ST CMD")
    for job in jobs:
        print(f" {job_id(job):9s} {job['ad']['Owner']:6s} {letters[job['ad']['JobStatus']]}  {job['ad']['Cmd']}")
    return 0


def _format_af(ad, expr: str) -> str:
    import classad2

    try:
        value = classad2.ExprTree(expr).eval(ad)
    except Exception:
        return "undefined"
    # classad2.Value is an IntEnum (Undefined == 2): test the type, never compare with ==.
    if isinstance(value, classad2.Value):
        return "undefined" if value is classad2.Value.Undefined else "error"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def condor_rm(queue: Queue, args: list[str]) -> int:
    ids, opts, _ = _split_options(check_schedd(args), ("-constraint",))
    if not ids and "-all" not in opts and "-constraint" not in opts:
        raise CondorError("condor_rm: no job ids given")
    with queue.locked():
        advance(queue)
        jobs = select(queue, ids, opts.get("-constraint"))
        for job in jobs:
            kill_job(job)
            set_status(job, REMOVED)
            queue.retire(job)
    reap(jobs)  # outside the lock: concurrent condor_rm calls must not wait for each other
    if "-constraint" in opts and not jobs:  # like the real tool: nothing matched is an error
        print(f"Couldn't find/remove all jobs matching constraint ({opts['-constraint']})", file=sys.stderr)
        return 1
    for i in ids:
        if not any(i in (job_id(j), str(j["ad"]["ClusterId"])) for j in jobs):
            print(f"Couldn't find/remove all jobs matching {i}", file=sys.stderr)
            return 1
    for job in jobs:
        print(f"Job {job_id(job)} marked for removal")
    return 0


def condor_hold(queue: Queue, args: list[str]) -> int:
    ids, opts, _ = _split_options(check_schedd(args), ("-reason", "-constraint"))
    reason = opts.get("-reason") or f"via condor_hold (by user {os.environ.get('USER', 'user')})"
    with queue.locked():
        advance(queue)
        jobs = [j for j in select(queue, ids, opts.get("-constraint")) if j["ad"]["JobStatus"] in (IDLE, RUNNING)]
        for job in jobs:
            kill_job(job)
            set_status(job, HELD, HoldReason=reason, HoldReasonCode=1)
            job.pop("pid", None)
            queue.save(job)
    if not jobs:
        print("Couldn't find/hold all jobs matching " + " ".join(ids), file=sys.stderr)
        return 1
    for job in jobs:
        print(f"Job {job_id(job)} held")
    return 0


def condor_release(queue: Queue, args: list[str]) -> int:
    ids, opts, _ = _split_options(check_schedd(args), ("-constraint",))
    with queue.locked():
        jobs = [j for j in select(queue, ids, opts.get("-constraint")) if j["ad"]["JobStatus"] == HELD]
        for job in jobs:
            set_status(job, IDLE, HoldReason=None)
            queue.save(job)
        advance(queue)
    for job in jobs:
        print(f"Job {job_id(job)} released")
    return 0 if jobs else 1


COMMANDS = {
    "condor_submit": condor_submit,
    "condor_q": condor_q,
    "condor_rm": condor_rm,
    "condor_hold": condor_hold,
    "condor_release": condor_release,
}


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] not in COMMANDS:
        print(f"usage: standin.py {{{'|'.join(COMMANDS)}}} ARGS...", file=sys.stderr)
        return 2
    root = os.environ.get("FAKE_CONDOR_DIR")
    if not root:
        print("ERROR: FAKE_CONDOR_DIR is not set (the HTCondor stand-in keeps its queue there)", file=sys.stderr)
        return 1
    try:
        return COMMANDS[argv[1]](Queue(Path(root)), argv[2:])
    except CondorError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
