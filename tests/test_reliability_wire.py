"""Reliability, family 1: SSE wire edge cases, on the Python side (the page's parser is
fuzzed in tests/js/sse_fuzz.test.js).

Four parsers read our bytes or a provider's: the openai SDK's decoder (lessons read the
provider with it), the relay's own upstream decoder (helpers/streams/sse.py), httpx-sse (lesson 5
reads the relay with it) and the page's sse.js. One encoder
writes them: :func:`helpers.streams.sse.encode_event`. Every case here checks that the text that
comes out is exactly the text that went in, whatever the line endings, the read boundaries
(down to one byte a read), comments, multi-line data, characters that other line splitters
treat as line breaks (U+2028, U+2029), tokens that are themselves blank lines, empty deltas,
or a stream that ends without ``[DONE]``.

Fuzzing is seeded (``random.Random(seed)``), so a failure names a reproducible case.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import httpx2
import openai
import pytest
from httpx_sse import EventSource
from openai._streaming import SSEDecoder as SDKDecoder

from helpers.relay import create_app
from helpers.settings import Config
from helpers.streams.chunks import collect
from helpers.streams.sse import EVENT_NAMES, encode_comment, encode_event
from helpers.streams.sse import SSEDecoder as RelayDecoder

pytestmark = pytest.mark.timeout(120)

#: Characters that break naive parsers: line ends, separators other splitters honour,
#: multi-byte UTF-8 (2, 3 and 4 bytes), JSON's own escapes, what looks like an SSE field.
TRICKY = ["\n", "\r", "\r\n", "\n\n", "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "é", "勾",
          "😀", "\"", "\\", "data: x", ": ping", "event: done", " ", "\t", "\ufeff", "$$", ""]
SEEDS = range(40)


def random_text(rng: random.Random) -> str:
    return "".join(rng.choice(TRICKY + ["a", "b", "word "]) for _ in range(rng.randint(0, 12)))


def random_events(rng: random.Random) -> list[tuple[str, dict]]:
    events = [(rng.choice(["delta", "reasoning"]), {"content": random_text(rng)})
              for _ in range(rng.randint(1, 15))]
    events.append((rng.choice(["done", "error"]), {"finish_reason": random_text(rng)}))
    return events


def reframe(raw: bytes, eol: bytes) -> bytes:
    """Our encoder uses LF; a provider may use CR or CRLF. Raw LF only ever frames."""
    return raw.replace(b"\n", eol)


def random_reads(data: bytes, rng: random.Random) -> list[bytes]:
    """Cut ``data`` at random places: sometimes 1 byte a read, sometimes bigger reads."""
    if rng.random() < 0.3:
        return [data[i:i + 1] for i in range(len(data))]
    reads, i = [], 0
    while i < len(data):
        n = rng.randint(1, 40)
        reads.append(data[i:i + n])
        i += n
    return reads


def decode_with_sdk(reads: list[bytes]) -> list[tuple[str | None, str]]:
    # The SDK leaves an unnamed event's name as None; the spec (and httpx-sse) say "message".
    return [(e.event or "message", e.data) for e in SDKDecoder().iter_bytes(iter(reads))]


def decode_with_httpx_sse(reads: list[bytes]) -> list[tuple[str | None, str]]:
    response = httpx.Response(200, headers={"content-type": "text/event-stream"},
                              content=iter(reads))
    return [(e.event, e.data) for e in EventSource(response).iter_sse()]


def decode_with_relay(reads: list[bytes]) -> list[tuple[str | None, str]]:
    """The relay's own upstream decoder (helpers/streams/sse.py), one network read at a time."""
    decoder = RelayDecoder()
    return [event for read in reads for event in decoder.feed(read)]


DECODERS: dict[str, Callable[[list[bytes]], list[tuple[str | None, str]]]] = {
    "openai-sdk": decode_with_sdk, "httpx-sse": decode_with_httpx_sse,
    "relay-upstream": decode_with_relay}


# -- the encoder ------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_encoder_frames_any_text_in_exactly_one_data_line(seed: int) -> None:
    rng = random.Random(seed)
    for name, data in random_events(rng):
        raw = encode_event(name, data)
        # event line, data line, blank line: the text's own line breaks are JSON-escaped,
        # and U+2028/U+2029 stay raw (JSON allows them; SSE splits on CR and LF only).
        assert raw.count(b"\n") == 3 and b"\r" not in raw
        assert raw.startswith(f"event: {name}\ndata: ".encode()) and raw.endswith(b"\n\n")
        assert json.loads(raw.split(b"\n")[1][6:]) == data
    assert all(name.isidentifier() for name in EVENT_NAMES)


