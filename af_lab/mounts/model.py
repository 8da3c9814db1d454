"""What a mount request may say and how a mount is shown: options in, JSON out (pure)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import BadRequest
from .fetcher import Job

ACTIVE = ("queued", "fetching", "replicating")  # states in which a job changes the mount's files

MODES = ("cache", "stream", "replica")
SOURCES = ("auto", "xcache", "direct")


def parse_options(body: dict[str, Any], xcache_url: str) -> dict[str, Any]:
    """The mount options of a POST body, each checked; 400 naming the field otherwise."""
    unknown = set(body) - {"did", "instance", "mode", "target", "source", "prefer_rses", "format", "treename",
                           "rse", "request_rule", "lifetime_days", "refresh"}  # fmt: skip
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(sorted(unknown))}")
    mode = body.get("mode") or "cache"
    if mode not in MODES:
        raise BadRequest(f"mode must be one of {', '.join(MODES)}", field="mode")
    source = body.get("source") or "auto"
    if source not in SOURCES:
        raise BadRequest(f"source must be one of {', '.join(SOURCES)}", field="source")
    if source == "xcache" and not xcache_url:
        raise BadRequest("source 'xcache' needs an XCache (c.AFLab.xcache_url), and none is configured", field="source")
    prefer = body.get("prefer_rses") or []
    if not isinstance(prefer, list) or not all(isinstance(r, str) for r in prefer):
        raise BadRequest("prefer_rses must be a list of RSE names", field="prefer_rses")
    fmt = body.get("format") or "json"
    if fmt not in ("json", "yaml"):
        raise BadRequest("format must be 'json' or 'yaml'", field="format")
    treename = body.get("treename") or "Events"
    if not isinstance(treename, str) or not treename.replace("/", "").replace("_", "").isalnum():
        raise BadRequest("treename must be a ROOT tree name (letters, digits, '_', '/')", field="treename")
    lifetime = body.get("lifetime_days", 7)
    if not isinstance(lifetime, (int, float)) or isinstance(lifetime, bool) or not 0 < lifetime <= 365:
        raise BadRequest("lifetime_days must be a number of days between 0 and 365", field="lifetime_days")
    rse = body.get("rse")
    if rse is not None and not isinstance(rse, str):
        raise BadRequest("rse must be an RSE name", field="rse")
    return {
        "instance": body.get("instance"), "mode": mode, "source": source, "prefer_rses": prefer, "format": fmt,
        "treename": treename, "rse": rse, "request_rule": bool(body.get("request_rule")), "lifetime_days": lifetime,
    }  # fmt: skip


class Kept:
    """Values computed over all of a mount's rows (file counts, problems: slow for 50,000 rows),
    kept for a settled mount until its state changes, for a running one a second."""

    def __init__(self) -> None:
        self._values: dict[tuple[str, str], tuple[tuple, float, Any]] = {}  # (mount id, what) -> (version, when, value)

    def get(self, mount: dict, what: str, compute: Callable[[], Any]) -> Any:
        version, key = (mount["state"], mount["finished"]), (mount["id"], what)
        kept = self._values.get(key)
        if kept and kept[0] == version and (mount["state"] not in ACTIVE or kept[1] > time.monotonic() - 1):
            return kept[2]
        if len(self._values) > 1000:
            self._values.clear()
        value = compute()
        self._values[key] = (version, time.monotonic(), value)
        return value


def counts(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """{state: {"files", "bytes"}} of file rows, as ``Store.file_counts`` gives them for one mount."""
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        c = out.setdefault(r["state"], {"files": 0, "bytes": 0})
        c["files"] += 1
        c["bytes"] += r["bytes"]
    return out


def location(root_dir: Path, mount: dict, f: dict) -> str:
    """What a kernel opens: the workspace path of the link (cache, replica) or the URL (stream)."""
    if mount["mode"] == "stream":
        return f["local_path"]
    target = root_dir / mount["target"]
    return str(target if mount["did_type"] == "file" else target / f["path"])

def file_json(root_dir: Path, mount: dict, f: dict) -> dict[str, Any]:
    return {
        "path": f["path"], "did": f"{f['scope']}:{f['name']}", "bytes": f["bytes"], "adler32": f["adler32"],
        "state": f["state"], "source": f["source"], "error": f["error"],
        "location": location(root_dir, mount, f) if f["state"] == "done" else None,
    }  # fmt: skip

def summary(mount: dict, counts: dict, job: Job | None, problems: Callable[[], list]) -> dict[str, Any]:
    """A mount as the REST API and the event stream show it (``problems`` is asked only when shown)."""
    total_files = sum(c["files"] for c in counts.values())
    total_bytes = sum(c["bytes"] for c in counts.values())
    done = counts.get("done", {"files": 0, "bytes": 0})
    failed = counts.get("failed", {"files": 0, "bytes": 0})
    active = []
    in_flight = 0
    rate = 0.0
    if job:
        for path, (size, got) in list(job.active.items()):
            active.append({"path": path, "bytes": size, "bytes_done": got})
            in_flight += got
        rate = job.rate()
    bytes_done = done["bytes"] + in_flight
    remaining = total_bytes - bytes_done - failed["bytes"]
    opts = mount["options"]
    out = {
        "id": mount["id"],
        "did": f"{mount['scope']}:{mount['name']}",
        "did_type": mount["did_type"],
        "instance": mount["instance"],
        "mode": mount["mode"],
        "source": opts.get("source", "auto"),
        "state": mount["state"],
        "message": mount["message"],
        "target": mount["target"],
        "created": mount["created"],
        "updated": mount["updated"],
        "finished": mount["finished"],
        "files": {"total": total_files, "done": done["files"], "failed": failed["files"], "active": len(active)},
        "bytes": {"total": total_bytes, "done": bytes_done, "failed": failed["bytes"]},
        "rate_bytes_per_s": round(rate, 1),
        "eta_s": round(remaining / rate, 1) if rate > 0 and remaining > 0 and mount["state"] == "fetching" else None,
        "active": active,
        "problems": problems() if (failed["files"] or mount["state"] in ("failed", "ready")) else [],
        "timings": opts.get("timings", {}) | ({"link_ms": opts["link_ms"]} if "link_ms" in opts else {}),
    }
    if mount.get("rule"):
        r = mount["rule"]
        out["rule"] = {k: r.get(k) for k in ("id", "rse", "state", "locks_ok_cnt", "locks_replicating_cnt", "locks_stuck_cnt", "locks_total", "expires_at")}
    if mount["mode"] == "stream":
        out["fileset"] = mount["target"]
    return out
