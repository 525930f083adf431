"""A streaming ASGI response that notices a client leaving, even while the stream is idle.

Deliberate choice: our own small response instead of Starlette's ``StreamingResponse``. It
watches for ``http.disconnect`` while it writes, so a client that leaves is noticed even during
a stall or a hold, and it records in the counters exactly how far each stream got and how it
ended ("completed", "fault", "cut", "disconnected"), whether the client asked for usage
(``include_usage``: what a relay in front of it asked for), and the ``usage`` it reports.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import anyio

from ..money.labels import OFFLINE_HEADER
from .counters import Counters
from .errors import DeliberateCut
from .plan import STREAM_FAULTS, Plan

__all__ = ["ChunkStream"]


class ChunkStream:
    """A streaming ASGI response that notices a client leaving, even while idle."""

    def __init__(self, counters: Counters, events: AsyncIterator[tuple[str, bytes]],
                 *, planned: int, plan: Plan, usage: dict | None = None) -> None:
        self.counters = counters
        self.events = events
        self.planned = planned
        self.plan = plan
        self.usage = usage
        self.status_code = 200

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        counters = self.counters
        counters.add("streams")
        counters.add("open_streams")
        record = {"model": self.plan.model, "planned": self.planned, "sent": 0,
                  "outcome": "open", "include_usage": self.plan.include_usage, "usage": self.usage}
        with counters.lock:
            counters.recent.append(record)
        outcome = "disconnected"
        settled = False

        def settle(final: str) -> None:
            nonlocal settled
            if settled:
                return
            settled = True
            record["outcome"] = final
            counters.add("open_streams", -1)
            if final == "completed":
                counters.add("completed")
            elif final == "disconnected":
                counters.add("disconnects")

        try:
            async with anyio.create_task_group() as tg:
                async def watch() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    tg.cancel_scope.cancel()

                async def produce() -> None:
                    nonlocal outcome
                    await send({"type": "http.response.start", "status": 200, "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-cache"),
                        (b"x-accel-buffering", b"no"),
                        # Its usage is the offline rule's, not a bill (money/labels.py).
                        (OFFLINE_HEADER.encode(), b"token counts by helpers/money/tokens.py"),
                    ]})
                    try:
                        async for kind, data in self.events:
                            await send({"type": "http.response.body", "body": data,
                                        "more_body": True})
                            if kind == "chunk":
                                record["sent"] += 1
                                counters.add("chunks_sent")
                        outcome = "fault" if self.plan.fault in STREAM_FAULTS else "completed"
                        # Count before the last byte goes out: a client that has the whole
                        # answer must already see it counted (no race with the next test).
                        settle(outcome)
                        await send({"type": "http.response.body", "body": b"",
                                    "more_body": False})
                    except DeliberateCut:
                        outcome = "cut"
                    except OSError:
                        outcome = "disconnected"
                    tg.cancel_scope.cancel()

                tg.start_soon(watch)
                tg.start_soon(produce)
            if outcome == "cut":
                raise DeliberateCut()  # uvicorn drops the connection without an end
        finally:
            settle(outcome)
            aclose = getattr(self.events, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()
