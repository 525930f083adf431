"""Resumable answers: a connection cut mid-answer continues, byte-exact, with one upstream request.

The connection runs through a TCP proxy the test controls (tests/tcp_cutter.py), which cuts it
as a dropped Wi-Fi would. Two relays share one store (a SQLite file, or Redis): the reconnect
goes to the *other* relay, which has never seen the answer except in the store: that is what
another worker sees. The offline provider's counters prove there was one upstream request, and
that a stopped or abandoned answer closed it.
"""

# ruff: noqa: F811  (store_url: a fixture imported from tests/redis_server.py)
from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import FAKE_KEY, wait_until
from httpx_sse import connect_sse
from redis_server import redis_server, store_url  # noqa: F401  (a fixture)
from reliability_figures import record
from tcp_cutter import TcpCutter

from helpers.offline import OfflineProvider
from helpers.offline.replies import filler_reply
from helpers.relay import Relay, start_relay
from helpers.relay.answer_tail import follow_store
from helpers.relay.store import SQLiteStore
from helpers.settings import Config

pytestmark = pytest.mark.timeout(120)
SLOW = "[tokens:60][delay:20] hi"
HELD = "What is a prime number? [hold]"


def two_relays(offline: OfflineProvider, store: str, grace: float) -> list[Relay]:
    config = Config("offline", offline.base_url, "moonshot-v1-8k", FAKE_KEY)
    return [start_relay(config, jupyter=False, name=f"relay-resume-{i}", store=store,
                        resume_grace=grace) for i in range(2)]


@pytest.fixture
def relays(offline: OfflineProvider, store_url: str) -> Iterator[list[Relay]]:
    started = two_relays(offline, store_url, grace=60)
    yield started
    for relay in started:
        relay.stop()


def read_events(source) -> Iterator[tuple[str, str, str]]:
    for event in source.iter_sse():
        yield event.id, event.event, event.data


def text_of(events: list[tuple[str, str, str]]) -> str:
    return "".join(json.loads(data)["content"] for _, name, data in events if name == "delta")


def test_a_cut_connection_resumes_on_another_worker_byte_exact(
        relays: list[Relay], offline: OfflineProvider) -> None:
    first, other = relays
    proxy = TcpCutter(first.port)
    got: list[tuple[str, str, str]] = []
    try:
        with pytest.raises(httpx.HTTPError), httpx.Client(timeout=30) as client, connect_sse(
                client, "POST", proxy.url + "api/chat/stream",
                json={"question": SLOW, "resumable": True}) as source:
            for event in read_events(source):
                got.append(event)
                if len(got) == 5:
                    proxy.cut()  # mid-answer: the provider is still writing
        assert offline.stats()["open_streams"] == 1  # the answer goes on without a reader
        proxy.backend = other.port  # the reconnect reaches the other worker
        with httpx.Client(timeout=30) as client, connect_sse(
                client, "GET", proxy.url + "api/chat/resume",
                headers={"Last-Event-ID": got[-1][0]}) as source:
            assert source.response.status_code == 200
            rest = list(read_events(source))
    finally:
        proxy.close()
    assert text_of(got + rest) == filler_reply(60)  # nothing lost, nothing repeated
    numbers = [int(i.rpartition(".")[2]) for i, _, _ in got + rest]
    assert numbers == list(range(1, len(numbers) + 1))
    assert [name for _, name, _ in rest[-2:]] == ["usage", "done"]
    stats = offline.stats()
    assert stats["streams"] == 1 and stats["completed"] == 1 and stats["disconnects"] == 0


def test_stop_through_another_worker_closes_the_upstream_request(
        relays: list[Relay], offline: OfflineProvider) -> None:
    first, other = relays
    with httpx.stream("POST", first.url + "api/chat/stream", timeout=30,
                      json={"question": HELD, "resumable": True}) as response:
        lines = response.iter_lines()
        line = next(lines)
        answer = line.removeprefix("id: ").rpartition(".")[0]
        offline.wait_for(lambda s: s["held"] == 1, timeout=10)
        stopped = httpx.post(other.url + f"api/chat/stop/{answer}", timeout=10)
        assert stopped.status_code == 204
        offline.wait_for(lambda s: s["disconnects"] == 1, timeout=10)  # grace is 60 s
        tail = "\n".join(lines)
    assert '"type":"stopped"' in tail and "event: done" not in tail
    assert offline.stats()["completed"] == 0
    assert httpx.post(other.url + "api/chat/stop/no-such-answer", timeout=10).status_code == 404


