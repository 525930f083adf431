"""The relay's exception handlers: FastAPI's validation and HTTP errors in the one error shape.

Every 4xx outside the stream is ``{"error": {"type", "message"}}`` (docs/architecture.md), the
shape the SDK understands; FastAPI's default ``{"detail": ...}`` never reaches a client. A
message echoes at most a bounded part of what the client sent.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from .bodies import error_response

__all__ = ["add_error_handlers"]

_HTTP_KINDS = {400: "invalid_request_error", 404: "not_found", 405: "method_not_allowed",
               413: "request_too_large"}


def _shorten(text: str, limit: int = 200) -> str:
    """Cut what a client sent to a bounded length before echoing it in an error."""
    return text if len(text) <= limit else text[:limit] + "…"


def _validation_message(exc: RequestValidationError) -> tuple[int, str, str]:
    errors = exc.errors()
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        detail = (first.get("ctx") or {}).get("error", "")
        return 400, "invalid_request_error", f"Request body is not valid JSON: {detail}".strip()
    parts = []
    for error in errors[:3]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if error.get("type") == "missing" and not where:
            message = "a JSON body is required"
        elif error.get("type") == "model_attributes_type" and not where:
            message = "the body must be a JSON object"
        parts.append(f"{where}: {message}" if where else message)
    return 422, "invalid_request_error", "Invalid request: " + "; ".join(parts)


async def invalid_body(request: Request, exc: RequestValidationError) -> Response:
    """A body that is not the route's JSON: 415 for another content type, else 400 or 422."""
    content_type = request.headers.get("content-type", "")
    if "json" not in content_type.lower():
        return error_response(415, "unsupported_media_type",
                              "Content-Type must be application/json, got "
                              f"{content_type or 'none'!r}")
    return error_response(*_validation_message(exc))


async def http_error(request: Request, exc: HTTPException) -> Response:
    """Starlette's HTTP errors (no route, wrong method, a body too large or unreadable)."""
    path = _shorten(request.url.path)
    message = {400: "Request body could not be read: send UTF-8 JSON, not nested too deeply",
               404: f"No route for {request.method} {path}",
               405: f"Method {request.method} is not allowed on {path}",
               413: str(exc.detail)}  # the guards say which limit (guards.py)
    return error_response(exc.status_code, _HTTP_KINDS.get(exc.status_code, "http_error"),
                          message.get(exc.status_code, str(exc.detail)), exc.headers)


def add_error_handlers(app: FastAPI) -> None:
    """Answer validation and HTTP errors on ``app`` in the relay's error shape."""
    app.add_exception_handler(RequestValidationError, invalid_body)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, http_error)  # type: ignore[arg-type]
