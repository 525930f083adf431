"""Where a stream chunk carries ``usage``: the one place that decides it.

Providers put the token count in one of three places (named in :mod:`helpers.providers.table`):
inside ``choices[0]`` (Moonshot), at the top level of the chunk that still has choices
(DeepSeek), or in a trailing chunk with empty ``choices`` (OpenAI style). :func:`find_usage`
looks in all three and says which one it found, for a parsed-JSON chunk (the relay, the raw
wire) or an SDK ``ChatCompletionChunk`` (the streaming helpers) alike.

Deliberate choices: it runs once per chunk in the relay's hot path, so it does a few dict or
attribute look-ups and nothing else (no validation, no copies); it returns the usage value as
found (a dict, or the SDK's object), and callers convert it to what they need. Only
``choices[0]`` is looked at, the only choice a chat stream has.
"""

from __future__ import annotations

from typing import Any

from ..providers.table import USAGE_IN_CHOICE, USAGE_TOP_LEVEL, USAGE_TRAILING

__all__ = ["find_usage"]


def find_usage(chunk: Any) -> tuple[str, Any] | None:
    """Return ``(place, usage)`` if this chunk carries usage, else None.

    ``chunk`` is a parsed-JSON dict or an SDK chunk object; ``place`` is one of
    ``"choices[0].usage"``, ``"last chunk, top level"``, ``"trailing chunk"``.
    """
    if isinstance(chunk, dict):
        choices = chunk.get("choices")
        usage = chunk.get("usage")
        if usage:
            return (USAGE_TOP_LEVEL if choices else USAGE_TRAILING), usage
        if choices and isinstance(choices, list):
            first = choices[0]
            if isinstance(first, dict) and (inner := first.get("usage")):
                return USAGE_IN_CHOICE, inner
        return None
    choices = getattr(chunk, "choices", None)
    usage = getattr(chunk, "usage", None)
    if usage is not None:
        return (USAGE_TOP_LEVEL if choices else USAGE_TRAILING), usage
    if choices:
        first = choices[0]
        inner = getattr(first, "usage", None)  # the SDK keeps unknown fields as extras
        if inner is None and getattr(first, "model_extra", None):
            inner = first.model_extra.get("usage")
        if inner:
            return USAGE_IN_CHOICE, inner
    return None