def test_an_unknown_or_malformed_resume_is_a_clear_error(relays: list[Relay]) -> None:
    relay = relays[0]
    unknown = httpx.get(relay.url + "api/chat/resume", headers={"Last-Event-ID": "nope.3"},
                        timeout=10)
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "resume_expired"
    assert "Ask again" in unknown.json()["error"]["message"]
    malformed = httpx.get(relay.url + "api/chat/resume", timeout=10)
    assert malformed.status_code == 400 and "Last-Event-ID" in malformed.text


def test_an_abandoned_answer_closes_after_the_grace_period_then_expires(
        offline: OfflineProvider, tmp_path: Path) -> None:
    relay, _ = started = two_relays(offline, f"sqlite:///{tmp_path / 's.sqlite3'}", grace=1.0)
    try:
        proxy = TcpCutter(relay.port)
        with pytest.raises(httpx.HTTPError), httpx.Client(timeout=30) as client, \
                client.stream("POST", proxy.url + "api/chat/stream",
                              json={"question": HELD, "resumable": True}) as response:
            lines = response.iter_lines()
            last = next(ln for ln in lines if ln.startswith("id: "))[4:]
            offline.wait_for(lambda s: s["held"] == 1, timeout=10)
            proxy.cut()
            cut = time.perf_counter()
            for _ in lines:
                pass
        proxy.close()
        answers = relay.app.state.answers
        wait_until(lambda: all(a.readers == 0 for a in answers._local.values()))
        assert offline.stats()["open_streams"] == 1  # the grace period: still waiting
        left = wait_until(lambda: offline.stats()["disconnects"] == 1, timeout=15)
        record("resume_abandoned_cut_to_upstream_closed", left - cut, grace=1.0)
        resumed = httpx.get(relay.url + "api/chat/resume", headers={"Last-Event-ID": last},
                            timeout=10)  # within the grace period after it ended: readable
        assert resumed.status_code == 200 and '"type":"stopped"' in resumed.text
        wait_until(lambda: httpx.get(relay.url + "api/chat/resume", timeout=10,
                                     headers={"Last-Event-ID": last}).status_code == 404,
                   timeout=15, every=0.2)
    finally:
        for r in started:
            r.stop()
    assert offline.stats()["streams"] == 1


def test_clients_that_do_not_ask_keep_the_plain_stream(offline: OfflineProvider) -> None:
    config = Config("offline", offline.base_url, "moonshot-v1-8k", FAKE_KEY)
    with start_relay(config, jupyter=False, name="relay-resume-plain") as relay:
        body = httpx.post(relay.url + "api/chat/stream", json={"question": "What is 1+1?"},
                          timeout=30).text
        assert relay.app.state.limiter.store.path is None  # no answer was stored
    assert "id:" not in body and body.endswith('event: done\ndata: {"finish_reason":"stop"}\n\n')


def ending(body: str, plain: str) -> str:
    """"exact" if ``body`` is the plain answer with ids, else how it ended."""
    if re.sub(r"^id: .*\n", "", body, flags=re.M) == plain:
        return "exact"
    return body.rstrip("\n").rpartition("event: ")[2] or "nothing"


def test_many_concurrent_resumable_answers_are_all_byte_exact(
        offline: OfflineProvider, store_url: str) -> None:
    """Issue 22: flat out, some answers ended in an ``upstream_error`` the relay's own store
    raised (SQLite: a cursor released outside the store's lock; Redis: the client's pool ran
    out). Every resumable answer is the plain one plus its ids, and ends in ``done``."""
    config = Config("offline", offline.base_url, "moonshot-v1-8k", FAKE_KEY)
    question = {"question": "What is a prime number?", "history": []}
    answers, at_once = 300, 100

    async def ask_all(url: str, plain: str) -> list[str]:
        limits = httpx.Limits(max_connections=at_once)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            async def one() -> str:
                try:
                    response = await client.post(url, json={**question, "resumable": True})
                except httpx.HTTPError as exc:
                    return f"cut: {type(exc).__name__}"
                return ending(response.text, plain)
            tasks = [asyncio.ensure_future(one()) for _ in range(answers)]
            done, hung = await asyncio.wait(tasks, timeout=60)
            for task in hung:
                task.cancel()
            await asyncio.gather(*hung, return_exceptions=True)
            return [task.result() for task in done] + ["hung"] * len(hung)

    with start_relay(config, jupyter=False, name="relay-resume-many", store=store_url) as relay:
        url = relay.url + "api/chat/stream"
        plain = httpx.post(url, json=question, timeout=30).text
        assert plain.endswith('event: done\ndata: {"finish_reason":"stop"}\n\n')
        endings = Counter(asyncio.run(ask_all(url, plain)))
    assert endings == {"exact": answers}, endings
    assert offline.stats()["completed"] == answers + 1


