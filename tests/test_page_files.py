"""The chat page attaches a file: the shipped worksheet PDF goes through the relay to the
provider's Files API, and the answer uses its text; in headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers.offline import OfflineProvider
from helpers.relay import Relay, start_relay
from helpers.settings import Config
from tools.make_worksheet import LINES, OUT

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]
WAIT_MS = 10_000


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[OfflineProvider]:
    with OfflineProvider(delay_ms=0, files_dir=tmp_path, name="offline-page-files") as p:
        yield p


@pytest.fixture
def relay(provider: OfflineProvider) -> Iterator[Relay]:
    config = Config("offline", provider.base_url, "moonshot-v1-8k", "test-key")
    server = start_relay(config, read_timeout=10, jupyter=False, name="relay-page-files")
    yield server
    server.stop()



def test_attach_the_worksheet_and_get_an_answer_from_its_text(page: Any, relay: Relay,
                                                              provider: OfflineProvider):
    page.goto(relay.url)
    page.wait_for_selector('body[data-state="idle"]', timeout=WAIT_MS)
    page.set_input_files("#attach", str(OUT))
    page.wait_for_selector("#attached:text('attached: worksheet.pdf')", timeout=WAIT_MS)
    assert [f["filename"] for f in provider.files.list()] == ["worksheet.pdf"]
    page.fill("#question", "How long is the hypotenuse in question 1 of the worksheet?")
    page.click("#send")
    page.wait_for_selector('body[data-state="done"]', timeout=WAIT_MS)
    answer = page.text_content("#transcript > li:last-child .parts").strip()
    assert answer == f'The file says: "{LINES[1]}"'
    assert page.problems == []


def test_a_refused_file_says_why_and_the_chat_still_works(page: Any, relay: Relay,
                                                          provider: OfflineProvider, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    page.goto(relay.url)
    page.wait_for_selector('body[data-state="idle"]', timeout=WAIT_MS)
    page.set_input_files("#attach", str(empty))
    page.wait_for_selector("#attached.error", timeout=WAIT_MS)
    assert page.text_content("#attached") == "not attached: 'empty.txt' is empty"
    page.click("#send")  # the default question, no file
    page.wait_for_selector('body[data-state="done"]', timeout=WAIT_MS)
    assert "Pythagorean" in page.text_content("#transcript > li:last-child .parts")
    assert list(provider.files.list()) == []
    assert [p for p in page.problems if "400" not in p] == []  # the refused upload's 400 only
