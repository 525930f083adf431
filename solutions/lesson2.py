"""Lesson 2 solutions: the first n pieces of a stream, and usage with or without include_usage."""

from __future__ import annotations

from collections.abc import Iterator

from openai import OpenAI
from openai.types.chat import ChatCompletionChunk

from helpers import StreamResult, collect

QUESTION = [{"role": "user", "content": "What is the Pythagorean theorem?"}]


def first_words(stream: Iterator[ChatCompletionChunk], n: int) -> list[str]:
    """Exercise 1: return the first ``n`` pieces of text and close the stream.

    Two things make it right. The guard skips chunks without text: the first chunk usually carries
    only the role (its content is ``""``), the last one has an empty delta (``None``), and a
    trailing usage chunk has no ``choices`` at all. And the ``with`` block closes the HTTP
    connection when the loop breaks, so the provider stops writing (and billing). A plain
    ``return`` inside the loop leaves the connection open until the garbage collector runs.
    """
    pieces: list[str] = []
    with stream:  # leaving the block closes the connection, even after break
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
                if len(pieces) == n:
                    break
    return pieces


def usage_both_ways(client: OpenAI) -> tuple[StreamResult, StreamResult]:
    """Exercise 2: ``gpt-4o-mini`` without, then with, ``include_usage``.

    OpenAI-style providers count a stream's tokens only when asked, and then in one trailing
    chunk whose ``choices`` is empty. So ``plain.usage`` is None and ``counted.usage`` is set.
    (Moonshot's ``moonshot-v1-8k`` would report usage both times: a different habit.)
    """
    plain = collect(client.chat.completions.create(
        model="gpt-4o-mini", messages=QUESTION, stream=True))
    counted = collect(client.chat.completions.create(
        model="gpt-4o-mini", messages=QUESTION, stream=True,
        stream_options={"include_usage": True}))
    return plain, counted
