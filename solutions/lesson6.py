"""Lesson 6 solutions: total tokens from any provider, and reasoning kept apart from the answer."""

from __future__ import annotations

from collections.abc import Iterable

from openai import OpenAI
from openai.types.chat import ChatCompletionChunk

from helpers import chunk_usage


def ask_with_usage(client: OpenAI, model: str, question: str) -> tuple[str, int | None]:
    """Exercise 1: stream an answer and return (text, total_tokens), whatever the provider.

    Usage has three homes (lesson 6, section 2): inside ``choices[0]`` of Moonshot's last
    chunk, at the top level of DeepSeek's last chunk (which still has choices), and in a
    trailing chunk with empty ``choices`` (Qwen, OpenAI, a local server), sent only when
    ``include_usage`` is asked. So ask for it always, and look for usage on every chunk, not
    only on the ones without choices. The text is ``delta.content`` only: reasoning models
    stream their thinking in another field, which must not end up in the answer.
    """
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": question}], stream=True,
        stream_options={"include_usage": True})  # Moonshot ignores it, the others need it
    text, total = "", None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        usage = chunk_usage(chunk)  # choices[0].usage or the trailing chunk: either is fine
        if usage is not None:
            total = usage.total_tokens
    return text, total


def split_thinking(stream: Iterable[ChatCompletionChunk]) -> tuple[str, str]:
    """Exercise 2: return (reasoning, answer) from a stream, by hand.

    ``reasoning_content`` is not a field the SDK declares: it arrives as an extra attribute,
    present only on models that stream reasoning. ``getattr`` with a default reads it
    without an ``AttributeError`` on the others, and the ``or ""`` turns ``None`` into text.
    """
    reasoning, answer = [], []
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        reasoning.append(getattr(delta, "reasoning_content", None) or "")
        answer.append(delta.content or "")
    return "".join(reasoning), "".join(answer)
