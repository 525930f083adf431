"""A provider's stream chunks (each SSE ``data`` string) to the relay's events, fast.

- **A text delta is not parsed twice the same way** (:class:`ChunkReader`): a provider's
  text chunks differ only in their text, so once one is folded and its shape proven, the
  next are read by slicing out the text's JSON string. Anything else is parsed in full.
- ``find_usage`` alone knows where a chunk carries usage; it runs only on chunks that mention
  ``"usage"`` at all.
- The reasoning fields are the provider table's (``REASONING_FIELDS``), read once per stream
  when the reader is made: a test that changes the table sees the next stream follow. The
  rule of :func:`helpers.providers.table.reasoning_text` (the first listed field with text
  wins) is inlined in :func:`_fold`: calling it cost 0.15-0.2 µs a chunk on the reference
  path (2.2 µs), measured with a 200-chunk stream.
"""

from __future__ import annotations

import json
import re
from itertools import product
from json.decoder import scanstring
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any

import httpx2
import openai

from ..providers import table
from ..streams.usage import find_usage

__all__ = ["Batch", "ChunkReader"]

#: One read's worth of relay events: ``[(name, data), ...]``.
Batch = list[tuple[str, dict[str, Any]]]
_USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


#: A JSON string literal (RFC 8259), all of it: what may stand in a learnt chunk's text slot.
_STRING = re.compile(r'"(?:[^"\\\x00-\x1f]++|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*+"')
#: Stands in a learnt slot while the shape is proven (a string no provider sends).
_PROBE = "\x00relay-probe\x00"
#: Shapes a stream may learn: a provider whose every chunk differs stays on the reference path.
_LEARN_TRIES = 3
_CONTENT_KEYS = ('"content":', '"content": ')  # compact, or Python's json.dumps default


def _usage(value: Any) -> dict[str, int] | None:
    if isinstance(value, dict) and "total_tokens" in value:
        return {key: int(value.get(key) or 0) for key in _USAGE_KEYS}
    return None


def _fold(chunk: Any, batch: Batch, request: httpx2.Request | None,
          finish_reason: str | None, fields: tuple[str, ...]) -> str | None:
    """Add one chunk's text events to ``batch``; return the updated finish_reason.

    ``fields``: the reasoning fields to read (the table's); the first with text wins.
    """
    if not isinstance(chunk, dict):
        raise ValueError("a stream chunk is not a JSON object")
    if chunk.get("error"):  # a failure in mid-stream, the way the SDK reports it
        error = chunk["error"]
        message = error.get("message") if isinstance(error, dict) else None
        raise openai.APIError(message or "An error occurred during streaming", request,
                              body=error)
    for choice in (chunk.get("choices") or ())[:1]:
        delta = choice.get("delta") or {}
        for name in fields:
            thought = delta.get(name)
            if thought and type(thought) is str:
                batch.append(("reasoning", {"content": thought}))
                break
        if text := delta.get("content"):
            batch.append(("delta", {"content": text}))
        if choice.get("finish_reason"):
            finish_reason = choice["finish_reason"]
    return finish_reason


class ChunkReader:
    """One stream's chunks (each SSE ``data`` string) to the relay's events.

    The reference path parses a chunk with ``json.loads`` and folds it (:func:`_fold`). The
    fast path skips the parse for the common chunk, a plain text delta: having folded one,
    it learns that chunk as a fixed head, the text's JSON string, a fixed tail, and proves it
    by folding the chunk with a probe string in the slot. A later chunk that is that head, any
    JSON string literal, that tail, is that same chunk with that text. Every other chunk
    (role, reasoning, finish, usage, error, a field that changes per chunk) takes the
    reference path. ``fast=False`` is the reference alone (tests/test_relay_upstream.py fuzzes
    one against the other on every provider flavour).
    """

    def __init__(self, request: httpx2.Request | None = None, *, fast: bool = True) -> None:
        self.request = request
        self.finish_reason: str | None = None
        self.usage: dict[str, int] | None = None
        self._head: str | None = None
        self._tail = ""
        self._tries = _LEARN_TRIES if fast else 0
        self._fields = table.REASONING_FIELDS  # looked up once per stream

    def feed(self, payload: str, batch: Batch) -> bool:
        """Add one chunk's events to ``batch``; False at ``[DONE]``. Raises on an error chunk."""
        head = self._head
        if head is not None and payload.startswith(head) and payload.endswith(self._tail):
            literal = payload[len(head):len(payload) - len(self._tail)]
            if _STRING.fullmatch(literal):
                if len(literal) > 2:  # an empty text is no event, as on the reference path
                    text = scanstring(literal, 1)[0] if "\\" in literal else literal[1:-1]
                    batch.append(("delta", {"content": text}))
                return True
        if payload == "[DONE]":
            return False
        chunk = json.loads(payload)
        mark = len(batch)
        self.finish_reason = _fold(chunk, batch, self.request, self.finish_reason, self._fields)
        if '"usage"' in payload and (found := find_usage(chunk)):
            self.usage = _usage(found[1]) or self.usage
        elif (self._tries and self.finish_reason is None and len(batch) == mark + 1
              and batch[mark][0] == "delta" and type(batch[mark][1]["content"]) is str):
            self._learn(payload, batch[mark][1]["content"])
        return True

    def _learn(self, payload: str, text: str) -> None:
        """Keep this text delta's head and tail around its text, once proven."""
        self._tries -= 1
        for key, literal in product(_CONTENT_KEYS, (encode_basestring(text),
                                                    encode_basestring_ascii(text))):
            at = payload.find(key + literal)
            if at < 0:
                continue
            head = payload[:at + len(key)]
            tail = payload[len(head) + len(literal):]
            probe: Batch = []
            try:
                chunk = json.loads(head + encode_basestring(_PROBE) + tail)
                finish = _fold(chunk, probe, self.request, None, self._fields)
            except Exception:
                return
            if probe == [("delta", {"content": _PROBE})] and finish is None \
                    and find_usage(chunk) is None:
                self._head, self._tail = head, tail
            return
