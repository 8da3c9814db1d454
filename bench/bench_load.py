"""Benchmark: 50 concurrent clients on cached listings, the mounts list and the status, for 60 s.

    .venv/bin/python bench/bench_load.py                  # builds its own facility in a temp dir
    .venv/bin/python bench/bench_load.py --facility DIR   # reuses one (python -m af_facility --dir DIR up)
    options: --clients 50, --seconds 60, --did scope:name (a dataset whose listing is cached first),
             --during-view (a 50,000-file replica-mode mount is built meanwhile, see below),
             --floor (then the same clients on Jupyter Server's own GET /api/status, as a floor)

One af-lab Jupyter server (a subprocess, loopback only) against the facility. Before
the clock starts: one mount (so the mounts list has an entry), the dataset's content
and a search listed once (so they are served from the listing cache). Then each client
(a thread with its own kept-alive HTTP connection) loops over, in turn:
  ``GET /af-lab/rucio/instances/demo/dids/<did>/content?limit=200``   cached listing
  ``GET /af-lab/rucio/instances/demo/dids?q=<scope>:*&type=dataset``  cached search
  ``GET /af-lab/mounts``
  ``GET /af-lab/status``                                              probes every service
until the time is up. Reported: requests, errors (any status but 200, or no answer
within 30 s), throughput, p50/p99 per kind and overall. Targets: p99 <= 50 ms, 0 errors.
``--during-view``: when the clock starts, a replica-mode mount of the facility's 50,000-file
dataset with real replicas (``python -m af_facility big-dataset``, made first if missing)
is posted; the run lasts at least until it is ready, and the requests sent while it was
being built are also reported on their own. ``--floor``: a second phase of the same length
where every client asks Jupyter Server's own ``GET /api/status`` (no af-lab code): what the
server framework alone costs on this machine under this load.
Every process started here is stopped by PID.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from af_facility.big_dataset import make_big_dataset  # noqa: E402
from af_facility.facility import Facility  # noqa: E402
from af_facility.lab import DEMO_INSTANCE, aflab_config, seed_rucio_password  # noqa: E402
from bench._server import JupyterServer, remove_tree  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def client(port: int, headers: dict, paths: list[tuple[str, str]], until, out: list, errors: list) -> None:
    """``until()``: whether to stop. ``out`` gets (kind, seconds, start time) per answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    i = 0
    while not until():
        kind, path = paths[i % len(paths)]
        i += 1
        t0 = time.perf_counter()
        try:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            resp.read()
            status = resp.status
        except (OSError, http.client.HTTPException) as exc:
            errors.append((kind, type(exc).__name__))
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            continue
        elapsed = time.perf_counter() - t0
        if status != 200:
            errors.append((kind, status))
        out.append((kind, elapsed, t0))
    conn.close()


def run_clients(server: JupyterServer, n: int, paths: list, until) -> tuple[list, list, float]:
    out: list[tuple[str, float, float]] = []
    errors: list = []
    threads = [threading.Thread(target=client, args=(server.port, server.headers, paths[i % len(paths):]
                                                      + paths[:i % len(paths)], until, out, errors))
               for i in range(n)]  # fmt: skip
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out, errors, time.monotonic() - t0


