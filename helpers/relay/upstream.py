"""The relay's upstream reader: a provider's stream in, the relay's events out, in batches.

Deliberate choices (measured in docs/performance.md):

- **The SDK for the request, not for the body.** ``client.request(httpx2.Response, options,
  stream=True)`` (what ``client.post`` calls, with its options built once) keeps the SDK's
  auth, ``base_url``, retries and status exceptions, and skips ``chat.completions.create``'s
  parameter transform (about 1 ms of CPU per request) and the pydantic
  ``ChatCompletionChunk`` per chunk (about 150 µs each). The body is decoded by
  :class:`helpers.sse.SSEDecoder` and ``json.loads`` into plain dicts.
- **A text delta is not parsed twice the same way** (:class:`ChunkReader`): a provider's
  text chunks differ only in their text, so once one is folded and its shape proven, the
  next are read by slicing out the text's JSON string. Anything else is parsed in full.
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
import re
from collections.abc import AsyncIterator
from itertools import product
from json.decoder import scanstring
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any

import aiohttp
import anyio
import httpx2
import openai

from ..cost import OFFLINE_HEADER, with_cost
from ..errors import IncompleteStream
from ..sse import SSEDecoder
from ..usage import find_usage
from .direct import CHAT_POST, DirectChat, Opened

__all__ = ["Batch", "ChunkReader", "IncompleteStream", "relay_client", "upstream_batches"]

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
        self.finish_reason = _fold(chunk, batch, self.request, self.finish_reason)
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
                finish = _fold(chunk, probe, self.request, None)
            except Exception:
                return
            if probe == [("delta", {"content": _PROBE})] and finish is None \
                    and find_usage(chunk) is None:
                self._head, self._tail = head, tail
            return


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
