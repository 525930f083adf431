"""Self-checks for the lessons' exercises: run one after your answer and read what it prints.

Each ``check_lessonN_exM`` prints one line: ``✅ ...`` when the answer is right, or
``not yet: <hint>`` when it is not (starter code included). A check never raises, so a notebook
with an unfinished exercise still runs to the end, and nbval still passes on the committed one.

Checks that call your function give it a client for a private offline provider (zero delay,
its own counters), whatever provider the lesson itself uses: the expected answers are then
known exactly, a check costs no tokens, and the counters can prove what your code did on the
wire (that it streamed, that it closed the connection).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import httpx
import openai

from .offline import OfflineProvider
from .replies import compose_reply, split_pieces
from .settings import OFFLINE_KEY, Config
from .streaming import StreamResult

__all__ = [
    "check_lesson1_ex1", "check_lesson1_ex2", "check_lesson2_ex1", "check_lesson2_ex2",
    "check_lesson5_ex1", "check_lesson5_ex2", "check_lesson6_ex1", "check_lesson6_ex2",
]

PYTHAGORAS = "What is the Pythagorean theorem?"
PYTHAGORAS_ZH = "勾股定理是什么？"
_checker: OfflineProvider | None = None


class _NotYet(Exception):
    """An answer that is not right yet; the message is the hint."""


def _provider() -> OfflineProvider:
    """Return the checks' own offline provider (started once, zero delay, counters reset)."""
    global _checker
    if _checker is None or not _checker.running:
        _checker = OfflineProvider(delay_ms=0, name="exercise-checks").start()
    _checker.reset_stats()
    return _checker


def _client(provider: OfflineProvider, **options: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=provider.base_url, api_key=OFFLINE_KEY, **options)


def _report(check: Callable[..., str]) -> Callable[..., None]:
    """Turn a check that returns a success line (or raises _NotYet) into one that prints."""

    @functools.wraps(check)
    def run(*args: Any) -> None:
        try:
            print("✅ " + check(*args))
        except _NotYet as hint:
            print(f"not yet: {hint}")
        except Exception as exc:  # the learner's code failed: a hint, never a traceback
            print(f"not yet: your code raised {type(exc).__name__}: {exc}")

    return run


def _require(condition: bool, hint: str) -> None:
    if not condition:
        raise _NotYet(hint)


def _pieces(question: str, model: str = "moonshot-v1-8k") -> list[str]:
    flavor_reasoning = model in {"deepseek-reasoner", "kimi-k2-thinking"}
    reply = compose_reply([{"role": "user", "content": question}], reasoning=flavor_reasoning)
    return split_pieces(reply.text)


# -- Lesson 1 ---------------------------------------------------------------------------------
@_report
def check_lesson1_ex1(short: Any) -> str:
    """Check lesson 1, exercise 1: a response cut short by ``max_tokens=10``."""
    _require(short is not None, "`short` is still None: assign the response of your "
                                "create(..., max_tokens=10) call to it")
    _require(hasattr(short, "choices") and hasattr(short, "usage"),
             "`short` should be the response object that create() returned")
    finish = short.choices[0].finish_reason
    _require(finish == "length", f"finish_reason is {finish!r}: pass max_tokens=10 so the "
                                 "answer is cut short")
    tokens = short.usage.completion_tokens if short.usage else None
    _require(tokens == 10, f"usage.completion_tokens is {tokens}, expected 10")
    return ("finish_reason is 'length' and usage.completion_tokens is 10: the model stopped at "
            "max_tokens, not because it was done.")


@_report
def check_lesson1_ex2(intl: Any) -> str:
    """Check lesson 1, exercise 2: the config a ``.env`` for Moonshot's global platform gives."""
    _require(intl is not None, "`intl` is still None: assign the result of load_config(env={...})")
    _require(isinstance(intl, Config), "`intl` should be the Config that load_config() returned")
    _require(intl.provider == "moonshot-global",
             f"the provider is {intl.provider!r}: set LLM_PROVIDER to the global Moonshot preset")
    _require(intl.base_url == "https://api.moonshot.ai/v1",
             f"base_url is {intl.base_url!r}: leave it to the preset (no LLM_BASE_URL)")
    _require(bool(intl.api_key), "no key: put MOONSHOT_API_KEY in the env mapping")
    return ("provider moonshot-global, base_url https://api.moonshot.ai/v1: an .ai key goes "
            "to the .ai platform.")


