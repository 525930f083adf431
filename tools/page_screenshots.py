"""Take the chat page's screenshots for docs/page.md (``make screenshots``).

Offline provider, relay, headless Debian Chromium: a plain answer, a formula (with a table),
a reasoning model's answer with its Thinking pane open, and the phone width (360 px, Chinese).
Deterministic text; only the timings in the status lines differ from run to run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from helpers.offline import OfflineProvider  # noqa: E402
from helpers.relay import start_relay  # noqa: E402
from helpers.settings import Config  # noqa: E402

OUT = ROOT / "docs" / "img"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
#: name -> (model, viewport width, questions)
SHOTS: dict[str, tuple[str, int, list[str]]] = {
    "page-plain": ("moonshot-v1-8k", 900, ["What is a prime number?", "What did I ask?"]),
    "page-formula": ("moonshot-v1-8k", 900, ["What is the Pythagorean theorem?",
                                             "Give me a cheat sheet of derivatives"]),
    "page-thinking": ("kimi-k2.6", 900, ["What is the quadratic formula?"]),
    "page-phone": ("moonshot-v1-8k", 360, ["什么是勾股定理？", "给我一张导数速查表"]),
}


def shoot(browser: Any, url: str, name: str, width: int, questions: list[str]) -> Path:
    """Ask the questions on a fresh page and save a screenshot of the whole page."""
    page = browser.new_page(viewport={"width": width, "height": 640}, device_scale_factor=1)
    page.goto(url)
    page.wait_for_selector('body[data-state="idle"]')
    for question in questions:
        page.fill("#question", question)
        page.press("#question", "Enter")
        page.wait_for_selector('body[data-state="done"]', timeout=20_000)
    for box in page.locator("#transcript .thinking:visible").all():
        box.locator("summary").click()  # open the folded Thinking pane for the picture
    page.evaluate("() => document.activeElement.blur()")
    # The whole conversation in one window (a full-page shot would leave the sticky question
    # box in the middle of the picture).
    height = page.evaluate("() => document.documentElement.scrollHeight")
    page.set_viewport_size({"width": width, "height": height})
    path = OUT / f"{name}.png"
    page.screenshot(path=str(path))
    page.close()
    return path


def main() -> int:
    """Write docs/img/page-*.png."""
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    offline = OfflineProvider(delay_ms=15, name="shots-offline").start()  # a pace
    try:
        with sync_playwright() as pw:
            args = ["--headless=new", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--hide-scrollbars"]
            if hasattr(os, "geteuid") and os.geteuid() == 0:
                args.append("--no-sandbox")
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
            for name, (model, width, questions) in SHOTS.items():
                config = Config("offline", offline.base_url, model, "shots-key")
                with start_relay(config, jupyter=False, name="shots-relay") as relay:
                    print(shoot(browser, relay.url, name, width, questions).relative_to(ROOT))
            browser.close()
    finally:
        offline.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
