"""Demo data for the facility: small NanoAOD-like ROOT files, registered in Rucio.

What a user of the demo finds in the catalogue (all replicas are real files with
correct adler32, on *both* RSEs, except the big dataset which is catalogue-only):

    cms_opendata:DAC21_CMS_opendata            container
        cms_opendata:Run2012B_DoubleMuParked   "data": Z, J/psi, Upsilon -> mu mu + background
        cms_opendata:ZZTo4mu                   "MC": ZZ -> 4 mu
        cms_opendata:SMHiggsToZZTo4L           "MC": H(125) -> ZZ* -> 4 leptons
    cms_opendata:SingleMu_50k                  AF_DEMO_BIG_FILES (default 50,000) registered
                                               files, no bytes on disk: for listing at scale
    cms_opendata:MuOnia_archived               one file whose only replica is UNAVAILABLE: no
                                               RSE can serve it, a user requests a replica
    user.jdoe:my_skim                          jdoe's own skim, uploaded with UploadClient

The ROOT files are generated (deterministic seeds) with uproot as an ``Events`` TTree
with NanoAOD branch names (nMuon, Muon_pt, ..., MET_pt). The originals stay under
``<state>/demo/originals/`` so tests can compare downloaded bytes.

The service has no process: ``up`` does what is missing (steps are recorded in
``<state>/demo/registered.json``) and ``running`` means that record is complete.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import shutil
import time
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .base import FacilityState, Service
from .procs import LOOPBACK, ServiceError
from .rucio_server import RSES, RucioServer, rucio_client

log = logging.getLogger(__name__)

SCOPE = "cms_opendata"
CONTAINER = "DAC21_CMS_opendata"
# dataset -> (generator, files, events per file)
DATASETS: dict[str, tuple[str, int, int]] = {
    "Run2012B_DoubleMuParked": ("dimuon_data", 4, 6000),
    "ZZTo4mu": ("zz_4mu", 2, 4000),
    "SMHiggsToZZTo4L": ("higgs_4l", 2, 4000),
}
USER_SCOPE = "user.jdoe"
USER_DATASET = "my_skim"
BIG_DATASET = "SingleMu_50k"
DEFAULT_BIG_FILES = 50_000
ARCHIVED_DATASET = "MuOnia_archived"
XROOTD_IMPL = "rucio.rse.protocols.xrootd.Default"
BULK_TIMEOUT = 900.0  # seconds; 50k files take ~15 s here, leave room for a loaded machine


def big_file_count() -> int:
    return int(os.environ.get("AF_DEMO_BIG_FILES", DEFAULT_BIG_FILES))


class DemoData(Service):
    name = "demo"

    def __init__(self, state: FacilityState):
        super().__init__(state)
        self.home = state.root / "demo"
        self.originals = self.home / "originals"
        self.record_path = self.home / "registered.json"
        self.rucio = RucioServer(state)

    def running(self) -> bool:
        return bool(self._record().get("complete"))

    def down(self) -> None:
        """Nothing runs; the data stays registered (it lives in Rucio's database)."""

    def up(self) -> dict[str, Any]:
        if not self.rucio.running():
            raise ServiceError(self.name, "needs the rucio service running first (python -m af_facility up)")
        record = self._record()
        with rucio_client(self.rucio.client_config("root")) as root:
            if record.get("done") and not _did_exists(root, SCOPE, CONTAINER):
                record = {}  # the record outlived the catalogue (Rucio DB reset): redo it all
            self._sync_xrootd_protocol(root)
            # A record completed before a step was added (the archived dataset) does the new step.
            if record.get("complete") and "archived_dataset" in record.get("done", {}):
                return record["info"]

            # Each step is idempotent by itself; the record (step -> seconds) skips finished
            # ones when an earlier up() was interrupted.
            done: dict[str, float] = record.setdefault("done", {})
            datasets = self._write_originals()  # no-op when the files exist
            if "datasets" not in done:
                t0 = time.monotonic()
                for dataset, files in datasets.items():
                    self._register_dataset(root, dataset, files)
                done["datasets"] = round(time.monotonic() - t0, 2)
                self._save(record)

        skim = self._write_user_skim()
        if "user_skim" not in done:
            t0 = time.monotonic()
            with rucio_client(self.rucio.client_config("jdoe")) as jdoe:
                self._upload_user_skim(jdoe, skim)
            done["user_skim"] = round(time.monotonic() - t0, 2)
            self._save(record)

        if "big_dataset" not in done:
            t0 = time.monotonic()
            record["big_dataset"] = self._register_big_dataset()  # {"added", "length", "seconds"}
            done["big_dataset"] = round(time.monotonic() - t0, 2)
            self._save(record)

        if "archived_dataset" not in done:
            with rucio_client(self.rucio.client_config("root")) as root:
                self._register_archived_dataset(root)
            done["archived_dataset"] = 0.0
            self._save(record)

        info = {
            "scope": SCOPE,
            "container": f"{SCOPE}:{CONTAINER}",
            "datasets": {
                name: {
                    "did": f"{SCOPE}:{name}",
                    "files": [p.name for p in files],
                    "bytes": sum(p.stat().st_size for p in files),
                }
                for name, files in datasets.items()
            },
            "user_dataset": f"{USER_SCOPE}:{USER_DATASET}",
            "user_files": [p.name for p in skim],
            "big_dataset": f"{SCOPE}:{BIG_DATASET}",
            "big_files": record["big_dataset"]["length"],
            "archived_dataset": f"{SCOPE}:{ARCHIVED_DATASET}",
            "rses": list(RSES),
            "originals": str(self.originals),
        }
        record.update(complete=True, info=info)
        self._save(record)
        return info

    # -- record -------------------------------------------------------------------------------

    def _record(self) -> dict[str, Any]:
        try:
            return json.loads(self.record_path.read_text())
        except (OSError, ValueError):
            return {}

    def _save(self, record: dict[str, Any]) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        tmp = self.record_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True))
        os.replace(tmp, self.record_path)

    # -- files --------------------------------------------------------------------------------

    def _write_originals(self) -> dict[str, list[Path]]:
        """Generate the ROOT files once; later calls return the existing ones."""
        out: dict[str, list[Path]] = {}
        for dataset, (kind, nfiles, nevents) in DATASETS.items():
            folder = self.originals / dataset
            folder.mkdir(parents=True, exist_ok=True)
            out[dataset] = []
            for i in range(nfiles):
                path = folder / f"{dataset}_{i:03d}.root"
                if not path.exists():
                    write_nanoaod(path, kind, nevents, seed=zlib.crc32(path.name.encode()))
                out[dataset].append(path)
        return out

    def _write_user_skim(self) -> list[Path]:
        folder = self.home / "user" / USER_DATASET
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for i in range(2):
            path = folder / f"{USER_DATASET}_{i:03d}.root"
            if not path.exists():
                write_nanoaod(path, "z_skim", 1500, seed=zlib.crc32(path.name.encode()))
            paths.append(path)
        return paths

    # -- catalogue ----------------------------------------------------------------------------

    def _register_dataset(
        self, root: Any, dataset: str, files: list[Path], rses: tuple[str, ...] = RSES, container: str | None = CONTAINER
    ) -> None:
        """Put each file at its deterministic PFN on every RSE, then register it there.

        Writing to the path Rucio computes and calling add_replicas with size and adler32 is
        what an upload does, minus 8 REST calls per file; the bytes are real either way.
        """
        from rucio.common.checksum import adler32, md5
        from rucio.common.exception import DataIdentifierAlreadyExists, DuplicateRule, UnsupportedOperation

        described = [
            {
                "scope": SCOPE, "name": p.name, "bytes": p.stat().st_size, "adler32": adler32(str(p)), "md5": md5(str(p)),
                "meta": {"events": _event_count(p)},  # list_files shows it, as for real CMS files
            }
            for p in files
        ]  # fmt: skip
        for rse in rses:
            pfns = root.lfns2pfns(rse, [f"{SCOPE}:{p.name}" for p in files], operation="write", scheme="file")
            for p in files:
                _copy_world_readable(p, Path(urlparse(pfns[f"{SCOPE}:{p.name}"]).path), self.rucio.rse_path(rse))
            # add_replicas skips replicas that exist, so a half-done earlier run is fine.
            root.add_replicas(rse, described)

        if container:
            with contextlib.suppress(DataIdentifierAlreadyExists):
                root.add_container(SCOPE, container)
        with contextlib.suppress(DataIdentifierAlreadyExists):
            root.add_dataset(SCOPE, dataset)
        attached = {f["name"] for f in root.list_content(SCOPE, dataset)}
        missing = [{"scope": SCOPE, "name": f["name"]} for f in described if f["name"] not in attached]
        if missing:
            root.attach_dids(SCOPE, dataset, missing)
        if container and dataset not in {d["name"] for d in root.list_content(SCOPE, container)}:
            root.attach_dids(SCOPE, container, [{"scope": SCOPE, "name": dataset}])
        # Rules that are OK at once (the replicas exist): the data is "placed", as in production.
        for rse in rses:
            with contextlib.suppress(DuplicateRule):
                root.add_replication_rule([{"scope": SCOPE, "name": dataset}], 1, rse)
        # Closing a dataset is what fills its length/bytes in get_did.
        with contextlib.suppress(UnsupportedOperation):
            if root.get_did(SCOPE, dataset).get("open"):
                root.set_status(SCOPE, dataset, open=False)

    def _register_archived_dataset(self, root: Any) -> None:
        """A dataset whose one file has a replica only in state UNAVAILABLE (catalogue only, no bytes):
        what a user meets when data sits on tape elsewhere, and asks for a replica of."""
        from rucio.common.exception import DataIdentifierAlreadyExists, UnsupportedOperation

        name = f"{ARCHIVED_DATASET}_000.root"
        file = {"scope": SCOPE, "name": name, "bytes": 4096, "adler32": "0a2b0c3d", "state": "U"}
        root.add_replicas(RSES[-1], [file])
        with contextlib.suppress(DataIdentifierAlreadyExists):
            root.add_dataset(SCOPE, ARCHIVED_DATASET)
        if name not in {f["name"] for f in root.list_content(SCOPE, ARCHIVED_DATASET)}:
            root.attach_dids(SCOPE, ARCHIVED_DATASET, [{"scope": SCOPE, "name": name}])
        with contextlib.suppress(UnsupportedOperation):
            if root.get_did(SCOPE, ARCHIVED_DATASET).get("open"):
                root.set_status(SCOPE, ARCHIVED_DATASET, open=False)

    def _upload_user_skim(self, jdoe: Any, files: list[Path]) -> None:
        """The real upload path (UploadClient, posix protocol) as jdoe, into jdoe's scope."""
        from rucio.client.uploadclient import UploadClient
        from rucio.common.exception import DataIdentifierNotFound

        try:
            present = {f["name"] for f in jdoe.list_files(USER_SCOPE, USER_DATASET)}
        except DataIdentifierNotFound:
            present = set()
        items = [
            {
                "path": str(p),
                "rse": RSES[0],
                "did_scope": USER_SCOPE,
                "did_name": p.name,
                "dataset_scope": USER_SCOPE,
                "dataset_name": USER_DATASET,
                "register_after_upload": True,
            }
            for p in files
            if p.name not in present
        ]
        if items:
            UploadClient(_client=jdoe, logger=_rucio_logger(), tracing=False).upload(items)
            _make_world_readable_pfn_tree(self.rucio.rse_path(RSES[0]))

    def _register_big_dataset(self) -> dict[str, Any]:
        """50k registrations through REST cost ~75 s (500 per call on SQLite); straight
        ORM bulk inserts in the server venv, in one transaction, take a fraction of that."""
        payload = {
            "account": "root",
            "scope": SCOPE,
            "dataset": BIG_DATASET,
            "rse": RSES[0],
            "count": big_file_count(),
            "pattern": "Run2012B_SingleMu_{i:06d}.root",
            "seed": 2012,
        }
        return self.rucio.run_in_venv(
            BULK_REGISTER, payload=payload, log=self.home / "bulk_register.log", what="bulk registration",
            timeout=BULK_TIMEOUT,
        )  # fmt: skip

    def _sync_xrootd_protocol(self, root: Any) -> None:
        """SITE1 is also readable via the XRootD origin (it exports <state>/rse) when that
        service is up: add, re-port or remove the ``root`` protocol to match."""
        xrootd = self.state.services.get("xrootd", {})
        port = xrootd.get("origin_port") if xrootd.get("available") else None
        rse = RSES[0]
        wanted = xrootd_protocol(int(port), rse) if port else None
        current = [p for p in root.get_protocols(rse) if p["scheme"] == "root"]
        if current == ([_comparable(wanted)] if wanted else []):
            return
        if current:
            root.delete_protocols(rse, "root")
        if wanted:
            root.add_protocol(rse, wanted)
        # The server caches RSE descriptions for 15 min and does not drop them on change.
        self.rucio.flush_cache()


