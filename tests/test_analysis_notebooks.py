"""The three demo notebooks (examples/) run unattended, as a physicist would run them.

Each runs top to bottom with nbclient in an "AF analysis" kernel that the facility's own
JupyterLab started (so the magics find their server), against the real Rucio, XCache and
Dask. Asserted per notebook: it computed on the af-lab cluster its own cell started, of the
``slurm`` profile (SLURM backend, the analysis environment) whose workers are isolated (they do
not see the workspace); the Z peak of the histogram file it wrote lies in 86–96 GeV; the files
were read by those workers through the XCache (its login lines name the client's pid) and not
by the kernel; and the histogram it published exists in Rucio with provenance that names
exactly the DID the notebook mounted, the notebook, the cluster and the packages that ran.
No fallback: without SLURM the notebooks fail, and so do these tests.
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


def slurm_profile(lab: dict, facility) -> dict:
    """The site's ``slurm`` profile offering the analysis environment; the test fails (loudly) without it."""
    profiles = api(lab, "GET", "af-lab/clusters/profiles").get("profiles", [])
    slurm = next((p for p in profiles if p.get("name") == "slurm"), None)
    if slurm is None:
        why = facility.state.services.get("slurm", {}).get("reason", "not started")
        pytest.fail(f"the demo notebooks compute on the 'slurm' profile, and this facility has no SLURM ({why})")
    offered = {e["name"] if isinstance(e, dict) else e for e in slurm.get("environments") or []}
    assert "analysis" in offered, f"the slurm profile does not offer the analysis environment: {offered}"
    return slurm


def run_notebook(lab: dict, name: str) -> tuple[nbformat.NotebookNode, dict, list[dict], float]:
    from nbclient import NotebookClient

    rel = f"examples/{name}"
    nb = nbformat.read(REPO / rel, as_version=4)  # this checkout's notebook, where the demo shows it
    (lab["workspace"] / "examples").mkdir(exist_ok=True)
    nbformat.write(nb, lab["workspace"] / rel)
    assert nb.metadata.kernelspec.name == ANALYSIS_KERNEL
    # What the test asks the kernel afterwards: its pid, the scheduler it computed on, the workers'
    # pids and whether they see the notebook's folder, what it published.
    nb.cells.append(nbformat.v4.new_code_cell(
        "import json, os\n"
        "print('CHECK', json.dumps({'kernel': os.getpid(), 'workers': sorted(client.run(os.getpid).values()),\n"
        "                           'scheduler': client.scheduler.address,\n"
        "                           'workers_see_workspace': sorted(set(client.run(os.path.exists, os.getcwd()).values())),\n"
        "                           'published': list(published), 'peak': float(peak),\n"
        "                           'files': list(fileset['cms_opendata:Run2012B_DoubleMuParked']['files'])}))"
    ))  # fmt: skip
    before = {c["id"] for c in api(lab, "GET", "af-lab/clusters")["clusters"]}
    session, kernel = attach(lab, rel, name)
    client = NotebookClient(nb, km=kernel, timeout=900, startup_timeout=120, allow_errors=False)
    t0 = time.monotonic()
    check: dict = {}
    try:
        client.execute()
        (out,) = [o for o in nb.cells[-1].outputs if o.get("name") == "stdout"]
        check = json.loads(out.text.split("CHECK ", 1)[1])
    finally:
        elapsed = time.monotonic() - t0
        if client.kc is not None:
            client.kc.stop_channels()
        api(lab, "DELETE", f"api/sessions/{session['id']}")
        # The notebook's cluster (the one its client talked to; every new one if it failed before saying
        # which): its batch jobs end. Taken before the delete, for the test's checks.
        started = [c for c in api(lab, "GET", "af-lab/clusters")["clusters"] if c["id"] not in before
                   and (not check or c["scheduler_address"] == check["scheduler"])]  # fmt: skip
        for c in started:
            api(lab, "DELETE", f"af-lab/clusters/{c['id']}")
    return nb, check, started, elapsed


