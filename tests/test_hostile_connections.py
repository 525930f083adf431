"""Issue 23, finding 5: connections that send nothing, half a head or half a body are closed
(a 408 in the error shape when there was a request), uvicorn's keep-alive is explicit, and one
client's connections are bounded (a 429), while the server stays responsive for others.

Raw sockets to a real uvicorn server started by BackgroundServer. Deadlines are short here so
that the tests are quick; each assertion is about what arrived and in which order, and waits
are generous (liveness, never speed). 127.0.0.2 is "another client": it connects over
loopback from its own source address, and the test servers leave it unbounded.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import select
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import httpx
import pytest
from conftest import stop_process, wait_until
from relay_process import RelayProcess
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from helpers.bounded_http import DEFAULT_LIMITS, ConnectionLimits
from helpers.relay.workers import add_scale_options, connection_limits
from helpers.servers import BackgroundServer

pytestmark = pytest.mark.timeout(120)
SHORT = 0.3  # seconds: the test servers' deadlines
OTHER = "127.0.0.2"  # another client


async def echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"got {len(await request.body())}")


async def early(request: Request) -> PlainTextResponse:
    return PlainTextResponse("refused before the body", status_code=401)  # body never read


def app() -> Starlette:
    return Starlette(routes=[Route("/echo", echo, methods=["GET", "POST"]),
                             Route("/early", early, methods=["POST"])])


@pytest.fixture
def server() -> Iterator[BackgroundServer]:
    limits = ConnectionLimits(head_timeout=SHORT, body_timeout=SHORT, keep_alive_timeout=SHORT,
                              max_per_client=3, unbounded=(f"{OTHER}/32",))
    running = BackgroundServer(app(), name="hostile-connections", limits=limits).start()
    yield running
    running.stop()


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30,
                                    source_address=(source, 0))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_to_end(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (the socket's 30 s timeout bounds it)."""
    reply = b""
    try:
        while chunk := sock.recv(65536):
            reply += chunk
    except ConnectionResetError:
        pass
    return reply


def error_of(reply: bytes) -> tuple[int, dict]:
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)["error"]


def served(port: int, source: str = OTHER) -> bytes:
    with connect(port, source) as sock:
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        return read_to_end(sock)


def test_the_classroom_defaults() -> None:
    assert (DEFAULT_LIMITS.head_timeout, DEFAULT_LIMITS.body_timeout,
            DEFAULT_LIMITS.keep_alive_timeout, DEFAULT_LIMITS.max_per_client) == (10, 60, 5, 64)
    options = DEFAULT_LIMITS.uvicorn_options()
    assert options["timeout_keep_alive"] == 5 and options["http"].keywords == {
        "limits": DEFAULT_LIMITS}
    with pytest.raises(ValueError, match="head_timeout must be positive"):
        ConnectionLimits(head_timeout=0)


def test_a_socket_that_sends_nothing_is_closed_without_an_answer(server) -> None:
    with connect(server.port) as silent:
        assert read_to_end(silent) == b""  # closed by the server, nothing asked, nothing said
    assert served(server.port).endswith(b"got 0")