class FailingStore(SQLiteStore):
    """A SQLite store whose second append fails, as issue 22's did."""

    appends = 0

    async def append(self, answer: str, seq: int, events: list[bytes]) -> None:
        self.appends += 1
        if self.appends == 2:
            raise sqlite3.InterfaceError("bad parameter or other API misuse")
        await super().append(answer, seq, events)


def test_a_store_failure_is_the_relays_error_not_the_providers(
        offline: OfflineProvider, tmp_path: Path) -> None:
    config = Config("offline", offline.base_url, "moonshot-v1-8k", FAKE_KEY)
    store = FailingStore(tmp_path / "s.sqlite3")
    try:
        with start_relay(config, jupyter=False, name="relay-resume-failing", store=store) as relay:
            body = httpx.post(relay.url + "api/chat/stream", timeout=30,
                              json={"question": SLOW, "resumable": True}).text
    finally:
        asyncio.run(store.close())
    name, _, data = body.rstrip("\n").rpartition("event: ")[2].partition("\ndata: ")
    assert name == "error" and json.loads(data) == {
        "type": "relay_error", "status": None,
        "message": "The relay failed while storing the answer (InterfaceError)"}
    assert "event: delta" in body  # the first batch, stored before the failure
    offline.wait_for(lambda s: s["disconnects"] == 1, timeout=10)  # the upstream was closed


class FailingClose:
    """Upstream batches whose close fails (issue 22.4a: the answer stayed "running")."""

    def __init__(self) -> None:
        self.batches = [[("delta", {"content": "b"})]]

    def __aiter__(self) -> FailingClose:
        return self

    async def __anext__(self) -> list:
        if not self.batches:
            raise RuntimeError("the provider's stream broke")
        return self.batches.pop()

    async def aclose(self) -> None:
        raise OSError("closing failed")


def test_an_answer_whose_clean_up_fails_still_ends_for_every_reader(tmp_path: Path) -> None:
    from helpers.relay.resume import Answers

    async def main() -> tuple[bytes, bytes]:
        store = SQLiteStore(tmp_path / "s.sqlite3")
        here = Answers(store, grace=5, failure=lambda exc: {"type": "upstream_error",
                                                            "message": str(exc), "status": None})
        elsewhere = Answers(store, grace=5, failure=lambda exc: {})
        response = await here.respond([("delta", {"content": "a"})], FailingClose())
        local = b"".join([part async for part in response.body_iterator])
        answer = response.headers["x-relay-answer"]
        await asyncio.sleep(0.3)  # the final flush
        remote = b"".join([part async for part in follow_store(elsewhere.store, answer, 0)])
        await store.close()
        return local, remote

    local, remote = asyncio.run(asyncio.wait_for(main(), 10))
    for body in (local, remote):
        assert body.count(b"event: delta") == 2 and b"the provider's stream broke" in body
        assert body.rstrip().rpartition(b"event: ")[2].startswith(b"error")


def test_a_reader_elsewhere_gives_up_when_the_producers_lease_lapses(tmp_path: Path) -> None:
    from helpers.relay.resume import Answers

    async def main() -> bytes:
        store = SQLiteStore(tmp_path / "s.sqlite3")
        await store.open_answer("gone", 0.5)  # its worker died: nobody renews it
        await store.append("gone", 1, [b"id: gone.1\nevent: delta\ndata: {\"content\":\"x\"}\n\n"])
        elsewhere = Answers(store, grace=5, failure=lambda exc: {})
        body = b"".join([part async for part in follow_store(elsewhere.store, "gone", 0)])
        await store.close()
        return body

    body = asyncio.run(asyncio.wait_for(main(), 10))
    assert b"event: delta" in body and b'"type":"relay_error"' in body
