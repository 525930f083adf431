"""Reliability, family 8: Debian's nginx in front of the relay streams it unbuffered.

nginx buffers a proxied response by default (``proxy_buffering on``): small SSE events would
wait until a buffer fills or the answer ends. A response header ``X-Accel-Buffering: no``
switches buffering off for that response (nginx's documented behaviour, unless the site sets
``proxy_ignore_headers X-Accel-Buffering``). So the config here is plain and default-ish
(``proxy_http_version 1.1``, buffering left ON): it is the relay's header that must do the job.
A control run with ``proxy_ignore_headers X-Accel-Buffering`` shows the test can fail.

nginx runs as whoever runs the tests (not root on a learner's machine): prefix, pid file,
error log and temp paths live in a temporary folder, ``daemon off; master_process off``, and it
listens on 127.0.0.1 only. Skipped when nginx is missing, a failure under CI=true.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from conftest import FAKE_KEY, need_system_part, settled, stop_process, wait_until
from httpx_sse import connect_sse
from reliability_figures import record

from helpers.offline import OfflineProvider
from helpers.offline.replies import compose_reply, filler_reply
from helpers.relay import Relay, start_relay
from helpers.settings import Config

pytestmark = pytest.mark.timeout(120)
HELD = "What is a prime number? [hold]"
EXPECTED = compose_reply([{"role": "user", "content": HELD}]).text
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)

CONFIG = """
daemon off;
master_process off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections {connections}; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    {site}
}}
"""
#: The site: overridden by a test that brings its own (tests/test_deploy.py: docs/deploy.md's).
SITE = """
    upstream relay {{ {servers} }}
    server {{
        listen 127.0.0.1:{port} {listen_options};
        location / {{
            proxy_pass http://relay;
            proxy_set_header Host $host;  # the relay's Host guard sees the browser's host
            proxy_http_version 1.1;
            proxy_read_timeout 60s;
            {extra}
        }}
    }}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class Nginx:
    """One nginx process in front of ``upstream`` (a port, or several: round robin), on a free
    loopback port; ``connections`` per nginx worker (the load tests need thousands)."""

    def __init__(self, tmp: Path, upstream: int | list[int], extra: str = "",
                 listen_options: str = "", connections: int = 128,
                 site: str = SITE) -> None:
        assert NGINX is not None
        self.tmp = tmp
        for _attempt in range(3):  # the free port may be taken between probe and bind
            self.port = free_port()
            ports = upstream if isinstance(upstream, list) else [upstream]
            servers = " ".join(f"server 127.0.0.1:{p};" for p in ports)
            (tmp / "nginx.conf").write_text(CONFIG.format(
                tmp=tmp, connections=connections, site=site.format(
                    port=self.port, servers=servers, extra=extra,
                    listen_options=listen_options)))
            self.proc = subprocess.Popen(
                [NGINX, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-e",
                 str(tmp / "error.log")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:  # it listens, or exits at once (the port was taken after all)
                wait_until(lambda: self.proc.poll() is not None or accepts(self.port),
                           every=0.02)
            except AssertionError:
                self.stop()
                raise AssertionError("nginx neither listened nor exited: " + self.log()) from None
            if self.proc.poll() is None and accepts(self.port):
                return
            self.stop()
        raise AssertionError("nginx did not start: " + self.log())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def log(self) -> str:
        path = self.tmp / "error.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        stop_process(self.proc)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def relay(offline: OfflineProvider) -> Iterator[Relay]:
    config = Config("offline", offline.base_url, "moonshot-v1-8k", FAKE_KEY)
    server = start_relay(config, read_timeout=30, jupyter=False, name="relay-reliability-nginx")
    yield server
    server.stop()


@pytest.fixture
def nginx_for(tmp_path: Path) -> Iterator[Callable[..., Nginx]]:
    need_system_part(NGINX is not None, "nginx (apt-get install nginx)")
    started: list[Nginx] = []

    def start(relay: Relay, extra: str = "", listen_options: str = "") -> Nginx:
        folder = tmp_path / f"nginx-{len(started)}"
        folder.mkdir()
        started.append(Nginx(folder, relay.port, extra, listen_options))
        return started[-1]

    yield start
    for server in started:
        server.stop()
    assert all(s.proc.returncode is not None for s in started)


def test_the_relay_sends_the_headers_that_switch_proxy_buffering_off(relay: Relay) -> None:
    with httpx.stream("POST", relay.url + "api/chat/stream", timeout=30,
                      json={"question": "What is 1+1?"}) as sse:
        sse.read()
    with httpx.stream("POST", relay.url + "chatbot/llm/chatstream", timeout=30,
                      json={"question": "What is 1+1?"}) as raw:
        raw.read()
    for response in (sse, raw):
        assert response.headers["x-accel-buffering"] == "no"
        # sse-starlette sends "no-store" on the SSE route (stricter than "no-cache"; either
        # keeps proxies and browsers from caching), the raw route "no-cache".
        assert response.headers["cache-control"] in ("no-cache", "no-store")


@pytest.mark.parametrize("path", ["api/chat/stream", "chatbot/llm/chatstream"])
def test_the_stream_arrives_through_nginx_before_the_answer_ends(
        nginx_for: Callable[..., Nginx], relay: Relay, offline: OfflineProvider,
        path: str) -> None:
    proxy = nginx_for(relay)
    assert httpx.get(proxy.url + "healthz", timeout=10).json()["ok"] is True
    started = time.perf_counter()
    with httpx.Client(timeout=30) as client, client.stream(
            "POST", proxy.url + path, json={"question": HELD},
            headers={"accept": "text/event-stream"}) as response:
        assert response.status_code == 200
        chunks = response.iter_bytes()
        first = next(chunks)
        record("nginx_first_bytes", time.perf_counter() - started, where=path)
        # The provider still holds its final chunk: these bytes came through while streaming.
        stats = offline.wait_for(lambda s: s["held"] == 1, timeout=10)
        assert stats["completed"] == 0
        assert first.startswith(b"event: delta\ndata: ") if path.startswith("api") else first
        offline.release()
        body = first + b"".join(chunks)
    if path.startswith("api"):
        events = [json.loads(ln[6:]) for ln in body.decode().splitlines()
                  if ln.startswith("data: ")]
        assert "".join(e.get("content", "") for e in events[:-2]) == EXPECTED
        assert events[-1] == {"finish_reason": "stop"}
    else:
        assert body.decode() == EXPECTED
    assert offline.wait_for(lambda s: s["completed"] == 1)["open_streams"] == 0


def test_every_event_arrives_through_nginx_as_it_is_made(
        nginx_for: Callable[..., Nginx], relay: Relay, offline: OfflineProvider) -> None:
    """Event by event: the reader never falls far behind what the provider has written.

    A proxy that buffered the stream would deliver it in one lump at the end: the lag (chunks
    written minus deltas read) would reach the whole answer. Here it stays around 0-1; the
    bound asserted is half the answer, so a busy machine cannot make it flaky.
    """
    proxy = nginx_for(relay)
    question = "[tokens:200][delay:10] hi"
    lags: list[int] = []
    with httpx.Client(timeout=30) as client, connect_sse(
            client, "POST", proxy.url + "api/chat/stream", json={"question": question}) as src:
        text = ""
        for event in src.iter_sse():
            if event.event == "delta":
                text += json.loads(event.data)["content"]
                lags.append(offline.stats()["chunks_sent"] - 1 - len(lags) - 1)
    record("nginx_reader_lag_chunks_median", sorted(lags)[len(lags) // 2], unit="chunks",
           delay_ms=10)
    record("nginx_reader_lag_chunks_max", max(lags), unit="chunks", delay_ms=10)
    assert len(lags) == 200 and text == filler_reply(200)
    assert max(lags) < 100, lags


@pytest.mark.parametrize("header", ["honoured", "ignored"],
                         ids=["relay-header-honoured", "control-header-ignored"])
def test_backpressure_survives_nginx_only_thanks_to_the_header(
        nginx_for: Callable[..., Nginx], relay: Relay, offline: OfflineProvider,
        header: str) -> None:
    """A client that never reads, through nginx, while a 100 000-token answer streams.

    With buffering on (the control: nginx told to ignore the header), nginx reads the whole
    answer into its buffers and temp files, so the provider produces all of it (and bills it)
    for a reader that takes nothing. With the relay's ``X-Accel-Buffering: no`` honoured, nginx
    passes the backpressure on and the provider is held back. Socket send buffers are pinned
    to 64 KiB (relay: on its listening socket; nginx: ``listen ... sndbuf=``) so Linux's
    autotuned 4 MiB buffers cannot hide the difference.
    """
    relay.server._socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    extra = "proxy_ignore_headers X-Accel-Buffering;" if header == "ignored" else ""
    proxy = nginx_for(relay, extra=extra, listen_options="sndbuf=64k")
    body = b'{"question": "[tokens:100000] hi"}'
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        slow.connect(("127.0.0.1", proxy.port))
        slow.sendall(b"POST /api/chat/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        offline.wait_for(lambda s: s["chunks_sent"] > 0, timeout=10)
        sent = settled(lambda: offline.stats()["chunks_sent"], timeout=60.0)
        planned = offline.stats()["recent"][-1]["planned"]
        record("nginx_slow_client_chunks_sent", sent, unit="chunks", planned=planned,
               header=header)
        if header == "honoured":
            assert offline.stats()["open_streams"] == 1 and sent < planned // 2, sent
        else:  # the whole answer was produced for a client that read nothing
            assert offline.wait_for(lambda s: s["completed"] == 1)["chunks_sent"] >= planned
        assert httpx.get(proxy.url + "healthz", timeout=10).json()["ok"] is True
    finally:
        slow.close()
    offline.wait_for(lambda s: s["open_streams"] == 0, timeout=20)


def test_a_client_leaving_nginx_closes_the_upstream_request(
        nginx_for: Callable[..., Nginx], relay: Relay, offline: OfflineProvider) -> None:
    proxy = nginx_for(relay)
    with httpx.Client(timeout=30) as client, client.stream(
            "POST", proxy.url + "api/chat/stream", json={"question": HELD}) as response:
        chunks = response.iter_bytes()
        assert next(chunks)
        offline.wait_for(lambda s: s["held"] == 1, timeout=10)
        left = time.perf_counter()
        response.close()
        wait_until(lambda: offline.stats()["disconnects"] == 1)
        record("client_close_to_provider_disconnect", time.perf_counter() - left,
               where="nginx")
    assert offline.wait_for(lambda s: s["open_streams"] == 0)["completed"] == 0
    assert "[crit]" not in proxy.log() and "[emerg]" not in proxy.log()
