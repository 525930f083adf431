"""Reliability, family 5: 1000 concurrent streams through the relay, each with its own answer.

Every stream asks a question carrying its own number; the offline model's fallback echoes the
question, so every answer is distinct and cross-talk (a delta relayed to the wrong client)
would show. The provider holds every stream before its final chunk until all 1000 are open at
once (``peak_streams == 1000``), so they really overlap; then it lets them finish. Afterwards
the relay still answers. Bounded: one round of 1000, generous deadlines; marked slow.
"""

from __future__ import annotations

import asyncio
import json
import resource
import time
from collections.abc import Iterator

import httpx
import pytest
from conftest import FAKE_KEY, need_system_part, wait_until
from httpx_sse import aconnect_sse
from reliability_figures import record

from helpers.offline import OfflineProvider
from helpers.offline.replies import compose_reply
from helpers.relay import Relay, start_relay
from helpers.settings import Config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
STREAMS = 1000


@pytest.fixture
def enough_files() -> Iterator[int]:
    """Raise the open-file limit (soft -> hard): 1000 streams need ~4000 sockets here."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    need_system_part(wanted >= 5 * STREAMS,
                     f"an open-file hard limit of {5 * STREAMS} (this machine's: {hard}) for "
                     f"{STREAMS} streams")
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    yield wanted
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def relay(offline: OfflineProvider) -> Iterator[Relay]:
    config = Config("offline", offline.base_url, "moonshot-v1-8k", FAKE_KEY)
    server = start_relay(config, read_timeout=120, jupyter=False, name="relay-reliability-load")
    yield server
    server.stop()


def question(i: int) -> str:
    return f"Ticket {i:04d}: echo ticket {i:04d} back"


async def one_stream(client: httpx.AsyncClient, i: int,
                     resumable: bool = False) -> tuple[int, str, list[str]]:
    """One answer; ``resumable``: as the page asks (``"resumable": true``, ids on the events)."""
    body = {"question": question(i), **({"resumable": True} if resumable else {})}
    async with aconnect_sse(client, "POST", "api/chat/stream", json=body) as source:
        status = source.response.status_code
        text, names = [], []
        async for event in source.aiter_sse():
            names.append(event.event)
            if event.event == "delta":
                text.append(json.loads(event.data)["content"])
    return status, "".join(text), names


def each_got_its_own(results: list[tuple[int, str, list[str]]],
                     offline: OfflineProvider) -> None:
    """All streams overlapped, each answer is its own question's, complete and distinct."""
    stats = offline.stats()
    assert stats["peak_streams"] == STREAMS  # they really overlapped
    assert stats["streams"] == stats["completed"] == STREAMS
    assert stats["disconnects"] == 0 and stats["open_streams"] == 0
    wrong = []
    for i, (status, text, names) in enumerate(results):
        expected = compose_reply([{"role": "user", "content": question(i)}]).text
        if status != 200 or text != expected or names[-2:] != ["usage", "done"]:
            wrong.append((i, status, text[:80], names[-2:]))
    assert not wrong, f"{len(wrong)} streams wrong, e.g. {wrong[:3]}"
    assert len({text for _, text, _ in results}) == STREAMS  # all distinct: no cross-talk


@pytest.mark.parametrize("resumable", [False, True], ids=["plain", "resumable"])
def test_a_thousand_concurrent_streams_each_get_their_own_answer(
        enough_files: int, relay: Relay, offline: OfflineProvider, resumable: bool) -> None:
    """Plain, and as the page asks: 1000 resumable answers, each in its producer's memory."""
    offline.hold()  # every stream waits before its final chunk until all are open
    suffix = "_resumable" if resumable else ""

    async def main() -> tuple[list, float, float]:
        limits = httpx.Limits(max_connections=STREAMS + 10, max_keepalive_connections=20)
        async with httpx.AsyncClient(base_url=relay.url, limits=limits,
                                     timeout=httpx.Timeout(120, connect=60)) as client:
            started = time.perf_counter()
            tasks = [asyncio.create_task(one_stream(client, i, resumable))
                     for i in range(STREAMS)]
            try:
                await asyncio.to_thread(offline.wait_for,
                                        lambda s: s["held"] == STREAMS, 300)
            finally:
                all_open = time.perf_counter()
                # The relay answers while 1000 streams are open.
                probe = time.perf_counter()
                health = await client.get("healthz")
                record("load_healthz_with_1000_open_streams" + suffix,
                       time.perf_counter() - probe)
                assert health.json()["ok"] is True
                offline.release()
            results = await asyncio.gather(*tasks)
            return results, all_open - started, time.perf_counter() - started

    results, to_open, total = asyncio.run(main())
    record("load_1000_streams_all_open" + suffix, to_open)
    record("load_1000_streams_total" + suffix, total)
    each_got_its_own(results, offline)
    if resumable:  # every answer stored and finished, then gone from the producer's memory
        wait_until(lambda: not relay.app.state.answers._local, timeout=30)
    assert httpx.get(relay.url + "healthz", timeout=10).json()["ok"] is True
    after = httpx.post(relay.url + "api/chat/stream", json={"question": "What is 1+1?"},
                       timeout=30)
    assert "event: done" in after.text
