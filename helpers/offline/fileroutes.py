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

Nothing heavy runs on the event loop: parsing the form, extracting the text (a PDF, a .docx)
and every read or write of the store run in a worker thread, at most :data:`HEAVY_AT_ONCE` at a
time per provider, so a slow extraction never holds up another request (issue 23: a .docx
extracted on the loop froze every client of the provider for seconds).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..money.tokens import count_prompt_tokens
from .errors import BadRequest, error_response
from .filestore import FileStore, parse_upload

__all__ = ["HEAVY_AT_ONCE", "file_routes"]

#: Worker threads one provider gives its file work at once (each takes the GIL in turns with
#: the event loop, and the loop's own thread pool stays free).
HEAVY_AT_ONCE = 4
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

    heavy = anyio.CapacityLimiter(HEAVY_AT_ONCE)

    async def off_loop(work: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_thread.run_sync(work, *args, limiter=heavy)

    def parse_and_add(content_type: str, body: bytes) -> dict[str, Any]:
        return store.add(*parse_upload(content_type, body))

    async def upload(request: Request) -> Any:
        body = await _read_capped(request, store.limits.max_file_bytes + _FORM_SLACK)
        return await off_loop(parse_and_add, request.headers.get("content-type", ""), body)

    async def listing(request: Request) -> Any:
        files = await off_loop(store.list)
        after = request.query_params.get("after")
        if after:  # the SDK's auto-pagination asks for the page after the last id it saw
            ids = [f["id"] for f in files]
            files = files[ids.index(after) + 1:] if after in ids else []
        return {"object": "list", "data": files}

    async def content(request: Request) -> Any:
        return PlainTextResponse(await off_loop(store.content, request.path_params["file_id"]))

    async def one(request: Request) -> Any:
        act = store.get if request.method == "GET" else store.delete
        return await off_loop(act, request.path_params["file_id"])

    async def estimate(request: Request) -> Any:
        try:
            body = await request.json()
        except ValueError:
            raise BadRequest("Invalid request: the body is not JSON") from None
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list) or not messages or \
                not all(isinstance(m, dict) for m in messages):
            raise BadRequest("Invalid request: 'messages' must be a non-empty list of messages")
        return {"data": {"total_tokens": await off_loop(count_prompt_tokens, messages)}}

    return [
        route("/v1/files", "POST", upload),
        route("/v1/files", "GET", listing),
        route("/v1/files/{file_id}", "GET", one),
        route("/v1/files/{file_id}", "DELETE", one),
        route("/v1/files/{file_id}/content", "GET", content),
        route("/v1/tokenizers/estimate-token-count", "POST", estimate),
    ]

