"""Benchmark: listing a 50,000-file dataset, af-lab vs rucio-jupyterlab 41 vs the raw Rucio REST floor.

    .venv/bin/python bench/bench_listing.py                  # builds its own facility in a temp dir
    .venv/bin/python bench/bench_listing.py --facility DIR   # reuses one (python -m af_facility --dir DIR up)
    options: --did scope:name (default cms_opendata:SingleMu_50k), --runs N, --rjl-venv DIR (default
             .cache/venv-rjl; make it with `python3.11 -m venv .cache/venv-rjl && .cache/venv-rjl/bin/pip
             install rucio-jupyterlab==41.0.0 'jupyterlab>=4,<5'`), --no-rjl

Per run, one after the other against the same Rucio server (1 gunicorn thread, SQLite):
  raw     ``GET /dids/<scope>/<name>/files`` (x-json-stream, jdoe token) read to the end: the
          floor of a full file listing; also its time to the first line.
  af-lab  a fresh Jupyter server with af-lab (new state dir: empty listing cache, no token in
          memory; Vault login with the hub JWT, Rucio token from Vault or a new login):
          first page ``GET /af-lab/rucio/instances/demo/dids/<did>/content?limit=100`` (cold),
          then every page with ``limit=5000`` following the cursor (full listing, timed from
          the first request), then the whole listing again from the warm cache; and, in
          another fresh server, the cold first page of a small dataset (``--small-did``).
  rjl     a fresh rucio-jupyterlab server (new HOME: empty cache.db), replica mode as in
          shared/notes/peer-baselines.md 1c: ``GET /rucio-jupyterlab/files?did=`` cold. Its
          one answer is both its first page and its full listing.
Peak server RSS: /proc/<pid>/status VmRSS sampled every 10 ms while the listing runs, minus
the RSS just before it (the server is warmed with one cheap request first).
Every process started here is stopped by PID.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from af_facility.facility import Facility  # noqa: E402
from af_facility.lab import DEMO_INSTANCE, aflab_config, seed_rucio_password  # noqa: E402
from bench._server import JupyterServer, remove_tree  # noqa: E402

PY = Path(sys.executable)
MiB = 1024 * 1024


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class PeakRSS:
    """Samples a process's RSS in a thread; ``delta`` is the peak minus the RSS at start."""

    def __init__(self, pid: int):
        self.pid, self.base, self.peak = pid, rss(pid), 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                self.peak = max(self.peak, rss(self.pid))
            time.sleep(0.01)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss(self.pid))

    @property
    def delta(self) -> int:
        return self.peak - self.base


class Server(JupyterServer):
    """A Jupyter server subprocess, with requests-based GET/PUT (query parameters, timing of whole bodies)."""

    def __init__(self, python: Path, work: Path, config: dict, env: dict):
        super().__init__(work, config, python=python, env=env)
        self.http = requests.Session()
        self.http.headers.update(self.headers)

    def get(self, path: str, **params) -> requests.Response:
        return self.http.get(self.url(path), params=params, timeout=900)

    def put(self, path: str, body: dict) -> requests.Response:
        return self.http.put(self.url(path), json=body, timeout=900)


def clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith(("RUCIO_", "JUPYTER", "PYTHONPATH", "VIRTUAL_ENV"))}


# ---------------------------------------------------------------------- the three contenders
def run_raw(fac: Facility, did: str) -> dict:
    rucio = fac.state.services["rucio"]
    user = rucio["accounts"]["jdoe"]
    s = requests.Session()
    s.trust_env = False
    auth = s.get(
        rucio["url"] + "/auth/userpass",
        timeout=60,
        headers={"X-Rucio-Account": "jdoe", "X-Rucio-Username": user["username"], "X-Rucio-Password": user["password"]},
    )
    auth.raise_for_status()
    scope, name = did.split(":", 1)
    headers = {"X-Rucio-Auth-Token": auth.headers["X-Rucio-Auth-Token"], "Accept": "application/x-json-stream"}
    t0 = time.perf_counter()
    first, n = None, 0
    with s.get(
        f"{rucio['url']}/dids/{quote(scope)}/{quote(name)}/files", headers=headers, stream=True, timeout=900
    ) as r:
        r.raise_for_status()
        for line in r.iter_lines(chunk_size=65536):
            if line:
                n += 1
                first = first or time.perf_counter() - t0
    return {"first_line_s": first, "full_s": time.perf_counter() - t0, "files": n}


