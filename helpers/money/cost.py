"""What a call costs: ``usage`` times the model's price from the provider table.

Deliberate choices:

- Prices come from :data:`helpers.providers.table.PRICES` (per million tokens, with source and
  date), never from a second table here. A model without a price gives ``None``, not 0: an
  unknown cost must not look free.
- Cached prompt tokens are billed at the cached rate where the table has one. Providers put
  their count in different places: Moonshot in ``usage.cached_tokens``, OpenAI and DeepSeek
  in ``usage.prompt_tokens_details.cached_tokens`` (DeepSeek also says
  ``prompt_cache_hit_tokens``); :func:`cached_tokens` looks in all of them.
- Offline, the token counts are the offline provider's rule (:mod:`helpers.money.tokens`) and the
  price is the real model's: a plausible figure, not a bill. How a cost is worded, and marked
  as counted offline, is :mod:`helpers.money.labels`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..providers.table import Price, price_of

__all__ = ["PER", "Cost", "cached_tokens", "call_cost", "format_cost", "usage_numbers"]

PER = 1_000_000  # prices are per million tokens


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(name)
    value = getattr(obj, name, None)
    if value is None and getattr(obj, "model_extra", None):
        value = obj.model_extra.get(name)  # the SDK keeps fields it does not know as extras
    return value


def cached_tokens(usage: Any) -> int:
    """Return how many prompt tokens ``usage`` says came from the provider's cache."""
    details = _get(usage, "prompt_tokens_details")
    for value in (_get(usage, "cached_tokens"), _get(details, "cached_tokens") if details else None,
                  _get(usage, "prompt_cache_hit_tokens")):
        if isinstance(value, int) and value > 0:
            return value
    return 0


def usage_numbers(usage: Any) -> tuple[int, int, int]:
    """Return ``(prompt, cached, completion)`` tokens from a usage dict or SDK object."""
    return (int(_get(usage, "prompt_tokens") or 0), cached_tokens(usage),
            int(_get(usage, "completion_tokens") or 0))


@dataclass(frozen=True)
class Cost:
    """One call's cost, split by kind of token."""

    prompt: float
    cached: float
    completion: float
    currency: str

    @property
    def total(self) -> float:
        """The whole call's cost."""
        return self.prompt + self.cached + self.completion

    def __add__(self, other: Cost) -> Cost:
        if other.currency != self.currency:
            raise ValueError(f"cannot add {self.currency} and {other.currency}")
        return Cost(self.prompt + other.prompt, self.cached + other.cached,
                    self.completion + other.completion, self.currency)

    def __str__(self) -> str:
        return format_cost(self.total, self.currency)


def call_cost(usage: Any, model: str | Price) -> Cost | None:
    """Return what ``usage`` costs at ``model``'s price (a model id or a Price), or None."""
    price = model if isinstance(model, Price) else price_of(model)
    if price is None or usage is None:
        return None
    prompt, cached, completion = usage_numbers(usage)
    cached_rate = price.input if price.cached_input is None else price.cached_input
    return Cost(prompt=(prompt - cached) * price.input / PER, cached=cached * cached_rate / PER,
                completion=completion * price.output / PER, currency=price.currency)


def format_cost(amount: float | None, currency: str = "USD") -> str:
    """Format an amount for a status line: ``$0.000123``, ``¥0.0012``, or ``cost unknown``."""
    if amount is None:
        return "cost unknown"
    symbol = {"USD": "$", "CNY": "¥"}.get(currency)
    digits = f"{amount:.6f}" if amount < 1 else f"{amount:.2f}"
    return f"{symbol}{digits}" if symbol else f"{digits} {currency}"
