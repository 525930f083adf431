"""What every worker of a relay shares, as one interface: limit counters and the answer log.

Two stores implement it: :class:`~.sqlite.SQLiteStore`, one file on this machine (the default;
several worker processes share it), and :class:`~.redis.RedisStore` for relays on several
machines. :func:`helpers.relay.store.open_store` picks one from a URL.

Deliberate choices:

- **Every check-and-count is one atomic step** (SQLite: a transaction; Redis: a Lua script),
  so two workers can never both take the last slot of a limit.
- **Wall-clock time** (``time.time()``): the only clock several processes and machines share.
- **A stream slot is a lease with an expiry,** not a bare counter: a worker that dies holding
  slots gives them back when the lease expires, not never.
- **An answer's events are rows** (``seq``, bytes) a reader on any worker fetches after the
  last ``seq`` it has; the answer's state (running, finished, stop asked) sits beside them and is
  read *first*, so a reader that sees "finished" also sees every event.
- **Batches for the producers' worker:** :meth:`AnswerLog.flush` writes what every answer of a
  worker produced since the last flush in one call, :meth:`AnswerLog.watch` reads their readers
  and stop flags (and renews their leases) in one call (issue 22: one store call per batch of
  every answer cost the resumable route 4-5 x the floor). The defaults here call the single
  operations one by one; a store does them in one transaction or pipeline.
"""

from __future__ import annotations

__all__ = ["AnswerLog", "LimitCounters", "Store", "UsageRecords"]

#: Days of usage records a store keeps (the usage view reads today's).
USAGE_DAYS = 31


class LimitCounters:
    """What the limits (:mod:`helpers.relay.limits`) count: stream leases, requests per window,
    the day's budget use."""

    async def take_stream(self, client: str, lease: str, limit: int, ttl: float) -> bool:
        """Take one of ``client``'s ``limit`` stream slots as ``lease``; False if none is free."""
        raise NotImplementedError

    async def drop_stream(self, client: str, lease: str) -> None:
        """Give a stream slot back."""
        raise NotImplementedError

    async def hit(self, client: str, limit: int, window: float) -> float | None:
        """Count one request; None if within ``limit`` per ``window`` s, else seconds to wait."""
        raise NotImplementedError

    async def reserve(self, client: str, day: str, amount: float, budget: float) -> float | None:
        """Add ``amount`` to the day's use if it stays within ``budget``: None, else the use."""
        raise NotImplementedError

    async def adjust(self, client: str, day: str, delta: float) -> None:
        """Correct the day's use by ``delta`` (a reservation settled to what was used)."""
        raise NotImplementedError

    async def used(self, client: str, day: str) -> float:
        """Return what ``client`` used on ``day``."""
        raise NotImplementedError


class AnswerLog:
    """What resumable answers (:mod:`helpers.relay.resume`) keep: each answer's state and
    numbered events, read by any worker."""

    async def open_answer(self, answer: str, ttl: float, owner: str = "") -> None:
        """Register ``owner``'s running answer (kept at most ``ttl`` s if nobody finishes it)."""
        raise NotImplementedError

    async def append(self, answer: str, seq: int, events: list[bytes]) -> None:
        """Store ``events`` of ``answer``, numbered from ``seq`` (1, 2, ...)."""
        raise NotImplementedError

    async def finish(self, answer: str, keep: float) -> None:
        """Mark ``answer`` finished; its events stay readable ``keep`` more seconds."""
        raise NotImplementedError

    async def read(self, answer: str, after: int) -> tuple[str | None, list[tuple[int, bytes]]]:
        """Return (state, events after ``after``); state None: unknown or expired."""
        raise NotImplementedError

    async def owner(self, answer: str) -> str | None:
        """Return the identity of the client whose answer it is; None: unknown or expired."""
        raise NotImplementedError

    async def touch(self, answer: str) -> None:
        """Note that a reader is attached to ``answer`` now."""
        raise NotImplementedError

    async def seen(self, answer: str) -> tuple[float, bool]:
        """Return (when a reader was last attached, whether a stop was asked)."""
        raise NotImplementedError

    async def ask_stop(self, answer: str, owner: str | None = None) -> bool:
        """Ask the worker producing ``answer`` to stop; False if there is no such answer (or,
        given ``owner``, it is not that client's)."""
        raise NotImplementedError

    async def flush(self, opens: list[tuple[str, float, str]],
                    appends: list[tuple[str, int, list[bytes]]],
                    finishes: list[tuple[str, float]]) -> dict[str, Exception]:
        """Open, append to and finish many answers at once (in that order); return the answers
        whose writes failed, with why (an answer whose part failed is retried whole)."""
        failed: dict[str, Exception] = {}
        steps = ([(a, self.open_answer, (a, ttl, owner)) for a, ttl, owner in opens]
                 + [(a, self.append, (a, seq, events)) for a, seq, events in appends]
                 + [(a, self.finish, (a, keep)) for a, keep in finishes])
        for answer, step, args in steps:
            if answer not in failed:
                try:
                    await step(*args)  # type: ignore[operator]
                except Exception as exc:
                    failed[answer] = exc
        return failed

    async def watch(self, answers: list[str], lease: float | None = None
                    ) -> dict[str, tuple[float, bool]]:
        """:meth:`seen` of many answers; with ``lease``, keep running ones ``lease`` s more."""
        return {answer: await self.seen(answer) for answer in answers}


class UsageRecords:
    """What the teacher's usage view reads (:mod:`helpers.relay.usage`): per client and day,
    named counts (``requests``, ``total_tokens``, ``cost``, ``refused:<kind>``...) and
    ``last``, the time of the last activity (kept as the latest, not summed); kept
    :data:`USAGE_DAYS` days."""

    async def add_usage(self, client: str, day: str, counts: dict[str, float]) -> None:
        """Add ``counts`` to ``client``'s record of ``day`` (``last``: the later one stays)."""
        raise NotImplementedError

    async def usage(self, day: str) -> dict[str, dict[str, float]]:
        """Return every client's record of ``day``: ``{client: {name: value}}``."""
        raise NotImplementedError


class Store(LimitCounters, AnswerLog, UsageRecords):
    """All three, in one place every worker reaches: what
    :func:`~helpers.relay.store.open_store` returns."""

    url: str

    async def close(self) -> None:
        """Release connections (and a temporary file)."""