def test_half_a_head_gets_a_408_then_the_connection_closes(server) -> None:
    with connect(server.port) as slow:
        slow.sendall(b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        status, error = error_of(read_to_end(slow))
    assert status == 408 and error["type"] == "request_timeout" and "head" in error["message"]


def test_a_head_trickled_byte_by_byte_is_bounded_as_a_whole(server) -> None:
    """The deadline is for the whole head: every byte arriving in time does not extend it."""
    raw = b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"p" * 200
    with connect(server.port) as slow:
        sent = 0
        try:
            for byte in raw:
                slow.sendall(bytes([byte]))
                sent += 1
                if select.select([slow], [], [], SHORT / 10)[0]:
                    break  # the server answered
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, _ = error_of(read_to_end(slow))
    assert status == 408 and sent < len(raw)


def test_half_a_body_gets_a_408_and_the_app_reads_a_disconnect(server) -> None:
    with connect(server.port) as slow:
        slow.sendall(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nab")
        status, error = error_of(read_to_end(slow))
    assert status == 408 and "body" in error["message"]
    assert served(server.port).endswith(b"got 0")


def test_a_body_trickled_after_an_early_answer_is_cut(server) -> None:
    """uvicorn reads and drops the unread body of an answered request, and each read used to
    restart its keep-alive timer: the body deadline still runs."""
    with connect(server.port) as slow:
        slow.sendall(b"POST /early HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n")
        answer = b""
        while b"refused before the body" not in answer:
            answer += slow.recv(65536)
        assert answer.startswith(b"HTTP/1.1 401")
        try:
            for _ in range(1000):  # a byte a tenth of the deadline apart: more than it allows
                slow.sendall(b"x")
                if select.select([slow], [], [], SHORT / 10)[0]:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert read_to_end(slow) == b""  # closed: the answer had been given


def test_an_idle_keep_alive_connection_is_closed(server) -> None:
    with connect(server.port) as sock:
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        reply = read_to_end(sock)  # the answer, then the close after the keep-alive timeout
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"got 0")


def test_one_client_gets_a_bounded_number_of_connections(server) -> None:
    held = [connect(server.port) for _ in range(3)]
    try:
        for sock in held:  # each accepted: a request on it is served
            sock.sendall(b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        with connect(server.port) as extra:
            extra.sendall(b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            status, error = error_of(read_to_end(extra))
        assert status == 429 and error["type"] == "too_many_connections"
        assert "at most 3" in error["message"]
        assert served(server.port).endswith(b"got 0")  # another client is served meanwhile
    finally:
        for sock in held:
            sock.close()
    # closed connections are no longer counted: the client gets its connections back
    wait_until(lambda: served(server.port, "127.0.0.1").startswith(b"HTTP/1.1 200"),
               timeout=30, every=0.05)


_FD_SERVER = textwrap.dedent("""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from helpers.bounded_http import ConnectionLimits
    from helpers.servers import BackgroundServer
    app = Starlette(routes=[Route("/", lambda r: PlainTextResponse("up"))])
    limits = ConnectionLimits(head_timeout=120, unbounded=("127.0.0.2/32",))
    server = BackgroundServer(app, limits=limits).start()
    print(server.port, flush=True)
    sys.stdin.read()
""")


@pytest.mark.skipif(resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 1024,
                    reason="this test opens 300 sockets: it needs an open-file limit of 1024")
def test_three_hundred_idle_sockets_do_not_starve_a_server_of_256_files() -> None:
    """The red team's attack: 300 idle sockets from one address at a server allowed 256 open
    files made real requests fail. 64 are held, the rest refused; another client is served."""
    proc = subprocess.Popen([sys.executable, "-c", _FD_SERVER], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env={**os.environ},
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    idle: list[socket.socket] = []
    try:
        port = int(proc.stdout.readline())
        for _ in range(300):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=30))
        answered: dict[int, bytes] = {}

        def refusals() -> int:
            for sock in select.select([s for s in idle if s.fileno() not in answered], [], [],
                                      0.05)[0]:
                answered[sock.fileno()] = read_to_end(sock)
            return len(answered)

        wait_until(lambda: refusals() >= 300 - 64, timeout=60, every=0.01)
        with httpx.Client(transport=httpx.HTTPTransport(local_address=OTHER)) as other:
            assert other.get(f"http://127.0.0.1:{port}/", timeout=30).text == "up"
        assert refusals() == 300 - 64  # the 64 held are still open, unanswered
        assert {error_of(reply)[1]["type"] for reply in answered.values()} == {
            "too_many_connections"}
    finally:
        for sock in idle:
            sock.close()
        if proc.stdin:
            proc.stdin.close()
        stop_process(proc)
        if proc.stdout:
            proc.stdout.close()


def test_the_relay_cli_flags_make_the_connection_limits() -> None:
    parser = argparse.ArgumentParser()
    add_scale_options(parser)
    assert connection_limits(parser.parse_args([])) == ConnectionLimits()
    limits = connection_limits(parser.parse_args([
        "--head-timeout", "3", "--body-timeout", "30", "--keep-alive", "2",
        "--max-connections-per-client", "8", "--trust-proxy", "10.0.0.0/8"]))
    assert (limits.head_timeout, limits.body_timeout, limits.keep_alive_timeout,
            limits.max_per_client) == (3, 30, 2, 8)
    assert limits.bounded_key("10.1.2.3") is None  # a trusted proxy carries many clients
    assert limits.bounded_key("::1") is None and limits.bounded_key("192.0.2.1") == "192.0.2.1"
    assert connection_limits(parser.parse_args(
        ["--max-connections-per-client", "0"])).max_per_client is None


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_relay_cli_passes_its_connection_flags_on(workers: str) -> None:
    relay = RelayProcess("--workers", workers, "--head-timeout", "0.5", "--trust-proxy",
                         "127.0.0.3")
    try:
        port = int(relay.url.rstrip("/").rsplit(":", 1)[1])
        with connect(port) as slow:
            slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            status, error = error_of(read_to_end(slow))
        assert status == 408 and "within 0.5 s" in error["message"]  # not the default 10 s
        assert httpx.get(relay.url + "healthz", timeout=30).json()["ok"] is True
    finally:
        relay.stop()
