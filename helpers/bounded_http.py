"""uvicorn's C HTTP parser (httptools), with the bound on a request's head that h11 has.

uvicorn parses HTTP/1.1 with h11 (pure Python) or httptools (C, llhttp). For the relay, h11 was
a quarter of the CPU it spends admitting a request and framing each streamed write
(docs/performance.md); httptools does the same work for a fraction. But uvicorn's httptools
protocol has no limit on a request's head: a 64 MB header was read into memory and answered
200, where h11 refuses anything over 16 KiB with a 400 (tests/test_reliability_bad_input.py).

:class:`BoundedHttpToolsProtocol` puts h11's bound back: a request whose line and headers
exceed :data:`MAX_HEAD_BYTES` gets uvicorn's own plain-text 400 ("Invalid HTTP request
received.") and the connection is closed, the same answer h11 gives. It counts

- what the parser hands over (the URL and each header's name and value), and
- every network read that arrived while a head was incomplete and left it incomplete, so that
  a header still being buffered inside the parser is bounded too (by one read at most; a read
  in which a request began is not counted, as it also held the end of the one before).

Not bounded: the trailers of a chunked request body (rare; uvicorn ignores them), which
httptools buffers until each is complete. Behind nginx (docs/deploy.md) a request body reaches
the relay with a length, not chunked.

:func:`http_protocol` is what servers pass to uvicorn's ``http=``: this class when httptools is
installed (it is a runtime dependency), else ``"h11"``.
"""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Any

__all__ = ["MAX_HEAD_BYTES", "http_protocol"]

#: h11's default ``max_incomplete_event_size``, which uvicorn keeps: 16 KiB.
MAX_HEAD_BYTES = 16 * 1024
_INVALID = "Invalid HTTP request received."  # uvicorn's words for a request it cannot parse


class HeadTooLarge(Exception):
    """Raised inside a parser callback: httptools reports it as a parser error."""


def http_protocol() -> type[asyncio.Protocol] | str:
    """uvicorn's ``http=``: the bounded httptools protocol, or h11 without httptools."""
    if importlib.util.find_spec("httptools") is None:
        return "h11"
    return BoundedHttpToolsProtocol


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # no httptools: http_protocol() says h11
    HttpToolsProtocol = object  # type: ignore[assignment,misc]


class BoundedHttpToolsProtocol(HttpToolsProtocol):  # type: ignore[misc,valid-type]
    """uvicorn's httptools protocol; a request head over :data:`MAX_HEAD_BYTES` is a 400."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # a connection starts by waiting for a head
        self._parsed = 0  # the head's URL and headers the parser handed over
        self._buffered = 0  # reads that arrived in this head and left it incomplete
        self._began = False  # a request began during the current read

    def _count(self, size: int) -> None:
        self._parsed += size
        if self._parsed > MAX_HEAD_BYTES:
            raise HeadTooLarge(f"request head over {MAX_HEAD_BYTES} bytes")

    def data_received(self, data: bytes) -> None:
        whole_read_in_head, self._began = self._in_head, False
        super().data_received(data)  # a HeadTooLarge from a callback: uvicorn's 400
        # a read in which a request began also held the end of the one before (a body, or
        # pipelined requests): only reads that were head from start to end are counted
        if whole_read_in_head and self._in_head and not self._began \
                and not self.transport.is_closing():
            self._buffered += len(data)  # each count is at most the head's size: no false 400
            if self._buffered > MAX_HEAD_BYTES:
                self.logger.warning(_INVALID)
                self.send_400_response(_INVALID)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._parsed, self._buffered, self._began = True, 0, 0, True

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value))
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()
