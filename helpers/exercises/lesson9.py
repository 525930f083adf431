"""Self-checks for lesson 9's exercises: a conversation's cost from the price table; a history
trimmed to a context window."""

from __future__ import annotations

from typing import Any

from ..money.tokens import count_prompt_tokens
from ..providers.table import price_of
from ._common import _NotYet, _report, _require

#: three calls of one conversation; the last one partly served from Kimi's cache
USAGES = [{"prompt_tokens": 1200, "completion_tokens": 300},
          {"prompt_tokens": 1600, "completion_tokens": 250},
          {"prompt_tokens": 2000, "completion_tokens": 400, "cached_tokens": 1500}]
SYSTEM = {"role": "system", "content": "You assist a mathematics teacher."}


def _expected_cost(usages: list[dict], model: str) -> float:
    price = price_of(model)
    assert price is not None and price.cached_input is not None
    total = 0.0
    for u in usages:
        cached = u.get("cached_tokens", 0)
        total += ((u["prompt_tokens"] - cached) * price.input + cached * price.cached_input
                  + u["completion_tokens"] * price.output) / 1_000_000
    return total


@_report
def check_lesson9_ex1(conversation_cost: Any) -> str:
    """Check lesson 9, exercise 1: ``conversation_cost(usages, model)`` from the price table."""
    _require(callable(conversation_cost),
             "pass the function: check_lesson9_ex1(conversation_cost)")
    plain = USAGES[:2]
    got = conversation_cost(plain, "kimi-k2.6")
    _require(got is not None, "conversation_cost returned None: return the total, a number")
    want = _expected_cost(plain, "kimi-k2.6")
    _require(abs(got - want) < 1e-12, f"two calls without cache should cost {want:.6f}, got "
                                      f"{got!r}: prompt tokens times price.input, completion "
                                      "tokens times price.output, per million")
    got = conversation_cost(USAGES, "kimi-k2.6")
    want = _expected_cost(USAGES, "kimi-k2.6")
    _require(abs(got - want) < 1e-12, f"with 1500 cached prompt tokens the total is {want:.6f}, "
                                      f"got {got:.6f}: bill cached tokens at "
                                      "price.cached_input, the rest of the prompt at price.input")
    return "a conversation's cost, cached tokens at their own rate, from the price table."


def _conversation(turns: int) -> list[dict]:
    messages = [SYSTEM]
    for i in range(turns):
        messages += [{"role": "user", "content": f"Question {i}: what is {i} squared?"},
                     {"role": "assistant", "content": f"{i} squared is {i * i}. " * 4}]
    return messages + [{"role": "user", "content": "And the last one: what is 12 squared?"}]


@_report
def check_lesson9_ex2(fit: Any) -> str:
    """Check lesson 9, exercise 2: ``fit(messages, window, reserve)`` drops the oldest turns."""
    _require(callable(fit), "pass the function: check_lesson9_ex2(fit)")
    short = _conversation(1)
    got = fit(list(short), 1000, 100)
    _require(got is not None, "fit returned None: return the list of messages to send")
    _require(got == short, "a conversation that already fits must come back unchanged")
    messages = _conversation(8)
    got = fit(list(messages), 160, 40)
    size = count_prompt_tokens(got)
    _require(size <= 120, f"the result has {size} tokens: it must leave 40 of 160 for the answer")
    _require(got[0] == SYSTEM, "keep the system message first: it holds the instructions")
    _require(got[-1] == messages[-1], "keep the new question last")
    tail = messages[len(messages) - len(got) + 1:]
    _require(got[1:] == tail, "drop the oldest turns first, and keep the newest ones as they are")
    _require(got[1]["role"] == "user", "drop a question together with its answer: the kept "
                                       "history starts with a user message")
    start = len(messages) - len(got) + 1  # where the kept turns begin in the conversation
    one_more = [SYSTEM, *messages[start - 2:start], *got[1:]]
    _require(start <= 1 or count_prompt_tokens(one_more) > 120,
             "you dropped more than needed: keep every turn that fits")
    try:
        fit(list(_conversation(1)), 20, 10)
    except ValueError:
        pass
    except Exception as exc:
        raise _NotYet(f"when even the newest question cannot fit, raise ValueError, not "
                      f"{type(exc).__name__}") from None
    else:
        raise _NotYet("when even the newest question cannot fit, raise ValueError")
    return "the oldest turns dropped in pairs, the instructions and the question kept."