def xrootd_protocol(port: int, rse: str) -> dict[str, Any]:
    """``root`` protocol for the XRootD origin, whose localroot is <state> and export /rse.

    The prefix starts with "//" on purpose, as on production XRootD RSEs: Rucio glues
    host:port and prefix, and root://h:p/rse/... is a *relative* path that xrootd refuses
    ("[3010] Opening relative path ... is disallowed"); root://h:p//rse/... is absolute.
    """
    # Read only, and after ``file`` (priority 2): local tools keep using the posix path.
    # None disables an operation; 0 would be the *highest* priority in rucio 41.
    read_only = {"read": 2, "write": None, "delete": None}
    return {
        "scheme": "root",
        "hostname": LOOPBACK,
        "port": port,
        "prefix": f"//rse/{rse}/",
        "impl": XROOTD_IMPL,
        "domains": {
            "lan": read_only,
            "wan": {**read_only, "third_party_copy_read": None, "third_party_copy_write": None},
        },
    }


def _comparable(protocol: dict[str, Any]) -> dict[str, Any]:
    """A protocol as get_protocols returns it."""
    return {**protocol, "extended_attributes": None}


def _event_count(path: Path) -> int:
    import uproot

    with uproot.open(path) as f:
        return int(f["Events"].num_entries)


