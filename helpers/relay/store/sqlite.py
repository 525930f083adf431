"""The store in one SQLite file (WAL), shared by every worker process on this machine.

Deliberate choices (the interface and the ones every store shares: :mod:`.base`):

- **Every check-and-count is one** ``BEGIN IMMEDIATE`` **transaction**, so two workers can
  never both take the last slot of a limit.
- SQLite runs in a worker thread (``anyio.to_thread``) so a busy file never blocks the loop.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anyio.to_thread

from .base import USAGE_DAYS, Store

__all__ = ["SQLiteStore"]

T = TypeVar("T")
#: How often a batched flush removes expired answers (a scan of the answers table).
_PURGE_EVERY = 5.0
_OPEN = ("INSERT INTO answers (id, state, expires, seen, stop, owner) "
         "VALUES (?, 'running', ?, ?, 0, ?)")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS streams (client TEXT, lease TEXT PRIMARY KEY, expires REAL);
CREATE TABLE IF NOT EXISTS hits (client TEXT, at REAL);
CREATE INDEX IF NOT EXISTS hits_by_client ON hits (client, at);
CREATE TABLE IF NOT EXISTS budget (client TEXT, day TEXT, used REAL,
                                   PRIMARY KEY (client, day));
CREATE TABLE IF NOT EXISTS answers (id TEXT PRIMARY KEY, state TEXT, expires REAL,
                                    seen REAL, stop INTEGER DEFAULT 0, owner TEXT DEFAULT '');
CREATE TABLE IF NOT EXISTS events (answer TEXT, seq INTEGER, data BLOB,
                                   PRIMARY KEY (answer, seq));
CREATE TABLE IF NOT EXISTS usage (day TEXT, client TEXT, name TEXT, value REAL,
                                  PRIMARY KEY (day, client, name));
"""
#: One count added to a usage record; ``last`` keeps the later time instead.
_ADD_USAGE = ("INSERT INTO usage VALUES (?, ?, ?, ?) ON CONFLICT (day, client, name) DO UPDATE "
              "SET value = CASE WHEN name = 'last' THEN max(value, excluded.value) "
              "ELSE value + excluded.value END")


def _add_owner(conn: sqlite3.Connection) -> None:
    """Give a file made before answers had owners (issue 23) their column."""
    if "owner" not in [row[1] for row in conn.execute("PRAGMA table_info(answers)")]:
        try:
            conn.execute("ALTER TABLE answers ADD COLUMN owner TEXT DEFAULT ''")
        except sqlite3.OperationalError as exc:  # another worker added it first
            if "duplicate column" not in str(exc):
                raise


