"""Self-checks for lesson 6's exercises."""

from __future__ import annotations

from typing import Any

from ..providers.table import USAGE_IN_CHOICE, USAGE_TOP_LEVEL, model_traits
from ._common import (
    PYTHAGORAS_ZH,
    _client,
    _pieces,
    _provider,
    _reply,
    _report,
    _require,
)

#: Every model lesson 6 streams (sections 2 and 8): one or more of every family in the table.
_FLAVOURS = ("moonshot-v1-8k", "qwen-plus", "deepseek-chat", "deepseek-reasoner", "gpt-4o-mini",
             "kimi-k2-thinking", "qwen2.5:0.5b")


def _no_total_hint(model: str) -> str:
    """Say where this model's usage is, from the providers table, for a missing total."""
    traits = model_traits(model)
    if traits.usage_unasked == USAGE_TOP_LEVEL:
        return (f"{model} gave no total: its usage is at the top level of the chunk that has "
                "finish_reason (read chunk.usage on every chunk, not only when choices is empty)")
    if traits.usage_unasked == USAGE_IN_CHOICE:
        return (f"{model} gave no total: its usage is inside choices[0] of the last chunk "
                "(an extra field: choices[0].model_extra['usage'])")
    return (f"{model} gave no total: OpenAI-style providers send usage only with "
            "stream_options={'include_usage': True}")


@_report
def check_lesson6_ex1(ask_with_usage: Any) -> str:
    """Check lesson 6, exercise 1: text and total tokens from every provider flavour."""
    _require(callable(ask_with_usage), "pass the function: check_lesson6_ex1(ask_with_usage)")
    provider = _provider()
    client = _client(provider)
    for model in _FLAVOURS:
        streams = provider.stats()["streams"]
        got = ask_with_usage(client, model, PYTHAGORAS_ZH)
        _require(got is not None, f"ask_with_usage returned None for {model}: return "
                                  "(text, total_tokens)")
        text, total = got
        _require(provider.stats()["streams"] > streams, f"{model}: use stream=True")
        _require(text == "".join(_pieces(PYTHAGORAS_ZH)),
                 f"{model}: the text differs from the answer (join every delta.content)")
        _require(total is not None, _no_total_hint(model))
        _require(isinstance(total, int) and total > 0, f"{model}: total should be an int > 0, "
                                                       f"got {total!r}")
    return f"text and total tokens from all of {', '.join(_FLAVOURS)}."


@_report
def check_lesson6_ex2(split_thinking: Any) -> str:
    """Check lesson 6, exercise 2: ``split_thinking(stream)`` -> (reasoning, answer)."""
    _require(callable(split_thinking), "pass the function: check_lesson6_ex2(split_thinking)")
    client = _client(_provider())
    for model in ("deepseek-reasoner", "kimi-k2-thinking", "deepseek-chat"):
        reply = _reply(PYTHAGORAS_ZH, model)
        stream = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": PYTHAGORAS_ZH}], stream=True)
        got = split_thinking(stream)
        _require(got is not None, "split_thinking returned None: return (reasoning, answer)")
        reasoning, answer = got
        _require(answer == reply.text, f"{model}: the answer differs (join delta.content)")
        field = model_traits(model).reasoning_field  # the table's name for this model
        where = (f"join delta.{field}, an extra field: delta.model_extra['{field}']" if field
                 else f"{model} streams none: give ''")
        _require((reasoning or "") == reply.reasoning, f"{model}: the reasoning differs ({where})")
    return "reasoning and answer kept apart for deepseek-reasoner and kimi-k2-thinking."
