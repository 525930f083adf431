"""Structured output while it streams: JSON mode, with the partial object shown as it grows.

With ``response_format={"type": "json_object"}`` the answer is one JSON object, streamed as
ordinary content pieces. Joined so far, the pieces are incomplete JSON; ``jiter`` (the JSON
parser the openai SDK itself depends on) parses it anyway with ``partial_mode=
"trailing-strings"``: an unfinished string is kept as far as it got, an unfinished key or
number is left out until it is complete. So each step shows a valid object that only grows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import jiter

from .chunks import chunk_text

__all__ = ["PartialJSON", "iter_partial_json", "parse_partial"]


def parse_partial(text: str) -> Any:
    """Parse possibly incomplete JSON; return ``None`` while nothing is parseable yet."""
    if not text.strip():
        return None
    try:
        return jiter.from_json(text.encode(), partial_mode="trailing-strings")
    except ValueError:
        return None


class PartialJSON:
    """Feed it text pieces; ``value`` is the object parsed so far."""

    def __init__(self) -> None:
        self.text = ""
        self.value: Any = None

    def feed(self, piece: str) -> bool:
        """Add a piece; return True if the parsed object changed."""
        self.text += piece
        value = parse_partial(self.text)
        if value is None or value == self.value:
            return False
        self.value = value
        return True

    def final(self) -> Any:
        """Return the complete object (raises ``ValueError`` if the JSON is incomplete)."""
        return jiter.from_json(self.text.encode())


def iter_partial_json(chunks: Iterable[Any]) -> Iterator[Any]:
    """Yield the growing object each time a content piece changes it."""
    partial = PartialJSON()
    for chunk in chunks:
        if partial.feed(chunk_text(chunk)):
            yield partial.value
