"""A tool loop in a real JupyterLab (headless Chromium): the call, its result, then the answer.

The kernel side is tested in tests/test_widget_tools.py (exact texts, order of messages,
Stop); this checks what only a browser can: JupyterLab renders each part, in order on the
page, the call's name, its arguments and its result inside the call's own box.
"""

from __future__ import annotations

import pytest
from jupyter_harness import CLIENT_CELL, words

from helpers.offline import OfflineProvider

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LOOP_CELL = (
    "from helpers import iter_tool_loop, tool, calculate\n"
    "from helpers.tools.calculator import CALCULATOR_SCHEMA\n"
    "calculator = tool(calculate, parameters=CALCULATOR_SCHEMA)\n"
    "question = [{'role': 'user', 'content': '[delay:10] Please calculate \"2*(3+4)^2\"'}]\n"
    "view = show_stream(lambda: iter_tool_loop(client, model='moonshot-v1-8k',\n"
    "                                          tools=[calculator], messages=question))")


def test_a_tool_call_renders_between_the_text_before_it_and_the_answer(
        open_in_lab, offline: OfflineProvider) -> None:
    page = open_in_lab([CLIENT_CELL, LOOP_CELL], height=1200)
    page.locator(".jp-Notebook .jp-Cell .cm-content").first.click()
    page.keyboard.press("Shift+Enter")  # the client
    page.locator(".jp-InputPrompt", has_text="[1]:").wait_for()
    page.keyboard.press("Shift+Enter")  # the tool loop, live
    view = page.locator(".llm-stream-view")
    view.locator(".llm-stream-status", has_text="done").wait_for()
    assert offline.stats()["completed"] == 2  # the call, then the answer from its result
    box = view.locator(".llm-stream-tool")
    assert box.count() == 1
    assert words(box.locator(".llm-stream-tool-name").inner_text()) == "🔧 calculate"
    assert words(box.locator(".llm-stream-tool-arguments").inner_text()) == \
        '{"expression": "2*(3+4)^2"}'
    assert words(box.locator(".llm-stream-tool-result").inner_text()) == "→ 98"
    body = words(view.locator(".llm-stream-body").inner_text())
    before, _, after = (part.strip() for part in body.partition(words(box.inner_text())))
    assert before == "Let me call calculate."  # Moonshot's sentence before the call
    assert after.startswith("Here is what the tools returned") and "98" in after
