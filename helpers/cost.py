"""What a call costs: ``usage`` times the model's price from the provider table.

Deliberate choices:

- Prices come from :data:`helpers.providers.PRICES` (per million tokens, with source and
  date), never from a second table here. A model without a price gives ``None``, not 0: an
  unknown cost must not look free.
- Cached prompt tokens are billed at the cached rate where the table has one. Providers put
  their count in different places: Moonshot in ``usage.cached_tokens``, OpenAI and DeepSeek
  in ``usage.prompt_tokens_details.cached_tokens`` (DeepSeek also says
  ``prompt_cache_hit_tokens``); :func:`cached_tokens` looks in all of them.
- Offline, the token counts are the offline provider's rule (:mod:`helpers.tokens`) and the
  price is the real model's: a plausible figure, not a bill. Wherever a cost is shown (the
  live view, the chat UI, the page) :func:`cost_label` says so: the offline provider marks
  its streams with the ``x-offline-provider`` header (:func:`priced_by` reads it), the relay
  knows its provider.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .providers import Price, price_of

__all__ = ["OFFLINE_HEADER", "Cost", "cached_tokens", "call_cost", "cost_label", "format_cost",
           "priced_by", "usage_numbers", "with_cost"]

PER = 1_000_000  # prices are per million tokens
#: The response header with which the offline provider says its token counts are its own.
OFFLINE_HEADER = "x-offline-provider"
OFFLINE_NOTE = "offline counts × real price"


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


def cost_label(cost: Cost | None, *, offline: bool = False) -> str | None:
    """Return a cost for a status line (``$0.000080``), marked if counted offline; or None."""
    if cost is None:
        return None
    return f"{cost} ({OFFLINE_NOTE})" if offline else str(cost)


def with_cost(usage: dict[str, Any], model: str, *, offline: bool = False) -> dict[str, Any]:
    """Return the relay's ``usage`` event data: ``usage`` plus ``cost`` when the price is known.

    ``cost`` is ``{"amount", "currency", "text", "offline"}``; ``text`` is :func:`cost_label`'s,
    so the page shows the same words as the notebook.
    """
    cost = call_cost(usage, model)
    if cost is None:
        return usage
    return {**usage, "cost": {"amount": round(cost.total, 10), "currency": cost.currency,
                              "text": cost_label(cost, offline=offline), "offline": offline}}


def priced_by(response: Any) -> tuple[str | None, bool]:
    """Return the model an SDK response's request asked for, and whether it was counted offline.

    The model is the one the request *named* (what the price table knows), not the chunks'
    ``model``, which some providers answer with a dated snapshot name.
    """
    request = getattr(response, "request", None)
    try:
        model = json.loads(request.content).get("model") if request is not None else None
    except (ValueError, AttributeError, TypeError):
        model = None
    headers = getattr(response, "headers", None) or {}
    return (model if isinstance(model, str) else None), OFFLINE_HEADER in headers
