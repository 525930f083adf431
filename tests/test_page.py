"""The chat page in headless Chromium: a conversation, rendered math, safety, Stop, errors.

Also the blog-style page (another origin, the raw text route), unchanged from lesson 5.
``chatPage.turns()`` is the page's own record of the conversation (question, raw answer text,
outcome); the DOM is checked for what a reader sees.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import open_tab
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from helpers.money.tokens import count_prompt_tokens, count_tokens
from helpers.offline import OfflineProvider
from helpers.offline.replies import HOSTILE_REPLY, compose_reply, split_pieces
from helpers.relay import DEFAULT_SYSTEM_PROMPT, Relay, start_relay
from helpers.servers import BackgroundServer
from helpers.settings import Config

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]
WAIT_MS = 10_000
LAST = "#transcript > li:last-child"
CHEAT_SHEET = "Give me a cheat sheet of derivatives"
STATS = re.compile(r"done · (\d+) tokens · first token after \d+\.\d\d s · "
                   r"(?:\d+\.\d tokens/s · )?usage (\d+) prompt \+ (\d+) completion = (\d+)"
                   r"(?: · \$\d+\.\d+ \(offline counts × real price\))?")  # tests/test_page_cost.py


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




def open_page(page: Any, relay: Relay) -> None:
    page.goto(relay.url)
    page.wait_for_selector('body[data-state="idle"]', timeout=WAIT_MS)


def send(page: Any, question: str) -> None:
    page.fill("#question", question)
    page.click("#send")


def ask(page: Any, relay: Relay, question: str) -> None:
    open_page(page, relay)
    send(page, question)


def wait_state(page: Any, state: str) -> None:
    page.wait_for_selector(f'body[data-state="{state}"]', timeout=WAIT_MS)


def turns(page: Any) -> list[dict]:
    return page.evaluate("() => chatPage.turns()")


def shown(page: Any, selector: str = ".part-text") -> str:
    return page.text_content(f"{LAST} {selector}").strip()


# -- a conversation --------------------------------------------------------------------------------
def test_page_streams_the_answer_before_the_end(page: Any, relay: Relay,
                                                offline: OfflineProvider) -> None:
    question = "What is a prime number? [hold]"
    ask(page, relay, question)
    expected = answer_to(question)
    # The whole answer is on screen while the provider still holds its last chunk.
    page.wait_for_function(
        "t => document.querySelector('#transcript .part-text').textContent.trim() === t",
        arg=expected, timeout=WAIT_MS)
    assert offline.stats()["held"] == 1
    assert page.get_attribute("body", "data-state") == "streaming"
    assert page.get_attribute(f"{LAST} .parts", "aria-busy") == "true"  # not announced yet
    assert page.is_disabled("#send") and page.is_enabled("#stop")
    assert page.evaluate("() => document.activeElement.id") == "question"
    assert page.input_value("#question") == ""
    offline.release()
    wait_state(page, "done")
    assert turns(page) == [{"question": question, "text": expected, "outcome": "done"}]
    assert page.get_attribute(f"{LAST} .parts", "aria-busy") == "false"
    assert page.text_content("#status") == "Answer complete."
    stats = STATS.fullmatch(page.text_content(f"{LAST} .stats"))
    assert stats is not None, page.text_content(f"{LAST} .stats")
    tokens, prompt, completion, total = map(int, stats.groups())
    # Counted by the offline provider's token rule (helpers/money/tokens.py), not one per piece.
    assert tokens == completion == count_tokens(expected) != len(split_pieces(expected))
    sent = [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT},  # the relay adds it first
            {"role": "user", "content": "What is a prime number?"}]  # markers are not counted
    assert prompt == count_prompt_tokens(sent)
    assert prompt + completion == total
    assert page.is_hidden(f"{LAST} .error")
    assert offline.stats()["completed"] == 1
    assert page.problems == []


def test_page_time_to_first_token_counts_the_wait_for_the_provider(
        page: Any, relay: Relay, offline: OfflineProvider) -> None:
    """The clock starts before fetch: the provider's slow headers are part of the wait shown."""
    ask(page, relay, "What is 1+1? [delay-headers:800]")
    wait_state(page, "done")
    stats = STATS.fullmatch(page.text_content(f"{LAST} .stats"))
    assert stats is not None, page.text_content(f"{LAST} .stats")
    first = re.search(r"first token after (\d+\.\d\d) s", stats.group(0))
    assert float(first.group(1)) >= 0.8
    assert offline.stats()["completed"] == 1 and page.problems == []