# -- Lesson 2 ---------------------------------------------------------------------------------
@_report
def check_lesson2_ex1(first_words: Any) -> str:
    """Check lesson 2, exercise 1: ``first_words(stream, n)`` returns n pieces and closes."""
    _require(callable(first_words), "pass the function itself: check_lesson2_ex1(first_words)")
    provider, expected = _provider(), _pieces(PYTHAGORAS)[:5]
    held = PYTHAGORAS + " [hold]"  # the last chunk waits: only closing can end this stream
    stream = _client(provider).chat.completions.create(
        model="moonshot-v1-8k", messages=[{"role": "user", "content": held}], stream=True)
    try:
        got = first_words(stream, 5)
        _require(got is not None, "first_words returned None: return a list of the pieces")
        _require(list(got) == expected,
                 f"first_words(stream, 5) returned {list(got)!r}, expected {expected!r} "
                 "(skip chunks whose delta has no content)")
        _require(stream.response.is_closed, "the pieces are right, but the stream is still open: "
                                            "close it (stream.close(), or a with block)")
    finally:
        stream.close()
    record = provider.wait_for(lambda s: s["recent"] and s["recent"][-1]["outcome"] != "open")
    outcome = record["recent"][-1]["outcome"]
    _require(outcome == "disconnected", f"the provider recorded {outcome!r}, not a disconnect")
    return f"{expected!r}, and the provider saw the client leave early."


@_report
def check_lesson2_ex2(plain: Any, counted: Any) -> str:
    """Check lesson 2, exercise 2: ``collect`` results without and with ``include_usage``."""
    _require(plain is not None and counted is not None,
             "assign collect(...) of both streams to `plain` and `counted`")
    _require(isinstance(plain, StreamResult) and isinstance(counted, StreamResult),
             "`plain` and `counted` should be what collect(stream) returned")
    _require(plain.text != "", "`plain` has no text: did the stream run?")
    _require(plain.usage is None, "`plain` has usage: ask gpt-4o-mini WITHOUT stream_options")
    _require(counted.usage is not None,
             "`counted` has no usage: add stream_options={'include_usage': True}")
    return (f"without include_usage: no usage; with it: {counted.usage.total_tokens} tokens, "
            "from the trailing chunk.")


# -- Lesson 5 ---------------------------------------------------------------------------------
_FLAVOURS = ("moonshot-v1-8k", "qwen-plus", "deepseek-chat", "gpt-4o-mini")


@_report
def check_lesson5_ex1(ask_with_usage: Any) -> str:
    """Check lesson 5, exercise 1: text and total tokens from every provider flavour."""
    _require(callable(ask_with_usage), "pass the function: check_lesson5_ex1(ask_with_usage)")
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
        _require(total is not None or model != "deepseek-chat",
                 "deepseek-chat gave no total: its usage is at the top level of the chunk that "
                 "has finish_reason (read chunk.usage on every chunk, not only when choices "
                 "is empty)")
        _require(total is not None, f"{model} gave no total: OpenAI-style providers send usage "
                                    "only with stream_options={'include_usage': True}")
        _require(isinstance(total, int) and total > 0, f"{model}: total should be an int > 0, "
                                                       f"got {total!r}")
    return f"text and total tokens from all of {', '.join(_FLAVOURS)}."


