"""Benchmark: "scale to N" until N workers are connected, af-lab vs bare dask-jobqueue, same HTCondor stand-in.

    .venv/bin/python bench/bench_scale.py                       # N = 1, 4, 16; 5 runs each
    .venv/bin/python bench/bench_scale.py --n 1 4 --runs 5

Both sides submit through ``tests/condor_standin`` (condor_submit/condor_rm on
$PATH; a stand-in, not HTCondor: jobs start at once) with the same worker shape:
1 core, 1 thread, 256 MiB, 1 GiB disk, nanny, 127.0.0.1.

  af-lab   a real ``jupyter server`` with af-lab (htcondor profile, scheduler in its
           own process); per run: POST a cluster (not timed), then timed
           ``PATCH /af-lab/clusters/<id> {"workers": N, "wait": 600}``, which answers
           when N workers are connected; DELETE (timed separately).
  bare     ``dask_jobqueue.HTCondorCluster`` in this process (scheduler in process);
           per run: a new cluster (not timed), then timed ``cluster.scale(N)`` until
           N workers are connected, polled like af-lab's ``wait`` (every 20 ms);
           ``cluster.close()`` (timed separately).

Each new cluster sits idle for 1 s before the timed scale (both sides).
Runs alternate which side goes first. Between runs every job process has exited.
Reports median and min per side and the ratio af-lab / bare of the medians
(target <= 1.1x). JSON results go to bench/results/. Every process is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

import condor_standin  # noqa: E402

from bench._scale import SETTLE_S, timed_scale_and_close  # noqa: E402
from bench._server import JupyterServer, remove_tree  # noqa: E402

WORKER_ARGS = ["--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0"]


# ------------------------------------------------------------------------------------- af-lab
class AFLabServer(JupyterServer):
    """af-lab with one htcondor profile that submits through the stand-in condor CLI."""

    def __init__(self, root: Path, env: dict[str, str]):
        profile = {
            "backend": "htcondor",
            "display_name": "bench",
            "defaults": {"cores": 1, "memory": "256 MiB", "disk": "1 GiB"},
            "limits": {"max_workers": 64},
            "scheduler_host": "127.0.0.1",
            "worker_extra_args": WORKER_ARGS,
        }
        config = {
            "ServerApp": {"jpserver_extensions": {"af_lab": True, "dask_labextension": True,
                                                  "jupyter_server_proxy": True}},
            "AFLab": {"cluster_profiles": {"htcondor": profile}, "default_cluster_profile": "htcondor",
                      "state_dir": str(root / "state"), "cache_dir": str(root / "cache"),
                      "cluster_idle_timeout": 0, "cluster_survive_restart": False},
        }  # fmt: skip
        super().__init__(root, config, env={**os.environ, **env, "PYTHONPATH": str(REPO)}, root_dir=root)

    def request(self, method: str, path: str, body=None):
        code, answer = self.call(method, path, body)
        if code >= 300:
            raise RuntimeError(f"{method} {path}: HTTP {code}: {answer}")
        return answer

    def run(self, n: int) -> tuple[float, float]:
        cluster = self.request("POST", "/af-lab/clusters", {"profile": "htcondor"})
        time.sleep(SETTLE_S)
        t0 = time.perf_counter()
        model = self.request("PATCH", f"/af-lab/clusters/{cluster['id']}", {"workers": n, "wait": 600})
        scaled = time.perf_counter() - t0
        assert model["workers"] >= n, model
        t0 = time.perf_counter()
        self.request("DELETE", f"/af-lab/clusters/{cluster['id']}")
        return scaled, time.perf_counter() - t0


# ------------------------------------------------------------------------------------- bare
async def bare_run(n: int, log_dir: Path) -> tuple[float, float]:
    from dask_jobqueue import HTCondorCluster

    cluster = await HTCondorCluster(
        cores=1,
        processes=1,
        memory="256 MiB",
        disk="1 GiB",
        worker_extra_args=WORKER_ARGS,
        scheduler_options={"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"},
        log_directory=str(log_dir),
        silence_logs=False,
        asynchronous=True,
    )
    return await timed_scale_and_close(cluster, n)


# ------------------------------------------------------------------------------------- driver
def settle(queues: list[Path]) -> None:
    """Wait until every job process of the previous run has exited (no overlap between runs)."""
    procs = [p for q in queues for p in condor_standin.job_processes(q)]
    left = condor_standin.wait_until_gone(procs, timeout=60)
    condor_standin.kill_all(left)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (server log, job logs)")
    args = parser.parse_args()
    # The in-process scheduler of the bare side logs every worker disconnect at teardown; not the point here.
    logging.getLogger("distributed").setLevel(logging.CRITICAL)

    root = Path(tempfile.mkdtemp(prefix="af-lab-bench-scale-"))
    queues = {"af-lab": root / "condor-aflab", "bare": root / "condor-bare"}
    server = None
    results: dict[str, dict[int, list[dict]]] = {"af-lab": {}, "bare": {}}
    saved_env = dict(os.environ)
    try:
        os.environ.update(condor_standin.environment(queues["bare"]))
        server = AFLabServer(root, condor_standin.environment(queues["af-lab"]))
        loop = asyncio.new_event_loop()
        for n in args.n:
            for run in range(args.runs):
                order = ["af-lab", "bare"] if run % 2 == 0 else ["bare", "af-lab"]
                for side in order:
                    settle(list(queues.values()))
                    load = os.getloadavg()[0]
                    if side == "af-lab":
                        scaled, closed = server.run(n)
                    else:
                        scaled, closed = loop.run_until_complete(bare_run(n, root / "bare-logs"))
                    results[side].setdefault(n, []).append({"scale_s": scaled, "close_s": closed, "load": load})
                    print(
                        f"N={n:2d} run {run + 1}/{args.runs} {side:6s} scale {scaled:6.2f} s  close {closed:5.2f} s"
                        f"  (load {load:.1f})",
                        flush=True,
                    )
        loop.close()
    finally:
        if server:
            server.stop()
        os.environ.clear()
        os.environ.update(saved_env)
        settle(list(queues.values()))
        condor_standin.kill_all(condor_standin.processes_mentioning(str(root)))
        if not args.keep:
            remove_tree(root)

    print()
    print(
        f"{'N':>3} | {'af-lab median (min)':>20} | {'bare median (min)':>18} | ratio (medians) | "
        f"{'close af-lab / bare':>20}"
    )
    print("----|" + "-" * 22 + "|" + "-" * 20 + "|-----------------|" + "-" * 21)
    summary = []
    for n in args.n:
        a = [r["scale_s"] for r in results["af-lab"][n]]
        b = [r["scale_s"] for r in results["bare"][n]]
        ca = statistics.median(r["close_s"] for r in results["af-lab"][n])
        cb = statistics.median(r["close_s"] for r in results["bare"][n])
        ratio = statistics.median(a) / statistics.median(b)
        summary.append(
            {
                "n": n,
                "aflab_median_s": statistics.median(a),
                "bare_median_s": statistics.median(b),
                "aflab_min_s": min(a),
                "bare_min_s": min(b),
                "ratio": ratio,
                "close_aflab_s": ca,
                "close_bare_s": cb,
            }
        )
        print(
            f"{n:3d} | {statistics.median(a):9.2f} s ({min(a):5.2f}) | {statistics.median(b):8.2f} s ({min(b):5.2f})"
            f" | {ratio:13.2f}x | {ca:8.2f} s / {cb:5.2f} s"
        )
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"scale-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(
        json.dumps(
            {
                "runs": {k: {str(n): v for n, v in r.items()} for k, r in results.items()},
                "summary": summary,
                "nproc": os.cpu_count(),
            },
            indent=1,
        )
    )
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
