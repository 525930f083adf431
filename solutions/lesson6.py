"""Lesson 6 solutions: total tokens from any provider, and reasoning kept apart from the answer."""

from __future__ import annotations

from collections.abc import Iterable

from openai import OpenAI
from openai.types.chat import ChatCompletionChunk

from helpers import chunk_usage


def ask_with_usage(client: OpenAI, model: str, question: str) -> tuple[str, int | None]:
    """Exercise 1: stream an answer and return (text, total_tokens), whatever the provider."""
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
    """Exercise 2: return (reasoning, answer) from a stream, by hand."""
    reasoning, answer = [], []
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        reasoning.append(getattr(delta, "reasoning_content", None) or "")
        answer.append(delta.content or "")
    return "".join(reasoning), "".join(answer)