def run_aflab(fac: Facility, did: str, work: Path, first_only: bool = False) -> dict:
    cfg = aflab_config(fac.state)
    cfg["AFLab"].update(state_dir=str(work / "state"), cache_dir=str(work / "cache"))
    cfg["ServerApp"] = {"jpserver_extensions": {"af_lab": True}}
    server = Server(PY, work, cfg, clean_env())
    base = f"/af-lab/rucio/instances/{DEMO_INSTANCE}/dids/{quote(did, safe='')}/content"
    try:
        server.get("/af-lab/rucio/instances").raise_for_status()  # warm the route, not Rucio/Vault
        names = set()
        with PeakRSS(server.proc.pid) as mem:
            t0 = time.perf_counter()
            r = server.get(base, limit=100)
            first = time.perf_counter() - t0
            r.raise_for_status()
            page = r.json()
            if first_only:
                return {"first_page_s": first, "files": len(page["items"])}
            names.update(f["name"] for f in page["items"])
            while page["cursor"]:
                r = server.get(base, limit=5000, cursor=page["cursor"])
                r.raise_for_status()
                page = r.json()
                names.update(f["name"] for f in page["items"])
            full = time.perf_counter() - t0
        if len(names) != page["total"]:
            raise RuntimeError(f"af-lab listed {len(names)} distinct files, total says {page['total']}")
        t1 = time.perf_counter()
        page, warm_n = {"cursor": None}, 0
        r = server.get(base, limit=5000)
        page = r.json()
        warm_n += len(page["items"])
        while page["cursor"]:
            page = server.get(base, limit=5000, cursor=page["cursor"]).json()
            warm_n += len(page["items"])
        warm = time.perf_counter() - t1
        return {
            "first_page_s": first,
            "full_s": full,
            "warm_full_s": warm,
            "files": len(names),
            "rss_delta_mib": mem.delta / MiB,
            "rss_peak_mib": mem.peak / MiB,
        }
    finally:
        server.stop()


def run_rjl(fac: Facility, did: str, work: Path, venv: Path) -> dict:
    rucio = fac.state.services["rucio"]
    cfg = {"RucioConfig": {"instances": [{
        "name": "local", "display_name": "local", "rucio_base_url": rucio["url"], "rucio_auth_url": rucio["url"],
        "destination_rse": "SITE2_USERDISK", "rse_mount_path": "/", "path_begins_at": 0, "mode": "replica",
        "wildcard_enabled": True}], "default_instance": "local", "default_auth_type": "userpass"}}  # fmt: skip
    home = work / "home"
    home.mkdir(parents=True)
    env = {**clean_env(), "HOME": str(home)}
    server = Server(venv / "bin" / "python", work / "server", cfg, env)
    try:
        user = rucio["accounts"]["jdoe"]
        server.put("/rucio-jupyterlab/instances", {"instance": "local", "auth": "userpass"}).raise_for_status()
        server.put(
            "/rucio-jupyterlab/auth",
            {
                "namespace": "local",
                "type": "userpass",
                "params": {"username": user["username"], "password": user["password"], "account": "jdoe"},
            },
        ).raise_for_status()
        server.get("/rucio-jupyterlab/instances")
        with PeakRSS(server.proc.pid) as mem:
            t0 = time.perf_counter()
            r = server.get("/rucio-jupyterlab/files", namespace="local", did=did)
            cold = time.perf_counter() - t0
        r.raise_for_status()
        files = r.json()
        return {
            "first_page_s": cold,
            "full_s": cold,
            "files": len(files),
            "rss_delta_mib": mem.delta / MiB,
            "rss_peak_mib": mem.peak / MiB,
        }
    finally:
        server.stop()