def test_encoder_never_writes_a_byte_order_mark() -> None:
    raw = encode_event("delta", {"content": "\ufeffbom inside the text"})
    assert not raw.startswith(b"\xef\xbb\xbf")
    assert encode_comment("keep-alive") == b": keep-alive\n\n"


# -- Python decoders: random events, line endings and read boundaries -------------------------
@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("seed", SEEDS)
def test_decoders_give_back_exactly_what_was_encoded(decoder: str, seed: int) -> None:
    rng = random.Random(1000 + seed)
    events = random_events(rng)
    eol = rng.choice([b"\n", b"\r", b"\r\n"])
    wire = b""
    for name, data in events:
        if rng.random() < 0.3:
            wire += encode_comment(rng.choice(["keep-alive", "", "ping"]))
        wire += encode_event(name, data)
    wire = reframe(wire, eol)
    decoded = DECODERS[decoder](random_reads(wire, rng))
    assert [(n, json.loads(d)) for n, d in decoded] == events


@pytest.mark.parametrize("decoder", DECODERS)
def test_cr_at_the_end_of_one_read_and_lf_at_the_start_of_the_next(decoder: str) -> None:
    reads = [b"event: delta\r", b"\ndata: {\"content\":\"x\"}\r", b"\n\r", b"\n",
             b"data: {\"content\":\"y\"}\r\n\r", b"\n"]
    assert DECODERS[decoder](reads) == [("delta", '{"content":"x"}'),
                                        ("message", '{"content":"y"}')]




@pytest.mark.parametrize("decoder", list(DECODERS))
def test_multi_line_data_comments_and_keep_alives(decoder: str) -> None:
    wire = (b": keep-alive\n\n:\ndata: first\ndata:second\ndata\r\n\r\n"
            b": ping\r\nevent: x\rdata:  two\r\r")
    for size in (1, 2, 3, 7, len(wire)):
        reads = [wire[i:i + size] for i in range(0, len(wire), size)]
        assert DECODERS[decoder](reads) == [("message", "first\nsecond\n"), ("x", " two")]


def test_relay_decoder_ends_a_line_at_a_final_cr() -> None:
    """Regression: a CR ending a read was held for the next read (in case an LF followed), so
    with CR-only line endings each event waited for more bytes and the last one was lost."""
    decoder = RelayDecoder()
    # The event is complete when "\r\r" arrives; the next read may be seconds away ([hold]).
    assert list(decoder.feed(b"event: delta\rdata: {\"content\":\"x\"}\r\r")) == [
        ("delta", '{"content":"x"}')]
    assert list(decoder.feed(b"\ndata: y\r\n\r\n")) == [("message", "y")]  # LF skipped once


@pytest.mark.parametrize("decoder", DECODERS)
def test_a_multi_byte_character_split_at_every_byte(decoder: str) -> None:
    data = json.dumps({"content": "勾股定理 😀 é\u2028\u2029"}, ensure_ascii=False)
    wire = f"event: delta\ndata: {data}\n\n".encode()
    for cut in range(1, len(wire)):
        assert DECODERS[decoder]([wire[:cut], wire[cut:]]) == [("delta", data)]


# -- the SDK: a provider stream without [DONE], empty deltas, odd tokens ----------------------
def provider_chunk(delta: dict, finish: str | None = None) -> bytes:
    payload = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"


ODD_TOKENS = ["Hello", "\n\n", "", "\u2028", "line\u2029sep", "\r\n", "勾", "😀", " data: x",
              "\n\ndata: [DONE]\n\n", "", "end"]


def provider_stream(tokens: list[str], *, finish: bool = True, done: bool = True,
                    eol: bytes = b"\n", comments: bool = True) -> bytes:
    wire = (b": keep-alive\n\n" if comments else b"") + provider_chunk(
        {"role": "assistant", "content": ""})
    for token in tokens:
        wire += provider_chunk({"content": token})
    if finish:
        wire += provider_chunk({}, "stop")
    if done:
        wire += b"data: [DONE]\n\n"
    return wire.replace(b"\n", eol)  # JSON escapes the tokens' own line breaks


def mock_provider(wire: bytes, read_size: int) -> Callable[[Any], Any]:
    def handler(request: Any) -> Any:
        async def body() -> AsyncIterator[bytes]:
            for i in range(0, len(wire), read_size):
                yield wire[i:i + read_size]

        return httpx2.Response(200, headers={"content-type": "text/event-stream"},
                               content=body())
    return handler