def report(title: str, out: list, errors: list, wall: float, kinds: tuple[str, ...]) -> dict:
    all_ms = [e * 1000 for _k, e, _t in out]
    print(f"\n{title}: {wall:.0f} s, {len(out)} requests ({len(out) / max(wall, 1e-9):.0f}/s), {len(errors)} errors")
    result: dict = {"seconds": round(wall, 1), "requests": len(out), "errors": len(errors), "per_kind": {}}
    for kind in kinds:
        ms = [e * 1000 for k, e, _t in out if k == kind]
        p50, p99 = statistics.median(ms) if ms else float("nan"), percentile(ms, 0.99)
        result["per_kind"][kind] = {"n": len(ms), "p50_ms": round(p50, 1), "p99_ms": round(p99, 1)}
        print(f"  {kind:8s} n={len(ms):6d}  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms")
    p50, p99 = statistics.median(all_ms) if all_ms else float("nan"), percentile(all_ms, 0.99)
    result.update(p50_ms=round(p50, 1), p99_ms=round(p99, 1))
    print(f"  all      n={len(all_ms):6d}  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms   (target p99 <= 50 ms, 0 errors)")
    if errors:
        print(f"  first errors: {errors[:5]}")
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--facility", help="an existing facility directory (rucio, openbao, xrootd, demo up)")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--did", default="cms_opendata:Run2012B_DoubleMuParked")
    ap.add_argument("--during-view", action="store_true", help="build a 50,000-file replica-mode mount meanwhile")
    ap.add_argument("--floor", action="store_true", help="then the same load on Jupyter Server's GET /api/status")
    args = ap.parse_args(argv)

    own = args.facility is None
    root = Path(args.facility) if args.facility else Path(tempfile.mkdtemp(prefix="af-bench-load-"))
    root.chmod(0o755)
    fac = Facility(root)
    work = Path(tempfile.mkdtemp(prefix="af-bench-load-work-"))
    server = None
    try:
        if own:
            fac.up(["rucio", "openbao", "xrootd", "demo", "dask"])
        seed_rucio_password(fac.state)
        settings = {**aflab_config(fac.state)["AFLab"], "cache_dir": str(work / "cache"),
                    "state_dir": str(work / "state")}  # fmt: skip
        big = None
        if args.during_view:
            big = make_big_dataset(fac.state)["did"]
            rses = fac.state.services["rucio"]["rses"]  # every RSE mounted here at its own path
            settings["rucio_instances"] = [{**i, "rse_mounts": dict(rses)} for i in settings["rucio_instances"]]
        server = JupyterServer(work, {"ServerApp": {"jpserver_extensions": {"af_lab": True}}, "AFLab": settings})
        scope = args.did.split(":", 1)[0]
        base = f"/af-lab/rucio/instances/{DEMO_INSTANCE}"
        paths = [
            ("listing", f"{base}/dids/{quote(args.did, safe='')}/content?limit=200"),
            ("search", f"{base}/dids?q={quote(scope)}:*&type=dataset"),
            ("mounts", "/af-lab/mounts"),
            ("status", "/af-lab/status"),
        ]
        # Warm: a mount to list, the listings in the cache, the Rucio token in memory.
        code, body = server.call("POST", "/af-lab/mounts", {"did": args.did})
        assert code in (200, 201), body
        for _kind, path in paths:
            code, body = server.call("GET", path)
            assert code == 200, (path, body)

        view: dict = {}
        if big:
            view_thread = threading.Thread(target=build_view, args=(server, big, view))
        end = time.monotonic() + args.seconds
        start = time.perf_counter()
        if big:
            view_thread.start()
        out, errors, wall = run_clients(
            server, args.clients, paths, lambda: time.monotonic() > end and (not big or "ended" in view)
        )
        floor = None
        if args.floor:
            end_floor = time.monotonic() + args.seconds
            floor = run_clients(
                server, args.clients, [("jupyter", "/api/status")], lambda: time.monotonic() > end_floor
            )
    finally:
        if server is not None:
            server.stop()
        if own:
            fac.down(log=lambda *_: None)
            remove_tree(root)
        if shutil.which("chattr"):  # mount views are immutable when the server ran as root
            subprocess.run(["chattr", "-R", "-f", "-i", str(work)], capture_output=True, timeout=300)
        remove_tree(work)

    kinds = ("listing", "search", "mounts", "status")
    result = {"clients": args.clients, **report(f"{args.clients} clients", out, errors, wall, kinds)}
    if big:
        began, ready = view.get("began", start), view.get("ready", float("inf"))
        during = [o for o in out if began <= o[2] <= ready]
        print(f"\nmount of {big} (replica mode): {view.get('summary', '?')}")
        result["during_view"] = report("requests sent while its view was built", during,
                                       [], min(ready, time.perf_counter()) - began, kinds)  # fmt: skip
        result["view"] = {k: v for k, v in view.items() if k in ("summary", "seconds", "error")}
    if floor:
        result["floor"] = report(f"{args.clients} clients on Jupyter Server's GET /api/status (floor)", *floor,
                                 ("jupyter",))  # fmt: skip
    print(json.dumps(result))
    return 0


def build_view(server: JupyterServer, did: str, view: dict) -> None:
    """POST a replica-mode mount of ``did`` and follow it until it has ended (into ``view``)."""
    view["began"] = time.perf_counter()
    try:
        code, body = server.call("POST", "/af-lab/mounts", {"did": did, "mode": "replica"})
        if code not in (200, 201):
            view["error"] = f"HTTP {code}: {body}"
            return
        mount = body["mount"]
        while mount["state"] not in ("ready", "failed", "cancelled"):
            time.sleep(1)
            mount = server.call("GET", f"/af-lab/mounts/{mount['id']}")[1]["mount"]
        view["ready"] = time.perf_counter()
        view["seconds"] = round(view["ready"] - view["began"], 1)
        view["summary"] = (
            f"{mount['state']}, {mount['files']['total']:,} files, {view['seconds']} s: {mount['message']}"
        )
    except Exception as exc:  # the load phase must end even if the mount could not be followed
        view["error"] = repr(exc)
    finally:
        view["ended"] = True


if __name__ == "__main__":
    sys.exit(main())
