"""Benchmark: af-lab cache-mode mount vs ``cp`` vs ``rucio download`` (vs rucio-jupyterlab), one run.

    .venv/bin/python bench/bench_mount.py                 # builds its own facility in a temp dir
    .venv/bin/python bench/bench_mount.py --facility DIR  # reuses one (python -m af_facility --dir DIR up)

What it does, all on 127.0.0.1:
  1. registers ``user.jdoe:bench_<N>x<M>MiB`` (default 200 files x 5 MiB = 1.05 GB of random
     bytes) as real replicas on SITE1_USERDISK, and 1,000 small files for the warm re-mount;
  2. for each repetition, in turn on the same files and disk:
       cp      one ``cp`` of the 200 replica files into a fresh folder (the physical reference)
       af-lab  a fresh JupyterLab server (cold cache) with af-lab; POST /af-lab/mounts, until
               the mount is ready: every file copied into the cache, adler32-verified, linked
       rucio   ``rucio download`` of the same DID (rucio-clients CLI, its default 3 threads)
       rjl     rucio-jupyterlab 41 download mode, when --rjl-venv points at a venv with it
  3. warm re-mount of 1,000 cached files: unmount, mount again; the server's own time for
     the POST (``timings.total_ms``) and the client's round trip, listing cached and not.

Nothing is dropped from the page cache (like the peer figures in shared/notes): the numbers
are CPU/syscall-bound, the same for every tool. Every process started here is stopped by PID.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
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
PY = Path(sys.executable)
MOUNT_ENDED = ("ready", "failed", "cancelled")
SETTLE_S = 3.0


# ---------------------------------------------------------------------- data
def register(fac: Facility, dataset: str, count: int, size: int, seed: int) -> list[Path]:
    """``count`` files of ``size`` random bytes in ``SCOPE:dataset`` on RSE (idempotent)."""
    names = [f"{dataset}_{i:05d}.bin" for i in range(count)]
    with rucio_client(fac.state.services["rucio"]["client_configs"]["root"]) as root:
        pfns = {}
        for i in range(0, count, 50):  # the names travel in the URL: keep it short
            chunk = names[i : i + 50]
            pfns.update(root.lfns2pfns(RSE, [f"{SCOPE}:{n}" for n in chunk], operation="write", scheme="file"))
        paths = [Path(urlparse(pfns[f"{SCOPE}:{n}"]).path) for n in names]
        try:
            existing = {f["name"] for f in root.list_files(SCOPE, dataset)}
        except Exception:
            existing = set()
        if len(existing) == count and all(p.exists() and p.stat().st_size == size for p in paths):
            return paths
        rng = __import__("random").Random(seed)
        described = []
        for name, path in zip(names, paths, strict=True):
            data = rng.randbytes(size)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            path.chmod(0o644)
            for parent in path.parents:
                if parent.name == RSE:
                    break
                parent.chmod(0o755)
            described.append(
                {"scope": SCOPE, "name": name, "bytes": size, "adler32": f"{zlib.adler32(data) & 0xFFFFFFFF:08x}"}
            )
        for i in range(0, count, 500):
            root.add_replicas(RSE, described[i : i + 500])
        with contextlib.suppress(Exception):
            root.add_dataset(SCOPE, dataset)
        missing = [{"scope": SCOPE, "name": n} for n in names if n not in existing]
        for i in range(0, len(missing), 500):
            root.attach_dids(SCOPE, dataset, missing[i : i + 500])
    return paths


# ---------------------------------------------------------------------- servers
class Lab(JupyterServer):
    """A Jupyter server with af-lab, configured like the demo facility, on a free loopback port."""

    def __init__(self, fac: Facility, work: Path, tag: str, **overrides):
        directory = work / f"lab-{tag}"
        shutil.rmtree(directory, ignore_errors=True)
        cfg = aflab_config(fac.state)
        cfg["AFLab"].update(cache_dir=str(directory / "cache"), state_dir=str(directory / "state"), **overrides)
        cfg["ServerApp"] = {"jpserver_extensions": {"af_lab": True}}
        super().__init__(directory, cfg)
        self.workspace = self.root_dir

    def mount(self, did: str, **opts) -> tuple[dict, float]:
        """POST a mount and wait, on the live event stream like the sidebar, until it has ended;
        returns (mount, wall seconds)."""
        with self.events("mounts") as events:
            t0 = time.perf_counter()
            code, data = self.call("POST", "/af-lab/mounts", {"did": did, **opts})
            if code not in (200, 201):
                raise RuntimeError(f"mount {did}: HTTP {code}: {data}")
            m = data["mount"]
            if m["state"] not in MOUNT_ENDED:
                mount_id = m["id"]
                m = next(e["data"] for e in events if e["data"].get("id") == mount_id and e["data"]["state"] in MOUNT_ENDED)
            wall = time.perf_counter() - t0
        if m["state"] != "ready":
            raise RuntimeError(f"mount {did} ended {m['state']}: {m['message']}")
        return m, wall


# ---------------------------------------------------------------------- peers
def run_cp(files: list[Path], dest: Path) -> float:
    dest.mkdir(parents=True)
    t0 = time.perf_counter()
    subprocess.run(["cp", *map(str, files), str(dest)], check=True)
    return time.perf_counter() - t0


def run_rucio_download(fac: Facility, did: str, dest: Path) -> float:
    rucio = PY.parent / "rucio"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUCIO_")}
    env["RUCIO_CONFIG"] = fac.state.services["rucio"]["client_configs"]["jdoe"]
    t0 = time.perf_counter()
    proc = subprocess.run([str(rucio), "download", "--dir", str(dest), did], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"rucio download failed: {proc.stderr[-2000:]}")
    return elapsed


class RucioJupyterLab(JupyterServer):
    """rucio-jupyterlab 41 in download mode, driven through its own REST API (shared/notes/peer-baselines.md §2)."""

    def __init__(self, venv: Path, fac: Facility, work: Path):
        directory = work / "rjl"
        shutil.rmtree(directory, ignore_errors=True)
        rucio = fac.state.services["rucio"]
        self.user = rucio["accounts"]["jdoe"]
        cfg = {"RucioConfig": {"instances": [{
            "name": "local", "display_name": "local", "rucio_base_url": rucio["url"], "rucio_auth_url": rucio["url"],
            "rucio_ca_cert": "/etc/ssl/certs/ca-certificates.crt", "mode": "download", "destination_rse": RSE,
        }], "default_instance": "local"}}  # fmt: skip
        self.home = directory / "home"
        self.home.mkdir(parents=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RUCIO_", "JUPYTER", "PYTHONPATH"))}
        env["HOME"] = str(self.home)
        super().__init__(directory, cfg, python=venv / "bin" / "python", env=env, root_dir=self.home)
        code, body = self.call("PUT", "/rucio-jupyterlab/instances", {"instance": "local", "auth": "userpass"})
        code, body = self.call("PUT", "/rucio-jupyterlab/auth", {
            "namespace": "local", "type": "userpass",
            "params": {"username": self.user["username"], "password": self.user["password"], "account": "jdoe"},
        })  # fmt: skip
        if code >= 300:
            raise RuntimeError(f"rucio-jupyterlab auth: HTTP {code} {body}")

    def download(self, did: str, count: int) -> float:
        self.call("GET", f"/rucio-jupyterlab/did?namespace=local&did={did}")
        t0 = time.perf_counter()
        code, body = self.call("POST", "/rucio-jupyterlab/did/make-available?namespace=local", {"did": did})
        if code >= 300:
            raise RuntimeError(f"make-available: HTTP {code} {body}")
        while True:
            _code, files = self.call("GET", f"/rucio-jupyterlab/did?namespace=local&did={did}")
            if isinstance(files, list) and len(files) == count and all(f.get("status") == "OK" for f in files):
                return time.perf_counter() - t0
            if isinstance(files, list) and any(f.get("status") == "STUCK" for f in files):
                raise RuntimeError("rucio-jupyterlab reports STUCK files")
            time.sleep(0.1)


# ---------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--facility", help="reuse a facility directory (else one is built in a temp dir and removed)")
    ap.add_argument("--work", help="scratch directory on the disk under test (default: inside the facility dir)")
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--size-mib", type=float, default=5.0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warm-files", type=int, default=1000)
    ap.add_argument("--warm-reps", type=int, default=7)
    ap.add_argument("--concurrency", type=int, default=4, help="c.AFLab.mount_concurrency")
    ap.add_argument("--rjl-venv", help="a venv with rucio-jupyterlab 41 (optional peer)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()

    own = not args.facility
    root = Path(args.facility or tempfile.mkdtemp(prefix="af-bench-mount-")).resolve()
    root.chmod(0o755)
    fac = Facility(root)
    work = Path(args.work or root / "bench-work")
    labs: list = []
    try:
        if own:
            print(f"facility in {root} (rucio, openbao, xrootd, demo)")
            os.environ.setdefault("AF_DEMO_BIG_FILES", "100")
            fac.up(["rucio", "openbao", "xrootd", "demo"])
        seed_rucio_password(fac.state)
        work.mkdir(parents=True, exist_ok=True)
        size = int(args.size_mib * (1 << 20))
        dataset = f"bench_{args.files}x{args.size_mib:g}MiB"
        t = time.perf_counter()
        files = register(fac, dataset, args.files, size, seed=1)
        total = args.files * size
        print(
            f"data: {SCOPE}:{dataset}, {args.files} files, {total / 1e9:.3f} GB ({time.perf_counter() - t:.1f} s to register)"
        )
        did = f"{SCOPE}:{dataset}"

        rjl = None
        if args.rjl_venv:
            try:
                rjl = RucioJupyterLab(Path(args.rjl_venv), fac, work)
                labs.append(rjl)
            except Exception as exc:  # optional peer: report and go on
                print(f"rucio-jupyterlab: not measured ({exc})")
                rjl = None

        results: dict[str, list[float]] = {"cp": [], "af-lab": [], "af-lab server": [], "rucio download": []}
        if rjl:
            results["rucio-jupyterlab"] = []
        for rep in range(args.reps):
            dest = work / f"cp-{rep}"
            results["cp"].append(run_cp(files, dest))
            shutil.rmtree(dest)

            lab = Lab(fac, work, f"cold-{rep}", mount_concurrency=args.concurrency)
            labs.append(lab)
            # A fresh server finishes its own start-up in background threads (jupyter-lsp scans
            # every entry point for ~0.2 s); a user's first click comes later than that.
            time.sleep(SETTLE_S)
            m, wall = lab.mount(did)
            results["af-lab"].append(wall)
            # The server's own time: DID listing (timings.resolve_ms) + fetching until ready.
            results["af-lab server"].append(m["finished"] - m["created"] + m["timings"]["resolve_ms"] / 1000)
            sample = lab.workspace / m["target"] / files[0].name
            assert sample.read_bytes() == files[0].read_bytes(), "mounted bytes differ"
            lab.stop()
            labs.remove(lab)
            remove_tree(lab.dir)

            dest = work / f"rucio-{rep}"
            results["rucio download"].append(run_rucio_download(fac, did, dest))
            shutil.rmtree(dest)

            if rjl:
                results["rucio-jupyterlab"].append(rjl.download(did, args.files))
                shutil.rmtree(rjl.home / "rucio", ignore_errors=True)
                rjl.stop()
                labs.remove(rjl)
                rjl = RucioJupyterLab(Path(args.rjl_venv), fac, work) if rep + 1 < args.reps else None
                if rjl:
                    labs.append(rjl)
            print(f"  rep {rep + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in results.items()))

        # ---- warm re-mount of many cached files
        warm_ds = f"bench_warm_{args.warm_files}"
        register(fac, warm_ds, args.warm_files, 1024, seed=2)
        lab = Lab(fac, work, "warm", mount_concurrency=args.concurrency)
        labs.append(lab)
        m, cold_wall = lab.mount(f"{SCOPE}:{warm_ds}")
        warm = {"server_ms": [], "post_ms": [], "server_ms_relisted": [], "post_ms_relisted": []}
        for _rep in range(args.warm_reps):
            for relist in (False, True):
                lab.call("DELETE", f"/af-lab/mounts/{m['id']}")
                t0 = time.perf_counter()
                code, data = lab.call("POST", "/af-lab/mounts", {"did": f"{SCOPE}:{warm_ds}", "refresh": relist})
                post_ms = (time.perf_counter() - t0) * 1000
                m = data["mount"]
                assert code == 201 and m["state"] == "ready", (code, m)
                suffix = "_relisted" if relist else ""
                warm[f"server_ms{suffix}"].append(m["timings"]["total_ms"])
                warm[f"post_ms{suffix}"].append(post_ms)
        links = sum(1 for _ in (lab.workspace / m["target"]).iterdir())
        assert links == args.warm_files, links
        lab.stop()
        labs.remove(lab)

        # ---- report
        med = {k: statistics.median(v) for k, v in results.items() if v}
        mbps = {k: total / v / 1e6 for k, v in med.items()}
        print(f"\ncache-mode mount of {args.files} files / {total / 1e9:.3f} GB, median of {args.reps} "
              f"(mount_concurrency={args.concurrency}; page cache warm for every tool)")  # fmt: skip
        print(f"  {'':18s} {'seconds':>8s} {'MB/s':>8s}  runs")
        for k in med:
            print(f"  {k:18s} {med[k]:8.2f} {mbps[k]:8.0f}  {', '.join(f'{x:.2f}' for x in results[k])}")
        print("ratios (throughput, af-lab wall time incl. HTTP and polling):")
        ratios = {
            "af-lab / cp": med["cp"] / med["af-lab"],
            "af-lab / rucio download": med["rucio download"] / med["af-lab"],
        }
        if "rucio-jupyterlab" in med:
            ratios["af-lab / rucio-jupyterlab"] = med["rucio-jupyterlab"] / med["af-lab"]
        for k, v in ratios.items():
            print(f"  {k:28s} {v:5.2f}x")
        wmed = {k: statistics.median(v) for k, v in warm.items()}
        print(
            f"\nwarm re-mount of {args.warm_files} cached files (median of {args.warm_reps}; cold mount took {cold_wall:.2f} s):"
        )
        print(
            f"  server time, listing cached   {wmed['server_ms']:7.1f} ms   (POST round trip {wmed['post_ms']:.1f} ms)"
        )
        print(
            f"  server time, Rucio re-listed  {wmed['server_ms_relisted']:7.1f} ms   (POST round trip {wmed['post_ms_relisted']:.1f} ms)"
        )
        if args.json:
            Path(args.json).write_text(
                json.dumps({"results": results, "ratios": ratios, "warm": warm, "bytes": total}, indent=2)
            )
        return 0
    finally:
        for lab in labs:
            with contextlib.suppress(Exception):
                lab.stop()
        remove_tree(work)
        if own:
            fac.down(log=lambda *a: None)
            remove_tree(root)


if __name__ == "__main__":
    sys.exit(main())