def _rucio_logger() -> Any:
    """UploadClient(tracing=False) both calls ``logger(level, msg)`` and reads ``logger.log``
    (rucio-clients 41): hand it something that is both."""
    fn = functools.partial(log.log)
    fn.log = log.log  # type: ignore[attr-defined]
    return fn


def _did_exists(client: Any, scope: str, name: str) -> bool:
    from rucio.common.exception import DataIdentifierNotFound

    try:
        client.get_did(scope, name)
    except DataIdentifierNotFound:
        return False
    return True


def _copy_world_readable(src: Path, dst: Path, rse_root: Path) -> None:
    """Copy unless an identical-size copy is there; dirs 755 and file 644 so the XRootD
    origin, running as its own user, can serve it."""
    if not (dst.exists() and dst.stat().st_size == src.stat().st_size):
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(dst.name + ".part")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    dst.chmod(0o644)
    for parent in dst.parents:
        if parent == rse_root.parent:
            break
        parent.chmod(0o755)


def _make_world_readable_pfn_tree(rse_root: Path) -> None:
    """UploadClient creates dirs/files with the process umask; make them readable."""
    for dirpath, _, filenames in os.walk(rse_root):
        os.chmod(dirpath, 0o755)
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), 0o644)


# -- NanoAOD-like event generation ------------------------------------------------------------------

