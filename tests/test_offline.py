"""The offline provider, with the real openai SDK as its client: the SDK parsing it proves it."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import httpx
import openai
import pytest

from helpers.money.tokens import count_prompt_tokens, count_tokens, cut_to_tokens, split_tokens
from helpers.offline import OfflineProvider
from helpers.offline.replies import compose_reply, filler_reply, split_pieces
from helpers.providers import MODELS
from helpers.streams.chunks import chunk_usage, collect

QUESTION = [{"role": "user", "content": "What is the Pythagorean theorem?"}]


def client(provider: OfflineProvider, key: str = "any-key", **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=provider.base_url, api_key=key, max_retries=0, **kw)


def test_stream_has_moonshot_wire_format(offline):
    chunks = list(client(offline).chat.completions.create(
        model="moonshot-v1-8k", messages=QUESTION, stream=True))
    first, last = chunks[0], chunks[-1]
    assert first.choices[0].delta.role == "assistant"
    assert last.choices[0].finish_reason == "stop"
    assert last.usage is None  # Moonshot puts it inside choices[0], not at the top level
    usage = last.choices[0].model_extra["usage"]
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert "a^2 + b^2 = c^2" in text
    assert usage["completion_tokens"] == count_tokens(text) > len(split_pieces(text))
    assert usage["prompt_tokens"] == count_prompt_tokens(QUESTION)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert offline.stats()["completed"] == 1
    assert offline.stats()["chunks_sent"] == len(chunks)


def test_stream_and_non_stream_give_the_same_text(offline):
    c = client(offline)
    streamed = collect(c.chat.completions.create(model="moonshot-v1-8k", messages=QUESTION,
                                                 stream=True))
    whole = c.chat.completions.create(model="moonshot-v1-8k", messages=QUESTION)
    assert whole.choices[0].message.content == streamed.text
    assert whole.usage.completion_tokens == streamed.usage.completion_tokens


def test_same_request_gives_same_chunking(offline):
    c = client(offline)
    runs = [[ch.choices[0].delta.content for ch in c.chat.completions.create(
        model="moonshot-v1-8k", messages=QUESTION, stream=True) if ch.choices]
        for _ in range(2)]
    assert runs[0] == runs[1]


def test_include_usage_adds_openai_style_trailing_chunk(offline):
    chunks = list(client(offline).chat.completions.create(
        model="moonshot-v1-8k", messages=QUESTION, stream=True,
        stream_options={"include_usage": True}))
    assert chunks[-1].choices == []
    assert chunks[-1].usage.total_tokens > 0
    assert chunk_usage(chunks[-2]) == chunks[-1].usage  # Moonshot's own placement stays too


def test_openai_flavor_has_usage_only_on_request(offline):
    plain = list(client(offline).chat.completions.create(
        model="gpt-4o-mini", messages=QUESTION, stream=True))
    assert all(chunk_usage(c) is None for c in plain)


def test_max_tokens_gives_finish_reason_length(offline):
    result = collect(client(offline).chat.completions.create(
        model="moonshot-v1-8k", messages=QUESTION, stream=True, max_tokens=5))
    assert result.finish_reason == "length"
    assert result.usage.completion_tokens == 5 == count_tokens(result.text)
    whole = compose_reply(QUESTION).text
    assert whole.startswith(result.text) and result.text == "".join(split_tokens(whole)[:5])


def test_max_tokens_can_cut_inside_a_word_because_a_piece_is_not_a_token(offline):
    # "The" is one token, " Pythagorean" three (one per started 5 letters): 2 tokens end mid-word
    result = collect(client(offline).chat.completions.create(
        model="moonshot-v1-8k", messages=QUESTION, stream=True, max_tokens=2))
    assert (result.text, result.finish_reason) == ("The Pytha", "length")
    assert result.usage.completion_tokens == 2


def test_the_token_rule_counts_words_by_length_and_cjk_in_pairs():
    assert [count_tokens(w) for w in ("the", " the", "theorem", "Pythagorean")] == [1, 1, 2, 3]
    assert count_tokens("勾股定理") == 2 and count_tokens("勾股定") == 2 and count_tokens("。") == 1
    assert count_tokens("a, b.") == 4 and count_tokens("x  \n") == 2
    assert count_prompt_tokens([{"content": "the"}, {"content": [{"text": "勾股"}]}]) == 10
    for text in (compose_reply(QUESTION).text, compose_reply([{"role": "user",
                 "content": "勾股定理是什么？"}]).text, filler_reply(7)):
        tokens = split_tokens(text)
        assert "".join(tokens) == text and count_tokens(text) == len(tokens)
        for n in (1, len(tokens) // 2, len(tokens) - 1):  # a cut counts exactly what it kept
            cut, was_cut = cut_to_tokens(text, n)
            assert was_cut and count_tokens(cut) == n and text.startswith(cut)
    assert cut_to_tokens("the end", 5) == ("the end", False)


@pytest.mark.parametrize("n", [1, 7, 40])
def test_tokens_marker_gives_exactly_n_completion_tokens(offline, n):
    result = collect(client(offline).chat.completions.create(
        model="moonshot-v1-8k", stream=True,
        messages=[{"role": "user", "content": f"go [tokens:{n}]"}]))
    assert result.usage.completion_tokens == n == count_tokens(result.text)
    assert result.text == filler_reply(n) and result.finish_reason == "stop"


@pytest.mark.parametrize("model", ["kimi-k2-thinking", "deepseek-reasoner"])
def test_reasoning_tokens_are_counted_by_the_same_rule(offline, model):
    result = collect(client(offline).chat.completions.create(
        model=model, messages=QUESTION, stream=True, stream_options={"include_usage": True}))
    assert result.reasoning
    thinking = result.usage.completion_tokens_details.reasoning_tokens
    assert thinking == count_tokens(result.reasoning) < len(result.reasoning)
    assert result.usage.completion_tokens == thinking + count_tokens(result.text)


def test_a_prompt_over_the_context_window_by_the_rule_is_refused(offline):
    window = MODELS["moonshot-v1-8k"].context_window
    fits = " ".join(["the"] * (window - 4 - 10))  # one token per "the", 4 for the message
    c = client(offline)
    ok = c.chat.completions.create(model="moonshot-v1-8k", max_tokens=10,
                                   messages=[{"role": "user", "content": fits}])
    assert ok.usage.prompt_tokens == window - 10
    with pytest.raises(openai.BadRequestError, match="token limit"):
        c.chat.completions.create(model="moonshot-v1-8k", max_tokens=11,
                                  messages=[{"role": "user", "content": fits}])


def test_chinese_question_gets_chinese_answer(offline):
    r = client(offline).chat.completions.create(
        model="moonshot-v1-8k", messages=[{"role": "user", "content": "勾股定理是什么？"}])
    assert "直角三角形" in r.choices[0].message.content


def test_unknown_question_gets_transparent_fallback(offline):
    r = client(offline).chat.completions.create(
        model="moonshot-v1-8k", messages=[{"role": "user", "content": "Who won the cup?"}])
    assert "offline" in r.choices[0].message.content


def test_history_is_used(offline):
    messages = [{"role": "user", "content": "What is a prime?"},
                {"role": "assistant", "content": "..."},
                {"role": "user", "content": "What did I just ask?"}]
    r = client(offline).chat.completions.create(model="moonshot-v1-8k", messages=messages)
    assert "What is a prime?" in r.choices[0].message.content


def test_models_lists_offline_models(offline):
    ids = [m.id for m in client(offline).models.list()]
    assert ids == list(MODELS)


@pytest.mark.parametrize(("marker", "error"), [
    ("[fault:400]", openai.BadRequestError),
    ("[fault:401]", openai.AuthenticationError),
    ("[fault:403]", openai.PermissionDeniedError),
    ("[fault:404]", openai.NotFoundError),
    ("[fault:429]", openai.RateLimitError),
    ("[fault:500]", openai.InternalServerError),
    ("[fault:503]", openai.InternalServerError),
], ids=lambda v: v if isinstance(v, str) else v.__name__)
def test_status_faults_raise_the_sdk_exception(offline, marker, error):
    with pytest.raises(error) as info:
        client(offline).chat.completions.create(
            model="moonshot-v1-8k", messages=[{"role": "user", "content": marker}])
    assert isinstance(info.value.body, dict) and info.value.body["message"]
    assert offline.stats()["statuses"] == {marker[7:10]: 1}


def test_unknown_model_is_404(offline):
    with pytest.raises(openai.NotFoundError, match="no-such-model"):
        client(offline).chat.completions.create(model="no-such-model", messages=QUESTION)


def test_input_too_long_is_400(offline):
    long = [{"role": "user", "content": "word " * 100}]
    with pytest.raises(openai.BadRequestError, match="token limit"):
        client(offline).chat.completions.create(model="offline-tiny", messages=long)


def test_required_key_is_enforced_and_never_echoed():
    with OfflineProvider(delay_ms=0, api_key="right-key", name="offline-key-test") as p:
        with pytest.raises(openai.AuthenticationError) as info:
            client(p, key="wrong-key").chat.completions.create(model="moonshot-v1-8k",
                                                              messages=QUESTION)
        assert "wrong-key" not in str(info.value) and "right-key" not in str(info.value)
        empty = httpx.post(f"{p.base_url}/chat/completions", headers={"Authorization": "Bearer"},
                           json={"model": "moonshot-v1-8k", "messages": QUESTION})
        assert empty.status_code == 401
        ok = client(p, key="right-key").chat.completions.create(model="moonshot-v1-8k",
                                                                messages=QUESTION)
        assert ok.choices[0].message.content
        assert p.stats()["statuses"] == {"401": 2, "200": 1}


def test_missing_key_is_401(offline):
    r = httpx.post(f"{offline.base_url}/chat/completions", json={"model": "m", "messages": []})
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "invalid_authentication_error"


def test_rate_limit_then_success_with_sdk_retries(offline):
    c = openai.OpenAI(base_url=offline.base_url, api_key="k", max_retries=2)
    r = c.chat.completions.create(model="moonshot-v1-8k",
                                  messages=[{"role": "user", "content": "hello [fault:429:2]"}])
    assert r.choices[0].message.content.startswith("Hello")
    assert offline.stats()["statuses"] == {"429": 2, "200": 1}


@pytest.mark.parametrize(("fault", "error"), [
    ("midstream", openai.APIError),
    ("cut", openai.APIConnectionError),
    ("malformed", ValueError),
])
def test_stream_faults_keep_partial_text(offline, fault, error):
    received: list[str] = []
    stream = client(offline).chat.completions.create(
        model="moonshot-v1-8k", stream=True,
        messages=[{"role": "user", "content": f"Pythagorean theorem [fault:{fault}]"}])
    with pytest.raises(error):
        collect(stream, on_text=received.append)
    assert "Pythagorean" in "".join(received)
    assert offline.stats()["faults"] == 1


def test_closing_a_stream_early_is_seen_upstream(offline):
    stream = client(offline).chat.completions.create(
        model="moonshot-v1-8k", stream=True,
        messages=[{"role": "user", "content": "Pythagorean theorem [fault:stall]"}])
    for _, _chunk in zip(range(3), stream, strict=False):
        pass
    stream.close()
    stats = offline.wait_for(lambda s: s["disconnects"] == 1, timeout=5)
    assert stats["open_streams"] == 0
    assert stats["recent"][-1]["outcome"] == "disconnected"
    assert stats["recent"][-1]["sent"] < stats["recent"][-1]["planned"]


def test_hold_proves_text_arrives_before_the_end(offline):
    stream = client(offline).chat.completions.create(
        model="moonshot-v1-8k", stream=True,
        messages=[{"role": "user", "content": "hello [hold]"}])
    it = iter(stream)
    early = "".join((next(it).choices[0].delta.content or "") for _ in range(5))
    assert early.startswith("Hello")
    stats = offline.wait_for(lambda s: s["held"] == 1)
    assert stats["completed"] == 0
    offline.release()
    rest = collect(it)
    assert rest.finish_reason == "stop"
    assert offline.wait_for(lambda s: s["completed"] == 1)["held"] == 0


def test_peak_streams_counts_overlap(offline):
    async def main() -> list[str]:
        c = openai.AsyncOpenAI(base_url=offline.base_url, api_key="k", max_retries=0)

        async def one(i: int) -> str:
            s = await c.chat.completions.create(
                model="moonshot-v1-8k", stream=True,
                messages=[{"role": "user", "content": f"question {i} [hold]"}])
            text = ""
            async for chunk in s:
                text += chunk.choices[0].delta.content or "" if chunk.choices else ""
            return text

        tasks = [asyncio.create_task(one(i)) for i in range(5)]
        await asyncio.to_thread(offline.wait_for, lambda s: s["held"] == 5)
        offline.release()
        return await asyncio.gather(*tasks)

    texts = asyncio.run(main())
    assert [f'"question {i}"' in t for i, t in enumerate(texts)] == [True] * 5
    assert offline.stats()["peak_streams"] == 5


@pytest.mark.parametrize(("body", "headers", "status", "words"), [
    (b"{not json", {"content-type": "application/json"}, 400, "not valid JSON"),
    (b"[]", {"content-type": "application/json"}, 400, "JSON object"),
    (b'{"model": "moonshot-v1-8k"}', {"content-type": "application/json"}, 400, "messages"),
    (b'{"model": 3, "messages": []}', {"content-type": "application/json"}, 400, "model"),
    (b'{"model": "m", "messages": [{"role": "wizard", "content": "x"}]}',
     {"content-type": "application/json"}, 400, "role"),
    (b'{"model": "m", "messages": [{"role": "user", "content": 5}]}',
     {"content-type": "application/json"}, 400, "content"),
    (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}',
     {"content-type": "application/json"}, 400, "stream"),
    (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": -1}',
     {"content-type": "application/json"}, 400, "max_tokens"),
    (b"\xff\xfe{}", {"content-type": "application/json"}, 400, "UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, {"content-type": "application/json"}, 400, "nested"),
    (b"x" * 1_100_000, {"content-type": "application/json"}, 413, "too large"),
    (b"{}", {"content-type": "text/plain"}, 415, "Content-Type"),
], ids=["bad-json", "not-object", "no-messages", "model-type", "role", "content-type-of-content",
        "stream-type", "max-tokens", "not-utf8", "deep-nesting", "huge", "wrong-content-type"])
def test_bad_requests_get_a_clear_4xx_and_the_server_stays_up(offline, body, headers, status,
                                                               words):
    r = httpx.post(f"{offline.base_url}/chat/completions", content=body,
                   headers={"Authorization": "Bearer k", **headers})
    assert r.status_code == status
    assert set(r.json()) == {"error"}
    assert words.lower() in r.json()["error"]["message"].lower()
    assert httpx.get(offline.server.url + "/healthz").json() == {"ok": True}


def test_unknown_route_uses_the_error_shape(offline):
    r = httpx.get(offline.server.url + "/v1/nothing")
    assert r.status_code == 404 and "nothing" in r.json()["error"]["message"]


def test_counters_over_http(offline):
    client(offline).chat.completions.create(model="moonshot-v1-8k", messages=QUESTION)
    stats = httpx.get(offline.server.url + "/_offline/stats").json()
    assert stats["chat_requests"] == 1 and stats["statuses"] == {"200": 1}


def test_cli_serves_and_stops_on_sigterm(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "helpers.offline", "--port", "0",
                             "--delay-ms", "0"], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("offline provider serving at http://127.0.0.1:")
        base_url = line.rsplit(" ", 1)[1]
        stream = openai.OpenAI(base_url=base_url, api_key="k").chat.completions.create(
            model="moonshot-v1-8k", messages=QUESTION, stream=True)
        assert collect(stream).usage.total_tokens > 0
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


def test_cli_taken_port_is_a_clear_error(offline):
    proc = subprocess.run([sys.executable, "-m", "helpers.offline", "--port",
                           str(offline.server.port)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "already in use" in proc.stdout


def test_zero_delay_stream_notices_a_client_that_left_early(offline, caplog):
    # Regression: with delay_ms=0 the stream never yielded to the event loop, so a client
    # that left was noticed only after every chunk had been written into a dead socket
    # (thousands of asyncio "socket.send() raised exception." warnings, outcome "completed").
    offline.delay_ms = 0
    with caplog.at_level("WARNING", logger="asyncio"):
        with client(offline).chat.completions.create(
                model="moonshot-v1-8k", stream=True,
                messages=[{"role": "user", "content": "hi [tokens:5000]"}]) as stream:
            next(iter(stream))
        record = offline.wait_for(lambda s: s["recent"][-1]["outcome"] != "open")["recent"][-1]
    assert record["outcome"] == "disconnected"
    assert record["sent"] < record["planned"]
    # Only the regression's own warnings: an async client some earlier test dropped may be
    # collected now, and the SDK's __del__ then logs its aclose() on a closed loop (not ours).
    assert not [r for r in caplog.records
                if r.name == "asyncio" and "socket.send() raised exception" in r.getMessage()]


@pytest.mark.parametrize("options", [{}, {"stream_options": {"include_usage": True}}],
                         ids=["plain", "include_usage"])
def test_deepseek_puts_usage_on_the_finish_chunk_and_never_sends_a_usage_chunk(offline, options):
    chunks = list(client(offline).chat.completions.create(
        model="deepseek-chat", messages=QUESTION, stream=True, **options))
    last = chunks[-1]
    assert last.choices and last.choices[0].finish_reason == "stop"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert last.usage is not None and last.usage.completion_tokens == count_tokens(text)
    assert all(c.choices for c in chunks), "no usage-only chunk with empty choices"
    assert [c for c in chunks if c.usage is not None] == [last]
