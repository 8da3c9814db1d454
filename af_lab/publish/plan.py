"""A publish request, parsed and checked into a plan (pure: no I/O, no Rucio).

The handler's JSON body becomes a :class:`Request`; local files and Rucio's
answers are checked by the service, which fills a :class:`Plan`. Keeping the
parsing here makes every bad-input message testable without a server.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from ..errors import BadRequest, Forbidden
from . import naming

MAX_LIFETIME_DAYS = 36500


@dataclass
class Request:
    instance: str | None
    paths: list[str]
    scope: str
    rse: str
    lifetime_days: float | None
    dataset: tuple[str, str] | None
    dataset_given: bool
    container: tuple[str, str] | None
    name: str | None
    name_prefix: str
    notebook: str | None
    inputs: list[str]
    cluster_profile: str | None
    allow_empty: bool

    @property
    def lifetime_s(self) -> int | None:
        return None if self.lifetime_days is None else max(1, int(round(self.lifetime_days * 86400)))

    def to_json(self) -> dict[str, Any]:
        return {
            "instance": self.instance,
            "paths": self.paths,
            "scope": self.scope,
            "rse": self.rse,
            "lifetime_days": self.lifetime_days,
            "dataset": f"{self.dataset[0]}:{self.dataset[1]}" if self.dataset else None,
            "container": f"{self.container[0]}:{self.container[1]}" if self.container else None,
            "name": self.name,
            "name_prefix": self.name_prefix,
            "notebook": self.notebook,
            "inputs": self.inputs,
            "cluster_profile": self.cluster_profile,
            "allow_empty": self.allow_empty,
        }


def parse(body: dict[str, Any], defaults: dict[str, Any], account: str, instance: dict[str, Any]) -> Request:
    """Validate the JSON body of ``POST publish/jobs`` against types, naming rules and lifetime policy."""
    vo = instance.get("vo") or "def"
    known = {
        "instance",
        "paths",
        "path",
        "scope",
        "rse",
        "lifetime_days",
        "dataset",
        "container",
        "name",
        "name_prefix",
        "notebook",
        "inputs",
        "cluster_profile",
        "allow_empty",
    }
    unknown = sorted(set(body) - known)
    if unknown:
        raise BadRequest(f"Unknown field(s): {', '.join(unknown)}.", field=unknown[0])

    paths = body.get("paths", [body["path"]] if "path" in body else None)
    if isinstance(paths, str):
        paths = [paths]
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) and p.strip() for p in paths):
        raise BadRequest("paths must be a non-empty list of workspace-relative file or folder paths.", field="paths")
    paths = list(dict.fromkeys(p.strip().rstrip("/") or "." for p in paths))  # a leading "/" stays: refused

    scope = body.get("scope") or defaults.get("scope") or (f"user.{account}" if account else None)
    naming.check_scope(scope, "scope", vo)
    rse = body.get("rse") or defaults.get("rse") or instance.get("default_rse")
    if not isinstance(rse, str) or not rse:
        raise BadRequest("No target RSE was given and none is configured as the default.", field="rse")

    lifetime_days = _lifetime(body, defaults)

    dataset_given = "dataset" in body
    dataset = None
    if body.get("dataset") is not None:
        dataset = naming.parse_did(body["dataset"], scope, "dataset", vo)
    container = None
    if body.get("container") is not None:
        container = naming.parse_did(body["container"], scope, "container", vo)
        if dataset_given and dataset is None:  # without a dataset: checked again once defaults apply
            raise BadRequest("A container holds datasets, not files: choose a dataset as well.", field="container")

    name = body.get("name")
    if name is not None:
        name = naming.check_name(name, "name", vo)
    prefix = body.get("name_prefix") or ""
    if not isinstance(prefix, str):
        raise BadRequest("name_prefix must be a string.", field="name_prefix")
    if prefix:
        naming.check_name(prefix + "x", "name_prefix", vo)

    notebook = body.get("notebook")
    if notebook is not None and (not isinstance(notebook, str) or not notebook.strip()):
        raise BadRequest("notebook must be a workspace-relative path.", field="notebook")
    inputs = body.get("inputs") or []
    if not isinstance(inputs, list) or not all(isinstance(i, str) and ":" in i for i in inputs):
        raise BadRequest("inputs must be a list of scope:name DIDs.", field="inputs")
    profile = body.get("cluster_profile")
    if profile is not None and not isinstance(profile, str):
        raise BadRequest("cluster_profile must be a string.", field="cluster_profile")
    allow_empty = body.get("allow_empty", False)
    if not isinstance(allow_empty, bool):
        raise BadRequest("allow_empty must be true or false.", field="allow_empty")
    return Request(
        instance=body.get("instance"),
        paths=paths,
        scope=scope,
        rse=rse,
        lifetime_days=lifetime_days,
        dataset=dataset,
        dataset_given=dataset_given,
        container=container,
        name=name,
        name_prefix=prefix,
        notebook=notebook.strip() if notebook else None,
        inputs=list(dict.fromkeys(inputs)),
        cluster_profile=profile,
        allow_empty=allow_empty,
    )


def _lifetime(body: dict[str, Any], defaults: dict[str, Any]) -> float | None:
    allow_none = bool(defaults.get("allow_no_lifetime", False))
    if "lifetime_days" in body:
        value = body["lifetime_days"]
    else:
        value = defaults.get("lifetime_days")
    if value is None:
        if not allow_none:
            raise Forbidden(
                "A lifetime is required here: this facility does not allow replicas without an "
                "expiry. Give lifetime_days (for example 30).",
                field="lifetime_days",
            )
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise BadRequest("lifetime_days must be a positive number of days.", field="lifetime_days")
    if value > MAX_LIFETIME_DAYS:
        raise BadRequest(f"lifetime_days may be at most {MAX_LIFETIME_DAYS}.", field="lifetime_days")
    return float(value) if not float(value).is_integer() else int(value)


@dataclass
class Item:
    rel: str
    name: str
    bytes: int
    mtime_ns: int
    taken: bool = False


@dataclass
class Plan:
    request: Request
    account: str
    items: list[Item]
    skipped: list[str] = field(default_factory=list)
    dataset_new: bool = False
    container_new: bool = False
    warnings: list[str] = field(default_factory=list)
    quota: dict[str, Any] = field(default_factory=dict)

    @property
    def bytes_total(self) -> int:
        return sum(i.bytes for i in self.items)

    def to_json(self) -> dict[str, Any]:
        req = self.request
        return {
            "instance": req.instance,
            "account": self.account,
            "scope": req.scope,
            "rse": req.rse,
            "lifetime_days": req.lifetime_days,
            "dataset": (
                {"did": f"{req.dataset[0]}:{req.dataset[1]}", "new": self.dataset_new} if req.dataset else None
            ),
            "container": (
                {"did": f"{req.container[0]}:{req.container[1]}", "new": self.container_new} if req.container else None
            ),
            "files_total": len(self.items),
            "bytes_total": self.bytes_total,
            "files_already_named": sum(1 for i in self.items if i.taken),
            "names": [i.name for i in self.items[:50]],
            "skipped": self.skipped[:50],
            "quota": self.quota,
            "warnings": self.warnings,
        }


def default_dataset(req: Request, folders: list[str], vo: str = "def") -> tuple[str, str] | None:
    """A folder publish goes into a dataset named after the folder unless the request says otherwise."""
    if req.dataset_given or req.dataset is not None:
        return req.dataset
    if len(req.paths) == 1 and folders:
        return req.scope, naming.sanitize(PurePosixPath(folders[0]).name or "workspace", vo)
    return None


def names_for(req: Request, files: list[tuple[str, str, bool]], vo: str = "def") -> list[str]:
    """DID names for (rel, member, from_folder) entries, checked for validity and duplicates."""
    if req.name is not None and len(files) != 1:
        raise BadRequest("name applies to a single file; use name_prefix for several files.", field="name")
    names = []
    for _rel, member, from_folder in files:
        if req.name is not None:
            names.append(req.name)
            continue
        base = naming.flatten(member) if from_folder else PurePosixPath(member).name
        names.append(req.name_prefix + base)
    bad = []
    for n in names:
        try:
            naming.check_name(n, "name", vo)
        except BadRequest:
            bad.append(n)
    if bad:
        shown = ", ".join(repr(b) for b in bad[:5]) + (" ..." if len(bad) > 5 else "")
        raise BadRequest(
            f"{len(bad)} file name(s) are not valid Rucio DID names: {shown}. Rename the files, or for a single "
            "file give a name.",
            field="name",
            suggestion=naming.sanitize(bad[0], vo),
            invalid=bad[:50],
        )
    seen: dict[str, str] = {}
    dupes = []
    for (rel, _m, _f), n in zip(files, names, strict=True):
        if n in seen:
            dupes.append(f"{seen[n]} and {rel} -> {n}")
        seen[n] = rel
    if dupes:
        raise BadRequest(
            "Two files would get the same DID name: "
            + "; ".join(dupes[:5])
            + ". Publish them separately or set name_prefix.",
            field="paths",
        )
    return names
