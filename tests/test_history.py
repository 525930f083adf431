"""helpers.money.history: a long conversation trimmed to the window, oldest turns first."""

from __future__ import annotations

import openai
import pytest

from helpers.money.history import context_window, trim_history
from helpers.money.tokens import count_prompt_tokens

SYSTEM = {"role": "system", "content": "You assist a teacher."}


def conversation(turns: int) -> list[dict]:
    messages = [SYSTEM]
    for i in range(turns):
        messages += [{"role": "user", "content": f"question {i} about triangles"},
                     {"role": "assistant", "content": f"answer {i}: use the theorem " * 3}]
    return messages + [{"role": "user", "content": "and the last question?"}]


def test_the_oldest_turns_go_first_and_in_pairs():
    messages = conversation(6)
    kept, dropped = trim_history(messages, 100, reserve=20)
    assert count_prompt_tokens(kept) <= 80 < count_prompt_tokens(messages)
    assert kept[0] == SYSTEM and kept[-1] == messages[-1]
    assert dropped == messages[1:1 + len(dropped)] and len(dropped) % 2 == 0
    assert kept[1]["role"] == "user"  # never an answer without its question


def test_a_summary_replaces_what_was_dropped_and_is_made_once():
    calls = []

    def summarise(old):
        calls.append(len(old))
        return f"{len(old)} earlier messages about triangles"

    kept, dropped = trim_history(conversation(6), 100, reserve=20, summarise=summarise)
    assert kept[1]["content"].endswith(f"{len(dropped)} earlier messages about triangles")
    assert count_prompt_tokens(kept) <= 80 and len(calls) <= 2
    assert trim_history(conversation(1), 1000, summarise=summarise)[1] == []


def test_too_long_even_alone_is_an_error_that_says_so():
    with pytest.raises(ValueError, match="more than the 10 left"):
        trim_history(conversation(2), 30, reserve=20)
    with pytest.raises(KeyError, match="no context window"):
        context_window("no-such-model")


def test_the_trimmed_history_fits_where_the_whole_one_is_refused(offline):
    client = openai.OpenAI(base_url=offline.base_url, api_key="k", max_retries=0)
    messages = conversation(4)
    window = context_window("offline-tiny")  # 64 tokens
    with pytest.raises(openai.BadRequestError, match="token limit"):
        client.chat.completions.create(model="offline-tiny", messages=messages)
    kept, _ = trim_history(messages, window, reserve=16)
    reply = client.chat.completions.create(model="offline-tiny", messages=kept, max_tokens=16)
    assert reply.usage.prompt_tokens == count_prompt_tokens(kept) <= window - 16
    assert offline.stats()["statuses"] == {"400": 1, "200": 1}
