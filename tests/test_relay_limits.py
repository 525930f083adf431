"""Per-client limits and budgets: each refuses with its own 429, other clients unaffected.

Clients are told apart the way a relay behind a proxy does it: the relay trusts 127.0.0.1 as a
proxy, so ``X-Forwarded-For`` names the client (tests/test_relay_identity.py covers who may
say so). The offline provider's counters prove a refused request never reached it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import FAKE_KEY, sse_events
from redis_server import redis_server

from helpers.money.cost import call_cost
from helpers.money.tokens import count_prompt_tokens
from helpers.offline import OfflineProvider
from helpers.offline.replies import compose_reply
from helpers.providers import price_of
from helpers.relay import DEFAULT_SYSTEM_PROMPT, ChatRequest, Relay, create_app, start_relay
from helpers.relay.limits import Limits
from helpers.relay.store import SQLiteStore
from helpers.settings import Config

pytestmark = pytest.mark.timeout(120)
QUESTION = "What is a prime number?"
HELD = QUESTION + " [hold]"


@pytest.fixture
def relay_with(offline: OfflineProvider) -> Iterator[Callable[..., Relay]]:
    started: list[Relay] = []

    def start(**limits: int) -> Relay:
        config = Config("offline", offline.base_url, "moonshot-v1-8k", FAKE_KEY)
        started.append(start_relay(config, jupyter=False, name=f"relay-limits-{len(started)}",
                                   limits=Limits(**limits), trusted_proxies=["127.0.0.1"]))
        return started[-1]

    yield start
    for relay in started:
        relay.stop()


def ask(relay: Relay, client: str, question: str = QUESTION, **body: object) -> httpx.Response:
    return httpx.post(relay.url + "api/chat/stream", json={"question": question, **body},
                      headers={"X-Forwarded-For": client}, timeout=30)


def events(response: httpx.Response) -> list[tuple[str, dict]]:
    return sse_events(response.text)


def refused(response: httpx.Response, kind: str) -> str:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["type"] == kind
    assert "a limit of the relay, not of the provider" in error["message"]
    return error["message"]


def test_concurrent_streams_per_client(relay_with: Callable[..., Relay],
                                       offline: OfflineProvider) -> None:
    relay = relay_with(concurrent_streams=1)
    with httpx.stream("POST", relay.url + "api/chat/stream", json={"question": HELD},
                      headers={"X-Forwarded-For": "10.0.0.1"}, timeout=30) as held:
        assert held.status_code == 200
        offline.wait_for(lambda s: s["held"] == 1, timeout=10)
        second = ask(relay, "10.0.0.1")
        message = refused(second, "relay_concurrency_limit")
        assert "1 answers at once" in message and "retry-after" not in second.headers
        assert ask(relay, "10.0.0.2").status_code == 200  # another client streams
        offline.release()
        held.read()
    assert ask(relay, "10.0.0.1").status_code == 200  # the slot came back
    assert offline.stats()["streams"] == 3  # the refused request never reached the provider


class _NoTextProvider(BaseHTTPRequestHandler):
    """A provider whose answer has no text at all: one chunk, finish_reason content_filter."""

    BODY = (b'data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m",'
            b'"choices":[{"index":0,"delta":{},"finish_reason":"content_filter"}]}\n\n'
            b"data: [DONE]\n\n")

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(self.BODY)))
        self.end_headers()
        self.wfile.write(self.BODY)

    def log_message(self, *args: object) -> None:
        pass


def test_the_slot_comes_back_after_an_answer_without_text() -> None:
    """Regression (review of issue 17): an answer whose only batch is its last ends the
    response in one write; uvicorn then says the client left, and the relay must not cancel
    the clean-up that frees the client's stream slot (every later request got a 429)."""
    provider = ThreadingHTTPServer(("127.0.0.1", 0), _NoTextProvider)
    threading.Thread(target=provider.serve_forever, daemon=True).start()
    config = Config("openai", f"http://127.0.0.1:{provider.server_port}/v1", "m", FAKE_KEY)
    relay = start_relay(config, jupyter=False, name="relay-limits-no-text",
                        limits=Limits(concurrent_streams=1))
    try:
        for _ in range(4):
            answer = httpx.post(relay.url + "api/chat/stream", json={"question": QUESTION},
                                timeout=30)
            assert answer.status_code == 200, answer.text
            assert events(answer) == [("done", {"finish_reason": "content_filter"})]
    finally:
        relay.stop()
        provider.shutdown()


