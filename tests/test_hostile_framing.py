"""Hostile use of the chat page: framing it from another site (issue 23, finding 11).

A page on another localhost port framed the relay at 0.01 opacity, and one click sent a question
(clickjacking): the page had neither ``frame-ancestors`` nor ``X-Frame-Options``. Now its
Content-Security-Policy says ``frame-ancestors 'self'`` plus the origins allowed to frame it:
``create_app(allow_frame_origins=...)`` / ``--allow-frame-origin``, and, for a relay started in a
notebook's kernel, the Jupyter server that runs the kernel (lesson 5 frames the page with
``IFrame(relay.page_url)`` from JupyterLab on another port). No ``X-Frame-Options``: its
SAMEORIGIN would hide the page from that notebook frame, and frame-ancestors overrides it.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from conftest import FAKE_KEY, open_tab

from helpers.offline import OfflineProvider
from helpers.relay import create_app, start_relay
from helpers.relay.guards import jupyter_frame_origins
from helpers.settings import Config

pytestmark = pytest.mark.timeout(180)
JUPYTER = "http://127.0.0.1:8888"


def page_headers(**options: object) -> httpx.Headers:
    app = create_app(Config("offline", "http://127.0.0.1:9/v1", "moonshot-v1-8k", FAKE_KEY),
                     **options)

    async def get() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://127.0.0.1:4020") as client:
            return await client.get("/")

    import asyncio
    response = asyncio.run(get())
    assert response.status_code == 200
    return response.headers


def ancestors(headers: httpx.Headers) -> list[str]:
    found = re.search(r"frame-ancestors ([^;]*)", headers["content-security-policy"])
    assert found, headers["content-security-policy"]
    return found.group(1).split()


def test_the_page_may_be_framed_by_itself_only_by_default() -> None:
    headers = page_headers()
    assert ancestors(headers) == ["'self'"]
    assert "x-frame-options" not in headers  # frame-ancestors replaces it (module docstring)


def test_a_configured_origin_may_frame_the_page() -> None:
    assert ancestors(page_headers(allow_frame_origins=[JUPYTER + "/"])) == ["'self'", JUPYTER]


@pytest.mark.parametrize("origin", ["127.0.0.1:8888", "javascript:alert(1)",
                                    "http://a.test; script-src *", "http://a.test/path"])
def test_a_frame_origin_that_is_not_an_origin_is_refused(origin: str) -> None:
    with pytest.raises(ValueError, match="frame origin"):
        create_app(Config("offline", "http://127.0.0.1:9/v1", "m", FAKE_KEY),
                   allow_frame_origins=[origin])


def test_the_kernels_own_jupyter_server_is_found(tmp_path: Path) -> None:
    (tmp_path / "jpserver-4242.json").write_text(json.dumps(
        {"pid": 4242, "url": "http://127.0.0.1:8890/", "token": "not-read"}))
    (tmp_path / "jpserver-99.json").write_text(json.dumps(
        {"pid": 99, "url": "http://127.0.0.1:9999/"}))  # another server: not this kernel's
    found = jupyter_frame_origins({"JPY_PARENT_PID": "4242"}, tmp_path)
    assert found == ["http://localhost:8890", "http://127.0.0.1:8890"]
    assert jupyter_frame_origins({}, tmp_path) == []  # not in a kernel
    assert jupyter_frame_origins({"JPY_PARENT_PID": "7"}, tmp_path) == []  # no such server
    assert jupyter_frame_origins({"JPY_PARENT_PID": "4242",  # a hub's proxy: same origin
                                  "JUPYTERHUB_SERVICE_PREFIX": "/user/a/"}, tmp_path) == []


# Chromium: a page on another 127.0.0.1 port frames the relay.

class _Framer(BaseHTTPRequestHandler):
    """``GET /?src=URL``: a page that frames URL, as the clickjacking page did."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        src = parse_qs(urlsplit(self.path).query).get("src", [""])[0]
        body = (f'<!doctype html><title>framer</title><iframe id="victim" src="{src}" '
                'width="800" height="500" style="opacity:0.01"></iframe>').encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def framer() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Framer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.mark.browser
def test_another_port_cannot_frame_the_page(browser, framer: str,
                                            offline: OfflineProvider) -> None:
    config = Config("offline", offline.base_url, "moonshot-v1-8k", FAKE_KEY)
    with start_relay(config, jupyter=False, name="relay-framed") as relay:
        tab = open_tab(browser)
        try:
            with tab.expect_console_message(lambda m: "frame-ancestors" in m.text):
                tab.goto(f"{framer}/?src={relay.url}")
            frame = tab.frame_locator("#victim")
            assert frame.locator("#question").count() == 0  # the chat page did not render
            assert offline.stats()["chat_requests"] == 0
        finally:
            tab.context.close()


@pytest.mark.browser
def test_an_allowed_origin_frames_the_page_and_asks(browser, framer: str,
                                                    offline: OfflineProvider) -> None:
    config = Config("offline", offline.base_url, "moonshot-v1-8k", FAKE_KEY)
    with start_relay(config, jupyter=False, name="relay-framed-ok",
                     allow_frame_origins=[framer]) as relay:
        tab = open_tab(browser)
        try:
            tab.goto(f"{framer}/?src={relay.url}")
            frame = tab.frame_locator("#victim")
            frame.locator("#question").fill("What is 1+1?")
            frame.locator("#send").click()
            frame.locator("#transcript .part-text").first.wait_for()
            assert not [p for p in tab.problems if "frame-ancestors" in p]
        finally:
            tab.context.close()


# JupyterLab: lesson 5's frame, from a real Jupyter server on another port.

LAB_CELLS = [
    "from IPython.display import IFrame\nfrom helpers.relay import start_relay\n"
    "relay = start_relay()\nprint('relay up:', relay.running)",
    "IFrame(relay.page_url, width='100%', height=430)",
]


@pytest.mark.browser
@pytest.mark.slow
def test_a_relay_started_in_a_notebook_shows_in_its_frame(open_in_lab) -> None:
    page = open_in_lab(LAB_CELLS)
    problems: list[str] = []
    page.on("console", lambda m: "frame-ancestors" in m.text and problems.append(m.text))
    page.locator(".jp-Notebook .jp-Cell .cm-content").first.click()
    page.keyboard.press("Shift+Enter")
    page.get_by_text("relay up: True").wait_for()
    page.keyboard.press("Shift+Enter")
    frame = page.frame_locator(".jp-OutputArea iframe")
    frame.locator("#question").fill("What is a prime number?")
    frame.locator("#send").click()
    frame.locator("#transcript .part-text", has_text=re.compile("prime", re.I)).first.wait_for()
    assert problems == []
