"""Shared fixtures: the offline provider, a fake key that must never leak, system-part checks."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import EventSource

from helpers.offline import OfflineProvider
from helpers.servers import stop_all

#: A recognisable fake key: tests scan outputs, pages and logs for it.
FAKE_KEY = "sk-test-DO-NOT-LEAK-0123456789abcdef"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
#: How long a JupyterLab test waits for anything in the page (generous: liveness, not speed).
LAB_DEADLINE_MS = 60_000
#: Flags headless Chromium needs here: no sandbox as root, no background networking on a
#: closed network (otherwise it stalls on connections the machine refuses).
CHROMIUM_ARGS = [
    "--headless=new", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions",
]


def need_system_part(available: bool, what: str) -> None:
    """Skip with a visible reason on a learner's machine; fail under CI=true."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI but missing (.ci/run should install it)")
    pytest.skip(f"{what} is not installed on this machine")


def wait_until(condition: Callable[[], bool], *, timeout: float = 10.0,
               every: float = 0.005) -> float:
    """Wait until ``condition()`` is true, checking ``every`` seconds; return when (perf_counter).

    The one polling loop of the tests: the deadline is generous (liveness, not speed), and the
    returned time lets a test record how long something took (tests/reliability_figures.py).
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)
    return time.perf_counter()


def stop_process(proc: subprocess.Popen, *, grace: float = 10.0) -> None:
    """Stop a server the test started: SIGTERM, ``grace`` seconds to exit cleanly, then kill."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def settled(read: Callable[[], int], *, quiet: float = 1.0, timeout: float = 30.0) -> int:
    """Wait until ``read()`` has not changed for ``quiet`` seconds; return its value."""
    deadline = time.monotonic() + timeout
    value, since = read(), time.monotonic()
    while time.monotonic() - since < quiet:
        if time.monotonic() > deadline:
            raise AssertionError(f"still changing after {timeout} s (now {value})")
        time.sleep(0.05)
        now = read()
        if now != value:
            value, since = now, time.monotonic()
    return value


