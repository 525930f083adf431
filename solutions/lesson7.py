"""Lesson 7 solutions: which failures are worth a retry, and keeping the text of a broken stream."""

from __future__ import annotations

import openai
from openai import OpenAI

#: the 429 types that mean "out of credit": Moonshot's and OpenAI's
QUOTA_TYPES = {"exceeded_current_quota_error", "insufficient_quota"}


def should_retry(err: Exception) -> bool:
    """Exercise 1: True for failures that may pass by waiting, False for ones that will not.

    Connection errors and timeouts come first (``APITimeoutError`` is an
    ``APIConnectionError``): no status, and they have no body to read. Among statuses, the
    ones the SDK itself retries (408, 409, 429, 5xx) may pass, except a 429 whose error type
    says the account is out of credit: the status is the same for both, only
    ``err.body["type"]`` tells them apart. 400, 401, 403 and 404 fail the same way again.
    """
    if isinstance(err, openai.APIConnectionError):  # timeouts included: a subclass
        return True
    if isinstance(err, openai.APIStatusError):
        # the SDK keeps the body's "error" object in err.body; it may be None or a string
        kind = err.body.get("type") if isinstance(err.body, dict) else None
        if err.status_code == 429 and kind in QUOTA_TYPES:  # an empty account: waiting won't help
            return False
        return err.status_code in (408, 409, 429) or err.status_code >= 500
    return False


def ask_keep_partial(client: OpenAI, model: str,
                     messages: list[dict]) -> tuple[str, Exception | None]:
    """Exercise 2: stream an answer; return (the text so far, the error or None).

    The pieces live outside the ``try``, so what arrived before the failure survives it.
    ``openai.APIError`` catches both mid-stream failures: an error event (a plain
    ``APIError``) and a dropped connection (``APIConnectionError``). ``with`` closes the
    connection either way. ``collect`` would lose the partial text: it raises, returning
    nothing.
    """
    pieces: list[str] = []
    try:
        with client.chat.completions.create(model=model, messages=messages,
                                            stream=True) as stream:
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    pieces.append(chunk.choices[0].delta.content)
    except openai.APIError as err:
        return "".join(pieces), err
    return "".join(pieces), None
