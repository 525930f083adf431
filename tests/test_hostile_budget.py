"""Hostile use of the daily budget through the tool loop (issue 23, finding 4).

Eight parallel calculator questions with ``max_tokens`` 20 on a 1,500-token budget all
succeeded and used 3,816 tokens: each reserved its messages and answer (66 tokens) but neither
the tool definitions (billed as prompt) nor the loop's second request. Now every round is
reserved before it is sent (helpers/relay/limits.py, helpers/relay/toolstream.py): the day's use
never passes the budget, and a refusal is the relay's 429 before streaming or an ``error``
event of the same type between rounds. The offline provider's counters prove a refused round
never reached it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from conftest import FAKE_KEY, sse_events

from helpers.offline import OfflineProvider
from helpers.relay import Relay, start_relay
from helpers.relay.limits import Limits
from helpers.relay.toolstream import MATH_TOOLS
from helpers.settings import Config

pytestmark = pytest.mark.timeout(120)
CLIENT = "10.0.0.23"


@pytest.fixture
def tool_relay(offline: OfflineProvider) -> Iterator[Callable[..., Relay]]:
    started: list[Relay] = []

    def start(daily_tokens: int) -> Relay:
        config = Config("offline", offline.base_url, "moonshot-v1-8k", FAKE_KEY)
        started.append(start_relay(config, jupyter=False, name=f"relay-budget-{len(started)}",
                                   tools=MATH_TOOLS, limits=Limits(daily_tokens=daily_tokens),
                                   trusted_proxies=["127.0.0.1"]))
        return started[-1]

    yield start
    for relay in started:
        relay.stop()


def ask(relay: Relay, n: int) -> httpx.Response:
    return httpx.post(relay.url + "api/chat/stream",
                      json={"question": f"Please calculate {n}*4", "max_tokens": 20},
                      headers={"X-Forwarded-For": CLIENT}, timeout=60)


def events(response: httpx.Response) -> list[tuple[str, dict]]:
    return sse_events(response.text)


def used(relay: Relay) -> float:
    return asyncio.run(relay.app.state.limiter.used(f"addr:{CLIENT}"))


def reported(response: httpx.Response) -> int:
    """The tokens an answer's usage event reports (0 for a 429)."""
    if response.status_code != 200:
        return 0
    return sum(data["total_tokens"] for name, data in events(response) if name == "usage")


def test_parallel_tool_questions_never_overspend_the_daily_budget(tool_relay) -> None:
    relay = tool_relay(1500)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda n: ask(relay, n), range(3, 11)))
    refusals = 0
    for response in answers:
        if response.status_code == 429:  # refused before streaming
            assert response.json()["error"]["type"] == "relay_budget_limit"
            refusals += 1
            continue
        assert response.status_code == 200, response.text
        name, data = events(response)[-1]
        if name == "error":  # refused between rounds
            assert data["type"] == "relay_budget_limit" and data["status"] == 429
            assert "a limit of the relay, not of the provider" in data["message"]
            refusals += 1
        else:
            assert name == "done"
    assert refusals > 0  # 8 x 477 tokens cannot fit in 1,500
    assert used(relay) <= 1500
    assert sum(reported(r) for r in answers) == used(relay)  # settled to the real usage


def test_the_tool_definitions_are_reserved_before_the_first_round(
        tool_relay, offline: OfflineProvider) -> None:
    relay = tool_relay(100)  # messages + max_tokens fit (66), with the tools they do not
    response = ask(relay, 3)
    assert response.status_code == 429, response.text
    assert response.json()["error"]["type"] == "relay_budget_limit"
    assert offline.stats()["chat_requests"] == 0
    assert used(relay) == 0


def test_a_round_the_budget_cannot_pay_for_is_not_sent(
        tool_relay, offline: OfflineProvider) -> None:
    relay = tool_relay(300)  # round 1 (about 220 reserved, 208 used) fits; round 2 does not
    response = ask(relay, 3)
    assert response.status_code == 200
    got = events(response)
    names = [name for name, _ in got]
    assert "tool_result" in names and "done" not in names
    assert got[-1][0] == "error" and got[-1][1]["type"] == "relay_budget_limit"
    assert offline.stats()["chat_requests"] == 1  # the second request never left the relay
    assert used(relay) == reported(response) <= 300
