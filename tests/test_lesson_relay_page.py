"""Lesson 4's own minimal relay and page, taken from the notebook, in headless Chromium.

The cells that define the relay (FastAPI route), the page's reader (``READER_JS``) and the page
(``PAGE``) are read from the committed notebook and executed as they are, so the code a learner
copies is the code tested: the page's answer must grow piece by piece and end as the provider's.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from helpers.offline import OfflineProvider
from helpers.offline.replies import compose_reply
from helpers.servers import BackgroundServer
from helpers.settings import OFFLINE_KEY, Config

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]
LESSON = Path(__file__).resolve().parents[1] / "notebooks" / "04_relay_from_scratch.ipynb"
QUESTION = "What is the Pythagorean theorem?"
MARKERS = ("from helpers import BackgroundServer", "app = FastAPI()", "READER_JS = ", "PAGE = ")


def lesson_cells() -> list[str]:
    """Return the lesson's setup, relay, reader and page cells, in notebook order."""
    cells = ["".join(c["source"]) for c in json.loads(LESSON.read_text())["cells"]
             if c["cell_type"] == "code"]
    found = [next(s for s in cells if marker in s) for marker in MARKERS]
    assert len(set(found)) == len(MARKERS), "each marker names its own cell"
    return found


@pytest.fixture
def minimal_relay(offline: OfflineProvider):
    """The notebook's relay, in front of the test's offline provider (slowed down to watch)."""
    from openai import AsyncOpenAI

    offline.delay_ms = 15
    setup, relay, reader, page = lesson_cells()
    namespace: dict = {}
    exec(compile(setup, "lesson4-setup", "exec"), namespace)
    namespace["config"] = Config("offline", offline.base_url, "moonshot-v1-8k", OFFLINE_KEY)
    namespace["aclient"] = AsyncOpenAI(base_url=offline.base_url, api_key=OFFLINE_KEY)
    for name, source in (("relay", relay), ("reader", reader), ("page", page)):
        exec(compile(source, f"lesson4-{name}", "exec"), namespace)
    with BackgroundServer(namespace["app"], name="lesson4-minimal-relay-test") as server:
        yield server


def test_the_lessons_page_shows_the_answer_growing(browser, minimal_relay, offline):
    expected = compose_reply([{"role": "user", "content": QUESTION}]).text
    tab = browser.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(str(error)))
    tab.goto(minimal_relay.url + "/")
    tab.fill("#question", QUESTION)
    tab.click("button")
    seen: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = tab.text_content("#answer") or ""
        if not seen or text != seen[-1]:
            seen.append(text)
        if text == expected:
            break
        time.sleep(0.01)
    assert seen[-1] == expected, f"the page shows {seen[-1][:80]!r}"
    growing = [t for t in seen if t]
    assert len(growing) >= 3, f"the answer appeared in {len(growing)} steps, not growing"
    assert all(expected.startswith(t) for t in growing), "every step is a prefix of the answer"
    assert offline.wait_for(lambda stats: stats["completed"] == 1)["completed"] == 1
    assert problems == []
    tab.close()
