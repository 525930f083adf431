"""A reasoning model in a real JupyterLab (headless Chromium): Thinking above the answer, dimmed.

The kernel side is tested in tests/test_widgets.py (exact texts, bytes, headless print); this
checks what only a browser can: JupyterLab renders the accordion, the pane's style applies
(the thinking is dimmed, the answer is not), and the thinking folds away once the answer starts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from jupyter_harness import JupyterServer, jupyter_server

from helpers.offline import OfflineProvider
from helpers.replies import compose_reply

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DEADLINE_MS = 60_000
QUESTION = "What is the Pythagorean theorem?"
CELL = ("import os, openai\nfrom helpers import show_stream\n"
        "client = openai.OpenAI(base_url=os.environ['TEST_OFFLINE_URL'], api_key='lab-test',\n"
        "                       max_retries=0)\n"
        "view = show_stream(lambda: client.chat.completions.create(\n"
        f"    model='kimi-k2-thinking', stream=True,\n"
        f"    messages=[{{'role': 'user', 'content': {QUESTION!r}}}]))")


def words(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def lab(tmp_path: Path, offline: OfflineProvider) -> Iterator[JupyterServer]:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(CELL)]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, tmp_path / "thinking.ipynb")
    with jupyter_server(tmp_path, env={"TEST_OFFLINE_URL": offline.base_url}) as server:
        yield server


@pytest.fixture
def page(browser, lab: JupyterServer):
    context = browser.new_context(viewport={"width": 1280, "height": 1200})
    page = context.new_page()
    page.set_default_timeout(DEADLINE_MS)
    page.goto(lab.lab_url("thinking.ipynb"))
    page.locator(".jp-Notebook .jp-Cell").first.wait_for()
    page.locator(".jp-StatusBar-Widget", has_text=re.compile(r"\| Idle")).first.wait_for()
    yield page
    context.close()


def test_thinking_renders_above_the_answer_dimmed_and_folded(page) -> None:
    reply = compose_reply([{"role": "user", "content": QUESTION}], reasoning=True)
    page.locator(".jp-Notebook .jp-Cell .cm-content").first.click()
    page.keyboard.press("Shift+Enter")
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
