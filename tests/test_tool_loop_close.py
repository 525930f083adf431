"""A tool loop left early closes the provider's stream of its current round (issue 21, point 4).

Evidence is the offline provider's counters: the stream it was still writing ends
"disconnected" and ``open_streams`` is back to 0. ``[hold]`` in the question holds each round
before its final chunk until a release after it began waiting (helpers/offline/gate.py), so the
stream is provably open when the loop is left: the mid tool-call round is the first request,
the answer round the second (after one release). After an async loop is closed, the counters
are read *blocking the event loop* on purpose: asyncio's finalizer of abandoned generators
never gets a turn, so only a close done by ``aclose()`` itself (or the cancellation) counts.
The cycle collector is off during each test for the same reason: it too closes an abandoned
stream, some time later (a relay sees its next collection seconds or minutes after).
"""

from __future__ import annotations

import asyncio
import gc
import json
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from typing import Any

import anyio
import httpx
import openai
import pytest
from conftest import FAKE_KEY
from httpx_sse import connect_sse
from test_tools import CALC

from helpers.offline import OfflineProvider
from helpers.relay import Relay, start_relay
from helpers.relay.toolstream import MATH_TOOLS, tool_batches
from helpers.settings import Config
from helpers.streams.toolcalls import Event
from helpers.tools.loop import aiter_tool_loop, arun_tools, iter_tool_loop, run_tools

pytestmark = pytest.mark.timeout(120)
MODEL = "moonshot-v1-8k"  # streams a sentence, then the calculator call
QUESTION = [{"role": "user", "content": 'Please calculate "2*(3+4)^2" [hold]'}]
DEADLINE = 10.0  # liveness, not speed
ROUNDS = pytest.mark.parametrize("answer_round", [False, True],
                                 ids=["mid-tool-call-round", "answer-round"])
FLAVOURS = pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])


