"""``%rucio`` and ``%af_cluster``: a thin IPython layer over :class:`FacilityClient`.

Loaded with ``%load_ext af_lab``. Usage mistakes give a one-line ``UsageError``; errors
from the server are :class:`FacilityError` (shown as the server's message, no traceback).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.display import display

from ..units import human_bytes
from .client import FacilityClient, StoppedWaiting
from .display import ClusterList, Table
from .session import SessionRecord


class _HelpShown(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that reports mistakes as a one-line UsageError instead of exiting."""

    def error(self, message: str):
        usage = " ".join(self.format_usage().split())
        raise UsageError(f"{self.prog}: {message}. {usage}")

    def exit(self, status: int = 0, message: str | None = None):
        if message:
            print(message, file=sys.stderr)
        raise _HelpShown()


def _whole_number(minimum: int, bound: str):
    """An argparse type: a whole number >= ``minimum`` (``bound`` says so in the error)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {bound}, got {value}")
        return value

    return parse


_positive = _whole_number(1, "a number above 0")
_count = _whole_number(0, "0 or more")


def _modules(text: str) -> list[str]:
    return [m.strip() for m in text.split(",") if m.strip()]


def _lifetime(text: str) -> float | None:
    if text.lower() in ("none", "never", "0"):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of days or 'none', got '{text}'") from None


def _parsers(magic: str, specs: dict[str, tuple[str, list[tuple[tuple, dict]]]]) -> dict[str, _Parser]:
    out = {}
    for cmd, (description, args) in specs.items():
        p = _Parser(prog=f"%{magic} {cmd}", description=description, add_help=True)
        for a, kw in args:
            p.add_argument(*a, **kw)
        out[cmd] = p
    return out


def default_search_type(pattern: str) -> str:
    """The sidebar's default: containers and datasets; an exact ``scope:name`` any type."""
    scope, _, name = pattern.strip().partition(":")
    return "all" if scope and name and "*" not in pattern else "collection"


INSTANCE = (("--instance",), {"metavar": "NAME", "help": "Rucio instance (default: the server's default)"})

RUCIO = _parsers(
    "rucio",
    {
        "search": (
            "DIDs matching a pattern",
            [
                (("pattern",), {"metavar": "SCOPE:NAME*"}),
                (("--type",), {"default": None, "choices": ["all", "collection", "container", "dataset", "file"],
                                "help": "default: containers and datasets; an exact scope:name any type (as the sidebar)"}),
                INSTANCE,
                (("--limit",), {"type": _positive, "metavar": "N", "help": "stop after N results (default: all)"}),
                (("--filter",), {"default": "", "metavar": "EXPR", "help": "Rucio metadata filter, e.g. 'length>3'"}),
                (("--page-size",), {"type": _positive, "default": 1000, "metavar": "N", "help": argparse.SUPPRESS}),
            ],
        ),
        "ls": (
            "what a DID holds",
            [
                (("did",), {"metavar": "SCOPE:NAME"}),
                INSTANCE,
                (("--limit",), {"type": _positive, "metavar": "N"}),
                (("--no-replicas",), {"action": "store_true", "help": "skip the per-file RSE lookup"}),
                (("--page-size",), {"type": _positive, "default": 1000, "metavar": "N", "help": argparse.SUPPRESS}),
            ],
        ),
        "mount": (
            "make a DID available in the workspace",
            [
                (("did",), {"metavar": "SCOPE:NAME"}),
                (("--mode",), {"default": "cache", "choices": ["cache", "stream", "replica"]}),
                (("--source",), {"choices": ["auto", "xcache", "direct"],
                                 "help": "where files are read from: the XCache, the storage directly, or the "
                                         "site's choice (auto)"}),  # fmt: skip
                (("--workers",), {"choices": ["local", "remote"],
                                  "help": "return the fileset for workers on this node or on others (remote: "
                                          "refuses server-local paths)"}),  # fmt: skip
                (("--no-wait",), {"action": "store_true", "help": "return the mount at once"}),
                INSTANCE,
                (("--target",), {"metavar": "PATH", "help": "workspace path (default af-data/<scope>/<name>)"}),
                (("--rse",), {"metavar": "RSE", "help": "replica mode: the mounted RSE to use"}),
                (("--request-rule",), {"action": "store_true", "help": "replica mode: ask Rucio for a rule"}),
            ],
        ),
        "mounts": ("every mount with its state", []),
        "unmount": ("remove a mount (your own files are never deleted)", [(("mount_id",), {"metavar": "ID"})]),
        "publish": (
            "publish workspace files/folders to Rucio",
            [
                (("paths",), {"nargs": "+", "metavar": "PATH"}),
                (("--scope",), {"metavar": "S", "help": "default: the site's default (user.<account>)"}),
                (("--dataset",), {"metavar": "D"}),
                (("--no-dataset",), {"action": "store_true", "help": "one DID per file, no dataset"}),
                (("--container",), {"metavar": "C"}),
                (("--rse",), {"metavar": "R"}),
                (("--lifetime",), {"type": _lifetime, "metavar": "DAYS", "default": argparse.SUPPRESS}),
                (("--name",), {"metavar": "N", "help": "the DID name of a single file"}),
                (("--no-wait",), {"action": "store_true"}),
                INSTANCE,
            ],
        ),
    },
)

