"""A budget guard: refuse a request, or stop a conversation, before it spends too much.

One small class for the lessons and the relay alike (its per-client budgets reuse it): a
:class:`Budget` holds a token limit and/or a money limit and what has been spent;
:meth:`Budget.check` raises :class:`BudgetExceeded` *before* a request whose worst case
(prompt tokens, plus the most the answer may cost: its ``max_tokens``) would go over, and
:meth:`Budget.charge` adds what a finished call really used (its ``usage``).

Deliberate choices: checking the worst case, not the expected case, is what makes it a guard
(an answer without ``max_tokens`` cannot be bounded, so it is checked at ``answer_tokens=0``
and the budget may end slightly over; the lesson says so). Money needs a price: a model
without one in the table cannot be checked against a money limit, and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..providers.table import price_of
from .cost import PER, call_cost, format_cost, usage_numbers
from .tokens import count_prompt_tokens

__all__ = ["Budget", "BudgetExceeded"]


class BudgetExceeded(Exception):
    """A request would go over the budget; the message says by how much."""

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind  # "tokens" or "money"


@dataclass
class Budget:
    """A token and/or money limit for a conversation (or a client), and what it has spent.

    Args:
        model: the model whose price turns tokens into money.
        max_tokens: at most this many tokens in all (prompt + answer), or None.
        max_cost: at most this much money (the price's currency), or None.
    """

    model: str
    max_tokens: int | None = None
    max_cost: float | None = None
    spent_tokens: int = 0
    spent_cost: float = 0.0

    def worst_cost(self, prompt_tokens: int, answer_tokens: int) -> float | None:
        """Return what a request costs at most, or None without a price."""
        price = price_of(self.model)
        if price is None:
            return None
        return (prompt_tokens * price.input + answer_tokens * price.output) / PER

    def check(self, prompt_tokens: int, answer_tokens: int = 0) -> None:
        """Raise BudgetExceeded if a request of this size could go over the budget."""
        need = prompt_tokens + answer_tokens
        if self.max_tokens is not None and self.spent_tokens + need > self.max_tokens:
            raise BudgetExceeded(
                f"Token budget: {self.spent_tokens} of {self.max_tokens} spent, this request "
                f"needs up to {need} more; start a new conversation or raise the budget",
                kind="tokens")
        if self.max_cost is not None:
            worst = self.worst_cost(prompt_tokens, answer_tokens)
            if worst is None:
                raise BudgetExceeded(f"Money budget: no price for {self.model!r} in "
                                     "helpers/providers/table.py, so its cost cannot be checked",
                                     kind="money")
            if self.spent_cost + worst > self.max_cost:
                currency = price_of(self.model).currency  # type: ignore[union-attr]
                raise BudgetExceeded(
                    f"Money budget: {format_cost(self.spent_cost, currency)} of "
                    f"{format_cost(self.max_cost, currency)} spent, this request may cost "
                    f"{format_cost(worst, currency)} more", kind="money")

    def check_messages(self, messages: Sequence[dict], max_tokens: int | None = None) -> None:
        """Check a chat request: its prompt counted by the token rule, plus ``max_tokens``."""
        self.check(count_prompt_tokens(messages), max_tokens or 0)

    def charge(self, usage: Any) -> None:
        """Add what a finished call used (its ``usage``) to the spent totals."""
        prompt, _cached, completion = usage_numbers(usage)
        self.spent_tokens += prompt + completion
        cost = call_cost(usage, self.model)
        self.spent_cost += cost.total if cost is not None else 0.0

    def __str__(self) -> str:
        price = price_of(self.model)
        money = format_cost(self.spent_cost, price.currency) if price else "cost unknown"
        limits = [f"{self.max_tokens} tokens" if self.max_tokens is not None else "",
                  format_cost(self.max_cost, price.currency if price else "USD")
                  if self.max_cost is not None else ""]
        return (f"spent {self.spent_tokens} tokens, {money} of "
                f"{' / '.join(x for x in limits if x) or 'no limit'}")
