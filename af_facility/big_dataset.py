"""A 50,000-file dataset whose replicas are real (tiny) files on an RSE, made on demand.

``python -m af_facility --dir D big-dataset [--files N]`` writes ``N`` (default 50,000)
small files at their deterministic PFNs on the first RSE (the one the facility mounts
locally), each with its real size and adler32, and registers them in Rucio as
``cms_opendata:<BIG_REPLICA_DATASET>`` (``Onsite_SingleMu_<N>`` for another N: a registered
dataset is closed; the names match none of the demo's, so its searches find what they did) with one bulk insert (as the demo's catalogue-only big dataset is registered). A replica-mode mount of it links every file to its replica,
so benchmarks can measure a server while such a 50,000-link view is built. A second call
reuses what is there (files of the right size are not rewritten, registered ones skipped).
"""

from __future__ import annotations

import hashlib
import os
import time
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .base import FacilityState
from .demo_data import BULK_REGISTER, BULK_TIMEOUT, RSES, SCOPE, DemoData
from .procs import ServiceError
from .rucio_server import rucio_client

BIG_REPLICA_DATASET = "Onsite_SingleMu_50k"
DEFAULT_FILES = 50_000
PFN_BATCH = 50  # LFNs per lfns2pfns call (a GET: its URL must stay short)


def dataset_name(files: int) -> str:
    return BIG_REPLICA_DATASET if files == DEFAULT_FILES else f"Onsite_SingleMu_{files}"


def file_name(i: int) -> str:
    return f"Onsite_SingleMu_{i:06d}.root"


def content(name: str) -> bytes:
    """A few distinct bytes per file: sizes and checksums differ, the disk holds ~50k blocks."""
    return f"af-lab facility replica {name}\n".encode()


def make_big_dataset(state: FacilityState, files: int = DEFAULT_FILES) -> dict[str, Any]:
    """Write the replicas (if missing) and register them; returns what a benchmark needs."""
    demo = DemoData(state)
    if not demo.rucio.running():
        raise ServiceError("demo", "needs the rucio service running first (python -m af_facility up)")
    rse = RSES[0]
    rse_root = demo.rucio.rse_path(rse)
    names = [file_name(i) for i in range(files)]
    t0 = time.monotonic()
    with rucio_client(demo.rucio.client_config("root")) as root:
        paths = _pfn_paths(root, rse, names)
    described = []
    made_dirs: set[str] = set()
    for name, path in zip(names, paths, strict=True):
        data = content(name)
        if not (path.exists() and path.stat().st_size == len(data)):
            if str(path.parent) not in made_dirs:
                path.parent.mkdir(parents=True, exist_ok=True)
                made_dirs.add(str(path.parent))
            tmp = path.with_name(path.name + ".part")
            tmp.write_bytes(data)
            os.chmod(tmp, 0o644)  # the XRootD origin runs as its own user
            os.replace(tmp, path)
        described.append([name, len(data), f"{zlib.adler32(data) & 0xFFFFFFFF:08x}"])
    for dirpath, _dirs, _files in os.walk(rse_root / SCOPE):
        os.chmod(dirpath, 0o755)
    written = time.monotonic() - t0
    dataset = dataset_name(files)
    payload = {"account": "root", "scope": SCOPE, "dataset": dataset, "rse": rse, "files": described}
    registered = demo.rucio.run_in_venv(
        BULK_REGISTER, payload=payload, log=demo.home / "bulk_register.log", what="bulk registration",
        timeout=BULK_TIMEOUT,
    )  # fmt: skip
    return {
        "did": f"{SCOPE}:{dataset}",
        "rse": rse,
        "files": registered["length"],
        "added": registered["added"],
        "write_seconds": round(written, 1),
        "total_seconds": round(time.monotonic() - t0, 1),
    }


def _pfn_paths(root: Any, rse: str, names: list[str]) -> list[Path]:
    """Where Rucio puts each file on the deterministic RSE. 50,000 names in GET URLs are 1,000
    calls: compute Rucio's default ``hash`` layout here, checked against Rucio's own answer for
    the first batch, and ask Rucio for every batch only if the RSE uses another layout."""
    first = names[:PFN_BATCH]
    asked = root.lfns2pfns(rse, [f"{SCOPE}:{n}" for n in first], operation="write", scheme="file")
    known = [Path(urlparse(asked[f"{SCOPE}:{n}"]).path) for n in first]
    base = Path(str(known[0])[: -len(str(_hashed(first[0])))])
    if all(p == base / _hashed(n) for n, p in zip(first, known, strict=True)):
        return [base / _hashed(n) for n in names]
    out = list(known)
    for i in range(PFN_BATCH, len(names), PFN_BATCH):
        batch = names[i : i + PFN_BATCH]
        asked = root.lfns2pfns(rse, [f"{SCOPE}:{n}" for n in batch], operation="write", scheme="file")
        out += [Path(urlparse(asked[f"{SCOPE}:{n}"]).path) for n in batch]
    return out


def _hashed(name: str) -> Path:
    """Rucio's default deterministic layout: <scope>/<md5[0:2]>/<md5[2:4]>/<name>."""
    digest = hashlib.md5(f"{SCOPE}:{name}".encode()).hexdigest()  # noqa: S324 (Rucio's layout, not security)
    return Path(
        SCOPE.replace(".", "/") if SCOPE.startswith(("user", "group")) else SCOPE, digest[:2], digest[2:4], name
    )
