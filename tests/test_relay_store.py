"""The relay's shared store: SQLite (one file, several processes) and Redis, one interface.

Every check-and-count must be atomic: two processes racing for the last unit of a budget must
not both get it. Both stores run the same tests; Redis is a real ``redis-server``
(tests/redis_server.py).
"""

# ruff: noqa: F811  (store_url: a fixture imported from tests/redis_server.py)
from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from redis_server import redis_server, store_url  # noqa: F401  (a fixture)

from helpers.relay.store import SQLiteStore, Store, open_store

pytestmark = pytest.mark.timeout(120)


def run(store_url: str, work) -> object:
    async def main() -> object:
        store = open_store(store_url)
        try:
            return await work(store)
        finally:
            await store.close()
    return asyncio.run(main())


def test_stream_slots_are_per_client_and_come_back(store_url: str) -> None:
    async def work(s: Store) -> list:
        got = [await s.take_stream("a", f"lease{i}", 2, 60) for i in range(3)]
        got.append(await s.take_stream("b", "other", 2, 60))
        await s.drop_stream("a", "lease0")
        got.append(await s.take_stream("a", "lease3", 2, 60))
        got.append(await s.take_stream("a", "lease4", 2, 60))
        return got
    assert run(store_url, work) == [True, True, False, True, True, False]


def test_a_dead_workers_slot_comes_back_when_its_lease_expires(store_url: str) -> None:
    async def work(s: Store) -> list:
        return [await s.take_stream("a", "gone", 1, -1.0),  # already expired
                await s.take_stream("a", "next", 1, 60), await s.take_stream("a", "x", 1, 60)]
    assert run(store_url, work) == [True, True, False]


def test_requests_per_window_say_how_long_to_wait(store_url: str) -> None:
    async def work(s: Store) -> list:
        return [await s.hit("a", 2, 60), await s.hit("a", 2, 60), await s.hit("a", 2, 60),
                await s.hit("b", 2, 60)]
    first, second, third, other = run(store_url, work)
    assert first is None and second is None and other is None
    assert third is not None and 0 < third <= 60


def test_a_budget_reserves_then_settles(store_url: str) -> None:
    async def work(s: Store) -> list:
        return [await s.reserve("a", "d", 60, 100), await s.reserve("a", "d", 50, 100),
                await s.reserve("b", "d", 50, 100), await s.adjust("a", "d", -20),
                await s.reserve("a", "d", 50, 100), await s.used("a", "d"),
                await s.used("a", "other-day")]
    assert run(store_url, work) == [None, 60.0, None, None, None, 90.0, 0.0]


def test_an_answer_is_numbered_events_and_a_state(store_url: str) -> None:
    async def work(s: Store) -> list:
        await s.open_answer("ans", 60)
        await s.append("ans", 1, [b"one", b"two"])
        await s.append("ans", 3, [b"three"])
        out = [await s.read("ans", 0), await s.read("ans", 2), await s.read("nope", 0)]
        await s.touch("ans")
        out += [(await s.seen("ans"))[1], await s.ask_stop("ans"), (await s.seen("ans"))[1],
                await s.ask_stop("nope")]
        await s.finish("ans", 60)
        out.append(await s.read("ans", 3))
        await s.finish("ans", -1)  # its grace period is over
        out.append(await s.read("ans", 0))
        return out
    assert run(store_url, work) == [
        ("running", [(1, b"one"), (2, b"two"), (3, b"three")]), ("running", [(3, b"three")]),
        (None, []), False, True, True, False, ("finished", []), (None, [])]


RACER = """
import asyncio, sys
from helpers.relay.store import open_store
async def main():
    store = open_store(sys.argv[1])
    won = 0
    for _ in range(150):
        won += await store.reserve("a", "day", 1, 200) is None
    await store.close()
    print(won)
asyncio.run(main())
"""


def test_two_processes_racing_for_a_budget_get_exactly_all_of_it(store_url: str) -> None:
    """Two processes reserve one unit 150 times each against a budget of 200: exactly 200 win."""
    racers = [subprocess.Popen([sys.executable, "-c", RACER, store_url], stdout=subprocess.PIPE,
                               text=True) for _ in range(2)]
    won = [int(p.communicate(timeout=90)[0]) for p in racers]
    assert all(p.returncode == 0 for p in racers)
    assert sum(won) == 200 and min(won) > 0, won  # both took part, together exactly the budget

    async def used(s: Store) -> float:
        return await s.used("a", "day")
    assert run(store_url, used) == 200.0


def test_a_temporary_sqlite_store_makes_its_file_on_first_use_and_removes_it() -> None:
    store = SQLiteStore()
    assert store.path is None  # an app that never counts makes no file

    async def work() -> Path:
        await store.hit("a", 5, 60)
        assert store.path is not None and store.path.exists()
        await store.close()
        return store.path
    path = asyncio.run(work())
    assert not path.exists()


def test_an_unknown_store_url_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="sqlite:///"):
        open_store("postgres://db/relay")


def test_switching_to_wal_waits_while_another_process_holds_the_new_file() -> None:
    """SQLite refuses the WAL pragma at once ("database is locked", no busy timeout) while a
    second process opens the same new store; the store retries (failed once in make test)."""
    from helpers.relay.store.sqlite import _wal

    class Busy:
        def __init__(self, failures: int, message: str = "database is locked") -> None:
            self.failures, self.message, self.calls = failures, message, 0

        def execute(self, sql: str) -> None:
            self.calls += 1
            if self.calls <= self.failures:
                raise sqlite3.OperationalError(self.message)

    conn = Busy(3)
    _wal(conn)  # type: ignore[arg-type]
    assert conn.calls == 4
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        _wal(Busy(10**6), patience=0.1)  # type: ignore[arg-type]
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        _wal(Busy(1, "disk I/O error"))  # type: ignore[arg-type]
