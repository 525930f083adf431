"""The relay's ``text/event-stream`` response: Starlette's streaming response, kept alive.

Deliberate choices (measured in docs/performance.md):

- **Starlette's StreamingResponse contract,** not sse-starlette's ``EventSourceResponse``
  on the hot route: that one starts four tasks per response (the stream, pings, the
  disconnect listener, a server-exit listener) and opens a cancel scope around every write.
  This one streams in the request's own task while one more waits for ``http.disconnect``,
  so a client that leaves still cancels the stream, and with it the provider's request; in
  plain asyncio, as an anyio task group's cancellation formats a task's repr each time.
- **A keep-alive comment only after silence,** from a timer rather than a task: after
  ``ping`` seconds without a write (a reasoning model thinking, a provider queueing), one
  ``: ping`` comment keeps proxies from closing the connection; a stream that keeps
  writing never sees one. The comment is a message of its own, written whole between the
  stream's (as uvicorn writes every ASGI message), never after the end.
- **The last event ends the response in the same write** (:class:`Last`): uvicorn writes a
  body that has ``more_body=False`` together with the chunked encoding's end.
- **sse-starlette's headers:** ``Cache-Control: no-store``, ``X-Accel-Buffering: no``
  (nginx streams it), ``Connection: keep-alive``.
- **One response for every answer:** a plain answer streams :func:`answer_frames` (its events
  as they come); a resumable one streams its frames from the store (:mod:`.resume`). Both
  are an ``EventStream``, so the headers, keep-alives and hang-up handling are the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from typing import Any

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ..streams.sse import encode_comment, encode_event
from .chunkreader import Batch

__all__ = ["PING_SECONDS", "EventStream", "Last", "answer_frames"]

#: Seconds of silence before a keep-alive comment (sse-starlette's default too).
PING_SECONDS = 15.0
_PING = encode_comment("ping")
#: ASGI versions whose server says nothing when a client leaves mid-response (uvicorn speaks
#: 2.3), so the response must wait for ``http.disconnect``; 2.4 raises on the next write.
_NEEDS_LISTENER = frozenset({"2.0", "2.1", "2.2", "2.3"})


class Last(bytes):
    """A body's last item (the ``done`` or ``error`` event): written together with the end of
    the response, one write instead of two. The body must end after it."""

    __slots__ = ()


class EventStream(StreamingResponse):
    """Stream already-encoded SSE bytes, one write per item; keep-alive comments when silent."""

    media_type = "text/event-stream"

    def __init__(self, content: AsyncIterable[bytes], *, ping: float = PING_SECONDS,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(content, headers={"Cache-Control": "no-store",
                                           "Connection": "keep-alive",
                                           "X-Accel-Buffering": "no", **(headers or {})})
        self.ping = ping
        self._last = 0.0  # loop time of the last write
        self._open = False  # between the headers and the end of the body
        self._pinging: set[asyncio.Task] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._left = False  # the client left before the response was complete
        self._complete = False  # the end of the response has been sent

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stream in this task while another waits for ``http.disconnect`` and, when it comes,
        cancels this one (Starlette's contract, in plain asyncio and one extra task)."""
        if scope.get("asgi", {}).get("spec_version", "2.0") not in _NEEDS_LISTENER:
            await super().__call__(scope, receive, send)
            return
        this = asyncio.current_task()
        assert this is not None
        gone = asyncio.get_running_loop().create_task(self._watch(receive, this))
        try:  # every await of this task in here: a cancel from the watcher lands inside
            await self.stream_response(send)
        except asyncio.CancelledError:
            # ours when the client left, unless someone else cancelled too (the server stopping)
            if not self._left or this.uncancel() > 0:
                raise
        finally:
            gone.cancel()
        if self.background is not None:
            await self.background()

    async def _watch(self, receive: Receive, stream: asyncio.Task) -> None:
        """Wait for the client to leave, then cancel the streaming task; not once the response
        is complete (uvicorn then answers ``http.disconnect`` at once, while the body may still
        be finishing: its clean-up closes the upstream and settles the client's limits)."""
        while (await receive())["type"] != "http.disconnect":
            pass
        if not self._complete:
            self._left = True
            stream.cancel()

    async def stream_response(self, send: Send) -> None:
        """Send the headers, every item of the body as it comes, then the end."""
        loop = asyncio.get_running_loop()
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        self._open, self._last = True, loop.time()
        if self.ping > 0:
            self._timer = loop.call_later(self.ping, self._idle, loop, send)
        ended = False
        try:
            async for chunk in self.body_iterator:
                if ended:
                    continue  # nothing may follow the end; let the body finish (its clean-up)
                if type(chunk) is Last:
                    self._open = False  # no keep-alive after it
                    self._complete = ended = True
                    await send({"type": "http.response.body", "body": bytes(chunk),
                                "more_body": False})
                    continue
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                self._last = loop.time()
        finally:
            self._open = False
            if self._timer is not None:
                self._timer.cancel()
            # a cancel that landed in a write, not in the body: close the body now (its
            # clean-up closes the upstream), not when the collector finds it
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                await aclose()
        if not ended:
            self._complete = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _idle(self, loop: asyncio.AbstractEventLoop, send: Send) -> None:
        """Timer: after ``ping`` seconds without a write, send one comment; check again."""
        if not self._open:
            return
        quiet = loop.time() - self._last
        if quiet >= self.ping and not self._pinging:
            self._last = loop.time()
            task = loop.create_task(self._send_ping(send))
            self._pinging.add(task)
            task.add_done_callback(self._pinging.discard)
            quiet = 0.0
        self._timer = loop.call_later(self.ping - quiet, self._idle, loop, send)

    async def _send_ping(self, send: Send) -> None:
        try:
            if self._open:
                await send({"type": "http.response.body", "body": _PING, "more_body": True})
        except Exception:  # the stream's own write reports a broken connection
            pass


def _frames(batch: Batch) -> bytes:
    data = b"".join(encode_event(name, data) for name, data in batch)
    return Last(data) if batch and batch[-1][0] == "done" else data  # ends with it


async def answer_frames(first: Batch, events: AsyncIterator[Batch],
                        failure: Callable[[Exception], dict[str, Any]]) -> AsyncIterator[bytes]:
    """An answer's SSE bytes, one item per batch, from ``first`` on; the last one a :class:`Last`.

    A failure after ``first`` becomes one ``error`` event (``failure(exc)`` is its data).
    Closing this closes ``events`` (shielded: a cancelled task must still hang up upstream).
    """
    try:
        yield _frames(first)
        async for batch in events:  # one write per upstream read
            yield _frames(batch)
            await asyncio.sleep(0)  # notice a hang-up while the provider's bytes are waiting
    except Exception as exc:
        yield Last(encode_event("error", failure(exc)))
    finally:
        with anyio.CancelScope(shield=True):
            await events.aclose()  # type: ignore[attr-defined]
