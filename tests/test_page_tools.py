"""The chat page shows a tool call the relay ran as its own part (name, arguments, result),
before the answer that uses it; in headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from helpers.offline import OfflineProvider
from helpers.relay import Relay, start_relay
from helpers.relay.toolstream import MATH_TOOLS
from helpers.settings import Config

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]
WAIT_MS = 10_000


@pytest.fixture
def relay(offline: OfflineProvider) -> Iterator[Relay]:
    config = Config("offline", offline.base_url, "moonshot-v1-8k", "test-key")
    server = start_relay(config, read_timeout=10, jupyter=False, name="relay-page-tool-tests",
                         tools=MATH_TOOLS)
    yield server
    server.stop()



def test_page_shows_the_tool_call_and_its_result_before_the_answer(page: Any, relay: Relay,
                                                                   offline: OfflineProvider):
    page.goto(relay.url)
    page.wait_for_selector('body[data-state="idle"]', timeout=WAIT_MS)
    page.fill("#question", 'Please calculate "2*(3+4)^2"')
    page.click("#send")
    page.wait_for_selector('body[data-state="done"]', timeout=WAIT_MS)
    parts = page.eval_on_selector_all(
        "#transcript > li:last-child .parts > .part",
        "els => els.map(e => [e.className, e.textContent.trim(), e.getAttribute('data-state')])")
    kinds = [cls.split()[1] for cls, _, _ in parts]
    assert kinds == ["part-text", "part-tool", "part-text"], parts
    assert parts[0][1] == "Let me call calculate."
    assert parts[1][1] == 'Tool calculate {"expression": "2*(3+4)^2"}→ 98'
    assert parts[1][2] == "done"
    assert parts[2][1] == "Here is what the tools returned: calculate → 98."
    assert page.get_attribute("#transcript > li:last-child .part-tool", "aria-label") == \
        "Tool call: calculate"
    assert page.problems == []
    assert offline.stats()["chat_requests"] == 2
