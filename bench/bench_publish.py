"""Benchmark: af-lab Publish vs ``rucio upload`` of the same files to the same RSE, side by side, one run.

    .venv/bin/python bench/bench_publish.py                 # builds its own facility in a temp dir
    .venv/bin/python bench/bench_publish.py --facility DIR  # reuses one (python -m af_facility --dir DIR up)
    .venv/bin/python bench/bench_publish.py --facility DIR --baseline ../main  # + another checkout's af-lab, same run

What it does, all on 127.0.0.1:
  1. writes N random files (default 200 x 5 MiB = 1.05 GB, the peer figure's data set in
     shared/notes/peer-baselines.md section 2) into a workspace folder, and hard links of
     them under other names for the CLI (same bytes, other DIDs);
  2. reads every file once (both tools then read from the page cache alike), then in turn:
       rucio upload  ``rucio upload --rse SITE1_USERDISK --scope user.jdoe --lifetime 30d
                     <files> user.jdoe:<dataset>`` (rucio-clients' CLI, one file at a time)
       af-lab        a Jupyter server with af-lab; POST /af-lab/publish/jobs for the folder
                     into a new dataset with a 30-day rule; wall time until the job is done
                     (adler32 of every file, parallel copies verified on the RSE,
                     bulk registration, one rule), polled every 10 ms for the job document only
                     (``?limit=1``: no file rows, so the watching costs the server little);
       af-lab baseline  with --baseline, the same for another checkout's af-lab (own server,
                     other DIDs), so a before/after is side by side in one run;
  3. checks both results with rucio-clients (files in the dataset, rule OK, every replica
     AVAILABLE, sample bytes on the RSE equal to the source) and counts the REST calls each
     made in the Rucio server's access log.

Nothing is dropped from the page cache (like the peer figures), but dirty pages are written
back (``os.sync()``, untimed) before each contender: otherwise the one that runs later pays
the kernel's writeback throttling for the gigabytes written before it. Every process started here is stopped by PID.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from af_facility.facility import Facility  # noqa: E402
from af_facility.lab import aflab_config, seed_rucio_password  # noqa: E402
from af_facility.rucio_server import rucio_client  # noqa: E402
from bench._server import JupyterServer, remove_tree  # noqa: E402

SCOPE = "user.jdoe"
RSE = "SITE1_USERDISK"
LIFETIME_DAYS = 30
PY = Path(sys.executable)


# ---------------------------------------------------------------------- af-lab
class Lab(JupyterServer):
    """A Jupyter server with af-lab, configured like the demo facility, on a free loopback port."""

    def __init__(self, fac: Facility, work: Path, workspace: Path, concurrency: int, checkout: Path | None = None):
        """``checkout``: run the af-lab of another checkout (its PYTHONPATH), e.g. main for a before/after."""
        directory = work / ("lab" if checkout is None else "lab-baseline")
        shutil.rmtree(directory, ignore_errors=True)
        cfg = aflab_config(fac.state)
        cfg["AFLab"].update(cache_dir=str(directory / "cache"), state_dir=str(directory / "state"))
        cfg["AFLab"]["publish_defaults"] = {**cfg["AFLab"]["publish_defaults"], "concurrency": concurrency}
        cfg["ServerApp"] = {"jpserver_extensions": {"af_lab": True}}
        env = None if checkout is None else {**os.environ, "PYTHONPATH": str(checkout)}
        super().__init__(directory, cfg, root_dir=workspace, env=env)

    def publish(self, body: dict) -> tuple[dict, float]:
        """POST a publish job and wait until it ends; returns (job, wall seconds)."""
        t0 = time.perf_counter()
        code, job = self.call("POST", "/af-lab/publish/jobs", body)
        if code != 202:
            raise RuntimeError(f"publish: HTTP {code}: {job}")
        if job["state"] in ("queued", "running"):
            job = self.poll(
                f"/af-lab/publish/jobs/{job['id']}?limit=1", "job", lambda j: j["state"] not in ("queued", "running")
            )
        wall = time.perf_counter() - t0
        if job["state"] != "done":
            raise RuntimeError(f"publish ended {job['state']}: {job['message']}")
        return job, wall


# ---------------------------------------------------------------------- peer
def run_rucio_upload(fac: Facility, files: list[Path], dataset: str) -> float:
    rucio = PY.parent / "rucio"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUCIO_")}
    env["RUCIO_CONFIG"] = fac.state.services["rucio"]["client_configs"]["jdoe"]
    argv = [
        str(rucio),
        "upload",
        "--rse",
        RSE,
        "--scope",
        SCOPE,
        "--lifetime",
        str(LIFETIME_DAYS * 86400),
        *map(str, files),
        f"{SCOPE}:{dataset}",
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"rucio upload failed: {proc.stderr[-2000:]}")
    return elapsed


# ---------------------------------------------------------------------- checks
def access_lines(fac: Facility) -> int:
    path = Path(fac.state.services["rucio"]["logs"]["access"])
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def check(fac: Facility, dataset: str, sources: dict[str, Path]) -> dict:
    """Files, rule and replica states of ``dataset`` read back with rucio-clients; sample bytes compared."""
    with rucio_client(fac.state.services["rucio"]["client_configs"]["jdoe"]) as c:
        files = list(c.list_files(SCOPE, dataset))
        rules = list(c.list_did_rules(SCOPE, dataset))
        states: dict[str, int] = {}
        pfns = {}
        for rep in c.list_replicas([{"scope": SCOPE, "name": dataset}], all_states=True):
            state = rep["states"].get(RSE, "none")
            states[state] = states.get(state, 0) + 1
            pfns[rep["name"]] = rep["rses"].get(RSE, [None])[0]
    sample = sorted(sources)[:: max(1, len(sources) // 5)]
    same = all(Path(urlparse(pfns[n]).path).read_bytes() == sources[n].read_bytes() for n in sample)
    rule = rules[0] if rules else {}
    lifetime_days = (
        ((rule["expires_at"] - rule["created_at"]).total_seconds() / 86400) if rule.get("expires_at") else None
    )
    return {
        "files": len(files),
        "rules": len(rules),
        "rule_state": rule.get("state"),
        "rule_lifetime_days": round(lifetime_days, 2) if lifetime_days else None,
        "replica_states": states,
        "sample_bytes_equal": same,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--facility", help="reuse a facility directory (else one is built in a temp dir and removed)")
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--size-mib", type=float, default=5.0)
    ap.add_argument("--concurrency", type=int, default=4, help="publish_defaults.concurrency for af-lab")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument(
        "--baseline",
        help="another af-lab checkout (e.g. a worktree of main) published too, in the same run: before/after",
    )
    args = ap.parse_args()

    own = not args.facility
    root = Path(args.facility or tempfile.mkdtemp(prefix="af-bench-publish-")).resolve()
    root.chmod(0o755)
    fac = Facility(root)
    tag = secrets.token_hex(3)
    work = root / f"bench-publish-{tag}"
    lab = base = None
    try:
        if own:
            print(f"facility in {root} (rucio, openbao)")
            fac.up(["rucio", "openbao"])
        seed_rucio_password(fac.state)
        size = int(args.size_mib * (1 << 20))
        total = args.files * size
        ws = work / "ws"
        (ws / "results").mkdir(parents=True)
        (work / "cli").mkdir()
        af_files, cli_files = {}, {}
        for i in range(args.files):
            path = ws / "results" / f"out_{i:04d}.root"
            path.write_bytes(os.urandom(size))
            af_files[f"af{tag}.out_{i:04d}.root"] = path
            link = work / "cli" / f"cli{tag}.out_{i:04d}.root"
            os.link(path, link)  # same bytes, another DID name
            cli_files[link.name] = link
        for path in af_files.values():  # into the page cache once, for both tools alike
            path.read_bytes()
        print(
            f"data: {args.files} files x {args.size_mib:g} MiB = {total / 1e9:.3f} GB, RSE {RSE}, "
            f"rule lifetime {LIFETIME_DAYS} d"
        )

        lab = Lab(fac, work, ws, args.concurrency)
        base = Lab(fac, work, ws, args.concurrency, Path(args.baseline).resolve()) if args.baseline else None
        results: dict[str, dict] = {}

        os.sync()  # untimed: each contender starts with no dirty pages left by the data set or the one before
        calls0 = access_lines(fac)
        t_cli = run_rucio_upload(fac, sorted(cli_files.values()), f"cli_{tag}")
        calls_cli = access_lines(fac) - calls0
        results["rucio upload"] = {"seconds": t_cli, "rest_calls": calls_cli, **check(fac, f"cli_{tag}", cli_files)}

        for key, server, prefix in (("af-lab baseline", base, "bl"), ("af-lab", lab, "af")):
            if server is None:
                continue
            os.sync()
            calls0 = access_lines(fac)
            job, seconds = server.publish(
                {
                    "paths": ["results"],
                    "dataset": f"{prefix}_{tag}",
                    "name_prefix": f"{prefix}{tag}.",
                    "lifetime_days": LIFETIME_DAYS,
                }
            )
            calls = access_lines(fac) - calls0
            names = {f"{prefix}{tag}.{p.name}": p for p in af_files.values()}
            results[key] = {
                "seconds": seconds,
                "server_seconds": job["updated"] - job["created"],
                "phases": job.get("timings", {}),
                "rest_calls": calls,
                **check(fac, f"{prefix}_{tag}", names),
            }
        t_af = results["af-lab"]["seconds"]

        print()
        print(f"{'tool':15s} {'seconds':>8s} {'MB/s':>7s} {'REST calls':>10s}  files  rule            replicas")
        for name, r in results.items():
            print(
                f"{name:15s} {r['seconds']:8.2f} {total / 1e6 / r['seconds']:7.1f} {r['rest_calls']:10d}  "
                f"{r['files']:5d}  {str(r['rule_state']):4s} {r['rule_lifetime_days']} d   {r['replica_states']}"
                f"{'' if r['sample_bytes_equal'] else '  BYTES DIFFER'}"
            )
        for key in ("af-lab baseline", "af-lab"):
            if key in results:
                phases = results[key]["phases"].items()
                print(f"{key} phases: " + ", ".join(f"{k} {v:.2f} s" for k, v in phases))
        ratio = t_cli / t_af
        if base is not None:
            t_base = results["af-lab baseline"]["seconds"]
            print(f"\nbaseline af-lab ({args.baseline}) is {t_cli / t_base:.1f}x faster than rucio upload")
        print(
            f"\naf-lab is {ratio:.1f}x faster than rucio upload (target >= 10x; wall time POST -> job done, "
            f"server-side {results['af-lab']['server_seconds']:.2f} s; concurrency {args.concurrency})"
        )
        if args.json:
            Path(args.json).write_text(
                json.dumps(
                    {"files": args.files, "bytes": total, "ratio": ratio, "results": results}, indent=2, default=str
                )
            )
        ok = all(r["files"] == args.files and r["sample_bytes_equal"] for r in results.values())
        return 0 if ok else 1
    finally:
        if lab is not None:
            lab.stop()
        if base is not None:
            base.stop()
        remove_tree(work)
        if own:
            fac.down(log=lambda *_: None)
            remove_tree(root)


if __name__ == "__main__":
    sys.exit(main())
