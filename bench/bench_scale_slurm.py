"""Benchmark: "scale to N" on a real SLURM until N workers are connected, af-lab vs bare dask-jobqueue.

    .venv/bin/python bench/bench_scale_slurm.py                    # N = 1, 4, 8; 3 runs each
    .venv/bin/python bench/bench_scale_slurm.py --n 1 4 --runs 5
    .venv/bin/python bench/bench_scale_slurm.py --isolated         # both sides' workers in the facility's wrapper
    .venv/bin/python bench/bench_scale_slurm.py --bare-tls         # the bare side with TLS too (af-lab always has it)

Both sides submit to the same private SLURM (``af_facility.slurm``: munged, slurmctld,
slurmd on loopback, started in a temp dir for this run and stopped by PID) with the
same worker shape: 1 core, 1 thread, 256 MiB, nanny, 127.0.0.1, partition ``batch``.

  af-lab   a real ``jupyter server`` with af-lab (slurm profile, scheduler in its own
           process, jobs tagged, ``--export=NONE``); per run: POST a cluster (not timed),
           then timed ``PATCH /af-lab/clusters/<id> {"workers": N, "wait": 600}``, which
           answers when N workers are connected; DELETE (timed separately).
  bare     ``dask_jobqueue.SLURMCluster`` in this process (scheduler in process); per run:
           a new cluster (not timed), then timed ``cluster.scale(N)`` until N workers are
           connected, polled every 20 ms like af-lab's ``wait``; ``cluster.close()``.

Each new cluster sits idle for 1 s before the timed scale (both sides). Runs alternate
which side goes first; between runs SLURM has no job left and every job process exited.
Reports median and min per side and the ratio af-lab / bare of the medians (target <= 1.1x).
JSON results go to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from af_facility.base import FacilityState  # noqa: E402
from af_facility.slurm import Slurm  # noqa: E402
from bench._scale import SETTLE_S, timed_scale_and_close  # noqa: E402
from bench._server import JupyterServer, remove_tree  # noqa: E402

WORKER_ARGS = ["--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0"]
WALLTIME = "00:30:00"


class AFLabServer(JupyterServer):
    def __init__(self, root: Path, slurm: dict, python: str):
        profile = {
            "backend": "slurm",
            "display_name": "bench",
            "slurm_conf": slurm["conf"],
            "partition": slurm["partition"],
            "walltime": WALLTIME,
            "python": python,
            "defaults": {"cores": 1, "memory": "256 MiB"},
            "limits": {"max_workers": 64},
            "scheduler_host": "127.0.0.1",
            "worker_extra_args": WORKER_ARGS,
        }
        config = {
            "ServerApp": {"jpserver_extensions": {"af_lab": True, "dask_labextension": True,
                                                  "jupyter_server_proxy": True}},
            "AFLab": {"cluster_profiles": {"slurm": profile}, "default_cluster_profile": "slurm",
                      "state_dir": str(root / "state"), "cache_dir": str(root / "cache"),
                      "cluster_idle_timeout": 0, "cluster_survive_restart": False},
        }  # fmt: skip
        super().__init__(root, config, env={**os.environ, "PYTHONPATH": str(REPO)}, root_dir=root)

    def request(self, method: str, path: str, body=None):
        code, answer = self.call(method, path, body)
        if code >= 300:
            raise RuntimeError(f"{method} {path}: HTTP {code}: {answer}")
        return answer

    def run(self, n: int) -> tuple[float, float]:
        cluster = self.request("POST", "/af-lab/clusters", {"profile": "slurm"})
        time.sleep(SETTLE_S)
        t0 = time.perf_counter()
        model = self.request("PATCH", f"/af-lab/clusters/{cluster['id']}", {"workers": n, "wait": 600})
        scaled = time.perf_counter() - t0
        assert model["workers"] >= n, model
        t0 = time.perf_counter()
        self.request("DELETE", f"/af-lab/clusters/{cluster['id']}")
        return scaled, time.perf_counter() - t0


async def bare_run(n: int, slurm: dict, python: str, log_dir: Path, tls: bool = False) -> tuple[float, float]:
    from dask_jobqueue import SLURMCluster
    from distributed.security import Security

    log_dir.mkdir(parents=True, exist_ok=True)
    extra = {"security": Security.temporary(), "protocol": "tls://", "shared_temp_directory": str(log_dir)} if tls else {}
    cluster = await SLURMCluster(
        **extra,
        cores=1,
        processes=1,
        memory="256 MiB",
        queue=slurm["partition"],
        walltime=WALLTIME,
        python=python,
        worker_extra_args=WORKER_ARGS,
        scheduler_options={"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"},
        log_directory=str(log_dir),
        silence_logs=False,
        asynchronous=True,
    )
    return await timed_scale_and_close(cluster, n)


def settle(svc: Slurm) -> None:
    """No job in SLURM and no job process left before the next run."""
    env = {**os.environ, **svc.client_env()}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        queued = subprocess.run(["squeue", "-h", "-t", "PD,R,CG", "-o", "%i"], env=env, capture_output=True,
                                text=True).stdout.split()
        if not queued and not svc.leftover_pids():
            return
        time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--isolated", action="store_true", help="workers run in the facility's isolating wrapper")
    parser.add_argument("--bare-tls", action="store_true",
                        help="the bare side uses TLS too (Security.temporary()), to separate TLS cost from af-lab's")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (server log, job logs)")
    args = parser.parse_args()
    logging.getLogger("distributed").setLevel(logging.CRITICAL)

    root = Path(tempfile.mkdtemp(prefix="af-lab-bench-slurm-"))
    root.chmod(0o755)
    svc = Slurm(FacilityState.load(root))
    server = None
    results: dict[str, dict[int, list[dict]]] = {"af-lab": {}, "bare": {}}
    saved_env = dict(os.environ)
    try:
        info = svc.up()
        svc.state.services["slurm"] = info
        python = info["worker_python"] if args.isolated else sys.executable
        os.environ.update(svc.client_env())  # the bare side's sbatch/scancel
        server = AFLabServer(root, info, python)
        loop = asyncio.new_event_loop()
        for n in args.n:
            for run in range(args.runs):
                order = ["af-lab", "bare"] if run % 2 == 0 else ["bare", "af-lab"]
                for side in order:
                    settle(svc)
                    load = os.getloadavg()[0]
                    if side == "af-lab":
                        scaled, closed = server.run(n)
                    else:
                        scaled, closed = loop.run_until_complete(bare_run(n, info, python, root / "bare-logs", args.bare_tls))
                    results[side].setdefault(n, []).append({"scale_s": scaled, "close_s": closed, "load": load})
                    print(f"N={n:2d} run {run + 1}/{args.runs} {side:6s} scale {scaled:6.2f} s  close {closed:5.2f} s"
                          f"  (load {load:.1f})", flush=True)
        loop.close()
    finally:
        if server:
            server.stop()
        os.environ.clear()
        os.environ.update(saved_env)
        svc.down()
        if not args.keep:
            remove_tree(root)

    print(f"\n{'N':>3} | {'af-lab median (min)':>20} | {'bare median (min)':>18} | ratio (medians) | close af-lab / bare")
    summary = []
    for n in args.n:
        a = [r["scale_s"] for r in results["af-lab"][n]]
        b = [r["scale_s"] for r in results["bare"][n]]
        ca = statistics.median(r["close_s"] for r in results["af-lab"][n])
        cb = statistics.median(r["close_s"] for r in results["bare"][n])
        ratio = statistics.median(a) / statistics.median(b)
        summary.append({"n": n, "aflab_median_s": statistics.median(a), "bare_median_s": statistics.median(b),
                        "aflab_min_s": min(a), "bare_min_s": min(b), "ratio": ratio,
                        "close_aflab_s": ca, "close_bare_s": cb})
        print(f"{n:3d} | {statistics.median(a):9.2f} s ({min(a):5.2f}) | {statistics.median(b):8.2f} s ({min(b):5.2f})"
              f" | {ratio:13.2f}x | {ca:8.2f} s / {cb:5.2f} s")
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"scale-slurm-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"runs": {k: {str(n): v for n, v in r.items()} for k, r in results.items()},
                                "summary": summary, "isolated": args.isolated, "bare_tls": args.bare_tls, "nproc": os.cpu_count()}, indent=1))
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
