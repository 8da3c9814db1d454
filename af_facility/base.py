"""The contract every facility service implements, and the shared state file."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class FacilityState:
    """``<root>/facility.json``: what each service published when it came up.

    It holds demo credentials (root passwords, the OpenBao root token), so it is
    written 0600. af-lab itself never reads it: the facility turns it into
    ordinary ``c.AFLab`` configuration.
    """

    root: Path
    services: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.root / "facility.json"

    @classmethod
    def load(cls, root: Path) -> FacilityState:
        root = Path(root).resolve()
        state = cls(root)
        if state.path.exists():
            state.services = json.loads(state.path.read_text()).get("services", {})
        return state

    def save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"services": self.services}, f, indent=2, sort_keys=True)
        os.replace(tmp, self.path)

    def dir(self, name: str) -> Path:
        d = self.root / name
        d.mkdir(parents=True, exist_ok=True)
        return d


class Service:
    """One service of the facility.

    ``up`` starts it (or reuses what is already there: a second ``up`` on the same
    directory must not fail) and returns the info other services and the af-lab
    configuration need. ``down`` stops every process it owns. ``optional`` services
    that cannot run here raise :class:`Unavailable` and the facility goes on.
    """

    name: str = ""
    optional: bool = False

    def __init__(self, state: FacilityState):
        self.state = state

    @property
    def info(self) -> dict[str, Any]:
        return self.state.services.get(self.name, {})

    def up(self) -> dict[str, Any]:
        raise NotImplementedError

    def down(self) -> None:
        raise NotImplementedError

    def running(self) -> bool:
        raise NotImplementedError


class Unavailable(Exception):
    """An optional service cannot run on this machine (e.g. xrootd not installed)."""
