"""What an answer cost, on the relay's wire and on the page: the ``cost`` of the usage event.

The figure must be the price table's price (helpers/providers/table.py) times the usage the offline
provider itself reported (its counters), marked as offline counts; no price, no figure.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from helpers.money.cost import call_cost
from helpers.offline import OfflineProvider
from helpers.relay import Relay, start_relay
from helpers.settings import Config

pytestmark = pytest.mark.timeout(120)
WAIT_MS = 10_000
LAST = "#transcript > li:last-child"
PRIME = "What is a prime number?"
OFFLINE_NOTE = "(offline counts × real price)"


def start(offline: OfflineProvider, model: str, name: str) -> Relay:
    return start_relay(Config("offline", offline.base_url, model, "test-key"), read_timeout=10,
                       jupyter=False, name=name)


@pytest.fixture
def relay(offline: OfflineProvider) -> Iterator[Relay]:
    server = start(offline, "moonshot-v1-8k", "relay-page-cost")
    yield server
    server.stop()


@pytest.fixture
def unpriced(offline: OfflineProvider) -> Iterator[Relay]:
    server = start(offline, "deepseek-chat", "relay-page-cost-unpriced")  # no price in the table
    yield server
    server.stop()


def usage_event(relay: Relay) -> dict[str, Any] | None:
    response = httpx.post(relay.url.rstrip("/") + "/api/chat/stream", json={"question": PRIME},
                          headers=relay.headers, timeout=30)
    assert response.status_code == 200, response.text
    found = None
    for block in response.text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if lines.get("event") == "usage":
            found = json.loads(lines["data"])
    return found


def test_the_usage_event_carries_the_cost_of_the_reported_usage(relay: Relay,
                                                                 offline: OfflineProvider):
    data = usage_event(relay)
    reported = offline.stats()["recent"][-1]["usage"]  # what the provider itself sent
    cost = call_cost(reported, "moonshot-v1-8k")
    assert data is not None and cost is not None and cost.total > 0
    assert {k: data[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens")} == \
        {k: reported[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
    assert data["cost"] == {"amount": round(cost.total, 10), "currency": "USD",
                            "text": f"{cost} {OFFLINE_NOTE}", "offline": True}


def test_a_model_without_a_price_gets_no_cost_field(unpriced: Relay, offline: OfflineProvider):
    data = usage_event(unpriced)
    assert data is not None and data["total_tokens"] == \
        offline.stats()["recent"][-1]["usage"]["total_tokens"]
    assert "cost" not in data



def stats_after_asking(page: Any, relay: Relay) -> str:
    page.goto(relay.url)
    page.wait_for_selector('body[data-state="idle"]', timeout=WAIT_MS)
    page.fill("#question", PRIME)
    page.click("#send")
    page.wait_for_selector('body[data-state="done"]', timeout=WAIT_MS)
    return page.text_content(f"{LAST} .stats")


@pytest.mark.browser
def test_the_page_shows_the_cost_of_the_usage_the_provider_reported(
        page: Any, relay: Relay, offline: OfflineProvider) -> None:
    stats = stats_after_asking(page, relay)
    reported = offline.stats()["recent"][-1]["usage"]
    assert offline.stats()["completed"] == 1
    cost = call_cost(reported, "moonshot-v1-8k")
    assert cost is not None
    assert stats.endswith(f"usage {reported['prompt_tokens']} prompt + "
                          f"{reported['completion_tokens']} completion = "
                          f"{reported['total_tokens']} · {cost} {OFFLINE_NOTE}"), stats
    assert page.problems == []


@pytest.mark.browser
def test_the_page_shows_no_cost_when_the_price_is_unknown(
        page: Any, unpriced: Relay, offline: OfflineProvider) -> None:
    stats = stats_after_asking(page, unpriced)
    total = offline.stats()["recent"][-1]["usage"]["total_tokens"]
    assert stats.endswith(f"= {total}"), stats  # the usage, and nothing after it: not "$0"
    assert "$" not in stats and page.problems == []
