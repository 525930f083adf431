"""The chat page in headless Chromium: streaming, Stop, errors, and a blog-style page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from helpers.offline import OfflineProvider
from helpers.relay import Relay, start_relay
from helpers.replies import compose_reply, split_pieces
from helpers.servers import BackgroundServer
from helpers.settings import Config

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]
WAIT_MS = 10_000


def answer_to(question: str) -> str:
    return compose_reply([{"role": "user", "content": question}]).text


@pytest.fixture
def config(offline: OfflineProvider) -> Config:
    return Config("offline", offline.base_url, "moonshot-v1-8k", "test-key")


@pytest.fixture
def relay(config: Config) -> Iterator[Relay]:
    server = start_relay(config, read_timeout=10, jupyter=False, name="relay-page-tests")
    yield server
    server.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    tab = context.new_page()
    tab.problems = []  # console errors and uncaught exceptions, asserted empty by tests
    tab.on("console", lambda m: m.type == "error" and tab.problems.append(m.text))
    tab.on("pageerror", lambda e: tab.problems.append(str(e)))
    yield tab
    context.close()


def ask(page: Any, relay: Relay, question: str) -> None:
    page.goto(relay.url)
    page.wait_for_selector('body[data-state="idle"]', timeout=WAIT_MS)
    page.fill("#question", question)
    page.click("#send")


def wait_state(page: Any, state: str) -> None:
    page.wait_for_selector(f'body[data-state="{state}"]', timeout=WAIT_MS)


def test_page_streams_the_answer_before_the_end(page: Any, relay: Relay,
                                                offline: OfflineProvider) -> None:
    question = "What is a prime number? [hold]"
    ask(page, relay, question)
    expected = answer_to(question)
    # The whole answer text is on screen while the provider still holds its last chunk.
    page.wait_for_function("t => document.getElementById('answer').textContent === t",
                           arg=expected, timeout=WAIT_MS)
    assert offline.stats()["held"] == 1
    assert page.get_attribute("body", "data-state") == "streaming"
    assert page.is_disabled("#send") and page.is_enabled("#stop")
    offline.release()
    wait_state(page, "done")
    assert page.text_content("#answer") == expected
    usage = re.fullmatch(r"tokens: (\d+) prompt \+ (\d+) completion = (\d+)",
                         page.text_content("#usage"))
    assert usage is not None
    prompt, completion, total = map(int, usage.groups())
    assert completion == len(split_pieces(expected)) and prompt + completion == total
    assert page.is_hidden("#error")
    assert offline.stats()["completed"] == 1
    assert page.problems == []


def test_page_sends_history_with_the_next_question(page: Any, relay: Relay) -> None:
    ask(page, relay, "What is 1+1?")
    wait_state(page, "done")
    page.fill("#question", "What did I ask?")
    page.click("#send")
    page.wait_for_function(
        "() => document.getElementById('answer').textContent.startsWith('Your previous')",
        timeout=WAIT_MS)
    wait_state(page, "done")
    assert page.text_content("#answer") == 'Your previous question was: "What is 1+1?"'


def test_page_shows_chinese_text_intact(page: Any, relay: Relay) -> None:
    question = "什么是勾股定理？"
    ask(page, relay, question)
    wait_state(page, "done")
    assert page.text_content("#answer") == answer_to(question)


def test_stop_aborts_the_stream_and_the_upstream_request(page: Any, relay: Relay,
                                                         offline: OfflineProvider) -> None:
    ask(page, relay, "What is a prime number? [hold]")
    page.wait_for_function("() => document.getElementById('answer').textContent.length > 0",
                           timeout=WAIT_MS)
    offline.wait_for(lambda s: s["held"] == 1)
    page.click("#stop")
    wait_state(page, "stopped")
    stats = offline.wait_for(lambda s: s["disconnects"] == 1 and s["held"] == 0, timeout=5)
    assert stats["completed"] == 0
    assert stats["recent"][-1]["outcome"] == "disconnected"
    assert page.is_enabled("#send") and page.is_disabled("#stop")
    assert page.text_content("#answer")  # what arrived stays on screen


def test_midstream_error_is_shown_after_the_text(page: Any, relay: Relay) -> None:
    question = "hello [fault:midstream]"
    ask(page, relay, question)
    wait_state(page, "error")
    assert "The stream failed midway (simulated) (server_error)" in page.text_content("#error")
    partial = page.text_content("#answer")
    assert partial and answer_to(question).startswith(partial)


def test_error_before_streaming_is_shown_with_its_status(page: Any, relay: Relay) -> None:
    ask(page, relay, "hello [fault:429]")
    wait_state(page, "error")
    assert page.text_content("#error").startswith("HTTP 429: Rate limit reached")
    assert page.text_content("#answer") == ""


# -- a page written the blog's way, served from another origin -----------------------------------
BLOG_STYLE_PAGE = """<!doctype html>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<textarea id="out" rows="8" cols="60"></textarea>
<p id="state">idle</p>
<script>
// The original post's front-end approach, in our own words: POST, then append every
// decoded read to a textarea. No framing: whatever bytes arrive are the answer.
async function run(relay, question) {
  const out = document.getElementById("out");
  const state = document.getElementById("state");
  try {
    const response = await fetch(relay + "chatbot/llm/chatstream", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ question }),
    });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      out.value += decoder.decode(value, { stream: true });
    }
    state.textContent = "finished " + response.status;
  } catch (err) {
    state.textContent = "failed: " + err.name;
  }
}
</script>
"""


@pytest.fixture
def blog_origin() -> Iterator[str]:
    """A second server (another origin, like the blog's dev server) serving the page."""
    async def home(request: Any) -> HTMLResponse:
        return HTMLResponse(BLOG_STYLE_PAGE)

    server = BackgroundServer(Starlette(routes=[Route("/", home)]), name="blog-page")
    server.start()
    yield server.url
    server.stop()


@pytest.mark.parametrize("question", ["What is the quadratic formula?", "什么是导数？"])
def test_blog_style_page_works_once_its_origin_is_allowed(page: Any, config: Config,
                                                          blog_origin: str,
                                                          question: str) -> None:
    with start_relay(config, allow_origins=[blog_origin], jupyter=False,
                     name="relay-blog") as relay:
        page.goto(blog_origin + "/")
        page.evaluate("([r, q]) => run(r, q)", [relay.url, question])
        assert page.text_content("#state") == "finished 200"
        assert page.input_value("#out") == answer_to(question)
    assert page.problems == []


def test_blog_style_page_is_refused_from_an_origin_not_allowed(page: Any, relay: Relay,
                                                               blog_origin: str,
                                                               offline: OfflineProvider) -> None:
    page.goto(blog_origin + "/")
    page.evaluate("([r, q]) => run(r, q)", [relay.url, "What is 1+1?"])
    assert page.text_content("#state") == "failed: TypeError"  # CORS: the browser refuses
    assert page.input_value("#out") == ""
    assert offline.stats()["chat_requests"] == 0


def test_page_shows_reasoning_apart_from_the_answer(page: Any, config: Config,
                                                    offline: OfflineProvider) -> None:
    question = "What is the Pythagorean theorem?"
    reply = compose_reply([{"role": "user", "content": question}], reasoning=True)
    thinking = Config("offline", config.base_url, "deepseek-reasoner", config.api_key)
    with start_relay(thinking, read_timeout=10, jupyter=False, name="relay-reasoning") as relay:
        ask(page, relay, question)
        wait_state(page, "done")
        assert page.is_visible("#reasoning-box")
        assert page.text_content("#reasoning-box summary") == "Thinking"
        # Open while the model thinks, folded once the answer starts (click to read it again).
        assert page.evaluate("() => document.getElementById('reasoning-box').open") is False
        assert page.text_content("#reasoning") == reply.reasoning
        assert page.text_content("#answer") == reply.text  # no thinking mixed in
        # The next answer starts with the box hidden again, until reasoning arrives.
        page.evaluate("() => { window.__hiddenAtStart = null; new MutationObserver((_, o) => {"
                      " if (document.body.dataset.state === 'waiting') {"
                      " window.__hiddenAtStart = document.getElementById('reasoning-box')"
                      ".hidden; o.disconnect(); } }).observe(document.body, {attributes: true});"
                      " }")
        # Each change of the `open` attribute, as the value it had before (null: closed).
        page.evaluate("() => { window.__open = []; new MutationObserver(records =>"
                      " records.forEach(r => window.__open.push(r.oldValue)))"
                      ".observe(document.getElementById('reasoning-box'), {attributes: true,"
                      " attributeFilter: ['open'], attributeOldValue: true}); }")
        page.fill("#question", "What is 1+1?")
        page.click("#send")
        wait_state(page, "done")
        assert page.evaluate("() => window.__hiddenAtStart") is True
        assert page.evaluate("() => window.__open") == [None, ""]  # opened, then folded
        assert page.text_content("#reasoning") == compose_reply(
            [{"role": "user", "content": "What is 1+1?"}], reasoning=True).reasoning
    assert offline.stats()["completed"] == 2
    assert page.problems == []


def test_page_keeps_the_reasoning_box_hidden_for_a_model_without_it(page: Any,
                                                                   relay: Relay) -> None:
    ask(page, relay, "What is the Pythagorean theorem?")
    wait_state(page, "done")
    assert page.is_hidden("#reasoning-box")
    assert page.text_content("#reasoning") == ""
