"""SQLite state of mounts and of the shared cache, under ``c.AFLab.state_dir``.

The file, its mode, WAL and the one connection are :class:`af_lab.sqlite.Database`'s,
with its threading rule: async code awaits :meth:`Store.run` (the database's own
thread), worker threads call the methods directly.

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
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from ..sqlite import Database

T = TypeVar("T")

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
        self.database = Database(path, SCHEMA, version=SCHEMA_VERSION, foreign_keys=True, name="af-lab-mounts-db")
        self.path = self.database.path

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args)`` (a method of this store) off the event loop, in the database's thread."""
        return await self.database.run(fn, *args, **kwargs)

    def close(self) -> None:
        self.database.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction around several calls (the lock is held: no other thread's call interleaves)."""
        with self.database.transaction() as db:
            yield db

    # One statement under the database's lock, its rows fetched before the lock is released.
    def _all(self, sql: str, args: Any = ()) -> list[sqlite3.Row]:
        with self.database.connection() as db:
            return db.execute(sql, args).fetchall()

    def _one(self, sql: str, args: Any = ()) -> sqlite3.Row | None:
        with self.database.connection() as db:
            return db.execute(sql, args).fetchone()

    def _exec(self, sql: str, args: Any = ()) -> int:
        """A write; the number of rows it changed."""
        with self.database.connection() as db:
            return db.execute(sql, args).rowcount

    def _exec_many(self, sql: str, rows: Iterable[Any]) -> None:
        with self.database.connection() as db:
            db.executemany(sql, rows)

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
        self._exec(f"UPDATE mounts SET {cols} WHERE id = :id", {**fields, "id": mount_id})

    def delete_mount(self, mount_id: str) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM mount_files WHERE mount_id = ?", (mount_id,))
            db.execute("DELETE FROM mounts WHERE id = ?", (mount_id,))

    def mount(self, mount_id: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM mounts WHERE id = ?", (mount_id,))
        return _mount_row(row) if row else None

    def mount_by_target(self, target: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM mounts WHERE target = ?", (target,))
        return _mount_row(row) if row else None

    def mounts(self) -> list[dict[str, Any]]:
        return [_mount_row(r) for r in self._all("SELECT * FROM mounts ORDER BY created")]

    def file_counts(self, mount_id: str | None = None) -> dict[str, dict[str, dict[str, int]]]:
        """{mount_id: {state: {"files": n, "bytes": b}}} in one grouped query."""
        sql = "SELECT mount_id, state, COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM mount_files"
        args: tuple = ()
        if mount_id is not None:
            sql += " WHERE mount_id = ?"
            args = (mount_id,)
        out: dict[str, dict[str, dict[str, int]]] = {}
        for row in self._all(sql + " GROUP BY mount_id, state", args):
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
        return [_file_row(r) for r in self._all(sql, args)]

    def count_files(self, mount_id: str, state: str | None = None) -> int:
        if state:
            row = self._one("SELECT COUNT(*) FROM mount_files WHERE mount_id = ? AND state = ?", (mount_id, state))
        else:
            row = self._one("SELECT COUNT(*) FROM mount_files WHERE mount_id = ?", (mount_id,))
        return row[0]

    def errors(self, mount_id: str, limit: int = 20) -> list[dict[str, Any]]:
        rows = self._all(
            "SELECT path, error FROM mount_files WHERE mount_id = ? AND error IS NOT NULL ORDER BY path LIMIT ?",
            (mount_id, limit),
        )
        return [{"path": r["path"], "error": r["error"]} for r in rows]

    def set_file(self, mount_id: str, path: str, **fields: Any) -> None:
        if "replicas" in fields:
            fields["replicas"] = json.dumps(fields["replicas"])
        cols = ", ".join(f"{k} = :{k}" for k in fields)
        self._exec(
            f"UPDATE mount_files SET {cols} WHERE mount_id = :mount_id AND path = :path",
            {**fields, "mount_id": mount_id, "path": path},
        )

    def set_files_state(self, mount_id: str, from_states: Iterable[str], state: str) -> int:
        states = list(from_states)
        marks = ",".join("?" * len(states))
        return self._exec(
            f"UPDATE mount_files SET state = ?, error = NULL WHERE mount_id = ? AND state IN ({marks})",
            (state, mount_id, *states),
        )

    # ------------------------------------------------------------------ cache
    def _wanted(self, keys: Iterable[tuple[str, str]]) -> None:
        """Load ``keys`` into the temp table ``wanted``: joins on it use the indexes, where a
        long ``IN (VALUES ...)`` list would scan."""
        with self.database.connection() as db:
            db.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (scope TEXT, name TEXT, PRIMARY KEY (scope, name))")
        with self.database.transaction() as db:  # one transaction: row by row, autocommit costs ~0.1 ms per key
            db.execute("DELETE FROM wanted")
            db.executemany("INSERT OR IGNORE INTO wanted VALUES (?, ?)", keys)

    def cache_rows(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._all("SELECT scope, name, adler32, bytes, last_used FROM cache_entries")]

    def pinned(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of ``keys`` a listed cache-mode mount refers to."""
        with self.database.connection():  # the temp table is filled and read under one hold of the lock
            self._wanted(keys)
            rows = self._all(
                "SELECT DISTINCT w.scope, w.name FROM wanted w JOIN mount_files f ON f.scope = w.scope"
                " AND f.name = w.name JOIN mounts m ON m.id = f.mount_id WHERE m.mode = 'cache'"
            )
        return {(r[0], r[1]) for r in rows}

    def add_cache_entry(self, scope: str, name: str, adler32: str, nbytes: int) -> None:
        now = time.time()
        self._exec(
            "INSERT INTO cache_entries (scope, name, adler32, bytes, created, last_used) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(scope, name) DO UPDATE SET adler32 = excluded.adler32, bytes = excluded.bytes,"
            " created = excluded.created, last_used = excluded.last_used",
            (scope, name, adler32, nbytes, now, now),
        )

    def touch_cache(self, keys: Iterable[tuple[str, str]], when: float | None = None) -> None:
        with self.database.connection():  # the temp table is filled and read under one hold of the lock
            self._wanted(keys)
            self._exec(
                "UPDATE cache_entries SET last_used = ? WHERE (scope, name) IN (SELECT scope, name FROM wanted)",
                (when or time.time(),),
            )

    def drop_cache_entries(self, keys: Iterable[tuple[str, str]]) -> None:
        self._exec_many("DELETE FROM cache_entries WHERE scope = ? AND name = ?", list(keys))

    def pinned_bytes(self) -> int:
        """Bytes of cache entries a listed cache-mode mount refers to."""
        return self._one(
            "SELECT COALESCE(SUM(c.bytes), 0) FROM cache_entries c WHERE EXISTS (SELECT 1 FROM mount_files f"
            " JOIN mounts m ON m.id = f.mount_id WHERE f.scope = c.scope AND f.name = c.name AND m.mode = 'cache')"
        )[0]

    def eviction_candidates(self) -> Iterator[dict[str, Any]]:
        """Cache entries no listed cache-mode mount refers to, least recently used first."""
        rows = self._all(
            "SELECT * FROM cache_entries c WHERE NOT EXISTS (SELECT 1 FROM mount_files f JOIN mounts m"
            " ON m.id = f.mount_id WHERE f.scope = c.scope AND f.name = c.name AND m.mode = 'cache')"
            " ORDER BY last_used, created"
        )
        for r in rows:
            yield dict(r)

    # ------------------------------------------------------------------ counters
    def bump(self, **deltas: int) -> None:
        self._exec_many(
            "INSERT INTO counters (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
            list(deltas.items()),
        )

    def counters(self) -> dict[str, int]:
        return {r["key"]: r["value"] for r in self._all("SELECT key, value FROM counters")}


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
