"""Self-checks for lesson 3's exercises."""

from __future__ import annotations

import contextlib
import io
from typing import Any

from ..offline.replies import count_prompt_tokens, filler_reply, split_pieces
from ._common import (
    _client,
    _NotYet,
    _provider,
    _report,
    _require,
)


@_report
def check_lesson3_ex1(stop_after: Any) -> str:
    """Check lesson 3, exercise 1: ``stop_after(request, n)`` stops a view after n tokens."""
    from ..views.show import StreamView

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
    from ..views.chat import ChatUI

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
