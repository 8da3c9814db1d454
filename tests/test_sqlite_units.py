"""af_lab.sqlite.Database: the one way stores open SQLite (private files, WAL, one threading rule)."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from af_lab.sqlite import Database

SCHEMA = "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v INTEGER);"


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


async def test_files_are_private_and_async_calls_run_in_the_database_thread(tmp_path):
    db = Database(tmp_path / "state" / "s.sqlite", SCHEMA, version=1, name="af-lab-test-db")
    try:

        def insert(k: str) -> str:
            with db.transaction() as conn:
                conn.execute("INSERT INTO t VALUES (?, 1)", (k,))
            return threading.current_thread().name

        where = {await db.run(insert, k) for k in "abc"}
        assert len(where) == 1 and next(iter(where)).startswith("af-lab-test-db")  # one thread, never the loop's
        assert threading.current_thread().name not in where
        with db.connection() as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert [r["k"] for r in conn.execute("SELECT k FROM t ORDER BY k")] == ["a", "b", "c"]
        for suffix in ("", "-wal", "-shm"):
            assert _mode(f"{db.path}{suffix}") == 0o600
        assert _mode(db.path.parent) == 0o700
    finally:
        db.close()


def test_a_failed_transaction_leaves_nothing_and_nested_ones_join(tmp_path):
    db = Database(tmp_path / "s.sqlite", SCHEMA)
    with pytest.raises(ValueError), db.transaction() as conn:
        conn.execute("INSERT INTO t VALUES ('x', 1)")
        with db.transaction() as inner:  # joins the outer transaction
            inner.execute("INSERT INTO t VALUES ('y', 2)")
        raise ValueError("undo both")
    with db.connection() as conn:
        assert conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 0
    db.close()


def test_a_file_from_a_newer_schema_is_refused(tmp_path):
    Database(tmp_path / "s.sqlite", SCHEMA, version=3).close()
    with pytest.raises(RuntimeError, match="newer af-lab"):
        Database(tmp_path / "s.sqlite", SCHEMA, version=2)
