"""SQLite state of mounts and of the shared cache, under ``c.AFLab.state_dir``.

One connection, used only from the event loop thread: every statement here is
short (an indexed lookup or one batched transaction), so running it inline is
cheaper than a thread hop, and a single writer needs no locking. WAL keeps
readers (``sqlite3`` on the command line, a second server) from blocking it.

Tables:
  mounts         one row per mount (what was asked, where, state, rule)
  mount_files    one row per file of a mount: its DID, checksum, replicas (so an
                 interrupted job resumes without Rucio) and fetch state
  cache_entries  one row per verified file in the content-addressed cache
  counters       persistent counters (files/bytes fetched) that prove cache hits
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..paths import private_sqlite

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS mounts (
    id TEXT PRIMARY KEY,
    instance TEXT NOT NULL,
    scope TEXT NOT NULL,
    name TEXT NOT NULL,
    did_type TEXT NOT NULL,
    mode TEXT NOT NULL,
    target TEXT NOT NULL,
    state TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    options TEXT NOT NULL DEFAULT '{}',
    rule TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    finished REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS mounts_target ON mounts(target);
CREATE TABLE IF NOT EXISTS mount_files (
    mount_id TEXT NOT NULL REFERENCES mounts(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    scope TEXT NOT NULL,
    name TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    adler32 TEXT,
    state TEXT NOT NULL,
    error TEXT,
    source TEXT,
    local_path TEXT,
    replicas TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (mount_id, path)
);
CREATE INDEX IF NOT EXISTS mount_files_did ON mount_files(scope, name);
CREATE TABLE IF NOT EXISTS cache_entries (
    scope TEXT NOT NULL,
    name TEXT NOT NULL,
    adler32 TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    created REAL NOT NULL,
    last_used REAL NOT NULL,
    PRIMARY KEY (scope, name)
);
CREATE INDEX IF NOT EXISTS cache_lru ON cache_entries(last_used);
CREATE TABLE IF NOT EXISTS counters (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class Store:
    def __init__(self, path: Path):
        private_sqlite(path)  # 0600 before SQLite makes its -wal/-shm with the same mode
        self.path = path
        # isolation_level=None: we open transactions explicitly (``with self.tx()``).
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across a process crash
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)
        self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        path.chmod(0o600)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # ------------------------------------------------------------------ mounts
    def insert_mount(self, mount: dict[str, Any], files: list[dict[str, Any]]) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT INTO mounts (id, instance, scope, name, did_type, mode, target, state, message, options, rule,"
                " created, updated, finished) VALUES (:id, :instance, :scope, :name, :did_type, :mode, :target, :state,"
                " :message, :options, :rule, :created, :updated, :finished)",
                {**mount, "options": json.dumps(mount.get("options", {})), "rule": _dump(mount.get("rule"))},
            )
            db.executemany(
                "INSERT INTO mount_files (mount_id, path, scope, name, bytes, adler32, state, error, source,"
                " local_path, replicas) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (mount["id"], f["path"], f["scope"], f["name"], f["bytes"], f.get("adler32"), f["state"],
                     f.get("error"), f.get("source"), f.get("local_path"),
                     json.dumps(f["replicas"]) if f.get("replicas") else "[]")
                    for f in files
                ),
            )  # fmt: skip

    def update_mount(self, mount_id: str, **fields: Any) -> None:
        if "options" in fields:
            fields["options"] = json.dumps(fields["options"])
        if "rule" in fields:
            fields["rule"] = _dump(fields["rule"])
        fields["updated"] = time.time()
        cols = ", ".join(f"{k} = :{k}" for k in fields)
        self.db.execute(f"UPDATE mounts SET {cols} WHERE id = :id", {**fields, "id": mount_id})

    def delete_mount(self, mount_id: str) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM mount_files WHERE mount_id = ?", (mount_id,))
            db.execute("DELETE FROM mounts WHERE id = ?", (mount_id,))

    def mount(self, mount_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM mounts WHERE id = ?", (mount_id,)).fetchone()
        return _mount_row(row) if row else None

    def mount_by_target(self, target: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM mounts WHERE target = ?", (target,)).fetchone()
        return _mount_row(row) if row else None

    def mounts(self) -> list[dict[str, Any]]:
        return [_mount_row(r) for r in self.db.execute("SELECT * FROM mounts ORDER BY created")]

    def file_counts(self, mount_id: str | None = None) -> dict[str, dict[str, dict[str, int]]]:
        """{mount_id: {state: {"files": n, "bytes": b}}} in one grouped query."""
        sql = "SELECT mount_id, state, COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM mount_files"
        args: tuple = ()
        if mount_id is not None:
            sql += " WHERE mount_id = ?"
            args = (mount_id,)
        out: dict[str, dict[str, dict[str, int]]] = {}
        for row in self.db.execute(sql + " GROUP BY mount_id, state", args):
            out.setdefault(row["mount_id"], {})[row["state"]] = {"files": row["n"], "bytes": row["b"]}
        return out

    # ------------------------------------------------------------------ files
    def files(
        self, mount_id: str, state: str | None = None, offset: int = 0, limit: int | None = None
    ) -> list[dict[str, Any]]:
        sql = "SELECT * FROM mount_files WHERE mount_id = ?"
        args: list[Any] = [mount_id]
        if state:
            sql += " AND state = ?"
            args.append(state)
        sql += " ORDER BY path"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            args += [limit, offset]
        return [_file_row(r) for r in self.db.execute(sql, args)]

    def count_files(self, mount_id: str, state: str | None = None) -> int:
        if state:
            row = self.db.execute("SELECT COUNT(*) FROM mount_files WHERE mount_id = ? AND state = ?", (mount_id, state))
        else:
            row = self.db.execute("SELECT COUNT(*) FROM mount_files WHERE mount_id = ?", (mount_id,))
        return row.fetchone()[0]

    def errors(self, mount_id: str, limit: int = 20) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT path, error FROM mount_files WHERE mount_id = ? AND error IS NOT NULL ORDER BY path LIMIT ?",
            (mount_id, limit),
        )
        return [{"path": r["path"], "error": r["error"]} for r in rows]

    def set_file(self, mount_id: str, path: str, **fields: Any) -> None:
        if "replicas" in fields:
            fields["replicas"] = json.dumps(fields["replicas"])
        cols = ", ".join(f"{k} = :{k}" for k in fields)
        self.db.execute(
            f"UPDATE mount_files SET {cols} WHERE mount_id = :mount_id AND path = :path",
            {**fields, "mount_id": mount_id, "path": path},
        )

    def set_files_state(self, mount_id: str, from_states: Iterable[str], state: str) -> int:
        states = list(from_states)
        marks = ",".join("?" * len(states))
        cur = self.db.execute(
            f"UPDATE mount_files SET state = ?, error = NULL WHERE mount_id = ? AND state IN ({marks})",
            (state, mount_id, *states),
        )
        return cur.rowcount

    # ------------------------------------------------------------------ cache
    def _wanted(self, keys: Iterable[tuple[str, str]]) -> None:
        """Load ``keys`` into the temp table ``wanted``: joins on it use the indexes, where a
        long ``IN (VALUES ...)`` list would scan."""
        self.db.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (scope TEXT, name TEXT, PRIMARY KEY (scope, name))")
        self.db.execute("BEGIN")  # one transaction: row by row, autocommit costs ~0.1 ms per key
        try:
            self.db.execute("DELETE FROM wanted")
            self.db.executemany("INSERT OR IGNORE INTO wanted VALUES (?, ?)", keys)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def cache_rows(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT scope, name, adler32, bytes, last_used FROM cache_entries")]

    def pinned(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of ``keys`` a listed cache-mode mount refers to."""
        self._wanted(keys)
        rows = self.db.execute(
            "SELECT DISTINCT w.scope, w.name FROM wanted w JOIN mount_files f ON f.scope = w.scope AND f.name = w.name"
            " JOIN mounts m ON m.id = f.mount_id WHERE m.mode = 'cache'"
        )
        return {(r[0], r[1]) for r in rows}

    def add_cache_entry(self, scope: str, name: str, adler32: str, nbytes: int) -> None:
        now = time.time()
        self.db.execute(
            "INSERT INTO cache_entries (scope, name, adler32, bytes, created, last_used) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(scope, name) DO UPDATE SET adler32 = excluded.adler32, bytes = excluded.bytes,"
            " created = excluded.created, last_used = excluded.last_used",
            (scope, name, adler32, nbytes, now, now),
        )

    def touch_cache(self, keys: Iterable[tuple[str, str]], when: float | None = None) -> None:
        self._wanted(keys)
        self.db.execute(
            "UPDATE cache_entries SET last_used = ? WHERE (scope, name) IN (SELECT scope, name FROM wanted)",
            (when or time.time(),),
        )

    def drop_cache_entries(self, keys: Iterable[tuple[str, str]]) -> None:
        self.db.executemany("DELETE FROM cache_entries WHERE scope = ? AND name = ?", list(keys))

    def pinned_bytes(self) -> int:
        """Bytes of cache entries a listed cache-mode mount refers to."""
        return self.db.execute(
            "SELECT COALESCE(SUM(c.bytes), 0) FROM cache_entries c WHERE EXISTS (SELECT 1 FROM mount_files f"
            " JOIN mounts m ON m.id = f.mount_id WHERE f.scope = c.scope AND f.name = c.name AND m.mode = 'cache')"
        ).fetchone()[0]

    def eviction_candidates(self) -> Iterator[dict[str, Any]]:
        """Cache entries no listed cache-mode mount refers to, least recently used first."""
        rows = self.db.execute(
            "SELECT * FROM cache_entries c WHERE NOT EXISTS (SELECT 1 FROM mount_files f JOIN mounts m"
            " ON m.id = f.mount_id WHERE f.scope = c.scope AND f.name = c.name AND m.mode = 'cache')"
            " ORDER BY last_used, created"
        ).fetchall()
        for r in rows:
            yield dict(r)

    # ------------------------------------------------------------------ counters
    def bump(self, **deltas: int) -> None:
        self.db.executemany(
            "INSERT INTO counters (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
            list(deltas.items()),
        )

    def counters(self) -> dict[str, int]:
        return {r["key"]: r["value"] for r in self.db.execute("SELECT key, value FROM counters")}


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _mount_row(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    d["options"] = json.loads(d["options"] or "{}")
    d["rule"] = json.loads(d["rule"]) if d["rule"] else None
    return d


def _file_row(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    d["replicas"] = json.loads(d["replicas"] or "[]")
    return d
