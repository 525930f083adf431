"""Lesson 7 solutions: which failures are worth a retry, and keeping the text of a broken stream."""

from __future__ import annotations

import openai
from openai import OpenAI

#: the 429 types that mean "out of credit": Moonshot's and OpenAI's
QUOTA_TYPES = {"exceeded_current_quota_error", "insufficient_quota"}


def should_retry(err: Exception) -> bool:
    """Exercise 1: True for failures that may pass by waiting, False for ones that will not."""
    if isinstance(err, openai.APIConnectionError):  # timeouts included: a subclass
        return True
    if isinstance(err, openai.APIStatusError):
        kind = err.body.get("type") if isinstance(err.body, dict) else None
        if err.status_code == 429 and kind in QUOTA_TYPES:  # an empty account: waiting won't help
            return False
        return err.status_code in (408, 409, 429) or err.status_code >= 500
    return False


def ask_keep_partial(client: OpenAI, model: str,
                     messages: list[dict]) -> tuple[str, Exception | None]:
    """Exercise 2: stream an answer; return (the text so far, the error or None)."""
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