MUON_MASS = 0.1057
ELECTRON_MASS = 0.000511
Z_MASS, Z_WIDTH = 91.1876, 2.4952
H_MASS = 125.0
ETA_MAX = 2.4


def write_nanoaod(path: Path, kind: str, n: int, seed: int, compression: Any = "default") -> None:
    """Write ``n`` events of ``kind`` as a NanoAOD-like ``Events`` TTree (uproot's compression unless given)."""
    import awkward as ak
    import numpy as np
    import uproot

    rng = np.random.default_rng(seed)
    muons, electrons = GENERATORS[kind](rng, n)
    met = np.hypot(rng.normal(0, 12, n), rng.normal(0, 12, n)).astype(np.float32)

    def collection(slots: list[dict[str, Any]]) -> Any:
        return _jagged(ak, np, slots, n)

    # Event IDs as in NanoAOD (coffea's NanoAODSchema refuses files without them): one run per
    # file (from the seed), lumi sections of 1000 events, event numbers unique within the run.
    first_event = 1 + (seed % 1000) * 1_000_000
    ids = {
        "run": np.full(n, 190_000 + seed % 10_000, np.uint32),
        "luminosityBlock": (np.arange(n) // 1000 + 1).astype(np.uint32),
        "event": np.arange(first_event, first_event + n, dtype=np.uint64),
    }
    branches = {**ids, "Muon": collection(muons), "Electron": collection(electrons), "MET_pt": met}
    tmp = path.with_name(path.name + ".part")
    options = {} if compression == "default" else {"compression": compression}
    with uproot.recreate(tmp, **options) as f:
        # mktree + extend gives NanoAOD names (nMuon, Muon_pt, ...); assigning the dict directly
        # would write a split struct ("Muon.pt") instead.
        f.mktree(
            "Events", {k: (v.type.content if k in ("Muon", "Electron") else v.dtype) for k, v in branches.items()},
            title="Events",
        )  # fmt: skip
        f["Events"].extend(branches)
    os.replace(tmp, path)


def _jagged(ak: Any, np: Any, slots: list[dict[str, Any]], n: int) -> Any:
    """Candidate slots (arrays of length n with a ``valid`` mask) -> per-event jagged
    collection sorted by descending pt, as in NanoAOD."""
    fields = ("pt", "eta", "phi", "mass", "charge")
    if not slots:
        empty = {
            f: ak.unflatten(np.zeros(0, np.int32 if f == "charge" else np.float32), np.zeros(n, np.int64))
            for f in fields
        }
        return ak.zip(empty)
    valid = np.stack([s["valid"] for s in slots], axis=1)
    pt = np.stack([s["pt"] for s in slots], axis=1)
    order = np.argsort(np.where(valid, -pt, np.inf), axis=1, kind="stable")
    valid = np.take_along_axis(valid, order, axis=1)
    counts = valid.sum(axis=1)
    out = {}
    for f in fields:
        values = np.take_along_axis(np.stack([s[f] for s in slots], axis=1), order, axis=1)[valid]
        out[f] = ak.unflatten(values.astype(np.int32 if f == "charge" else np.float32), counts)
    return ak.zip(out)


def _resonances(rng: Any, n: int, mass: Any, pt_scale: float) -> Any:
    """Lab-frame 4-vectors (E, px, py, pz) of n parents with the given masses."""
    import numpy as np

    pt = rng.exponential(pt_scale, n)
    y = rng.normal(0.0, 1.6, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    mt = np.sqrt(mass**2 + pt**2)
    return np.stack([mt * np.cosh(y), pt * np.cos(phi), pt * np.sin(phi), mt * np.sinh(y)], axis=1)


def _decay(rng: Any, parent: Any, mass: Any, m1: Any, m2: Any) -> tuple[Any, Any]:
    """Isotropic two-body decay in the parent rest frame, boosted to the lab."""
    import numpy as np

    n = len(parent)
    m1 = np.broadcast_to(m1, n)
    m2 = np.broadcast_to(m2, n)
    pstar = np.sqrt(np.clip((mass**2 - (m1 + m2) ** 2) * (mass**2 - (m1 - m2) ** 2), 0, None)) / (2 * mass)
    cos = rng.uniform(-1, 1, n)
    sin = np.sqrt(1 - cos**2)
    phi = rng.uniform(-np.pi, np.pi, n)
    direction = np.stack([sin * np.cos(phi), sin * np.sin(phi), cos], axis=1)
    beta = parent[:, 1:] / parent[:, :1]
    gamma = parent[:, 0] / mass
    b2 = np.sum(beta**2, axis=1)
    factor = np.where(b2 > 0, (gamma - 1) / np.where(b2 > 0, b2, 1), 0.0)

    def boost(e: Any, p: Any) -> Any:
        bp = np.sum(beta * p, axis=1)
        p_lab = p + (factor * bp)[:, None] * beta + (gamma * e)[:, None] * beta
        return np.concatenate([(gamma * (e + bp))[:, None], p_lab], axis=1)

    return (
        boost(np.sqrt(pstar**2 + m1**2), pstar[:, None] * direction),
        boost(np.sqrt(pstar**2 + m2**2), -pstar[:, None] * direction),
    )


def _lepton(
    rng: Any, p4: Any, mass: Any, charge: Any, present: Any, pt_min: float, resolution: float
) -> dict[str, Any]:
    import numpy as np

    n = len(p4)
    pt = np.hypot(p4[:, 1], p4[:, 2]) * (1 + rng.normal(0, resolution, n))
    pt = np.maximum(pt, 1e-3)
    eta = np.arcsinh(p4[:, 3] / pt)
    phi = np.arctan2(p4[:, 2], p4[:, 1])
    valid = present & (np.abs(eta) < ETA_MAX) & (pt > pt_min)
    return {"pt": pt, "eta": eta, "phi": phi, "mass": np.broadcast_to(mass, n), "charge": charge, "valid": valid}


def _dilepton(
    rng: Any, n: int, present: Any, mass: Any, pt_scale: float, lepton_mass: Any, pt_min: float
) -> list[dict[str, Any]]:

    parent = _resonances(rng, n, mass, pt_scale)
    l1, l2 = _decay(rng, parent, mass, lepton_mass, lepton_mass)
    charge = rng.choice([-1, 1], n)
    return [
        _lepton(rng, l1, lepton_mass, charge, present, pt_min, 0.015),
        _lepton(rng, l2, lepton_mass, -charge, present, pt_min, 0.015),
    ]


def _soft(
    rng: Any, n: int, mean: float, slots: int, mass: float, pt_min: float, pt_scale: float
) -> list[dict[str, Any]]:
    """Non-resonant leptons: Poisson multiplicity, steeply falling pt, flat eta."""
    import numpy as np

    multiplicity = rng.poisson(mean, n)
    out = []
    for k in range(slots):
        pt = pt_min + rng.exponential(pt_scale, n)
        out.append(
            {
                "pt": pt,
                "eta": rng.uniform(-ETA_MAX, ETA_MAX, n),
                "phi": rng.uniform(-np.pi, np.pi, n),
                "mass": np.full(n, mass),
                "charge": rng.choice([-1, 1], n),
                "valid": multiplicity > k,
            }
        )
    return out


def _breit_wigner(rng: Any, n: int, mass: float, width: float, low: float, high: float) -> Any:

    m = mass + 0.5 * width * rng.standard_cauchy(n)
    bad = (m < low) | (m > high)
    while bad.any():
        m[bad] = mass + 0.5 * width * rng.standard_cauchy(bad.sum())
        bad = (m < low) | (m > high)
    return m


def _dimuon_data(rng: Any, n: int) -> tuple[list, list]:
    """DoubleMuParked-like: Z, J/psi and Upsilon(1S) peaks over a falling continuum."""
    import numpy as np

    which = rng.choice(4, n, p=[0.30, 0.12, 0.05, 0.53])  # Z, J/psi, Upsilon, continuum
    mass = np.where(which == 0, _breit_wigner(rng, n, Z_MASS, Z_WIDTH, 60, 120), 0.0)
    mass = np.where(which == 1, rng.normal(3.0969, 0.03, n), mass)
    mass = np.where(which == 2, rng.normal(9.4603, 0.08, n), mass)
    mass = np.where(which == 3, 2 * MUON_MASS + 1.0 + rng.exponential(12.0, n), mass)
    muons = _dilepton(rng, n, np.ones(n, bool), mass, 12.0, MUON_MASS, 3.0)
    muons += _soft(rng, n, 0.3, 2, MUON_MASS, 3.0, 4.0)
    electrons = _soft(rng, n, 0.3, 2, ELECTRON_MASS, 5.0, 8.0)
    return muons, electrons


def _z_skim(rng: Any, n: int) -> tuple[list, list]:
    """A user's Z -> mu mu selection."""
    import numpy as np

    mass = _breit_wigner(rng, n, Z_MASS, Z_WIDTH, 70, 110)
    muons = _dilepton(rng, n, np.ones(n, bool), mass, 15.0, MUON_MASS, 10.0)
    return muons, _soft(rng, n, 0.1, 1, ELECTRON_MASS, 5.0, 8.0)


def _zz_4mu(rng: Any, n: int) -> tuple[list, list]:
    import numpy as np

    present = np.ones(n, bool)
    muons = []
    for _ in range(2):
        mass = _breit_wigner(rng, n, Z_MASS, Z_WIDTH, 60, 120)
        muons += _dilepton(rng, n, present, mass, 25.0, MUON_MASS, 5.0)
    return muons + _soft(rng, n, 0.1, 1, MUON_MASS, 3.0, 4.0), _soft(rng, n, 0.2, 1, ELECTRON_MASS, 5.0, 8.0)


def _higgs_4l(rng: Any, n: int) -> tuple[list, list]:
    """H(125) -> Z Z* -> 4l with l = e or mu per Z (4mu, 4e, 2e2mu)."""
    import numpy as np

    higgs = _resonances(rng, n, np.full(n, H_MASS), 20.0)
    m1 = _breit_wigner(rng, n, Z_MASS, Z_WIDTH, 70, 105)
    m2 = rng.triangular(12.0, H_MASS - m1 - 1.0, H_MASS - m1 - 1.0)  # off-shell Z*: up to the kinematic limit
    z1, z2 = _decay(rng, higgs, np.full(n, H_MASS), m1, m2)
    muons, electrons = [], []
    for z, mz in ((z1, m1), (z2, m2)):
        is_mu = rng.random(n) < 0.5
        lepton_mass = np.where(is_mu, MUON_MASS, ELECTRON_MASS)
        l1, l2 = _decay(rng, z, mz, lepton_mass, lepton_mass)
        charge = rng.choice([-1, 1], n)
        for lep, q in ((l1, charge), (l2, -charge)):
            muons.append(_lepton(rng, lep, MUON_MASS, q, is_mu, 5.0, 0.015))
            electrons.append(_lepton(rng, lep, ELECTRON_MASS, q, ~is_mu, 7.0, 0.02))
    return muons, electrons


GENERATORS = {"dimuon_data": _dimuon_data, "z_skim": _z_skim, "zz_4mu": _zz_4mu, "higgs_4l": _higgs_4l}


# Runs in the server venv (RUCIO_CONFIG = server config), payload on stdin.
# The rows are exactly those rucio.core.replica.add_replicas + rucio.core.did.attach_dids
# write (checked column by column against them, is_new included), but inserted with one
# executemany per table into rucio's own tables instead of per-file ORM objects and
# 500-term OR queries (SQLite's expression depth limit), all in one transaction.
BULK_REGISTER = r"""
import json, random, sys, time
from sqlalchemy import insert, select
from rucio.common.exception import DataIdentifierNotFound
from rucio.common.types import InternalAccount, InternalScope
from rucio.core import did as did_core
from rucio.core.rse import get_rse_id
from rucio.core.rse_counter import increase
from rucio.db.sqla import models
from rucio.db.sqla.constants import DIDReEvaluation, DIDType, ReplicaState
from rucio.db.sqla.session import DatabaseOperationType, db_session

p = json.load(sys.stdin)
t0 = time.monotonic()
account, scope, dataset = InternalAccount(p["account"]), InternalScope(p["scope"]), p["dataset"]
rng = random.Random(p.get("seed", 0))
with db_session(DatabaseOperationType.WRITE) as session:
    rse_id = get_rse_id(rse=p["rse"], session=session)
    try:
        ds = did_core.get_did(scope, dataset, session=session)
    except DataIdentifierNotFound:
        did_core.add_did(scope, dataset, DIDType.DATASET, account, session=session)
        ds = {"open": True}
    added = 0
    if ds["open"]:
        present = set(session.execute(
            select(models.DataIdentifierAssociation.child_name).where(
                models.DataIdentifierAssociation.scope == scope,
                models.DataIdentifierAssociation.name == dataset)).scalars())
        dids, replicas, contents, total = [], [], [], 0
        given = p.get("files")  # [[name, bytes, adler32], ...] of real files written beforehand
        for i in range(len(given) if given else p["count"]):
            if given:
                name, size, checksum = given[i]
                events = None
            else:
                name = p["pattern"].format(i=i)
                size = int(rng.lognormvariate(19.8, 0.35))  # ~400 MB median, like NanoAOD files
                checksum = "%08x" % rng.getrandbits(32)
                events = size // 1100
            if name in present:
                continue
            total += size
            dids.append({"scope": scope, "name": name, "account": account, "did_type": DIDType.FILE,
                         "bytes": size, "adler32": checksum, "md5": None, "events": events, "is_new": True})
            replicas.append({"rse_id": rse_id, "scope": scope, "name": name, "bytes": size, "adler32": checksum,
                             "md5": None, "path": None, "state": ReplicaState.AVAILABLE, "lock_cnt": 0,
                             "tombstone": None})
            contents.append({"scope": scope, "name": dataset, "child_scope": scope, "child_name": name,
                             "bytes": size, "adler32": checksum, "md5": None, "guid": None, "events": events,
                             "did_type": DIDType.DATASET, "child_type": DIDType.FILE, "rule_evaluation": True})
        if dids:
            # Core inserts (the tables, not the ORM classes): the ORM's per-row bookkeeping
            # is most of the cost and these rows need none of it.
            session.execute(insert(models.DataIdentifier.__table__), dids)
            session.execute(insert(models.RSEFileAssociation.__table__), replicas)
            session.execute(insert(models.DataIdentifierAssociation.__table__), contents)
            increase(rse_id, len(replicas), total, session=session)
            session.execute(insert(models.UpdatedDID), [{"scope": scope, "name": dataset,
                                                         "rule_evaluation_action": DIDReEvaluation.ATTACH}])
        added = len(dids)
        # Closed, like a published dataset; closing also fills its length/bytes/events.
        did_core.set_status(scope, dataset, open=False, session=session)
    length = did_core.get_did(scope, dataset, session=session)["length"]
print(json.dumps({"added": added, "length": length, "seconds": round(time.monotonic() - t0, 2)}))
"""
