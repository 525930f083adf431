"""Lesson 2 solutions: the first n pieces of a stream, and usage with or without include_usage."""

from __future__ import annotations

from collections.abc import Iterator

from openai import OpenAI
from openai.types.chat import ChatCompletionChunk

from helpers import StreamResult, collect

QUESTION = [{"role": "user", "content": "What is the Pythagorean theorem?"}]


def first_words(stream: Iterator[ChatCompletionChunk], n: int) -> list[str]:
    """Exercise 1: return the first ``n`` pieces of text and close the stream."""
    pieces: list[str] = []
    with stream:  # leaving the block closes the connection, even after break
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
                if len(pieces) == n:
                    break
    return pieces


def usage_both_ways(client: OpenAI) -> tuple[StreamResult, StreamResult]:
    """Exercise 2: ``gpt-4o-mini`` without, then with, ``include_usage``."""
    plain = collect(client.chat.completions.create(
        model="gpt-4o-mini", messages=QUESTION, stream=True))
    counted = collect(client.chat.completions.create(
        model="gpt-4o-mini", messages=QUESTION, stream=True,
        stream_options={"include_usage": True}))
    return plain, counted
