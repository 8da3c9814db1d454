"""The per-user listing cache: Rucio listings spilled to SQLite as they stream in.

A listing (search hits, a collection's content, a collection's file replicas) is one
row in ``listings`` plus one row per item in ``items``, numbered from 1 in arrival
order. Items are stored as JSON text, usually Rucio's own line untouched (``shape``
names how a reader turns it into af-lab's row), so filling costs no parsing. A filler thread appends batches while Rucio streams; pages are read by keyset
(``seq > cursor``), so neither side ever holds more than a batch or a page in memory,
whatever the listing's length. Replica listings also keep (rse, state, bytes) per
replica in ``replicas`` so a collection's availability is one GROUP BY.

Blocking API: call it from worker threads (fillers, the gateway's pool) or await
:meth:`ListingCache.run`; never on the event loop. The file, its mode and the one
connection are :class:`af_lab.sqlite.Database`'s.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..sqlite import Database

T = TypeVar("T")

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
        self.db = Database(path, SCHEMA, name="af-lab-listing-db", row_factory=None)  # rows as tuples
        self.path = self.db.path
        self.ttl = ttl
        self._touched: dict[int, float] = {}  # listing id -> when ``accessed`` was last written
        # Listings left half-filled by a previous process can never complete: drop them.
        self._delete("complete = 0")
        self.collect()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` (a method of this cache) off the event loop, in the database's thread."""
        return await self.db.run(fn, *args)

    # ---------------------------------------------------------------- listings
    def fresh(self, key: str) -> Listing | None:
        """The newest complete listing for ``key`` younger than the TTL."""
        with self.db.connection() as conn:
            row = conn.execute(
                "SELECT id, key, created, complete, count, shape FROM listings WHERE key = ? AND complete = 1"
                " AND created > ? ORDER BY created DESC LIMIT 1", (key, time.time() - self.ttl),
            ).fetchone()
        return Listing(row[0], row[1], row[2], bool(row[3]), row[4], row[5]) if row else None

    def get(self, listing_id: int) -> Listing | None:
        with self.db.connection() as conn:
            row = conn.execute(
                "SELECT id, key, created, complete, count, shape FROM listings WHERE id = ?", (listing_id,)
            ).fetchone()
        return Listing(row[0], row[1], row[2], bool(row[3]), row[4], row[5]) if row else None

    def create(self, key: str, shape: str = "") -> tuple[int, float]:
        now = time.time()
        with self.db.connection() as conn:
            cur = conn.execute("INSERT INTO listings (key, created, accessed, shape) VALUES (?, ?, ?, ?)",
                               (key, now, now, shape))
        return int(cur.lastrowid), now

    def append(self, listing_id: int, start: int, rows: list[str | dict], replicas: list[tuple] | None = None) -> int:
        """Store ``rows`` (JSON text, or dicts) as seq start+1.., plus (rse, state, bytes) replica facts.

        Returns the new count."""
        with self.db.transaction() as conn:
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
        return count

    def finish(self, listing_id: int) -> None:
        with self.db.connection() as conn:
            conn.execute("UPDATE listings SET complete = 1 WHERE id = ?", (listing_id,))

    def drop(self, listing_id: int) -> None:
        self._delete("id = ?", (listing_id,))

    def page(self, listing_id: int, after: int, limit: int) -> list[tuple[int, str]]:
        """Up to ``limit`` items after seq ``after``, as (seq, JSON text)."""
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT seq, data FROM items WHERE listing = ? AND seq > ? ORDER BY seq LIMIT ?",
                (listing_id, after, limit),
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
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT rse, count(*), coalesce(sum(bytes), 0),"
                " sum(state = 'AVAILABLE'), coalesce(sum(CASE WHEN state = 'AVAILABLE' THEN bytes END), 0)"
                " FROM replicas WHERE listing = ? GROUP BY rse ORDER BY rse", (listing_id,),
            ).fetchall()
        return [{"rse": r[0], "files": r[1], "bytes": r[2], "files_available": r[3], "bytes_available": r[4]}
                for r in rows]

    # ---------------------------------------------------------------- housekeeping
    def collect(self) -> None:
        """Drop listings nobody read for TTL + cursor grace (their cursors have lapsed too)."""
        self._delete("accessed < ? AND complete = 1", (time.time() - self.ttl - CURSOR_GRACE_S,))

    def _delete(self, where: str, args: tuple = ()) -> None:
        with self.db.connection() as conn:
            ids = [r[0] for r in conn.execute(f"SELECT id FROM listings WHERE {where}", args)]  # noqa: S608
        for listing_id in ids:  # one transaction per listing: a reader waits for one listing, not all
            with self.db.transaction() as conn:
                conn.execute("DELETE FROM items WHERE listing = ?", (listing_id,))
                conn.execute("DELETE FROM replicas WHERE listing = ?", (listing_id,))
                conn.execute("DELETE FROM listings WHERE id = ?", (listing_id,))

    def close(self) -> None:
        self.db.close()
