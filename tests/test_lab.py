"""The live view in a real JupyterLab, driven by headless Chromium: it grows, renders, stops.

The offline provider runs in this test process (fixture ``offline``); the kernel reaches it
through ``TEST_OFFLINE_URL``, so the test reads the provider's counters directly. ``[hold]``
keeps the answer's last chunk back until :meth:`OfflineProvider.release`, which makes
"the text grew *before* the answer was complete" provable without any timing.
"""

from __future__ import annotations

import re
import time

import pytest
from conftest import LAB_DEADLINE_MS
from jupyter_harness import CLIENT_CELL, words

from helpers.offline import OfflineProvider
from helpers.offline.replies import filler_reply

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CELLS = [
    CLIENT_CELL,
    "growing = show_stream(ask('[hold][tokens:300][delay:20]'))",
    "print('another cell ran while the answer was streaming')",
    "math = show_stream(ask('What is the Pythagorean theorem?'))",
    "long = show_stream(ask('[tokens:3000][delay:20]'))",
]


def run_next_cell(page) -> None:
    page.keyboard.press("Shift+Enter")


def test_the_view_grows_live_renders_math_and_stops_upstream(open_in_lab,
                                                             offline: OfflineProvider):
    page = open_in_lab(CELLS)
    page.locator(".jp-Notebook .jp-Cell .cm-content").first.click()
    run_next_cell(page)  # setup
    page.locator(".jp-InputPrompt", has_text="[1]:").wait_for()
    run_next_cell(page)  # the growing answer (its last chunk is held back)
    view = page.locator(".llm-stream-view").nth(0)
    body = view.locator(".llm-stream-body")

    # 1. The text grows over several samples while the provider has not finished.
    samples: list[int] = []
    deadline = time.monotonic() + LAB_DEADLINE_MS / 1000
    while offline.stats()["held"] == 0 and time.monotonic() < deadline:
        length = len(words(body.inner_text())) if body.count() else 0
        if length and (not samples or length > samples[-1]):
            samples.append(length)
            assert offline.stats()["completed"] == 0
    assert len(samples) >= 3, f"the text should grow in steps, saw lengths {samples}"
    assert offline.stats()["completed"] == 0

    # 2. The kernel is free while the answer streams: another cell runs.
    run_next_cell(page)
    page.get_by_text("another cell ran while the answer was streaming").wait_for()
    assert offline.stats()["completed"] == 0 and "streaming" in view.inner_text()

    # 3. Released, the answer completes and the page shows exactly the provider's answer.
    offline.release()
    view.locator(".llm-stream-status", has_text="done").wait_for()
    assert words(body.inner_text()) == words(filler_reply(300))
    assert re.search(r"done · 300 tokens · first token after [\d.]+ s", view.inner_text())

    # 4. Markdown with LaTeX is rendered by JupyterLab's own renderer (MathJax).
    run_next_cell(page)
    math = page.locator(".llm-stream-view").nth(1)
    math.locator(".llm-stream-status", has_text="done").wait_for()
    math.locator(".llm-stream-body mjx-container").first.wait_for()
    assert "Pythagorean theorem" in math.inner_text() and "$$" not in math.inner_text()

    # 5. Stop: the stream ends early and the provider sees the connection closed.
    before = offline.stats()["disconnects"]
    run_next_cell(page)
    long = page.locator(".llm-stream-view").nth(2)
    page.wait_for_function(
        "el => el.innerText.split(/\\s+/).length > 30",
        arg=long.locator(".llm-stream-body").element_handle())
    long.locator(".llm-stream-stop").click()
    stats = offline.wait_for(lambda s: s["disconnects"] > before, timeout=10)
    record = stats["recent"][-1]
    assert record["outcome"] == "disconnected" and record["sent"] < record["planned"]
    long.locator(".llm-stream-status", has_text="stopped").wait_for()
    shown = len(words(long.locator(".llm-stream-body").inner_text()).split())
    assert 30 < shown < 3000
