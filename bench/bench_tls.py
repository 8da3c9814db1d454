"""Benchmark: the cost of af-lab's cluster TLS on a 1,000-task graph, TLS vs plain TCP, side by side in one run.

    .venv/bin/python bench/bench_tls.py                 # 2 workers, 1,000 tasks, 7 runs
    .venv/bin/python bench/bench_tls.py --tasks 1000 --runs 9 --workers 2

Both sides are real ``dask scheduler`` + ``dask worker`` processes on 127.0.0.1
started the way af-lab's local backend starts them (a scheduler process, one
worker process group per job, 1 thread each):

  tls    ``tls://`` with a per-cluster CA and certificates made by
         ``af_lab.clusters.tls.create`` (scheduler, worker, client), encryption
         required — exactly what every af-lab cluster uses;
  plain  ``tcp://`` without security.

The graph: 1,000 independent tiny tasks (``inc``) and one reduction over them
(1,001 tasks), submitted and gathered by one client per run. Runs alternate
which side goes first; both clusters stay up for the whole run (connection
setup is not timed). Reports median and min per side and the ratio tls/plain
of the medians (target <= 1.15x). JSON results go to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from distributed import Client  # noqa: E402

from af_lab.clusters import tls  # noqa: E402


def inc(x: int) -> int:
    return x + 1


def total(xs: list[int]) -> int:
    return sum(xs)


class Cluster:
    """A scheduler process and N worker processes, plain or with af-lab's TLS files."""

    def __init__(self, root: Path, n_workers: int, files: tls.TLSFiles | None):
        self.root, self.n, self.files = root, n_workers, files
        self.procs: list[subprocess.Popen] = []
        self.address = ""

    def start(self) -> Cluster:
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
        sched_args = ["--protocol", "tcp"]
        if self.files is not None:
            env.update(tls.worker_env(str(self.files.directory)))
            sched_args = self.files.scheduler_args()
        scheduler_file = self.root / "scheduler.json"
        log = open(self.root / "scheduler.log", "ab")
        self.procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
             "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(scheduler_file), *sched_args],
            env=env, stdout=log, stderr=log, start_new_session=True,
        ))
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() or not scheduler_file.stat().st_size:
            assert time.monotonic() < deadline, (self.root / "scheduler.log").read_text()[-2000:]
            time.sleep(0.05)
        time.sleep(0.1)
        self.address = json.loads(scheduler_file.read_text())["address"]
        for i in range(self.n):
            wlog = open(self.root / f"worker-{i}.log", "ab")
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", self.address, "--name", str(i),
                 "--nthreads", "1", "--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0"],
                env=env, stdout=wlog, stderr=wlog, start_new_session=True,
            ))
        return self

    def client_kwargs(self) -> dict:
        return {"security": self.files.security("client")} if self.files is not None else {}

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def one_run(client: Client, tasks: int) -> float:
    start = time.perf_counter()
    futures = client.map(inc, range(tasks), pure=False)
    result = await client.submit(total, futures, pure=False)
    elapsed = time.perf_counter() - start
    assert result == sum(range(1, tasks + 1))
    await client.cancel(futures)
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="af-bench-tls-"))
    os.chmod(root, 0o700)
    clusters = {
        "tls": Cluster((root / "tls"), args.workers, tls.create(root / "tls" / "certs", "bench")),
        "plain": Cluster((root / "plain"), args.workers, None),
    }
    (root / "plain").mkdir()
    times: dict[str, list[float]] = {"tls": [], "plain": []}
    try:
        for c in clusters.values():
            c.start()
        clients = {}
        for name, c in clusters.items():
            clients[name] = await Client(c.address, asynchronous=True, timeout=60, **c.client_kwargs())
            await clients[name].wait_for_workers(args.workers, timeout=120)
            await one_run(clients[name], args.tasks)  # warm-up: imports, connections between workers
        for run in range(args.runs):
            order = ["tls", "plain"] if run % 2 == 0 else ["plain", "tls"]
            for name in order:
                times[name].append(await one_run(clients[name], args.tasks))
        for client in clients.values():
            await client.close()
    finally:
        for c in clusters.values():
            c.stop()
        shutil.rmtree(root, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["tls"] / med["plain"]
    print(f"{args.tasks + 1} tasks on {args.workers} workers, {args.runs} runs (alternating order)")
    for name in ("tls", "plain"):
        print(f"  {name:<6} median {med[name] * 1000:8.1f} ms   min {min(times[name]) * 1000:8.1f} ms")
    print(f"  ratio tls/plain (medians): {ratio:.3f}x   (target <= 1.15x)")
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "tls.json").write_text(json.dumps({"tasks": args.tasks + 1, "workers": args.workers, "runs": times,
                                              "median": med, "ratio": ratio}, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