@pytest.fixture(autouse=True)
def _no_cycle_collector() -> Iterator[None]:
    """Count only the closes the code does (module docstring)."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class Left(Exception):
    """The consumer gave up (a view that failed, a page that left)."""


def held(offline: OfflineProvider, streams: int) -> None:
    """Wait until request number ``streams`` is open and held: provably still being written."""
    offline.wait_for(lambda s: s["streams"] == streams and s["held"] == 1, timeout=DEADLINE)


def assert_closed(offline: OfflineProvider, streams: int) -> None:
    """The last of ``streams`` requests ended as a disconnect; nothing is open any more."""
    stats = offline.wait_for(lambda s: s["streams"] == streams and s["open_streams"] == 0,
                             timeout=DEADLINE)
    assert (stats["streams"], stats["completed"], stats["disconnects"]) == \
        (streams, streams - 1, 1), stats
    assert stats["recent"][-1]["outcome"] == "disconnected"


def read_into(events: Iterator[Event], offline: OfflineProvider, answer_round: bool) -> Event:
    """Read the loop until its current stream is held: in the tool call, or in the answer."""
    event = next(events)
    held(offline, 1)
    if answer_round:
        offline.release()  # the first round finishes; the second is held in its turn
        while event.kind != "tool_call.result":
            event = next(events)
        event = next(events)
        held(offline, 2)
    return event


async def aread_into(events: AsyncIterator[Event], offline: OfflineProvider,
                     answer_round: bool) -> Event:
    """Read the async loop until its current stream is held (see :func:`read_into`)."""
    event = await anext(events)
    held(offline, 1)
    if answer_round:
        offline.release()
        while event.kind != "tool_call.result":
            event = await anext(events)
        event = await anext(events)
        held(offline, 2)
    return event


def sync_client(offline: OfflineProvider) -> openai.OpenAI:
    return openai.OpenAI(base_url=offline.base_url, api_key=FAKE_KEY, max_retries=0)


def async_client(offline: OfflineProvider) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=offline.base_url, api_key=FAKE_KEY, max_retries=0)


def loop_kw() -> dict[str, Any]:
    return {"model": MODEL, "tools": [CALC], "messages": [dict(m) for m in QUESTION]}


# -- the loops ----------------------------------------------------------------------------

@ROUNDS
@FLAVOURS
def test_closing_a_tool_loop_early_closes_its_stream(offline, sync, answer_round):
    if sync:
        with sync_client(offline) as client:
            events = iter_tool_loop(client, **loop_kw())
            event = read_into(events, offline, answer_round)
            events.close()
            assert_closed(offline, 2 if answer_round else 1)
    else:
        async def main() -> Event:
            async with async_client(offline) as client:
                events = aiter_tool_loop(client, **loop_kw())
                event = await aread_into(events, offline, answer_round)
                await events.aclose()
                assert_closed(offline, 2 if answer_round else 1)  # blocking: module docstring
                return event
        event = asyncio.run(main())
    assert (event.kind, event.text) == ("content", "Here" if answer_round else "Let")


@FLAVOURS
def test_a_consumer_that_fails_closes_the_stream(offline, sync):
    def on_event(event: Event) -> None:
        held(offline, 1)
        raise Left

    if sync:
        with sync_client(offline) as client, pytest.raises(Left):
            run_tools(client, on_event=on_event, **loop_kw())
        assert_closed(offline, 1)  # while the traceback (and its frames) is still alive
    else:
        async def main() -> None:
            async with async_client(offline) as client:
                with pytest.raises(Left):
                    await arun_tools(client, on_event=on_event, **loop_kw())
                assert_closed(offline, 1)
        asyncio.run(main())


@pytest.mark.parametrize("how", ["scope-in-read", "task-in-read", "scope-at-yield"])
def test_a_cancelled_async_loop_closes_its_stream(offline, how):
    async def consume(events: AsyncIterator[Event], first: asyncio.Event) -> None:
        async for _ in events:
            first.set()

    async def main() -> None:
        async with async_client(offline) as client:
            events = aiter_tool_loop(client, **loop_kw())
            if how.startswith("scope"):  # level-triggered, as anyio cancels a relay's request
                with anyio.CancelScope() as scope:
                    async with aclosing(events):
                        async for _ in events:
                            held(offline, 1)
                            scope.cancel()  # in-read: the next read of the held stream
                            if how == "scope-at-yield":  # the consumer's own await instead
                                await anyio.sleep(0)
                assert scope.cancelled_caught
            else:
                first = asyncio.Event()
                task = asyncio.create_task(consume(events, first))
                await first.wait()
                held(offline, 1)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            assert_closed(offline, 1)
    asyncio.run(main())


@pytest.mark.parametrize("how", ["aclose", "cancelled-between-batches"])
def test_closing_the_relays_tool_batches_closes_the_loop(offline, how):
    async def main() -> None:
        async with async_client(offline) as client:
            batches = tool_batches(client, MODEL, [dict(m) for m in QUESTION], MATH_TOOLS)
            with anyio.CancelScope() as scope:
                async for batch in batches:
                    if any(name == "tool_call" for name, _ in batch):
                        break
                held(offline, 1)
                if how == "cancelled-between-batches":  # as a page's hang-up lands in the
                    scope.cancel()                       # relay's write, not in a read
                    await anyio.sleep(0)
            assert scope.cancelled_caught == (how != "aclose")
            with anyio.CancelScope(shield=True):
                await batches.aclose()  # as the relay does, from its cancelled task
            assert_closed(offline, 1)
    asyncio.run(main())


# -- the relay: a page that leaves during a tool answer ------------------------------------

@pytest.fixture
def tool_relay(offline: OfflineProvider, request: pytest.FixtureRequest) -> Iterator[Relay]:
    grace = getattr(request, "param", 60.0)
    config = Config("offline", offline.base_url, MODEL, FAKE_KEY)
    relay = start_relay(config, jupyter=False, name="relay-tool-close", tools=MATH_TOOLS,
                        resume_grace=grace)
    yield relay
    relay.stop()


def read_relay_into(source: Any, offline: OfflineProvider, answer_round: bool) -> str:
    """Read the relay's events to the first call (or the answer's first delta); return it.

    The page leaves at once, without waiting for the relay to pass on what the provider has
    already sent: a relay still busy with it is where the leak was (the drop lands at a
    ``yield`` of the loop, not in a read). The stream is open anyway: held, never released.
    """
    events = source.iter_sse()
    for event in events:
        if event.event == "tool_call":
            break
    if not answer_round:
        return event.event
    held(offline, 1)  # before the release: a release before the wait would not count
    offline.release()
    for event in events:
        if event.event == "tool_result":
            break
    for event in events:
        if event.event == "delta":
            break
    return event.event


@ROUNDS
def test_a_page_that_leaves_a_tool_answer_closes_the_providers_stream(
        tool_relay: Relay, offline: OfflineProvider, answer_round: bool) -> None:
    # Where the hang-up lands is a race: in a read of the provider, the SDK's own clean-up
    # closes the stream; between two batches (usual here), only the fix does.
    body = {"question": QUESTION[0]["content"], "resumable": False}
    with httpx.Client(timeout=30) as client, connect_sse(
            client, "POST", tool_relay.url + "api/chat/stream", json=body) as source:
        assert source.response.status_code == 200
        last = read_relay_into(source, offline, answer_round)
    assert last == ("delta" if answer_round else "tool_call")
    assert_closed(offline, 2 if answer_round else 1)  # the connection is gone: so is the stream


def test_a_page_that_leaves_before_the_first_event_closes_the_providers_stream(
        tool_relay: Relay, offline: OfflineProvider) -> None:
    """The drop lands between two batches every time: the relay has seen the page go before
    the provider's first byte (its headers come 2 s late), passes the first batch on to
    nobody and is cancelled before its next read, with the loop at a ``yield``. Were the
    relay slower than 2 s, the drop would land in a read: the test would then pass without
    the fix, never fail with it."""
    question = QUESTION[0]["content"] + " [delay-headers:2000]"
    body = json.dumps({"question": question, "resumable": False}).encode()
    page = socket.create_connection(("127.0.0.1", tool_relay.port), timeout=10)
    try:
        page.sendall(b"POST /api/chat/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        offline.wait_for(lambda s: s["chat_requests"] == 1, timeout=DEADLINE)
    finally:
        page.close()  # gone while the provider is still to answer
    assert_closed(offline, 1)  # without the fix: held, 20 of its 21 chunks sent, open


@pytest.mark.parametrize("tool_relay", [0.5], indirect=True, ids=["grace-0.5s"])
def test_an_abandoned_resumable_tool_answer_closes_after_the_grace(
        tool_relay: Relay, offline: OfflineProvider) -> None:
    body = {"question": QUESTION[0]["content"], "resumable": True}
    with httpx.Client(timeout=30) as client, connect_sse(
            client, "POST", tool_relay.url + "api/chat/stream", json=body) as source:
        assert source.response.headers["X-Relay-Answer"]
        read_relay_into(source, offline, answer_round=False)
    assert_closed(offline, 1)  # no reader came back within 0.5 s: the producer gave up


def test_a_stopped_resumable_tool_answer_closes_the_providers_stream(
        tool_relay: Relay, offline: OfflineProvider) -> None:
    body = {"question": QUESTION[0]["content"], "resumable": True}
    with httpx.Client(timeout=30) as client, connect_sse(
            client, "POST", tool_relay.url + "api/chat/stream", json=body) as source:
        answer = source.response.headers["X-Relay-Answer"]
        read_relay_into(source, offline, answer_round=False)
    assert offline.stats()["open_streams"] == 1  # the grace is 60 s: it waits for its reader
    stopped = httpx.post(tool_relay.url + f"api/chat/stop/{answer}", timeout=10)
    assert stopped.status_code == 204
    assert_closed(offline, 1)
