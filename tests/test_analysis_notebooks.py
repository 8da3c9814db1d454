"""The three demo notebooks (examples/) run unattended, as a physicist would run them.

Each runs top to bottom with nbclient in an "AF analysis" kernel that the facility's own
JupyterLab started (so the magics find their server), against the real Rucio, XCache and
Dask. Asserted per notebook: the Z peak of the histogram file it wrote lies in 86–96 GeV, the
files were read by Dask worker processes through the XCache (its login lines name the client's
pid) and not by the kernel, and the histogram it published exists in Rucio with provenance
that names exactly the DID the notebook mounted, the notebook, and the packages that ran.
"""

from __future__ import annotations

import contextlib
import json
import queue
import re
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest
import requests

from af_facility.lab import ANALYSIS_KERNEL, JupyterLab
from af_facility.rucio_server import rucio_client

REPO = Path(__file__).resolve().parent.parent
ANALYSIS_PYTHON = REPO / ".venv-analysis" / "bin" / "python"
DATASET = "cms_opendata:Run2012B_DoubleMuParked"
NOTEBOOKS = {
    "dimuon_uproot_dask.ipynb": ("dimuon_uproot", "uproot"),
    "dimuon_coffea.ipynb": ("dimuon_coffea", "coffea"),
    "dimuon_rdataframe.ipynb": ("dimuon_rdf", "root"),
}
CLUSTER_CELL = "%af_cluster new --profile slurm"
# Until af-lab's clusters run their scheduler and workers in a profile's environment (the
# analysis stack: dask-awkward, coffea, ROOT), the notebooks' cluster cell is swapped for a
# Dask cluster of the kernel's own environment, with worker processes just the same.
LOCAL_CLUSTER = (
    "from distributed import Client, LocalCluster\n"
    "client = Client(LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None))\n"
    "client"
)
# The XCache traces every open as "<user>.<client pid>:<fd>@<host> ofs_open: <flags> fn=<path>".
OPEN = re.compile(r"\S+?\.(\d+):\d+@\S+ ofs_open: \S+ fn=(\S+)")

pytestmark = [
    pytest.mark.facility,
    pytest.mark.skipif(not ANALYSIS_PYTHON.exists(), reason="no .venv-analysis: run ./dev.sh setup"),
]


class ServerKernel:
    """nbclient's handle on a kernel the Jupyter server started and owns (nbclient never stops it)."""

    has_kernel = True

    def __init__(self, connection_file: Path):
        self.connection_file = connection_file

    def client(self):
        from jupyter_client.asynchronous import AsyncKernelClient

        kc = AsyncKernelClient(connection_file=str(self.connection_file))
        kc.load_connection_file()
        return kc

    async def is_alive(self) -> bool:
        return True

    async def shutdown_kernel(self, now: bool = False) -> None:
        """The server's to do (the test deletes the session)."""

    async def cleanup_resources(self, restart: bool = False) -> None:
        pass


def attach(lab: dict, rel: str, name: str) -> tuple[dict, ServerKernel]:
    """A notebook session the server starts (an AF analysis kernel), once that kernel is idle."""
    session = api(lab, "POST", "api/sessions", json={"path": rel, "type": "notebook", "name": name,
                                                     "kernel": {"name": ANALYSIS_KERNEL}})  # fmt: skip
    connection_file = lab["runtime"] / f"kernel-{session['kernel']['id']}.json"
    # nbclient takes a kernel whose heartbeat is late for dead: wait for its first kernel_info reply.
    from jupyter_client import BlockingKernelClient

    kc = BlockingKernelClient(connection_file=str(connection_file))
    kc.load_connection_file()
    kc.start_channels(hb=False)
    try:
        msg_id, deadline = kc.kernel_info(), time.monotonic() + 300
        while True:
            assert time.monotonic() < deadline, "the analysis kernel did not answer in 300 s"
            with contextlib.suppress(queue.Empty):
                if kc.get_shell_msg(timeout=5)["parent_header"].get("msg_id") == msg_id:
                    break
    finally:
        kc.stop_channels()
    return session, ServerKernel(connection_file)


