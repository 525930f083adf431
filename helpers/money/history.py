"""Keep a long conversation inside a model's context window: drop, or summarise, old turns.

:func:`trim_history` keeps every system message (the instructions, a file's text) and the
newest turns, and drops the oldest user/assistant turns until the prompt, counted by the
token rule (:mod:`helpers.money.tokens`), leaves ``reserve`` tokens for the answer. Given a
``summarise`` function it replaces what it dropped by one system message holding a summary.

The trade-off (lesson 9): dropping is free and exact but forgets; a summary remembers the gist
but costs a request, may lose details, and takes tokens itself. Turns are dropped in pairs
(a user message with the answers after it), so the model never sees an answer without its
question. Context windows come from :data:`helpers.providers.table.MODELS`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..providers.table import MODELS
from .tokens import count_prompt_tokens

__all__ = ["context_window", "trim_history"]

SUMMARY_PREFIX = "Summary of the earlier conversation: "


def context_window(model: str) -> int:
    """Return ``model``'s context window in tokens (from the provider table)."""
    known = MODELS.get(model)
    if known is None:
        raise KeyError(f"no context window for {model!r} in helpers/providers/table.py MODELS")
    return known.context_window


def _turns(messages: Sequence[dict]) -> list[list[dict]]:
    """Group non-system messages into turns: a user message and what follows it."""
    turns: list[list[dict]] = []
    for m in messages:
        if m.get("role") == "user" or not turns:
            turns.append([m])
        else:
            turns[-1].append(m)
    return turns


def trim_history(messages: Sequence[dict], window: int, *, reserve: int = 0,
                 summarise: Callable[[list[dict]], str] | None = None
                 ) -> tuple[list[dict], list[dict]]:
    """Return ``(kept, dropped)``: the messages that fit ``window - reserve`` tokens.

    Args:
        messages: the whole conversation, oldest first, ending with the new question.
        window: the model's context window (see :func:`context_window`).
        reserve: tokens to leave for the answer (its ``max_tokens``).
        summarise: given the dropped messages, return a short text to keep instead.

    Raises ValueError when even the system messages and the newest turn do not fit.
    """
    budget = window - reserve
    system = [m for m in messages if m.get("role") == "system"]
    turns = _turns([m for m in messages if m.get("role") != "system"])
    dropped: list[dict] = []

    def build(summary: str | None) -> list[dict]:
        extra = [{"role": "system", "content": SUMMARY_PREFIX + summary}] if summary else []
        return system + extra + [m for turn in turns for m in turn]

    while True:  # drop until it fits, then summarise once (again only if the summary won't fit)
        while count_prompt_tokens(build(None)) > budget and len(turns) > 1:
            dropped.extend(turns.pop(0))
        kept = build(summarise(dropped) if summarise is not None and dropped else None)
        if count_prompt_tokens(kept) <= budget or len(turns) <= 1:
            break
        dropped.extend(turns.pop(0))
    if count_prompt_tokens(kept) > budget:
        raise ValueError(f"the newest question and the system messages need "
                         f"{count_prompt_tokens(kept)} tokens, more than the {budget} left in "
                         f"a {window}-token window after {reserve} for the answer")
    return kept, dropped
