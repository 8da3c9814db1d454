"""Cluster profiles: what a site offers (``c.AFLab.cluster_profiles``) and what a user may ask for.

A profile names a backend (``local`` or ``htcondor``), the defaults of the
options form and the admin limits. :meth:`Profile.validate` turns a user's form
into :class:`ClusterOptions` or raises :class:`OverLimit` naming the limit, so
the same check guards af-lab's REST, the sidebar and dask-labextension's
buttons. Pure Python: no tornado, no dask scheduler.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from dask.utils import format_bytes, parse_bytes

from ..errors import BadRequest, NotFound

BACKENDS = ("local", "htcondor", "slurm")  # the default; the service passes the registry's names
# Keys a profile may carry; anything else is a typo an admin wants to hear about.
PROFILE_KEYS = {
    "backend", "display_name", "description", "defaults", "limits",
    # htcondor only
    "job_extra_directives", "submit_command_extra", "cancel_command_extra", "query_command_extra",
    "scheduler_host", "worker_extra_args", "job_script_prologue", "python", "death_timeout",
    "image_directive", "worker_start_timeout", "ship_token",
    # slurm only (plus the batch keys above)
    "slurm_conf", "partition", "account", "walltime", "worker_launcher",
    # software environments (names from c.AFLab.cluster_environments)
    "environments", "default_environment",
}
LIMIT_KEYS = {"max_workers", "max_cores", "max_memory", "max_disk", "max_gpus", "max_clusters", "images", "universes"}
OPTION_KEYS = ("cores", "memory", "disk", "gpus", "image", "universe", "workers", "adapt")
NAME_RE = re.compile(r"^[\w .:@+-]{1,64}$")


class OverLimit(BadRequest):
    """An option is outside what the profile allows; ``limit`` names the admin setting."""

    kind = "over_limit"


@dataclass(frozen=True)
class ClusterOptions:
    """A validated request: resources per worker plus the initial size."""

    cores: int
    memory: int  # bytes per worker
    disk: int | None = None  # bytes per worker (htcondor)
    gpus: int = 0
    image: str | None = None
    universe: str | None = None
    workers: int = 0
    adapt: tuple[int, int] | None = None  # (minimum, maximum)
    environment: str | None = None  # the software environment's name (chosen by the service)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["memory"] = format_bytes(self.memory)
        data["disk"] = format_bytes(self.disk) if self.disk is not None else None
        data["adapt"] = {"minimum": self.adapt[0], "maximum": self.adapt[1]} if self.adapt else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClusterOptions:
        adapt = data.get("adapt")
        return cls(
            cores=int(data["cores"]),
            memory=parse_bytes(data["memory"]),
            disk=parse_bytes(data["disk"]) if data.get("disk") is not None else None,
            gpus=int(data.get("gpus") or 0),
            image=data.get("image"),
            universe=data.get("universe"),
            workers=int(data.get("workers") or 0),
            adapt=(int(adapt["minimum"]), int(adapt["maximum"])) if adapt else None,
            environment=data.get("environment"),
        )


@dataclass
class Profile:
    name: str
    backend: str
    display_name: str
    description: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)  # backend settings (job directives, extra args, ...)

    # ------------------------------------------------------------------ limits
    @property
    def max_workers(self) -> int | None:
        return self.limits.get("max_workers")

    def _max_bytes(self, key: str) -> int | None:
        value = self.limits.get(key)
        return parse_bytes(value) if value is not None else None

    @property
    def fields(self) -> tuple[str, ...]:
        """The options this profile's form offers."""
        out = ["cores", "memory"]
        if self.backend == "htcondor":
            out.append("disk")
            if self.limits.get("max_gpus") or self.defaults.get("gpus"):
                out.append("gpus")
            if self.limits.get("images") or self.defaults.get("image"):
                out.append("image")
            if self.limits.get("universes") or self.defaults.get("universe"):
                out.append("universe")
        elif self.backend == "slurm" and (self.limits.get("max_gpus") or self.defaults.get("gpus")):
            out.append("gpus")  # --gres=gpu:N
        out += ["workers", "adapt"]
        return tuple(out)

    # ------------------------------------------------------------------ validation
    def validate(self, form: dict[str, Any]) -> ClusterOptions:
        """Defaults filled in, types checked, every limit enforced (the limit is named in the error)."""
        unknown = sorted(set(form) - set(self.fields))
        if unknown:
            raise BadRequest(
                f"unknown option(s) {', '.join(unknown)} for profile {self.name!r} "
                f"(it accepts {', '.join(self.fields)})",
                field=unknown[0],
            )
        values = {**self.defaults, **{k: v for k, v in form.items() if v is not None or k == "adapt"}}

        cores = self._int(values, "cores", default=1, minimum=1, limit="max_cores")
        memory = self._bytes(values, "memory", limit="max_memory", required=True)
        disk = self._bytes(values, "disk", limit="max_disk", required=self.backend == "htcondor")
        gpus = self._int(values, "gpus", default=0, minimum=0, limit="max_gpus") if "gpus" in self.fields else 0
        image = self._choice(values, "image", "images") if "image" in self.fields else None
        universe = self._choice(values, "universe", "universes") if "universe" in self.fields else None
        workers = self._int(values, "workers", default=0, minimum=0, limit="max_workers")
        adapt = self.validate_adapt(values.get("adapt"))
        return ClusterOptions(cores, memory, disk, gpus, image, universe, workers, adapt)

    def validate_workers(self, n: Any) -> int:
        return self._int({"workers": n}, "workers", default=None, minimum=0, limit="max_workers")

    def validate_adapt(self, adapt: Any) -> tuple[int, int] | None:
        if adapt is None:
            return None
        if not isinstance(adapt, dict) or set(adapt) - {"minimum", "maximum"}:
            raise BadRequest('adapt must be {"minimum": int, "maximum": int} or null', field="adapt")
        minimum = self._int(adapt, "minimum", default=0, minimum=0, limit="max_workers", label="adapt minimum")
        maximum = self._int(
            adapt, "maximum", default=self.max_workers, minimum=0, limit="max_workers", label="adapt maximum"
        )
        if maximum is None:
            raise BadRequest("adapt needs a maximum (this profile sets no max_workers)", field="adapt")
        if minimum > maximum:
            raise BadRequest(f"adapt minimum {minimum} is above adapt maximum {maximum}", field="adapt")
        return minimum, maximum

    def _int(self, values, key, default, minimum, limit, label=None):
        label = label or key
        value = values.get(key, default)
        if value is None:
            if default is None:
                raise BadRequest(f"{label} is required", field=key)
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise BadRequest(f"{label} must be a whole number, not {value!r}", field=key)
        if value < minimum:
            raise BadRequest(f"{label} must be at least {minimum}", field=key)
        maximum = self.limits.get(limit)
        if maximum is not None and value > maximum:
            raise OverLimit(
                f"{label} {value} is over profile {self.name!r}'s limit {limit} = {maximum}",
                field=key, limit=limit, value=value, maximum=maximum,
            )
        return value

    def _bytes(self, values, key, limit, required):
        value = values.get(key)
        if value is None:
            if required:
                raise BadRequest(f"{key} is required for profile {self.name!r} (e.g. \"2 GiB\")", field=key)
            return None
        try:
            n = parse_bytes(value) if not isinstance(value, bool) else None
        except (ValueError, TypeError):
            n = None
        if n is None or n <= 0:
            raise BadRequest(f"{key} {value!r} is not an amount of bytes like \"4 GiB\"", field=key)
        maximum = self._max_bytes(limit)
        if maximum is not None and n > maximum:
            raise OverLimit(
                f"{key} {format_bytes(n)} is over profile {self.name!r}'s limit {limit} = {format_bytes(maximum)}",
                field=key, limit=limit, value=format_bytes(n), maximum=format_bytes(maximum),
            )
        return n

    def _choice(self, values, key, limit):
        value = values.get(key)
        allowed = self.limits.get(limit)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise BadRequest(f"{key} must be a non-empty string", field=key)
        if allowed is not None and value not in allowed:
            raise OverLimit(
                f"{key} {value!r} is not allowed by profile {self.name!r}'s limit {limit} "
                f"(allowed: {', '.join(allowed)})",
                field=key, limit=limit, value=value, allowed=list(allowed),
            )
        return value

    # ------------------------------------------------------------------ the form
    def form(self) -> dict[str, Any]:
        """The options form as JSON Schema (draft 7), ready for a schema form renderer."""
        lim, dflt = self.limits, self.defaults
        props: dict[str, Any] = {}
        props["cores"] = _num("Cores per worker", dflt.get("cores", 1), 1, lim.get("max_cores"))
        props["memory"] = _bytes_field("Memory per worker", dflt.get("memory"), lim.get("max_memory"))
        if "disk" in self.fields:
            props["disk"] = _bytes_field("Disk per worker", dflt.get("disk"), lim.get("max_disk"))
        if "gpus" in self.fields:
            props["gpus"] = _num("GPUs per worker", dflt.get("gpus", 0), 0, lim.get("max_gpus"))
        if "image" in self.fields:
            props["image"] = _choice_field("Container image", dflt.get("image"), lim.get("images"))
        if "universe" in self.fields:
            props["universe"] = _choice_field("HTCondor universe", dflt.get("universe"), lim.get("universes"))
        props["workers"] = _num("Workers to start", dflt.get("workers", 0), 0, lim.get("max_workers"))
        adapt_max = {"type": "integer", "minimum": 0, "title": "Maximum workers"}
        if lim.get("max_workers") is not None:
            adapt_max["maximum"] = lim["max_workers"]
        props["adapt"] = {
            "title": "Adaptive scaling",
            "description": "Let Dask add and remove workers between these bounds (overrides 'workers').",
            "type": ["object", "null"],
            "properties": {"minimum": {"type": "integer", "minimum": 0, "title": "Minimum workers"}, "maximum": adapt_max},
            "additionalProperties": False,
            "default": dflt.get("adapt"),
        }
        return {
            "name": self.name,
            "display_name": self.display_name,
            "description": self.description,
            "backend": self.backend,
            "limits": dict(lim),
            "schema": {
                "$schema": "http://json-schema.org/draft-07/schema#",
                "title": self.display_name,
                "type": "object",
                "properties": props,
                "required": [k for k in ("memory", "disk") if k in props and props[k].get("default") is None],
                "additionalProperties": False,
            },
        }


