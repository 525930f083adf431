"""Self-checks for lesson 7's exercises."""

from __future__ import annotations

from typing import Any

import httpx
import openai

from ..offline import cut_point
from ._common import (
    PYTHAGORAS,
    _client,
    _pieces,
    _provider,
    _report,
    _require,
)


def _status_error(client: openai.OpenAI, code: int) -> openai.APIStatusError:
    try:
        client.chat.completions.create(
            model="moonshot-v1-8k", messages=[{"role": "user", "content": f"hi [fault:{code}]"}])
    except openai.APIStatusError as err:
        return err
    raise RuntimeError(f"the checker expected a {code}")  # pragma: no cover


def _quota_error(kind: str) -> openai.RateLimitError:
    """Return the 429 a provider sends when the account is out of credit (its body's type)."""
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    body = {"message": "Your account is suspended due to insufficient balance", "type": kind}
    response = httpx.Response(429, request=request, json={"error": body})
    return openai.RateLimitError("Error code: 429", response=response, body=body)


@_report
def check_lesson7_ex1(should_retry: Any) -> str:
    """Check lesson 7, exercise 1: ``should_retry(err)`` for every kind of failure."""
    _require(callable(should_retry), "pass the function: check_lesson7_ex1(should_retry)")
    client = _client(_provider(), max_retries=0)
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    cases: list[tuple[BaseException, bool, str]] = [
        (_status_error(client, 429), True, "a 429 rate limit passes if you wait"),
        (_quota_error("exceeded_current_quota_error"), False,
         "a 429 whose type is Moonshot's exceeded_current_quota_error is an empty account: "
         "read err.body[\"type\"]"),
        (_quota_error("insufficient_quota"), False,
         "a 429 whose type is OpenAI's insufficient_quota is an empty account: "
         "read err.body[\"type\"]"),
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
    return ("retry rate limits, 5xx, timeouts and connection errors; never 400, 401, 403, 404 "
            "or an exhausted quota.")


@_report
def check_lesson7_ex2(ask_keep_partial: Any) -> str:
    """Check lesson 7, exercise 2: ``ask_keep_partial(client, model, messages)``."""
    _require(callable(ask_keep_partial), "pass the function: check_lesson7_ex2(ask_keep_partial)")
    client, pieces = _client(_provider(), max_retries=0), _pieces(PYTHAGORAS)
    broken = [{"role": "user", "content": PYTHAGORAS + " [fault:midstream]"}]
    got = ask_keep_partial(client, "moonshot-v1-8k", broken)
    _require(got is not None, "ask_keep_partial returned None: return (text, error)")
    text, error = got
    _require(isinstance(error, openai.APIError),
             f"after a mid-stream failure the error should be the APIError, got {error!r}")
    partial = "".join(pieces[: cut_point(pieces)])  # where the offline provider's faults cut
    _require(text == partial, f"the text so far should be kept: expected {len(partial)} "
                              f"characters, got {len(text or '')}")
    text, error = ask_keep_partial(client, "moonshot-v1-8k",
                                   [{"role": "user", "content": PYTHAGORAS}])
    _require(error is None, f"a good stream should give error None, got {error!r}")
    _require(text == "".join(pieces), "a good stream should give the whole answer")
    return (f"{len(partial)} characters kept after the failure, and the whole answer when "
            "nothing fails.")
