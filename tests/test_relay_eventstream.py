"""The relay's event-stream response: headers, keep-alive comments only after silence, none
after the end, and a client that leaves cancels the stream (which closes its upstream)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from helpers.relay.eventstream import EventStream, Last

SCOPE = {"type": "http", "method": "POST", "asgi": {"version": "3.0", "spec_version": "2.3"}}
PING = b": ping\n\n"


async def run(response: EventStream, *, leave: asyncio.Event | None = None,
              after_end: float = 0.0) -> list[dict]:
    """Serve ``response`` to a fake ASGI server; return what it sent."""
    sent: list[dict] = []

    async def receive() -> dict:
        if leave is None:
            await asyncio.Event().wait()  # the client never leaves
        await leave.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    await response(SCOPE, receive, send)
    await asyncio.sleep(after_end)  # a timer left behind would still fire here
    return sent


def bodies(sent: list[dict]) -> list[bytes]:
    return [m["body"] for m in sent if m["type"] == "http.response.body"]


def test_headers_are_sse_starlettes():
    async def one() -> AsyncIterator[bytes]:
        yield b"event: done\ndata: {}\n\n"

    sent = asyncio.run(run(EventStream(one())))
    headers = dict(sent[0]["headers"])
    assert headers[b"content-type"] == b"text/event-stream; charset=utf-8"
    assert headers[b"cache-control"] == b"no-store"
    assert headers[b"x-accel-buffering"] == b"no"
    assert bodies(sent) == [b"event: done\ndata: {}\n\n", b""]


def test_a_silent_stream_gets_keep_alive_comments_and_none_after_the_end():
    sent = asyncio.run(asyncio.wait_for(_ping_case(), 30))
    got = bodies(sent)
    assert got[0] == b"event: delta\ndata: {}\n\n"
    assert got[1] == PING
    assert got[2:] == [b"event: done\ndata: {}\n\n", b""]  # nothing after the end


async def _ping_case() -> list[dict]:
    """A stream silent until one keep-alive went out, then finished."""
    sent: list[dict] = []
    later = asyncio.Event()

    async def silent() -> AsyncIterator[bytes]:
        yield b"event: delta\ndata: {}\n\n"
        await later.wait()
        yield b"event: done\ndata: {}\n\n"

    async def receive() -> dict:
        await asyncio.Event().wait()
        return {}

    async def send(message: dict) -> None:
        sent.append(message)
        if message.get("body") == PING:
            later.set()  # the provider speaks again once the keep-alive went out

    await EventStream(silent(), ping=0.2)(SCOPE, receive, send)
    await asyncio.sleep(0.5)  # a timer left behind would add a ping after the end here
    return sent


def test_a_stream_that_keeps_writing_gets_no_keep_alive():
    async def busy() -> AsyncIterator[bytes]:
        for _ in range(30):
            yield b"event: delta\ndata: {}\n\n"
            await asyncio.sleep(0.01)

    sent = asyncio.run(run(EventStream(busy(), ping=2.0), after_end=0.1))
    assert PING not in bodies(sent)
    assert len(bodies(sent)) == 31


def test_a_client_that_leaves_cancels_the_stream():
    closed: list[str] = []

    async def main() -> list[dict]:
        leave = asyncio.Event()

        async def endless() -> AsyncIterator[bytes]:
            try:
                while True:
                    yield b"event: delta\ndata: {}\n\n"
                    leave.set()  # the client goes away after the first event
                    await asyncio.Event().wait()
            finally:
                closed.append("upstream closed")

        return await run(EventStream(endless(), ping=1.0), leave=leave, after_end=0.2)

    sent = asyncio.run(asyncio.wait_for(main(), 10))
    assert closed == ["upstream closed"]
    assert bodies(sent) == [b"event: delta\ndata: {}\n\n"]  # no ping, no end to a gone client


@pytest.mark.parametrize("ping", [0, -1])
def test_keep_alive_can_be_switched_off(ping):
    async def one() -> AsyncIterator[bytes]:
        yield b"x"

    assert bodies(asyncio.run(run(EventStream(one(), ping=ping)))) == [b"x", b""]


def test_the_last_event_ends_the_response_in_the_same_write_and_the_body_still_finishes():
    finished: list[bool] = []

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b"event: delta\ndata: {}\n\n"
            yield Last(b"event: done\ndata: {}\n\n")
        finally:
            finished.append(True)  # the relay closes its upstream here

    sent = asyncio.run(run(EventStream(body())))
    assert [(m["body"], m["more_body"]) for m in sent[1:]] == [
        (b"event: delta\ndata: {}\n\n", True), (b"event: done\ndata: {}\n\n", False)]
    assert type(sent[-1]["body"]) is bytes and finished == [True]


def test_the_end_of_the_response_does_not_cancel_the_bodys_clean_up():
    """uvicorn answers http.disconnect as soon as the response is complete; with the last
    event sent as the end, the body is still finishing (closing its upstream, settling the
    client's limits) and must not be cancelled (a leaked stream slot, found in review)."""
    finished: list[bool] = []
    complete = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b"event: delta\ndata: {}\n\n"
            yield Last(b"event: done\ndata: {}\n\n")
        finally:
            await asyncio.sleep(0.05)  # e.g. the limiter settling in a thread
            finished.append(True)

    async def serve() -> list[dict]:
        sent: list[dict] = []

        async def receive() -> dict:
            await complete.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)
            if message["type"] == "http.response.body" and not message["more_body"]:
                complete.set()

        await EventStream(body())(SCOPE, receive, send)
        return sent

    sent = asyncio.run(serve())
    assert finished == [True] and sent[-1]["more_body"] is False


def test_a_client_that_leaves_during_a_stalled_write_closes_the_body_at_once():
    finished: list[bool] = []
    stalled = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"event: delta\ndata: {}\n\n"
        finally:
            finished.append(True)

    async def serve() -> None:
        async def receive() -> dict:
            await stalled.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.body":
                stalled.set()
                await asyncio.Event().wait()  # the client stopped reading: the write waits

        iterator = body()
        await EventStream(iterator)(SCOPE, receive, send)
        assert finished == [True]  # closed by the response, not later by the collector
        del iterator

    asyncio.run(asyncio.wait_for(serve(), 10))
