"""The real wire next to the simulator: streams and error bodies as providers publish them.

Each :class:`Recording` holds a few ``data:`` lines copied from a provider's public
documentation (its example stream), with the page, the date it was checked, and the offline
model and request that imitate it. :func:`wire_shape` reduces a stream to what a client
depends on, so the offline provider's flavours can be checked against the real thing (lesson 6
prints both; ``tests/test_recordings.py`` asserts they agree):

- the fields every chunk carries (``id``, ``object``, ``created``, ``model``, ``choices``) and
  every choice (``index``, ``delta``, ``finish_reason``); extra fields a provider adds
  (``system_fingerprint``, ``logprobs``) are not part of the shape, and the offline provider
  leaves them out;
- the keys of the first delta (``role`` and an empty ``content``);
- every place ``usage`` appears, in the words of :mod:`helpers.providers.table`;
- how the stream ends: the chunk with ``finish_reason``, a usage-only chunk or not, ``[DONE]``.

Deliberate choices: the lines are kept as published, the docs' own ``...`` elisions left out
(the middle of an answer is only more content chunks); ``ids``, times and texts are the
provider's. Where a provider publishes no example stream (Ollama), the recording is rebuilt
from its source code and says so in ``note``. The one table of provider facts stays
:mod:`helpers.providers.table`; these recordings are the evidence it is checked against.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..streams.usage import find_usage
from .table import USAGE_PLACES

__all__ = ["ERROR_RECORDINGS", "RECORDINGS", "ErrorRecording", "Recording", "WireShape",
           "error_shape", "offline_lines", "wire_shape"]

CHECKED = "2026-11-29"
CHUNK_FIELDS = ("id", "object", "created", "model", "choices")
CHOICE_FIELDS = ("index", "delta", "finish_reason")
DELTA_FIELDS = ("role", "content", "reasoning_content")


@dataclass(frozen=True)
class Recording:
    """A stream as a provider's documentation shows it, and the offline request that imitates it."""

    name: str
    family: str  # a key of helpers.providers.table.FAMILIES
    offline_model: str  # the offline provider's model for this flavour
    asked: bool  # sent with stream_options={"include_usage": True}
    source: str  # where the lines were copied from
    lines: tuple[str, ...]  # the data: lines, [DONE] included
    checked: str = CHECKED
    note: str = ""


@dataclass(frozen=True)
class ErrorRecording:
    """An error body as a provider documents it."""

    name: str
    status: int
    body: dict
    source: str
    checked: str = CHECKED
    note: str = ""


def _data(*chunks: str) -> tuple[str, ...]:
    return tuple(f"data: {c}" for c in chunks) + ("data: [DONE]",)


_KIMI_ID = '"id":"cmpl-1305b94c570f447fbde3180560736287","object":"chat.completion.chunk",' \
           '"created":1698999575'
_DS = ('"created": 1718345013, "id": "1f633d8bfc032625086f14113c411638", "model": '
       '"deepseek-v4-pro", "object": "chat.completion.chunk", '
       '"system_fingerprint": "fp_a49d71b8a1"')
_QWEN = ('"object":"chat.completion.chunk","created":1726132850,"system_fingerprint":null,'
         '"model":"qwen-plus","id":"chatcmpl-428b414f-fdd4-94c6-b179-8f576ad653a8"')
_OAI = ('"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,'
        '"model":"gpt-4o-mini", "system_fingerprint": "fp_44709d6fcb"')
_OLLAMA = ('"id":"chatcmpl-1","object":"chat.completion.chunk","created":1733000000,'
           '"model":"qwen2.5:0.5b","system_fingerprint":"fp_ollama"')

