"""Server-Sent Events in Python: the relay's encoder and its incremental decoder, side by side.

The relay speaks a small dialect of SSE to its clients (docs/architecture.md): every event is
*named* (``delta``, ``reasoning``, ``usage``, ``done``, ``error``) and carries exactly one
``data:`` line of compact JSON. It reads its provider's SSE with the decoder below.

Deliberate choices:

- **Encoder: JSON, so one data line;** ``ensure_ascii=False`` (SSE is UTF-8); LF line endings;
  the framing is sse-starlette's ``ServerSentEvent`` (so ``EventSourceResponse`` and this
  module cannot disagree), with a direct path for the relay's own event names (tests/test_sse.py
  compares them), the one-field ``{"content"}`` of each delta built without the JSON encoder.
- **Decoder in two layers,** as httpx-sse's ``_decoders.py`` and openai-python's
  ``_streaming.py`` have them: :class:`LineDecoder` (bytes to lines: LF, CR or CRLF, a CR at
  the end of one read meeting its LF in the next, a leading BOM) and :class:`EventDecoder`
  (lines to events: fields, comments, multi-line data). Each layer takes a whole read and
  loops inside, so a read costs two calls, not two per line (benchmarks/bench_sse_decoder.py).
- **One read in, that read's events out.** The relay forwards one batch per network read, so
  the decoder must not hide read boundaries (httpx-sse's ``aiter_sse`` does).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from json.encoder import encode_basestring
from typing import Any

from sse_starlette import ServerSentEvent

__all__ = ["EVENT_NAMES", "EventDecoder", "LineDecoder", "SSEDecoder", "encode_comment",
           "encode_event"]

#: The events the relay sends, in the order a successful stream uses them.
EVENT_NAMES = ("delta", "reasoning", "usage", "done", "error")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
_BOM = b"\xef\xbb\xbf"
#: The bytes before an event's JSON, and before the JSON string of a ``{"content": ...}``
#: event, for the relay's names (what ``ServerSentEvent`` writes for them).
_HEADS = {name: b"event: %s\ndata: " % name.encode() for name in EVENT_NAMES}
_CONTENT_HEADS = {name: head + b'{"content":' for name, head in _HEADS.items()}
#: ``json.dumps(..., ensure_ascii=False, separators=(",", ":"), allow_nan=False)``, built once.
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


# -- encoding -----------------------------------------------------------------------------------
def encode_event(event: str, data: Mapping[str, Any]) -> bytes:
    """Encode one named SSE event whose data is ``data`` as compact JSON.

    >>> encode_event("delta", {"content": "a\\nb"})
    b'event: delta\\ndata: {"content":"a\\\\nb"}\\n\\n'
    """
    content = data.get("content") if len(data) == 1 else None
    if type(content) is str and (head := _CONTENT_HEADS.get(event)):
        # the hot path (every delta): the same bytes as below, built directly;
        # encode_basestring is what json.dumps(str, ensure_ascii=False) calls
        return head + encode_basestring(content).encode() + b"}\n\n"
    payload = _JSON.encode(dict(data))  # compact JSON escapes CR and LF: one data line
    if head := _HEADS.get(event):  # the relay's own names: the same bytes, built directly
        return head + payload.encode() + b"\n\n"
    if not _NAME.match(event):
        raise ValueError(f"event name must be a simple word, got {event!r}")
    return ServerSentEvent(payload, event=event, sep="\n").encode()


def encode_comment(text: str = "") -> bytes:
    """Encode an SSE comment (clients ignore it; proxies see traffic, e.g. keep-alives)."""
    return ServerSentEvent(comment=text, sep="\n").encode()


# -- decoding -----------------------------------------------------------------------------------
class LineDecoder:
    """Bytes to lines: split each read into complete lines, keep the rest for the next read."""

    def __init__(self) -> None:
        self._buffer = b""
        self._started = False  # past a possible BOM
        self._skip_lf = False  # the last read ended with CR: an LF starting the next is its pair

    def feed(self, chunk: bytes) -> list[bytes]:
        """Add one read; return the lines it completes, without their line endings."""
        if self._skip_lf and chunk:
            chunk = chunk.removeprefix(b"\n")
            self._skip_lf = False
        buffer = self._buffer + chunk
        if not self._started and buffer:
            if len(buffer) < 3 and _BOM.startswith(buffer):
                self._buffer = buffer
                return []
            buffer = buffer.removeprefix(_BOM)
            self._started = True
        if b"\r" in buffer:
            # A CR ends its line at once (the event must not wait for the next read).
            self._skip_lf = buffer.endswith(b"\r")
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()
        return lines


class EventDecoder:
    """Lines to events: the HTML standard's field rules, for what a relay needs.

    ``:`` starts a comment; ``data`` lines join with ``\\n``; a blank line dispatches; an
    event without data is dropped; ``id`` and ``retry`` are ignored. UTF-8 is decoded per
    complete line, so a character split across reads is never broken.
    """

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []

    def feed(self, lines: list[bytes]) -> Iterator[tuple[str, str]]:
        """Yield every event these lines complete, as ``(event name, data)``."""
        for raw in lines:
            if raw[:6] == b"data: ":  # the common line, as the general rule below reads it
                self._data.append(raw[6:].decode("utf-8"))
                continue
            if not raw:
                if self._data:
                    yield self._event or "message", "\n".join(self._data)
                self._event, self._data = "", []
                continue
            if raw[:1] == b":":
                continue
            name, _, value = raw.decode("utf-8").partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                self._data.append(value)
            elif name == "event":
                self._event = value


class SSEDecoder:
    """Incremental SSE decoder: one read in, the ``(event, data)`` pairs it completes out."""

    def __init__(self) -> None:
        self._lines = LineDecoder()
        self._events = EventDecoder()

    def feed(self, chunk: bytes) -> Iterator[tuple[str, str]]:
        """Add bytes; yield every event they complete, as ``(event name, data)``."""
        return self._events.feed(self._lines.feed(chunk))
