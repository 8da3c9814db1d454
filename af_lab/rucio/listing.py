"""The per-user listing cache: Rucio listings spilled to SQLite as they stream in.

A listing (search hits, a collection's content, a collection's file replicas) is one
row in ``listings`` plus one row per item in ``items``, numbered from 1 in arrival
order. Items are stored as JSON text, usually Rucio's own line untouched (``shape``
names how a reader turns it into af-lab's row), so filling costs no parsing. A filler thread appends batches while Rucio streams; pages are read by keyset
(``seq > cursor``), so neither side ever holds more than a batch or a page in memory,
whatever the listing's length. Replica listings also keep (rse, state, bytes) per
replica in ``replicas`` so a collection's availability is one GROUP BY.

Blocking API: call it from worker threads. Each thread gets its own connection; WAL
lets pages be read while a filler writes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..paths import private_sqlite

SCHEMA = """
CREATE TABLE IF NOT EXISTS listings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    created REAL NOT NULL,
    accessed REAL NOT NULL,
    complete INTEGER NOT NULL DEFAULT 0,
    count INTEGER NOT NULL DEFAULT 0,
    shape TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS listings_key ON listings (key, created);
CREATE TABLE IF NOT EXISTS items (
    listing INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (listing, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS replicas (
    listing INTEGER NOT NULL,
    rse TEXT NOT NULL,
    state TEXT NOT NULL,
    bytes INTEGER
);
CREATE INDEX IF NOT EXISTS replicas_listing ON replicas (listing, rse);
"""

# A cursor stays usable this long after its listing was last read, even once superseded.
CURSOR_GRACE_S = 3600.0
# ``accessed`` is written at most this often per listing: a write per page read made
# concurrent readers queue on SQLite's one writer lock for nothing the grace needs.
TOUCH_EVERY_S = 60.0


@dataclass
class Listing:
    id: int
    key: str
    created: float
    complete: bool
    count: int
    shape: str


class ListingCache:
    def __init__(self, path: Path, ttl: float):
        self.path = Path(path)
        self.ttl = ttl
        self._local = threading.local()
        self._touched: dict[int, float] = {}  # listing id -> when ``accessed`` was last written
        private_sqlite(self.path)  # 0600 before SQLite makes its -wal/-shm with the same mode
        conn = self._conn()
        # WAL is a property of the file: set once here, where no other connection
        # of ours exists yet (switching it needs the database to itself).
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)
        # Listings left half-filled by a previous process can never complete: drop them.
        self._delete(conn, "complete = 0")
        self.collect()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA synchronous=NORMAL")  # a lost cache is refetched, not lost data
            self.path.chmod(0o600)
            self._local.conn = conn
        return conn

    # ---------------------------------------------------------------- listings
    def fresh(self, key: str) -> Listing | None:
        """The newest complete listing for ``key`` younger than the TTL."""
        row = self._conn().execute(
            "SELECT id, key, created, complete, count, shape FROM listings WHERE key = ? AND complete = 1 AND created > ?"
            " ORDER BY created DESC LIMIT 1", (key, time.time() - self.ttl),
        ).fetchone()
        return Listing(row[0], row[1], row[2], bool(row[3]), row[4], row[5]) if row else None

    def get(self, listing_id: int) -> Listing | None:
        row = self._conn().execute(
            "SELECT id, key, created, complete, count, shape FROM listings WHERE id = ?", (listing_id,)
        ).fetchone()
        return Listing(row[0], row[1], row[2], bool(row[3]), row[4], row[5]) if row else None

    def create(self, key: str, shape: str = "") -> tuple[int, float]:
        now = time.time()
        cur = self._conn().execute("INSERT INTO listings (key, created, accessed, shape) VALUES (?, ?, ?, ?)",
                                   (key, now, now, shape))
        return int(cur.lastrowid), now

    def append(self, listing_id: int, start: int, rows: list[str | dict], replicas: list[tuple] | None = None) -> int:
        """Store ``rows`` (JSON text, or dicts) as seq start+1.., plus (rse, state, bytes) replica facts.

        Returns the new count."""
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            conn.executemany(
                "INSERT INTO items (listing, seq, data) VALUES (?, ?, ?)",
                ((listing_id, start + i, r if isinstance(r, str) else json.dumps(r, separators=(",", ":")))
                 for i, r in enumerate(rows, 1)),
            )
            if replicas:
                conn.executemany("INSERT INTO replicas (listing, rse, state, bytes) VALUES (?, ?, ?, ?)",
                                 ((listing_id, *r) for r in replicas))
            count = start + len(rows)
            conn.execute("UPDATE listings SET count = ? WHERE id = ?", (count, listing_id))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return count

    def finish(self, listing_id: int) -> None:
        self._conn().execute("UPDATE listings SET complete = 1 WHERE id = ?", (listing_id,))

    def drop(self, listing_id: int) -> None:
        self._delete(self._conn(), "id = ?", (listing_id,))

    def page(self, listing_id: int, after: int, limit: int) -> list[tuple[int, str]]:
        """Up to ``limit`` items after seq ``after``, as (seq, JSON text)."""
        conn = self._conn()
        rows = conn.execute(
            "SELECT seq, data FROM items WHERE listing = ? AND seq > ? ORDER BY seq LIMIT ?", (listing_id, after, limit)
        ).fetchall()
        now = time.time()
        if now - self._touched.get(listing_id, 0.0) > TOUCH_EVERY_S:
            if len(self._touched) > 10_000:
                self._touched.clear()
            self._touched[listing_id] = now
            conn.execute("UPDATE listings SET accessed = ? WHERE id = ?", (now, listing_id))
        return rows

    def availability(self, listing_id: int) -> list[dict]:
        """Per RSE: files and bytes in total and AVAILABLE, from a replica listing."""
        rows = self._conn().execute(
            "SELECT rse, count(*), coalesce(sum(bytes), 0),"
            " sum(state = 'AVAILABLE'), coalesce(sum(CASE WHEN state = 'AVAILABLE' THEN bytes END), 0)"
            " FROM replicas WHERE listing = ? GROUP BY rse ORDER BY rse", (listing_id,),
        ).fetchall()
        return [{"rse": r[0], "files": r[1], "bytes": r[2], "files_available": r[3], "bytes_available": r[4]}
                for r in rows]

    # ---------------------------------------------------------------- housekeeping
    def collect(self) -> None:
        """Drop listings nobody read for TTL + cursor grace (their cursors have lapsed too)."""
        self._delete(self._conn(), "accessed < ? AND complete = 1", (time.time() - self.ttl - CURSOR_GRACE_S,))

    def _delete(self, conn: sqlite3.Connection, where: str, args: tuple = ()) -> None:
        ids = [r[0] for r in conn.execute(f"SELECT id FROM listings WHERE {where}", args)]  # noqa: S608
        for listing_id in ids:
            conn.execute("BEGIN")
            conn.execute("DELETE FROM items WHERE listing = ?", (listing_id,))
            conn.execute("DELETE FROM replicas WHERE listing = ?", (listing_id,))
            conn.execute("DELETE FROM listings WHERE id = ?", (listing_id,))
            conn.execute("COMMIT")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