def test_a_conversation_stays_on_screen_and_is_sent_as_history(page: Any, relay: Relay,
                                                               offline: OfflineProvider) -> None:
    open_page(page, relay)
    questions = ["What is the Pythagorean theorem?", "What is 1+1?", "What did I ask?"]
    for question in questions:
        send(page, question)
        wait_state(page, "done")
    assert page.locator("#transcript > li").count() == 3
    assert page.locator("#transcript .question-text").all_text_contents() == questions
    assert [t["text"] for t in turns(page)][:2] == [answer_to(q) for q in questions[:2]]
    assert shown(page) == 'Your previous question was: "What is 1+1?"'  # history reached it
    assert page.locator("#transcript .katex").count() > 0  # the first answer is still rendered
    assert offline.stats()["chat_requests"] == 3
    assert page.problems == []


def test_page_shows_chinese_text_intact(page: Any, relay: Relay) -> None:
    question = "什么是勾股定理？"
    ask(page, relay, question)
    wait_state(page, "done")
    assert turns(page)[0]["text"] == answer_to(question)
    assert "勾股定理：在直角三角形中" in shown(page)
    assert page.locator(f"{LAST} .katex-display").count() == 1


# -- rendered as it streams ------------------------------------------------------------------------
def test_formulas_render_as_math(page: Any, relay: Relay) -> None:
    ask(page, relay, "What is the Pythagorean theorem?")
    wait_state(page, "done")
    assert "$$" in turns(page)[0]["text"]  # the model sent LaTeX source
    assert page.locator(f"{LAST} .katex-display").count() == 1
    assert page.locator(f"{LAST} .katex").count() == 4  # one display, three inline
    visible = page.inner_text(f"{LAST} .part-text")
    assert "$" not in visible and "\\sqrt" not in visible
    assert page.problems == []


def test_table_list_and_all_four_math_delimiters_render(page: Any, relay: Relay,
                                                        offline: OfflineProvider) -> None:
    ask(page, relay, CHEAT_SHEET + " [hold]")
    # Rendered while it streams: the table and its formulas are there before the end.
    page.wait_for_function(
        "() => document.querySelector('#transcript td .katex') !== null", timeout=WAIT_MS)
    assert offline.stats()["held"] == 1
    assert page.get_attribute("body", "data-state") == "streaming"
    offline.release()
    wait_state(page, "done")
    table = f"{LAST} .part-text table"
    assert page.locator(f"{table} th").all_text_contents() == ["function", "derivative"]
    assert page.locator(f"{table} tbody tr").count() == 3
    assert page.locator(f"{table} td .katex").count() == 6
    assert page.locator(f"{LAST} .part-text ol > li").count() == 2
    assert page.locator(f"{LAST} .katex-display").count() == 2   # \[…\] and $$…$$
    assert page.locator(f"{LAST} p .katex").count() >= 1         # \(…\) inline
    visible = page.inner_text(f"{LAST} .part-text")
    for source in ("$", "\\(", "\\[", "\\frac", "|---"):
        assert source not in visible, source
    assert page.problems == []


# -- safe ------------------------------------------------------------------------------------------
HOSTILE_DOM = """() => {
  const all = [...document.querySelectorAll('*')];
  const handlers = all.flatMap(e => [...e.attributes].filter(a => /^on/i.test(a.name))
                                                  .map(a => e.tagName + ' ' + a.name));
  const urls = all.flatMap(e => ['href', 'src', 'srcdoc', 'action', 'xlink:href', 'formaction']
      .map(n => e.getAttribute(n)).filter(v => v && /^\\s*(javascript|vbscript|data):/i.test(v)));
  const answer = document.querySelector('#transcript');
  return {handlers, urls, pwned: window.__pwned === undefined ? null : window.__pwned,
          tags: [...answer.querySelectorAll('script, iframe, img, form, object, embed, svg[onload],'
                                            + ' style, input, button:not(.copy):not(.retry)')]
                .map(e => e.tagName)};
}"""


def test_hostile_answers_run_nothing(page: Any, relay: Relay, offline: OfflineProvider) -> None:
    question = "<img src=x onerror=\"window.__pwned='question'\"> hello [hostile]"
    ask(page, relay, question)
    wait_state(page, "done")
    assert turns(page)[0]["text"] == HOSTILE_REPLY  # the attack really arrived
    clean = {"handlers": [], "urls": [], "pwned": None, "tags": []}
    assert page.evaluate(HOSTILE_DOM) == clean
    page.hover(f"{LAST} .part-text")  # a raw <div onmouseover> would fire here
    for link in page.locator(f"{LAST} .part-text a").all():  # the links that are links
        link.click(modifiers=["Control"], timeout=WAIT_MS)  # (a new tab, not followed here)
    assert page.evaluate(HOSTILE_DOM) == clean
    assert page.dialogs == []
    text = shown(page)
    assert "<script>window.__pwned = 'script'</script>" in text  # shown as text
    assert "<iframe srcdoc=" in text
    assert page.text_content(f"{LAST} .question-text") == question
    assert offline.stats()["completed"] == 1
    assert [p for p in page.problems if "Content Security Policy" not in p] == []


