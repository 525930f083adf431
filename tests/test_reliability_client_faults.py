"""Reliability, family 3: a client that leaves stops the upstream request; a client that does
not read cannot make the relay buffer without bound or stop answering others.

Already covered elsewhere (and not repeated): a Python client leaving through the relay, both
routes (tests/test_relay.py, incl. the "bytes already waiting" regression), the page's Stop
button (tests/test_page.py), the view's Stop (tests/test_widgets.py), the SDK closing early
(tests/test_offline.py). Here: how fast the provider hears of it (repeated and recorded for
docs/reliability.md), a browser tab closed, a fetch aborted and a page navigated away
mid-stream, and a client that never reads while a 100 000-token answer streams.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import psutil
import pytest
from conftest import FAKE_KEY, settled, wait_until
from reliability_figures import record

from helpers.offline import OfflineProvider
from helpers.relay import Relay, start_relay
from helpers.settings import Config

pytestmark = pytest.mark.timeout(180)
ROOT = Path(__file__).resolve().parents[1]
HELD = "What is a prime number? [hold]"


@pytest.fixture
def relay(offline: OfflineProvider) -> Iterator[Relay]:
    config = Config("offline", offline.base_url, "moonshot-v1-8k", FAKE_KEY)
    server = start_relay(config, read_timeout=10, jupyter=False, name="relay-reliability-client")
    yield server
    server.stop()


@pytest.mark.parametrize("path", ["api/chat/stream", "chatbot/llm/chatstream"])
def test_python_client_closing_mid_stream_is_seen_upstream_every_time(
        relay: Relay, offline: OfflineProvider, path: str) -> None:
    rounds = 20
    with httpx.Client(base_url=relay.url, timeout=10) as client:
        for n in range(1, rounds + 1):
            with client.stream("POST", path, json={"question": HELD}) as response:
                chunks = response.iter_bytes()
                assert next(chunks)
                offline.wait_for(lambda s: s["held"] == 1)
                closed = time.perf_counter()
                response.close()
                seen = wait_until(lambda n=n: offline.stats()["disconnects"] == n, every=0.001)
            record("client_close_to_provider_disconnect", seen - closed, where=f"relay/{path}")
            offline.wait_for(lambda s: s["open_streams"] == 0 and s["held"] == 0)
    stats = offline.stats()
    assert (stats["streams"], stats["disconnects"], stats["completed"]) == (rounds, rounds, 0)
    assert all(r["outcome"] == "disconnected" and r["sent"] < r["planned"]
               for r in stats["recent"])


def test_sdk_closing_mid_stream_is_seen_by_the_provider_every_time(
        offline: OfflineProvider) -> None:
    rounds = 20
    with openai.OpenAI(base_url=offline.base_url, api_key=FAKE_KEY, max_retries=0) as client:
        for n in range(1, rounds + 1):
            stream = client.chat.completions.create(
                model="moonshot-v1-8k", stream=True,
                messages=[{"role": "user", "content": HELD}])
            assert next(iter(stream)).choices[0].delta.role == "assistant"
            offline.wait_for(lambda s: s["held"] == 1)
            closed = time.perf_counter()
            stream.close()
            seen = wait_until(lambda n=n: offline.stats()["disconnects"] == n, every=0.001)
            record("client_close_to_provider_disconnect", seen - closed, where="sdk")
            offline.wait_for(lambda s: s["held"] == 0)
    assert offline.stats()["completed"] == 0


# -- the browser --------------------------------------------------------------------------------
FETCH_AND_READ = """([url, question]) => {
  window.received = "";
  window.controller = new AbortController();
  fetch(url, {method: "POST", signal: window.controller.signal,
              headers: {"Content-Type": "application/json", "Accept": "text/event-stream"},
              body: JSON.stringify({question})})
    .then(async (response) => {
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        window.received += decoder.decode(value, {stream: true});
      }
    })
    .catch((err) => { window.failure = err.name; });
}"""


@pytest.mark.browser
@pytest.mark.parametrize("how", ["abort-fetch", "close-tab", "navigate-away"])
def test_browser_leaving_mid_stream_closes_the_upstream_request(
        browser: Any, relay: Relay, offline: OfflineProvider, how: str) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(relay.url)
        page.evaluate(FETCH_AND_READ, [relay.url + "api/chat/stream", HELD])
        page.wait_for_function("() => window.received.includes('event: delta')",
                               timeout=10_000)
        offline.wait_for(lambda s: s["held"] == 1)
        left = time.perf_counter()
        if how == "abort-fetch":
            page.evaluate("() => window.controller.abort()")
        elif how == "close-tab":
            page.close()
        else:
            page.goto("about:blank")
        seen = wait_until(lambda: offline.stats()["disconnects"] == 1, every=0.001)
        record("client_close_to_provider_disconnect", seen - left, where=f"browser/{how}")
        if how == "abort-fetch":
            assert page.evaluate("() => window.failure") == "AbortError"
    finally:
        context.close()
    stats = offline.wait_for(lambda s: s["open_streams"] == 0 and s["held"] == 0)
    assert stats["completed"] == 0 and stats["recent"][-1]["outcome"] == "disconnected"


# -- a client that never reads ------------------------------------------------------------------
def queues(local_port: int, remote_port: int) -> tuple[int, int]:
    """(bytes waiting to be sent, bytes received but not read) of a loopback TCP socket."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = (int(a.split(":")[1], 16) for a in fields[1:3])
        if (local, remote) == (local_port, remote_port):
            tx, rx = (int(q, 16) for q in fields[4].split(":"))
            return tx, rx
    raise AssertionError(f"no socket {local_port} -> {remote_port}")