def sdk_client(wire: bytes, read_size: int) -> openai.OpenAI:
    def handler(request: Any) -> Any:
        chunks = [wire[i:i + read_size] for i in range(0, len(wire), read_size)]
        return httpx2.Response(200, headers={"content-type": "text/event-stream"},
                               content=iter(chunks))
    return openai.OpenAI(base_url="http://provider.test/v1", api_key="k", max_retries=0,
                         http_client=openai.DefaultHttpxClient(
                             transport=httpx2.MockTransport(handler)))


@pytest.mark.parametrize("read_size", [1, 2, 5, 64, 100_000])
@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"], ids=["LF", "CR", "CRLF"])
def test_sdk_reads_odd_tokens_exactly_at_any_read_size(read_size: int, eol: bytes) -> None:
    client = sdk_client(provider_stream(ODD_TOKENS, eol=eol), read_size)
    result = collect(client.chat.completions.create(model="m", messages=[], stream=True))
    assert result.text == "".join(ODD_TOKENS)
    assert result.finish_reason == "stop"
    assert result.chunks == len(ODD_TOKENS) + 2  # role chunk + tokens + finish chunk


@pytest.mark.parametrize("finish", [True, False], ids=["with-finish-reason", "no-finish-reason"])
def test_sdk_ends_cleanly_on_a_stream_without_done(finish: bool) -> None:
    client = sdk_client(provider_stream(["a", "b"], finish=finish, done=False), 3)
    result = collect(client.chat.completions.create(model="m", messages=[], stream=True))
    assert result.text == "ab"
    assert result.finish_reason == ("stop" if finish else None)  # None: the caller can tell


# -- end to end: a provider's odd bytes, through the relay, into both Python decoders --------
def relay_body(wire: bytes, read_size: int) -> bytes:
    """POST one question to a relay whose upstream sends ``wire``; return the relay's bytes."""
    async def go() -> bytes:
        upstream = openai.AsyncOpenAI(
            base_url="http://provider.test/v1", api_key="k", max_retries=0,
            http_client=openai.DefaultAsyncHttpxClient(
                transport=httpx2.MockTransport(mock_provider(wire, read_size))))
        app = create_app(Config("offline", "http://provider.test/v1", "m", "k"),
                         client=upstream)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            response = await c.post("/api/chat/stream", json={"question": "hi"})
        assert response.status_code == 200
        await upstream.close()
        return response.content
    return asyncio.run(go())


@pytest.mark.parametrize("read_size", [1, 7, 100_000])
@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"], ids=["LF", "CR", "CRLF"])
def test_relay_passes_odd_tokens_through_exactly(read_size: int, eol: bytes) -> None:
    body = relay_body(provider_stream(ODD_TOKENS, eol=eol), read_size)
    assert not body.startswith(b"\xef\xbb\xbf") and body.startswith(b"event: delta\n")
    for name, decode in DECODERS.items():
        events = [(e, json.loads(d)) for e, d in decode([body[i:i + 3]
                                                          for i in range(0, len(body), 3)])]
        deltas = [d["content"] for e, d in events if e == "delta"]
        assert "".join(deltas) == "".join(ODD_TOKENS), name
        assert "" not in deltas, "empty deltas are not forwarded"
        assert events[-1] == ("done", {"finish_reason": "stop"}), name


def test_relay_turns_a_stream_without_finish_or_done_into_an_error_keeping_the_text() -> None:
    body = relay_body(provider_stream(["par", "tial"], finish=False, done=False), 5)
    events = [(e, json.loads(d)) for e, d in decode_with_sdk([body])]
    assert "".join(d["content"] for e, d in events if e == "delta") == "partial"
    assert events[-1][0] == "error" and events[-1][1]["type"] == "incomplete_stream"
    assert [e for e, _ in events].count("done") == 0


@pytest.mark.parametrize("eol", [
    b"\n", b"\r\n", b"\r"],
    ids=["LF", "CRLF", "CR"])
def test_relay_accepts_a_stream_that_finished_without_done(eol: bytes) -> None:
    body = relay_body(provider_stream(["ok"], finish=True, done=False, eol=eol), 4)
    events = [(e, json.loads(d)) for e, d in decode_with_sdk([body])]
    assert events == [("delta", {"content": "ok"}), ("done", {"finish_reason": "stop"})]
