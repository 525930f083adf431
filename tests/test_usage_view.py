"""The teacher's usage view (issue 24, finding 3): the store's usage records (SQLite and a
real Redis).
"""

# ruff: noqa: F811  (store_url: a fixture imported from tests/redis_server.py)

from __future__ import annotations

import asyncio

import pytest
from redis_server import store_url  # noqa: F401  (a fixture)

from helpers.relay.store import open_store

pytestmark = pytest.mark.timeout(180)


# -- the store's records ---------------------------------------------------------------------
def test_the_store_sums_counts_and_keeps_the_latest_activity(store_url: str) -> None:
    async def run() -> tuple[dict, dict, dict]:
        store = open_store(store_url)
        try:
            await store.add_usage("token:anna", "2026-10-01", {"requests": 1, "last": 1.0})
            assert await store.usage("2026-10-01") == {"token:anna": {"requests": 1, "last": 1}}
            await store.add_usage("token:anna", "2026-12-06",
                                  {"requests": 1, "total_tokens": 30, "last": 200.0})
            await store.add_usage("token:anna", "2026-12-06",
                                  {"requests": 1, "refused:relay_rate_limit": 1, "last": 100.0})
            await store.add_usage("token:ben", "2026-12-06", {"cost": 0.25, "last": 50.0})
            await store.add_usage("token:anna", "2026-12-07", {"requests": 1, "last": 300.0})
            if store_url.startswith("sqlite"):  # 31 days kept (Redis: the keys expire)
                assert await store.usage("2026-10-01") == {}
            return (await store.usage("2026-12-06"), await store.usage("2026-12-07"),
                    await store.usage("2026-12-08"))
        finally:
            await store.close()

    day, next_day, empty = asyncio.run(run())
    assert day == {"token:anna": {"requests": 2, "total_tokens": 30, "last": 200.0,
                                  "refused:relay_rate_limit": 1},
                   "token:ben": {"cost": 0.25, "last": 50.0}}
    assert next_day == {"token:anna": {"requests": 1, "last": 300.0}} and empty == {}
