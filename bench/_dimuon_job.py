"""One timed run of the dimuon analysis, in the analysis environment (run by bench_analysis.py).

    .venv-analysis/bin/python bench/_dimuon_job.py SPEC_JSON

SPEC: {"files": [url or path], "framework": "uproot"|"coffea"|"rdf", "workers": N,
       "cluster": "local" | {"url", "token", "profile", "environment"} (an af-lab cluster),
       "handler": "xrootd" (default: uproot's XRootDSource for root:// URLs, as the notebooks do) | "fsspec"
                  (uproot's own default, fsspec-xrootd)}
Prints one JSON line: events, seconds (the computation only: cluster start excluded), peak.
"""

from __future__ import annotations

import json
import sys
import time


def uproot_options(files, handler):
    """uproot reads root:// URLs through fsspec-xrootd unless told otherwise; its XRootDSource (the XRootD
    client's vector reads) is ~1.5x faster through the XCache (measured: bench/README.md)."""
    import uproot

    if handler == "xrootd" and files and all(f.startswith("root://") for f in files):
        return {"handler": uproot.source.xrootd.XRootDSource}
    return {}


def uproot_dask(files, client, handler):
    import dask_awkward as dak
    import hist.dask as hda
    import numpy as np
    import uproot

    events = uproot.dask(
        {f: "Events" for f in files},
        filter_name=["nMuon", "Muon_*"],
        open_files=False,
        **uproot_options(files, handler),
    )
    two = events[dak.num(events.Muon_pt, axis=1) == 2]
    pairs = two[two.Muon_charge[:, 0] != two.Muon_charge[:, 1]]
    pt, eta, phi = pairs.Muon_pt, pairs.Muon_eta, pairs.Muon_phi
    mass = np.sqrt(2 * pt[:, 0] * pt[:, 1] * (np.cosh(eta[:, 0] - eta[:, 1]) - np.cos(phi[:, 0] - phi[:, 1])))
    h = hda.Hist.new.Reg(120, 60, 120, name="mass").Double().fill(mass=mass)
    n = dak.num(events.nMuon, axis=0)
    h, n = client.compute([h, n], sync=True)
    return int(n), h.axes[0].centers[h.values().argmax()]


def coffea(files, client, handler):
    import awkward as ak
    import hist
    from coffea import processor
    from coffea.nanoevents import NanoAODSchema

    class Dimuon(processor.ProcessorABC):
        def process(self, events):
            mu = events.Muon[ak.num(events.Muon) == 2]
            mu = mu[mu.charge[:, 0] != mu.charge[:, 1]]
            h = hist.Hist.new.Reg(120, 60, 120, name="mass").Double()
            h.fill(mass=ak.to_numpy((mu[:, 0] + mu[:, 1]).mass))
            return {"mass": h, "events": len(events)}

        def postprocess(self, acc):
            return acc

    run = processor.Runner(
        executor=processor.DaskExecutor(client=client, status=False), schema=NanoAODSchema, chunksize=100_000
    )
    out = run(
        {"big": {"files": {f: "Events" for f in files}}}, processor_instance=Dimuon(), treename="Events",
        uproot_options=uproot_options(files, handler),
    )  # fmt: skip
    h = out["mass"]
    return out["events"], h.axes[0].centers[h.values().argmax()]


def rdf(files, client, handler):
    import ROOT

    df = ROOT.RDF.Experimental.Distributed.Dask.RDataFrame("Events", files, daskclient=client, npartitions=len(files))
    n = df.Count()
    sel = df.Filter("nMuon == 2").Filter("Muon_charge[0] != Muon_charge[1]")
    sel = sel.Define("mass", "ROOT::VecOps::InvariantMass(Muon_pt, Muon_eta, Muon_phi, Muon_mass)")
    h = sel.Histo1D(("mass", "", 120, 60, 120), "mass")
    th = h.GetValue()
    return int(n.GetValue()), th.GetXaxis().GetBinCenter(th.GetMaximumBin())


def connect(spec):
    """(client, closer) for a bare LocalCluster or an af-lab cluster of the same size."""
    from distributed import Client, LocalCluster

    workers = int(spec["workers"])
    if spec["cluster"] == "local":
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
        return client, lambda: (client.close(), cluster.close())
    from af_lab.kernel import FacilityClient

    c = spec["cluster"]
    fac = FacilityClient(c["url"], c["token"])
    made = fac.new_cluster(c["profile"], workers=workers, environment=c.get("environment"))
    while not made.get("scheduler_address"):
        time.sleep(1)
        made = fac.cluster(made["id"])
    client = fac.dask_client(made)
    client.wait_for_workers(workers, timeout=300)
    return client, lambda: (client.close(), fac.close_cluster(made["id"]))


def main() -> None:
    spec = json.loads(sys.argv[1])
    client, close = connect(spec)
    try:
        client.run(lambda: None)  # workers up and answering before the clock starts
        t0 = time.perf_counter()
        analysis = {"uproot": uproot_dask, "coffea": coffea, "rdf": rdf}[spec["framework"]]
        events, peak = analysis(spec["files"], client, spec.get("handler", "xrootd"))
        seconds = time.perf_counter() - t0
    finally:
        try:
            close()
        except Exception as exc:  # a worker slow to stop (a loaded machine) does not void the timing
            print(f"closing the cluster: {exc!r}", file=sys.stderr)
    print(json.dumps({"events": events, "seconds": round(seconds, 2), "events_per_s": round(events / seconds),
                      "peak": float(peak)}))  # fmt: skip


if __name__ == "__main__":
    main()
