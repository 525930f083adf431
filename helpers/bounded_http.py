"""uvicorn's C HTTP parser (httptools), bounded against hostile clients: head size, deadlines,
connections per client.

uvicorn parses HTTP/1.1 with h11 (pure Python) or httptools (C, llhttp). For the relay, h11 was
a quarter of the CPU it spends admitting a request and framing each streamed write
(docs/performance.md); httptools does the same work for a fraction. But neither of uvicorn's
protocols bounds what a client may hold: httptools' has no limit on a request's head (a 64 MB
header was read into memory and answered 200, tests/test_reliability_bad_input.py), and
neither has a deadline for a head or a body (a socket that sent nothing, or half a head, stayed
open for good: 300 of them made a 256-file relay refuse real requests). uvicorn's keep-alive
timeout only runs *between* requests, from the end of a response to the next byte.

:class:`BoundedHttpToolsProtocol` adds, with :class:`ConnectionLimits`:

- **h11's 16 KiB bound on a head** (:data:`MAX_HEAD_BYTES`): uvicorn's own plain-text 400
  ("Invalid HTTP request received."), the answer h11 gives. It counts what the parser hands
  over (the URL, each header's name and value) and every network read that arrived while a
  head was incomplete and left it incomplete, so a header still being buffered inside the
  parser is bounded too (by one read at most; a read in which a request began is not counted,
  as it also held the end of the one before). Not bounded: the trailers of a chunked body
  (rare; uvicorn ignores them). Behind nginx (docs/deploy.md) a body arrives with a length.
- **a deadline for a head** (``head_timeout``, 10 s), from the connection's start, or from the
  first byte after an idle keep-alive: a head not complete by then is a 408 (nothing received
  at all: the connection is just closed, as uvicorn closes an idle keep-alive one);
- **a deadline for a body** (``body_timeout``, 60 s: an 8 MB upload at about 1 Mbit/s), from
  the end of its head: a 408 if no response has started, else the connection is closed. It
  runs even after an early answer (a 401 before the body was read), whose unread body uvicorn
  keeps reading and dropping, every read restarting its keep-alive timer;
- **uvicorn's keep-alive timeout** set explicitly (``keep_alive_timeout``, 5 s:
  :meth:`ConnectionLimits.uvicorn_options`);
- **at most ``max_per_client`` open connections per client** (64; :func:`client_key`: an
  IPv4-mapped address is its IPv4 one, an IPv6 address counts as its /64, which one machine
  gets whole). One more gets a 429 in the project's error shape (``too_many_connections``),
  written at once, before its request, then the connection is closed after a short linger
  (a close with unread bytes is a reset, which can destroy the answer in the client's
  buffer). Not bounded by default (``unbounded``): loopback, this machine itself (nginx in
  front, where every client comes from 127.0.0.1; a load test); the relay adds the proxies it
  trusts (one proxy's address carries many clients).

Refusals and timeouts are answered below the app (no task, no route) and logged at info (a
flood of them must not flood the log); the server stays responsive for others.

:func:`http_protocol` is what servers pass to uvicorn's ``http=``: this class with its limits
(a :func:`functools.partial`, which pickles into ``--workers``' processes) when httptools is
installed (it is a runtime dependency), else ``"h11"``, which has the head bound but none of
the deadlines or the connection bound.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import ipaddress
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_LIMITS", "LOOPBACK_NETWORKS", "MAX_HEAD_BYTES", "ConnectionLimits",
           "client_key", "http_protocol", "parse_address"]

#: h11's default ``max_incomplete_event_size``, which uvicorn keeps: 16 KiB.
MAX_HEAD_BYTES = 16 * 1024
_INVALID = "Invalid HTTP request received."  # uvicorn's words for a request it cannot parse
LOOPBACK_NETWORKS = ("127.0.0.0/8", "::1/128")
_LINGER = 1.0  # seconds a refused connection reads (and drops) what the client still sends
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(text: str) -> Address | None:
    """Read an address as proxies and peers write it; None when it is not one.

    ``10.0.0.7``, ``010.0.0.7`` (leading zeros read as decimal, as a person means them),
    ``10.0.0.7:1234``, ``[10.0.0.7]``, ``[2001:db8::1]:443`` and ``::ffff:10.0.0.7`` (an
    IPv4-mapped address is its IPv4 address) are all ``10.0.0.7`` or ``2001:db8::1``.
    """
    text = text.strip()
    if text.startswith("["):  # [v6] or [v6]:port
        inside, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not re.fullmatch(r":\d{1,5}", rest)):
            return None
        text = inside
    elif text.count(":") == 1:  # v4:port
        text, _, port = text.partition(":")
        if not port.isdigit():
            return None
    if re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", text):
        text = ".".join(str(int(part)) for part in text.split("."))
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_key(address: str | Address) -> str | None:
    """Return who an address is as one client: ``10.0.0.7``, ``2001:db8:1:2::/64`` or
    ``127.0.0.1`` for all of loopback (this machine); None when it is no address."""
    ip = parse_address(address) if isinstance(address, str) else address
    if ip is None:
        return None
    if ip.is_loopback:
        return "127.0.0.1"
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(frozen=True)
class ConnectionLimits:
    """What one connection may take: deadlines (seconds; None: none) and a per-client bound.

    Args:
        head_timeout: seconds to receive a whole request head.
        body_timeout: seconds to receive a body once its head arrived.
        keep_alive_timeout: seconds an idle connection is kept between requests (uvicorn's).
        max_per_client: open connections per client (:func:`client_key`); None: no bound.
        unbounded: addresses or networks the bound does not apply to (default: loopback).
    """

    head_timeout: float | None = 10.0
    body_timeout: float | None = 60.0
    keep_alive_timeout: float = 5.0
    max_per_client: int | None = 64
    unbounded: tuple[str, ...] = LOOPBACK_NETWORKS

    def __post_init__(self) -> None:
        for name in ("head_timeout", "body_timeout", "keep_alive_timeout", "max_per_client"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive (or None for no limit), not {value}")
        object.__setattr__(self, "unbounded", tuple(self.unbounded))
        _ = self._unbounded  # parsed (and cached) now: a bad entry is a ValueError here

    @functools.cached_property
    def _unbounded(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(e.strip(), strict=False) for e in self.unbounded]

    def bounded_key(self, peer: str) -> str | None:
        """The key a peer's connections are counted under, or None when it is not bounded."""
        ip = parse_address(peer)
        if self.max_per_client is None or ip is None \
                or any(ip in network for network in self._unbounded):
            return None
        return client_key(ip)

    def uvicorn_options(self) -> dict[str, Any]:
        """``uvicorn.Config``'s options for these limits: ``http`` and ``timeout_keep_alive``."""
        return {"http": http_protocol(self), "timeout_keep_alive": self.keep_alive_timeout}


#: a classroom relay's limits: head 10 s, body 60 s, keep-alive 5 s, 64 connections a client
DEFAULT_LIMITS = ConnectionLimits()


def http_protocol(limits: ConnectionLimits = DEFAULT_LIMITS) -> Callable[..., Any] | str:
    """uvicorn's ``http=``: the bounded httptools protocol with ``limits``, or h11."""
    if importlib.util.find_spec("httptools") is None:
        return "h11"
    return functools.partial(BoundedHttpToolsProtocol, limits=limits)


def _error_bytes(status: int, reason: str, kind: str, message: str,
                 headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    body = json.dumps({"error": {"type": kind, "message": message}}).encode()
    lines = [f"HTTP/1.1 {status} {reason}", "content-type: application/json",
             f"content-length: {len(body)}", "connection: close",
             *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _open_counts(server_state: Any) -> Counter[str]:
    """Open connections per client key of one uvicorn server, kept on its ``ServerState``."""
    return vars(server_state).setdefault(_OPEN, Counter())


class HeadTooLarge(Exception):
    """Raised inside a parser callback: httptools reports it as a parser error."""


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # no httptools: http_protocol() says h11
    HttpToolsProtocol = object  # type: ignore[assignment,misc]

_OPEN = "helpers_open_per_client"  # the ServerState's Counter: its own loop's, no lock


class BoundedHttpToolsProtocol(HttpToolsProtocol):  # type: ignore[misc,valid-type]
    """uvicorn's httptools protocol with the bounds of :class:`ConnectionLimits` (module doc)."""

    def __init__(self, *args: Any, limits: ConnectionLimits = DEFAULT_LIMITS,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self._in_head = True  # a connection starts by waiting for a head
        self._parsed = 0  # the head's URL and headers the parser handed over
        self._buffered = 0  # reads that arrived in this head and left it incomplete
        self._began = False  # a request began during the current read
        self._head_bytes = False  # a head began (llhttp's message begin) and is not complete
        self._deadline: asyncio.TimerHandle | None = None  # the head's or the body's
        self._counted: str | None = None  # the client key this connection is counted under
        self._refused = False  # answered below the app: what still arrives is dropped

    # -- connections per client, deadlines ---------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        key = self.limits.bounded_key(self.client[0]) if self.client else None
        if key is not None:
            counts = _open_counts(self.server_state)
            if counts[key] >= (self.limits.max_per_client or 0):
                self.logger.info("refused a connection: %d open from one client",
                                    counts[key])
                self._refuse(_error_bytes(
                    429, "Too Many Requests", "too_many_connections",
                    f"Too many open connections from your address (at most "
                    f"{self.limits.max_per_client}): close some and try again.",
                    (("retry-after", "5"),)))
                return
            counts[key] += 1
            self._counted = key
        self._arm(self.limits.head_timeout, self._head_late)

    def connection_lost(self, exc: Exception | None) -> None:
        self._release()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self) -> None:
        self._release()  # the connection is the WebSocket protocol's from here
        super().handle_websocket_upgrade()

    def _release(self) -> None:
        self._disarm()
        if self._counted is not None:
            counts = _open_counts(self.server_state)
            counts[self._counted] -= 1
            if counts[self._counted] <= 0:
                del counts[self._counted]
            self._counted = None

    def _arm(self, seconds: float | None, late: Callable[[], None]) -> None:
        self._disarm()
        if seconds is not None:
            self._deadline = self.loop.call_later(seconds, late)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_late(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if not self._head_bytes:  # nothing asked: nothing to answer
            self.transport.close()
            return
        self.logger.info("request head not complete after %s s", self.limits.head_timeout)
        self._refuse(_error_bytes(408, "Request Timeout", "request_timeout", (
            f"The request's head did not arrive within {self.limits.head_timeout:g} s.")))

    def _body_late(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        self.logger.info("request body not complete after %s s", self.limits.body_timeout)
        cycle = self.cycle
        if cycle is not None:  # the app reads a disconnect; anything it sends is dropped
            answer = not cycle.response_started
            cycle.disconnected = True
            cycle.message_event.set()
            if not answer:
                self.transport.close()
                return
        self._refuse(_error_bytes(408, "Request Timeout", "request_timeout", (
            f"The request's body did not arrive within {self.limits.body_timeout:g} s.")))

    def _refuse(self, response: bytes) -> None:
        """Answer ``response`` below the app and close, after a linger that drops input."""
        self._refused = True
        self._disarm()
        self.transport.write(response)
        if self.transport.can_write_eof():
            self.transport.write_eof()  # the client reads the answer, then our end
        self.loop.call_later(_LINGER, self.transport.close)

    # -- HTTP ---------------------------------------------------------------------------------
    def _count(self, size: int) -> None:
        self._parsed += size
        if self._parsed > MAX_HEAD_BYTES:
            raise HeadTooLarge(f"request head over {MAX_HEAD_BYTES} bytes")

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # dropped: the answer is already written
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
                return
        # bytes after a response (uvicorn cancelled its keep-alive timer on them): the next
        # head is due; never while a response is under way (a pipelined head waits for it)
        if self._deadline is None and not self.transport.is_closing() \
                and (self.cycle is None or self.cycle.response_complete) \
                and self.timeout_keep_alive_task is None:
            self._arm(self.limits.head_timeout, self._head_late)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._parsed, self._buffered, self._began = True, 0, 0, True
        self._head_bytes = True

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value))
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head, self._head_bytes = False, False
        self._disarm()
        if self._has_body():
            self._arm(self.limits.body_timeout, self._body_late)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def _has_body(self) -> bool:
        for name, value in self.headers:
            if name == b"content-length":
                return value.strip() not in (b"0", b"")
            if name == b"transfer-encoding" and b"chunked" in value.lower():
                return True
        return False
