"""helpers/bounded_http.py: servers parse HTTP with httptools, and a request's head over 16 KiB
is refused with uvicorn's 400, as h11 refuses it, however it arrives; a head under the bound
and a large body are served."""

from __future__ import annotations

import socket
import time

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from helpers.bounded_http import MAX_HEAD_BYTES, BoundedHttpToolsProtocol, http_protocol
from helpers.servers import BackgroundServer


async def echo(request: Request) -> PlainTextResponse:
    body = await request.body()
    return PlainTextResponse(f"{len(request.headers.get('x-pad', ''))} {len(body)}")


@pytest.fixture(scope="module")
def server():
    app = Starlette(routes=[Route("/echo", echo, methods=["GET", "POST"])])
    running = BackgroundServer(app, name="bounded-http-test").start()
    yield running
    running.stop()


def exchange(port: int, pieces: list[bytes], pause: float = 0.0, sent: list | None = None
             ) -> bytes:
    """Send ``pieces`` (pausing between them, so each is its own read); return the reply.
    ``sent`` gets the number of pieces the server took before it closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        count = 0
        try:
            for piece in pieces:
                sock.sendall(piece)
                count += 1
                time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused while still sending: the reply is already there
        if sent is not None:
            sent.append(count)
        reply = b""
        try:
            while chunk := sock.recv(65536):
                reply += chunk
        except ConnectionResetError:
            pass  # closed with our unread bytes in its buffer: the reply came before the reset
    return reply


def head(pad: int, method: str = "GET", length: int | None = None) -> bytes:
    extra = f"Content-Length: {length}\r\n" if length is not None else ""
    return (f"{method} /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{extra}"
            f"X-Pad: {'p' * pad}\r\n\r\n").encode()


def test_servers_use_the_bounded_httptools_protocol(server):
    assert http_protocol().func is BoundedHttpToolsProtocol  # httptools: a runtime dependency
    assert server._server.config.http.func is BoundedHttpToolsProtocol


@pytest.mark.parametrize("pause", [0.0, 0.02], ids=["one-write", "trickled"])
def test_a_head_over_the_bound_is_a_400_and_under_it_is_served(server, pause):
    sent: list[int] = []

    def send(pad: int) -> bytes:
        raw = head(pad)
        pieces = [raw] if not pause else [raw[i:i + 4096] for i in range(0, len(raw), 4096)]
        return exchange(server.port, pieces, pause, sent)

    under = send(MAX_HEAD_BYTES - 200)
    assert under.startswith(b"HTTP/1.1 200") and under.endswith(f"{MAX_HEAD_BYTES - 200} 0"
                                                                .encode())
    over = send(MAX_HEAD_BYTES + 10)
    assert over.startswith(b"HTTP/1.1 400") and over.endswith(b"Invalid HTTP request received.")
    huge = send(2_000_000)  # what uvicorn's own httptools protocol read and answered
    assert huge.startswith(b"HTTP/1.1 400")
    if pause:  # refused once the bound was passed, not after buffering the whole header
        assert sent[-1] <= MAX_HEAD_BYTES // 4096 + 3, sent
    assert send(10).startswith(b"HTTP/1.1 200")  # the server is still up


def test_a_large_body_arriving_with_its_head_is_not_mistaken_for_a_head(server):
    body = b"b" * 300_000
    reply = exchange(server.port, [head(10, "POST", len(body)) + body])
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"10 300000")


def test_requests_in_one_read_are_not_counted_as_one_head(server):
    """A body, or requests sent one after another without waiting (pipelined), in the same
    read as the start of the next request: the next head is not charged for them."""
    body = b"b" * 20_000
    post = head(10, "POST", len(body)).replace(b"Connection: close", b"Connection: keep-alive")
    nxt = head(3)
    reply = exchange(server.port, [post + body + nxt[:20], nxt[20:]], pause=0.1)
    assert reply.count(b"HTTP/1.1 200") == 2 and reply.endswith(b"3 0"), reply[-200:]
    keep = head(5).replace(b"Connection: close", b"Connection: keep-alive")
    many = keep * 300  # about 23 KB of whole requests, then a cut one
    reply = exchange(server.port, [many + nxt[:20], nxt[20:]], pause=0.1)
    assert reply.count(b"HTTP/1.1 200") == 301 and b"HTTP/1.1 400" not in reply
