"""Lesson 9 solutions: a conversation's cost from the price table; a history that fits."""

from __future__ import annotations

from helpers.money.tokens import count_prompt_tokens
from helpers.providers import price_of


def conversation_cost(usages: list[dict], model: str) -> float:
    """Exercise 1: add up what every call cost, cached prompt tokens at their own rate.

    Prices are per million tokens. ``cached_tokens`` are part of ``prompt_tokens``: bill them
    at ``cached_input`` and only the rest at ``input`` (adding them on top counts them twice).
    A model with no price raises: an unknown cost must not look free.
    """
    price = price_of(model)
    if price is None:
        raise ValueError(f"no price for {model!r}")
    cached_rate = price.input if price.cached_input is None else price.cached_input
    total = 0.0
    for usage in usages:
        cached = usage.get("cached_tokens", 0)
        total += ((usage["prompt_tokens"] - cached) * price.input + cached * cached_rate
                  + usage["completion_tokens"] * price.output) / 1_000_000
    return total


def fit(messages: list[dict], window: int, reserve: int) -> list[dict]:
    """Exercise 2: drop the oldest question-and-answer pairs until the prompt fits.

    ``messages[0]`` is the system message (the instructions): always kept. The rest is
    question, answer, question, answer, ..., new question, so dropping two from the front
    removes the oldest pair and keeps the history starting with a question. It stops as soon
    as the prompt leaves ``reserve`` tokens for the answer, and raises ``ValueError`` when
    only the new question is left and still does not fit (an empty history would fail anyway).
    """
    system, rest = messages[:1], messages[1:]
    while count_prompt_tokens(system + rest) > window - reserve:
        if len(rest) <= 1:
            raise ValueError("even the newest question does not fit")
        rest = rest[2:]  # a question and its answer
    return system + rest
