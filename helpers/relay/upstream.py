"""The relay's upstream reader: a provider's stream in, the relay's events out, in batches.

Deliberate choices (measured in docs/performance.md):

- **The SDK for the request, not for the body.** ``client.request(httpx2.Response, options,
  stream=True)`` (what ``client.post`` calls, with its options built once) keeps the SDK's
  auth, ``base_url``, retries and status exceptions, and skips ``chat.completions.create``'s
  parameter transform (about 1 ms of CPU per request) and the pydantic
  ``ChatCompletionChunk`` per chunk (about 150 µs each). The body is decoded by
  :class:`helpers.streams.sse.SSEDecoder` and ``json.loads`` into plain dicts.
- **A text delta is not parsed twice the same way** (:class:`~.chunkreader.ChunkReader`,
  a module of its own).
- **One batch per network read:** a fast provider's read holds many chunks, written to the
  client in one go; a slow one's holds one, sent at once. Latency never waits for a batch.
- **The providers table decides** whether to ask for usage (``traits_for``), and
  ``find_usage`` alone knows where a chunk carries it; it runs only on chunks that mention
  ``"usage"`` at all.
- **aiohttp's transport** (``relay_client``): its C parser hands over whatever bytes have
  arrived; 15 µs versus 30 µs of CPU per chunk with the default httpx transport.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio
import httpx2
import openai

from ..errors import IncompleteStream
from ..money.labels import OFFLINE_HEADER, with_cost
from ..streams.sse import SSEDecoder
from .chunkreader import Batch, ChunkReader
from .direct import CHAT_POST, DirectChat, Opened

__all__ = ["Batch", "IncompleteStream", "relay_client", "upstream_batches"]

async def upstream_batches(client: openai.AsyncOpenAI, model: str, messages: list[dict],
                           *, ask_for_usage: bool = True, max_tokens: int | None = None,
                           offline: bool = False, direct: DirectChat | None = None
                           ) -> AsyncIterator[Batch]:
    """Stream one chat completion; yield the relay's events, one batch per network read.

    Yields ``delta`` / ``reasoning`` events as text arrives, then one batch with ``usage``
    (when the provider reported it, wherever it put it; with its ``cost``, marked when
    ``offline`` or the offline provider's header says the counts are its own) and ``done``.
    Raises the SDK's
    exceptions on failure (``APIStatusError`` subclasses before the body,
    ``APITimeoutError`` / ``APIConnectionError`` / ``APIError`` while reading it), or
    :class:`IncompleteStream`. Closing the generator closes the provider connection.
    ``direct`` sends the request without the SDK's layers (:mod:`helpers.relay.direct`),
    which hands failures and retries back to the SDK.
    """
    body: dict[str, Any] = {"model": model, "messages": messages, "stream": True}
    if ask_for_usage:
        body["stream_options"] = {"include_usage": True}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    http: Any = await direct.open(body) if direct is not None else None
    if http is None:  # the SDK: no direct route, or its retries after a first attempt there
        options = (direct.retry_options(body) if direct is not None  # = client.post's options
                   else CHAT_POST.model_copy(update={"json_data": body}))
        http = await client.request(httpx2.Response, options, stream=True)
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
    except (TimeoutError, httpx2.TimeoutException) as exc:  # aiohttp's, or the SDK's
        raise openai.APITimeoutError(http.request) from exc
    except (httpx2.TransportError, aiohttp.ClientError) as exc:
        raise openai.APIConnectionError(request=http.request) from exc
    finally:
        if isinstance(http, Opened):
            http.release()  # at once: no await that a cancellation could interrupt
        else:
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
