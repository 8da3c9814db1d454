"""The contract every facility service implements, and the shared state file."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .procs import ServiceError


@dataclass
class FacilityState:
    """``<root>/facility.json``: what each service published when it came up.

    It holds demo credentials (root passwords, the OpenBao root token), so it is
    written 0600. af-lab itself never reads it: the facility turns it into
    ordinary ``c.AFLab`` configuration.
    """

    root: Path
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Where things live that other Unix users (xrootd, postgres) must reach: decided at the
    # first ``up`` and never again, so a later ``up`` cannot move a database under its data.
    placement: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.root / "facility.json"

    @classmethod
    def load(cls, root: Path) -> FacilityState:
        root = Path(root).resolve()
        state = cls(root)
        if state.path.exists():
            data = json.loads(state.path.read_text())
            state.services = data.get("services", {})
            state.placement = data.get("placement", {})
        return state

    def save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"services": self.services, "placement": self.placement}, f, indent=2, sort_keys=True)
        os.replace(tmp, self.path)

    def placed(self, key: str, choose) -> Path:
        """The recorded location ``key``; on first use ``choose()`` decides it and it is saved."""
        if key not in self.placement:
            fresh = FacilityState.load(self.root)  # another process may have decided meanwhile
            self.placement.update(fresh.placement)
        if key not in self.placement:
            self.placement[key] = str(choose())
            self.save()
        return Path(self.placement[key])

    @property
    def shared(self) -> Path:
        """Root of what the facility's service users must reach: the state directory when
        they can traverse it, else ``/var/tmp/af-facility-<hash of the state dir>`` (made
        0755 by root), so a clone under a 0700 home never needs its parents opened up."""
        return self.placed("shared", lambda: choose_shared_root(self.root))

    @property
    def rse_root(self) -> Path:
        """The RSE directories (named ``rse``: XRootD exports ``/rse`` below its parent)."""
        legacy = self.root / "rse"
        return self.placed("rse", lambda: legacy if legacy.exists() else self.shared / "rse")

    def shared_dir(self, *parts: str) -> Path:
        """``shared / parts``, created; the shared root outside the state dir must be ours and
        writable by nobody else (the name under /var/tmp is predictable)."""
        base = self.shared
        if base != self.root:
            base.mkdir(mode=0o755, exist_ok=True)
            st = os.lstat(base)
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
                raise ServiceError("facility", f"{base} exists but is not a directory of this user that only it "
                                   "can write: remove it, or choose another --dir")
            os.chmod(base, 0o755)
        path = base.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

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


SERVICE_USERS = ("xrootd", "postgres")  # Debian's system users the demo's servers run as


def traversable_by(user: str, path: Path) -> bool:
    """Whether ``user`` may reach ``path`` (execute permission on it and every parent that exists)."""
    import pwd

    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return True  # no such user: the caller's own checks report what is missing
    groups = set(os.getgrouplist(user, entry.pw_gid))
    existing = Path(path).resolve()
    while not existing.exists():
        existing = existing.parent
    for directory in (existing, *existing.parents):
        st = directory.stat()
        if st.st_uid == entry.pw_uid:
            bit = 0o100
        elif st.st_gid in groups:
            bit = 0o010
        else:
            bit = 0o001
        if not st.st_mode & bit:
            return False
    return True


def choose_shared_root(root: Path) -> Path:
    if os.geteuid() != 0 or all(traversable_by(user, root) for user in SERVICE_USERS):
        return root  # they run as us, or can reach the state directory as it is
    digest = hashlib.sha1(str(Path(root).resolve()).encode()).hexdigest()[:12]
    return Path("/var/tmp") / f"af-facility-{digest}"
