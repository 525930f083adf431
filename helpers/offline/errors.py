"""The offline provider's error shape: ``{"error": {"type", "message"}}``, as Moonshot sends it.

Also the one deliberate exception, :class:`DeliberateCut`, that drops a connection mid-stream
for ``[fault:cut]``; uvicorn would log it as a crash, so a log filter keeps it quiet.
"""

from __future__ import annotations

import logging

from starlette.responses import JSONResponse

__all__ = ["ERRORS", "BadRequest", "DeliberateCut", "error_body", "error_response"]

#: status -> (error type, default message), in Moonshot's words
ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error",
          "Invalid request: your request exceeded the model's token limit"),
    401: ("invalid_authentication_error", "Invalid Authentication"),
    403: ("permission_denied_error", "Permission denied: this key may not use this resource"),
    404: ("resource_not_found_error", "Not found the model or Permission denied"),
    429: ("rate_limit_reached_error", "Rate limit reached: too many requests, retry later"),
    500: ("server_error", "The offline provider hit an internal error (simulated)"),
    503: ("engine_overloaded_error", "The engine is currently overloaded, please try again later"),
}


class BadRequest(Exception):
    """A request the provider refuses with a 4xx and a clear message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class DeliberateCut(Exception):
    """Raised to drop a connection mid-stream on purpose ([fault:cut])."""


class _QuietCuts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DeliberateCut)


logging.getLogger("uvicorn.error").addFilter(_QuietCuts())


def error_body(status: int, message: str | None = None, kind: str | None = None) -> dict:
    """Return the provider's error shape: ``{"error": {"type", "message"}}``."""
    default_kind, default_message = ERRORS.get(status, ("invalid_request_error", "Bad request"))
    return {"error": {"type": kind or default_kind, "message": message or default_message}}


def error_response(status: int, message: str | None = None, kind: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """Return a JSON error response in the provider's shape."""
    return JSONResponse(error_body(status, message, kind), status_code=status, headers=headers)
