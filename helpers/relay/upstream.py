"""The relay's upstream reader: a provider's stream in, the relay's events out, in batches.

Deliberate choices (measured in docs/performance.md):

- **The SDK's public API for the request, not for the body.** ``client.post("/chat/completions",
  body=..., cast_to=httpx2.Response, stream=True)`` (the SDK README's way to call an endpoint
  with a body of your own) keeps the SDK's auth, headers, ``base_url``, retries and status
  exceptions, and skips ``chat.completions.create``'s per-request parameter transform and the
  pydantic ``ChatCompletionChunk`` per chunk (about 150 µs each). The body is read as bytes
  and decoded by :class:`helpers.streams.sse.SSEDecoder` and :class:`~.chunkreader.ChunkReader`.
- **A text delta is not parsed twice the same way** (:class:`~.chunkreader.ChunkReader`,
  a module of its own).
- **One batch per network read:** a fast provider's read holds many chunks, written to the
  client in one go; a slow one's holds one, sent at once. Latency never waits for a batch.
- **The providers table decides** whether to ask for usage (``traits_for``), and
  ``find_usage`` alone knows where a chunk carries it; it runs only on chunks that mention
  ``"usage"`` at all.
- **aiohttp's transport** (``relay_client``: ``openai.DefaultAioHttpClient``): its C parser
  hands over whatever bytes have arrived; 15 µs versus 30 µs of CPU per chunk with the
  default httpx2 transport.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx2
import openai

from ..errors import IncompleteStream
from ..money.labels import OFFLINE_HEADER, with_cost
from ..streams.sse import SSEDecoder
from .chunkreader import Batch, ChunkReader

__all__ = ["Batch", "ChunkReader", "IncompleteStream", "relay_client", "upstream_batches"]


async def upstream_batches(client: openai.AsyncOpenAI, model: str, messages: list[dict],
                           *, ask_for_usage: bool = True, max_tokens: int | None = None,
                           offline: bool = False) -> AsyncIterator[Batch]:
    """Stream one chat completion; yield the relay's events, one batch per network read.

    Yields ``delta`` / ``reasoning`` events as text arrives, then one batch with ``usage``
    (when the provider reported it, wherever it put it; with its ``cost``, marked when
    ``offline`` or the offline provider's header says the counts are its own) and ``done``.
    Raises the SDK's exceptions on failure (``APIStatusError`` subclasses before the body,
    after the SDK's retries; ``APITimeoutError`` / ``APIConnectionError`` / ``APIError``
    while reading it), or :class:`IncompleteStream`. Closing the generator closes the
    provider connection.
    """
    body: dict[str, Any] = {"model": model, "messages": messages, "stream": True}
    if ask_for_usage:
        body["stream_options"] = {"include_usage": True}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    http = await client.post("/chat/completions", body=body, cast_to=httpx2.Response,
                             stream=True)
    decoder = SSEDecoder()
    reader = ChunkReader(http.request)
    try:
        async for data in http.aiter_bytes():
            batch: Batch = []
            failure: Exception | None = None
            try:
                for _, payload in decoder.feed(data):
                    if not reader.feed(payload, batch):
                        break
            except Exception as exc:  # keep the text this read already carried
                failure = exc
            if batch:
                yield batch
            if failure is not None:
                raise failure
    except (TimeoutError, httpx2.TimeoutException) as exc:  # aiohttp's, as the SDK maps it
        raise openai.APITimeoutError(http.request) from exc
    except httpx2.TransportError as exc:
        raise openai.APIConnectionError(request=http.request) from exc
    finally:
        with anyio.CancelScope(shield=True):  # a cancelled task must still hang up
            await http.aclose()
    if reader.finish_reason is None:
        raise IncompleteStream("The provider's stream ended before the answer finished")
    offline = offline or OFFLINE_HEADER in http.headers
    final: Batch = [("usage", with_cost(reader.usage, model, offline=offline))
                    ] if reader.usage is not None else []
    final.append(("done", {"finish_reason": reader.finish_reason}))
    yield final


def relay_client(config: Any, *, read_timeout: float) -> openai.AsyncOpenAI:
    """Return the relay's SDK client: the config's URL and key, aiohttp's transport."""
    timeout = openai.Timeout(connect=10.0, read=read_timeout, write=30.0, pool=10.0)
    return openai.AsyncOpenAI(base_url=config.base_url, api_key=config.api_key, timeout=timeout,
                              http_client=openai.DefaultAioHttpClient(timeout=timeout))
