"""Server-Sent Events framing: one event in, the exact bytes on the wire out.

The relay speaks a small dialect of SSE (see docs/architecture.md): every event is *named*
(``event: delta``, ``usage``, ``done``, ``error``...) and carries exactly one ``data:`` line
holding compact JSON. Deliberate choices:

- **JSON, so one data line.** ``json.dumps`` escapes newlines inside strings, so an answer
  with line breaks (Markdown, LaTeX) never splits into several ``data:`` lines, and a client
  never has to guess how they join. Browsers drop events without data, so there is always one.
- **``ensure_ascii=False``.** Chinese text stays readable on the wire (and half the size);
  SSE is UTF-8 by definition.
- **LF line endings.** The spec allows LF, CR or CRLF; LF is the simplest to read in a
  terminal. Clients must accept all three anyway (our page's parser does, see static/sse.js).
- **The framing is sse-starlette's.** :class:`sse_starlette.ServerSentEvent` does the line
  work (it also strips newlines from event names); this module only fixes the dialect, so
  the HTTP side (``EventSourceResponse``) and this function cannot disagree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from sse_starlette import ServerSentEvent

__all__ = ["EVENT_NAMES", "encode_comment", "encode_event"]

#: The events the relay sends, in the order a successful stream uses them.
EVENT_NAMES = ("delta", "reasoning", "usage", "done", "error")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")


def encode_event(event: str, data: Mapping[str, Any]) -> bytes:
    """Encode one named SSE event whose data is ``data`` as compact JSON.

    >>> encode_event("delta", {"content": "a\\nb"})
    b'event: delta\\ndata: {"content":"a\\\\nb"}\\n\\n'
    """
    if not _NAME.match(event):
        raise ValueError(f"event name must be a simple word, got {event!r}")
    content = data.get("content") if len(data) == 1 else None
    if type(content) is str:  # the hot path (every delta): the same bytes, built directly
        return b"".join((b"event: ", event.encode(), b'\ndata: {"content":',
                         json.dumps(content, ensure_ascii=False).encode(), b"}\n\n"))
    payload = json.dumps(dict(data), ensure_ascii=False, separators=(",", ":"),
                         allow_nan=False)
    return ServerSentEvent(payload, event=event, sep="\n").encode()


def encode_comment(text: str = "") -> bytes:
    """Encode an SSE comment (clients ignore it; proxies see traffic, e.g. keep-alives)."""
    return ServerSentEvent(comment=text, sep="\n").encode()
