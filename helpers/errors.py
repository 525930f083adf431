"""What went wrong, in words a user can act on: the SDK's exceptions mapped to friendly messages.

The SDK raises one exception class per kind of failure (``openai.RateLimitError`` for 429, and
so on); all of them derive from ``openai.APIError``. A user should never see a traceback or a
raw ``Error code: 429 - {...}`` string, so :data:`FRIENDLY` maps each class to a sentence that
says what to do next, and :func:`friendly_message` picks the sentence.

Deliberate choices:

- **Order matters.** The table is checked top to bottom with ``isinstance``, so subclasses come
  before their parents: ``APITimeoutError`` before ``APIConnectionError`` (a timeout *is* a
  connection error), every status error before ``APIStatusError``, and ``APIError`` last (it
  catches an error event inside a stream, which has no HTTP status: the response was a 200).
- **No provider text in the friendly message.** The provider's own message can be long, in
  another language, or echo the request; it belongs in logs (:func:`error_summary`), not in
  front of the user. Neither function ever includes the API key: the SDK does not put it in
  exceptions, and we add nothing from the request.
"""

from __future__ import annotations

import openai

__all__ = ["FRIENDLY", "error_summary", "friendly_message"]

#: (exception class, what to tell the user), most specific first.
FRIENDLY: tuple[tuple[type[BaseException], str], ...] = (
    (openai.AuthenticationError,
     "The API key was refused. Check the key in .env (for Moonshot: a .cn key needs "
     "api.moonshot.cn, an .ai key api.moonshot.ai)."),
    (openai.PermissionDeniedError, "This key is not allowed to use that model or feature."),
    (openai.NotFoundError, "That model does not exist here. Check the model name and base_url."),
    (openai.BadRequestError,
     "The provider rejected the request, often because the conversation is too long. "
     "Start a new conversation or shorten it."),
    (openai.RateLimitError,
     "Too many requests right now, or the account is out of credit. Wait a moment, then retry."),
    (openai.InternalServerError, "The provider has a problem on its side. Try again in a moment."),
    (openai.APITimeoutError,
     "The provider took too long to answer. Try again, or ask for a shorter answer."),
    (openai.APIConnectionError,
     "Could not reach the provider. Check the network connection and base_url."),
    (openai.APIStatusError, "The provider answered with an error. Try again later."),
    (openai.APIError, "The answer broke off midway. The text so far is kept; ask again to retry."),
)

_FALLBACK = "Something unexpected went wrong while asking the model."


def friendly_message(exc: BaseException) -> str:
    """Return a sentence for the user that says what went wrong and what to do next."""
    for kind, message in FRIENDLY:
        if isinstance(exc, kind):
            return message
    return _FALLBACK


def error_summary(exc: BaseException) -> str:
    """Return a one-line technical summary for logs: class, HTTP status and provider error type."""
    parts = [type(exc).__name__]
    status = getattr(exc, "status_code", None)
    if status is not None:
        parts.append(f"HTTP {status}")
    body = getattr(exc, "body", None)
    kind = body.get("type") if isinstance(body, dict) else None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        kind = body["error"].get("type", kind)
    if kind:
        parts.append(str(kind))
    return " · ".join(parts)
