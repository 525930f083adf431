"""The page keeps its answer through a dropped connection, and closing the tab stops it.

In headless Chromium: the page talks to the relay through a TCP proxy the test controls
(tests/tcp_cutter.py). The test cuts every connection mid-answer and sends the reconnect to
another relay sharing the store (another worker); the page resumes from its last event id, and
its text is exactly the answer, from one upstream request. Closing the tab sends a stop, so
the upstream request closes long before the 60 s grace period.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import FAKE_KEY, wait_until
from reliability_figures import record
from tcp_cutter import TcpCutter

from helpers.offline import OfflineProvider
from helpers.offline.replies import filler_reply
from helpers.relay import Relay, start_relay
from helpers.settings import Config

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]
WAIT_MS = 30_000


@pytest.fixture
def relays(offline: OfflineProvider, tmp_path: Path) -> Iterator[list[Relay]]:
    config = Config("offline", offline.base_url, "moonshot-v1-8k", FAKE_KEY)
    store = f"sqlite:///{tmp_path / 'relay.sqlite3'}"
    started = [start_relay(config, jupyter=False, name=f"relay-page-resume-{i}", store=store,
                           resume_grace=60) for i in range(2)]
    yield started
    for relay in started:
        relay.stop()


@pytest.fixture
def tab(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    page = context.new_page()
    page.problems = []
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    yield page
    context.close()


def ask(page: Any, url: str, question: str) -> None:
    page.goto(url)
    page.wait_for_selector('body[data-state="idle"]', timeout=WAIT_MS)
    page.fill("#question", question)
    page.click("#send")


def test_the_page_resumes_a_cut_answer_on_another_worker(
        tab: Any, relays: list[Relay], offline: OfflineProvider) -> None:
    first, other = relays
    proxy = TcpCutter(first.port)
    try:
        ask(tab, proxy.url, "[tokens:80][delay:25] hi")
        tab.wait_for_function("() => chatPage.turns()[0].text.length > 20", timeout=WAIT_MS)
        proxy.backend = other.port
        proxy.cut()
        cut = time.perf_counter()
        tab.wait_for_function("() => chatPage.turns()[0].outcome !== null", timeout=WAIT_MS)
        record("page_resume_cut_to_done", time.perf_counter() - cut, tokens=80, delay_ms=25)
        turn = tab.evaluate("() => chatPage.turns()[0]")
    finally:
        proxy.close()
    assert turn["outcome"] == "done" and turn["text"] == filler_reply(80)
    assert proxy.accepted >= 2  # the page really reconnected
    stats = offline.stats()
    assert stats["streams"] == 1 and stats["completed"] == 1 and stats["disconnects"] == 0
    assert tab.problems == []


def test_closing_the_tab_stops_the_upstream_request(
        browser: Any, relays: list[Relay], offline: OfflineProvider) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        ask(page, relays[0].url, "What is a prime number? [hold]")
        offline.wait_for(lambda s: s["held"] == 1, timeout=30)
        page.wait_for_function("() => chatPage.turns()[0].text.length > 0", timeout=WAIT_MS)
        closed = time.perf_counter()
        page.close()
        # The grace period is 60 s: a disconnect within 10 s is the page's stop, not the grace.
        left = wait_until(lambda: offline.stats()["disconnects"] == 1, timeout=10)
        record("page_close_to_provider_disconnect", left - closed)
    finally:
        context.close()
    assert offline.stats()["completed"] == 0


def test_the_stop_button_stops_a_resumable_answer_at_once(
        tab: Any, relays: list[Relay], offline: OfflineProvider) -> None:
    ask(tab, relays[0].url, "What is a prime number? [hold]")
    offline.wait_for(lambda s: s["held"] == 1, timeout=30)
    tab.wait_for_function("() => chatPage.turns()[0].text.length > 0", timeout=WAIT_MS)
    tab.click("#stop")
    wait_until(lambda: offline.stats()["disconnects"] == 1, timeout=10)  # grace is 60 s
    assert tab.evaluate("() => chatPage.turns()[0].outcome") == "stopped"