#: The recorded streams, one per provider flavour (and Moonshot asked and not asked).
RECORDINGS: tuple[Recording, ...] = (
    Recording(
        "Moonshot", "moonshot", "moonshot-v1-8k", False,
        "platform.moonshot.cn/docs/guide/utilize-the-streaming-output-feature-of-kimi-api "
        "(the SSE body example; page last updated 2025-11-09)",
        _data('{%s,"model":"kimi-k2-turbo-preview","choices":[{"index":0,"delta":{"role":'
              '"assistant","content":""},"finish_reason":null}]}' % _KIMI_ID,
              '{%s,"model":"kimi-k2-turbo-preview","choices":[{"index":0,"delta":{"content":'
              '"你好"},"finish_reason":null}]}' % _KIMI_ID,
              '{%s,"model":"kimi-k2-turbo-preview","choices":[{"index":0,"delta":{},'
              '"finish_reason":"stop","usage":{"prompt_tokens":19,"completion_tokens":13,'
              '"total_tokens":32}}]}' % _KIMI_ID)),
    Recording(
        "Moonshot, asked", "moonshot", "moonshot-v1-8k", True,
        "platform.kimi.ai/docs/guide/utilize-the-streaming-output-feature-of-kimi-api "
        "('Parse the SSE Response Body', a request with stream_options.include_usage)",
        _data('{%s,"model":"kimi-k3","choices":[{"index":0,"delta":{"role":"assistant",'
              '"content":""},"finish_reason":null}]}' % _KIMI_ID,
              '{%s,"model":"kimi-k3","choices":[{"index":0,"delta":{"content":"Hello"},'
              '"finish_reason":null}]}' % _KIMI_ID,
              '{%s,"model":"kimi-k3","choices":[{"index":0,"delta":{},"finish_reason":"stop",'
              '"usage":{"prompt_tokens":19,"completion_tokens":13,"total_tokens":32}}]}' % _KIMI_ID,
              '{%s,"model":"kimi-k3","choices":[],"usage":{"prompt_tokens":19,'
              '"completion_tokens":13,"total_tokens":32}}' % _KIMI_ID)),
    Recording(
        "DeepSeek", "deepseek", "deepseek-chat", False,
        "api-docs.deepseek.com/api/create-chat-completion (the streaming response example)",
        _data('{"id": "1f633d8bfc032625086f14113c411638", "choices": [{"index": 0, "delta": '
              '{"content": "", "role": "assistant"}, "finish_reason": null, "logprobs": null}], '
              '"created": 1718345013, "model": "deepseek-v4-pro", "system_fingerprint": '
              '"fp_a49d71b8a1", "object": "chat.completion.chunk", "usage": null}',
              '{"choices": [{"delta": {"content": "Hello", "role": "assistant"}, '
              '"finish_reason": null, "index": 0, "logprobs": null}], %s}' % _DS,
              '{"choices": [{"delta": {"content": "", "role": null}, "finish_reason": "stop", '
              '"index": 0, "logprobs": null}], %s, "usage": {"completion_tokens": 9, '
              '"prompt_tokens": 17, "total_tokens": 26}}' % _DS),
        note="keep-alive comments come only while a busy server makes you wait, so the docs' "
             "example has none; the offline provider sends one on every stream (its choice)"),
    Recording(
        "Qwen (DashScope), asked", "qwen", "qwen-plus", True,
        "help.aliyun.com/zh/model-studio/stream (OpenAI-compatible curl example, with "
        "stream_options.include_usage)",
        _data('{"choices":[{"delta":{"content":"","role":"assistant"},"index":0,"logprobs":null,'
              '"finish_reason":null}],"usage":null,%s}' % _QWEN,
              '{"choices":[{"finish_reason":null,"delta":{"content":"我是"},"index":0,'
              '"logprobs":null}],"usage":null,%s}' % _QWEN,
              '{"choices":[{"finish_reason":"stop","delta":{"content":""},"index":0,'
              '"logprobs":null}],"usage":null,%s}' % _QWEN,
              '{"choices":[],"usage":{"prompt_tokens":22,"completion_tokens":17,'
              '"total_tokens":39},%s}' % _QWEN)),
    Recording(
        "OpenAI", "openai", "gpt-4o-mini", False,
        "platform.openai.com/docs/api-reference/chat-streaming/streaming (the chunk object "
        "example; 'data:' framing and [DONE] from the same reference's stream description)",
        _data('{%s, "choices":[{"index":0,"delta":{"role":"assistant","content":""},'
              '"logprobs":null,"finish_reason":null}]}' % _OAI,
              '{%s, "choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,'
              '"finish_reason":null}]}' % _OAI,
              '{%s, "choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}'
              % _OAI)),
    Recording(
        "Ollama, asked", "local", "qwen2.5:0.5b", True,
        "github.com/ollama/ollama openai/openai.go (ChatCompletionChunk, ToChunk) and "
        "middleware/openai.go (a usage chunk with choices [] before [DONE], since v0.5.2)",
        _data('{%s,"choices":[{"index":0,"delta":{"role":"assistant","content":""},'
              '"finish_reason":null}]}' % _OLLAMA,
              '{%s,"choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"},'
              '"finish_reason":null}]}' % _OLLAMA,
              '{%s,"choices":[{"index":0,"delta":{"role":"assistant","content":""},'
              '"finish_reason":"stop"}]}' % _OLLAMA,
              '{%s,"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":8,'
              '"total_tokens":18}}' % _OLLAMA),
        note="Ollama's docs show no example stream: rebuilt from its source's types (ids, "
             "times and counts invented); its deltas repeat role on every chunk"),
)

