"""A resumable answer produced in this worker: its events in memory, its readers here.

:mod:`helpers.relay.resume` keeps one per running answer; readers in the same worker follow
``frames`` (woken by :meth:`LocalAnswer.notify`), and the worker's flusher writes what is not
yet ``flushed`` to the shared store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import anyio

from ..streams.sse import encode_event
from .eventstream import Last
from .store import Store

__all__ = ["LOST", "TOUCH_EVERY", "LocalAnswer", "follow_local", "follow_store"]

#: How often a reader on another worker tells the producer (through the store) it is there.
TOUCH_EVERY = 0.5
_POLL_EVERY = 0.05
LOST = {"type": "relay_error", "status": None,
         "message": "The relay lost this answer (its worker stopped or could not store it)."}


class LocalAnswer:
    """An answer produced in this worker: its events in memory, its readers here, its state."""

    __slots__ = ("owner", "frames", "flushed", "opened", "done", "stored", "readers", "left",
                 "task", "scope", "why", "failure", "waiters", "failing_since")

    def __init__(self, owner: str = "") -> None:
        self.owner = owner  # the identity of the client that asked: only it may read or stop
        self.frames: list[bytes] = []  # event n is frames[n - 1]
        self.flushed = 0  # events already in the store
        self.opened = False  # the store knows the answer
        self.done = False  # no more events will come
        self.stored = False  # the store has all of it, finished
        self.readers = 1  # the first response, attached from the start
        self.left = time.time()
        self.task: asyncio.Task[None] | None = None
        self.scope: anyio.CancelScope | None = None
        self.why: str | None = None  # why it was closed early
        self.failure: Exception | None = None  # the relay's own failure that closed it
        self.waiters: list[asyncio.Future[None]] = []
        self.failing_since: float | None = None

    def close(self, why: str, failure: Exception | None = None) -> None:
        if self.why is None:
            self.why, self.failure = why, failure
        if self.scope is not None:
            self.scope.cancel()

    def add(self, frames: list[bytes]) -> None:
        self.frames += frames
        self.notify()

    def notify(self) -> None:
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def changed(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        await waiter


async def follow_local(local: LocalAnswer, after: int, attached: bool) -> AsyncIterator[bytes]:
    """A reader in the producer's worker: the events from memory, as they come."""
    if not attached:
        local.readers += 1
    try:
        while True:
            count = len(local.frames)
            if count > after:
                data = b"".join(local.frames[after:count])
                after = count
                if local.done and count == len(local.frames):
                    yield Last(data)  # the end of the response in the same write
                    return
                yield data
                await asyncio.sleep(0)  # notice a hang-up
            elif local.done:
                return
            else:
                await local.changed()
    finally:
        local.readers -= 1
        local.left = time.time()


async def follow_store(store: Store, answer: str, after: int) -> AsyncIterator[bytes]:
    """A reader on another worker (or after the answer left memory): poll the store."""
    touched, running = 0.0, False
    while True:
        state, rows = await store.read(answer, after)
        if state is None:
            yield encode_event("error", LOST if running else
                               {"type": "resume_expired", "status": None,
                                "message": "The answer expired."})
            return
        running = state == "running"
        if rows:
            after = rows[-1][0]
            yield b"".join(data for _, data in rows)
            await asyncio.sleep(0)  # notice a hang-up
        elif not running:
            return
        else:
            await anyio.sleep(_POLL_EVERY)
        if running and time.time() - touched > TOUCH_EVERY:
            touched = time.time()  # a reader on another worker: tell the producer
            await store.touch(answer)