def _wal(conn: sqlite3.Connection, patience: float = 30.0) -> None:
    """Switch to WAL, waiting while another process opening the same new file holds it:
    SQLite answers "database is locked" to this pragma at once, without its busy timeout
    (two workers starting together; seen once in 1300 tests, the two-process budget race)."""
    deadline = time.monotonic() + patience
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class SQLiteStore(Store):
    """One SQLite file (WAL) shared by every worker process on this machine.

    Args:
        path: the file; None makes a temporary one, removed by :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self._temporary = path is None
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._purged = 0.0  # when flush last removed expired answers

    @property
    def url(self) -> str:  # type: ignore[override]
        """``sqlite:////absolute/path`` (a temporary store makes its file on first use)."""
        return f"sqlite:///{self.path}" if self.path else "sqlite:///(temporary)"

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:  # opened on first use: an app that never counts makes no file
            if self.path is None:
                handle, name = tempfile.mkstemp(prefix="helpers-relay-", suffix=".sqlite3")
                os.close(handle)
                self.path = Path(name)
            self._conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                         check_same_thread=False)
            self._conn.execute("PRAGMA busy_timeout = 30000")
            _wal(self._conn)
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.executescript(_SCHEMA)
            _add_owner(self._conn)
        return self._conn

    def _tx(self, work: Callable[[sqlite3.Connection, float], T], write: bool = True) -> T:
        # ``work`` returns plain values, never a cursor. A cursor keeps its cached statement
        # (executemany's does), and releasing it resets that statement: on the event loop's
        # thread, outside the lock, while another worker thread runs the same statement, so
        # that thread skipped its own reset and its next bind found the statement busy
        # (issue 22: sqlite3.InterfaceError "bad parameter or other API misuse").
        with self._lock:
            db = self._db()
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                result = work(db, time.time())
                assert not isinstance(result, sqlite3.Cursor), "a cursor must stay in _tx"
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return result

    async def _run(self, work: Callable[[sqlite3.Connection, float], T]) -> T:
        return await anyio.to_thread.run_sync(self._tx, work)

    async def take_stream(self, client: str, lease: str, limit: int, ttl: float) -> bool:
        def work(db: sqlite3.Connection, now: float) -> bool:
            db.execute("DELETE FROM streams WHERE expires < ?", (now,))
            (taken,) = db.execute("SELECT count(*) FROM streams WHERE client = ?",
                                  (client,)).fetchone()
            if taken >= limit:
                return False
            db.execute("INSERT INTO streams VALUES (?, ?, ?)", (client, lease, now + ttl))
            return True
        return await self._run(work)

    async def drop_stream(self, client: str, lease: str) -> None:
        await self._run(lambda db, now: db.execute("DELETE FROM streams WHERE lease = ?",
                                                   (lease,)).rowcount)

    async def hit(self, client: str, limit: int, window: float) -> float | None:
        def work(db: sqlite3.Connection, now: float) -> float | None:
            db.execute("DELETE FROM hits WHERE client = ? AND at <= ?", (client, now - window))
            count, oldest = db.execute("SELECT count(*), min(at) FROM hits WHERE client = ?",
                                       (client,)).fetchone()
            if count >= limit:
                return max(oldest + window - now, 0.0)
            db.execute("INSERT INTO hits VALUES (?, ?)", (client, now))
            return None
        return await self._run(work)

    async def reserve(self, client: str, day: str, amount: float, budget: float) -> float | None:
        def work(db: sqlite3.Connection, now: float) -> float | None:
            row = db.execute("SELECT used FROM budget WHERE client = ? AND day = ?",
                             (client, day)).fetchone()
            used = row[0] if row else 0.0
            if used + amount > budget:
                return used
            db.execute("INSERT INTO budget VALUES (?, ?, ?) ON CONFLICT (client, day) "
                       "DO UPDATE SET used = used + excluded.used", (client, day, amount))
            return None
        return await self._run(work)

    async def adjust(self, client: str, day: str, delta: float) -> None:
        await self._run(lambda db, now: db.execute(
            "INSERT INTO budget VALUES (?, ?, ?) ON CONFLICT (client, day) "
            "DO UPDATE SET used = used + excluded.used", (client, day, delta)).rowcount)

    async def used(self, client: str, day: str) -> float:
        row = await self._run(lambda db, now: db.execute(
            "SELECT used FROM budget WHERE client = ? AND day = ?", (client, day)).fetchone())
        return float(row[0]) if row else 0.0

    async def add_usage(self, client: str, day: str, counts: dict[str, float]) -> None:
        oldest = (dt.date.fromisoformat(day) - dt.timedelta(days=USAGE_DAYS)).isoformat()

        def work(db: sqlite3.Connection, now: float) -> None:
            db.execute("DELETE FROM usage WHERE day < ?", (oldest,))  # the key's first part
            db.executemany(_ADD_USAGE, [(day, client, k, v) for k, v in counts.items()])
        await self._run(work)

    async def usage(self, day: str) -> dict[str, dict[str, float]]:
        rows = await anyio.to_thread.run_sync(self._tx, lambda db, now: db.execute(
            "SELECT client, name, value FROM usage WHERE day = ?", (day,)).fetchall(), False)
        found: dict[str, dict[str, float]] = {}
        for client, name, value in rows:
            found.setdefault(client, {})[name] = float(value)
        return found

    async def open_answer(self, answer: str, ttl: float, owner: str = "") -> None:
        def work(db: sqlite3.Connection, now: float) -> None:
            expired = [r[0] for r in db.execute("SELECT id FROM answers WHERE expires < ?",
                                                (now,))]
            db.executemany("DELETE FROM events WHERE answer = ?", [(a,) for a in expired])
            db.execute("DELETE FROM answers WHERE expires < ?", (now,))
            db.execute(_OPEN, (answer, now + ttl, now, owner))
        await self._run(work)

    async def append(self, answer: str, seq: int, events: list[bytes]) -> None:
        rows = [(answer, seq + i, data) for i, data in enumerate(events)]
        await self._run(lambda db, now: db.executemany("INSERT INTO events VALUES (?, ?, ?)",
                                                       rows).rowcount)

    async def finish(self, answer: str, keep: float) -> None:
        await self._run(lambda db, now: db.execute(
            "UPDATE answers SET state = 'finished', expires = ? WHERE id = ?",
            (now + keep, answer)).rowcount)

    async def read(self, answer: str, after: int) -> tuple[str | None, list[tuple[int, bytes]]]:
        def work(db: sqlite3.Connection, now: float) -> tuple[str | None, list]:
            row = db.execute("SELECT state FROM answers WHERE id = ? AND expires >= ?",
                             (answer, now)).fetchone()
            if row is None:
                return None, []
            return row[0], db.execute("SELECT seq, data FROM events WHERE answer = ? AND "
                                      "seq > ? ORDER BY seq", (answer, after)).fetchall()
        # One consistent snapshot, without taking the write lock.
        return await anyio.to_thread.run_sync(self._tx, work, False)

    async def owner(self, answer: str) -> str | None:
        row = await anyio.to_thread.run_sync(self._tx, lambda db, now: db.execute(
            "SELECT owner FROM answers WHERE id = ? AND expires >= ?", (answer, now)).fetchone(),
            False)
        return None if row is None else str(row[0] or "")

    async def touch(self, answer: str) -> None:
        await self._run(lambda db, now: db.execute("UPDATE answers SET seen = ? WHERE id = ?",
                                                   (now, answer)).rowcount)

    async def seen(self, answer: str) -> tuple[float, bool]:
        row = await self._run(lambda db, now: db.execute(
            "SELECT seen, stop FROM answers WHERE id = ?", (answer,)).fetchone())
        return (float(row[0]), bool(row[1])) if row else (0.0, True)

    async def ask_stop(self, answer: str, owner: str | None = None) -> bool:
        changed = await self._run(lambda db, now: db.execute(
            "UPDATE answers SET stop = 1 WHERE id = ? AND expires >= ? AND "
            "(? IS NULL OR owner = ?)", (answer, now, owner, owner)).rowcount)
        return changed > 0

    def _batched(self) -> bool:
        # A subclass that changes a single operation (a test's failing append) gets it called.
        kind = type(self)
        return all(getattr(kind, name) is getattr(SQLiteStore, name)
                   for name in ("open_answer", "append", "finish", "seen"))

    async def flush(self, opens: list[tuple[str, float, str]],
                    appends: list[tuple[str, int, list[bytes]]],
                    finishes: list[tuple[str, float]]) -> dict[str, Exception]:
        if not self._batched():
            return await super().flush(opens, appends, finishes)
        events = [(answer, seq + i, data) for answer, seq, frames in appends
                  for i, data in enumerate(frames)]

        purge = bool(opens) and time.time() - self._purged > _PURGE_EVERY
        if purge:
            self._purged = time.time()

        def work(db: sqlite3.Connection, now: float) -> None:
            if purge:  # expired answers: a scan of the table, not on every flush
                expired = [(r[0],) for r in db.execute(
                    "SELECT id FROM answers WHERE expires < ?", (now,))]
                db.executemany("DELETE FROM events WHERE answer = ?", expired)
                db.execute("DELETE FROM answers WHERE expires < ?", (now,))
            if opens:
                db.executemany(_OPEN, [(a, now + ttl, now, owner) for a, ttl, owner in opens])
            if events:
                db.executemany("INSERT INTO events VALUES (?, ?, ?)", events)
            if finishes:
                db.executemany("UPDATE answers SET state = 'finished', expires = ? WHERE id = ?",
                               [(now + keep, a) for a, keep in finishes])
        try:
            await self._run(work)
        except Exception as exc:  # one transaction: none of it was written
            return {a: exc for a in [*(a for a, _, _ in opens), *(a for a, _, _ in appends),
                                     *(a for a, _ in finishes)]}
        return {}

    async def watch(self, answers: list[str], lease: float | None = None
                    ) -> dict[str, tuple[float, bool]]:
        if not self._batched():
            return await super().watch(answers, lease)

        def work(db: sqlite3.Connection, now: float) -> dict[str, tuple[float, bool]]:
            found: dict[str, tuple[float, bool]] = {}
            for i in range(0, len(answers), 500):  # SQLite's bound on variables
                part = answers[i:i + 500]
                marks = ",".join("?" * len(part))
                if lease is not None:
                    db.execute(f"UPDATE answers SET expires = ? WHERE state = 'running' AND "
                               f"id IN ({marks})", (now + lease, *part))
                for answer, seen, stop in db.execute(
                        f"SELECT id, seen, stop FROM answers WHERE id IN ({marks})", part):
                    found[answer] = (float(seen), bool(stop))
            return found
        found = await anyio.to_thread.run_sync(self._tx, work, lease is not None)
        return {a: found.get(a, (0.0, True)) for a in answers}

    async def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        if self._temporary and self.path is not None:
            for suffix in ("", "-wal", "-shm"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)