def _num(title, default, minimum, maximum):
    out = {"type": "integer", "title": title, "minimum": minimum, "default": default}
    if maximum is not None:
        out["maximum"] = maximum
        out["description"] = f"at most {maximum}"
    return out


def _bytes_field(title, default, maximum):
    out = {"type": "string", "title": title, "pattern": r"^\s*\d+(\.\d+)?\s*[kKMGTP]?i?B?\s*$"}
    if default is not None:
        out["default"] = default
    if maximum is not None:
        out["description"] = f"at most {format_bytes(parse_bytes(maximum))}"
        out["x-maximum-bytes"] = parse_bytes(maximum)
    return out


def _choice_field(title, default, allowed):
    out = {"type": "string", "title": title}
    if allowed:
        out["enum"] = list(allowed)
    if default is not None:
        out["default"] = default
    return out


# ---------------------------------------------------------------------- loading
def default_local_profile() -> dict[str, Any]:
    """The embedded default when a site configures nothing: this machine, within its size."""
    cpus = os.cpu_count() or 1
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        total = 4 * 2**30
    return {
        "backend": "local",
        "display_name": "Local (this server)",
        "description": "Dask workers as processes next to your notebook server.",
        "defaults": {"cores": 1, "memory": format_bytes(min(2 * 2**30, total // 2)), "workers": 0},
        "limits": {"max_workers": cpus, "max_cores": cpus, "max_memory": format_bytes(total)},
    }


def load_profiles(raw: dict[str, dict], backends: tuple[str, ...] = BACKENDS) -> tuple[dict[str, Profile], list[str]]:
    """Parse ``c.AFLab.cluster_profiles``. Broken profiles are left out and reported, not fatal."""
    raw = raw or {"local": default_local_profile()}
    profiles: dict[str, Profile] = {}
    errors: list[str] = []
    for name, spec in raw.items():
        try:
            profiles[name] = _parse(name, spec, backends)
        except (ValueError, TypeError) as exc:
            errors.append(f"cluster profile {name!r} is ignored: {exc}")
    return profiles, errors


def _parse(name: str, spec: dict, backends: tuple[str, ...]) -> Profile:
    if not isinstance(spec, dict):
        raise ValueError("a profile must be a dict")
    unknown = set(spec) - PROFILE_KEYS
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))}")
    backend = spec.get("backend", "local")
    if backend not in backends:
        raise ValueError(f"backend {backend!r} is not one of {', '.join(backends)}")
    limits = dict(spec.get("limits") or {})
    bad = set(limits) - LIMIT_KEYS
    if bad:
        raise ValueError(f"unknown limit(s) {', '.join(sorted(bad))}")
    for key in ("max_memory", "max_disk"):
        if key in limits:
            parse_bytes(limits[key])  # ValueError on nonsense
    defaults = dict(spec.get("defaults") or {})
    bad = set(defaults) - set(OPTION_KEYS)
    if bad:
        raise ValueError(f"unknown default(s) {', '.join(sorted(bad))}")
    settings = {k: v for k, v in spec.items() if k not in ("backend", "display_name", "description", "defaults", "limits")}
    profile = Profile(
        name=name,
        backend=backend,
        display_name=spec.get("display_name") or name,
        description=spec.get("description", ""),
        defaults=defaults,
        limits=limits,
        settings=settings,
    )
    if "memory" not in defaults:
        raise ValueError("defaults.memory is required (the worker memory a blank form asks for)")
    if backend == "htcondor" and "disk" not in defaults:
        raise ValueError("defaults.disk is required for an htcondor profile")
    try:
        profile.validate({})  # the defaults must pass the profile's own limits
    except BadRequest as exc:
        raise ValueError(f"its defaults break its limits: {exc.message}") from None
    return profile


def pick(profiles: dict[str, Profile], name: str | None, default: str) -> Profile:
    wanted = name or default
    if wanted not in profiles:
        known = ", ".join(profiles) or "none"
        raise NotFound(f"there is no cluster profile {wanted!r} (available: {known})", profile=wanted)
    return profiles[wanted]


def check_name(name: Any) -> str | None:
    if name is None:
        return None
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise BadRequest("name must be 1-64 letters, digits, spaces or . : @ + - _", field="name")
    return name


def adapt_json(adapt: tuple[int, int] | None) -> dict[str, int] | None:
    return {"minimum": adapt[0], "maximum": adapt[1]} if adapt else None
