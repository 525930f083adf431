"""The background runner: free ports, taken ports, re-runs, bounded stops."""

from __future__ import annotations

import socket
import threading

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from helpers.servers import BackgroundServer, PortInUseError, running_servers


def app() -> Starlette:
    return Starlette(routes=[Route("/", lambda r: PlainTextResponse("up"))])


def uvicorn_threads() -> int:
    return sum(t.name.startswith("uvicorn-") for t in threading.enumerate())


def test_free_port_serves_and_stops():
    before = uvicorn_threads()
    with BackgroundServer(app(), name="t-basic") as srv:
        assert srv.port and httpx.get(srv.url).text == "up"
        assert running_servers()["t-basic"] is srv
    assert uvicorn_threads() == before
    with pytest.raises(httpx.ConnectError):
        httpx.get(srv.url)


def test_taken_port_is_a_clear_error_not_a_hang():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"127.0.0.1:{port} is already in use"):
            BackgroundServer(app(), port=port, name="t-taken").start()
    assert "t-taken" not in running_servers()


def test_same_name_replaces_the_previous_server_and_frees_its_port():
    first = BackgroundServer(app(), name="t-rerun").start()
    port = first.port
    second = BackgroundServer(app(), port=port, name="t-rerun").start()  # a re-run cell
    try:
        assert not first.running and second.running and second.port == port
        assert httpx.get(second.url).text == "up"
    finally:
        second.stop()
    assert "t-rerun" not in running_servers()


def test_stop_with_an_open_stream_is_bounded():
    import asyncio

    from starlette.responses import StreamingResponse

    async def forever(request):
        async def body():
            while True:
                yield b"x"
                await asyncio.sleep(0.05)
        return StreamingResponse(body())

    srv = BackgroundServer(Starlette(routes=[Route("/", forever)]), name="t-open").start()
    thread = srv._thread
    with httpx.stream("GET", srv.url) as r:
        next(r.iter_bytes())
        srv.stop(timeout=4)
    assert not srv.running and not thread.is_alive()
    assert "t-open" not in running_servers()


def test_nodelay_is_set_so_small_stream_writes_are_not_held_for_acks():
    """Regression: sockets we bound ourselves kept Nagle on, adding ~40 ms per reused request."""
    with BackgroundServer(app(), name="t-nodelay") as srv:
        assert srv._socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        with socket.create_connection(("127.0.0.1", srv.port)) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert b"200 OK" in client.recv(1024)