@pytest.fixture(scope="module")
def lab(facility):
    """The facility's JupyterLab: the one the demo opens, with the notebooks in its workspace."""
    service = JupyterLab(facility.state)
    started = not service.running()
    info = service.up()
    yield {**info, "runtime": facility.state.root / "lab" / "runtime", "workspace": Path(info["workspace"])}
    if started:
        service.down()


def api(lab: dict, method: str, path: str, **kwargs):
    url = f"http://127.0.0.1:{lab['port']}/{path.lstrip('/')}"
    resp = requests.request(method, url, headers={"Authorization": f"token {lab['token']}"}, timeout=120, **kwargs)
    resp.raise_for_status()
    return resp.json() if resp.content else None


def cluster_cell(lab: dict) -> str | None:
    """The cluster cell to use instead of the notebook's, or None when af-lab's slurm profile
    offers the analysis environment."""
    profiles = api(lab, "GET", "af-lab/clusters/profiles")
    slurm = next((p for p in profiles.get("profiles", []) if p.get("name") == "slurm"), None)
    if slurm and "analysis" in {e["name"] if isinstance(e, dict) else e for e in slurm.get("environments") or []}:
        return None
    return LOCAL_CLUSTER


def run_notebook(lab: dict, name: str, replace_cluster: str | None) -> tuple[nbformat.NotebookNode, dict, float]:
    from nbclient import NotebookClient

    rel = f"examples/{name}"
    nb = nbformat.read(REPO / rel, as_version=4)  # this checkout's notebook, where the demo shows it
    (lab["workspace"] / "examples").mkdir(exist_ok=True)
    nbformat.write(nb, lab["workspace"] / rel)
    assert nb.metadata.kernelspec.name == ANALYSIS_KERNEL
    if replace_cluster:
        (cell,) = [c for c in nb.cells if CLUSTER_CELL in c.source]
        cell.source = replace_cluster
    # What the test asks the kernel afterwards: its pid, the workers' pids, what it published.
    nb.cells.append(nbformat.v4.new_code_cell(
        "import json, os\n"
        "print('CHECK', json.dumps({'kernel': os.getpid(), 'workers': sorted(client.run(os.getpid).values()),\n"
        "                           'published': list(published), 'peak': float(peak),\n"
        "                           'files': list(fileset['cms_opendata:Run2012B_DoubleMuParked']['files'])}))"
    ))  # fmt: skip
    before = {c["id"] for c in api(lab, "GET", "af-lab/clusters")["clusters"]}
    session, kernel = attach(lab, rel, name)
    client = NotebookClient(nb, km=kernel, timeout=900, startup_timeout=120, allow_errors=False)
    t0 = time.monotonic()
    try:
        client.execute()
    finally:
        if client.kc is not None:
            client.kc.stop_channels()
        api(lab, "DELETE", f"api/sessions/{session['id']}")
        for c in api(lab, "GET", "af-lab/clusters")["clusters"]:  # the notebook's cluster: its batch jobs end
            if c["id"] not in before:
                api(lab, "DELETE", f"af-lab/clusters/{c['id']}")
    elapsed = time.monotonic() - t0
    (out,) = [o for o in nb.cells[-1].outputs if o.get("name") == "stdout"]
    check = json.loads(out.text.split("CHECK ", 1)[1])
    return nb, check, elapsed


