"""Reliability, family 5 (continued): 1000 concurrent streams through ``--workers 2`` behind nginx.

The same round as tests/test_reliability_load.py (1000 distinct questions, every stream held
open until all 1000 are, byte-exact answers), but through the deployment of docs/deploy.md:
nginx in front of ``python -m helpers.relay --workers 2`` with per-client limits switched on
and set high enough not to interfere (every stream comes from one client, nginx's address):
--max-streams 2000, --requests-per-minute 100000, --daily-tokens 1000000000, counted in one
SQLite file both workers share. Marked slow.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from conftest import FAKE_KEY, need_system_part
from relay_process import RelayProcess
from reliability_figures import record
from test_reliability_load import (  # noqa: F401  (enough_files: a fixture)
    STREAMS,
    each_got_its_own,
    enough_files,
    one_stream,
)
from test_reliability_nginx import NGINX, Nginx

from helpers.offline import OfflineProvider

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.mark.parametrize("resumable", [False, True], ids=["plain", "resumable"])
def test_a_thousand_streams_through_two_workers_behind_nginx(
        enough_files: int, offline: OfflineProvider, tmp_path: Path,  # noqa: F811
        resumable: bool) -> None:
    """Plain, and as the page asks (1000 resumable answers over two workers sharing a store)."""
    need_system_part(NGINX is not None, "nginx (apt-get install nginx)")
    relay = RelayProcess("--workers", "2", "--base-url", offline.base_url, "--api-key", FAKE_KEY,
                         "--model", "moonshot-v1-8k", "--read-timeout", "120",
                         "--max-streams", "2000", "--requests-per-minute", "100000",
                         "--daily-tokens", "1000000000",
                         "--store", f"sqlite:///{tmp_path / 'relay.sqlite3'}")
    (tmp_path / "nginx").mkdir()
    proxy = None
    try:
        assert len(relay.workers()) == 2
        port = int(relay.url.rstrip("/").rsplit(":", 1)[1])
        proxy = Nginx(tmp_path / "nginx", port, connections=4 * STREAMS)
        offline.hold()  # every stream waits before its final chunk until all are open

        async def main() -> tuple[list, float, float]:
            limits = httpx.Limits(max_connections=STREAMS + 10, max_keepalive_connections=20)
            async with httpx.AsyncClient(base_url=proxy.url, limits=limits,
                                         timeout=httpx.Timeout(300, connect=60)) as client:
                started = time.perf_counter()
                tasks = [asyncio.create_task(one_stream(client, i, resumable))
                         for i in range(STREAMS)]
                try:
                    await asyncio.to_thread(offline.wait_for,
                                            lambda s: s["held"] == STREAMS, 400)
                finally:
                    all_open = time.perf_counter()
                    offline.release()
                results = await asyncio.gather(*tasks)
                return results, all_open - started, time.perf_counter() - started

        results, to_open, total = asyncio.run(main())
        suffix = "_resumable" if resumable else ""
        record("load_workers2_nginx_1000_streams_all_open" + suffix, to_open)
        record("load_workers2_nginx_1000_streams_total" + suffix, total)
        each_got_its_own(results, offline)
        assert httpx.get(proxy.url + "healthz", timeout=10).json()["ok"] is True
        assert "[crit]" not in proxy.log() and "[emerg]" not in proxy.log()
    finally:
        offline.release()
        if proxy is not None:
            proxy.stop()
        assert relay.stop() == 0
