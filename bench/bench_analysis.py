"""Benchmark: events/s of the dimuon analysis on the big sample, side by side in one run.

    python -m af_facility --dir D up --lab                     # a facility with its JupyterLab
    .venv/bin/python bench/bench_analysis.py --facility D      # [--events 3000000] [--workers 2]
                     [--frameworks uproot,coffea,rdf] [--reps 2] [--aflab-profile slurm]

What it compares, with the analysis environment (.venv-analysis) and the same worker count:
  stream vs local   the files through af-lab's stream fileset (root:// URLs through the XCache;
                    the first pass fills the cache: "cold", later ones are "warm") vs the same
                    files read from local disk. Target: stream >= 0.8 x local.
  af-lab vs bare    an af-lab cluster of ``--aflab-profile`` running the "analysis" environment
                    vs a bare distributed.LocalCluster of that environment. Target >= 0.9 x.
                    Skipped (said so) when the site's profile does not offer that environment.
The big sample (python -m af_facility --dir D big-sample) is written and registered on first use.
Only the analysis is timed (cluster start excluded); every process is stopped when it ends.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from af_facility.big_sample import DEFAULT_EVENTS, make_big_sample  # noqa: E402
from af_facility.facility import Facility  # noqa: E402
from af_facility.lab import JupyterLab  # noqa: E402

ANALYSIS_PY = REPO / ".venv-analysis" / "bin" / "python"
JOB = Path(__file__).with_name("_dimuon_job.py")


class Lab:
    def __init__(self, info: dict):
        self.base = f"http://127.0.0.1:{info['port']}/"
        self.token = info["token"]
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.headers["Authorization"] = f"token {self.token}"

    def call(self, method: str, path: str, **kwargs):
        resp = self.http.request(method, self.base + path, timeout=600, **kwargs)
        resp.raise_for_status()
        return resp.json() if resp.content else None


def stream_fileset(lab: Lab, did: str) -> list[str]:
    """af-lab's stream fileset of ``did``: what a notebook's %rucio mount --mode stream returns."""
    mount = lab.call("POST", "af-lab/mounts", json={"did": did, "mode": "stream", "source": "xcache"})["mount"]
    while mount["state"] not in ("ready", "failed", "cancelled"):
        time.sleep(0.5)
        mount = lab.call("GET", f"af-lab/mounts/{mount['id']}")["mount"]
    if mount["state"] != "ready":
        raise SystemExit(f"the stream mount of {did} is {mount['state']}: {mount.get('message')}")
    fileset = lab.call("GET", f"af-lab/mounts/{mount['id']}/fileset", params={"format": "json", "workers": "remote"})
    return [url for entry in fileset.values() for url in entry["files"]]


def run_job(files: list[str], framework: str, workers: int, cluster, handler: str = "xrootd") -> dict:
    spec = {"files": files, "framework": framework, "workers": workers, "cluster": cluster, "handler": handler}
    out = subprocess.run(
        [str(ANALYSIS_PY), str(JOB), json.dumps(spec)], capture_output=True, text=True, timeout=3600, cwd=REPO
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"{framework} job failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(lines[-1])


def aflab_cluster(lab: Lab, profile: str, info: dict) -> dict | str:
    """The af-lab cluster spec for the job, or why there is none."""
    profiles = lab.call("GET", "af-lab/clusters/profiles").get("profiles", [])
    chosen = next((p for p in profiles if p.get("name") == profile), None)
    if chosen is None:
        return f"no cluster profile '{profile}' on this site ({', '.join(p.get('name', '?') for p in profiles)})"
    if "analysis" not in {e["name"] if isinstance(e, dict) else e for e in chosen.get("environments") or []}:
        return (
            f"profile '{profile}' offers no 'analysis' environment (clusters in the profile's environment not merged)"
        )
    return {"url": lab.base, "token": info["token"], "profile": profile, "environment": "analysis",
            }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facility", required=True, help="facility state dir (python -m af_facility --dir D up --lab)")
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--frameworks", default="uproot,rdf")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--aflab-profile", default="slurm")
    args = parser.parse_args()

    fac = Facility(Path(args.facility))
    t0 = time.monotonic()
    sample = make_big_sample(fac.state, args.events)
    print(f"sample {sample['did']}: {sample['events']:,} events, {sample['bytes'] / 1e6:.0f} MB in "
          f"{len(sample['files'])} files (ready in {time.monotonic() - t0:.0f} s)")  # fmt: skip
    lab_info = JupyterLab(fac.state).up()
    lab = Lab(lab_info)
    urls = stream_fileset(lab, sample["did"])
    local = sample["files"]
    assert len(urls) == len(local), (len(urls), len(local))
    cluster = aflab_cluster(lab, args.aflab_profile, lab_info)
    # "cold" only when the XCache holds none of the sample yet (an earlier run fills it for good)
    cache_dir = Path(fac.state.services.get("xrootd", {}).get("cache_dir") or "/nonexistent")
    cache_empty = not any(cache_dir.rglob(f"{sample['did'].split(':', 1)[1]}_*.root"))
    print(
        f"XCache {'empty: the first stream pass is cold' if cache_empty else 'already holds the sample: all passes warm'}"
    )

    results: dict[str, dict[str, list[dict]]] = {}
    for framework in args.frameworks.split(","):
        runs: dict[str, list[dict]] = {"local": [], "stream": [], "fsspec": [], "aflab": []}
        # "fsspec": the same stream through uproot's default root:// handler (fsspec-xrootd), for comparison
        labels = [("local", local), ("stream", urls)] + ([("fsspec", urls)] if framework != "rdf" else [])
        for rep in range(args.reps):
            order = labels if rep % 2 == 0 else labels[::-1]
            for label, files in order:
                r = run_job(files, framework, args.workers, "local", "fsspec" if label == "fsspec" else "xrootd")
                r["cold"] = cache_empty and label in ("stream", "fsspec") and not runs["stream"] and not runs["fsspec"]
                runs[label].append(r)
                print(f"  {framework:7s} {label:6s} rep {rep}: {r['events_per_s']:>10,} ev/s "
                      f"({r['seconds']} s, peak {r['peak']:.2f} GeV){' cold cache' if r['cold'] else ''}")  # fmt: skip
            if isinstance(cluster, dict):
                r = run_job(urls, framework, args.workers, cluster)
                runs["aflab"].append(r)
                print(f"  {framework:7s} af-lab rep {rep}: {r['events_per_s']:>10,} ev/s ({r['seconds']} s)")
        results[framework] = runs

    print(f"\nevents/s, {args.workers} workers, median of {args.reps} (stream warm = XCache already filled):")
    for framework, runs in results.items():
        local_rate = statistics.median(r["events_per_s"] for r in runs["local"])
        warm = [r["events_per_s"] for r in runs["stream"] if not r["cold"]] or [
            r["events_per_s"] for r in runs["stream"]
        ]
        cold = [r["events_per_s"] for r in runs["stream"] + runs["fsspec"] if r["cold"]]
        stream_rate = statistics.median(warm)
        line = f"  {framework:7s} local {local_rate:>10,.0f}  stream {stream_rate:>10,.0f}  stream/local {stream_rate / local_rate:.2f}"
        if cold:
            line += f"  (cold cache {cold[0]:,.0f}, {cold[0] / local_rate:.2f})"
        fsspec = [r["events_per_s"] for r in runs["fsspec"] if not r["cold"]]
        if fsspec:
            line += f"  uproot's default handler {statistics.median(fsspec):,.0f} ({statistics.median(fsspec) / local_rate:.2f})"
        if runs["aflab"]:
            bare = statistics.median(r["events_per_s"] for r in runs["stream"])
            ours = statistics.median(r["events_per_s"] for r in runs["aflab"])
            line += f"  af-lab/bare {ours / bare:.2f}"
        print(line)
    if not isinstance(cluster, dict):
        print(f"  af-lab cluster vs bare LocalCluster: skipped, {cluster}")
    print(json.dumps({"sample": {k: v for k, v in sample.items() if k != "files"}, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
