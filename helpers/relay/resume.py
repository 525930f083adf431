"""Resumable answers: a dropped connection continues where it was, on any worker.

A client asks for it with ``"resumable": true`` in its request (the page does). Then:

- **The answer is produced apart from the connection.** A task of the worker that took the
  request reads the provider and keeps every event in memory, numbered; readers in that worker
  follow the memory, and the worker's flusher writes what every answer produced to the shared
  store every :data:`FLUSH_EVERY` s, in one call (and once more at the end), for readers on
  other workers or relays. Each event carries an SSE ``id``, ``<answer>.<n>``: the answer's
  random id and the event's number. One upstream request, whatever happens to the connections.
- **An answer is its client's.** It is bound to the identity of the client that asked
  (:func:`~helpers.relay.identity.client_identity`: its per-client token's name, else its
  address), here and in the store; a resume or stop by anyone else is the 404 of an unknown id,
  after the same wait (issue 23: another client's token read and stopped it, given its id).
- **Reconnect** with ``GET /api/chat/resume`` and ``Last-Event-ID: <answer>.<n>`` (the header
  ``EventSource`` sends): every event after ``n``, then the rest as it comes, from whichever
  worker or relay shares the store (one on another worker may lag by a flush: it polls). An
  event cut in half was never dispatched by the reader, so nothing is lost or repeated.
- **A grace period, not forever.** While no reader is attached (readers on other workers say
  so every :data:`TOUCH_EVERY` s through the store), the producer waits ``grace`` seconds, then
  closes the upstream request. ``POST /api/chat/stop/<answer>`` (the page's Stop button, and
  its ``fetch(keepalive)`` when the tab closes) stops it at once on its own worker, and within
  a watch interval from another. A finished answer stays readable ``grace`` seconds; after
  that a resume gets a 404 ``resume_expired``, never a hang.
- **One watcher per worker, not one per answer:** every :data:`WATCH_EVERY` s one store call
  reads all local answers' readers and stop flags, and renews their leases: an answer whose
  worker died (or cannot reach the store) expires :data:`LEASE` s later, and a reader on another
  worker then ends with ``relay_error`` instead of waiting forever.
- A store failure is the relay's (``relay_error``), never the provider's; an answer whose
  events cannot be stored is closed. Its readers in this worker still get every event.
- Clients that do not ask (curl, the SDK, the blog's front end) keep the plain behaviour: the
  upstream request closes as soon as they leave (:mod:`helpers.relay.app`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import Response

from ..errors import RelayFailure
from ..streams.sse import encode_event
from .answer_tail import TOUCH_EVERY, LocalAnswer, follow_local, follow_store
from .bodies import error_response
from .eventstream import EventStream
from .identity import client_identity
from .limit_kinds import RelayLimit
from .limits import Limiter
from .store import Store
from .upstream import Batch

__all__ = ["DEFAULT_GRACE", "FLUSH_EVERY", "LEASE", "TOUCH_EVERY", "WATCH_EVERY", "Answers"]

log = logging.getLogger("helpers.relay")
DEFAULT_GRACE = 30.0
#: How often a worker writes its answers' new events to the store, in one call.
FLUSH_EVERY = 0.05
#: How often a worker reads its answers' readers and stop flags from the store, in one call.
WATCH_EVERY = 0.2
#: A running answer stays in the store this long after its worker last renewed it.
LEASE = 15.0
_RENEW_EVERY = 2.0
#: How long the final flush of an answer is retried before the store is given up on.
_GIVE_UP_AFTER = 10.0
#: How long a resume or stop on another worker waits for an answer its flusher has not
#: written yet (a flush is late under load: at c = 1000 over two workers, 100 ms was not enough).
_ARRIVE_WITHIN = 3.0
#: An event number: ASCII digits only (``str.isdigit`` takes ``²``), at most 12 of them (an int64
#: overflow cut the body: issue 23).
_EVENT_NUMBER = re.compile(r"[0-9]{1,12}")


async def _released(frames: AsyncIterator[bytes],
                    release: Callable[[], Awaitable[None]]) -> AsyncIterator[bytes]:
    """``frames``, then ``release`` (a reader's stream slot) however the response ends."""
    try:
        async for frame in frames:
            yield frame
    finally:
        with anyio.CancelScope(shield=True):
            await frames.aclose()  # type: ignore[attr-defined]
            try:
                await release()
            except Exception:  # the lease expires on its own
                log.warning("giving a resume reader's stream slot back failed")


class Answers:
    """The resumable answers of one app: producers here, readers of answers anywhere.

    Args:
        store: shared with every worker that may serve a reconnect.
        grace: seconds an answer waits for its reader to come back, and stays readable after.
        failure: turns an exception into the relay's ``error`` event data.
        identify: the client a request comes from (an answer's owner).
        limiter: counts each resume as a request and holds a stream slot while it reads.
    """

    def __init__(self, store: Store, *, grace: float = DEFAULT_GRACE,
                 failure: Callable[[Exception], dict[str, Any]],
                 identify: Callable[[dict], str] = client_identity,
                 limiter: Limiter | None = None) -> None:
        self.store, self.grace, self.failure = store, grace, failure
        self.identify, self.limiter = identify, limiter
        self._local: dict[str, LocalAnswer] = {}
        self._keeper: asyncio.Task[None] | None = None

    async def respond(self, first: Batch, events: AsyncIterator[Batch],
                      owner: str = "") -> Response:
        """Start producing ``owner``'s answer whose first batch is ``first``; follow it."""
        answer = secrets.token_urlsafe(16)
        local = self._local[answer] = LocalAnswer(owner)
        loop = asyncio.get_running_loop()
        local.add(self._frames(answer, 0, first))
        local.task = loop.create_task(self._produce(answer, local, events))
        if self._keeper is None or self._keeper.done():
            self._keeper = loop.create_task(self._keep())
        return self._response(answer, 0, attached=True)

    def _response(self, answer: str, after: int, attached: bool = False,
                  release: Callable[[], Awaitable[None]] | None = None) -> Response:
        # The answer's id in a header too: a page that stops before the first event arrives
        # (the provider still thinking) can still tell the relay which answer to stop. The
        # plain answers' response: the same headers, keep-alives and hang-up handling.
        local = self._local.get(answer)
        frames = (follow_local(local, after, attached) if local is not None
                  else follow_store(self.store, answer, after))
        if release is not None:
            frames = _released(frames, release)
        return EventStream(frames, headers={"X-Relay-Answer": answer})

    @staticmethod
    def _frames(answer: str, seq: int, batch: Batch) -> list[bytes]:
        return [f"id: {answer}.{seq + i + 1}\n".encode() + encode_event(name, data)
                for i, (name, data) in enumerate(batch)]

    async def _produce(self, answer: str, local: LocalAnswer, events: AsyncIterator[Batch]) -> None:
        ending: dict[str, Any] | None = None
        try:
            with anyio.CancelScope() as local.scope:  # not a task group: errors stay bare
                async for batch in events:
                    local.add(self._frames(answer, len(local.frames), batch))
            if local.failure is not None:
                ending = self.failure(local.failure)
            elif local.why is not None:
                ending = {"type": "stopped", "message": local.why, "status": None}
        except asyncio.CancelledError:
            ending = {"type": "relay_shutdown",
                      "message": "The relay shut down before the answer finished.",
                      "status": None}
            raise
        except Exception as exc:
            ending = self.failure(exc)
        finally:
            # Nothing here may leave the answer running: its readers wait for ``done``.
            try:
                with anyio.CancelScope(shield=True):
                    await events.aclose()  # type: ignore[attr-defined]
            except Exception:
                log.exception("closing the upstream of answer %s… failed", answer[:6])
            finally:
                if ending is not None:
                    local.frames += self._frames(answer, len(local.frames),
                                                 [("error", ending)])
                local.done = True
                local.notify()

    async def _keep(self) -> None:
        """The worker's one flusher and watcher: while it has answers, every FLUSH_EVERY s
        write what they produced, every WATCH_EVERY s read who reads them and what was asked."""
        watched = renewed = 0.0
        try:
            while self._local:
                await anyio.sleep(FLUSH_EVERY)
                await self._flush()
                now = time.time()
                if now - watched >= WATCH_EVERY:
                    watched = now
                    renew = now - renewed >= _RENEW_EVERY
                    renewed = now if renew else renewed
                    await self._watch(LEASE if renew else None)
        except Exception:  # never expected: say so, and let the next answer start another
            log.exception("the resumable answers' flusher failed")
        finally:
            self._keeper = None

    async def _flush(self) -> None:
        opens, appends, finishes, parts = [], [], [], []
        for answer, local in list(self._local.items()):
            done, count = local.done, len(local.frames)
            if not local.opened:
                opens.append((answer, LEASE, local.owner))
            if count > local.flushed:
                appends.append((answer, local.flushed + 1, local.frames[local.flushed:count]))
            if done:
                finishes.append((answer, self.grace))
            if not local.opened or count > local.flushed or done:
                parts.append((answer, local, count, done))
        if not parts:
            return
        with anyio.CancelScope(shield=True):  # a batch written is a batch counted
            try:
                failed = await self.store.flush(opens, appends, finishes)
            except Exception as exc:
                failed = {answer: exc for answer, *_ in parts}
        now = time.time()
        for answer, local, count, done in parts:
            exc = failed.get(answer)
            if exc is None:
                local.opened, local.flushed, local.failing_since = True, count, None
                if done:
                    local.stored = True
                    self._local.pop(answer, None)  # its memory: readers here hold the rest
                continue
            if local.failing_since is None:
                local.failing_since = now
                log.warning("storing answer %s… failed: %s", answer[:6], type(exc).__name__)
            local.close("The relay failed while storing the answer.",
                        RelayFailure("The relay failed while storing the answer "
                                     f"({type(exc).__name__})"))
            if done and now - local.failing_since > _GIVE_UP_AFTER:
                log.error("answer %s… given up: the store keeps failing", answer[:6])
                self._local.pop(answer, None)

    async def _watch(self, lease: float | None) -> None:
        """Stop the producers asked to stop, or whose reader did not come back in time."""
        running = [a for a, local in self._local.items() if local.opened and not local.done]
        if not running:
            return
        try:
            states = await self.store.watch(running, lease)
        except Exception as exc:
            log.warning("watching the resumable answers failed: %s", type(exc).__name__)
            return
        now = time.time()
        for answer, (seen, stop) in states.items():
            local = self._local.get(answer)
            if local is None or local.done:
                continue
            if stop:
                local.close("Stopped by the client.")
            elif local.readers == 0 and now - max(seen, local.left) > self.grace:
                local.close(f"No reader came back within {self.grace:g} s; the answer was "
                            "closed.")
            else:
                continue
            log.info("resumable answer %s… closed: %s", answer[:6], local.why)

    async def _owned(self, answer: str, client: str) -> bool:
        """Whether ``client``'s answer is in the store; one a flush old may not be there yet.
        Another client's waits as long as an unknown one: the wait does not tell them apart."""
        deadline = time.monotonic() + _ARRIVE_WITHIN
        while await self.store.owner(answer) != client:
            if time.monotonic() >= deadline:
                return False
            await anyio.sleep(2 * FLUSH_EVERY)
        return True

    async def resume(self, request: Request) -> Response:
        """``GET /api/chat/resume`` with ``Last-Event-ID``: the events after it, then the rest."""
        last = request.headers.get("last-event-id", "")
        answer, _, number = last.strip().rpartition(".")
        if not answer or not _EVENT_NUMBER.fullmatch(number):
            return error_response(400, "invalid_request_error",
                                  "Resume needs a Last-Event-ID header of the form "
                                  "<answer>.<event number>, as the events' ids have it.")
        client, local = self.identify(request.scope), self._local.get(answer)
        limits = self.limiter is not None and self.limiter.limits.any
        if limits:  # a reader is a request: counted before the id is even looked up
            try:
                await self.limiter.count_request(request.scope)  # type: ignore[union-attr]
            except RelayLimit as exc:
                return exc.response()
        if (local is None or local.owner != client) and not await self._owned(answer, client):
            return error_response(404, "resume_expired",
                                  "This answer is unknown or expired: an answer is kept "
                                  f"{self.grace:g} s after its connection drops or it "
                                  "finishes. Ask again.")
        if not limits:
            return self._response(answer, int(number))
        running = (local is not None and not local.done) or (
            await self.store.read(answer, 10**12))[0] == "running"
        try:
            who, lease = await self.limiter.admit_reader(  # type: ignore[union-attr]
                request.scope, running)
        except RelayLimit as exc:
            return exc.response()

        async def release() -> None:
            await self.limiter.drop_reader(who, lease)  # type: ignore[union-attr]
        return self._response(answer, int(number), release=release)

    async def stop(self, answer: str, request: Request) -> Response:
        """``POST /api/chat/stop/{answer}``: close the answer's upstream request now."""
        client, local = self.identify(request.scope), self._local.get(answer)
        if local is not None and local.owner == client:  # here: at once, no store round trip
            local.close("Stopped by the client.")
            return Response(status_code=204)
        deadline = time.monotonic() + _ARRIVE_WITHIN  # a flush late on another worker
        while not await self.store.ask_stop(answer, client):
            if time.monotonic() > deadline:
                return error_response(404, "resume_expired", "No such answer (finished, "
                                      "expired or never started): nothing to stop.")
            await anyio.sleep(2 * FLUSH_EVERY)
        return Response(status_code=204)

    def add_routes(self, app: FastAPI) -> None:
        """Add the resume and stop routes to ``app``."""
        app.add_api_route("/api/chat/resume", self.resume, methods=["GET"])
        app.add_api_route("/api/chat/stop/{answer}", self.stop, methods=["POST"],
                          status_code=204)

    async def close(self) -> None:
        """Cancel every producer of this worker (the relay is shutting down), store the rest."""
        tasks = [local.task for local in self._local.values() if local.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
        with anyio.move_on_after(5):
            await self._flush()
