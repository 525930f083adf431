"""Resumable answers: a dropped connection continues where it was, on any worker.

A client asks for it with ``"resumable": true`` in its request (the page does). Then:

- **The answer is produced apart from the connection.** A task of the worker that took the
  request reads the provider and appends every event to the shared store, numbered; the
  response (and any later one) only follows the store. Each event carries an SSE ``id``,
  ``<answer>.<n>``: the answer's random id (whoever has it may read the answer) and the event's
  number. One upstream request, whatever happens to the connections.
- **Reconnect** with ``GET /api/chat/resume`` and ``Last-Event-ID: <answer>.<n>`` (the header
  ``EventSource`` sends): every event after ``n``, then the rest as it comes, from whichever
  worker or relay shares the store. An event cut in half was never dispatched by the reader,
  so nothing is lost or repeated.
- **A grace period, not forever.** While no reader is attached (readers on other workers say
  so every :data:`TOUCH_EVERY` s through the store), the producer waits ``grace`` seconds, then
  closes the upstream request. ``POST /api/chat/stop/<answer>`` (the page's Stop button, and
  its ``sendBeacon`` when the tab closes) stops it at once. A finished answer stays readable
  ``grace`` seconds; after that a resume gets a 404 ``resume_expired``, never a hang.
- Clients that do not ask (curl, the SDK, the blog's front end) keep the plain behaviour: the
  upstream request closes as soon as they leave (:mod:`helpers.relay.app`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import anyio.lowlevel
from fastapi import FastAPI, Request
from fastapi.responses import Response

from ..errors import RelayFailure
from ..streams.sse import encode_event
from .bodies import error_response
from .eventstream import EventStream
from .store import Store
from .upstream import Batch

__all__ = ["DEFAULT_GRACE", "TOUCH_EVERY", "Answers"]

log = logging.getLogger("helpers.relay")
DEFAULT_GRACE = 30.0
TOUCH_EVERY = 0.5
_WATCH_EVERY = 0.2
_POLL_EVERY = 0.05
#: How long an answer nobody finishes (its worker died) stays in the store.
_MAX_AGE = 3600.0


class _Local:
    """A producer running in this worker, and how its local readers hear of new events."""

    def __init__(self) -> None:
        self.changed = anyio.Event()
        self.readers = 1  # the first response, attached from the start
        self.left = time.time()
        self.task: asyncio.Task[None] | None = None
        self.scope: anyio.CancelScope | None = None
        self.why: str | None = None  # why it was closed early

    def close(self, why: str) -> None:
        self.why = why
        if self.scope is not None:
            self.scope.cancel()

    def notify(self) -> None:
        old, self.changed = self.changed, anyio.Event()
        old.set()


class Answers:
    """The resumable answers of one app: producers here, readers of answers anywhere.

    Args:
        store: shared with every worker that may serve a reconnect.
        grace: seconds an answer waits for its reader to come back, and stays readable after.
        failure: turns an exception into the relay's ``error`` event data.
    """

    def __init__(self, store: Store, *, grace: float = DEFAULT_GRACE,
                 failure: Callable[[Exception], dict[str, Any]]) -> None:
        self.store, self.grace, self.failure = store, grace, failure
        self._local: dict[str, _Local] = {}

    async def respond(self, first: Batch, events: AsyncIterator[Batch]) -> Response:
        """Start producing an answer whose first batch is ``first``; follow it from the start."""
        answer = secrets.token_urlsafe(16)
        local = self._local[answer] = _Local()
        await self.store.open_answer(answer, _MAX_AGE)
        local.task = asyncio.get_running_loop().create_task(
            self._produce(answer, local, first, events))
        return self._response(answer, 0, attached=True)

    def _response(self, answer: str, after: int, attached: bool = False) -> Response:
        # The answer's id in a header too: a page that stops before the first event arrives
        # (the provider still thinking) can still tell the relay which answer to stop. The
        # plain answers' response: the same headers, keep-alives and hang-up handling.
        return EventStream(self._follow(answer, after, attached),
                           headers={"X-Relay-Answer": answer})

    async def _produce(self, answer: str, local: _Local, first: Batch,
                       events: AsyncIterator[Batch]) -> None:
        seq = 0

        async def put(batch: Batch) -> None:
            nonlocal seq
            frames = [f"id: {answer}.{seq + i + 1}\n".encode() + encode_event(name, data)
                      for i, (name, data) in enumerate(batch)]
            with anyio.CancelScope(shield=True):  # a row written is a row counted
                try:
                    await self.store.append(answer, seq + 1, frames)
                except Exception as exc:  # the relay's failure, not the provider's
                    raise RelayFailure("The relay failed while storing the answer "
                                       f"({type(exc).__name__})") from exc
            seq += len(frames)
            local.notify()

        ending: dict[str, Any] | None = None
        try:
            with anyio.CancelScope() as local.scope:  # not a task group: errors stay bare
                watcher = asyncio.get_running_loop().create_task(self._watch(answer, local))
                try:
                    await put(first)
                    async for batch in events:
                        await put(batch)
                finally:
                    watcher.cancel()
            if local.why is not None:
                ending = {"type": "stopped", "message": local.why, "status": None}
        except asyncio.CancelledError:
            ending = {"type": "relay_shutdown",
                      "message": "The relay shut down before the answer finished.",
                      "status": None}
            raise
        except Exception as exc:
            ending = self.failure(exc)
        finally:
            with anyio.CancelScope(shield=True):
                await events.aclose()  # type: ignore[attr-defined]
                if ending is not None:
                    await put([("error", ending)])
                await self.store.finish(answer, self.grace)
                self._local.pop(answer, None)
                local.notify()

    async def _watch(self, answer: str, local: _Local) -> None:
        """Stop the producer when asked, or when no reader came back within the grace period."""
        while True:
            await anyio.sleep(_WATCH_EVERY)
            seen, stop = await self.store.seen(answer)
            if stop:
                local.close("Stopped by the client.")
            elif local.readers == 0 and time.time() - max(seen, local.left) > self.grace:
                local.close(f"No reader came back within {self.grace:g} s; the answer was "
                            "closed.")
            else:
                continue
            log.info("resumable answer %s… closed: %s", answer[:6], local.why)
            return

    async def _follow(self, answer: str, after: int, attached: bool) -> AsyncIterator[bytes]:
        local = self._local.get(answer)
        if local is not None and not attached:
            local.readers += 1
        touched = 0.0
        try:
            while True:
                changed = local.changed if local is not None else None
                state, rows = await self.store.read(answer, after)
                if state is None:
                    yield encode_event("error", {"type": "resume_expired", "status": None,
                                                 "message": "The answer expired."})
                    return
                if rows:
                    after = rows[-1][0]
                    yield b"".join(data for _, data in rows)
                    await anyio.lowlevel.checkpoint()  # notice a hang-up
                elif state != "running":
                    return
                elif changed is not None:
                    with anyio.move_on_after(1.0):
                        await changed.wait()
                else:
                    await anyio.sleep(_POLL_EVERY)
                if local is None and time.time() - touched > TOUCH_EVERY:
                    touched = time.time()  # a reader on another worker: tell the producer
                    await self.store.touch(answer)
        finally:
            if local is not None:
                local.readers -= 1
                local.left = time.time()

    async def resume(self, request: Request) -> Response:
        """``GET /api/chat/resume`` with ``Last-Event-ID``: the events after it, then the rest."""
        last = request.headers.get("last-event-id", "")
        answer, _, number = last.strip().rpartition(".")
        if not answer or not number.isdigit():
            return error_response(400, "invalid_request_error",
                                  "Resume needs a Last-Event-ID header of the form "
                                  "<answer>.<event number>, as the events' ids have it.")
        state, _ = await self.store.read(answer, 10**12)
        if state is None:
            return error_response(404, "resume_expired",
                                  "This answer is unknown or expired: an answer is kept "
                                  f"{self.grace:g} s after its connection drops or it "
                                  "finishes. Ask again.")
        return self._response(answer, int(number))

    async def stop(self, answer: str) -> Response:
        """``POST /api/chat/stop/{answer}``: close the answer's upstream request now."""
        if not await self.store.ask_stop(answer):
            return error_response(404, "resume_expired", "No such answer (finished, expired "
                                  "or never started): nothing to stop.")
        local = self._local.get(answer)
        if local is not None:  # produced here: no need to wait for the watcher
            local.close("Stopped by the client.")
        return Response(status_code=204)

    def add_routes(self, app: FastAPI) -> None:
        """Add the resume and stop routes to ``app``."""
        app.add_api_route("/api/chat/resume", self.resume, methods=["GET"])
        app.add_api_route("/api/chat/stop/{answer}", self.stop, methods=["POST"],
                          status_code=204)

    async def close(self) -> None:
        """Cancel every producer of this worker (the relay is shutting down)."""
        tasks = [local.task for local in self._local.values() if local.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
