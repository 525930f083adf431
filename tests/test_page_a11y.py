"""The chat page's accessibility: axe-core (npm) in Chromium, at desktop and phone widths.

axe runs on a page that shows what a class sees: a formula, a table, a reasoning model's
Thinking pane, a failed answer. It is injected as an init script (the page's CSP allows only
its own scripts, and must stay that way), from node_modules: a test tool, not shipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import need_system_part

from helpers.offline import OfflineProvider
from helpers.relay import Relay, start_relay
from helpers.settings import Config

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]
WAIT_MS = 10_000
AXE = Path(__file__).resolve().parents[1] / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture
def relay(offline: OfflineProvider) -> Iterator[Relay]:
    config = Config("offline", offline.base_url, "kimi-k2.6", "test-key")
    server = start_relay(config, read_timeout=10, jupyter=False, name="relay-a11y")
    yield server
    server.stop()


def serious_violations(page: Any) -> list[str]:
    """Run axe on the whole page; return its serious and critical findings, readable."""
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    assert len(result["passes"]) > 10  # axe really checked the page
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("width", [1280, 360], ids=["desktop", "phone"])
def test_axe_finds_no_serious_violations(browser: Any, relay: Relay, offline: OfflineProvider,
                                         width: int) -> None:
    need_system_part(AXE.exists(), "axe-core in node_modules (npm ci)")
    context = browser.new_context(viewport={"width": width, "height": 800})
    try:
        page = context.new_page()
        page.add_init_script(path=str(AXE))
        page.goto(relay.url)
        page.wait_for_selector('body[data-state="idle"]', timeout=WAIT_MS)
        assert serious_violations(page) == []  # the empty page
        for question in ("What is the Pythagorean theorem?", "Give me a cheat sheet",
                         "hello [fault:midstream]"):
            page.fill("#question", question)
            page.press("#question", "Enter")
            page.wait_for_function("() => ['done', 'error'].includes(document.body.dataset.state)",
                                   timeout=WAIT_MS)
        assert page.locator("#transcript .thinking").count() == 3
        assert page.locator("#transcript table").count() == 1
        assert page.locator("#transcript .error:visible").count() == 1
        assert serious_violations(page) == []
        page.click("#large")
        assert serious_violations(page) == []
        assert offline.stats()["chat_requests"] == 3
    finally:
        context.close()


def test_every_control_has_a_name_and_is_reachable_by_keyboard(browser: Any, relay: Relay) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(relay.url)
        page.wait_for_selector('body[data-state="idle"]', timeout=WAIT_MS)
        page.fill("#question", "What is 1+1?")
        page.press("#question", "Enter")
        page.wait_for_selector('body[data-state="done"]', timeout=WAIT_MS)
        names = page.evaluate("""() => [...document.querySelectorAll(
            'button, textarea, summary, a[href]')].filter(e => e.offsetParent !== null)
            .map(e => [e.tagName, e.getAttribute('aria-label')
                       || (e.labels && e.labels[0] && e.labels[0].textContent)
                       || e.textContent.trim()])""")
        assert names and all(name for _, name in names), names
        # Tab through the page from the top: every visible control takes the focus.
        page.evaluate("() => document.activeElement.blur()")
        reached = set()
        for _ in range(len(names) + 4):
            page.keyboard.press("Tab")
            reached.add(page.evaluate("() => { const e = document.activeElement;"
                                      " return e.id || e.className || e.tagName; }"))
        for control in ("question", "send", "clear", "large", "copy", "retry"):
            assert control in reached, (control, reached)
    finally:
        context.close()