CLUSTER = _parsers(
    "af_cluster",
    {
        "list": ("every cluster", []),
        "profiles": ("the site's cluster profiles", []),
        "new": (
            "start a cluster and connect a Dask client to it",
            [
                (("--profile",), {"metavar": "P"}),
                (("--workers",), {"type": _count, "metavar": "N"}),
                (("--name",), {"metavar": "NAME"}),
                (("--cores",), {"type": _positive, "metavar": "N"}),
                (("--memory",), {"metavar": "SIZE", "help": "e.g. '2 GiB'"}),
                (("--environment",), {"metavar": "ENV", "help": "software environment (default: this kernel's)"}),
                (("--require",), {"metavar": "MODULES", "type": _modules,
                                  "help": "modules the workers need, e.g. coffea,ROOT: refused before submitting if the environment lacks one"}),
                (("--no-client",), {"action": "store_true", "help": "return the cluster, not a client"}),
            ],
        ),
        "scale": (
            "ask for N workers",
            [(("cluster",), {"metavar": "ID"}), (("workers",), {"type": _count, "metavar": "N"})],
        ),
        "adapt": (
            "scale between MIN and MAX workers with the load",
            [
                (("cluster",), {"metavar": "ID"}),
                (("minimum",), {"type": _count, "metavar": "MIN"}),
                (("maximum",), {"type": _count, "metavar": "MAX"}),
            ],
        ),
        "close": ("stop a cluster (workers, jobs, scheduler)", [(("cluster",), {"metavar": "ID"})]),
        "client": ("a Dask client for a cluster", [(("cluster",), {"metavar": "ID", "nargs": "?"})]),
    },
)


def _split(magic: str, parsers: dict[str, _Parser], line: str) -> tuple[str, argparse.Namespace] | None:
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"%{magic}: {exc} in: {line}") from None
    names = ", ".join(parsers)
    if not words:
        raise UsageError(f"%{magic}: missing subcommand; one of {names} (%{magic}? explains them).")
    cmd, rest = words[0], words[1:]
    if cmd not in parsers:
        raise UsageError(f"%{magic}: unknown subcommand '{cmd}'; one of {names} (%{magic}? explains them).")
    try:
        return cmd, parsers[cmd].parse_args(rest)
    except _HelpShown:
        return None