# ---------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--facility", help="an existing facility directory (rucio, openbao and demo up)")
    ap.add_argument("--did", default="cms_opendata:SingleMu_50k")
    ap.add_argument(
        "--small-did",
        default="cms_opendata:Run2012B_DoubleMuParked",
        help="a small dataset whose cold first page shows the first page does not grow with N",
    )
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--rjl-venv", default=str(REPO / ".cache" / "venv-rjl"))
    ap.add_argument("--no-rjl", action="store_true")
    args = ap.parse_args(argv)

    own = args.facility is None
    root = Path(args.facility) if args.facility else Path(tempfile.mkdtemp(prefix="af-bench-listing-"))
    root.chmod(0o755)
    fac = Facility(root)
    work = Path(tempfile.mkdtemp(prefix="af-bench-listing-work-"))
    results: dict[str, list[dict]] = {"raw": [], "af-lab": [], "af-lab small": [], "rucio-jupyterlab": []}
    try:
        if own:
            fac.up(["rucio", "openbao", "demo"])
        seed_rucio_password(fac.state)
        rjl_venv = Path(args.rjl_venv)
        use_rjl = not args.no_rjl and (rjl_venv / "bin" / "python").exists()
        if not use_rjl and not args.no_rjl:
            print(f"rucio-jupyterlab: not measured ({rjl_venv} has no python; see --help)")
        for i in range(args.runs):
            results["raw"].append(run_raw(fac, args.did))
            print(f"run {i + 1} raw     {json.dumps(results['raw'][-1])}", flush=True)
            results["af-lab"].append(run_aflab(fac, args.did, work / f"aflab-{i}"))
            print(f"run {i + 1} af-lab  {json.dumps(results['af-lab'][-1])}", flush=True)
            results["af-lab small"].append(run_aflab(fac, args.small_did, work / f"aflab-small-{i}", first_only=True))
            print(f"run {i + 1} af-lab small {json.dumps(results['af-lab small'][-1])}", flush=True)
            if use_rjl:
                results["rucio-jupyterlab"].append(run_rjl(fac, args.did, work / f"rjl-{i}", rjl_venv))
                print(f"run {i + 1} rjl     {json.dumps(results['rucio-jupyterlab'][-1])}", flush=True)
    finally:
        if own:
            fac.down(log=lambda *_: None)
            remove_tree(root)
        remove_tree(work)

    def med(who, key):
        values = [r[key] for r in results[who] if r.get(key) is not None]
        return statistics.median(values) if values else None

    raw_full, raw_first = med("raw", "full_s"), med("raw", "first_line_s")
    af_first, af_full, af_mem = med("af-lab", "first_page_s"), med("af-lab", "full_s"), med("af-lab", "rss_delta_mib")
    print(f"\n{args.did}, {args.runs} run(s), medians")
    print(f"  raw REST GET .../files    first line {raw_first:.3f} s   full {raw_full:.2f} s")
    print(
        f"  af-lab                    first page {af_first:.3f} s   full {af_full:.2f} s   "
        f"warm full {med('af-lab', 'warm_full_s'):.2f} s   RSS +{af_mem:.1f} MiB"
    )
    print(f"  af-lab, {args.small_did}    first page {med('af-lab small', 'first_page_s'):.3f} s (cold, same path)")
    if results["rucio-jupyterlab"]:
        rj_first, rj_mem = med("rucio-jupyterlab", "first_page_s"), med("rucio-jupyterlab", "rss_delta_mib")
        print(
            f"  rucio-jupyterlab files    first page {rj_first:.2f} s   full {rj_first:.2f} s   RSS +{rj_mem:.1f} MiB"
        )
        print(
            f"  ratios: first page rjl/af-lab {rj_first / af_first:.0f}x (target >= 20x, peer notes >= 150x); "
            f"full rjl/af-lab {rj_first / af_full:.1f}x; RSS delta rjl/af-lab {rj_mem / max(af_mem, 0.1):.1f}x"
        )
    print(
        f"  af-lab full / raw floor {af_full / raw_full:.2f} (target <= 1.5); "
        f"af-lab RSS delta {af_mem:.1f} MiB (target <= 30)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
