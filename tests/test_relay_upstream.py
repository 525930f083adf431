"""The relay's chunk reader: its fast path for text deltas agrees with the reference path.

:class:`helpers.relay.upstream.ChunkReader` reads a plain text-delta chunk by slicing its text
out of a shape it learnt and proved; every other chunk is parsed with ``json.loads``. Here the
fast reader and the reference reader (``fast=False``) read the same chunks and must give the
same events, finish reason, usage and errors, chunk by chunk:

- real streams from the offline provider in every provider flavour (usage in each place,
  reasoning, keep-alives), with and without ``include_usage``, and with faults;
- the same streams mutated (seeded, so a failure names its case): other texts in either JSON
  escaping, a field that changes per chunk, extra fields, reordered keys, broken bytes;
- every kind of string (and non-string) in a learnt shape's text slot;
- each provider's own published example stream (helpers/providers/recordings.py), its text chunk
  repeated with other texts in the very same bytes.

Both readers must also be right, not only agree: the fast reader's text is the provider's
text, and it takes the fast path where it should (or the test would pass with it switched off).
"""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
import pytest

from helpers.providers import MODELS
from helpers.providers.recordings import RECORDINGS
from helpers.relay.upstream import ChunkReader
from helpers.streams.sse import SSEDecoder

#: one model per provider family (the flavours of the wire)
FLAVOURS = sorted({info.family: model for model, info in reversed(MODELS.items())
                   if not getattr(info, "retired", False)}.values())
TRICKY = ["\n", "\r", "\u2028", "é", "勾", "😀", "\"", "\\", "/", "\t", "\x01", "\ufeff",
          "data: x", "}", "\"}]}", ",\"content\":\"x", "\\u00e9", " ", "", "a", "word "]
SEEDS = range(30)


def fetch_payloads(base_url: str, model: str, question: str, usage: bool) -> list[str]:
    """Stream one answer from the offline provider; return its SSE data strings."""
    body: dict[str, Any] = {"model": model, "stream": True,
                            "messages": [{"role": "user", "content": question}]}
    if usage:
        body["stream_options"] = {"include_usage": True}
    with httpx.Client(timeout=30) as client:
        raw = client.post(f"{base_url}/chat/completions", json=body,
                          headers={"Authorization": "Bearer sk-test"}).content
    return [data for _, data in SSEDecoder().feed(raw + b"\n\n")]


def read(payloads: list[str], fast: bool) -> tuple[list[Any], str | None, Any, int]:
    """Feed every payload (one batch each) until the first error or [DONE]."""
    reader = ChunkReader(fast=fast)
    out: list[Any] = []
    fast_hits = 0
    for payload in payloads:
        batch: list = []
        learnt = reader._head is not None
        try:
            more = reader.feed(payload, batch)
        except Exception as exc:  # the relay ends the stream with this error
            out.append(("error", type(exc).__name__, str(exc)))
            break
        if learnt and payload.startswith(reader._head or "\0"):
            fast_hits += 1
        out.append(("ok", batch))
        if not more:
            out.append("[DONE]")
            break
    return out, reader.finish_reason, reader.usage, fast_hits


def assert_agree(payloads: list[str]) -> int:
    """Fast and reference readers give the same; return how many chunks took the fast path."""
    fast, reference = read(payloads, True), read(payloads, False)
    assert fast[:3] == reference[:3], payloads
    assert reference[3] == 0
    return fast[3]


@pytest.fixture(scope="module")
def streams(offline_server) -> dict[str, list[str]]:
    """Real streams, every flavour, with and without usage asked, and with faults."""
    got = {}
    for model in FLAVOURS:
        for usage in (False, True):
            got[f"{model} usage={usage}"] = fetch_payloads(
                offline_server.base_url, model, "Explain the Pythagorean theorem. [delay:0]",
                usage)
        got[f"{model} hostile"] = fetch_payloads(offline_server.base_url, model,
                                                 "Say hello [hostile] [delay:0]", True)
        for fault in ("midstream", "malformed"):
            got[f"{model} {fault}"] = fetch_payloads(
                offline_server.base_url, model, f"Say hello [fault:{fault}] [delay:0]", True)
    return got


def test_every_flavour_reads_the_same_and_mostly_fast(streams):
    assert len(FLAVOURS) >= 6  # moonshot, thinking, qwen, deepseek (both), openai, local
    for name, payloads in streams.items():
        hits = assert_agree(payloads)
        texts = [p for p in payloads if '"content":"' in p and '"finish_reason":null' in p]
        if "fault" not in name and len(texts) > 10:
            assert hits >= len(texts) - 5, name  # the fast path is taken, not bypassed


def test_the_fast_text_is_the_providers_text(streams):
    payloads = streams["moonshot-v1-8k usage=True"]
    events, finish, usage, _ = read(payloads, True)
    text = "".join(d["content"] for kind, *rest in events if kind == "ok"
                   for name, d in rest[0] if name == "delta")
    expected = "".join((json.loads(p)["choices"] or [{}])[0].get("delta", {}).get("content")
                       or "" for p in payloads if p != "[DONE]")
    assert text == expected and len(text) > 50
    assert finish == "stop" and usage and usage["total_tokens"] > 0


