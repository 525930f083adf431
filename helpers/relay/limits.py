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
- **A tool loop reserves every round** (issue 23: eight parallel calculator questions on a
  1,500-token budget each reserved 66 tokens and used 477, 3,816 in all). Tool definitions are
  prompt a provider bills (counted as the offline provider counts them,
  :func:`tools_tokens`), and each round is another request: before each one is sent,
  :meth:`Ticket.reserve_round` reserves its prompt (all messages so far + tools) plus
  ``max_tokens``, and :meth:`Ticket.round_ended` corrects that round to its usage. The first
  round is reserved at admission (a refusal is the 429), a later one between rounds (a refusal
  is an ``error`` event of the same type, :mod:`helpers.relay.toolstream`).
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
- **A resume reader is a request and a stream** (:meth:`Limiter.admit_reader`; issue 23: 30
  readers of one answer all got 200 under ``--max-streams 1``). Its lease is its own, held
  while its response lasts; a *running* answer's producer holds a slot with no connection, so
  while the answer runs its reader may use a second slot (up to twice the limit in all): the
  page's reconnect after a dropped connection still works under ``--max-streams 1``.
- **Without any limit configured the store is never touched** (the default relay's speed).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio
import anyio.to_thread
from starlette.types import Scope

from ..errors import RelayFailure
from ..money.budget import Budget
from ..money.cost import call_cost
from ..money.tokens import count_prompt_tokens, count_tokens, message_text
from ..providers.table import price_of
from .identity import TrustedProxies, client_identity
from .limit_kinds import Limits, RelayLimit
from .store import Store
from .upstream import Batch

__all__ = ["BUDGET_MAX_TOKENS", "COUNTING_AT_ONCE", "COUNT_INLINE_CHARS", "Limiter", "Limits",
           "RelayLimit", "Ticket", "tools_tokens"]

BUDGET_MAX_TOKENS = 4096
#: A prompt up to this many characters is counted on the event loop (about 5 ms at most).
COUNT_INLINE_CHARS = 32 * 1024
#: Longer prompts counted at once in worker threads, per relay.
COUNTING_AT_ONCE = 2


def tools_tokens(specs: Sequence[dict]) -> int:
    """Count what tool definitions add to a prompt, by the offline provider's rule."""
    return count_prompt_tokens([{"content": json.dumps(list(specs))}]) if specs else 0


def _seconds_to_midnight(now: dt.datetime) -> float:
    tomorrow = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (tomorrow - now).total_seconds()


class Ticket:
    """An admitted request: its ``max_tokens``, and what it holds until its answer ends."""

    def __init__(self, limiter: Limiter | None = None, client: str = "", lease: str | None = None,
                 day: str = "", max_tokens: int | None = None) -> None:
        self.limiter, self.client, self.lease, self.day = limiter, client, lease, day
        self.max_tokens, self.prompt = max_tokens, 0  # prompt: of the round in flight
        self.reserved: dict[str, float] = {}  # budget key ("tokens", "money") -> reserved
        self.round: dict[str, float] = {}  # of that, the round in flight's reservation
        self.spent: dict[str, float] = {}  # of that, the usage of rounds already ended

    async def reserve_round(self, messages: list[dict], tools: Sequence[dict] = ()) -> None:
        """Reserve the next request of a tool loop (prompt + tools + answer), or raise."""
        limits = self.limiter.limits if self.limiter is not None else None
        if limits is not None and (limits.daily_tokens, limits.daily_cost) != (None, None):
            await self.limiter.reserve(self, messages, tools)  # type: ignore[union-attr]

    async def round_ended(self, usage: dict[str, Any] | None) -> None:
        """Correct the round in flight's reservation to its reported usage."""
        if self.limiter is None or not self.round or not usage:
            return
        spent = self.limiter.charge(usage)
        for key, reserved in self.round.items():
            delta = spent.get(key, 0.0) - reserved
            if delta:
                await self.limiter.store.adjust(self.client, f"{self.day}:{key}", delta)
            self.reserved[key] += delta
            self.spent[key] = self.spent.get(key, 0.0) + spent.get(key, 0.0)
        self.round, self.prompt = {}, 0

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

    def _most_prompt(self, answer: int, extra: int = 0) -> tuple[str, int] | None:
        """The budget a prompt over N tokens (+ ``extra``) exceeds with ``answer``: (key, N)."""
        bounds = {}
        if self.limits.daily_tokens is not None:
            bounds["tokens"] = self.limits.daily_tokens - answer - extra
        if self.limits.daily_cost is not None:
            budget = Budget(self.model)  # a linear price: fixed part + per prompt token
            per_token = budget.worst_cost(1, 0) or 0.0
            fixed = budget.worst_cost(extra, answer) or 0.0
            if per_token > 0:
                bounds["money"] = int((self.limits.daily_cost - fixed) / per_token) + 1
        return min(bounds.items(), key=lambda kv: kv[1]) if bounds else None

    async def _count_prompt(self, messages: list[dict], stop: int | None = None) -> int:
        """Count a prompt's tokens (up to ``stop`` + 1), in a worker thread when it is long."""
        if sum(len(message_text(m)) for m in messages) <= COUNT_INLINE_CHARS:
            return count_prompt_tokens(messages, stop)
        return await anyio.to_thread.run_sync(count_prompt_tokens, messages, stop,
                                              limiter=self._counting)

    async def admit_reader(self, scope: Scope, running: bool) -> tuple[str, str | None]:
        """Admit a resume reader (already counted by :meth:`count_request`) or raise
        :class:`RelayLimit`: (client, its lease or None); give the lease back with
        :meth:`drop_reader` when its response ends."""
        limits = self.limits
        client = self.client(scope)
        if limits.concurrent_streams is None:
            return client, None
        lease = uuid.uuid4().hex
        if not await self.store.take_stream(client, lease, limits.concurrent_streams
                                            * (2 if running else 1), limits.stream_lease):
            raise RelayLimit("relay_concurrency_limit",
                             f"This relay streams at most {limits.concurrent_streams} "
                             "answers at once per client (a resumed one too); wait for one to "
                             "finish (a limit of the relay, not of the provider).")
        return client, lease

    async def drop_reader(self, client: str, lease: str | None) -> None:
        """Give a resume reader's stream slot back."""
        if lease is not None:
            await self.store.drop_stream(client, lease)

    async def admit(self, scope: Scope, messages: list[dict], max_tokens: int | None = None,
                    tools: Sequence[dict] = ()) -> Ticket:
        """Admit one request or raise :class:`RelayLimit`; end the ticket's batches after.

        ``tools``: the definitions sent with it (a tool loop's first round; its later rounds
        are :meth:`Ticket.reserve_round`).
        """
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
        try:
            return await self._admit(scope, messages, max_tokens, tools)
        except (RelayLimit, RelayFailure):
            raise
        except Exception as exc:  # the relay's store, not the provider (issue 22.4b)
            raise RelayFailure("The relay's store failed while admitting the request "
                               f"({type(exc).__name__})") from exc

    async def _admit(self, scope: Scope, messages: list[dict], max_tokens: int | None,
                     tools: Sequence[dict]) -> Ticket:
        limits = self.limits
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
            ticket.max_tokens = max_tokens or BUDGET_MAX_TOKENS
            try:
                await self.reserve(ticket, messages, tools)
            except RelayLimit:
                await self.settle(ticket, None, 0)  # free the stream slot
                raise
        return ticket

    async def reserve(self, ticket: Ticket, messages: list[dict],
                      tools: Sequence[dict] = ()) -> None:
        """Reserve one request's worst case (prompt + tools + max_tokens) or raise."""
        now = dt.datetime.now(dt.UTC)
        answer = ticket.max_tokens or BUDGET_MAX_TOKENS
        extra = tools_tokens(tools)
        most = self._most_prompt(answer, extra)
        prompt = await self._count_prompt(messages, most and max(most[1], 0)) + extra
        if most is not None and prompt - extra > most[1]:
            raise self._over_budget(most[0], now, None, None)
        taken: dict[str, float] = {}
        for key, amount in self.worst(prompt, answer).items():
            budget = self.limits.daily_tokens if key == "tokens" else self.limits.daily_cost
            used = await self.store.reserve(ticket.client, f"{ticket.day}:{key}", amount,
                                            float(budget or 0))
            if used is not None:
                for k, back in taken.items():  # give back this round's part
                    await self.store.adjust(ticket.client, f"{ticket.day}:{k}", -back)
                raise self._over_budget(key, now, used, amount)
            taken[key] = amount
        for key, amount in taken.items():
            ticket.reserved[key] = ticket.reserved.get(key, 0.0) + amount
        ticket.round, ticket.prompt = taken, prompt

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
        try:
            await self._settle(ticket, usage, relayed)
        except Exception as exc:  # the relay's store, not the provider (issue 22.4b)
            raise RelayFailure("The relay's store failed while settling the request "
                               f"({type(exc).__name__})") from exc

    async def _settle(self, ticket: Ticket, usage: dict[str, Any] | None, relayed: int) -> None:
        if ticket.reserved:
            if usage is not None:
                spent = self.charge(usage)
            else:  # cut short: rounds that ended, the prompt in flight and what was relayed
                spent = dict(ticket.spent)
                if relayed:
                    cut = self.charge({"prompt_tokens": ticket.prompt,
                                       "completion_tokens": relayed,
                                       "total_tokens": ticket.prompt + relayed})
                    spent = {k: spent.get(k, 0.0) + cut.get(k, 0.0)
                             for k in ticket.reserved}
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
