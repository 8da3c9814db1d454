"""Software environments for clusters: which Python the scheduler and workers run, and version checks.

The admin lists environments (``c.AFLab.cluster_environments``); a profile
allows some (``environments``) and may name a ``default_environment``. A
request names one, or sends the kernel's ``sys.prefix``, which maps to the
listed environment with that prefix. Without either, the profile's default,
else the server's own environment (``server``).

Before anything starts, af-lab asks the environment's Python for its
``distributed`` version (cached per interpreter and file time) and refuses a
cluster whose client (the kernel) has another one: Dask's client/scheduler
protocol is only promised within one version. The server's own cluster object
talks to schedulers of other ``distributed`` versions (measured: 2026.11 drives
a 2025.3 scheduler — identity, scale, retire, adapt, plugins), but af-lab's
scheduler/worker plugins are pickled by value, so the environment must run the
server's Python minor version. A request may also name the modules its workers
need (``require``); an environment that cannot import one is refused before
anything is submitted, naming the profile's environments that can.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from typing import Any

from ..errors import BadRequest

SERVER = "server"
PROBE_TIMEOUT_S = 60.0
_PROBE = (
    "import json, sys\n"
    "try:\n import distributed; v = distributed.__version__\n"
    "except Exception as e:\n v = None\n"
    "print(json.dumps({'distributed': v, 'python': '%d.%d' % sys.version_info[:2], 'prefix': sys.prefix}))"
)
# Which of argv's modules the environment can import (found, not imported: ROOT takes seconds to load).
_HAS_MODULES = (
    "import importlib.util, json, sys\n"
    "def found(m):\n try: return importlib.util.find_spec(m) is not None\n except Exception: return False\n"
    "print(json.dumps([m for m in sys.argv[1:] if not found(m)]))"
)


class EnvironmentMismatch(BadRequest):
    """The environment cannot run this cluster (missing, broken, or another distributed version)."""

    kind = "environment"


@dataclass(frozen=True)
class Environment:
    name: str
    python: str
    display_name: str

    @property
    def prefix(self) -> str:
        return os.path.dirname(os.path.dirname(self.python))


class Environments:
    def __init__(self, configured: dict[str, dict[str, Any]] | None):
        self.envs: dict[str, Environment] = {
            SERVER: Environment(SERVER, sys.executable, "This server's environment"),
        }
        self.errors: list[str] = []
        for name, spec in (configured or {}).items():
            python = spec.get("python") if isinstance(spec, dict) else None
            if not python or not os.path.isabs(python):
                self.errors.append(f"cluster environment {name!r} is ignored: 'python' must be an absolute path")
                continue
            self.envs[name] = Environment(name, python, spec.get("display_name") or name)
        self._probes: dict[tuple[str, float], asyncio.Future] = {}
        self._module_probes: dict[tuple[str, float, tuple[str, ...]], asyncio.Future] = {}

    def names(self) -> list[str]:
        return list(self.envs)

    def for_profile(self, allowed: list[str] | None) -> list[Environment]:
        """The environments a profile offers (all listed ones it allows; the server's when it lists none)."""
        if not allowed:
            return [self.envs[SERVER]]
        return [self.envs[n] for n in allowed if n in self.envs]

    def choose(self, requested: str | None, allowed: list[str] | None, default: str | None) -> Environment:
        """The environment for a request: a name, or a kernel's ``sys.prefix``; else the default."""
        offered = {e.name: e for e in self.for_profile(allowed)}
        if requested:
            if requested in offered:
                return offered[requested]
            if os.path.isabs(requested):  # a kernel's sys.prefix
                wanted = os.path.realpath(requested)
                for env in offered.values():
                    if os.path.realpath(env.prefix) == wanted:
                        return env
                if default is None:  # no listed environment matches the kernel's: the profile's default
                    return offered.get(SERVER) or next(iter(offered.values()))
            else:
                raise EnvironmentMismatch(
                    f"environment {requested!r} is not offered by this profile (offered: {', '.join(offered)})",
                    field="environment", allowed=list(offered),
                )
        if default and default in offered:
            return offered[default]
        return offered.get(SERVER) or next(iter(offered.values()))

    async def versions(self, env: Environment) -> dict[str, Any]:
        """{"distributed": version | None, "python": "3.11"} of the environment (cached per interpreter file)."""
        try:
            mtime = os.stat(env.python).st_mtime
        except OSError:
            raise EnvironmentMismatch(
                f"environment {env.name!r}: its Python {env.python} does not exist", field="environment"
            ) from None
        key = (env.python, mtime)
        if key not in self._probes or (self._probes[key].done() and self._probes[key].exception()):
            self._probes[key] = asyncio.ensure_future(_probe(env, _PROBE))
        return await asyncio.shield(self._probes[key])

    async def missing_modules(self, env: Environment, modules: list[str]) -> list[str]:
        """The ``modules`` the environment's Python cannot import (cached per interpreter file)."""
        if not modules:
            return []
        try:
            key = (env.python, os.stat(env.python).st_mtime, tuple(sorted(set(modules))))
        except OSError:
            raise EnvironmentMismatch(
                f"environment {env.name!r}: its Python {env.python} does not exist", field="environment"
            ) from None
        if key not in self._module_probes or (self._module_probes[key].done() and self._module_probes[key].exception()):
            self._module_probes[key] = asyncio.ensure_future(_probe(env, _HAS_MODULES, list(key[2])))
        missing = set(await asyncio.shield(self._module_probes[key]))
        return [m for m in dict.fromkeys(modules) if m in missing]  # in the order the notebook named them

    async def check_required(self, env: Environment, require: list[str] | None, allowed: list[str] | None) -> None:
        """Refuse, before anything is submitted, an environment that lacks a module the notebook needs
        (its workers would fail deep in the first task), naming the profile's environments that have it."""
        missing = await self.missing_modules(env, list(require or []))
        if not missing:
            return
        having = []
        for other in self.for_profile(allowed):
            if other.name != env.name:
                try:
                    if not await self.missing_modules(other, missing):
                        having.append(other.name)
                except EnvironmentMismatch:
                    continue
        fix = (f"choose --environment {having[0]} (environment {', '.join(having)} of this profile has "
               f"{'it' if len(missing) == 1 else 'them'})" if having
               else "no environment of this profile has it: ask the site for one, or pick another profile")
        raise EnvironmentMismatch(
            f"environment {env.name!r} ({env.display_name}) cannot import {', '.join(missing)}, which this notebook "
            f"requires: its workers would fail on the first task; {fix}",
            field="require", missing=missing, environment=env.name, offered_by=having,
        )

    async def check(self, env: Environment, client_distributed: str | None) -> dict[str, Any]:
        """Refuse (4xx, both versions named) an environment the client or af-lab cannot work with."""
        found = await self.versions(env)
        if not found.get("distributed"):
            raise EnvironmentMismatch(f"environment {env.name!r} ({env.python}) has no 'distributed' installed",
                                      field="environment")
        server_py = f"{sys.version_info[0]}.{sys.version_info[1]}"
        if found["python"] != server_py:
            raise EnvironmentMismatch(
                f"environment {env.name!r} runs Python {found['python']}, the Jupyter server Python {server_py}: "
                "af-lab's scheduler and worker plugins need the same Python version",
                field="environment",
            )
        if client_distributed and client_distributed != found["distributed"]:
            raise EnvironmentMismatch(
                f"your kernel has distributed {client_distributed} but environment {env.name!r} has distributed "
                f"{found['distributed']}: client, scheduler and workers must run the same version "
                f"(pick the matching environment or kernel)",
                field="environment", client=client_distributed, cluster=found["distributed"],
            )
        return found


async def _probe(env: Environment, code: str, args: list[str] | None = None) -> Any:
    try:
        proc = await asyncio.create_subprocess_exec(
            env.python, "-I", "-c", code, *(args or []), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), PROBE_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        raise EnvironmentMismatch(f"environment {env.name!r}: {env.python} cannot run ({exc})",
                                  field="environment") from None
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip()[-300:]
        raise EnvironmentMismatch(f"environment {env.name!r}: {env.python} failed: {tail}", field="environment")
    return json.loads(out.decode().strip().splitlines()[-1])


# The scheduler's and workers' environment is built from this allow-list, never copied from the server's:
# nothing the server holds (JUPYTER_TOKEN, JUPYTERHUB_API_TOKEN, VAULT_TOKEN, AF_LAB_* ...) can leak.
ALLOWED_ENV = ("PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "USER", "LOGNAME", "SHELL", "TERM")
ALLOWED_ENV_PREFIXES = ("LC_",)


def process_env(env: Environment, source: dict[str, str] | None = None) -> dict[str, str]:
    """The allow-listed environment for a scheduler or worker of ``env`` (its bin directory first on PATH)."""
    source = os.environ if source is None else source
    out = {k: v for k, v in source.items() if k in ALLOWED_ENV or k.startswith(ALLOWED_ENV_PREFIXES)}
    bin_dir = os.path.dirname(env.python)
    out["PATH"] = os.pathsep.join([bin_dir, *[p for p in out.get("PATH", "/usr/bin:/bin").split(os.pathsep) if p]])
    out["DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION"] = "True"
    return out