def test_requests_per_minute_per_client(relay_with: Callable[..., Relay],
                                        offline: OfflineProvider) -> None:
    relay = relay_with(requests_per_minute=2)
    assert [ask(relay, "10.0.0.1").status_code for _ in range(2)] == [200, 200]
    third = ask(relay, "10.0.0.1")
    assert "2 requests per minute" in refused(third, "relay_rate_limit")
    assert 1 <= int(third.headers["retry-after"]) <= 60
    assert ask(relay, "10.0.0.2").status_code == 200
    assert offline.stats()["streams"] == 3


def test_an_untrusted_client_cannot_choose_its_identity(offline: OfflineProvider) -> None:
    # Regression: uvicorn's proxy headers (on by default, trusting 127.0.0.1) let any loopback
    # client pick its address with X-Forwarded-For, and so escape its limits.
    config = Config("offline", offline.base_url, "moonshot-v1-8k", FAKE_KEY)
    relay = start_relay(config, jupyter=False, name="relay-limits-untrusted",
                        limits=Limits(requests_per_minute=1))
    try:
        assert ask(relay, "10.0.0.1").status_code == 200
        refused(ask(relay, "10.0.0.2"), "relay_rate_limit")  # still 127.0.0.1 to the relay
    finally:
        relay.stop()
    assert offline.stats()["streams"] == 1


def test_max_tokens_ceiling(relay_with: Callable[..., Relay], offline: OfflineProvider) -> None:
    relay = relay_with(max_tokens=5)
    over = ask(relay, "10.0.0.1", max_tokens=6)
    assert "max_tokens=5" in refused(over, "relay_max_tokens_limit")
    assert "retry-after" not in over.headers
    capped = events(ask(relay, "10.0.0.1"))  # no max_tokens: the ceiling is sent upstream
    assert capped[-2][1]["completion_tokens"] == 5 and capped[-1][1] == {"finish_reason": "length"}
    fewer = events(ask(relay, "10.0.0.2", max_tokens=3))
    assert fewer[-2][1]["completion_tokens"] == 3
    assert offline.stats()["streams"] == 2


