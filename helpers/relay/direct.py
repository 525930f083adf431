"""The relay's hot request: ``POST /chat/completions`` straight through aiohttp.

The relay's stream route sends one request per answer. Through the SDK, building and sending
it was nearly half of the relay's CPU per request (docs/performance.md): ``_build_request``
(headers through httpx2's ``Headers``, the URL parsed twice), the httpx2 client, its aiohttp
transport, and four async generators around every read of the body. :class:`DirectChat` sends
the same request with the SDK's own headers, computed once, through one aiohttp session (a
connection pool reused by every answer), and hands back aiohttp's body as it arrives.

What the SDK does for a request is kept, by handing anything but a success back to it:

- **Errors:** a 4xx/5xx that the SDK would not retry becomes the SDK's own exception
  (``client._make_status_error_from_response``: ``AuthenticationError``, ``RateLimitError``, …,
  with the provider's body), exactly what ``client.post`` raises.
- **Retries:** a status the SDK retries (``client._should_retry``: 408, 409, 429, 5xx,
  ``x-should-retry``), a refused connection or a timeout before the headers: the relay waits the
  SDK's back-off (``Retry-After`` honoured) and returns ``None``; the caller then sends the
  request through the SDK with one retry fewer, so the attempts add up to the SDK's.
- **What differs:** after a first attempt here, the SDK counts its retries from zero again, so
  ``X-Stainless-Retry-Count`` reads 0, 0, 1 instead of 0, 1, 2, and the second back-off is
  the first one again (about 0.5 s, not 1 s, unless the provider says ``Retry-After``). The
  number of attempts is the SDK's.
- **Same bytes on the wire:** the body as the SDK serialises it (compact JSON, UTF-8), its
  headers (auth, ``User-Agent``, ``X-Stainless-*``, timeouts) taken from a request the SDK built;
  tests/test_relay_direct.py compares both against what the SDK sends.

Only for the relay's own client (``create_app`` without ``client=``): a client passed in may
carry custom auth, a transport of its own, or hooks that only the SDK path honours. Not when
the SDK's debug log is on (``OPENAI_LOG=debug``): whoever turned it on wants every request in it.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio
import httpx2
import openai
from openai._models import FinalRequestOptions

__all__ = ["CHAT_POST", "DirectChat", "Opened"]

#: What ``client.post("/chat/completions", body=...)`` builds per request, built once: the SDK
#: fills its defaults with a deep copy each (a tenth of a short request's CPU); each request
#: takes a shallow copy with its own body, and the SDK copies it again before use.
CHAT_POST = FinalRequestOptions.construct(method="post", url="/chat/completions")

#: What the SDK's ``openapi_dumps`` calls for a body of plain JSON types, built once.
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_CONNECTION_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)
#: Headers of a body aiohttp has already decompressed.
_DECODED = frozenset({"content-encoding", "content-length"})
#: Headers aiohttp writes itself for each request.
_PER_REQUEST = frozenset({"host", "content-length", "transfer-encoding"})


def _env_proxy(url: httpx2.URL) -> str | None:
    """The proxy the environment names for ``url``, read as httpx2 reads it: ``<scheme>_PROXY``
    or ``ALL_PROXY``, ``NO_PROXY``, and ``http://`` in front of a bare ``host:port``."""
    if urllib.request.proxy_bypass(url.host):
        return None
    proxies = urllib.request.getproxies()
    proxy = proxies.get(url.scheme) or proxies.get("all")
    return proxy if not proxy or "://" in proxy else f"http://{proxy}"


class Opened:
    """One provider response with a success status: its headers and body, read as it comes."""

    __slots__ = ("_response", "headers", "request")

    def __init__(self, response: aiohttp.ClientResponse, request: httpx2.Request) -> None:
        self._response = response
        self.headers = response.headers
        self.request = request  # what the SDK's exceptions name

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        """Whatever each network read brought (decompressed when the provider compressed)."""
        return self._response.content.iter_any()

    def release(self) -> None:
        """Give the connection back to the pool; one whose body was not read to its end is
        closed instead (aiohttp knows), which is what stops the provider. Nothing to await."""
        self._response.release()