def _wait(wait, item: dict, describe, stopped: str) -> dict:
    """``wait(item)`` with one progress line; Ctrl-C stops the waiting, never the job (``stopped`` says so)."""
    line = _ProgressLine()
    try:
        return wait(item, progress=lambda current: line(describe(current)))
    except KeyboardInterrupt:
        line(f"{line.last} (stopped waiting)")
        raise StoppedWaiting(stopped) from None


class _ProgressLine:
    """One output line, updated in place (``display_id``)."""

    def __init__(self):
        self.handle = None
        self.last = None

    def __call__(self, text: str) -> None:
        if text == self.last:
            return
        self.last = text
        data = {"text/plain": text}
        if self.handle is None:
            self.handle = display(data, raw=True, display_id=True)
        else:
            self.handle.update(data, raw=True)


def _eta(seconds: Any) -> str:
    if not seconds:
        return ""
    s = int(seconds)
    return f", ETA {s // 60} min {s % 60:02d} s" if s >= 60 else f", ETA {s} s"


def mount_line(m: dict) -> str:
    f, b = m.get("files") or {}, m.get("bytes") or {}
    text = f"{m['did']} [{m['mode']}] {m['state']}: {f.get('done', 0)}/{f.get('total', 0)} files"
    if b.get("total"):
        pct = 100 * (b.get("done") or 0) / b["total"]
        text += f", {human_bytes(b.get('done'))} of {human_bytes(b['total'])} ({pct:.0f}%)"
    if f.get("failed"):
        text += f", {f['failed']} failed"
    if m["state"] == "fetching" and m.get("rate_bytes_per_s"):
        text += f", {human_bytes(m['rate_bytes_per_s'])}/s{_eta(m.get('eta_s'))}"
    rule = m.get("rule")
    if m["state"] == "replicating" and rule:
        text += f", rule {rule.get('state') or ''} {rule.get('locks_ok_cnt') or 0}/{rule.get('locks_total') or '?'} on {rule.get('rse')}"
    if m["state"] in ("failed", "cancelled") and m.get("message"):
        text += f" — {m['message']}"
    if m.get("warning"):
        text += f" — warning: {m['warning']}"
    return text


def job_line(j: dict) -> str:
    p = j.get("progress") or {}
    target = j.get("did") or (j.get("request") or {}).get("scope") or ""
    text = f"publish {target} {j['state']}"
    if j.get("phase") and j["phase"] != "ended":
        text += f" ({j['phase']})"
    text += f": {p.get('files_done', 0)}/{j.get('files_total') or 0} files"
    if j.get("bytes_total"):
        text += f", {human_bytes(p.get('bytes_done'))} of {human_bytes(j['bytes_total'])}"
    if j["state"] in ("done", "failed", "cancelled", "interrupted") and j.get("message"):
        text += f" — {j['message']}"
    return text


def cluster_line(c: dict) -> str:
    text = f"Cluster '{c.get('name') or ''}' ({c['id'][:8]}, profile {c.get('profile')}) {c.get('state')}: "
    text += f"{c.get('workers', 0)} worker(s)"
    if c.get("requested_workers") not in (None, c.get("workers")):
        text += f" of {c['requested_workers']} requested"
    if c.get("adapt"):
        text += f", adapting {c['adapt'].get('minimum')}-{c['adapt'].get('maximum')}"
    if c.get("scheduler_address"):
        text += f", scheduler {c['scheduler_address']}"
    if c.get("dashboard_url"):
        text += f", dashboard {c['dashboard_url']}"
    for w in c.get("warnings") or []:
        text += f"\n  warning: {w}"
    return text


class Summary(dict):
    """A dict (mount, job, cluster) whose repr is one readable line."""

    def __init__(self, data: dict, line: str):
        super().__init__(data)
        self._line = line

    def __repr__(self) -> str:
        return self._line

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(self._line)


