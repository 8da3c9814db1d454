"""The one way af-lab keeps state in SQLite: a private file, WAL, one connection, one rule.

Every store (mounts, publish jobs, the listing cache) opens its file through
:class:`Database`:

- the file is 0600 in a 0700 folder *before* SQLite opens it, so its ``-wal``/``-shm``
  companions get the same mode (:func:`af_lab.paths.private_sqlite`);
- WAL with ``synchronous=NORMAL``: a committed transaction survives a killed server,
  and readers outside af-lab (``sqlite3`` on the command line) never block it;
- one connection, guarded by one re-entrant lock: a statement or a transaction holds
  it, so calls from any thread never interleave inside a transaction;
- the threading rule: **async code never touches SQLite on the event loop**; it awaits
  :meth:`Database.run`, which runs the call in the database's own single thread.
  Worker threads (fetchers, listing fillers) may call a store directly.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from .paths import private_sqlite

T = TypeVar("T")


class Database:
    """A private SQLite file with its schema applied; see the module's docstring for the rules.

    ``version`` is the schema's ``user_version``: a file written by a newer af-lab is refused.
    ``name`` names the database's thread (seen in ``py-spy`` and thread dumps); rows are
    :class:`sqlite3.Row` unless ``row_factory`` says otherwise (``None``: plain tuples).
    """

    def __init__(
        self,
        path: str | Path,
        schema: str,
        *,
        version: int | None = None,
        foreign_keys: bool = False,
        name: str = "af-lab-sqlite",
        timeout: float = 30.0,
        row_factory: Any = sqlite3.Row,
    ):
        self.path = Path(path)
        private_sqlite(self.path)  # 0600 before SQLite makes its -wal/-shm with the same mode
        self._lock = threading.RLock()
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=name)
        # isolation_level=None: transactions are explicit (:meth:`transaction`).
        self._conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
        self._conn.row_factory = row_factory
        try:
            self._prepare(schema, version, foreign_keys)
        except BaseException:
            self._conn.close()
            raise
        self.path.chmod(0o600)
        self._closed = False

    def _prepare(self, schema: str, version: int | None, foreign_keys: bool) -> None:
        conn = self._conn
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        if foreign_keys:
            conn.execute("PRAGMA foreign_keys=ON")
        if version is not None:
            found = conn.execute("PRAGMA user_version").fetchone()[0]
            if found > version:
                raise RuntimeError(f"{self.path} was written by a newer af-lab (schema {found})")
        conn.executescript(schema)
        if version is not None:
            conn.execute(f"PRAGMA user_version={int(version)}")

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """The connection, for one statement or several that need no transaction."""
        with self._lock:
            yield self._conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on any error); inside another, joins it."""
        with self._lock:
            if self._conn.in_transaction:
                yield self._conn
                return
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in the database's own thread, awaited from the event loop."""
        future = self._thread.submit(functools.partial(fn, *args, **kwargs))
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Wait for the calls already queued, then close the connection."""
        if self._closed:
            return
        self._closed = True
        self._thread.shutdown(wait=True)
        with self._lock:
            self._conn.close()
