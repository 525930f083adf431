"""Reliability, family 1, end to end in a browser: awkward characters reach the page intact.

The offline model's fallback answer quotes the question, so a question full of characters that
break naive parsers (U+2028, U+2029, blank lines, CR, 4-byte emoji, text that looks like SSE
fields) comes back inside the answer: provider -> SDK -> relay's decoder -> encoder -> fetch
ReadableStream -> sse.js -> the page. What the page shows must be exactly that answer.
(Own module: Playwright's sync API must not share a module with ``asyncio.run`` tests.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from helpers.offline import OfflineProvider
from helpers.offline.replies import compose_reply
from helpers.relay import Relay, start_relay
from helpers.settings import Config

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]
WAIT_MS = 10_000
QUESTIONS = [
    "Echo a\u2028b\u2029c please",
    "Echo this:\n\ndata: [DONE]\n\nevent: done",
    "Echo 😀 and 中文 and é\r\nand a CR\rhere",
    "Echo : keep-alive \\n literal backslash-n \" quote",
]


@pytest.fixture
def relay(offline: OfflineProvider) -> Iterator[Relay]:
    config = Config("offline", offline.base_url, "moonshot-v1-8k", "test-key")
    server = start_relay(config, read_timeout=10, jupyter=False, name="relay-page-wire")
    yield server
    server.stop()


@pytest.mark.parametrize("question", QUESTIONS, ids=["u2028-u2029", "sse-lookalike",
                                                     "emoji-cjk-crlf", "escapes"])
def test_awkward_characters_reach_the_page_exactly(browser: Any, relay: Relay,
                                                   offline: OfflineProvider,
                                                   question: str) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(relay.url)
        page.wait_for_selector('body[data-state="idle"]', timeout=WAIT_MS)
        page.fill("#question", question)
        page.click("#send")
        page.wait_for_selector('body[data-state="done"]', timeout=WAIT_MS)
        # Browsers normalise a textarea's CR and CRLF to LF: what was sent is the LF form.
        sent = question.replace("\r\n", "\n").replace("\r", "\n").strip()
        assert page.evaluate("() => document.getElementById('question').value") in ("", sent)
        expected = compose_reply([{"role": "user", "content": sent}]).text
        shown = page.evaluate("() => chatPage.turns()[0].text")  # the raw answer text
        assert shown == expected
        assert sent[:80] in shown  # the awkward text really made the round trip
        assert problems == []
        assert offline.stats()["completed"] == 1
    finally:
        context.close()