@magics_class
class AFMagics(Magics):
    """The af-lab magics. ``client`` is found on first use (:meth:`FacilityClient.discover`)."""

    def __init__(self, shell=None, client: FacilityClient | None = None):
        super().__init__(shell)
        self._client = client
        self._dask_clients: dict[str, Any] = {}
        self.session = SessionRecord()

    @property
    def client(self) -> FacilityClient:
        if self._client is None:
            self._client = FacilityClient.discover()
        return self._client

    @client.setter
    def client(self, value: FacilityClient | None) -> None:
        self._client = value

    def report_session(self, result=None) -> None:
        """After each cell: tell the server what changed (inputs, cluster, packages), so the Publish
        dialog records what this session did. Silent: provenance never breaks a cell."""
        if self._client is None:
            return  # af-lab not used yet in this session
        try:
            self.session.report(self._client)
        except Exception:
            pass

    # ================================================================== %rucio
    @line_magic
    def rucio(self, line: str = ""):
        """Rucio from a notebook, through the af-lab server (no token ever reaches the kernel).

        %rucio search SCOPE:NAME* [--type all|collection|container|dataset|file]
                      [--instance NAME] [--limit N] [--filter EXPR]
            DIDs matching the pattern (``*`` wildcards in the name; ``scope:`` lists the whole
            scope), every page of them unless --limit. As in the sidebar, the default type is
            containers and datasets, and an exact scope:name (no ``*``) finds a DID of any type. Returns a list of DID dicts (did, scope,
            name, type, bytes, length) that shows as a table.

        %rucio ls SCOPE:NAME [--instance NAME] [--limit N] [--no-replicas]
            What a DID holds: a container's datasets, a dataset's files with size, adler32 and
            the RSEs holding each file, or a file with its RSEs.

        %rucio mount SCOPE:NAME [--mode cache|stream|replica] [--source auto|xcache|direct]
                     [--workers local|remote] [--no-wait] [--instance NAME] [--target PATH]
                     [--rse RSE] [--request-rule]
            Make a DID available. Waits with a progress line, then returns the local paths of
            its files (cache: fetched into the shared cache; replica: links to the site's
            storage) or, for stream, the coffea/uproot fileset {dataset: {"files": {url: tree}}}.
            Ctrl-C stops waiting but NOT the mount: it goes on on the server (%rucio mounts).
            --no-wait returns the mount at once.

        %rucio mounts
            Every mount with its state, files and workspace path.

        %rucio unmount ID
            Remove a mount's links or fileset (your own files there are kept) and release its cache.

        %rucio publish PATH [PATH ...] [--scope S] [--dataset D | --no-dataset] [--container C]
                       [--rse R] [--lifetime DAYS|none] [--name N] [--no-wait] [--instance NAME]
            Upload files or folders of the workspace to Rucio and register them (one folder
            becomes a dataset named after it unless --dataset/--no-dataset; --name names a
            single file's DID). Waits with a progress line and returns the DIDs (container,
            dataset, files). Defaults (scope user.<account>, RSE, lifetime) are the site's.
            Ctrl-C stops waiting, not the job.

        Every subcommand takes -h for its options. Examples::

            %load_ext af_lab
            dids = %rucio search cms_opendata:*DoubleMu* --type dataset
            files = %rucio mount cms_opendata:Run2012B_DoubleMuParked
            fileset = %rucio mount cms_opendata:ZZTo4mu --mode stream
            %rucio publish results/hist.root --scope user.jdoe --lifetime 30
        """
        parsed = _split("rucio", RUCIO, line)
        if parsed is None:
            return None
        cmd, args = parsed
        return getattr(self, f"_rucio_{cmd}")(args)

    def _rucio_search(self, a):
        return self.client.search(
            a.pattern, type=a.type or default_search_type(a.pattern), instance=a.instance, limit=a.limit, filters=a.filter, page_size=a.page_size
        )

    def _rucio_ls(self, a):
        return self.client.contents(
            a.did, instance=a.instance, limit=a.limit, replicas=not a.no_replicas, page_size=a.page_size
        )

    def _rucio_mount(self, a):
        fac = self.client
        options = {"target": a.target, "rse": a.rse, "request_rule": True if a.request_rule else None, "source": a.source}
        m = fac.mount(a.did, mode=a.mode, instance=a.instance, **options)
        self.session.used(m.get("did"))  # an input of this session's work from now on
        if a.no_wait:
            return Summary(m, f"{mount_line(m)} (mount {m['id']}; %rucio mounts shows its progress)")
        m = _wait(
            fac.wait_mount, m, mount_line,
            f"the mount of {m['did']} was NOT cancelled: it goes on on the server (mount {m['id']}). "
            f"%rucio mounts shows its state; the files are at {m.get('fileset') or m.get('target')} once it is ready.",
        )  # fmt: skip
        return fac.mount_result(m, a.workers)

    def _rucio_mounts(self, a):
        return self.client.mounts()

    def _rucio_unmount(self, a):
        fac = self.client
        mount_id = a.mount_id
        if len(mount_id) < 32:  # allow the short id %rucio mounts shows
            hits = [m["id"] for m in fac.mounts() if m["id"].startswith(mount_id)]
            if len(hits) == 1:
                mount_id = hits[0]
        out = fac.unmount(mount_id)
        for note in out.get("notes") or []:
            print(note)
        if out.get("kept"):
            print(f"kept (not made by the mount): {', '.join(out['kept'])}")
        print(f"unmounted {out.get('target') or mount_id}")

    def _rucio_publish(self, a):
        fac = self.client
        kwargs: dict[str, Any] = {"scope": a.scope, "rse": a.rse, "name": a.name, "instance": a.instance}
        if a.no_dataset:
            if a.dataset:
                raise UsageError("%rucio publish: --dataset and --no-dataset exclude each other.")
            kwargs["dataset"] = None
        elif a.dataset:
            kwargs["dataset"] = a.dataset
        if a.container:
            kwargs["container"] = a.container
        if hasattr(a, "lifetime"):
            kwargs["lifetime_days"] = a.lifetime
        # Provenance: the server records what this session reported, for the notebook it runs.
        notebook = self.session.report(fac, force=True)
        if notebook:
            kwargs["notebook"] = notebook
        job = fac.publish(a.paths, **kwargs)
        if a.no_wait:
            return Summary(job, f"{job_line(job)} (job {job['id']})")
        job = _wait(
            fac.wait_publish, job, job_line,
            f"publish job {job['id']} was NOT cancelled: it goes on on the server (the Publish panel shows it).",
        )  # fmt: skip
        for w in job.get("warnings") or []:
            print(f"warning: {w}", file=sys.stderr)
        return fac.published_dids(job)

    # ================================================================== %af_cluster
    @line_magic
    def af_cluster(self, line: str = ""):
        """Dask clusters of the facility (local or HTCondor, from the site's profiles).

        %af_cluster list
            Every cluster: id, name, profile, state, workers, scheduler, dashboard.

        %af_cluster profiles
            The site's profiles and their limits.

        %af_cluster new [--profile P] [--workers N] [--name NAME] [--cores N] [--memory SIZE] [--environment ENV]
                        [--require MOD,MOD] [--no-client]
            Start a cluster (omitted options take the profile's defaults) and return a
            distributed.Client connected to it over TLS (--no-client: the cluster itself).
            Scheduler and workers run ENV (default: this kernel's environment when the site
            lists it); a cluster whose distributed version differs from the kernel's is refused, and
            so is one whose environment cannot import a --require'd module (before anything is submitted).

        %af_cluster scale ID N
            Ask for N workers (stops adaptive scaling).

        %af_cluster adapt ID MIN MAX
            Scale between MIN and MAX workers with the load.

        %af_cluster close ID
            Stop the cluster: its workers, batch jobs and scheduler (and this kernel's client).

        %af_cluster client [ID]
            A distributed.Client for the cluster (default: the only running one). Clusters require
            TLS with their own certificate: this (or FacilityClient.dask_client) fetches it; a bare
            Client("tls://...") is refused.

        ID is the cluster id, a unique prefix of it (as listed) or the cluster's name. Examples::

            client = %af_cluster new --profile local --workers 2
            %af_cluster scale 3f2a 4
            %af_cluster close 3f2a
        """
        parsed = _split("af_cluster", CLUSTER, line)
        if parsed is None:
            return None
        cmd, args = parsed
        return getattr(self, f"_cluster_{cmd}")(args)

    def _cluster_list(self, a) -> ClusterList:
        return self.client.clusters()

    def _cluster_profiles(self, a) -> Table:
        data = self.client.cluster_profiles()

        class Profiles(Table):
            noun = "profile"
            columns = [
                ("name", lambda p: p["name"] + (" (default)" if p["name"] == data.get("default") else "")),
                ("backend", lambda p: p.get("backend") or ""),
                ("description", lambda p: p.get("display_name") or p.get("description") or ""),
                ("limits", lambda p: ", ".join(f"{k}={v}" for k, v in (p.get("limits") or {}).items())),
            ]

        for err in data.get("errors") or []:
            print(f"warning: {err}", file=sys.stderr)
        return Profiles(data.get("profiles") or [])

    def _cluster_new(self, a):
        fac = self.client
        options = {"cores": a.cores, "memory": a.memory}
        c = fac.new_cluster(profile=a.profile, workers=a.workers, name=a.name, environment=a.environment,
                            require=a.require, **options)
        print(cluster_line(c))
        if a.no_client:
            return Summary(c, cluster_line(c))
        return self._dask_client(c)

    def _cluster_scale(self, a):
        fac = self.client
        c = fac.scale(fac.cluster(a.cluster)["id"], a.workers)
        return Summary(c, cluster_line(c))

    def _cluster_adapt(self, a):
        if a.minimum > a.maximum:
            raise UsageError(f"%af_cluster adapt: MIN ({a.minimum}) is above MAX ({a.maximum}).")
        fac = self.client
        c = fac.adapt(fac.cluster(a.cluster)["id"], a.minimum, a.maximum)
        return Summary(c, cluster_line(c))

    def _cluster_close(self, a):
        fac = self.client
        c = fac.cluster(a.cluster)
        client = self._dask_clients.pop(c["id"], None)
        if client is not None:
            client.close()
        fac.close_cluster(c["id"])
        print(f"closed cluster '{c.get('name') or ''}' ({c['id'][:8]})")

    def _cluster_client(self, a):
        fac = self.client
        c = fac.cluster(a.cluster) if a.cluster else fac.default_cluster()
        return self._dask_client(c)

    def _dask_client(self, c: dict):
        client = self._dask_clients.get(c["id"])
        if client is not None and client.status == "running":
            return client
        client = self.client.dask_client(c)
        self._dask_clients[c["id"]] = client
        return client

    def close(self) -> None:
        """Close the Dask clients this kernel opened (the clusters keep running)."""
        for client in self._dask_clients.values():
            try:
                client.close()
            except Exception:
                pass
        self._dask_clients.clear()


_loaded: dict[int, AFMagics] = {}


def load_ipython_extension(ipython) -> None:
    magics = AFMagics(ipython)
    ipython.register_magics(magics)
    _loaded[id(ipython)] = magics
    ipython.events.register("post_run_cell", magics.report_session)



def unload_ipython_extension(ipython) -> None:
    magics = _loaded.pop(id(ipython), None)
    if magics is None:
        return
    magics.close()
    try:
        ipython.events.unregister("post_run_cell", magics.report_session)
    except ValueError:
        pass
    for kind in ("line", "cell"):
        for name in ("rucio", "af_cluster"):
            ipython.magics_manager.magics[kind].pop(name, None)
    ipython.magics_manager.registry.pop(type(magics).__name__, None)
