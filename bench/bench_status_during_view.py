"""Benchmark: latency of GET /af-lab/status while a 50,000-file replica-mode mount builds its view.

    .venv/bin/python bench/bench_status_during_view.py --facility DIR   # a facility that is up
    options: --clients 50, --idle-seconds 10, --did scope:name (default: the facility's
    50,000-file dataset with real replicas, made first if missing: python -m af_facility big-dataset)

A replica-mode mount links every file to its replica on a locally mounted RSE: for the
big dataset that is 50,000 symlinks. Listing, mapping and linking run off the event loop,
so other requests keep being answered. This measures ``GET /af-lab/status`` from ``--clients``
concurrent clients, first on an idle server, then while the mount is being built, and
prints p50/p99 of both side by side (and the mount's own time). Targets: p99 <= 50 ms, 0 errors.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_mount import Lab  # noqa: E402

from af_facility.big_dataset import make_big_dataset  # noqa: E402
from af_facility.facility import Facility  # noqa: E402
from af_facility.lab import aflab_config, seed_rucio_password  # noqa: E402


def hammer(lab: Lab, stop: threading.Event, out: list[float], errors: list[str]) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        code, data = lab.call("GET", "/af-lab/status", timeout=60)
        out.append((time.perf_counter() - t0) * 1000)
        if code != 200:
            errors.append(f"{code}: {str(data)[:200]}")


def measure(lab: Lab, clients: int, until) -> tuple[list[float], list[str]]:
    stop, samples, errors = threading.Event(), [], []
    threads = [threading.Thread(target=hammer, args=(lab, stop, samples, errors)) for _ in range(clients)]
    for t in threads:
        t.start()
    try:
        until()
    finally:
        stop.set()
        for t in threads:
            t.join()
    return samples, errors


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100)[int(p) - 1] if len(values) > 1 else (values or [float("nan")])[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--facility", required=True, help="a facility directory that is up")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--idle-seconds", type=float, default=10.0)
    ap.add_argument("--did", help="a dataset whose replicas are on a mounted RSE (default: the facility's big one)")
    args = ap.parse_args()
    fac = Facility(Path(args.facility).resolve())
    seed_rucio_password(fac.state)
    if not args.did:
        t0 = time.monotonic()
        args.did = make_big_dataset(fac.state)["did"]
        print(f"{args.did} ready in {time.monotonic() - t0:.0f} s (python -m af_facility big-dataset)")
    rses = fac.state.services["rucio"]["rses"]
    work = Path(args.facility) / "bench-work"
    work.mkdir(exist_ok=True)
    lab = Lab(fac, work, "status-view")
    try:
        inst = lab.call("GET", "/af-lab/rucio/instances")[1]["instances"][0]["name"]
        print(f"server up; instance {inst}; {args.clients} clients on GET /af-lab/status")
        idle, idle_errors = measure(lab, args.clients, lambda: time.sleep(args.idle_seconds))
        lab.stop()
        # The same server configuration, plus every RSE mounted here at its own path.
        instances = [{**i, "rse_mounts": dict(rses)} for i in aflab_config(fac.state)["AFLab"]["rucio_instances"]]
        lab = Lab(fac, work, "status-view", rucio_instances=instances)
        result: dict = {}

        def do_mount() -> None:
            result["mount"], result["wall"] = lab.mount(args.did, mode="replica")

        busy, busy_errors = measure(lab, args.clients, do_mount)
        m = result["mount"]
        print(f"mount: {m['files']['total']:,} files, replica mode, {result['wall']:.1f} s to ready")
        print(f"{'':22}{'n':>7}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
        for label, samples, errors in (("idle", idle, idle_errors), ("while the view builds", busy, busy_errors)):
            print(f"{label:22}{len(samples):>7}{pct(samples, 50):>10.1f}{pct(samples, 99):>10.1f}{len(errors):>8}")
    finally:
        lab.stop()


if __name__ == "__main__":
    main()
