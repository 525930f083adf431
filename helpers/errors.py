"""What went wrong, in words a user can act on: one mapping from an exception to what is shown.

The SDK raises one exception class per kind of failure (``openai.RateLimitError`` for 429, and
so on); all derive from ``openai.APIError``. :func:`describe_failure` is the one place that
reads such an exception and says what to show, as a :class:`Failure`: the relay's HTTP status,
error type and message, the notebook view's one-line description, and a friendly sentence.
:func:`scrub` is the one way to take a key out of text.

Deliberate choices:

- **Order matters.** :data:`FRIENDLY` is checked top to bottom with ``isinstance``, so
  subclasses come before their parents (``APITimeoutError`` before ``APIConnectionError``,
  every status error before ``APIStatusError``, ``APIError`` last: an error event inside a
  stream, after a 200).
- **No provider text in the friendly sentence.** It can be long, foreign or echo the request;
  it goes into the technical fields (:attr:`Failure.message`, :func:`error_summary`), scrubbed.
- **A refused connection is not a timeout.** The SDK's aiohttp transport reports a refused
  connection as a connect *timeout*; the cause chain tells them apart.

More in docs/architecture.md (errors).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass

import httpx2
import openai

from .settings import mask_key

__all__ = ["FRIENDLY", "Failure", "IncompleteStream", "RelayFailure", "describe_error",
           "describe_failure", "error_summary", "friendly_message", "scrub"]

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
#: Upstream statuses the relay passes through; the others become 502 (the relay's own
#: configuration is wrong, not the browser's request).
PASS_THROUGH = frozenset({400, 413, 422, 429, 503})
_KEYLIKE = re.compile(r"\b((?:sk|ak|key)-[A-Za-z0-9]{0,3})[A-Za-z0-9_\-]{8,}")
_HINTS = {
    401: " (check the API key in your .env)",
    403: " (this key may not use this model)",
    404: " (check the model name and base_url)",
    429: " (the SDK already retried; wait a little, then try again)",
}


class IncompleteStream(Exception):
    """The provider's stream ended without a finish_reason."""


class RelayFailure(Exception):
    """The relay itself failed (its store, say), not the provider: ``relay_error``, never
    ``upstream_error``. Its text is the message, e.g. "The relay failed while storing the
    answer (InterfaceError)"; the cause is chained."""


@dataclass(frozen=True)
class Failure:
    """What to show for one failure, on every surface."""

    status: int  # the relay's HTTP status for it
    type: str  # the relay's error type, e.g. "upstream_timeout" or the provider's own
    message: str  # the relay's message (technical, scrubbed)
    upstream_status: int | None  # the provider's HTTP status, if it answered with one
    detail: str  # one readable line for a notebook (scrubbed)
    friendly: str  # a sentence that says what to do next (no provider text)


def scrub(text: str, secret: str | None = None) -> str:
    """Return ``text`` with ``secret`` masked and anything shaped like an API key cut short."""
    if secret and len(secret) >= 8 and secret in text:
        text = text.replace(secret, mask_key(secret))
    return _KEYLIKE.sub(r"\1…", text)


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


def describe_failure(exc: BaseException, *, secret: str | None = None,
                     read_timeout: float | None = None) -> Failure:
    """Say what to show for ``exc``; ``secret`` is masked wherever provider text is used."""
    status, kind, message, upstream = _relay_terms(exc, read_timeout)
    return Failure(status, kind, scrub(message, secret), upstream,
                   scrub(_detail(exc), secret), friendly_message(exc))


def describe_error(exc: BaseException, secret: str | None = None) -> str:
    """Return a short, readable, key-free description of a provider or connection error."""
    return scrub(_detail(exc), secret)


def _relay_terms(exc: BaseException,
                 read_timeout: float | None) -> tuple[int, str, str, int | None]:
    if isinstance(exc, openai.APITimeoutError) and not _refused(exc):
        waited = f"for {read_timeout:g} s" if read_timeout is not None else "in time"
        return 504, "upstream_timeout", f"The provider sent nothing {waited} (read timeout)", None
    if isinstance(exc, openai.APIConnectionError):
        return 502, "upstream_connection_error", "The connection to the provider failed", None
    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, Mapping) else {}
        kind = str(body.get("type") or "upstream_error")
        message = str(body.get("message") or f"The provider answered {exc.status_code}")
        if exc.status_code in (401, 403):
            message = f"The provider refused the relay's API key ({exc.status_code}): {message}"
        status = exc.status_code if exc.status_code in PASS_THROUGH else 502
        return status, kind, message, exc.status_code
    if isinstance(exc, openai.APIError):
        body = exc.body if isinstance(exc.body, Mapping) else {}
        return 502, str(body.get("type") or "upstream_error"), exc.message, None
    if isinstance(exc, IncompleteStream):
        return 502, "incomplete_stream", str(exc), None
    if isinstance(exc, RelayFailure):
        return 500, "relay_error", str(exc), None
    return 502, "upstream_error", f"The provider's stream failed ({type(exc).__name__})", None


def _detail(exc: BaseException) -> str:
    if isinstance(exc, openai.APIStatusError):
        text = f"{exc.status_code} {type(exc).__name__}: {_body_message(exc.body) or exc.message}"
        return text + _HINTS.get(exc.status_code, "")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__  # the SDK's text is just "Connection error."
        return f"connection problem: {cause or exc}"
    if isinstance(exc, openai.APIError):
        return f"{type(exc).__name__}: {_body_message(exc.body) or exc.message}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _body_message(body: object) -> str | None:
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"]
    return None


def _refused(exc: BaseException) -> bool:
    """True if a "timeout" is really a refused or failed connection (see module docstring)."""
    aiohttp = sys.modules.get("aiohttp")  # not imported: the error cannot be one of its own
    refused: tuple[type[BaseException], ...] = (httpx2.ConnectError,)
    if aiohttp is not None:
        refused += (aiohttp.ClientConnectorError,)
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, refused):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