def peak_of(path: Path) -> float:
    import uproot

    with uproot.open(path) as f:
        values, edges = f["mass"].to_numpy()
    i = int(values.argmax())
    return float((edges[i] + edges[i + 1]) / 2)


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_demo_notebook_runs_on_the_facility(lab, facility, name, record_property):
    prefix, package = NOTEBOOKS[name]
    slurm_profile(lab, facility)
    cache_log = Path(facility.state.services["xrootd"]["cache_log"])
    log_offset = cache_log.stat().st_size
    nb, check, started, elapsed = run_notebook(lab, name)
    record_property("seconds", round(elapsed, 1))

    # The notebook's own cell started one af-lab cluster: slurm profile and backend, the analysis
    # environment, and the kernel's client talked to its scheduler (no other Dask anywhere).
    assert len(started) == 1, f"the notebook's Dask client ({check['scheduler']}) is no af-lab cluster's"
    (cluster,) = started
    assert (cluster["profile"], cluster["backend"]) == ("slurm", "slurm"), cluster
    assert cluster["options"].get("environment") == "analysis", cluster["options"]
    assert check["scheduler"] == cluster["scheduler_address"], (check["scheduler"], cluster)
    assert len(check["workers"]) == 2 and check["kernel"] not in check["workers"], check
    assert check["workers_see_workspace"] == [False], "SLURM workers must not see the workspace"

    # The histogram file the notebook wrote (and published): the Z peak.
    (did,) = [d for d in check["published"] if d.startswith(f"user.jdoe:{prefix}_")]
    written = lab["workspace"] / "examples" / "results" / did.split(":", 1)[1]
    peak = peak_of(written)
    record_property("peak_GeV", peak)
    print(f"{name}: peak {peak:.2f} GeV, {elapsed:.0f} s on af-lab slurm cluster {cluster['id'][:8]}")
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
    assert (prov["cluster_profile"], prov["environment"]) == ("slurm", "analysis")
    assert prov["af_lab_version"]
    assert prov.get("git_commit") is None  # the workspace is no repository, and af-lab's own never counts


def error_of_one_cell(lab: dict, notebook: str, tag: str, source: str, timeout: int) -> nbformat.NotebookNode:
    """Run ``source`` as one cell in a kernel the server starts for ``notebook``; the cell's error output."""
    from nbclient import NotebookClient

    session, kernel = attach(lab, notebook, tag)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    client = NotebookClient(nb, km=kernel, timeout=timeout, allow_errors=True)
    try:
        client.execute()
    finally:
        if client.kc is not None:
            client.kc.stop_channels()
        api(lab, "DELETE", f"api/sessions/{session['id']}")
    (error,) = [o for o in nb.cells[0].outputs if o.output_type == "error"]
    return error


def test_publish_outside_the_workspace_is_refused(lab, tmp_path):
    outside = tmp_path / f"x_{uuid.uuid4().hex[:6]}.root"
    outside.write_bytes(b"x")
    error = error_of_one_cell(lab, "examples/dimuon_uproot_dask.ipynb", "refuse",
                              f"%load_ext af_lab\n%rucio publish {outside}", timeout=120)
    assert error.ename == "FacilityError" and "outside the Jupyter workspace" in "\n".join(error.traceback)


def test_a_cluster_without_the_notebooks_framework_is_refused_before_submitting(lab, facility):
    slurm_profile(lab, facility)
    before = {c["id"] for c in api(lab, "GET", "af-lab/clusters")["clusters"]}
    line = "%af_cluster new --profile slurm --workers 1 --environment server --require coffea"
    error = error_of_one_cell(lab, "examples/dimuon_coffea.ipynb", "require", f"%load_ext af_lab\nclient = {line}",
                              timeout=300)
    text = "\n".join(error.traceback)
    assert error.ename == "FacilityError", text
    assert "cannot import coffea" in text and "--environment analysis" in text, text
    assert {c["id"] for c in api(lab, "GET", "af-lab/clusters")["clusters"]} == before  # nothing submitted
