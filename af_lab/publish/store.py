"""Publish jobs on disk: one SQLite database under ``state_dir``, so jobs survive a restart.

A job is a JSON document (what the UI shows, plus what a resumed runner needs);
its files are rows, so a folder of 10⁵ files is updated in batches instead of
rewriting one large document. Calls are synchronous and short; the service awaits
them through :meth:`JobStore.run` (the database's own thread, see :mod:`af_lab.sqlite`).
WAL plus ``synchronous=NORMAL``: a committed step survives a killed server, which is
what resume relies on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..sqlite import Database

T = TypeVar("T")

SCHEMA_VERSION = 1
FILE_FIELDS = ("rel", "name", "bytes", "mtime_ns", "adler32", "md5", "state", "pfn", "error", "taken")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    state TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    job TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    rel TEXT NOT NULL,
    name TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    adler32 TEXT,
    md5 TEXT,
    state TEXT NOT NULL,
    pfn TEXT,
    error TEXT,
    taken INTEGER NOT NULL DEFAULT 0,  -- the DID name existed in Rucio when the job was submitted
    PRIMARY KEY (job, idx)
);
CREATE INDEX IF NOT EXISTS files_state ON files (job, state);
CREATE INDEX IF NOT EXISTS files_name ON files (name);
"""


class JobStore:
    def __init__(self, path: str | Path):
        self.db = Database(path, _SCHEMA, version=SCHEMA_VERSION, foreign_keys=True, name="af-lab-publish-db")
        self.path = self.db.path

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` (a method of this store) off the event loop, in the database's thread."""
        return await self.db.run(fn, *args)

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------------ jobs
    def create(self, job: dict[str, Any], files: Sequence[dict[str, Any]]) -> None:
        now = time.time()
        with self.db.transaction() as db:
            db.execute(
                "INSERT INTO jobs (id, created, updated, state, doc) VALUES (?, ?, ?, ?, ?)",
                (job["id"], job.get("created", now), now, job["state"], json.dumps(job)),
            )
            db.executemany(
                "INSERT INTO files (job, idx, rel, name, bytes, mtime_ns, adler32, md5, state, pfn, error, taken)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        job["id"],
                        i,
                        f["rel"],
                        f["name"],
                        f["bytes"],
                        f["mtime_ns"],
                        f.get("adler32"),
                        f.get("md5"),
                        f.get("state", "pending"),
                        f.get("pfn"),
                        f.get("error"),
                        int(bool(f.get("taken"))),
                    )
                    for i, f in enumerate(files)
                ],
            )

    def save(self, job: dict[str, Any]) -> None:
        job["updated"] = time.time()
        with self.db.connection() as db:
            db.execute(
                "UPDATE jobs SET updated=?, state=?, doc=? WHERE id=?",
                (job["updated"], job["state"], json.dumps(job), job["id"]),
            )

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self.db.connection() as db:
            row = db.execute("SELECT doc FROM jobs WHERE id=?", (job_id,)).fetchone()
        return json.loads(row["doc"]) if row else None

    def jobs(self, states: Iterable[str] | None = None, limit: int = 200) -> list[dict[str, Any]]:
        sql, args = "SELECT doc FROM jobs", []
        if states is not None:
            states = list(states)
            sql += f" WHERE state IN ({','.join('?' * len(states))})"
            args.extend(states)
        sql += " ORDER BY created DESC LIMIT ?"
        args.append(limit)
        with self.db.connection() as db:
            rows = db.execute(sql, args).fetchall()
        return [json.loads(r["doc"]) for r in rows]

    def delete(self, job_id: str) -> None:
        with self.db.transaction() as db:
            db.execute("DELETE FROM files WHERE job=?", (job_id,))
            db.execute("DELETE FROM jobs WHERE id=?", (job_id,))

    # ------------------------------------------------------------------ files
    def update_files(self, job_id: str, updates: Sequence[tuple[int, dict[str, Any]]]) -> None:
        """Apply ``(idx, {field: value})`` updates in one transaction."""
        if not updates:
            return
        with self.db.transaction() as db:
            for idx, fields in updates:
                cols = [k for k in fields if k in FILE_FIELDS]
                if not cols:
                    continue
                values = [int(bool(fields[c])) if c == "taken" else fields[c] for c in cols]
                db.execute(
                    f"UPDATE files SET {', '.join(c + '=?' for c in cols)} WHERE job=? AND idx=?",
                    (*values, job_id, idx),
                )

    def files(
        self, job_id: str, states: Iterable[str] | None = None, offset: int = 0, limit: int | None = None
    ) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM files WHERE job=?", [job_id]
        if states is not None:
            states = list(states)
            sql += f" AND state IN ({','.join('?' * len(states))})"
            args.extend(states)
        sql += " ORDER BY idx LIMIT ? OFFSET ?"
        args.extend([-1 if limit is None else limit, offset])
        with self.db.connection() as db:
            rows = db.execute(sql, args).fetchall()
        return [{**dict(r), "taken": bool(r["taken"])} for r in rows]

    def counts(self, job_id: str) -> dict[str, tuple[int, int]]:
        """{state: (files, bytes)} for one job."""
        with self.db.connection() as db:
            rows = db.execute(
                "SELECT state, COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM files WHERE job=? GROUP BY state",
                (job_id,),
            ).fetchall()
        return {r["state"]: (r["n"], r["b"]) for r in rows}

    def active_names(self, exclude: str | None = None) -> dict[tuple[str, str], str]:
        """(scope, name) -> job id for files of jobs that have not ended: two jobs must not race on a DID."""
        found = {}
        with self.db.connection() as db:
            jobs = db.execute("SELECT id, doc FROM jobs WHERE state IN ('queued', 'running', 'interrupted')").fetchall()
            for job in jobs:
                if job["id"] == exclude:
                    continue
                doc = json.loads(job["doc"])
                scope = doc["request"]["scope"]
                for r in db.execute("SELECT name FROM files WHERE job=?", (job["id"],)):
                    found[(scope, r["name"])] = job["id"]
                if (doc.get("dataset") or {}).get("new"):
                    found[tuple(doc["dataset"]["did"].split(":", 1))] = job["id"]
        return found

    def jobs_with_file(self, name: str) -> list[tuple[str, str]]:
        """(job id, workspace path) of every job that holds a file published as ``name``."""
        with self.db.connection() as db:
            rows = db.execute("SELECT job, rel FROM files WHERE name=? AND state='registered'", (name,)).fetchall()
        return [(r["job"], r["rel"]) for r in rows]
