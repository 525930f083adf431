"""Stream utilities on hand-made chunks: every placement of usage, reasoning, timings."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletionChunk

from helpers.money.tokens import count_tokens
from helpers.streams.chunks import (
    acollect,
    chunk_finish_reason,
    chunk_reasoning,
    chunk_text,
    chunk_usage,
    collect,
)

USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def make(delta: dict | None = None, finish: str | None = None, *, choices: bool = True,
         **extra) -> ChatCompletionChunk:
    body = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
            "choices": [], **extra}
    if choices:
        body["choices"] = [{"index": 0, "delta": delta or {}, "finish_reason": finish}]
    return ChatCompletionChunk.model_validate(body)


def moonshot_stream() -> list[ChatCompletionChunk]:
    return [make({"role": "assistant", "content": ""}), make({"content": "Hel"}),
            make({"content": "lo"}), make({}, "stop")]


@pytest.mark.parametrize("placement", ["moonshot-choice", "top-level-final", "trailing-chunk"])
def test_usage_found_wherever_the_provider_put_it(placement):
    chunks = moonshot_stream()[:-1]
    if placement == "moonshot-choice":
        last = make({}, "stop")
        last = ChatCompletionChunk.model_validate(
            {**last.model_dump(), "choices": [{**last.choices[0].model_dump(), "usage": USAGE}]})
        chunks.append(last)
    elif placement == "top-level-final":
        chunks.append(make({}, "stop", usage=USAGE))
    else:
        chunks += [make({}, "stop"), make(choices=False, usage=USAGE)]
    result = collect(chunks)
    assert result.usage == CompletionUsage(**USAGE)
    assert result.text == "Hello" and result.finish_reason == "stop"


def test_no_usage_is_none():
    assert collect(moonshot_stream()).usage is None


def test_chunks_without_choices_give_no_text():
    assert chunk_text(make(choices=False)) == ""
    assert chunk_finish_reason(make(choices=False)) is None
    assert collect([make(choices=False), *moonshot_stream()]).text == "Hello"


def test_reasoning_is_kept_apart_from_text():
    chunks = [make({"role": "assistant", "content": ""}),
              make({"reasoning_content": "think "}), make({"reasoning_content": "more"}),
              make({"content": "answer"}), make({}, "stop")]
    assert chunk_reasoning(chunks[1]) == "think "
    result = collect(chunks)
    assert (result.reasoning, result.text) == ("think more", "answer")


def test_on_text_gets_the_answer_and_on_reasoning_the_thinking():
    chunks = [make({"role": "assistant", "content": ""}),
              make({"reasoning_content": "think "}), make({"reasoning_content": "more"}),
              make({"content": "ans"}), make({"content": "wer"}), make({}, "stop")]
    text: list[str] = []
    thoughts: list[str] = []
    collect(chunks, on_text=text.append, on_reasoning=thoughts.append)
    assert (text, thoughts) == (["ans", "wer"], ["think ", "more"])
    text.clear()
    collect(chunks, on_text=text.append)  # no reasoning callback: the thinking is not text
    assert text == ["ans", "wer"]
    thoughts.clear()
    asyncio.run(acollect(agen(chunks), on_text=text.append, on_reasoning=thoughts.append))
    assert thoughts == ["think ", "more"]


def fake_clock(step: float = 0.5):
    counter = itertools.count()
    return lambda: next(counter) * step


def test_timings_from_a_controlled_clock():
    # clock ticks: start=0 (before the request is made), chunks at 0.5, 1.0, 1.5, 2.0, end=2.5
    made: list[float] = []
    clock = fake_clock()

    def request():
        made.append(clock())  # the request itself takes a tick: 0.5
        return moonshot_stream()

    result = collect(request, clock=clock)
    assert made == [0.5] and result.from_request
    assert result.time_to_first_token == 1.5  # the role chunk carries no text
    assert result.arrivals == [1.5, 2.0]
    assert result.duration == 3.0
    assert result.tokens_per_second == pytest.approx(2 / 1.5)


def test_a_stream_already_made_has_no_time_to_first_token_unless_told_when_it_was_asked():
    result = collect(moonshot_stream(), clock=fake_clock())
    assert not result.from_request and result.text == "Hello"
    assert result.time_to_first_token is None and result.duration is None
    assert result.arrivals == [1.0, 1.5] and result.tokens_per_second == pytest.approx(2 / 1.5)
    told = collect(moonshot_stream(), started=-3.0, clock=fake_clock())
    assert told.time_to_first_token == 3.5 and told.duration == 5.0  # chunks at 0, 0.5, ...; end 2


def test_acollect_takes_the_time_before_an_async_request():
    clock = fake_clock()

    async def request():  # like AsyncOpenAI's create(): a coroutine that returns the stream
        clock()
        return agen(moonshot_stream())

    result = asyncio.run(acollect(request, clock=clock))
    assert result.text == "Hello" and result.time_to_first_token == 1.5
    assert asyncio.run(acollect(agen(moonshot_stream()))).time_to_first_token is None


def test_on_text_sees_each_piece_and_partial_text_survives_an_error():
    seen: list[str] = []

    def broken():
        yield from moonshot_stream()[:2]
        raise RuntimeError("cut")

    with pytest.raises(RuntimeError):
        collect(broken(), on_text=seen.append)
    assert seen == ["Hel"]


async def agen(chunks):
    for c in chunks:
        yield c


def test_acollect_matches_collect():
    sync, asynchronous = collect(moonshot_stream()), asyncio.run(acollect(agen(moonshot_stream())))
    assert (asynchronous.text, asynchronous.finish_reason, asynchronous.chunks) == (
        sync.text, sync.finish_reason, sync.chunks)


def test_usage_from_a_real_moonshot_stream(offline):
    import openai
    c = openai.OpenAI(base_url=offline.base_url, api_key="k", max_retries=0)
    chunks = list(c.chat.completions.create(model="moonshot-v1-8k", stream=True,
                                            messages=[{"role": "user", "content": "hi"}]))
    assert [chunk_usage(ch) is not None for ch in chunks][-1]
    text = "".join(chunk_text(ch) for ch in chunks)
    assert collect(chunks).usage.completion_tokens == count_tokens(text)  # the offline rule


HEADERS_DELAY = 0.3
SLOW_HEADERS = [{"role": "user", "content": f"hi [delay-headers:{int(HEADERS_DELAY * 1000)}]"}]


def test_time_to_first_token_counts_the_wait_for_the_response_headers(offline):
    import openai
    c = openai.OpenAI(base_url=offline.base_url, api_key="k", max_retries=0)

    def request():
        return c.chat.completions.create(model="moonshot-v1-8k", stream=True,
                                         messages=SLOW_HEADERS)

    before = time.perf_counter()
    stream = request()
    assert time.perf_counter() - before >= HEADERS_DELAY  # create() waits for the headers
    made_first = collect(stream)
    assert made_first.time_to_first_token is None  # it cannot know: no number that hides it
    result = collect(request)
    assert result.time_to_first_token >= HEADERS_DELAY and result.duration >= HEADERS_DELAY
    assert result.text == made_first.text and offline.stats()["completed"] == 2


def test_async_time_to_first_token_counts_the_wait_for_the_response_headers(offline):
    import openai

    async def main():
        async with openai.AsyncOpenAI(base_url=offline.base_url, api_key="k",
                                      max_retries=0) as c:
            return await acollect(lambda: c.chat.completions.create(
                model="moonshot-v1-8k", stream=True, messages=SLOW_HEADERS))

    result = asyncio.run(main())
    assert result.time_to_first_token >= HEADERS_DELAY and result.text
    assert offline.stats()["completed"] == 1


def test_stream_view_time_to_first_token_counts_the_wait_for_the_response_headers(offline):
    """The view's status line shows the time from before the request, as collect does."""
    import io

    import openai

    from helpers.views.view import StreamView

    c = openai.OpenAI(base_url=offline.base_url, api_key="k", max_retries=0)
    out = io.StringIO()
    view = StreamView(widgets=False, out=out)
    view.consume(lambda: c.chat.completions.create(model="moonshot-v1-8k", stream=True,
                                                   messages=SLOW_HEADERS))
    assert view.result.time_to_first_token >= HEADERS_DELAY
    shown = float(out.getvalue().split("first token after ")[1].split(" s")[0])
    assert shown >= HEADERS_DELAY and offline.stats()["completed"] == 1