def test_daily_budget_per_client_holds_exactly(relay_with: Callable[..., Relay],
                                               offline: OfflineProvider) -> None:
    """Each answer is cut at the ceiling, so each costs exactly its reservation."""
    probe = relay_with(max_tokens=5)
    cost = events(ask(probe, "10.9.9.9"))[-2][1]["total_tokens"]
    relay = relay_with(max_tokens=5, daily_tokens=2 * cost + cost // 2)
    spent = [events(ask(relay, "10.0.0.1"))[-2][1]["total_tokens"] for _ in range(2)]
    assert spent == [cost, cost]
    third = ask(relay, "10.0.0.1")
    message = refused(third, "relay_budget_limit")
    assert f"{2 * cost} are used" in message and "midnight UTC" in message
    assert asyncio.run(relay.app.state.limiter.used("addr:10.0.0.1")) == 2 * cost
    assert 1 <= int(third.headers["retry-after"]) <= 86400
    assert ask(relay, "10.0.0.2").status_code == 200  # another client's budget is its own
    assert offline.stats()["streams"] == 1 + 2 + 1


def test_daily_money_budget_prices_with_the_table(relay_with: Callable[..., Relay],
                                                  offline: OfflineProvider) -> None:
    """moonshot-v1-8k's price from helpers/providers/table.py; the answer cut at the ceiling."""
    probe = events(ask(relay_with(max_tokens=5), "10.9.9.9"))[-2][1]
    price = price_of("moonshot-v1-8k")
    assert price is not None
    cost = call_cost(probe, "moonshot-v1-8k").total  # type: ignore[union-attr]
    relay = relay_with(max_tokens=5, daily_cost=cost * 1.5)
    assert ask(relay, "10.0.0.1").status_code == 200
    message = refused(ask(relay, "10.0.0.1"), "relay_budget_limit")
    assert f"{cost * 1.5:g} {price.currency}" in message
    used = asyncio.run(relay.app.state.limiter.used("addr:10.0.0.1", "money"))
    assert used == pytest.approx(cost)
    assert ask(relay, "10.0.0.2").status_code == 200
    assert offline.stats()["streams"] == 1 + 1 + 1


def test_a_money_budget_needs_a_price(offline: OfflineProvider) -> None:
    config = Config("offline", offline.base_url, "no-such-model", FAKE_KEY)
    with pytest.raises(ValueError, match="needs a price"):
        start_relay(config, jupyter=False, name="relay-limits-noprice",
                    limits=Limits(daily_cost=1.0))


def test_the_blog_route_counts_too(relay_with: Callable[..., Relay],
                                   offline: OfflineProvider) -> None:
    relay = relay_with(requests_per_minute=1)
    url = relay.url + "chatbot/llm/chatstream"
    headers = {"X-Forwarded-For": "10.0.0.1"}
    assert httpx.post(url, json={"question": QUESTION}, headers=headers, timeout=30).text
    refused(httpx.post(url, json={"question": QUESTION}, headers=headers, timeout=30),
            "relay_rate_limit")
    assert offline.stats()["streams"] == 1


def test_without_limits_nothing_is_counted(relay_with: Callable[..., Relay],
                                           offline: OfflineProvider) -> None:
    relay = relay_with()
    assert [ask(relay, "10.0.0.1").status_code for _ in range(5)] == [200] * 5
    assert relay.app.state.limiter.store.path is None  # the store never even made its file


def test_a_budget_holds_exactly_across_two_relays_sharing_redis(
        offline: OfflineProvider, tmp_path: Path) -> None:
    """Two relays (as on two machines) share one Redis: together they admit exactly the budget."""
    cost = count_prompt_tokens(ChatRequest(question=QUESTION).to_messages(
        DEFAULT_SYSTEM_PROMPT)) + 5  # each answer is cut at max_tokens=5
    config = Config("offline", offline.base_url, "moonshot-v1-8k", FAKE_KEY)
    limits = Limits(max_tokens=5, daily_tokens=3 * cost + cost // 2)
    with redis_server(tmp_path) as url:
        relays = [start_relay(config, jupyter=False, name=f"relay-limits-redis-{i}",
                              limits=limits, store=url) for i in range(2)]
        try:
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(lambda i: httpx.post(
                    relays[i % 2].url + "api/chat/stream", json={"question": QUESTION},
                    timeout=30), range(8)))
        finally:
            for relay in relays:
                relay.stop()
    assert sorted(r.status_code for r in answers) == [200] * 3 + [429] * 5
    assert offline.stats()["streams"] == 3


class _BrokenCounts(SQLiteStore):
    """A store whose counters fail (a locked file, a Redis that went away) on a chosen call."""

    def __init__(self, broken: str) -> None:
        super().__init__()
        self.broken = broken

    async def hit(self, *args: object, **kwargs: object) -> float | None:
        if self.broken == "hit":
            raise sqlite3.OperationalError("database is locked")
        return await super().hit(*args, **kwargs)

    async def adjust(self, *args: object, **kwargs: object) -> None:
        if self.broken == "adjust":
            raise sqlite3.OperationalError("database is locked")
        await super().adjust(*args, **kwargs)


def test_a_store_failure_in_the_limits_is_the_relays_error(offline: OfflineProvider,
                                                          caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    """Issue 22: a failure inside the relay is the relay's (relay_error), never the provider's
    (upstream_error). Before streaming: a 500 with that type, and the provider never asked;
    settling after the answer ended: the answer is kept whole, the log names the relay."""
    def relay_for(broken: str) -> Any:
        store = _BrokenCounts(broken)
        return create_app(Config("offline", offline.base_url, "moonshot-v1-8k", FAKE_KEY),
                          limits=Limits(requests_per_minute=100, daily_tokens=100_000),
                          store=store), store

    async def ask_app(app: Any) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://127.0.0.1") as c:
            return await c.post("/api/chat/stream", json={"question": QUESTION})

    app, store = relay_for("hit")
    refused = asyncio.run(ask_app(app))
    assert refused.status_code == 500, refused.text
    assert refused.json()["error"]["type"] == "relay_error"
    assert "store failed" in refused.json()["error"]["message"]
    assert offline.stats()["chat_requests"] == 0
    asyncio.run(store.close())

    app, store = relay_for("adjust")
    answered = asyncio.run(ask_app(app))
    events = sse_events(answered.text)
    assert "".join(d["content"] for e, d in events if e == "delta") == compose_reply(
        [{"role": "user", "content": QUESTION}]).text
    assert events[-1][0] == "done"
    assert offline.stats()["chat_requests"] == 1
    assert any("relay failed" in r.getMessage() and "settling" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]
    asyncio.run(store.close())
