"""The hold gate: streams wait before their final chunk until someone releases them.

``[hold]`` in a question holds that one stream until the next release; :meth:`HoldGate.hold`
holds every stream until the gate opens again. Tests and lessons use it to catch a stream in
the middle, deterministically.

Deliberate choice: a waiting stream awaits a future that :meth:`HoldGate.release` resolves
through the server's loop. Polling instead costs every held stream a timer wake-up (1000 held
streams starved the whole process of the GIL).
"""

from __future__ import annotations

import asyncio
import threading

from .counters import Counters

__all__ = ["HoldGate"]


class HoldGate:
    """Hold streams before their final chunk until :meth:`release`."""

    def __init__(self, counters: Counters) -> None:
        self._counters = counters
        self._open = threading.Event()
        self._open.set()
        self._releases = 0
        self._loop: asyncio.AbstractEventLoop | None = None  # the server's, once one waits
        self._waiters: list[asyncio.Future[None]] = []  # held streams (touched on that loop)

    @property
    def closed(self) -> bool:
        """True while :meth:`hold` holds every stream."""
        return not self._open.is_set()

    def hold(self) -> None:
        """Make every stream wait before its final chunk until :meth:`release`."""
        self._open.clear()

    def release(self) -> None:
        """Let held streams finish (callable from any thread)."""
        self._releases += 1
        self._open.set()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._wake_waiters)
            except RuntimeError:  # the loop closed meanwhile: nobody is waiting
                pass

    async def wait(self, marked: bool) -> None:
        """Wait until released: a ``[hold]`` stream (``marked``) for a release after now."""
        seen = self._releases
        self._loop = asyncio.get_running_loop()
        self._counters.add("held")
        try:
            while (marked and self._releases == seen) or self.closed:
                waiter = self._loop.create_future()
                self._waiters.append(waiter)
                if not ((marked and self._releases == seen) or self.closed):
                    break  # released between the check and the registration
                await waiter
        finally:
            self._counters.add("held", -1)

    def _wake_waiters(self) -> None:
        """Resolve every waiting stream's future (runs on the server's loop)."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
