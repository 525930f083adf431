"""Per-client limits and budgets: concurrent streams, requests per minute, a max_tokens
ceiling and a daily budget, counted in the shared store so they hold across every worker.

Deliberate choices:

- **The relay's own 429s say so.** Each limit has its own error type (``relay_*_limit``,
  never the provider's ``rate_limit_reached_error``) and a message that names the relay, so a
  learner can tell "my relay refused me" from "the provider refused the relay". Retry-After is
  sent where a time is known (requests per minute: when the oldest request leaves the window;
  the budget: next midnight UTC), not for concurrent streams (it depends on your own answers).
- **A budget reserves before it spends.** Admission reserves the prompt's tokens (the offline
  provider's counting rule, :func:`helpers.money.tokens.count_prompt_tokens`) plus the answer's
  ``max_tokens`` (the client's, else the ceiling, else :data:`BUDGET_MAX_TOKENS`, sent upstream
  so the answer cannot be longer); when the answer ends the reservation is corrected to the
  usage the provider reported (or, if it reported none, the prompt plus the text relayed). So
  parallel requests cannot overshoot: the budget holds across workers, within the difference
  between the counting rule and the provider's own count.
- **Tokens and money, one guard.** A daily money budget prices the worst case and the usage
  with the lessons' own pieces (:meth:`helpers.money.budget.Budget.worst_cost`,
  :func:`helpers.money.cost.call_cost`, the price table in :mod:`helpers.providers.table`); only the
  running totals move to the shared store. A model without a price cannot have a money budget
  (a clear error at start, not a silent pass).
- **Counting never stalls the relay.** A prompt over :data:`COUNT_INLINE_CHARS` characters (files
  attached) is counted in a worker thread, at most :data:`COUNTING_AT_ONCE` at a time (the
  loop's own thread pool stays free for the store), and counting stops as soon as the prompt is
  certainly over a budget, whatever was used today: that refusal needs no exact count (issue 23:
  five 7.8 MB files counted on the loop froze every client for 13.5 s, then a 429).
- **An upload is a request** (:meth:`Limiter.count_request`): requests per minute count it too.
- **Without any limit configured the store is never touched** (the default relay's speed).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from fastapi.responses import JSONResponse
from starlette.types import Scope

from ..money.budget import Budget
from ..money.cost import call_cost
from ..money.tokens import count_prompt_tokens, count_tokens, message_text
from ..providers.table import price_of
from .bodies import error_response
from .identity import TrustedProxies, client_identity
from .store import Store
from .upstream import Batch

__all__ = ["BUDGET_MAX_TOKENS", "COUNTING_AT_ONCE", "COUNT_INLINE_CHARS", "Limiter", "Limits",
           "RelayLimit", "Ticket"]

BUDGET_MAX_TOKENS = 4096
#: A prompt up to this many characters is counted on the event loop (about 5 ms at most).
COUNT_INLINE_CHARS = 32 * 1024
#: Longer prompts counted at once in worker threads, per relay.
COUNTING_AT_ONCE = 2


@dataclass(frozen=True)
class Limits:
    """What one client may do; None: no limit.

    Args:
        concurrent_streams: answers streaming at once.
        requests_per_minute: requests in any 60 s window.
        max_tokens: the largest ``max_tokens`` a request may ask for (and the default).
        daily_tokens: tokens (prompt + answer) per UTC day.
        daily_cost: money per UTC day, in the model's price currency (helpers/providers/table.py).
        stream_lease: seconds a worker that died keeps a stream slot taken.
    """

    concurrent_streams: int | None = None
    requests_per_minute: int | None = None
    max_tokens: int | None = None
    daily_tokens: int | None = None
    daily_cost: float | None = None
    stream_lease: float = 3600.0

    @property
    def any(self) -> bool:
        """True when at least one limit is set."""
        return any(v is not None for v in (self.concurrent_streams, self.requests_per_minute,
                                           self.max_tokens, self.daily_tokens,
                                           self.daily_cost))


class RelayLimit(Exception):
    """A request the relay itself refuses (429), with the limit's own type and message."""

    def __init__(self, kind: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind, self.message, self.retry_after = kind, message, retry_after

    def response(self) -> JSONResponse:
        """The 429 in the relay's error shape, with Retry-After when a time is known."""
        headers = {} if self.retry_after is None else {
            "Retry-After": str(max(1, int(self.retry_after + 0.999)))}
        return error_response(429, self.kind, self.message, headers)


def _seconds_to_midnight(now: dt.datetime) -> float:
    tomorrow = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (tomorrow - now).total_seconds()


class Ticket:
    """An admitted request: its ``max_tokens``, and what it holds until its answer ends."""

    def __init__(self, limiter: Limiter | None = None, client: str = "", lease: str | None = None,
                 day: str = "", max_tokens: int | None = None) -> None:
        self.limiter, self.client, self.lease, self.day = limiter, client, lease, day
        self.max_tokens, self.prompt = max_tokens, 0
        self.reserved: dict[str, float] = {}  # budget key ("tokens", "money") -> reserved

    async def metered(self, batches: AsyncIterator[Batch]) -> AsyncIterator[Batch]:
        """Pass ``batches`` through; when they end, settle the budget and free the slot."""
        if self.limiter is None:
            async for batch in batches:
                yield batch
            return
        usage: dict[str, Any] | None = None
        relayed = 0
        try:
            async for batch in batches:
                for name, data in batch:
                    if name == "usage":
                        usage = data
                    elif name in ("delta", "reasoning"):
                        relayed += count_tokens(data["content"])
                yield batch
        finally:
            with anyio.CancelScope(shield=True):
                await batches.aclose()  # type: ignore[attr-defined]
                await self.limiter.settle(self, usage, relayed)


class Limiter:
    """Admit or refuse requests by :class:`Limits`, counting in a shared :class:`Store`."""

    def __init__(self, limits: Limits, store: Store, trusted: TrustedProxies | None = None,
                 model: str = "") -> None:
        self.limits, self.store, self.trusted, self.model = limits, store, trusted, model
        if limits.daily_cost is not None and price_of(model) is None:
            raise ValueError(f"a money budget needs a price: {model!r} has none in "
                             "helpers/providers/table.py (use a token budget, or add its price)")
        self._counting = anyio.CapacityLimiter(COUNTING_AT_ONCE)

    def client(self, scope: Scope) -> str:
        """Return the identity limits are counted by (:func:`client_identity`)."""
        return client_identity(scope, self.trusted)

    def charge(self, usage: dict[str, Any]) -> dict[str, float]:
        """Turn a usage report into what each budget counts: tokens and money."""
        cost = call_cost(usage, self.model) if self.limits.daily_cost is not None else None
        return {"tokens": float(usage.get("total_tokens") or 0),
                "money": cost.total if cost is not None else 0.0}

    def worst(self, prompt: int, answer: int) -> dict[str, float]:
        """What a request may cost at most, for each budget that is set."""
        out = {}
        if self.limits.daily_tokens is not None:
            out["tokens"] = float(prompt + answer)
        if self.limits.daily_cost is not None:
            out["money"] = Budget(self.model).worst_cost(prompt, answer) or 0.0
        return out

    async def count_request(self, scope: Scope, client: str | None = None) -> None:
        """Count one request against requests per minute, or raise :class:`RelayLimit`."""
        limits = self.limits
        if limits.requests_per_minute is None:
            return
        wait = await self.store.hit(client or self.client(scope), limits.requests_per_minute,
                                    60.0)
        if wait is not None:
            raise RelayLimit("relay_rate_limit",
                             f"This relay allows {limits.requests_per_minute} requests per "
                             f"minute per client; try again in {wait:.0f} s (a limit of "
                             "the relay, not of the provider).", wait)

    def _most_prompt(self, answer: int) -> tuple[str, int] | None:
        """The budget a prompt over N tokens certainly exceeds with ``answer``: (key, N)."""
        bounds = {}
        if self.limits.daily_tokens is not None:
            bounds["tokens"] = self.limits.daily_tokens - answer
        if self.limits.daily_cost is not None:
            budget = Budget(self.model)  # a linear price: fixed part + per prompt token
            per_token, fixed = budget.worst_cost(1, 0) or 0.0, budget.worst_cost(0, answer) or 0.0
            if per_token > 0:
                bounds["money"] = int((self.limits.daily_cost - fixed) / per_token) + 1
        return min(bounds.items(), key=lambda kv: kv[1]) if bounds else None

    async def _count_prompt(self, messages: list[dict], stop: int | None = None) -> int:
        """Count a prompt's tokens (up to ``stop`` + 1), in a worker thread when it is long."""
        if sum(len(message_text(m)) for m in messages) <= COUNT_INLINE_CHARS:
            return count_prompt_tokens(messages, stop)
        return await anyio.to_thread.run_sync(count_prompt_tokens, messages, stop,
                                              limiter=self._counting)

    async def admit(self, scope: Scope, messages: list[dict],
                    max_tokens: int | None = None) -> Ticket:
        """Admit one request or raise :class:`RelayLimit`; end the ticket's batches after."""
        limits = self.limits
        if limits.max_tokens is not None and max_tokens is not None \
                and max_tokens > limits.max_tokens:
            raise RelayLimit("relay_max_tokens_limit",
                             f"This relay allows at most max_tokens={limits.max_tokens} per "
                             f"request; you asked for {max_tokens} (a limit of the relay, "
                             "not of the provider).")
        max_tokens = max_tokens or limits.max_tokens
        if not limits.any:
            return Ticket(max_tokens=max_tokens)
        client = self.client(scope)
        await self.count_request(scope, client)
        lease = None
        if limits.concurrent_streams is not None:
            lease = uuid.uuid4().hex
            if not await self.store.take_stream(client, lease, limits.concurrent_streams,
                                                limits.stream_lease):
                raise RelayLimit("relay_concurrency_limit",
                                 f"This relay streams at most {limits.concurrent_streams} "
                                 "answers at once per client; wait for one to finish (a limit "
                                 "of the relay, not of the provider).")
        now = dt.datetime.now(dt.UTC)
        ticket = Ticket(self, client, lease, now.date().isoformat(), max_tokens=max_tokens)
        if limits.daily_tokens is not None or limits.daily_cost is not None:
            ticket.max_tokens = max_tokens = max_tokens or BUDGET_MAX_TOKENS
            most = self._most_prompt(max_tokens)
            ticket.prompt = await self._count_prompt(messages, most and max(most[1], 0))
            if most is not None and ticket.prompt > most[1]:
                await self.settle(ticket, None, 0)  # free the stream slot
                raise self._over_budget(most[0], now, None, None)
            for key, amount in self.worst(ticket.prompt, max_tokens).items():
                budget = limits.daily_tokens if key == "tokens" else limits.daily_cost
                used = await self.store.reserve(client, f"{ticket.day}:{key}", amount,
                                                float(budget or 0))
                if used is not None:
                    await self.settle(ticket, None, 0)  # give back what was reserved
                    raise self._over_budget(key, now, used, amount)
                ticket.reserved[key] = amount
        return ticket

    def _over_budget(self, key: str, now: dt.datetime, used: float | None,
                     amount: float | None) -> RelayLimit:
        budget = self.limits.daily_tokens if key == "tokens" else self.limits.daily_cost
        unit = "tokens" if key == "tokens" else getattr(price_of(self.model), "currency", "")
        need = ("this request alone may need more (its prompt was not counted to the end)"
                if used is None else
                f"{used:.6g} are used and this request may need {amount:.6g}")
        return RelayLimit("relay_budget_limit",
                          f"This client's daily budget on this relay is {budget:g} {unit}; "
                          f"{need}. It renews at midnight UTC (a limit of the relay, not of "
                          "the provider).", _seconds_to_midnight(now))

    async def settle(self, ticket: Ticket, usage: dict[str, Any] | None, relayed: int) -> None:
        """Correct the reservation to what was used, and free the stream slot."""
        if ticket.reserved:
            if usage is None and relayed:  # cut short: the prompt and what was relayed
                usage = {"prompt_tokens": ticket.prompt, "completion_tokens": relayed,
                         "total_tokens": ticket.prompt + relayed}
            spent = self.charge(usage) if usage else {}
            for key, reserved in ticket.reserved.items():
                if spent.get(key, 0.0) != reserved:
                    await self.store.adjust(ticket.client, f"{ticket.day}:{key}",
                                            spent.get(key, 0.0) - reserved)
            ticket.reserved = {}
        await self._free(ticket)

    async def _free(self, ticket: Ticket) -> None:
        if ticket.lease is not None:
            await self.store.drop_stream(ticket.client, ticket.lease)
            ticket.lease = None

    async def used(self, client: str, key: str = "tokens", day: str | None = None) -> float:
        """Return what ``client`` used on ``day`` (default: today, UTC): tokens or money."""
        day = day or dt.datetime.now(dt.UTC).date().isoformat()
        return await self.store.used(client, f"{day}:{key}")