def _mutate(payloads: list[str], rng: random.Random) -> list[str]:
    """One seeded variation of a stream, at the JSON level or the byte level."""
    out = []
    ascii_only = rng.random() < 0.5
    step = rng.randrange(5)
    for i, payload in enumerate(payloads):
        if payload == "[DONE]" or rng.random() < 0.1 and step != 0:
            out.append(payload)
            continue
        try:
            chunk = json.loads(payload)
        except ValueError:  # a malformed chunk (a fault) stays as it is
            out.append(payload)
            continue
        if step == 0:  # other texts, either escaping
            for choice in chunk.get("choices") or ():
                if "content" in choice.get("delta", {}):
                    choice["delta"]["content"] = "".join(
                        rng.choice(TRICKY) for _ in range(rng.randint(0, 6)))
        elif step == 1:  # a field that changes per chunk (OpenAI's obfuscation, a clock)
            chunk["obfuscation"] = "x" * rng.randint(0, 9)
            chunk["created"] = chunk.get("created", 0) + i
        elif step == 2 and chunk.get("choices"):  # extra fields a provider may add
            choice = chunk["choices"][0]
            extra = rng.choice([("logprobs", None), ("usage", None), ("finish_reason", "stop"),
                                ("reasoning_content", "hm"), ("content", None),
                                ("tool_calls", []), ("role", "assistant")])
            (choice["delta"] if extra[0] in ("reasoning_content", "content", "tool_calls",
                                             "role") else choice)[extra[0]] = extra[1]
            if rng.random() < 0.2:
                chunk["choices"].append({"index": 1, "delta": {"content": "second"}})
            if rng.random() < 0.1:
                chunk["error"] = {"message": "failed midway"}
        elif step == 3:  # keys in another order, spaces after separators (DeepSeek's)
            chunk = dict(reversed(list(chunk.items())))
            for choice in chunk.get("choices") or ():
                choice["delta"] = dict(reversed(list(choice.get("delta", {}).items())))
        text = json.dumps(chunk, ensure_ascii=ascii_only,
                          separators=(",", ":") if step != 3 else (", ", ": "))
        if step == 4 and rng.random() < 0.3:  # broken bytes
            at = rng.randrange(len(text) + 1)
            text = text[:at] + rng.choice(['"', "\\", "}", "", "x", "\\u12", "\n"]) + \
                text[at + rng.randint(0, 2):]
        out.append(text)
    return out


@pytest.mark.parametrize("seed", SEEDS)
def test_mutated_streams_read_the_same(streams, seed):
    rng = random.Random(seed)
    names = sorted(streams)
    for _ in range(8):
        name = rng.choice(names)
        assert_agree(_mutate(streams[name], rng))


SLOTS = ['""', '"a"', '"\\""', '"\\\\"', '"\\/"', '"\\b\\f\\n\\r\\t"', '"\\u00e9\\u52fe"',
         '"\\ud83d\\ude00"', '"\\ud800"', '"é勾😀"', '"a\\x"', '"\\u12"', '"a"b"', '"abc',
         'abc"', '"a\tb"', '"a\x01"', 'null', '1', '["a"]', '{"a":1}', '"a","role":"x"',
         '"a"}],"usage":{"total_tokens":3', '"\\\\"x"', '"\\\\\\""', '"' + "x" * 5000 + '"']


def test_every_kind_of_slot_in_a_learnt_shape(streams):
    payloads = streams["moonshot-v1-8k usage=False"]
    texts = [p for p in payloads if '"content":"' in p and '"role"' not in p
             and '"finish_reason":null' in p]
    head, _, rest = texts[0].partition('"content":')
    tail = rest[len(json.dumps(json.loads(texts[0])["choices"][0]["delta"]["content"],
                               ensure_ascii=False)):]
    head += '"content":'
    for slot in SLOTS:
        trial = texts[:2] + [head + slot + tail] + texts[2:4]
        hits = assert_agree(trial)
        assert hits >= 1, slot  # the shape was learnt and applied


def test_a_stream_with_spaces_after_separators_takes_the_fast_path(streams):
    """DeepSeek writes ``"content": "..."`` (Python's json.dumps default separators)."""
    spaced = [p if p == "[DONE]" else json.dumps(json.loads(p), ensure_ascii=False)
              for p in streams["moonshot-v1-8k usage=True"]]
    assert '"content": "' in spaced[2]
    assert assert_agree(spaced) >= len(spaced) - 8


@pytest.mark.parametrize("recording", RECORDINGS, ids=lambda r: r.name)
def test_the_providers_own_published_streams_read_the_same_and_fast(recording):
    """helpers/providers/recordings.py keeps each provider's documented stream, byte for byte: their
    field order, spacing and extra fields. Its text chunk, repeated with other texts spliced
    into the very same bytes, must read the same both ways, and fast after the first."""
    payloads = [line.removeprefix("data: ") for line in recording.lines]
    at = next(i for i, p in enumerate(payloads) if p != "[DONE]"
              and (json.loads(p)["choices"] or [{}])[0].get("delta", {}).get("content"))
    text = json.loads(payloads[at])["choices"][0]["delta"]["content"]
    literal = json.dumps(text, ensure_ascii=False)
    assert payloads[at].count(literal) == 1
    rng = random.Random(recording.name)
    copies = [payloads[at].replace(literal, json.dumps(random_text(rng),
                                                        ensure_ascii=rng.random() < 0.5))
              for _ in range(30)]
    stream = payloads[:at + 1] + copies + payloads[at + 1:]
    assert assert_agree(stream) >= 25


def random_text(rng: random.Random) -> str:
    return "".join(rng.choice(TRICKY) for _ in range(rng.randint(1, 6)))
