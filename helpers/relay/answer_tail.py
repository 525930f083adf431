"""A resumable answer produced in this worker: its events in memory, its readers here.

:mod:`helpers.relay.resume` keeps one per running answer; readers in the same worker follow
``frames`` (woken by :meth:`LocalAnswer.notify`), and the worker's flusher writes what is not
yet ``flushed`` to the shared store.
"""

from __future__ import annotations

import asyncio
import time

import anyio

__all__ = ["LocalAnswer"]


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
