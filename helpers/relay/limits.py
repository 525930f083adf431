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
- **Without any limit configured the store is never touched** (the default relay's speed).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
from fastapi.responses import JSONResponse
from starlette.types import Scope

from ..money.budget import Budget
from ..money.cost import call_cost
from ..money.tokens import count_prompt_tokens, count_tokens
from ..providers.table import price_of
from .bodies import error_response
from .identity import TrustedProxies, client_identity
from .store import Store
from .upstream import Batch

__all__ = ["BUDGET_MAX_TOKENS", "Limiter", "Limits", "RelayLimit", "Ticket"]

BUDGET_MAX_TOKENS = 4096


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
        if limits.requests_per_minute is not None:
            wait = await self.store.hit(client, limits.requests_per_minute, 60.0)
            if wait is not None:
                raise RelayLimit("relay_rate_limit",
                                 f"This relay allows {limits.requests_per_minute} requests per "
                                 f"minute per client; try again in {wait:.0f} s (a limit of "
                                 "the relay, not of the provider).", wait)
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
            ticket.prompt = count_prompt_tokens(messages)
            for key, amount in self.worst(ticket.prompt, max_tokens).items():
                budget = limits.daily_tokens if key == "tokens" else limits.daily_cost
                used = await self.store.reserve(client, f"{ticket.day}:{key}", amount,
                                                float(budget or 0))
                if used is not None:
                    await self.settle(ticket, None, 0)  # give back what was reserved
                    unit = ("tokens" if key == "tokens"
                            else getattr(price_of(self.model), "currency", ""))
                    raise RelayLimit("relay_budget_limit",
                                     f"This client's daily budget on this relay is {budget:g} "
                                     f"{unit}; {used:.6g} are used and this request may need "
                                     f"{amount:.6g}. It renews at midnight UTC (a limit of the "
                                     "relay, not of the provider).", _seconds_to_midnight(now))
                ticket.reserved[key] = amount
        return ticket

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