@_report
def check_lesson5_ex2(split_thinking: Any) -> str:
    """Check lesson 5, exercise 2: ``split_thinking(stream)`` -> (reasoning, answer)."""
    _require(callable(split_thinking), "pass the function: check_lesson5_ex2(split_thinking)")
    client = _client(_provider())
    for model in ("deepseek-reasoner", "kimi-k2-thinking", "deepseek-chat"):
        reply = compose_reply([{"role": "user", "content": PYTHAGORAS_ZH}],
                              reasoning=model != "deepseek-chat")
        stream = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": PYTHAGORAS_ZH}], stream=True)
        got = split_thinking(stream)
        _require(got is not None, "split_thinking returned None: return (reasoning, answer)")
        reasoning, answer = got
        _require(answer == reply.text, f"{model}: the answer differs (join delta.content)")
        _require((reasoning or "") == reply.reasoning,
                 f"{model}: the reasoning differs (join delta.reasoning_content; models "
                 "without it give '')")
    return "reasoning and answer kept apart for deepseek-reasoner and kimi-k2-thinking."


# -- Lesson 6 ---------------------------------------------------------------------------------
def _status_error(client: openai.OpenAI, code: int) -> openai.APIStatusError:
    try:
        client.chat.completions.create(
            model="moonshot-v1-8k", messages=[{"role": "user", "content": f"hi [fault:{code}]"}])
    except openai.APIStatusError as err:
        return err
    raise RuntimeError(f"the checker expected a {code}")  # pragma: no cover


@_report
def check_lesson6_ex1(should_retry: Any) -> str:
    """Check lesson 6, exercise 1: ``should_retry(err)`` for every kind of failure."""
    _require(callable(should_retry), "pass the function: check_lesson6_ex1(should_retry)")
    client = _client(_provider(), max_retries=0)
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    cases: list[tuple[BaseException, bool, str]] = [
        (_status_error(client, 429), True, "a 429 passes if you wait"),
        (_status_error(client, 500), True, "a 500 is the provider's hiccup"),
        (_status_error(client, 503), True, "an overloaded engine recovers"),
        (openai.APITimeoutError(request=request), True, "a timeout may pass"),
        (openai.APIConnectionError(request=request), True, "the network may come back"),
        (_status_error(client, 400), False, "the same request fails the same way"),
        (_status_error(client, 401), False, "a wrong key stays wrong"),
        (_status_error(client, 403), False, "permissions do not change by waiting"),
        (_status_error(client, 404), False, "the model will not appear"),
    ]
    for err, expected, why in cases:
        got = should_retry(err)
        _require(got is not None, f"should_retry({type(err).__name__}) returned None: "
                                  "return True or False")
        _require(bool(got) == expected,
                 f"should_retry({type(err).__name__}) is {bool(got)}, expected {expected}: {why}")
    return "retry 429, 5xx, timeouts and connection errors; never 400, 401, 403, 404."


@_report
def check_lesson6_ex2(ask_keep_partial: Any) -> str:
    """Check lesson 6, exercise 2: ``ask_keep_partial(client, model, messages)``."""
    _require(callable(ask_keep_partial), "pass the function: check_lesson6_ex2(ask_keep_partial)")
    client, pieces = _client(_provider(), max_retries=0), _pieces(PYTHAGORAS)
    broken = [{"role": "user", "content": PYTHAGORAS + " [fault:midstream]"}]
    got = ask_keep_partial(client, "moonshot-v1-8k", broken)
    _require(got is not None, "ask_keep_partial returned None: return (text, error)")
    text, error = got
    _require(isinstance(error, openai.APIError),
             f"after a mid-stream failure the error should be the APIError, got {error!r}")
    partial = "".join(pieces[: max(1, len(pieces) // 3)])
    _require(text == partial, f"the text so far should be kept: expected {len(partial)} "
                              f"characters, got {len(text or '')}")
    text, error = ask_keep_partial(client, "moonshot-v1-8k",
                                   [{"role": "user", "content": PYTHAGORAS}])
    _require(error is None, f"a good stream should give error None, got {error!r}")
    _require(text == "".join(pieces), "a good stream should give the whole answer")
    return (f"{len(partial)} characters kept after the failure, and the whole answer when "
            "nothing fails.")
