"""Raw SSE lines and their summary: what each offline flavour puts on the wire."""

from __future__ import annotations

import pytest

from helpers.settings import OFFLINE_KEY, Config
from helpers.streams.raw_wire import describe_wire, raw_sse_lines, usage_location

QUESTION = [{"role": "user", "content": "勾股定理是什么？"}]


def config(provider) -> Config:
    return Config("offline", provider.base_url, "moonshot-v1-8k", OFFLINE_KEY)


LAST = "last chunk, top level"


@pytest.mark.parametrize(("model", "comments", "reasoning", "plain", "asked"), [
    ("moonshot-v1-8k", 0, False, "choices[0].usage", "choices[0].usage + trailing chunk"),
    ("kimi-k2-thinking", 0, True, "choices[0].usage", "choices[0].usage + trailing chunk"),
    ("qwen-plus", 0, False, None, "trailing chunk"),
    ("gpt-4o-mini", 0, False, None, "trailing chunk"),
    ("qwen2.5:0.5b", 0, False, None, "trailing chunk"),
    ("deepseek-chat", 1, False, LAST, LAST),  # always on the finish_reason chunk, never extra
    ("deepseek-reasoner", 1, True, LAST, LAST),
])
def test_each_flavour_on_the_wire(offline, model, comments, reasoning, plain, asked):
    body = {"model": model, "messages": QUESTION, "stream": True}
    without = describe_wire(raw_sse_lines(config(offline), body))
    with_usage = describe_wire(raw_sse_lines(
        config(offline), {**body, "stream_options": {"include_usage": True}}))
    assert without.comments == [": keep-alive"] * comments
    assert (without.reasoning_chunks > 0) is reasoning
    assert without.content_chunks > 0 and without.done
    assert without.usage_at == plain
    assert with_usage.usage_at == asked
    assert with_usage.chunks == without.chunks + (asked.endswith("trailing chunk"))


def test_raw_lines_keep_comments_and_blank_separators(offline):
    lines = raw_sse_lines(config(offline), {"model": "deepseek-chat", "messages": QUESTION,
                                            "stream": True})
    assert lines[:2] == [": keep-alive", ""]
    assert lines[-2:] == ["data: [DONE]", ""]
    assert offline.stats()["completed"] == 1


def test_usage_location_names_the_three_places():
    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    assert usage_location({"choices": [{"delta": {}, "usage": usage}]}) == "choices[0].usage"
    assert usage_location({"choices": [], "usage": usage}) == "trailing chunk"
    assert usage_location({"choices": [{"delta": {}}], "usage": usage}) == "last chunk, top level"
    assert usage_location({"choices": [{"delta": {"content": "x"}}], "usage": None}) is None


def test_describe_wire_is_a_pure_function_of_lines():
    lines = [": keep-alive", "", 'data: {"choices":[{"delta":{"content":"hi"}}]}', "",
             'data: {"choices":[],"usage":{"total_tokens":3}}', "", "data: [DONE]", ""]
    summary = describe_wire(lines)
    assert (summary.comments, summary.chunks, summary.content_chunks) == ([": keep-alive"], 2, 1)
    assert summary.usage_at == "trailing chunk" and summary.done