def test_the_page_runs_only_its_own_scripts(relay: Relay) -> None:
    policy = httpx.get(relay.url).headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'"  # no inline script, no handler attribute
    assert directives["style-src"] == "'self' 'unsafe-inline'"  # KaTeX's style attributes
    assert directives["default-src"] == "'self'" and directives["object-src"] == "'none'"


def test_every_request_goes_to_the_relay(page: Any, relay: Relay) -> None:
    open_page(page, relay)
    for question in ("What is the Pythagorean theorem?", "hi [hostile]", CHEAT_SHEET):
        send(page, question)
        wait_state(page, "done")
    page.wait_for_load_state("networkidle")
    foreign = [u for u in page.requests if not u.startswith(relay.url)]
    assert foreign == []
    assert sum(u.endswith("api/chat/stream") for u in page.requests) == 3
    assert any(u.endswith(".woff2") for u in page.requests)  # KaTeX's fonts, from the relay
    assert any("/static/vendor/katex/katex.min.js" in u for u in page.requests)


# -- Stop, errors, retry, copy, clear, keyboard ---------------------------------------------------
def test_stop_aborts_the_stream_and_the_upstream_request(page: Any, relay: Relay,
                                                         offline: OfflineProvider) -> None:
    ask(page, relay, "What is a prime number? [hold]")
    page.wait_for_function("() => chatPage.turns()[0].text.length > 0", timeout=WAIT_MS)
    offline.wait_for(lambda s: s["held"] == 1)
    page.click("#stop")
    wait_state(page, "stopped")
    stats = offline.wait_for(lambda s: s["disconnects"] == 1 and s["held"] == 0, timeout=5)
    assert stats["completed"] == 0
    assert stats["recent"][-1]["outcome"] == "disconnected"
    assert page.is_enabled("#send") and page.is_disabled("#stop")
    assert shown(page)  # what arrived stays on screen
    assert page.text_content(f"{LAST} .stats").startswith("stopped · ")
    assert page.is_visible(f"{LAST} .retry")


def test_escape_stops_too(page: Any, relay: Relay, offline: OfflineProvider) -> None:
    ask(page, relay, "What is a prime number? [hold]")
    offline.wait_for(lambda s: s["held"] == 1)
    page.press("#question", "Escape")
    wait_state(page, "stopped")
    offline.wait_for(lambda s: s["disconnects"] == 1, timeout=5)


def test_stop_before_the_answer_begins_stops_upstream(
        page: Any, relay: Relay, offline: OfflineProvider) -> None:
    # The relay answers only once the provider's first piece is there (here: headers held
    # 1.5 s), so Stop can come before the page knows which answer it asked for. The answer
    # must still be stopped, not left running for its resume grace period.
    ask(page, relay, "What is a prime number? [delay-headers:1500][hold]")
    offline.wait_for(lambda s: s["chat_requests"] == 1)
    page.press("#question", "Escape")
    wait_state(page, "stopped")
    assert page.text_content(f"{LAST} .stats").startswith("stopped")
    stats = offline.wait_for(lambda s: s["disconnects"] == 1, timeout=10)
    assert stats["completed"] == 0 and stats["held"] == 0


def test_midstream_error_keeps_the_text_and_says_what_happened(page: Any, relay: Relay) -> None:
    question = "hello [fault:midstream]"
    ask(page, relay, question)
    wait_state(page, "error")
    error = page.text_content(f"{LAST} .error")
    assert "The stream failed midway (simulated) (server_error)" in error
    assert page.text_content("#status") == "Error: " + error
    partial = turns(page)[0]["text"]
    assert partial and answer_to(question).startswith(partial)
    assert shown(page)


def test_error_before_streaming_is_shown_with_its_status(page: Any, relay: Relay) -> None:
    ask(page, relay, "hello [fault:429]")
    wait_state(page, "error")
    assert page.text_content(f"{LAST} .error").startswith("HTTP 429: Rate limit reached")
    assert shown(page) == ""


def test_retry_asks_the_last_question_again(page: Any, relay: Relay,
                                            offline: OfflineProvider) -> None:
    ask(page, relay, "What is 1+1?")
    wait_state(page, "done")
    send(page, "What did I ask?")
    wait_state(page, "done")
    assert page.locator("#transcript .retry:visible").count() == 1  # the last answer only
    page.click(f"{LAST} .retry")
    wait_state(page, "done")
    assert [t["question"] for t in turns(page)] == ["What is 1+1?", "What did I ask?"]
    assert shown(page) == 'Your previous question was: "What is 1+1?"'  # same history
    assert offline.stats()["chat_requests"] == 3


