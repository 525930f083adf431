"""A reasoning model in a real JupyterLab (headless Chromium): Thinking above the answer, dimmed.

The kernel side is tested in tests/test_widgets.py (exact texts, bytes, headless print); this
checks what only a browser can: JupyterLab renders the accordion, the pane's style applies
(the thinking is dimmed, the answer is not), and the thinking folds away once the answer starts.
"""

from __future__ import annotations

import pytest
from jupyter_harness import CLIENT_CELL, words

from helpers.offline.replies import compose_reply

pytestmark = [pytest.mark.browser, pytest.mark.slow]

QUESTION = "What is the Pythagorean theorem?"
CELLS = [CLIENT_CELL, f"view = show_stream(ask({QUESTION!r}, model='kimi-k2-thinking'))"]


def test_thinking_renders_above_the_answer_dimmed_and_folded(open_in_lab) -> None:
    reply = compose_reply([{"role": "user", "content": QUESTION}], reasoning=True)
    page = open_in_lab(CELLS, height=1200)
    page.locator(".jp-Notebook .jp-Cell .cm-content").first.click()
    page.keyboard.press("Shift+Enter")  # the client
    page.locator(".jp-InputPrompt", has_text="[1]:").wait_for()
    page.keyboard.press("Shift+Enter")  # the view
    view = page.locator(".llm-stream-view")
    view.locator(".llm-stream-status", has_text="done").wait_for()
    box = view.locator(".llm-stream-thinking-box")
    assert box.count() == 1 and "Thinking" in box.inner_text()
    thinking = view.locator(".llm-stream-thinking")
    assert not thinking.is_visible()  # folded once the answer started
    box.get_by_text("Thinking").first.click()  # the learner opens it again
    thinking.wait_for(state="visible")
    assert words(thinking.inner_text()) == words(reply.reasoning)
    opacity = thinking.evaluate("el => getComputedStyle(el).opacity")
    assert float(opacity) < 1  # dimmed
    body = view.locator(".llm-stream-body")
    answer = words(body.inner_text()).replace(words(box.inner_text()), "", 1).strip()
    assert answer.startswith("The Pythagorean theorem says") and "learner asks" not in answer
    first = body.evaluate("el => el.firstElementChild.className")
    assert "llm-stream-thinking-box" in first  # the thinking comes first, above the answer
