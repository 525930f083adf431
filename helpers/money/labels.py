"""How a cost is shown: the words every status line uses, marked when the counts are offline.

Offline, the token counts are the offline provider's own rule and the price is the real
model's: a plausible figure, not a bill. Wherever a cost is shown (the live view, the chat UI,
the page) :func:`cost_label` says so: the offline provider marks its streams with the
``x-offline-provider`` header (:func:`priced_by` reads it), the relay knows its provider.
"""

from __future__ import annotations

import json
from typing import Any

from .cost import Cost, call_cost

__all__ = ["OFFLINE_HEADER", "OFFLINE_NOTE", "cost_label", "priced_by", "with_cost"]

#: The response header with which the offline provider says its token counts are its own.
OFFLINE_HEADER = "x-offline-provider"
OFFLINE_NOTE = "offline counts × real price"


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
