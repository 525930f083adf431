"""The relay's upstream reader: a provider's stream in, the relay's events out, in batches.

Deliberate choices (measured in docs/performance.md):

- **The SDK for the request, not for the body.** ``client.post(..., cast_to=httpx2.Response,
  stream=True)`` keeps the SDK's auth, ``base_url``, retries and status exceptions, and skips
  ``chat.completions.create``'s parameter transform (about 1 ms of CPU per request) and the
  pydantic ``ChatCompletionChunk`` per chunk (about 150 µs each). The body is decoded by
  :class:`helpers.sse.SSEDecoder` and ``json.loads`` into plain dicts.
- **One batch per network read:** a fast provider's read holds many chunks, written to the
  client in one go; a slow one's holds one, sent at once. Latency never waits for a batch.
- **The providers table decides** whether to ask for usage (``traits_for``), and
  ``find_usage`` alone knows where a chunk carries it; it runs only on chunks that mention
  ``"usage"`` at all.
- **aiohttp's transport** (``relay_client``): its C parser hands over whatever bytes have
  arrived; 15 µs versus 30 µs of CPU per chunk with the default httpx transport.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx2
import openai

from ..cost import OFFLINE_HEADER, with_cost
from ..errors import IncompleteStream
from ..sse import SSEDecoder
from ..usage import find_usage

__all__ = ["Batch", "IncompleteStream", "relay_client", "upstream_batches"]

#: One read's worth of relay events: ``[(name, data), ...]``.
Batch = list[tuple[str, dict[str, Any]]]
_USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


def _usage(value: Any) -> dict[str, int] | None:
    if isinstance(value, dict) and "total_tokens" in value:
        return {key: int(value.get(key) or 0) for key in _USAGE_KEYS}
    return None


def _fold(chunk: Any, batch: Batch, request: httpx2.Request,
          finish_reason: str | None) -> str | None:
    """Add one chunk's text events to ``batch``; return the updated finish_reason."""
    if not isinstance(chunk, dict):
        raise ValueError("a stream chunk is not a JSON object")
    if chunk.get("error"):  # a failure in mid-stream, the way the SDK reports it
        error = chunk["error"]
        message = error.get("message") if isinstance(error, dict) else None
        raise openai.APIError(message or "An error occurred during streaming", request,
                              body=error)
    for choice in (chunk.get("choices") or ())[:1]:
        delta = choice.get("delta") or {}
        if thought := delta.get("reasoning_content"):
            batch.append(("reasoning", {"content": thought}))
        if text := delta.get("content"):
            batch.append(("delta", {"content": text}))
        if choice.get("finish_reason"):
            finish_reason = choice["finish_reason"]
    return finish_reason


async def upstream_batches(client: openai.AsyncOpenAI, model: str, messages: list[dict],
                           *, ask_for_usage: bool = True, max_tokens: int | None = None,
                           offline: bool = False) -> AsyncIterator[Batch]:
    """Stream one chat completion; yield the relay's events, one batch per network read.

    Yields ``delta`` / ``reasoning`` events as text arrives, then one batch with ``usage``
    (when the provider reported it, wherever it put it; with its ``cost``, marked when
    ``offline`` or the offline provider's header says the counts are its own) and ``done``.
    Raises the SDK's
    exceptions on failure (``APIStatusError`` subclasses before the body,
    ``APITimeoutError`` / ``APIConnectionError`` / ``APIError`` while reading it), or
    :class:`IncompleteStream`. Closing the generator closes the provider connection.
    """
    body: dict[str, Any] = {"model": model, "messages": messages, "stream": True}
    if ask_for_usage:
        body["stream_options"] = {"include_usage": True}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    finish_reason: str | None = None
    usage: dict[str, int] | None = None
    http = await client.post("/chat/completions", cast_to=httpx2.Response, body=body,
                             stream=True)
    decoder = SSEDecoder()
    try:
        async for data in http.aiter_bytes():
            batch: Batch = []
            failure: Exception | None = None
            try:
                for _, payload in decoder.feed(data):
                    if payload == "[DONE]":
                        break
                    chunk = json.loads(payload)
                    finish_reason = _fold(chunk, batch, http.request, finish_reason)
                    if '"usage"' in payload and (found := find_usage(chunk)):
                        usage = _usage(found[1]) or usage
            except Exception as exc:  # keep the text this read already carried
                failure = exc
            if batch:
                yield batch
            if failure is not None:
                raise failure
    except httpx2.TimeoutException as exc:
        raise openai.APITimeoutError(http.request) from exc
    except httpx2.TransportError as exc:
        raise openai.APIConnectionError(request=http.request) from exc
    finally:
        with anyio.CancelScope(shield=True):  # a cancelled task must still hang up
            await http.aclose()
    if finish_reason is None:
        raise IncompleteStream("The provider's stream ended before the answer finished")
    offline = offline or OFFLINE_HEADER in http.headers
    final: Batch = [("usage", with_cost(usage, model, offline=offline))
                    ] if usage is not None else []
    final.append(("done", {"finish_reason": finish_reason}))
    yield final


def relay_client(config: Any, *, read_timeout: float) -> openai.AsyncOpenAI:
    """Return the relay's SDK client: the config's URL and key, aiohttp's transport."""
    timeout = openai.Timeout(connect=10.0, read=read_timeout, write=30.0, pool=10.0)
    return openai.AsyncOpenAI(base_url=config.base_url, api_key=config.api_key, timeout=timeout,
                              http_client=openai.DefaultAioHttpClient(timeout=timeout))
