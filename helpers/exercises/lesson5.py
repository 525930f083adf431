"""Self-checks for lesson 5's exercises (the hardened relay, helpers.relay)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from ..offline import OfflineProvider
from ..settings import OFFLINE_KEY, Config
from ._common import (
    PYTHAGORAS,
    _completion_tokens,
    _pieces,
    _provider,
    _report,
    _require,
)


@contextlib.contextmanager
def _relay() -> Iterator[tuple[OfflineProvider, str]]:
    """A private relay in front of the checks' provider; stopped when the check ends."""
    from ..relay import start_relay

    provider = _provider()
    config = Config("offline", provider.base_url, "moonshot-v1-8k", OFFLINE_KEY)
    relay = start_relay(config, jupyter=False, read_timeout=10, name="exercise-checks-relay")
    try:
        yield provider, relay.url
    finally:
        relay.stop()


@_report
def check_lesson5_ex1(relay_answer: Any) -> str:
    """Check lesson 4, exercise 1: ``relay_answer(url, question)`` -> (text, usage)."""
    _require(callable(relay_answer), "pass the function: check_lesson5_ex1(relay_answer)")
    with _relay() as (provider, url):
        got = relay_answer(url, PYTHAGORAS)
        stats = provider.stats()
    _require(got is not None, "relay_answer returned None: return (text, usage)")
    text, usage = got
    expected = _pieces(PYTHAGORAS)
    _require(text == "".join(expected), "the text differs from the answer: join the content "
                                        "of every `delta` event")
    _require(isinstance(usage, dict), f"usage should be the data of the `usage` event (a "
                                      f"dict), got {usage!r}")
    tokens = _completion_tokens(PYTHAGORAS)
    _require(usage.get("completion_tokens") == tokens,
             f"usage says {usage.get('completion_tokens')} completion tokens, the provider "
             f"counted {tokens}")
    _require(usage.get("total_tokens") == usage.get("prompt_tokens", 0) + tokens,
             "usage should have prompt_tokens, completion_tokens and total_tokens")
    _require(stats["completed"] == 1, "the provider did not complete exactly one answer: "
                                      "make one request to api/chat/stream")
    return f"{len(expected)} pieces of text, and usage {usage['total_tokens']} tokens in total."


@_report
def check_lesson5_ex2(ask_checked: Any) -> str:
    """Check lesson 4, exercise 2: ``ask_checked(url, question)`` -> (text, finished)."""
    _require(callable(ask_checked), "pass the function: check_lesson5_ex2(ask_checked)")
    question = "What is a prime number?"
    pieces = _pieces(question)
    partial = "".join(pieces[: max(1, len(pieces) // 3)])
    cases = [(question, "".join(pieces), True, "a good answer ends with `done`"),
             (f"{question} [fault:midstream]", partial, False,
              "the provider failed midway: the relay sent an `error` event"),
             (f"{question} [fault:cut]", partial, False,
              "the provider's connection dropped: the relay sent an `error` event")]
    with _relay() as (_provider_, url):
        for ask, text, finished, why in cases:
            got = ask_checked(url, ask)
            _require(got is not None, "ask_checked returned None: return (text, finished)")
            _require(got[0] == text, f"{why}; the text so far should be kept ({len(text)} "
                                     f"characters), got {len(got[0] or '')}")
            _require(got[1] is finished, f"{why}, so finished should be {finished}, got "
                                         f"{got[1]!r}")
    return ("finished is True only after `done`: a cut-short answer is told apart from a "
            "whole one (the raw text route cannot do that).")
