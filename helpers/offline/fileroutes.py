"""The offline provider's routes for files and token estimates, registered by its server.

``POST /v1/tokenizers/estimate-token-count`` takes a chat body and answers
``{"data": {"total_tokens": N}}`` (Moonshot's shape, platform docs "estimate-token-count", read
2026-11-28). N is :func:`helpers.money.tokens.count_prompt_tokens` of the messages, the very
function
the chat route puts in ``usage.prompt_tokens``: estimate and usage agree by construction.

``GET /v1/files`` answers Moonshot's ``{"object": "list", "data": [...]}`` (no ``has_more``), and
honours ``?after=<id>``: the SDK's ``for f in client.files.list()`` pages on by asking for the
files after the last id it saw, and an endpoint that ignored ``after`` would loop it forever.

An upload body is read with a cap (the per-file limit plus 64 KiB for the form around it), so a
huge body is refused without being held in memory whole.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..money.tokens import count_prompt_tokens
from .errors import BadRequest, error_response
from .filestore import FileStore, parse_upload

__all__ = ["file_routes"]

_FORM_SLACK = 64 * 1024
Handler = Callable[[Request], Awaitable[Response]]


async def _read_capped(request: Request, cap: int) -> bytes:
    size = request.headers.get("content-length", "")
    if size.isdigit() and int(size) > cap:
        raise BadRequest(f"File too large: the request body is {size} bytes, the limit is "
                         f"{cap - _FORM_SLACK} bytes per file")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > cap:
            raise BadRequest(f"File too large: the request body exceeds {cap - _FORM_SLACK} "
                             f"bytes per file")
        chunks.append(chunk)
    return b"".join(chunks)


def file_routes(store: FileStore, guard: Callable[[Request], Response | None],
                count: Callable[[int], None]) -> list[Route]:
    """Return the Files API and token-estimate routes over ``store``.

    ``guard`` returns an error response for a request without a valid key (or None);
    ``count`` records each answer's status in the provider's counters.
    """

    def route(path: str, method: str, work: Callable[[Request], Awaitable[Any]]) -> Route:
        async def endpoint(request: Request) -> Response:
            response = guard(request)
            if response is None:
                try:
                    result = await work(request)
                    response = result if isinstance(result, Response) else JSONResponse(result)
                except BadRequest as exc:
                    kind = "resource_not_found_error" if exc.status == 404 else None
                    response = error_response(exc.status, str(exc),
                                              kind or "invalid_request_error")
            count(response.status_code)
            return response
        return Route(path, endpoint, methods=[method])

    async def upload(request: Request) -> Any:
        body = await _read_capped(request, store.limits.max_file_bytes + _FORM_SLACK)
        filename, data, purpose = parse_upload(request.headers.get("content-type", ""), body)
        return store.add(filename, data, purpose)

    async def listing(request: Request) -> Any:
        files = store.list()
        after = request.query_params.get("after")
        if after:  # the SDK's auto-pagination asks for the page after the last id it saw
            ids = [f["id"] for f in files]
            files = files[ids.index(after) + 1:] if after in ids else []
        return {"object": "list", "data": files}

    async def content(request: Request) -> Any:
        return PlainTextResponse(store.content(request.path_params["file_id"]))

    async def estimate(request: Request) -> Any:
        try:
            body = await request.json()
        except ValueError:
            raise BadRequest("Invalid request: the body is not JSON") from None
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list) or not messages or \
                not all(isinstance(m, dict) for m in messages):
            raise BadRequest("Invalid request: 'messages' must be a non-empty list of messages")
        return {"data": {"total_tokens": count_prompt_tokens(messages)}}

    return [
        route("/v1/files", "POST", upload),
        route("/v1/files", "GET", listing),
        route("/v1/files/{file_id}", "GET",
              lambda r: _const(store.get(r.path_params["file_id"]))),
        route("/v1/files/{file_id}", "DELETE",
              lambda r: _const(store.delete(r.path_params["file_id"]))),
        route("/v1/files/{file_id}/content", "GET", content),
        route("/v1/tokenizers/estimate-token-count", "POST", estimate),
    ]


async def _const(value: Any) -> Any:
    return value
