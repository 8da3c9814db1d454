"""A bigger NanoAOD-like sample for throughput benchmarks, made on demand.

``python -m af_facility --dir D big-sample [--events N]`` writes ``N`` (default 3,000,000)
DoubleMuParked-like events (the same generator as the demo's data: Z, J/psi, Upsilon over a
continuum) into files of 200,000 events, uncompressed like a cache-friendly skim (~80 bytes
an event, so a few hundred MB), and registers them in Rucio as ``cms_opendata:<BIG_SAMPLE>``
on the first RSE, the one the XRootD origin exports. A second call reuses what is there.
"""

from __future__ import annotations

import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from .base import FacilityState
from .demo_data import RSES, SCOPE, DemoData, write_nanoaod
from .procs import ServiceError
from .rucio_server import rucio_client

BIG_SAMPLE = "Run2012B_DoubleMuParked_big"
DEFAULT_EVENTS = 3_000_000
EVENTS_PER_FILE = 200_000


def write_big_sample(folder: Path, events: int = DEFAULT_EVENTS, workers: int = 2) -> list[Path]:
    """The sample's files under ``folder`` (written in parallel where missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    sizes = [min(EVENTS_PER_FILE, events - start) for start in range(0, events, EVENTS_PER_FILE)]
    paths = [folder / f"{BIG_SAMPLE}_{i:03d}.root" for i in range(len(sizes))]
    missing = [(p, n) for p, n in zip(paths, sizes, strict=True) if not p.exists()]
    if missing:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            jobs = [pool.submit(_write_one, p, n) for p, n in missing]
            for job in jobs:
                job.result()
    return paths


def _write_one(path: Path, n: int) -> None:
    write_nanoaod(path, "dimuon_data", n, seed=zlib.crc32(path.name.encode()), compression=None)


def make_big_sample(state: FacilityState, events: int = DEFAULT_EVENTS) -> dict[str, Any]:
    """Write the files (if missing) and register them as a dataset; returns what a benchmark needs."""
    demo = DemoData(state)
    if not demo.rucio.running():
        raise ServiceError("demo", "needs the rucio service running first (python -m af_facility up)")
    t0 = time.monotonic()
    paths = write_big_sample(demo.originals / BIG_SAMPLE, events)
    written = time.monotonic() - t0
    with rucio_client(demo.rucio.client_config("root")) as root:
        demo._register_dataset(root, BIG_SAMPLE, paths, rses=RSES[:1], container=None)
    return {
        "did": f"{SCOPE}:{BIG_SAMPLE}",
        "events": events,
        "files": [str(p) for p in paths],
        "bytes": sum(p.stat().st_size for p in paths),
        "write_seconds": round(written, 1),
        "total_seconds": round(time.monotonic() - t0, 1),
    }
