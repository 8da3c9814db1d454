"""Cluster records on disk: ``<state_dir>/clusters/<id>.json``, so a restarted server finds its clusters.

A record holds the spec (profile, options), the scheduler process (pid, start
time, address, scheduler id), the desired size and every job id af-lab
submitted. It never holds a token. Files are written atomically, 0600, in a
0700 directory; a record that cannot be parsed is set aside (``.bad``), never
silently deleted.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

RECORD_VERSION = 1


class ClusterStore:
    def __init__(self, state_dir: str | Path, log: logging.Logger | None = None):
        self.root = Path(state_dir) / "clusters"
        self.log = log or logging.getLogger("af_lab")

    def ensure(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.root

    def run_dir(self, cluster_id: str) -> Path:
        """Per-cluster private directory: scheduler file and log, job logs, the token file."""
        d = self.ensure() / cluster_id
        d.mkdir(exist_ok=True, mode=0o700)
        return d

    def save(self, record: dict[str, Any]) -> None:
        self.ensure()
        path = self.root / f"{record['id']}.json"
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".{record['id']}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump({**record, "version": RECORD_VERSION}, fh, indent=1, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load_all(self) -> list[dict[str, Any]]:
        if not self.root.is_dir():
            return []
        records = []
        for path in sorted(self.root.glob("*.json")):
            try:
                records.append(json.loads(path.read_text()))
            except (OSError, ValueError) as exc:
                self.log.error("af-lab: cluster record %s is unreadable (%s); moved aside", path.name, exc)
                path.rename(path.with_suffix(".bad"))
        return records

    def delete(self, cluster_id: str) -> None:
        (self.root / f"{cluster_id}.json").unlink(missing_ok=True)
        shutil.rmtree(self.root / cluster_id, ignore_errors=True)  # logs and the token file go with it