def test_copy_puts_the_answer_source_on_the_clipboard(browser: Any, relay: Relay) -> None:
    page = open_tab(browser, permissions=["clipboard-read", "clipboard-write"])
    try:
        ask(page, relay, CHEAT_SHEET)
        wait_state(page, "done")
        page.click(f"{LAST} .copy")
        page.wait_for_selector(f"{LAST} .copy:text('Copied')", timeout=WAIT_MS)
        assert page.evaluate("() => navigator.clipboard.readText()") == answer_to(CHEAT_SHEET)
    finally:
        page.context.close()


def test_clear_forgets_the_conversation(page: Any, relay: Relay) -> None:
    ask(page, relay, "What is 1+1?")
    wait_state(page, "done")
    page.click("#clear")
    assert page.locator("#transcript > li").count() == 0
    assert page.evaluate("() => document.activeElement.id") == "question"
    send(page, "What did I ask?")
    wait_state(page, "done")
    assert shown(page) == "This is your first question."


def test_enter_sends_and_shift_enter_is_a_new_line(page: Any, relay: Relay,
                                                   offline: OfflineProvider) -> None:
    open_page(page, relay)
    page.fill("#question", "")
    page.type("#question", "line one")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("line two")
    assert page.input_value("#question") == "line one\nline two"
    assert offline.stats()["chat_requests"] == 0
    page.keyboard.press("Enter")
    wait_state(page, "done")
    assert turns(page)[0]["question"] == "line one\nline two"
    assert page.evaluate("() => document.activeElement.id") == "question"
    assert offline.stats()["chat_requests"] == 1


def test_large_text_for_a_projector(page: Any, relay: Relay) -> None:
    open_page(page, relay)
    size = "() => parseFloat(getComputedStyle(document.documentElement).fontSize)"
    before = page.evaluate(size)
    page.click("#large")
    assert page.get_attribute("#large", "aria-pressed") == "true"
    assert page.evaluate(size) > before * 1.3
    page.reload()  # remembered
    page.wait_for_selector('body[data-state="idle"]', timeout=WAIT_MS)
    assert page.get_attribute("#large", "aria-pressed") == "true"


def test_phone_width_has_no_sideways_scrolling(browser: Any, relay: Relay) -> None:
    page = open_tab(browser, viewport={"width": 360, "height": 740})
    try:
        open_page(page, relay)
        for question in (CHEAT_SHEET, "What is the quadratic formula?"):
            send(page, question)
            wait_state(page, "done")
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 360
        assert page.is_visible("#send") and page.is_visible("#question")
        assert page.problems == []
    finally:
        page.context.close()


# -- reasoning models ------------------------------------------------------------------------------
def test_page_shows_reasoning_apart_from_the_answer(page: Any, config: Config,
                                                    offline: OfflineProvider) -> None:
    question = "What is the Pythagorean theorem?"
    reply = compose_reply([{"role": "user", "content": question}], reasoning=True)
    thinking = Config("offline", config.base_url, "deepseek-reasoner", config.api_key)
    with start_relay(thinking, read_timeout=10, jupyter=False, name="relay-reasoning") as relay:
        ask(page, relay, question)
        wait_state(page, "done")
        assert page.is_visible(f"{LAST} .thinking")
        assert page.text_content(f"{LAST} .thinking summary") == "Thinking"
        # Open while the model thinks, folded once the answer starts (click to read it again).
        assert page.evaluate("s => document.querySelector(s).open", f"{LAST} .thinking") is False
        assert shown(page, ".thinking-text") == reply.reasoning
        assert turns(page)[0]["text"] == reply.text  # no thinking mixed in
        # Each change of an `open` attribute in the next turn, as the value it had before.
        page.evaluate("() => { window.__open = []; new MutationObserver(records =>"
                      " records.forEach(r => window.__open.push(r.oldValue)))"
                      ".observe(document.getElementById('transcript'), {attributes: true,"
                      " subtree: true, attributeFilter: ['open'], attributeOldValue: true}); }")
        send(page, "What is 1+1?")
        wait_state(page, "done")
        assert page.evaluate("() => window.__open") == [None, ""]  # opened, then folded
        assert shown(page, ".thinking-text") == compose_reply(
            [{"role": "user", "content": "What is 1+1?"}], reasoning=True).reasoning
    assert offline.stats()["completed"] == 2
    assert page.problems == []


def test_page_keeps_the_reasoning_box_hidden_for_a_model_without_it(page: Any,
                                                                   relay: Relay) -> None:
    ask(page, relay, "What is the Pythagorean theorem?")
    wait_state(page, "done")
    assert page.is_hidden(f"{LAST} .thinking")
    assert shown(page, ".thinking-text") == ""


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