def slow_request(port: int, body: bytes) -> socket.socket:
    """Connect with a small receive window, send a POST, and never read."""
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", port))
    slow.sendall(b"POST /api/chat/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: application/json\r\n"
                 b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    return slow


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc/net/tcp")
def test_a_client_that_never_reads_stops_the_relay_reading_upstream(
        relay: Relay, offline: OfflineProvider) -> None:
    """Backpressure: the relay stops reading the provider; its memory stays flat.

    The relay's send buffer is pinned to 64 KiB (accepted sockets inherit it from the
    listening one): with Linux's autotuning (up to net.ipv4.tcp_wmem's 4 MiB) the kernel alone
    could swallow the whole 4 MB of SSE, and the test would prove nothing about the relay.
    """
    listener = relay.server._socket
    assert listener is not None
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    me = psutil.Process()
    rss_before = me.memory_info().rss
    slow = slow_request(relay.port, b'{"question": "[tokens:100000] hi"}')
    try:
        offline.wait_for(lambda s: s["streams"] == 1 and s["chunks_sent"] > 0, timeout=10)
        sent = settled(lambda: offline.stats()["chunks_sent"])  # the whole chain is full
        upstream = [c for c in me.net_connections("tcp") if c.raddr
                    and c.raddr.port == offline.server.port and c.laddr.port != relay.port]
        unread = max(queues(c.laddr.port, offline.server.port)[1] for c in upstream)
        planned = offline.stats()["recent"][-1]["planned"]
        rss_growth = me.memory_info().rss - rss_before
        record("slow_client_relay_upstream_unread", unread / 2**20, unit="MiB")
        record("slow_client_chunks_sent_when_stalled", sent, unit="chunks", planned=planned,
               where="relay")
        record("slow_client_rss_growth", rss_growth / 2**20, unit="MiB")
        # The relay stopped reading: provider bytes wait unread in its socket, and the
        # provider itself is held back with most of the answer (15 MB) still to write.
        assert unread > 0
        assert sent < planned // 2, (sent, planned)
        assert offline.stats()["open_streams"] == 1
        assert rss_growth < 64 * 2**20, rss_growth
        # Meanwhile the relay answers others, at once.
        started = time.perf_counter()
        assert httpx.get(relay.url + "healthz", timeout=5).json()["ok"] is True
        record("healthz_while_slow_client", time.perf_counter() - started)
        other = httpx.post(relay.url + "api/chat/stream", json={"question": "What is 1+1?"},
                           timeout=10)
        assert other.status_code == 200 and "event: done" in other.text
    finally:
        slow.close()
    offline.wait_for(lambda s: s["open_streams"] == 0, timeout=10)


def test_a_client_that_never_reads_holds_the_provider_back(offline: OfflineProvider) -> None:
    """The offline provider's own writes wait for the reader: chunks_sent stops growing."""
    request = {"model": "moonshot-v1-8k", "stream": True,
               "messages": [{"role": "user", "content": "[tokens:100000] hi"}]}
    body = json.dumps(request).encode()
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        slow.connect(("127.0.0.1", offline.server.port))
        slow.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Authorization: Bearer k\r\nContent-Type: application/json\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        offline.wait_for(lambda s: s["chunks_sent"] > 0, timeout=10)
        sent = settled(lambda: offline.stats()["chunks_sent"])
        planned = offline.stats()["recent"][-1]["planned"]
        record("slow_client_chunks_sent_when_stalled", sent, unit="chunks", planned=planned,
               where="offline")
        assert offline.stats()["open_streams"] == 1
        assert sent < planned // 2, (sent, planned)  # ~15 MB answer, at most 4 MB in buffers
        assert httpx.get(offline.server.url + "/healthz", timeout=5).json() == {"ok": True}
    finally:
        slow.close()
    stats = offline.wait_for(lambda s: s["disconnects"] == 1 and s["open_streams"] == 0,
                             timeout=10)
    assert stats["recent"][-1]["outcome"] == "disconnected"