def peak_of(path: Path) -> float:
    import uproot

    with uproot.open(path) as f:
        values, edges = f["mass"].to_numpy()
    i = int(values.argmax())
    return float((edges[i] + edges[i + 1]) / 2)


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_demo_notebook_runs_on_the_facility(lab, facility, name, record_property):
    prefix, package = NOTEBOOKS[name]
    cache_log = Path(facility.state.services["xrootd"]["cache_log"])
    log_offset = cache_log.stat().st_size
    replace = cluster_cell(lab)
    nb, check, elapsed = run_notebook(lab, name, replace)
    record_property("seconds", round(elapsed, 1))
    record_property("cluster", "af-lab slurm" if replace is None else "LocalCluster of the analysis kernel")

    # The histogram file the notebook wrote (and published): the Z peak.
    (did,) = [d for d in check["published"] if d.startswith(f"user.jdoe:{prefix}_")]
    written = lab["workspace"] / "examples" / "results" / did.split(":", 1)[1]
    peak = peak_of(written)
    record_property("peak_GeV", peak)
    print(f"{name}: peak {peak:.2f} GeV, {elapsed:.0f} s, cluster: {replace and 'LocalCluster' or 'af-lab slurm'}")
    assert 86 <= peak <= 96 and check["peak"] == pytest.approx(peak)
    assert any(o.get("output_type") == "display_data" and "image/png" in o.get("data", {})
               for c in nb.cells for o in c.get("outputs", [])) or (written.with_suffix(".png")).exists()  # fmt: skip

    # Workers read every file through the XCache; the kernel opened at most one (uproot.dask
    # reads the first file's header for the columns' types), never the data of all.
    with cache_log.open() as log:
        log.seek(log_offset)
        opens = {(int(m.group(1)), m.group(2).lstrip("/")) for m in OPEN.finditer(log.read())}
    files = {urlparse(url).path.lstrip("/") for url in check["files"]}
    assert files and all(url.startswith(facility.state.services["xrootd"]["cache_url"]) for url in check["files"])
    by_workers = {path for pid, path in opens if pid in check["workers"]}
    by_kernel = {path for pid, path in opens if pid == check["kernel"]}
    assert files <= by_workers, (files - by_workers, opens, check)
    assert len(by_kernel) <= 1, by_kernel
    record_property("files_opened_by_kernel", len(by_kernel))

    # The published histogram exists in Rucio, with this session's provenance and nothing else.
    scope, dname = did.split(":", 1)
    with rucio_client(facility.state.services["rucio"]["client_configs"]["jdoe"]) as c:
        assert c.get_did(scope, dname)["type"].upper() == "FILE"
    prov = api(lab, "GET", "af-lab/publish/provenance", params={"did": did})["provenance"]
    assert prov["inputs"] == [DATASET]
    assert prov["notebook"] == f"examples/{name}"
    assert any(p.startswith(f"{package}==") for p in prov["packages"]), prov["packages"]
    assert any(p.startswith("dask==2025.3.") for p in prov["packages"]), prov["packages"]
    if replace is None:  # the notebook's own cluster cell: an af-lab slurm cluster of the analysis environment
        assert (prov["cluster_profile"], prov["environment"]) == ("slurm", "analysis")
    else:
        assert prov["environment"] == str(REPO / ".venv-analysis")
    assert prov["af_lab_version"]
    assert prov.get("git_commit") is None  # the workspace is no repository, and af-lab's own never counts


def test_publish_outside_the_workspace_is_refused(lab, tmp_path):
    outside = tmp_path / f"x_{uuid.uuid4().hex[:6]}.root"
    outside.write_bytes(b"x")
    rel = "examples/dimuon_uproot_dask.ipynb"
    session, kernel = attach(lab, rel, "refuse")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"%load_ext af_lab\n%rucio publish {outside}")])
    from nbclient import NotebookClient

    client = NotebookClient(nb, km=kernel, timeout=120, allow_errors=True)
    try:
        client.execute()
    finally:
        if client.kc is not None:
            client.kc.stop_channels()
        api(lab, "DELETE", f"api/sessions/{session['id']}")
    (error,) = [o for o in nb.cells[0].outputs if o.output_type == "error"]
    assert error.ename == "FacilityError" and "outside the Jupyter workspace" in "\n".join(error.traceback)
