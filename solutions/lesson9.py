"""Lesson 9 solutions: a conversation's cost from the price table; a history that fits."""

from __future__ import annotations

from helpers.money.tokens import count_prompt_tokens
from helpers.providers import price_of


def conversation_cost(usages: list[dict], model: str) -> float:
    """Exercise 1: add up what every call cost, cached prompt tokens at their own rate."""
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
    """Exercise 2: drop the oldest question-and-answer pairs until the prompt fits."""
    system, rest = messages[:1], messages[1:]
    while count_prompt_tokens(system + rest) > window - reserve:
        if len(rest) <= 1:
            raise ValueError("even the newest question does not fit")
        rest = rest[2:]  # a question and its answer
    return system + rest
