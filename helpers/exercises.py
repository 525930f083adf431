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

import contextlib
import functools
import io
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai

from .offline import OfflineProvider
from .replies import compose_reply, count_prompt_tokens, filler_reply, split_pieces
from .settings import OFFLINE_KEY, Config
from .streaming import StreamResult

__all__ = [
    "check_lesson1_ex1", "check_lesson1_ex2", "check_lesson2_ex1", "check_lesson2_ex2",
    "check_lesson3_ex1", "check_lesson3_ex2", "check_lesson4_ex1", "check_lesson4_ex2",
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


# -- Lesson 3 ---------------------------------------------------------------------------------
@_report
def check_lesson3_ex1(stop_after: Any) -> str:
    """Check lesson 3, exercise 1: ``stop_after(request, n)`` stops a view after n tokens."""
    from .widgets import StreamView

    _require(callable(stop_after), "pass the function itself: check_lesson3_ex1(stop_after)")
    provider, n = _provider(), 20
    client = _client(provider, max_retries=0)
    long = [{"role": "user", "content": "[tokens:3000][delay:2] Tell me about triangles."}]
    view = stop_after(lambda: client.chat.completions.create(
        model="moonshot-v1-8k", messages=long, stream=True), n)
    _require(view is not None, "stop_after returned None: return the view")
    _require(isinstance(view, StreamView), "stop_after should return the StreamView it made")
    if not view.done:  # a check must not leave an answer running (and billed)
        view.stop()
        view.wait(30)
        raise _NotYet("the answer was still running when stop_after returned: call "
                      "view.stop(), then view.wait()")
    pieces = len(view.result.pieces)
    _require(view.state == "stopped", f"the view is {view.state!r}, not 'stopped': start it in "
                                      "the background (.start(request)) and call view.stop()")
    _require(pieces >= n, f"only {pieces} tokens had arrived at the stop: wait for {n} first "
                          "(view.wait(tokens=n))")
    _require(view.text == "".join(split_pieces(filler_reply(3000))[:pieces]),
             "the view's text is not the start of the answer")
    record = provider.wait_for(lambda s: s["recent"] and s["recent"][-1]["outcome"] != "open")
    last = record["recent"][-1]
    _require(last["outcome"] == "disconnected" and last["sent"] < last["planned"],
             f"the provider recorded {last['outcome']!r}: Stop should close the connection")
    return (f"stopped after at least {n} tokens, and the provider saw the client leave before "
            "the end of the answer.")


_MEMORY_QUESTIONS = ("What is a prime number?", "What is the Pythagorean theorem?",
                     "What is the derivative of x^2?")
_WHAT_DID_I_ASK = "What did I just ask?"


@_report
def check_lesson3_ex2(chat_class: Any) -> str:
    """Check lesson 3, exercise 2: a ``ChatUI`` subclass that sends only the last 2 messages."""
    from .chat_ui import ChatUI

    _require(isinstance(chat_class, type) and issubclass(chat_class, ChatUI),
             "pass your class itself: check_lesson3_ex2(ShortMemoryChat), a subclass of ChatUI")
    client = _client(_provider(), max_retries=0)
    with contextlib.redirect_stdout(io.StringIO()):  # plain-text chats print each turn
        chat = chat_class(client, "moonshot-v1-8k", widgets=False)
        for question in _MEMORY_QUESTIONS:
            chat.ask(question)
        answered = sum(m["role"] == "assistant" for m in chat.history)
        _require(answered == len(_MEMORY_QUESTIONS),
                 f"only {answered} of {len(_MEMORY_QUESTIONS)} questions got an answer: "
                 "messages_for must end with the question itself")
        expected = [*chat.history[-2:], {"role": "user", "content": _WHAT_DID_I_ASK}]
        sent = chat.messages_for(_WHAT_DID_I_ASK)
        view = chat.ask(_WHAT_DID_I_ASK)
    _require(len(sent) == len(expected), f"messages_for sent {len(sent)} messages, expected "
                                         f"{len(expected)}: the last two of history, then the "
                                         "question")
    _require(sent == expected, "messages_for should send history[-2:] and then the question")
    answer = f'Your previous question was: "{_MEMORY_QUESTIONS[-1]}"'
    _require(view is not None and view.text == answer,
             f"the chat answered {getattr(view, 'text', None)!r}, expected {answer!r}")
    prompt = view.result.usage.prompt_tokens if view.result.usage else None
    _require(prompt == count_prompt_tokens(expected),
             f"the provider counted {prompt} prompt tokens, expected "
             f"{count_prompt_tokens(expected)}: send only what messages_for returns")
    return (f"{len(expected)} messages sent ({prompt} prompt tokens), and the chat still knows "
            "your last question.")


# -- Lesson 4 ---------------------------------------------------------------------------------
@contextlib.contextmanager
def _relay() -> Iterator[tuple[OfflineProvider, str]]:
    """A private relay in front of the checks' provider; stopped when the check ends."""
    from .relay import start_relay

    provider = _provider()
    config = Config("offline", provider.base_url, "moonshot-v1-8k", OFFLINE_KEY)
    relay = start_relay(config, jupyter=False, read_timeout=10, name="exercise-checks-relay")
    try:
        yield provider, relay.url
    finally:
        relay.stop()


@_report
def check_lesson4_ex1(relay_answer: Any) -> str:
    """Check lesson 4, exercise 1: ``relay_answer(url, question)`` -> (text, usage)."""
    _require(callable(relay_answer), "pass the function: check_lesson4_ex1(relay_answer)")
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
    _require(usage.get("completion_tokens") == len(expected),
             f"usage says {usage.get('completion_tokens')} completion tokens, the provider "
             f"sent {len(expected)}")
    _require(usage.get("total_tokens") == usage.get("prompt_tokens", 0) + len(expected),
             "usage should have prompt_tokens, completion_tokens and total_tokens")
    _require(stats["completed"] == 1, "the provider did not complete exactly one answer: "
                                      "make one request to api/chat/stream")
    return f"{len(expected)} pieces of text, and usage {usage['total_tokens']} tokens in total."


@_report
def check_lesson4_ex2(ask_checked: Any) -> str:
    """Check lesson 4, exercise 2: ``ask_checked(url, question)`` -> (text, finished)."""
    _require(callable(ask_checked), "pass the function: check_lesson4_ex2(ask_checked)")
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