@pytest.fixture(autouse=True)
def _force_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """`make test` is offline whatever a developer's .env holds."""
    monkeypatch.setenv("LLM_PROVIDER", "offline")
    for var in ("MOONSHOT_API_KEY", "DASHSCOPE_API_KEY", "DEEPSEEK_API_KEY", "OPENAI_API_KEY",
                "OPENAI_BASE_URL", "LLM_MODEL", "LLM_BASE_URL",
                # run from a hub's terminal, these would switch the relay's token on for every
                # test relay (helpers/relay/access.py); tests that want a hub set them themselves
                "JUPYTERHUB_USER", "JUPYTERHUB_API_TOKEN", "RELAY_TOKEN"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def offline_server() -> Iterator[OfflineProvider]:
    """One offline provider for the session, zero delay."""
    provider = OfflineProvider(delay_ms=0, name="offline-tests").start()
    yield provider
    provider.stop()


@pytest.fixture
def offline(offline_server: OfflineProvider) -> Iterator[OfflineProvider]:
    """The session's offline provider with fresh counters, zero delay, gate open."""
    offline_server.reset_stats()
    offline_server.delay_ms = 0
    offline_server.api_key = None
    offline_server.release()
    yield offline_server
    offline_server.release()


@pytest.fixture(scope="session", autouse=True)
def _stop_servers() -> Iterator[None]:
    yield
    stop_all()


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """Path to Debian's chromium, or skip (fail under CI)."""
    path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    need_system_part(bool(path), "Debian chromium (apt-get install chromium)")
    return str(path)


@pytest.fixture
def open_in_lab(browser: Any, tmp_path: Path, offline: OfflineProvider) -> Iterator[
        Callable[..., Any]]:
    """Return ``open_(cells, height=)``: the cells as a notebook in a real JupyterLab, open in
    Chromium, its kernel idle; the page's default timeout is ``LAB_DEADLINE_MS``.

    The kernel reaches this process's offline provider through ``TEST_OFFLINE_URL``
    (``jupyter_harness.CLIENT_CELL`` makes its client), so a test reads the provider's counters.
    """
    from jupyter_harness import jupyter_server, write_notebook

    with ExitStack() as stack:
        def open_(cells: list[str], *, height: int = 1600) -> Any:
            write_notebook(tmp_path / "lab.ipynb", cells)
            lab = stack.enter_context(
                jupyter_server(tmp_path, env={"TEST_OFFLINE_URL": offline.base_url}))
            context = browser.new_context(viewport={"width": 1280, "height": height})
            stack.callback(context.close)
            page = context.new_page()
            page.set_default_timeout(LAB_DEADLINE_MS)
            page.goto(lab.lab_url("lab.ipynb"))
            page.locator(".jp-Notebook .jp-Cell").first.wait_for()
            # A cell run before the kernel is connected is silently skipped: wait for "Idle".
            page.locator(".jp-StatusBar-Widget", has_text=re.compile(r"\| Idle")).first.wait_for()
            return page

        yield open_


def open_tab(browser: Any, **options: Any) -> Any:
    """A new tab in its own context that records what a page test asserts on: ``problems``
    (console errors, uncaught exceptions), ``requests`` (every URL asked for) and ``dialogs``
    (alert/confirm a hostile answer might open, dismissed)."""
    context = browser.new_context(**options)
    tab = context.new_page()
    tab.problems, tab.requests, tab.dialogs = [], [], []
    tab.on("console", lambda m: m.type == "error" and tab.problems.append(m.text))
    tab.on("pageerror", lambda e: tab.problems.append(str(e)))
    tab.on("request", lambda r: tab.requests.append(r.url))
    tab.on("dialog", lambda d: (tab.dialogs.append(d.message), d.dismiss()))
    return tab


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh tab (:func:`open_tab`), closed after the test."""
    tab = open_tab(browser)
    yield tab
    tab.context.close()


@pytest.fixture(scope="module")
def browser(chromium_executable: str):
    """A headless Chromium driven by Playwright, shared by one test module.

    Module scope on purpose: while Playwright's sync API is active, the main thread looks like
    it runs an asyncio loop, so ``asyncio.run`` in later test modules would fail.
    """
    try:
        from playwright import sync_api
    except ImportError:
        need_system_part(False, "Playwright (the test extra: pip install -e '.[test]')")
    with sync_api.sync_playwright() as pw:
        args = list(CHROMIUM_ARGS)
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to sandbox as root
        instance = pw.chromium.launch(executable_path=chromium_executable, args=args,
                                      headless=True)
        yield instance
        instance.close()


#: Fixtures that start Chromium: a test using one must carry the ``browser`` mark, so that
#: ``-m "not browser"`` (make test-fast) leaves it out and the mark's rules (skip here, fail
#: under CI=true) are visible where the test is.
_BROWSER_FIXTURES = frozenset({"browser", "page", "chromium_executable"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked = [item.nodeid for item in items
                if _BROWSER_FIXTURES & set(getattr(item, "fixturenames", ()))
                and item.get_closest_marker("browser") is None]
    if unmarked:
        raise pytest.UsageError("these tests start Chromium without the browser mark: "
                                + ", ".join(unmarked[:10]))


#: A held function goes on by itself after this (liveness, not speed).
HOLD_DEADLINE = 60.0


class Hold:
    """Holds a function at its start until released, and records the order of events (the
    hostile-input tests: /healthz answers while heavy work is provably still running)."""

    def __init__(self) -> None:
        self.entered, self.released = threading.Event(), threading.Event()
        self.events: list[str] = []

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def held(*args: Any, **kwargs: Any) -> Any:
            self.events.append("held")
            self.entered.set()
            if not self.released.wait(HOLD_DEADLINE):
                self.events.append("never released")
            try:
                return fn(*args, **kwargs)
            finally:
                self.events.append("finished")
        return held

    def healthz_during(self, heavy: Callable[[], Any], health_url: str,
                       probe_timeout: float = 15.0) -> Any:
        """Start ``heavy``; once it is held, ask ``health_url``; release; return heavy's answer.
        A probe timeout means the event loop is stuck behind the held work."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(heavy)
            try:
                assert self.entered.wait(60), "the heavy work never started"
                health = httpx.get(health_url, timeout=probe_timeout)
                self.events.append(f"healthz {health.status_code}")
            finally:
                self.released.set()
            answer = future.result(120)
        assert self.events == ["held", "healthz 200", "finished"]
        return answer


def sse_events(text: str) -> list[tuple[str, dict]]:
    """Parse an SSE body into (event, JSON data) pairs with httpx-sse's public EventSource."""
    response = httpx.Response(200, headers={"content-type": "text/event-stream"},
                              content=text.encode())
    return [(event.event, json.loads(event.data)) for event in EventSource(response).iter_sse()]