#: Error bodies as documented. The offline provider answers in Moonshot's shape.
ERROR_RECORDINGS: tuple[ErrorRecording, ...] = (
    ErrorRecording("Moonshot", 400, {"error": {
        "type": "content_filter",
        "message": "The request was rejected because it was considered high risk"}},
        "platform.kimi.ai/docs/api/errors (the example body; 401 is invalid_authentication_"
        "error, 'Invalid Authentication', in the same page's table)"),
    ErrorRecording("Qwen (DashScope)", 401, {"error": {
        "message": "Incorrect API key provided. ", "type": "invalid_request_error",
        "param": None, "code": "invalid_api_key"}},
        "help.aliyun.com/zh/model-studio/qwen-vl-compatible-with-openai (异常响应示例)"),
    ErrorRecording("Ollama", 404, {"error": {
        "message": "model \"llama3\" not found, try pulling it first", "type": "not_found_error",
        "param": None, "code": None}},
        "github.com/ollama/ollama openai/openai.go (NewError: type by status, param and code "
        "null)", note="rebuilt from the source; the message is Ollama's not-found text"),
)


@dataclass(frozen=True)
class WireShape:
    """What a client depends on in a stream (see the module docstring)."""

    chunk_fields: tuple[str, ...]
    choice_fields: tuple[str, ...]
    first_delta: tuple[str, ...]
    usage: tuple[str, ...]
    ending: tuple[str, ...]

    def __str__(self) -> str:
        usage = " + ".join(self.usage) or "nowhere"
        return (f"first delta {{{', '.join(self.first_delta)}}} · usage: {usage} · "
                f"ends: {' → '.join(self.ending)}")


def _chunks(lines: Any) -> tuple[list[dict], bool]:
    chunks, done = [], False
    for line in lines:
        if not line.startswith("data:"):
            continue  # blank lines, comments (": keep-alive")
        data = line[5:].strip()
        if data == "[DONE]":
            done = True
        else:
            chunks.append(json.loads(data))
    return chunks, done


def _kind(chunk: dict) -> str:
    choices = chunk.get("choices") or []
    if not choices:
        return "usage chunk" if chunk.get("usage") else "empty chunk"
    return "finish_reason" if choices[0].get("finish_reason") else "delta"


def wire_shape(lines: Any) -> WireShape:
    """Reduce raw SSE lines (``data: ...``) to the :class:`WireShape` a client depends on."""
    chunks, done = _chunks(lines)
    if not chunks:
        raise ValueError("no data chunks in these lines")
    choices = [c for chunk in chunks for c in chunk.get("choices") or []]
    first = (chunks[0].get("choices") or [{}])[0].get("delta") or {}
    places = {found[0] for chunk in chunks if (found := find_usage(chunk))}
    kinds = [_kind(c) for c in chunks]
    end = kinds.index("finish_reason") if "finish_reason" in kinds else len(kinds)
    return WireShape(
        chunk_fields=tuple(f for f in CHUNK_FIELDS if all(f in c for c in chunks)),
        choice_fields=tuple(f for f in CHOICE_FIELDS if choices and all(f in c for c in choices)),
        first_delta=tuple(f for f in DELTA_FIELDS if f in first),
        usage=tuple(p for p in USAGE_PLACES if p in places),
        ending=(*kinds[end:], *(["[DONE]"] if done else [])))


def error_shape(body: dict) -> tuple[str, ...]:
    """Return the keys a client reads in an error body: ``error.type`` and ``error.message``."""
    error = body.get("error")
    if not isinstance(error, dict):
        return ()
    return tuple(k for k in ("type", "message") if isinstance(error.get(k), str))


def offline_lines(config: Any, recording: Recording,
                  question: str = "Hello!") -> list[str]:
    """Ask the offline provider what ``recording`` shows, and return its raw lines."""
    from ..streams.raw_wire import raw_sse_lines

    body: dict[str, Any] = {"model": recording.offline_model, "stream": True,
                            "messages": [{"role": "user", "content": question}]}
    if recording.asked:
        body["stream_options"] = {"include_usage": True}
    return raw_sse_lines(config, body)