class DirectChat:
    """Send ``POST {base_url}/chat/completions`` for ``client``, without the SDK's layers."""

    def __init__(self, client: openai.AsyncOpenAI, *, read_timeout: float,
                 connect_timeout: float = 10.0, max_connections: int = 1000) -> None:
        self.client = client
        self._timeout = aiohttp.ClientTimeout(sock_connect=connect_timeout,
                                              sock_read=read_timeout, connect=connect_timeout)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._headers: dict[str, str] | None = None
        self.request = httpx2.Request("POST", self._sdk_request({}).url)
        self.url = str(self.request.url)
        self.proxy = _env_proxy(self.request.url)

    def _sdk_request(self, body: dict) -> httpx2.Request:
        return self.client._build_request(CHAT_POST.model_copy(update={"json_data": body}))

    def _start(self) -> aiohttp.ClientSession:
        """The session and headers, made in the loop that serves (aiohttp binds to it)."""
        sample = self._sdk_request({})  # in the loop: X-Stainless-Async names it
        self._headers = {name: value for name, value in sample.headers.items()
                         if name not in _PER_REQUEST}
        # the SDK's aiohttp transport's TLS: httpx2's context (the system's trust store)
        connector = aiohttp.TCPConnector(limit=self._max_connections,
                                         ssl=httpx2.create_ssl_context())
        # not trust_env: that looks for ~/.netrc in a thread on every request; the proxy the
        # environment names (HTTPS_PROXY, NO_PROXY), as the SDK would use it, is found once
        self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def open(self, body: dict) -> Opened | None:
        """Send ``body``; the response once its status is a success.

        Raises the SDK's ``APIStatusError`` subclass for an error it would not retry. Returns
        ``None`` after the SDK's back-off when it would retry (the caller asks the SDK, with
        one retry fewer), and when the client allows no retry raises what the SDK would.
        """
        session = self._session or self._start()
        try:
            response = await session.post(self.url, data=_JSON.encode(body).encode(),
                                          headers=self._headers, proxy=self.proxy)
        except _CONNECTION_ERRORS as exc:
            if self.client.max_retries > 0:
                await self._back_off(None)
                return None
            if isinstance(exc, TimeoutError):
                raise openai.APITimeoutError(self.request) from exc
            raise openai.APIConnectionError(request=self.request) from exc
        if 200 <= response.status < 300:  # a final 3xx is an error to the SDK too
            return Opened(response, self.request)
        try:
            content = await response.read()
        except _CONNECTION_ERRORS:
            content = b""
        finally:
            response.release()
        headers = [(name, value) for name, value in response.headers.items()  # aiohttp has
                   if name.lower() not in _DECODED]  # decompressed it: httpx2 must not again
        failed = httpx2.Response(response.status, headers=headers, content=content,
                                 request=self.request)
        if self.client.max_retries > 0 and self.client._should_retry(failed):
            await self._back_off(failed.headers)
            return None
        raise self.client._make_status_error_from_response(failed) from None

    async def _back_off(self, headers: httpx2.Headers | None) -> None:
        """Wait as the SDK waits before its first retry."""
        retries = self.client.max_retries
        await anyio.sleep(self.client._calculate_retry_timeout(retries, CHAT_POST, headers))

    def retry_options(self, body: dict[str, Any]) -> FinalRequestOptions:
        """The SDK's options for the rest of the attempts, after a first one here."""
        return CHAT_POST.model_copy(update={"json_data": body,
                                            "max_retries": self.client.max_retries - 1})

    async def aclose(self) -> None:
        """Close the connection pool (in the loop that opened it)."""
        if self._session is not None:
            await self._session.close()
            self._session = None
